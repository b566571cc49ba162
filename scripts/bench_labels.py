"""Benchmark: labels/s of the vmapped pipeline vs a scikit-learn loop, same pairs.

Command (about 1-2 min on 2 quiet CPU cores; run it twice for the cached cold figure):
  python scripts/bench_labels.py --shards 16

Both sides label the *same* (B, S) pairs (the ``quick_solved`` config's shards:
digits, the linear learner) and compute the same quantity: test accuracy and log-loss of the
model trained on B ∪ S minus that of the model trained on B. Both fit one B
model per base set and share it among the base's supplements.

* pipeline: ``pipeline.run_shard`` in 2 worker processes with single-threaded
  XLA, as ``metaval generate`` runs it, with the learner's ``--solver``
  (default ``lbfgs``: solved to the optimum by ``solve.solve_sets``, B ∪ S
  warm-started from B; ``adam`` gives the stepped learner of the ``quick`` config).
* scikit-learn: ``LogisticRegression`` with the linear learner's objective
  (weighted-mean cross-entropy + ``l2/2 ||W||^2``, bias unpenalised, i.e.
  ``C = 1 / (l2 * sum of weights)``, duplicates as ``sample_weight``), one BLAS
  thread per process (threadpoolctl) and joblib with 2 worker processes.

Both sides include pair sampling. Each side is timed cold and warm. Cold, the
pipeline is what ``metaval generate`` does from nothing: fresh workers (handed the
tasks the parent built) label the shards, start-up and compilation or cache loads
included; scikit-learn's cold time is its workers' first call (imports, task build)
plus its labelling. Warm, the pipeline's workers have labelled ``--warmup`` extra
shards each (enough to reach every program of the solver's tail) and the warm pass
must reproduce the cold pass's labels exactly. The joblib workers start only after
the pipeline's cold pass, so neither start-up shares the cores with the other. The
warm shards run in ``--rounds`` rounds that alternate which side goes first (ABBA), so
both see the same machine load; the workers' CPU seconds are recorded too
(labels per CPU second are less sensitive to other processes than wall time).
Compiled programs are kept in JAX's persistent cache (``--jax-cache``, default
``$METAVAL_CACHE/jax`` or ``~/.cache/metaval/jax``), and the solver's whole executables
beside it (``metaval.util.aot``), so a cold start after an earlier run loads them
instead of tracing and compiling; the JSON records how many of each existed at the
start (after an edit of metaval's source the kept executables are compiled again, once). Writes ``runs/bench/labels.{json,md}`` and prints the
table, with the machine and its load average. Spearman/Pearson compare the two
label sets pair by pair.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import time

import ml_collections
import numpy as np

from metaval.configlib import load
from metaval.data import get_task
from metaval.labeling import pipeline
from metaval.learners import LearnerSpec, metric_names
from metaval.learners.models import SOLVERS
from metaval.util import env, jaxcache
from metaval.util import io as io_lib


def _fit_eval(x, y, w, l2, x_te, y_te, num_classes):
  from sklearn.linear_model import LogisticRegression
  from sklearn.metrics import log_loss

  model = LogisticRegression(C=1.0 / (l2 * w.sum()), max_iter=1000, tol=1e-4)
  model.fit(x, y, sample_weight=w)
  proba = np.zeros((len(y_te), num_classes))
  proba[:, model.classes_] = model.predict_proba(x_te)
  acc = float(np.mean(proba.argmax(1) == y_te))
  return acc, -float(log_loss(y_te, np.clip(proba, 1e-12, 1.0), labels=np.arange(num_classes)))


def sklearn_shard(cfg_dict: dict, shard: int) -> np.ndarray:
  """``[P, 2]`` (Δ accuracy, Δ neg log-loss) for one shard's pairs, via scikit-learn."""
  from threadpoolctl import threadpool_limits

  with threadpool_limits(1):
    cfg = ml_collections.ConfigDict(cfg_dict)
    task = get_task(cfg.task.name, seed=cfg.task.seed)
    spec = LearnerSpec.from_config(next(iter(cfg.learners.values())))
    bases, supps, base_of = pipeline.sample_shard_pairs(cfg, task, shard)
    x_te, y_te = task.evals["test"]
    base_metrics = []
    for b in bases:
      w = np.ones(len(b))
      base_metrics.append(_fit_eval(task.x[b], task.y[b], w, spec.l2, x_te, y_te, task.num_classes))
    out = np.zeros((len(supps), 2))
    for i, s in enumerate(supps):
      b = bases[base_of[i]]
      x = np.concatenate([task.x[b], s.x])
      y = np.concatenate([task.y[b], s.y])
      full = _fit_eval(x, y, np.ones(len(y)), spec.l2, x_te, y_te, task.num_classes)
      out[i] = np.subtract(full, base_metrics[base_of[i]])
    return out


def _sklearn_timed(cfg_dict: dict, shard: int) -> tuple[np.ndarray, float]:
  c0 = time.process_time()
  out = sklearn_shard(cfg_dict, shard)
  return out, time.process_time() - c0


def _pipeline_timed(cfg_dict: dict, task_name: str, shard: int) -> tuple[dict, float]:
  c0 = time.process_time()
  rec = pipeline.run_shard(cfg_dict, task_name, shard)
  return rec, time.process_time() - c0


def _warm_worker(cfg_dict: dict) -> int:
  """A joblib worker's start-up: the task and the modules ``sklearn_shard`` uses."""
  import sklearn.linear_model  # noqa: F401
  import sklearn.metrics  # noqa: F401
  import threadpoolctl  # noqa: F401

  cfg = ml_collections.ConfigDict(cfg_dict)
  return get_task(cfg.task.name, seed=cfg.task.seed).pool_size


def main():
  # Imported here, not at the top: spawned workers import this script again, and
  # scipy.stats (under ``agreement``) would add most of a second to each one's start.
  from metaval.protocol import agreement

  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--config", default="labels:quick_solved")
  ap.add_argument("--solver", default="lbfgs", choices=SOLVERS, help="the learner's solver")
  ap.add_argument("--jax-cache", default=jaxcache.default_dir(), help="'' disables it")
  ap.add_argument("--shards", type=int, default=16)
  ap.add_argument("--rounds", type=int, default=2, help="ABBA rounds over the shards")
  ap.add_argument("--warmup", type=int, default=3, help="warm-up shards per worker")
  ap.add_argument("--out", default="runs/bench")
  ap.add_argument("overrides", nargs="*", help="config overrides, e.g. --config.seed=1")
  args, extra = ap.parse_known_args()
  args.overrides += extra
  from joblib import Parallel, delayed

  cfg = load(args.config, args.overrides)
  if "," in cfg.task.name or len(cfg.learners) != 1:
    raise SystemExit("the benchmark needs a single-task, single-learner config")
  next(iter(cfg.learners.values())).solver = args.solver
  cache_entries, kept = 0, 0
  if args.jax_cache:
    # Worker processes inherit this: JAX reads its flags from the environment.
    os.makedirs(args.jax_cache, exist_ok=True)
    os.environ["JAX_COMPILATION_CACHE_DIR"] = os.path.abspath(args.jax_cache)
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"  # cache every program
    cache_entries = jaxcache.entries(args.jax_cache)
    kept = jaxcache.kept(args.jax_cache)  # the solver's executables kept whole
  cfg_dict = cfg.to_dict()
  names = metric_names(get_task(cfg.task.name, seed=cfg.task.seed))
  cols = [names.index("test/accuracy"), names.index("test/neg_log_loss")]
  machine = {
    **env.machine(),
    "nproc": os.cpu_count(),
    "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    "loadavg_start": os.getloadavg(),
    "jax_cache_entries_at_start": cache_entries,
    "kept_executables_at_start": kept,
  }

  # Pipeline (vmapped JAX) the way `metaval generate` runs it: 2 worker processes
  # with single-threaded XLA; the first calls start the workers and compile (each
  # worker labels --warmup extra shards, not counted). scikit-learn: 2 joblib
  # workers with one BLAS thread each; their first call (imports, task build) is
  # timed separately, like compilation. Then the shards run in rounds that
  # alternate which side goes first, so both share the machine's load.
  seconds = {"pipeline": 0.0, "sklearn": 0.0}
  cpu = {"pipeline": 0.0, "sklearn": 0.0}
  recs, theirs = {}, {}
  shards_all = list(range(args.shards))
  t0 = time.perf_counter()  # building the tasks handed to the workers counts as start-up
  with contextlib.ExitStack() as stack:
    pool = stack.enter_context(pipeline.shard_pool(2, pipeline.built_tasks(cfg)))
    # Cold, as `metaval generate` runs from nothing: fresh workers label the shards,
    # start-up and compilation (or cache loads) included.
    n_all = len(shards_all)
    cold = list(
      pool.map(pipeline.run_shard, [cfg_dict] * n_all, [cfg.task.name] * n_all, shards_all)
    )
    t_cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    warm = [10_000 + i for i in range(2 * args.warmup)]
    list(pool.map(pipeline.run_shard, [cfg_dict] * len(warm), [cfg.task.name] * len(warm), warm))
    t_start = time.perf_counter() - t0
    # joblib starts its workers when the context opens: only now, so that neither
    # side's start-up shares the cores with the other's.
    t0 = time.perf_counter()
    par = stack.enter_context(Parallel(n_jobs=2))
    par(delayed(_warm_worker)(cfg_dict) for _ in range(2))
    t_sk_start = time.perf_counter() - t0

    def run_pipeline(shards):
      futs = {s: pool.submit(_pipeline_timed, cfg_dict, cfg.task.name, s) for s in shards}
      for s, f in futs.items():
        recs[s], c = f.result()
        cpu["pipeline"] += c

    def run_sklearn(shards):
      for s, (out, c) in zip(shards, par(delayed(_sklearn_timed)(cfg_dict, s) for s in shards)):
        theirs[s] = out
        cpu["sklearn"] += c

    rounds = np.array_split(np.arange(args.shards), max(1, args.rounds))
    for r, shards in enumerate(rounds):
      order = [("pipeline", run_pipeline), ("sklearn", run_sklearn)]
      for side, fn in order if r % 2 == 0 else order[::-1]:
        t0 = time.perf_counter()
        fn([int(s) for s in shards])
        seconds[side] += time.perf_counter() - t0
  t_warm, t_sk = seconds["pipeline"], seconds["sklearn"]
  for s, rec in zip(shards_all, cold):  # the cold pass labelled the same pairs identically
    if not np.array_equal(rec["metric_full"], recs[s]["metric_full"]):
      raise SystemExit(f"shard {s}: the cold and warm passes disagree")
  ours = np.concatenate(
    [(recs[s]["metric_full"] - recs[s]["metric_base"])[:, 0].mean(1)[:, cols] for s in sorted(recs)]
  )  # [P, 2] (mean over K)
  theirs = np.concatenate([theirs[s] for s in sorted(theirs)])
  machine["loadavg_end"] = os.getloadavg()

  n = len(ours)
  rates = {
    "pipeline (incl. compile)": n / t_cold,
    "pipeline (warm)": n / t_warm,
    "scikit-learn, joblib x2": n / t_sk,
    "scikit-learn, joblib x2 (incl. worker start)": n / (t_sk + t_sk_start),
  }
  per_cpu = {side: n / c for side, c in cpu.items()}
  agree = {
    m: agreement(ours[:, j], theirs[:, j]) for j, m in enumerate(["accuracy", "neg_log_loss"])
  }
  result = {
    "machine": machine,
    "config": args.config,
    "overrides": args.overrides,
    "warmup_shards_per_worker": args.warmup,
    "solver": args.solver,
    "learner": next(iter(cfg_dict["learners"].values())),
    "pairs": n,
    "seconds": {
      "pipeline": t_warm,
      "pipeline_cold": t_cold,
      "pipeline_warmup": t_start,
      "sklearn": t_sk,
      "sklearn_worker_start": t_sk_start,
    },
    "worker_cpu_seconds": cpu,
    "labels_per_cpu_s": per_cpu,
    "speedup_per_cpu_s": per_cpu["pipeline"] / per_cpu["sklearn"],
    "rounds": args.rounds,
    "labels_per_s": rates,
    "speedup_warm": rates["pipeline (warm)"] / rates["scikit-learn, joblib x2"],
    "speedup_incl_compile": rates["pipeline (incl. compile)"]
    / rates["scikit-learn, joblib x2 (incl. worker start)"],
    "agreement": agree,
    "mean_label": {
      "pipeline": ours.mean(0).tolist(),
      "sklearn": theirs.mean(0).tolist(),
    },
  }
  learner = json.dumps(next(iter(cfg_dict["learners"].values())))
  label = f"pipeline, vmapped JAX ({args.solver}), 2 procs x 1 thread"
  sk_label = "scikit-learn LogisticRegression, joblib 2 procs x 1 thread"
  timing_rows = [
    (f"{label} (cold: worker start + compile)", "pipeline (incl. compile)", t_cold),
    (f"{label} (warm workers)", "pipeline (warm)", t_warm),
    (
      f"{sk_label} (incl. worker start)",
      "scikit-learn, joblib x2 (incl. worker start)",
      t_sk + t_sk_start,
    ),
    (f"{sk_label} (warm workers)", "scikit-learn, joblib x2", t_sk),
  ]
  load_end = machine["loadavg_end"]
  text = "\n".join(
    [
      f"Labels benchmark ({args.config} {' '.join(args.overrides)}, {n} pairs of digits, "
      f"learner {learner}) on {machine['nproc']} x {machine['cpu']}, {machine['date']}, "
      f"load average (1, 5, 15 min) at start {machine['loadavg_start']}, at end {load_end}; "
      f"JAX cache entries at start: {cache_entries}, kept executables (metaval.util.aot): "
      f"{kept}; {env.format_versions(machine['versions'])}",
      "",
      io_lib.markdown_table(
        [{"method": m, "labels/s": rates[k], "seconds": t} for m, k, t in timing_rows],
        floatfmt=".1f",
      ),
      "",
      f"speed-up, warm vs warm: {result['speedup_warm']:.2f}x; "
      f"cold vs cold (compile / worker start included): {result['speedup_incl_compile']:.2f}x; "
      f"per worker CPU second (warm): {result['speedup_per_cpu_s']:.2f}x "
      f"({per_cpu['pipeline']:.1f} vs {per_cpu['sklearn']:.1f} labels per CPU s)",
      "",
      io_lib.markdown_table(
        [
          {
            "label": f"Δ test {m}",
            "Spearman": a["spearman"],
            "Pearson": a["pearson"],
            "MAE": f"{a['mae']:.4f}",
            "sign agreement": f"{a['sign_acc']:.2f}",
          }
          for m, a in agree.items()
        ]
      ),
    ]
  )
  io_lib.write_json(os.path.join(args.out, "labels.json"), result, indent=1)
  io_lib.write_text(os.path.join(args.out, "labels.md"), text + "\n")
  print(text)
  print(f"wrote {args.out}/labels.json and labels.md")


if __name__ == "__main__":
  main()
