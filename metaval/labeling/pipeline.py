"""The label pipeline: sample (B, S) pairs, train on B and B ∪ S, store improvements.

``metaval generate --config labels:quick --workdir runs/labels`` cuts the
work into shards. A shard is a pure function of ``(config, task, shard index)``:
its pairs come from a numpy generator seeded with ``(seed, task id, shard)`` and
its training keys from ``fold_in(fold_in(key(seed), task id), shard)``. Finished
shards are written atomically; a rerun skips them, so a crash loses at most the
shards in flight and the resumed dataset is identical to an uninterrupted one.

Training layout (why it is fast):

* Each base set B carries ``supps_per_base`` supplements. The B model of
  ``(base b, seed k)`` is trained once and shared by all of b's pairs, and every
  B ∪ S model of those pairs uses the *same* key ``(b, k)`` (paired seeds: seed
  noise cancels in the difference as far as it can).
* Points of S that are pool points with their own label become mask weights on
  the pool (duplicates count twice). All other S points (noisy labels, synthetic
  inputs) are de-duplicated and appended to a copy of the pool padded to
  ``extra_capacity``; pairs are packed into groups that fit it.
* Model batches are padded to ``chunk`` models, so every shard reuses one
  compiled program per (learner, pool shape): at most two shapes per learner.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import dataclasses
import glob
import json
import math
import multiprocessing
import os
import threading
import time
import zlib

import jax
import ml_collections
import numpy as np

from metaval.data import LANGUAGE_MODEL, Task, get_task
from metaval.data import samplers as samplers_lib
from metaval.errors import MetavalError
from metaval.labeling import storage
from metaval.labeling.schema import LabelSet
from metaval.learners.models import LearnerSpec, num_params
from metaval.learners.train import metric_names, train_many

# Config fields that do not change the data (excluded from the fingerprint).
_RUNTIME_FIELDS = ("backend", "ray_address", "ray_num_cpus", "progress", "local_workers")

# Multi-threaded XLA:CPU matrix products may split a long reduction (e.g. the
# weight gradient's sum over the pool) across threads and add the parts in the
# order they finish, so the last bits of a metric can change from run to run.
# Shard workers therefore run single-threaded XLA (one process per core), which
# makes every shard bit-for-bit reproducible and a resumed dataset identical.
DETERMINISTIC_XLA_FLAG = "--xla_cpu_multi_thread_eigen=false"


class PipelineError(MetavalError):
  """The label pipeline's config or workdir is not valid."""


# ----------------------------------------------------------------------------
# Training pairs.


def _pad_rows(a: np.ndarray, multiple: int) -> np.ndarray:
  pad = (-a.shape[0]) % multiple
  return np.concatenate([a, np.repeat(a[:1], pad, 0)]) if pad else a


def _train_fixed(
  keys: np.ndarray, task: Task, masks: np.ndarray, spec: LearnerSpec, chunk: int, gather=None
):
  """``train_many`` with the model count padded to a multiple of ``chunk``.

  ``gather`` is passed through as a fixed value (never "auto"), so every shard
  compiles the same programs whatever its subset sizes.

  Returns:
    ``[M, T]`` float64 metrics in ``metric_names(task)`` order.
  """
  m = masks.shape[0]
  if gather and int((masks > 0).sum(1).max()) > gather:
    gather = None  # a set larger than the config's bound (e.g. a whole package): dense
  res = train_many(
    _pad_rows(keys, chunk), task, _pad_rows(masks, chunk), spec, chunk=chunk, gather=gather
  )
  return np.stack([res.metrics[n][:m] for n in metric_names(task)], axis=1)


def _pair_keys(key: jax.Array, n_bases: int, num_seeds: int) -> np.ndarray:
  """``[n_bases, K, 2]`` raw keys: ``fold_in(fold_in(key, base), seed)``."""
  out = np.zeros((n_bases, num_seeds, 2), np.uint32)
  for b in range(n_bases):
    kb = jax.random.fold_in(key, b)
    for k in range(num_seeds):
      out[b, k] = np.asarray(jax.random.key_data(jax.random.fold_in(kb, k)))
  return out


def _fixed_gather(cfg, task: Task) -> int | None:
  """One gather size for every shard of a config: B ∪ S usually has at most
  max|B| + max|S| points (larger sets fall back to the dense pool). Gathering pays
  only when that is small next to the pool."""
  from metaval.learners.train import gather_size

  k = gather_size(int(max(cfg.base_size)) + int(max(cfg.supp_size)))
  return k if 3 * k <= task.pool_size else None


def label_pairs(
  task: Task,
  bases: list[np.ndarray],
  supplements: list[samplers_lib.Supplement],
  spec: LearnerSpec,
  *,
  base_of=None,
  num_seeds: int = 4,
  key: jax.Array | None = None,
  chunk: int = 64,
  extra_capacity: int = 1024,
  gather: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
  """Trains on B and on B ∪ S with paired seeds; returns both sides' metrics.

  Args:
    task: the base task.
    bases: base sets (pool index arrays).
    supplements: P supplements.
    spec: the learner.
    base_of: ``[P]`` which base each supplement goes with (default: the i-th).
    num_seeds: K paired seeds per pair.
    key: PRNG key (default ``key(0)``); model ``(base b, seed k)`` uses
      ``fold_in(fold_in(key, b), k)`` on *both* sides on purpose (paired seeds).
    chunk: models per compiled batch (batches are padded to it).
    extra_capacity: appended (non-pool) points per training group; grown to the
      next multiple of 256 if one supplement alone needs more.
    gather: ``None`` trains on the dense pool; an int k makes every model gather
      its own (at most k) points (see ``train_many``); fixed, so shards share programs.

  Returns:
    ``(metric_base, metric_full)``, each ``[P, K, T]`` in ``metric_names(task)``
    order; pairs sharing a base share their ``metric_base`` rows.
  """
  p_count = len(supplements)
  base_of = np.arange(p_count) if base_of is None else np.asarray(base_of)
  if len(base_of) != p_count or (p_count and base_of.max() >= len(bases)):
    raise MetavalError("base_of must map every supplement to one of the bases")
  if num_seeds < 1:
    raise MetavalError(f"num_seeds must be >= 1, got {num_seeds}")
  key = jax.random.key(0) if key is None else key
  n, k_seeds = task.pool_size, num_seeds
  keys = _pair_keys(key, len(bases), k_seeds)  # [n_bases, K, 2]

  # B models: one per (base, seed), rows ordered (base, seed).
  base_w = np.zeros((len(bases), n), np.float32)
  for b, idx in enumerate(bases):
    np.add.at(base_w[b], np.asarray(idx), 1.0)
  masks_b = np.repeat(base_w, k_seeds, 0)  # [n_bases * K, N]
  met_b = _train_fixed(keys.reshape(-1, 2), task, masks_b, spec, chunk, gather)
  met_b = met_b.reshape(len(bases), k_seeds, -1)

  # B ∪ S: pool weights plus de-duplicated extra points per pair.
  pool_w, extras = [], []
  for i, s in enumerate(supplements):
    w = base_w[base_of[i]].copy()
    exact = s.pool_exact(task)
    np.add.at(w, s.pool_indices[exact].astype(np.int64), 1.0)
    pool_w.append(w)
    extras.append(_dedup(s.x[~exact], s.y[~exact]))
  cap = max([extra_capacity] + [256 * math.ceil(len(e[2]) / 256) for e in extras])
  groups = _pack(extras, cap, max(1, chunk // k_seeds))
  met_f = np.zeros((p_count, k_seeds, met_b.shape[-1]))
  for members, n_extra in groups:
    if n_extra == 0:
      sub, width = task, n  # plain pool: shares the B models' compiled program
    else:
      sub, width = _extended(task, [extras[i] for i in members], cap), n + cap
    masks, offset = np.zeros((len(members), width), np.float32), n
    for row, i in enumerate(members):
      masks[row, :n] = pool_w[i]
      cnt = extras[i][2]
      masks[row, offset : offset + len(cnt)] = cnt
      offset += len(cnt)
    masks = np.repeat(masks, k_seeds, 0)  # rows ordered (pair, seed)
    grp_keys = keys[base_of[members]].reshape(-1, 2)  # paired: B's keys
    met = _train_fixed(grp_keys, sub, masks, spec, chunk, gather)
    met_f[members] = met.reshape(len(members), k_seeds, -1)
  return met_b[base_of], met_f


def _dedup(x: np.ndarray, y: np.ndarray):
  """Unique (x, y) rows with their counts (a constant set is one weighted point)."""
  if len(y) == 0:
    return x, y, np.zeros((0,), np.float32)
  flat = np.concatenate([x.reshape(len(y), -1).astype(np.float64), y[:, None]], 1)
  _, first, counts = np.unique(flat, axis=0, return_index=True, return_counts=True)
  order = np.argsort(first)  # keep first-appearance order (deterministic)
  first, counts = first[order], counts[order]
  return x[first], y[first], counts.astype(np.float32)


def _pack(extras, cap: int, max_pairs: int) -> list[tuple[list[int], int]]:
  """Groups pairs: those with no extra points together, others greedily up to ``cap``."""
  plain = [i for i, e in enumerate(extras) if len(e[2]) == 0]
  groups = [(plain[j : j + max_pairs], 0) for j in range(0, len(plain), max_pairs)]
  cur, used = [], 0
  for i, e in enumerate(extras):
    ne = len(e[2])
    if ne == 0:
      continue
    if cur and (used + ne > cap or len(cur) == max_pairs):
      groups.append((cur, used))
      cur, used = [], 0
    cur.append(i)
    used += ne
  if cur:
    groups.append((cur, used))
  return groups


def _extended(task: Task, extras, cap: int) -> Task:
  """A copy of ``task`` with the extra points appended and zero-padded to ``cap``."""
  xs = [task.x] + [e[0].astype(task.x.dtype) for e in extras]
  ys = [task.y] + [e[1].astype(np.int32) for e in extras]
  used = sum(len(e[2]) for e in extras)
  xs.append(np.zeros((cap - used, *task.x.shape[1:]), task.x.dtype))
  ys.append(np.zeros((cap - used,), np.int32))
  x, y = np.concatenate(xs), np.concatenate(ys)
  fill = np.full(cap, -1, np.int32)
  return dataclasses.replace(
    task,
    x=x,
    y=np.maximum(y, 0),  # synthetic code windows carry group -1; labels unused by the LM
    groups=np.concatenate([task.groups, fill]),
    files=np.concatenate([task.files, fill]),
  )


# ----------------------------------------------------------------------------
# Shards.


def task_names(config) -> list[str]:
  names = [t.strip() for t in str(config.task.name).split(",") if t.strip()]
  if not names:
    raise PipelineError("config.task.name is empty")
  return names


def task_id(name: str) -> int:
  """A stable small integer per task name (folded into the shard seeds)."""
  return zlib.crc32(name.encode()) & 0x7FFFFFFF


def learner_specs(config) -> list[tuple[str, LearnerSpec]]:
  if not len(config.learners):
    raise PipelineError("config.learners is empty: name at least one learner")
  return [(name, LearnerSpec.from_config(cfg)) for name, cfg in config.learners.items()]


def _as_dict(config) -> dict:
  return config.to_dict() if isinstance(config, ml_collections.ConfigDict) else dict(config)


def sample_shard_pairs(config, task: Task, shard: int):
  """The shard's pairs: ``(bases, supplements, base_of)`` (deterministic)."""
  cfg = ml_collections.ConfigDict(_as_dict(config))
  rng = np.random.default_rng([int(cfg.seed), task_id(task.name), int(shard)])
  kinds = [k for k in cfg.kinds if task.kind in samplers_lib.SUPPLEMENT_KINDS[k].task_kinds]
  if not kinds:
    raise PipelineError(f"none of config.kinds applies to {task.kind} task {task.name!r}")
  weights = dict(cfg.kind_weights) if cfg.kind_weights else {}
  p = np.array([float(weights.get(k, 1.0)) for k in kinds])
  p = p / p.sum()
  r = int(cfg.supps_per_base)
  n_pairs = int(cfg.pairs_per_shard)
  bases, supps, base_of = [], [], []
  lo_b, hi_b = cfg.base_size
  lo_s, hi_s = cfg.supp_size
  while len(supps) < n_pairs:
    exclude = ()
    if task.kind == LANGUAGE_MODEL:
      # Hold half the groups out of B so "groups" supplements bring unseen packages.
      g = len(task.group_names)
      exclude = sorted(int(i) for i in rng.choice(g, g // 2, replace=False))
    # At most half the pool in B, so every kind can still draw points outside it.
    n_b = min(int(rng.integers(lo_b, hi_b + 1)), max(1, task.pool_size // 2))
    base = samplers_lib.sample_base(task, rng, n_b, exclude)
    bases.append(base)
    for _ in range(min(r, n_pairs - len(supps))):
      supps.append(_draw_supplement(task, base, rng, kinds, p, lo_s, hi_s))
      base_of.append(len(bases) - 1)
  return bases, supps, np.array(base_of)


def _draw_supplement(task, base, rng, kinds, p, lo_s, hi_s, tries: int = 20):
  """A supplement of a random kind; redraws (deterministically) if a kind cannot
  be filled for this base, e.g. a single class with no points left outside B."""
  for _ in range(tries):
    kind = str(rng.choice(kinds, p=p))
    size = int(round(math.exp(rng.uniform(math.log(lo_s), math.log(hi_s)))))
    params = {} if kind == "groups" else {"size": size}
    try:
      return samplers_lib.sample_supplement(kind, task, base, rng, **params)
    except samplers_lib.SamplerError:
      continue
  raise PipelineError(f"could not draw a supplement for task {task.name!r} in {tries} tries")


def run_shard(config, task_name: str, shard: int) -> dict[str, np.ndarray]:
  """Generates one shard's labels for every learner (pure: same inputs, same output).

  Args:
    config: the label config (``ConfigDict`` or its ``to_dict()``).
    task_name: base task.
    shard: shard index.

  Returns:
    The shard record (numpy arrays) that ``storage.write_shard`` stores.
  """
  cfg = ml_collections.ConfigDict(_as_dict(config))
  task = get_task(task_name, seed=int(cfg.task.seed))
  bases, supps, base_of = sample_shard_pairs(cfg, task, shard)
  # Shard key: fold_in(fold_in(key(seed), task id), shard); pairs fold in further.
  key = jax.random.fold_in(
    jax.random.fold_in(jax.random.key(int(cfg.seed)), task_id(task_name)), shard
  )
  lm = task.kind == LANGUAGE_MODEL
  in_dim = 0 if lm else task.feature_dim
  mb, mf, learners, n_params = [], [], [], []
  for li, (name, spec) in enumerate(learner_specs(cfg)):
    b, f = label_pairs(
      task,
      bases,
      supps,
      spec,
      base_of=base_of,
      num_seeds=int(cfg.num_seeds),
      key=jax.random.fold_in(key, li),
      chunk=int(cfg.chunk),
      extra_capacity=int(cfg.extra_capacity),
      gather=_fixed_gather(cfg, task),
    )
    mb.append(b)
    mf.append(f)
    n_params.append(num_params(spec, in_dim, task.num_classes))
    learners.append(json.dumps({"name": name, **spec.to_dict(), "params": n_params[-1]}))
  synth = [s.x[s.pool_indices < 0] for s in supps]
  width = task.x.shape[1]
  off = lambda arrs: np.cumsum([0] + [len(a) for a in arrs]).astype(np.int64)  # noqa: E731
  return {
    "task": np.array(task.name),
    "task_seed": np.array(task.seed, np.int64),
    "task_kind": np.array(task.kind),
    "shard": np.array(shard, np.int64),
    "metric_names": np.array(metric_names(task)),
    "pair_id": shard * int(cfg.pairs_per_shard) + np.arange(len(supps), dtype=np.int64),
    "base_flat": np.concatenate([bases[i] for i in base_of]).astype(np.int32),
    "base_off": off([bases[i] for i in base_of]),
    "supp_idx_flat": np.concatenate([s.pool_indices for s in supps]).astype(np.int32),
    "supp_y_flat": np.concatenate([s.y for s in supps]).astype(np.int32),
    "supp_off": off([s.y for s in supps]),
    "synth_x_flat": np.concatenate(synth).reshape(-1, width).astype(task.x.dtype),
    "synth_off": off(synth),
    "kind": np.array([s.kind for s in supps]),
    "recipe": np.array([json.dumps(s.recipe, sort_keys=True) for s in supps]),
    "learner": np.array(learners),
    "learner_params": np.array(n_params, np.int64),
    "metric_base": np.stack(mb, axis=1),  # [P, L, K, T]
    "metric_full": np.stack(mf, axis=1),  # [P, L, K, T]
  }


# ----------------------------------------------------------------------------
# Driver.


def _fingerprint(config) -> dict:
  d = _as_dict(config)
  return {k: v for k, v in sorted(d.items()) if k not in _RUNTIME_FIELDS}


def _check_config(config) -> None:
  if int(config.num_shards) < 1 or int(config.pairs_per_shard) < 1:
    raise PipelineError("num_shards and pairs_per_shard must be >= 1")
  if int(config.supps_per_base) < 1 or int(config.num_seeds) < 1 or int(config.chunk) < 1:
    raise PipelineError("supps_per_base, num_seeds and chunk must be >= 1")
  unknown = [k for k in config.kinds if k not in samplers_lib.SUPPLEMENT_KINDS]
  if unknown:
    raise PipelineError(
      f"unknown supplement kind(s) {unknown}; available: {', '.join(samplers_lib.SUPPLEMENT_KINDS)}"
    )
  if config.backend not in ("local", "ray"):
    raise PipelineError(f"backend must be 'local' or 'ray', got {config.backend!r}")
  for lo, hi, what in (
    (*config.base_size, "base_size"),
    (*config.supp_size, "supp_size"),
  ):
    if not 1 <= lo <= hi:
      raise PipelineError(f"{what} must be (lo, hi) with 1 <= lo <= hi, got ({lo}, {hi})")
  learner_specs(config)


def _prepare_task_dir(workdir: str, task_name: str, config) -> str:
  d = os.path.join(workdir, task_name)
  os.makedirs(os.path.join(d, "shards"), exist_ok=True)
  # Temp files of shards that were in flight when a previous run died.
  for stale in glob.glob(os.path.join(d, "shards", "*.tmp-*")):
    os.remove(stale)
  path = os.path.join(d, "config.json")
  fp = json.dumps(_fingerprint(config), sort_keys=True, indent=1)
  if os.path.exists(path):
    with open(path) as fh:
      if fh.read() != fp:
        raise PipelineError(
          f"{d!r} holds labels from a different config; use a new --workdir "
          "(or delete it) to generate with this one"
        )
  else:
    with open(path + ".tmp", "w") as fh:
      fh.write(fp)
    os.replace(path + ".tmp", path)
  return d


def _progress(config, total: int, initial: int):
  from tqdm import tqdm

  return tqdm(
    total=total,
    initial=initial,
    unit="label",
    desc="labels",
    disable=not bool(config.progress),
    smoothing=0.1,
    dynamic_ncols=True,
  )


def worker_xla_flags() -> str:
  """``XLA_FLAGS`` for shard workers: the current flags plus single-threaded Eigen."""
  flags = os.environ.get("XLA_FLAGS", "")
  if "xla_cpu_multi_thread_eigen" in flags:
    return flags
  return f"{flags} {DETERMINISTIC_XLA_FLAG}".strip()


def _watch_parent(parent_pid: int) -> None:
  """Worker initializer: exit when the parent dies (a SIGKILLed run leaves no orphans)."""

  def watch():
    while os.getppid() == parent_pid:
      time.sleep(0.5)
    os._exit(1)

  threading.Thread(target=watch, daemon=True).start()


@contextlib.contextmanager
def shard_pool(workers: int):
  """A pool of ``workers`` fresh processes running single-threaded XLA."""
  old = os.environ.get("XLA_FLAGS")
  # Workers are spawned (not forked: JAX is multithreaded) and read XLA_FLAGS at
  # start-up; the variable stays set while the pool may spawn them.
  os.environ["XLA_FLAGS"] = worker_xla_flags()
  pool = cf.ProcessPoolExecutor(
    workers,
    mp_context=multiprocessing.get_context("spawn"),
    initializer=_watch_parent,
    initargs=(os.getpid(),),
  )
  try:
    yield pool
  finally:
    pool.shutdown(wait=True, cancel_futures=True)
    if old is None:
      os.environ.pop("XLA_FLAGS", None)
    else:
      os.environ["XLA_FLAGS"] = old


def _run_local(config, jobs, task_dirs, bar, rows_per_shard):
  cfg = _as_dict(config)
  workers = int(config.local_workers)
  if workers <= 0:  # in this process (XLA's own threads; not bit-reproducible)
    for task_name, shard in jobs:
      rec = run_shard(cfg, task_name, shard)
      storage.write_shard(storage.shard_path(task_dirs[task_name], shard), rec)
      bar.update(rows_per_shard)
    return
  with shard_pool(min(workers, len(jobs))) as pool:
    futures = {pool.submit(run_shard, cfg, t, s): (t, s) for t, s in jobs}
    for fut in cf.as_completed(futures):
      task_name, shard = futures[fut]
      storage.write_shard(storage.shard_path(task_dirs[task_name], shard), fut.result())
      bar.update(rows_per_shard)


def _run_ray(config, jobs, task_dirs, bar, rows_per_shard):
  try:
    import ray
  except ImportError:
    raise PipelineError(
      "backend 'ray' needs ray: pip install 'metaval[ray]' (or 'ray[default]')"
    ) from None
  if not ray.is_initialized():
    address = str(config.ray_address) or None
    ray.init(
      address=address,
      num_cpus=None if address else (int(config.ray_num_cpus) or None),
      include_dashboard=False,
      log_to_driver=False,
    )
  # Same single-threaded XLA as the local workers, so both backends agree bit for bit.
  remote = ray.remote(num_cpus=1)(run_shard).options(
    runtime_env={"env_vars": {"XLA_FLAGS": worker_xla_flags()}}
  )
  cfg = _as_dict(config)
  pending = {remote.remote(cfg, t, s): (t, s) for t, s in jobs}
  while pending:
    done, _ = ray.wait(list(pending), num_returns=1)
    task_name, shard = pending.pop(done[0])
    storage.write_shard(storage.shard_path(task_dirs[task_name], shard), ray.get(done[0]))
    bar.update(rows_per_shard)


def generate(config, workdir: str) -> LabelSet | dict[str, LabelSet]:
  """Builds (or resumes) the label dataset in ``workdir`` and returns it loaded.

  Args:
    config: a ``labels`` config.
    workdir: output directory; one sub-directory per task.

  Returns:
    The ``LabelSet`` for a single-task config; for a multi-task config (e.g.
    ``suite``) a dict task name -> ``LabelSet``.
  """
  _check_config(config)
  names = task_names(config)
  dirs = {t: _prepare_task_dir(workdir, t, config) for t in names}
  n_shards = int(config.num_shards)
  rows_per_shard = int(config.pairs_per_shard) * len(config.learners)
  jobs = [
    (t, s) for t in names for s in range(n_shards) if s not in storage.finished_shards(dirs[t])
  ]
  total = len(names) * n_shards * rows_per_shard
  t0 = time.perf_counter()
  with _progress(config, total, total - len(jobs) * rows_per_shard) as bar:
    if jobs:
      (_run_ray if config.backend == "ray" else _run_local)(config, jobs, dirs, bar, rows_per_shard)
  seconds = time.perf_counter() - t0
  for t in names:
    storage.build_dataset(dirs[t], n_shards)
  if jobs:
    done = len(jobs) * rows_per_shard
    print(
      f"generated {done} labels in {seconds:.1f}s ({done / seconds:.1f} labels/s); "
      f"dataset: {workdir}"
    )
  loaded = {t: storage.load_task_dir(dirs[t]) for t in names}
  return loaded[names[0]] if len(names) == 1 else loaded


def run(config, workdir: str) -> LabelSet | dict[str, LabelSet]:
  """``metaval generate``: builds or resumes the dataset and prints a summary."""
  out = generate(config, workdir)
  sets = out if isinstance(out, dict) else {out.task: out}
  for name, ls in sets.items():
    main = ls.metric_names[0]
    imp = ls.improvement[:, ls.metric_index(main)]
    print(
      f"{name}: {len(ls)} labels ({len(set(ls.learner))} learner(s), K={ls.num_seeds}), "
      f"{main} improvement mean {imp.mean():+.4f}, positive {np.mean(imp > 0):.0%}"
    )
  return out
