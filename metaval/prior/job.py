"""``metaval prior``: label a prior of generated tasks, resumable, in parallel.

Tasks are grouped by shape bucket (``metaval.prior.labels.signature``: classes and
padded width; tasks of one bucket share compiled training programs) and cut into
shards of ``tasks_per_shard`` tasks; a shard is a pure function of ``(config, its
task seeds)``. Shards are dealt round-robin over the buckets, so a partial run already
covers every bucket, and with ``jax_cache`` a program compiled by one worker is loaded
(not compiled again) by the others and by later runs. A worker writes each finished
shard atomically (``metaval.labeling.storage.write_shard``); a rerun skips finished
shards, so a crash loses at most the shards in flight. The progress bar counts
finished shard files."""

from __future__ import annotations

import concurrent.futures as cf
import glob
import json
import os
import time

import jax
import ml_collections

from metaval.data import samplers
from metaval.errors import MetavalError
from metaval.labeling import pipeline
from metaval.labeling import storage as label_storage
from metaval.prior import generator
from metaval.prior import labels as prior_labels
from metaval.prior import storage as prior_storage
from metaval.util import io as io_lib
from metaval.util import jaxcache

# Config fields that do not change the labels (left out of the resume fingerprint).
_RUNTIME_FIELDS = ("local_workers", "progress", "jax_cache")


def _as_dict(config) -> dict:
  return config.to_dict() if isinstance(config, ml_collections.ConfigDict) else dict(config)


def check_config(config) -> None:
  """Refuses a prior config that cannot run, in one line.

  Raises:
    MetavalError: unknown kinds, bad sizes or counts, a gather size below
      ``max base_size + max supp_size``.
  """
  unknown = [k for k in config.kinds if k not in samplers.SUPPLEMENT_KINDS]
  if unknown:
    raise MetavalError(f"unknown supplement kind(s) {unknown}")
  for f in ("num_tasks", "pairs_per_task", "supps_per_base", "num_seeds", "chunk"):
    if int(config[f]) < 1:
      raise MetavalError(f"config.{f} must be >= 1, got {config[f]}")
  for f in ("base_size", "supp_size"):
    lo, hi = config[f]
    if not 1 <= lo <= hi:
      raise MetavalError(f"config.{f} must be (lo, hi) with 1 <= lo <= hi, got ({lo}, {hi})")
  if int(config.gather) < config.base_size[1] + config.supp_size[1]:
    raise MetavalError("config.gather must be >= max base_size + max supp_size")
  if not len(config.learners):
    raise MetavalError("config.learners is empty: name at least one learner")
  prior_labels.learner_specs(config)
  generator.sample_spec(int(config.first_task), **dict(config.ranges))


def plan(config) -> list[tuple[int, list[int]]]:
  """The shards as ``(shard id, task seeds)``, in the order they are run.

  Shard ids follow (bucket, seed) order, so they are stable for a config; the run
  order deals one shard of each bucket per round, largest buckets first.
  """
  seeds = range(int(config.first_task), int(config.first_task) + int(config.num_tasks))
  by_sig: dict[tuple, list[int]] = {}
  for s in seeds:
    sig = prior_labels.signature(generator.sample_spec(s, **dict(config.ranges)))
    by_sig.setdefault(sig, []).append(s)
  per, groups, sid = int(config.tasks_per_shard), [], 0
  for sig in sorted(by_sig):
    group = []
    for j in range(0, len(by_sig[sig]), per):
      group.append((sid, by_sig[sig][j : j + per]))
      sid += 1
    groups.append(group)
  groups.sort(key=lambda g: -len(g))
  return [g[r] for r in range(len(groups[0])) for g in groups if r < len(g)]


def run_shards(cfg: dict, workdir: str, shards) -> tuple[int, float]:
  """Labels the unfinished ones of ``shards`` (``(id, task seeds)``), writing each as it
  finishes.

  Returns:
    ``(labels written, CPU seconds of this process)``: with single-threaded XLA
    the CPU time is what the work costs one core, whatever else shares the machine.
  """
  done = label_storage.finished_shards(workdir)
  n, cpu0 = 0, time.process_time()
  for sid, seeds in shards:
    if sid in done:
      continue
    rec = prior_labels.run_shard(cfg, seeds)
    label_storage.write_shard(label_storage.shard_path(workdir, sid), rec)
    n += len(rec["task_seed"]) * len(rec["learner"])
    # Drop this shard's compiled programs: a worker that keeps every shape bucket's
    # programs mapped runs out of LLVM memory maps ("Cannot allocate memory") after
    # about a hundred shards although RAM is free. JAX's persistent cache reloads
    # a bucket's programs when a later shard needs them.
    jax.clear_caches()
  return n, time.process_time() - cpu0


def _prepare(workdir: str, config) -> None:
  os.makedirs(os.path.join(workdir, "shards"), exist_ok=True)
  for stale in glob.glob(os.path.join(workdir, "shards", "*.tmp-*")):
    os.remove(stale)  # shards in flight when a previous run died
  fields = {k: v for k, v in sorted(_as_dict(config).items()) if k not in _RUNTIME_FIELDS}
  path = os.path.join(workdir, "config.json")
  if os.path.exists(path):
    with open(path) as fh:
      stored = json.load(fh)
    if io_lib.fingerprint(stored) != io_lib.fingerprint(fields):
      raise MetavalError(
        f"{workdir!r} holds prior labels from a different config; use a new --workdir"
      )
  else:
    io_lib.write_json(path, fields, indent=1, sort_keys=True)


def generate(config, workdir: str) -> prior_storage.PriorLabels:
  """Builds (or resumes) the prior labels in ``workdir`` and returns them loaded.

  Args:
    config: a ``prior`` config.
    workdir: output directory.

  Returns:
    The ``PriorLabels``.
  """
  check_config(config)
  _prepare(workdir, config)
  shards = plan(config)
  done = label_storage.finished_shards(workdir)
  todo = [(s, t) for s, t in shards if s not in done]
  labels_per_task = int(config.pairs_per_task) * len(config.learners)
  sizes = {s: len(t) for s, t in shards}
  # JAX's persistent compilation cache (read at start-up by the spawned workers): a
  # resumed or repeated run loads each bucket's programs instead of compiling them.
  cache = os.path.abspath(os.path.join(workdir, "jax_cache")) if config.jax_cache else None
  cfg = _as_dict(config)
  from tqdm import tqdm

  t0 = time.perf_counter()
  with tqdm(total=len(shards), initial=len(done), unit="shard", disable=not config.progress) as bar:
    workers, results = int(config.local_workers), []
    if workers <= 0:
      for shard in todo:
        results.append(run_shards(cfg, workdir, [shard]))
        bar.update(len(label_storage.finished_shards(workdir)) - bar.n)
    elif todo:
      with (
        jaxcache.environ(jaxcache.cache_env(cache) if cache else {}),
        pipeline.shard_pool(min(workers, len(todo))) as pool,
      ):
        futs = [pool.submit(run_shards, cfg, workdir, [shard]) for shard in todo]
        pending = set(futs)
        while pending:
          # Wait on the unfinished futures only: a finished one would end every wait at
          # once and turn this loop into a busy poll of the shard folder.
          pending = cf.wait(pending, timeout=2.0, return_when=cf.FIRST_COMPLETED).not_done
          bar.update(len(label_storage.finished_shards(workdir)) - bar.n)
          bar.set_postfix(labels_s=f"{_rate(workdir, sizes, done, labels_per_task, t0):.1f}")
        results = [f.result() for f in futs]  # re-raises a worker's error
      bar.update(len(label_storage.finished_shards(workdir)) - bar.n)
  seconds = time.perf_counter() - t0
  out = prior_storage.load_prior(workdir)
  new, cpu = sum(r[0] for r in results), sum(r[1] for r in results)
  summary = {
    "tasks": len(out.specs),
    "pairs": len(out),
    "labels": out.num_labels,
    "new_labels": new,
    "seconds": round(seconds, 1),
    "labels_per_s": round(new / max(seconds, 1e-9), 2),
    "worker_cpu_seconds": round(cpu, 1),
    "labels_per_cpu_s": round(new / max(cpu, 1e-9), 2),
    "load_average": [round(v, 2) for v in os.getloadavg()],
  }
  io_lib.write_json(os.path.join(workdir, "summary.json"), summary, indent=1)
  if todo:
    print(
      f"generated {summary['new_labels']} labels in {seconds:.1f}s "
      f"({summary['labels_per_s']} labels/s, {summary['labels_per_cpu_s']} per worker CPU "
      f"second, load average {summary['load_average'][0]}); dataset: {workdir}"
    )
  return out


def _rate(workdir, sizes, done_before, labels_per_task, t0) -> float:
  """Labels per second of this run so far (from the shards finished since it began)."""
  new = label_storage.finished_shards(workdir) - done_before
  return sum(sizes[s] for s in new) * labels_per_task / (time.perf_counter() - t0)


def run(config, workdir: str) -> prior_storage.PriorLabels:
  """``metaval prior``: builds or resumes the prior labels and prints a summary per kind."""
  out = generate(config, workdir)
  d = out.improvement("test/accuracy")  # [P, L]
  print(f"{len(out.specs)} tasks, {len(out)} pairs, {out.num_labels} labels ({out.learners})")
  for k in sorted(set(out.kind)):
    sel = out.kind == k
    means = " ".join(f"{v:+.4f}" for v in d[sel].mean(0))
    print(f"  {k:18s} n={int(sel.sum()):5d}  Δ accuracy per learner: {means}")
  return out
