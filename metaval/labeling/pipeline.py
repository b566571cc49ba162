"""The label pipeline: sample (B, S) pairs, train on B and B ∪ S, store improvements.

``metaval generate --config labels:quick --workdir runs/labels`` cuts the
work into shards. A shard is a pure function of ``(config, task, shard index)``:
its pairs come from a numpy generator seeded with ``(seed, task id, shard)`` and
its training keys from ``metaval.pairs.shard_key`` (see ``shards.py``; the labels
are ``metaval.pairs.label``). Finished shards are written atomically; a rerun
skips them, so a crash loses at most the shards in flight and the resumed dataset
is identical to an uninterrupted one. A rerun first verifies every shard it would
reuse against its checksum; a damaged one is named, deleted and labelled again.

Shards run in worker processes with one-thread XLA and BLAS (local pool or Ray),
so both backends agree bit for bit and W workers use W cores.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import glob
import json
import multiprocessing
import os
import pickle
import sys
import tempfile
import threading
import time

import numpy as np

from metaval.data import samplers as samplers_lib
from metaval.data import task_from_config, task_slug
from metaval.data import tasks as tasks_lib
from metaval.labeling import storage
from metaval.labeling.schema import LabelError, LabelSet
from metaval.labeling.shards import (  # noqa: F401  (public names of the pipeline)
  PipelineError,
  _as_dict,
  label_options,
  label_pairs,
  learner_specs,
  run_shard,
  sample_shard_pairs,
  shard_pair_key,
  task_id,
  task_names,
)
from metaval.util import io as io_lib
from metaval.util import jaxcache

# Config fields that do not change the data (excluded from the fingerprint).
_RUNTIME_FIELDS = (
  "backend",
  "ray_address",
  "ray_num_cpus",
  "progress",
  "local_workers",
  "jax_cache",
)

# Multi-threaded XLA:CPU matrix products may split a long reduction (e.g. the
# weight gradient's sum over the pool) across threads and add the parts in the
# order they finish, so the last bits of a metric can change from run to run.
# Shard workers therefore run single-threaded XLA (one process per core), which
# makes every shard bit-for-bit reproducible and a resumed dataset identical.
DETERMINISTIC_XLA_FLAG = "--xla_cpu_multi_thread_eigen=false"

# Local workers receive the tasks the parent has built, up to this many bytes of
# arrays in all (larger tasks are built in each worker, as before).
PRIME_BYTES = 256 * 2**20


# ----------------------------------------------------------------------------
# Driver.


def _fingerprint(config) -> dict:
  d = _as_dict(config)
  if isinstance(d.get("task"), dict):  # unset task options (None) do not change the data
    d["task"] = {k: v for k, v in d["task"].items() if v is not None}
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
  d = os.path.join(workdir, task_slug(task_name))  # csv:/a/b.csv is no directory name
  os.makedirs(os.path.join(d, "shards"), exist_ok=True)
  # Temp files of shards that were in flight when a previous run died.
  for stale in glob.glob(os.path.join(d, "shards", "*.tmp-*")):
    os.remove(stale)
  path = os.path.join(d, "config.json")
  config_fields = _fingerprint(config)
  if os.path.exists(path):
    try:
      with open(path) as fh:
        stored = json.load(fh)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
      raise PipelineError(
        f"{path} is damaged ({str(e).splitlines()[0]}), so the labels in {d!r} cannot be "
        "matched to a config; generate into a new --workdir"
      ) from None
    if io_lib.fingerprint(stored) != io_lib.fingerprint(config_fields):
      raise PipelineError(
        f"{d!r} holds labels from a different config; use a new --workdir "
        "(or delete it) to generate with this one"
      )
  else:
    io_lib.write_json(path, config_fields, indent=1, sort_keys=True)
  return d


def _heal_shards(task_dir: str) -> None:
  """Verifies every finished shard; a damaged one is named, deleted and labelled again.

  A shard is a pure function of (config, task, shard), so the relabelled shard
  has the bytes the damaged one had before, and the dataset built from it is the
  original one.
  """
  for shard in sorted(storage.finished_shards(task_dir)):
    path = storage.shard_path(task_dir, shard)
    try:
      storage.verify_shard(path)
    except LabelError as e:
      print(f"warning: {e}; deleting it and labelling the shard again", file=sys.stderr)
      storage.remove_shard(path)


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


def worker_env() -> dict[str, str]:
  """Environment variables of a shard worker: one thread for XLA's kernels and for BLAS."""
  return {
    "XLA_FLAGS": worker_xla_flags(),
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
  }


_ONE_CORE = False


def one_core_xla() -> None:
  """Sizes this process's XLA:CPU thread pools for one core; call before JAX's first use.

  XLA sizes its intra-op pool by the CPUs the process may run on
  (``sched_getaffinity``); no ``XLA_FLAGS`` entry changes that. A shard worker
  with a pool per core runs part of its work on a second core, so W workers on W
  cores would fight for them (and one worker would look faster than one core).
  The pools are created while the process is pinned to one CPU; every thread is
  unpinned afterwards, so the OS still places the worker on any free core.
  """
  global _ONE_CORE
  if _ONE_CORE or not hasattr(os, "sched_setaffinity"):
    return
  import jax

  allowed = os.sched_getaffinity(0)
  os.sched_setaffinity(0, {min(allowed)})
  try:
    jax.devices()  # creates the CPU client and its thread pools
  finally:
    for tid in os.listdir("/proc/self/task"):
      with contextlib.suppress(OSError):  # a thread may have exited meanwhile
        os.sched_setaffinity(int(tid), allowed)
  _ONE_CORE = True


def _worker_init(parent_pid: int, tasks_file: str | None = None) -> None:
  """Local worker start-up: one-core XLA, the parent's tasks (read from the file
  ``shard_pool`` wrote), exit when the parent dies."""
  if tasks_file:
    with open(tasks_file, "rb") as f:
      for key, task in pickle.load(f):
        tasks_lib.prime(key, task)
  one_core_xla()
  _watch_parent(parent_pid)


def built_tasks(config) -> tuple:
  """``((task_key, Task), ...)`` for ``shard_pool``: a config's tasks, built here.

  Besides each task, the tasks its supplement kinds read (``out_of_domain`` draws
  other built-in tasks' inputs, built with the task's seed). Tasks beyond
  ``PRIME_BYTES`` of arrays in all are left out: a worker builds those itself
  rather than receive a copy through a pipe.
  """
  out, seen, total = [], set(), 0
  _, seed, options = tasks_lib.task_spec(config.task)
  for t in task_names(config):
    task = task_from_config(config.task, name=t)
    wanted = [(tasks_lib.task_key(t, seed, **options), task)]
    for other in samplers_lib.source_tasks(t, config.kinds):
      wanted.append((tasks_lib.task_key(other, task.seed), None))
    for key, built in wanted:
      if key in seen:
        continue
      built = tasks_lib.get_task(key[0], key[1]) if built is None else built
      total += tasks_lib.task_nbytes(built)
      if total > PRIME_BYTES:
        return tuple(out)
      seen.add(key)
      out.append((key, built))
  return tuple(out)


def _watch_parent(parent_pid: int) -> None:
  """Starts a thread that exits the worker when its parent dies (no orphans after SIGKILL)."""

  def watch():
    while os.getppid() == parent_pid:
      time.sleep(0.5)
    os._exit(1)

  threading.Thread(target=watch, daemon=True).start()


@contextlib.contextmanager
def shard_pool(workers: int, tasks: tuple = ()):
  """A pool of ``workers`` fresh processes, each running XLA and BLAS on one thread.

  Args:
    workers: processes.
    tasks: ``built_tasks(config)``: each worker starts with these tasks built.
  """
  # Workers are spawned (not forked: JAX is multithreaded) and read their
  # environment at start-up; the variables stay set while the pool may spawn them.
  # The tasks go through a file, not the spawn pipe: a worker reads its pipe only
  # after importing what the pickle names, so a large payload there held the parent
  # until each worker had imported, and the workers started one after another.
  with contextlib.ExitStack() as stack:
    tasks_file = None
    if tasks:
      folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="metaval-tasks-"))
      tasks_file = os.path.join(folder, "tasks.pkl")
      with open(tasks_file, "wb") as f:
        pickle.dump(tuple(tasks), f, protocol=pickle.HIGHEST_PROTOCOL)
    stack.enter_context(jaxcache.environ(worker_env()))
    pool = cf.ProcessPoolExecutor(
      workers,
      mp_context=multiprocessing.get_context("spawn"),
      initializer=_worker_init,
      initargs=(os.getpid(), tasks_file),
    )
    try:
      yield pool
    finally:
      pool.shutdown(wait=True, cancel_futures=True)


def _run_local(config, jobs, task_dirs, bar, rows_per_shard):
  cfg = _as_dict(config)
  workers = int(config.local_workers)
  if workers <= 0:  # in this process (XLA's own threads; not bit-reproducible)
    for task_name, shard in jobs:
      rec = run_shard(cfg, task_name, shard)
      storage.write_shard(storage.shard_path(task_dirs[task_name], shard), rec)
      bar.update(rows_per_shard)
    return
  cache = jaxcache.cache_env() if config.get("jax_cache", True) else {}
  with jaxcache.environ(cache), shard_pool(min(workers, len(jobs)), built_tasks(config)) as pool:
    futures = {pool.submit(run_shard, cfg, t, s): (t, s) for t, s in jobs}
    for fut in cf.as_completed(futures):
      task_name, shard = futures[fut]
      storage.write_shard(storage.shard_path(task_dirs[task_name], shard), fut.result())
      bar.update(rows_per_shard)


def init_ray(config) -> None:
  """Starts a local Ray (``ray_num_cpus`` CPUs) or joins ``ray_address``, unless Ray is up.

  Args:
    config: a ``labels`` config (``ray_address``, ``ray_num_cpus``).
  """
  try:
    import ray
  except ImportError:
    raise PipelineError(
      "backend 'ray' needs ray: pip install 'metaval[ray]' (or 'ray[default]')"
    ) from None
  if ray.is_initialized():
    return
  address = str(config.ray_address) or None
  try:
    ray.init(
      address=address,
      num_cpus=None if address else (int(config.ray_num_cpus) or None),
      include_dashboard=False,
      log_to_driver=False,
    )
  except ConnectionError as e:
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    raise PipelineError(f"cannot join the Ray cluster at {address!r}: {first}") from None


def _ray_shard(config, task_name: str, shard: int) -> dict[str, np.ndarray]:
  """``run_shard`` in a Ray worker, with XLA sized for the one CPU the task holds."""
  one_core_xla()
  return run_shard(config, task_name, shard)


def ray_shard_function():
  """``run_shard`` as a Ray remote function: one CPU per task, one-thread worker env."""
  import ray

  # Same one-thread XLA as the local workers, so both backends agree bit for bit.
  return ray.remote(num_cpus=1)(_ray_shard).options(runtime_env={"env_vars": worker_env()})


def _run_ray(config, jobs, task_dirs, bar, rows_per_shard):
  import ray

  init_ray(config)
  remote = ray_shard_function()
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
  for t in names:  # a bad task (a malformed csv:, a typo) fails here in one line, not in a worker
    task_from_config(config.task, name=t)
  dirs = {t: _prepare_task_dir(workdir, t, config) for t in names}
  for d in dirs.values():
    _heal_shards(d)
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
