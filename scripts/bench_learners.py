"""Benchmark: batched JAX learners vs a fair scikit-learn loop, side by side.

Measures, in one run on this machine:
  * the matmul roofline: GFLOP/s of a 2048x2048 f32 matmul in XLA and in numpy;
  * models/s, GFLOP/s and mean test accuracy of metaval's linear and MLP learners
    at batch sizes 1/16/64/256 (one compiled program per batch size; compile time
    excluded and reported separately);
  * the same subsets trained by scikit-learn (LogisticRegression with the same
    objective, MLPClassifier with the same architecture and epochs), one BLAS
    thread per process and both cores through joblib (loky);
  * MLP labels (``--labels``): one label's 8 models (K=4 paired seeds on B of 400
    and B ∪ S with S of 100 digits points, default steps) at widths 32 and 256,
    as a share of the roofline measured in the same rounds, and against
    scikit-learn's ``MLPClassifier`` on the same sets (full-batch Adam, same
    width, learning rate, L2 objective and steps; 1 BLAS thread x 2 workers);
    and the same label made by one single-core process per core at once
    (pinned workers, as the label pipeline's local workers run, each label through
    ``metaval.pairs.label`` as the pipeline calls it), as labels/s and as a share
    of the same roofline.

FLOPs are useful FLOPs: rows really in a model's training set times the training
FLOPs of one example (forward + backward, less the first layer's never-computed
input gradient; ``metaval.learners.train_flops``), whatever rows the trainer
computes on.

Usage:
  .venv/bin/python scripts/bench_learners.py [--labels-only] [--out runs/bench]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
import os
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from joblib import Parallel, delayed, parallel_config
from threadpoolctl import threadpool_limits

from metaval.data import get_task
from metaval.learners import LearnerSpec, train_flops, train_many
from metaval.util import env
from metaval.util import io as uio

LINEAR = LearnerSpec("linear", steps=100, lr=0.1, l2=1e-3)
MLP = LearnerSpec("mlp", width=64, depth=1, steps=200, lr=0.01, l2=1e-4)


def best_of(fn, repeats: int) -> float:
  return best_wall_cpu(fn, repeats)[0]


def best_wall_cpu(fn, repeats: int) -> tuple[float, float]:
  """Least wall-clock and least CPU seconds (this process, all threads) of ``fn``.

  On a shared machine the wall clock measures our share of the cores; the CPU
  time measures the work (FLOPs per CPU-second), which load perturbs far less.
  """
  walls, cpus = [], []
  for _ in range(repeats):
    t, c = time.perf_counter(), time.process_time()
    fn()
    walls.append(time.perf_counter() - t)
    cpus.append(time.process_time() - c)
  return min(walls), min(cpus)


def _roofline_fn(n: int = 2048):
  """A compiled XLA matmul and its square f32 operand (``2 n^3`` FLOPs a call)."""
  a = jnp.asarray(np.random.default_rng(0).standard_normal((n, n), dtype=np.float32))
  mm = jax.jit(jnp.dot)
  mm(a, a).block_until_ready()
  return mm, a


def roofline(n: int = 2048, repeats: int = 5) -> dict:
  mm, aj = _roofline_fn(n)
  a = np.asarray(aj)
  flops = 2 * n**3
  t_xla = best_of(lambda: mm(aj, aj).block_until_ready(), repeats)
  t_np = best_of(lambda: a @ a, repeats)
  return {"xla_gflops": flops / t_xla / 1e9, "numpy_gflops": flops / t_np / 1e9}


def make_masks(n_models, pool, size, seed):
  rng = np.random.default_rng(seed)
  masks = np.zeros((n_models, pool), np.float32)
  for i in range(n_models):
    masks[i, rng.choice(pool, size, replace=False)] = 1.0
  return masks


def bench_metaval(task, spec, masks, repeats):
  m = masks.shape[0]
  keys = jax.random.split(jax.random.key(0), m)
  t = time.perf_counter()
  res = train_many(keys, task, masks, spec)  # compile + first run
  first = time.perf_counter() - t
  secs = best_of(lambda: train_many(keys, task, masks, spec), repeats)
  per_example = train_flops(spec, task.feature_dim, task.num_classes)
  flops = per_example * float((masks > 0).sum()) * spec.steps
  return {
    "seconds": secs,
    "compile_seconds": max(first - secs, 0.0),
    "models_per_s": m / secs,
    "gflops": flops / secs / 1e9,
    "accuracy": float(res.metrics["test/accuracy"].mean()),
  }


def _sk_fit(kind, x, y, xt, yt, idx, spec, seed):
  from sklearn.linear_model import LogisticRegression
  from sklearn.neural_network import MLPClassifier

  with threadpool_limits(1):
    if kind == "linear":
      # Same objective: mean CE + l2/2 |W|^2  <=>  C = 1 / (l2 * n).
      clf = LogisticRegression(C=1.0 / (spec.l2 * len(idx)), max_iter=1000)
    else:
      clf = MLPClassifier(
        hidden_layer_sizes=(spec.width,) * spec.depth,
        alpha=spec.l2 * len(idx),  # same objective: sklearn divides alpha's term by n
        learning_rate_init=spec.lr,
        batch_size=len(idx),  # full batch, as metaval trains
        max_iter=spec.steps,
        tol=0.0,
        n_iter_no_change=spec.steps + 1,
        random_state=seed,
      )
    clf.fit(x[idx], y[idx])
    return float((clf.predict(xt) == yt).mean())


def bench_sklearn(task, kind, spec, masks):
  import warnings

  from sklearn.exceptions import ConvergenceWarning

  xt, yt = task.evals["test"]
  subsets = [np.flatnonzero(m) for m in masks]
  t = time.perf_counter()
  with warnings.catch_warnings(), parallel_config(backend="loky", inner_max_num_threads=1):
    warnings.simplefilter("ignore", ConvergenceWarning)
    accs = Parallel(n_jobs=2)(
      delayed(_sk_fit)(kind, task.x, task.y, xt, yt, idx, spec, i) for i, idx in enumerate(subsets)
    )
  secs = time.perf_counter() - t
  return {"seconds": secs, "models_per_s": len(subsets) / secs, "accuracy": float(np.mean(accs))}


# ----------------------------------------------------------------------------
# MLP labels: one label's 8 models against the roofline and MLPClassifier.


def label_sets(task, base: int, supp: int, seeds: int, seed: int = 0):
  """Masks ``[2K, N]`` (K models on B, then K on B ∪ S), paired keys, and the sets."""
  perm = np.random.default_rng(seed).permutation(task.pool_size)
  b, s = perm[:base], perm[base : base + supp]
  masks = np.zeros((2 * seeds, task.pool_size), np.float32)
  masks[:, b] = 1.0
  masks[seeds:, s] = 1.0
  k = jax.random.split(jax.random.key(seed), seeds)
  keys = jnp.concatenate([k, k])  # paired: B and B ∪ S share each seed's key
  return masks, keys, [np.flatnonzero(m) for m in masks]


def _sk_mlp_fit(x, y, xt, yt, idx, spec, seed):
  """One full-batch Adam MLPClassifier fit on one BLAS thread: (seconds, accuracy)."""
  import warnings

  from sklearn.exceptions import ConvergenceWarning
  from sklearn.neural_network import MLPClassifier

  with threadpool_limits(1), warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)  # stopping at max_iter is the point
    clf = MLPClassifier(
      hidden_layer_sizes=(spec.width,) * spec.depth,
      solver="adam",
      alpha=spec.l2 * len(idx),  # same objective: sklearn divides alpha's term by n
      learning_rate_init=spec.lr,
      batch_size=len(idx),  # full batch: one Adam step per iteration
      max_iter=spec.steps,
      tol=0.0,
      n_iter_no_change=spec.steps + 1,  # never stops early: exactly `steps` steps
      shuffle=False,
      random_state=seed,
    )
    t, c = time.perf_counter(), time.process_time()
    clf.fit(x[idx], y[idx])
    secs, cpu = time.perf_counter() - t, time.process_time() - c
    return secs, cpu, float((clf.predict(xt) == yt).mean())


def sklearn_label(task, spec, subsets, seeds: int) -> dict:
  """The label's models fitted by scikit-learn, 2 worker processes x 1 BLAS thread."""
  xt, yt = task.evals["test"]
  t = time.perf_counter()
  with parallel_config(backend="loky", inner_max_num_threads=1):
    out = Parallel(n_jobs=2)(
      delayed(_sk_mlp_fit)(task.x, task.y, xt, yt, idx, spec, i % seeds)
      for i, idx in enumerate(subsets)
    )
  wall = time.perf_counter() - t
  return {
    "seconds": wall,
    "fit_seconds": [o[0] for o in out],
    "fit_cpu_seconds": [o[1] for o in out],
    "accuracy": [o[2] for o in out],
  }


def pinned_worker(args) -> None:
  """Child of ``pinned_labels``: compile, say ``ready``, wait for ``go``, time its labels.

  Each label goes through ``metaval.pairs.label``, the call the label pipeline makes
  (B's and B ∪ S's K models, each group on the rows it shares), on the same B and S
  as ``label_sets``.
  """
  from metaval.pairs.labels import label
  from metaval.pairs.pairs import Pairs

  task = get_task("digits")
  spec = LearnerSpec("mlp", width=args.pinned_worker)
  perm = np.random.default_rng(args.worker_seed).permutation(task.pool_size)
  b, s = perm[: args.base], perm[args.base : args.base + args.supp]
  pairs = Pairs.from_lists([b], [s], [task.x[s]], [task.y[s]], ["clean"])
  label(task, pairs, spec, num_seeds=args.seeds)  # compile and warm up
  print("ready", flush=True)
  sys.stdin.readline()
  t, c = time.perf_counter(), time.process_time()
  for _ in range(args.worker_labels):
    label(task, pairs, spec, num_seeds=args.seeds)
  out = {"seconds": time.perf_counter() - t, "cpu_seconds": time.process_time() - c}
  out["cores"] = sorted(os.sched_getaffinity(0))
  print(json.dumps(out), flush=True)


def pinned_labels(width: int, labels: int, base: int, supp: int, seeds: int) -> dict:
  """Labels/s of one single-core process per core, all started at once.

  Each worker is pinned to its core before Python starts (so XLA sees one CPU),
  labels its own pairs ``labels`` times after compiling, and the wall clock runs
  from the common start to the last worker's end: the machine's label throughput
  when, as in the label pipeline's local workers, each core trains its own models.
  """
  cores = sorted(os.sched_getaffinity(0))
  cmd = [sys.executable, os.path.abspath(__file__), "--pinned-worker", str(width)]
  cmd += ["--base", str(base), "--supp", str(supp), "--seeds", str(seeds)]
  cmd += ["--worker-labels", str(labels)]
  # A bare interpreter pins itself and execs the worker (affinity survives exec), so
  # nothing runs between fork and exec in this multithreaded (JAX) process.
  pin = "import os, sys; os.sched_setaffinity(0, {int(sys.argv[1])}); os.execv(sys.argv[2], sys.argv[2:])"
  procs = [
    subprocess.Popen(
      [sys.executable, "-c", pin, str(core)] + cmd + ["--worker-seed", str(i)],
      stdin=subprocess.PIPE,
      stdout=subprocess.PIPE,
      text=True,
    )
    for i, core in enumerate(cores)
  ]
  for proc in procs:
    while (line := proc.stdout.readline()) and line.strip() != "ready":
      pass
    if not line:
      raise RuntimeError(f"pinned label worker exited with {proc.wait()}")
  t = time.perf_counter()
  for proc in procs:
    proc.stdin.write("go\n")
    proc.stdin.flush()
  res = [json.loads(proc.stdout.readline()) for proc in procs]
  wall = time.perf_counter() - t
  for proc in procs:
    proc.wait()
  n = labels * len(procs)
  return {
    "workers": len(procs),
    "labels": n,
    "seconds": wall,
    "labels_per_s": n / wall,
    "worker_seconds": [r["seconds"] for r in res],
    "cpu_seconds": sum(r["cpu_seconds"] for r in res),
    "worker_cores": [r["cores"] for r in res],
  }


def bench_mlp_labels(task, widths, rounds: int, base: int, supp: int, seeds: int) -> dict:
  """Rounds of (roofline, JAX label, dense-pool JAX label, scikit-learn label) per width."""
  masks, keys, subsets = label_sets(task, base, supp, seeds)
  rows = float(masks.sum())
  mm, a = _roofline_fn()
  specs = {w: LearnerSpec("mlp", width=w) for w in widths}
  for spec in specs.values():  # compile both programs, and start the worker processes
    train_many(keys, task, masks, spec)
    train_many(keys, task, masks, spec, gather=None)
  sklearn_label(task, dataclasses.replace(specs[widths[0]], steps=2), subsets, seeds)
  t = {w: {k: [] for k in ("roof", "jax", "dense", "sk", "sk_fit")} for w in widths}
  cpu = {w: {k: [] for k in ("roof", "jax", "sk_fit")} for w in widths}
  acc = {}
  loads = [os.getloadavg()[0]]
  for r in range(rounds):
    for w, spec in specs.items():
      for name, fn, reps in (
        ("roof", lambda: mm(a, a).block_until_ready(), 3),
        ("jax", lambda spec=spec: train_many(keys, task, masks, spec), 2),
      ):
        wall, c = best_wall_cpu(fn, reps)
        t[w][name].append(wall)
        cpu[w][name].append(c)
      t[w]["dense"].append(
        best_of(lambda spec=spec: train_many(keys, task, masks, spec, gather=None), 1)
      )
      sk = sklearn_label(task, spec, subsets, seeds)
      t[w]["sk"].append(sk["seconds"])
      t[w]["sk_fit"] += sk["fit_seconds"]
      cpu[w]["sk_fit"] += sk["fit_cpu_seconds"]
      if r == 0:
        res = train_many(keys, task, masks, spec).metrics["test/accuracy"]
        acc[w] = {"metaval": res, "sklearn": np.asarray(sk["accuracy"])}
      loads.append(os.getloadavg()[0])
      print(f"round {r} width {w}: {', '.join(f'{k} {v[-1]:.3f}s' for k, v in t[w].items())}")
  pinned = {}
  for w in widths:  # about 3 s of labels per worker; the roofline again just after
    n = max(3, math.ceil(3.0 / min(t[w]["jax"])))
    pinned[w] = pinned_labels(w, n, base, supp, seeds)
    t[w]["roof"].append(best_of(lambda: mm(a, a).block_until_ready(), 3))
    loads.append(os.getloadavg()[0])
    print(
      f"width {w}: {pinned[w]['workers']} pinned workers {pinned[w]['labels_per_s']:.2f} labels/s"
    )
  out = []
  models = len(subsets)
  for w, spec in specs.items():
    flops = train_flops(spec, task.feature_dim, task.num_classes) * rows * spec.steps
    roof = 2 * 2048**3 / min(t[w]["roof"]) / 1e9
    jax_s, dense_s, sk_s = min(t[w]["jax"]), min(t[w]["dense"]), min(t[w]["sk"])
    pin = pinned[w]
    per_round = [100 * (flops / j) / (2 * 2048**3 / q) for j, q in zip(t[w]["jax"], t[w]["roof"])]
    a_m, a_s = acc[w]["metaval"], acc[w]["sklearn"]
    roof_cpu = 2 * 2048**3 / min(cpu[w]["roof"]) / 1e9  # GFLOP per CPU-second
    jax_cpu, sk_cpu = min(cpu[w]["jax"]), float(np.median(cpu[w]["sk_fit"]))
    out.append(
      {
        "width": w,
        "steps": spec.steps,
        "models": models,
        "useful_rows": rows,
        "roofline_gflops": roof,
        "gflops": flops / jax_s / 1e9,
        "pct_roofline": 100 * flops / jax_s / 1e9 / roof,
        "pct_roofline_per_round": per_round,
        "dense_pool_pct_roofline": 100 * flops / dense_s / 1e9 / roof,
        "seconds": jax_s,
        "dense_pool_seconds": dense_s,
        "labels_per_s": 1 / jax_s,
        "sklearn_seconds": sk_s,
        "sklearn_labels_per_s": 1 / sk_s,
        "speedup_labels": sk_s / jax_s,
        "pinned_workers": pin["workers"],
        "pinned_labels_per_s": pin["labels_per_s"],
        "pinned_gflops": flops * pin["labels_per_s"] / 1e9,
        "pinned_pct_roofline": 100 * flops * pin["labels_per_s"] / 1e9 / roof,
        "pinned_speedup_labels": pin["labels_per_s"] * sk_s,
        "pinned_detail": pin,
        "ms_per_model_step": 1e3 * jax_s / (models * spec.steps),
        "sklearn_ms_per_model_step": 1e3 * sk_s / (models * spec.steps),
        "sklearn_ms_per_model_step_one_core": 1e3 * float(np.median(t[w]["sk_fit"])) / spec.steps,
        "roofline_gflop_per_cpu_s": roof_cpu,
        "gflop_per_cpu_s": flops / jax_cpu / 1e9,
        "cpu_pct_roofline": 100 * flops / jax_cpu / 1e9 / roof_cpu,
        "cpu_ms_per_model_step": 1e3 * jax_cpu / (models * spec.steps),
        "sklearn_cpu_ms_per_model_step": 1e3 * sk_cpu / spec.steps,
        "speedup_per_cpu_s": sk_cpu * models / jax_cpu,
        "accuracy": float(a_m.mean()),
        "sklearn_accuracy": float(a_s.mean()),
        "label": float(a_m[seeds:].mean() - a_m[:seeds].mean()),
        "sklearn_label": float(a_s[seeds:].mean() - a_s[:seeds].mean()),
      }
    )
  return {"rows": out, "load": {"min": min(loads), "max": max(loads), "mean": np.mean(loads)}}


def labels_markdown(rec: dict, setup: str) -> str:
  load = rec["load"]
  head = (
    f"{setup} Load average during the run {load['min']:.1f}-{load['max']:.1f} "
    f"(mean {load['mean']:.1f}) on {os.cpu_count()} cores."
  )
  table = uio.markdown_table(
    [
      {
        "width": str(r["width"]),
        "roofline GFLOP/s": f"{r['roofline_gflops']:.0f}",
        "useful GFLOP/s": f"{r['gflops']:.1f}",
        "% roofline": f"{r['pct_roofline']:.0f}%",
        "% roofline (CPU time)": f"{r['cpu_pct_roofline']:.0f}%",
        "dense pool": f"{r['dense_pool_pct_roofline']:.0f}%",
        "labels/s": f"{r['labels_per_s']:.2f}",
        "sklearn labels/s": f"{r['sklearn_labels_per_s']:.2f}",
        "speed-up": f"{r['speedup_labels']:.1f}×",
        "pinned workers: labels/s": f"{r['pinned_labels_per_s']:.2f}",
        "pinned: % roofline": f"{r['pinned_pct_roofline']:.0f}%",
        "pinned: speed-up": f"{r['pinned_speedup_labels']:.1f}×",
        "ms/model-step": f"{r['ms_per_model_step']:.3f}",
        "sklearn ms/model-step": f"{r['sklearn_ms_per_model_step']:.3f}",
        "per CPU-second": f"{r['speedup_per_cpu_s']:.1f}×",
        "test acc": f"{r['accuracy']:.3f} / {r['sklearn_accuracy']:.3f}",
        "label Δacc": f"{r['label']:+.3f} / {r['sklearn_label']:+.3f}",
      }
      for r in rec["rows"]
    ]
  )
  return head + "\n\n" + table + "\n"


def run_families(task, args, info) -> None:
  """Linear and MLP learners by batch size against scikit-learn (learners.json/md)."""
  batches = [int(b) for b in args.batches.split(",")]
  roof = roofline()
  print(
    f"roofline 2048^2 matmul: XLA {roof['xla_gflops']:.1f} GFLOP/s, "
    f"numpy {roof['numpy_gflops']:.1f} GFLOP/s"
  )
  rows = []
  for family, spec in (("linear", LINEAR), ("mlp", MLP)):
    masks_sk = make_masks(args.sklearn_models, task.pool_size, args.subset, seed=99)
    sk = bench_sklearn(task, family, spec, masks_sk)
    # metaval on the very same subsets for the accuracy comparison
    mv_same = bench_metaval(task, spec, masks_sk, 1)
    for b in batches:
      masks = make_masks(b, task.pool_size, args.subset, seed=b)
      r = bench_metaval(task, spec, masks, args.repeats)
      row = {
        "family": family,
        "batch": b,
        "models_per_s": r["models_per_s"],
        "gflops": r["gflops"],
        "pct_roofline": 100 * r["gflops"] / roof["xla_gflops"],
        "compile_s": r["compile_seconds"],
        "accuracy": r["accuracy"],
        "sklearn_models_per_s": sk["models_per_s"],
        "speedup_vs_sklearn": r["models_per_s"] / sk["models_per_s"],
      }
      rows.append(row)
      print(
        f"{family:6s} batch {b:4d}: {row['models_per_s']:8.1f} models/s "
        f"{row['gflops']:7.1f} GFLOP/s ({row['pct_roofline']:5.1f}% roofline) "
        f"acc {row['accuracy']:.3f} | sklearn {sk['models_per_s']:.1f} models/s -> "
        f"{row['speedup_vs_sklearn']:.1f}x"
      )
    info[f"{family}_same_subsets"] = {
      "metaval_accuracy": mv_same["accuracy"],
      "sklearn_accuracy": sk["accuracy"],
      "sklearn_models_per_s": sk["models_per_s"],
      "models": args.sklearn_models,
    }
    print(
      f"{family:6s} same {args.sklearn_models} subsets: metaval acc "
      f"{mv_same['accuracy']:.4f} vs sklearn acc {sk['accuracy']:.4f}"
    )
  out = {
    "info": info,
    "roofline": roof,
    "rows": rows,
    "specs": {"linear": LINEAR.to_dict(), "mlp": MLP.to_dict()},
  }
  uio.write_json(os.path.join(args.out, "learners.json"), out)
  md = [
    f"Machine: {info['cpu']}, {info['cores']} cores, {env.format_versions(info['versions'])}, "
    f"{info['date']}. "
    f"Roofline (2048² f32 matmul): XLA {roof['xla_gflops']:.0f} GFLOP/s, "
    f"numpy {roof['numpy_gflops']:.0f} GFLOP/s. Digits, {args.subset}-point subsets.",
    "",
    uio.markdown_table(
      [
        {
          "learner": r["family"],
          "batch": str(r["batch"]),
          "models/s": f"{r['models_per_s']:.1f}",
          "GFLOP/s": f"{r['gflops']:.1f}",
          "% roofline": f"{r['pct_roofline']:.0f}%",
          "% roofline (CPU time)": f"{r['cpu_pct_roofline']:.0f}%",
          "test acc": f"{r['accuracy']:.3f}",
          "sklearn models/s": f"{r['sklearn_models_per_s']:.1f}",
          "speed-up": f"{r['speedup_vs_sklearn']:.1f}×",
        }
        for r in rows
      ]
    ),
    "",
  ]
  for fam in ("linear", "mlp"):
    s = info[f"{fam}_same_subsets"]
    md.append(
      f"- {fam}, same {s['models']} subsets: metaval test accuracy {s['metaval_accuracy']:.4f}, "
      f"scikit-learn {s['sklearn_accuracy']:.4f}."
    )
  uio.write_text(os.path.join(args.out, "learners.md"), "\n".join(md) + "\n")
  print("\n".join(md))


def run_labels(task, args, info) -> None:
  """MLP labels against the roofline and MLPClassifier (mlp_labels.json/md)."""
  widths = [int(w) for w in args.widths.split(",")]
  rec = bench_mlp_labels(task, widths, args.rounds, args.base, args.supp, args.seeds)
  setup = (
    f"Machine: {info['cpu']}, {info['cores']} cores, "
    f"{env.format_versions(info['versions'])}, {info['date']}. "
    f"One label = {2 * args.seeds} MLPs (K={args.seeds} paired seeds on B of {args.base} "
    f"and B ∪ S with S of {args.supp} digits points), {LearnerSpec().steps} full-batch "
    f"Adam steps; best of {args.rounds} interleaved rounds. Roofline: 2048² f32 XLA "
    "matmul, both cores, in the same rounds. scikit-learn: MLPClassifier, full-batch "
    "Adam, same width, learning rate, L2 objective and steps, 1 BLAS thread x 2 "
    "workers. Pinned workers: one single-core process per core (pinned before it "
    "starts, so XLA sees one CPU), each training its own labels, all started at once; "
    "labels/s over the common wall clock, % of the same 2-core roofline. "
    "Wall-clock columns compare our share of the shared cores; the CPU-time "
    "columns divide the same FLOPs by the CPU seconds each side spent (all threads of "
    "the process; scikit-learn: median fit x models), which the load perturbs far less. "
    "Accuracy and label cells: metaval / scikit-learn."
  )
  uio.write_json(os.path.join(args.out, "mlp_labels.json"), {"info": info, **rec})
  md = labels_markdown(rec, setup)
  uio.write_text(os.path.join(args.out, "mlp_labels.md"), md)
  print(md)


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--batches", default="1,16,64,256")
  p.add_argument("--subset", type=int, default=500)
  p.add_argument("--sklearn-models", type=int, default=64)
  p.add_argument("--repeats", type=int, default=3)
  p.add_argument("--labels-only", action="store_true", help="only the MLP label benchmark")
  p.add_argument("--widths", default="32,256", help="MLP widths of the label benchmark")
  p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (label benchmark)")
  p.add_argument("--base", type=int, default=400, help="|B| (label benchmark)")
  p.add_argument("--supp", type=int, default=100, help="|S| (label benchmark)")
  p.add_argument("--seeds", type=int, default=4, help="K paired seeds (label benchmark)")
  p.add_argument("--out", default="runs/bench")
  # Internal: the single-core label worker that ``pinned_labels`` starts.
  p.add_argument("--pinned-worker", type=int, default=0, help=argparse.SUPPRESS)
  p.add_argument("--worker-labels", type=int, default=1, help=argparse.SUPPRESS)
  p.add_argument("--worker-seed", type=int, default=0, help=argparse.SUPPRESS)
  args = p.parse_args()
  if args.pinned_worker:
    pinned_worker(args)
    return
  task = get_task("digits")
  info = {
    "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    **env.machine(),
    "task": "digits",
    "pool": task.pool_size,
    "subset": args.subset,
  }
  print(f"machine: {info['cpu']}, {info['cores']} cores; jax {info['jax']}")
  if not args.labels_only:
    run_families(task, args, info)
  run_labels(task, args, info)


if __name__ == "__main__":
  main()
