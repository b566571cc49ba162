"""Benchmark: batched JAX learners vs a fair scikit-learn loop, side by side.

Measures, in one run on this machine:
  * the matmul roofline: GFLOP/s of a 2048x2048 f32 matmul in XLA and in numpy;
  * models/s, GFLOP/s and mean test accuracy of metaval's linear and MLP learners
    at batch sizes 1/16/64/256 (one compiled program per batch size; compile time
    excluded and reported separately);
  * the same subsets trained by scikit-learn (LogisticRegression with the same
    objective, MLPClassifier with the same architecture and epochs), one BLAS
    thread per process and both cores through joblib (loky).

FLOPs are counted as executed: full-batch training evaluates every pool row and
multiplies by the mask, so a step costs the training FLOPs (forward + backward,
less the first layer's never-computed input gradient) of all N pool rows.

Usage:
  .venv/bin/python scripts/bench_learners.py [--models 256] [--out runs/bench]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
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
  times = []
  for _ in range(repeats):
    t = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t)
  return min(times)


def roofline(n: int = 2048, repeats: int = 5) -> dict:
  a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
  b = np.random.default_rng(1).standard_normal((n, n), dtype=np.float32)
  flops = 2 * n**3
  aj, bj = jnp.asarray(a), jnp.asarray(b)
  mm = jax.jit(jnp.dot)
  mm(aj, bj).block_until_ready()
  t_xla = best_of(lambda: mm(aj, bj).block_until_ready(), repeats)
  t_np = best_of(lambda: a @ b, repeats)
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
  flops = per_example * task.pool_size * spec.steps * m
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
        alpha=spec.l2,
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


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--batches", default="1,16,64,256")
  p.add_argument("--subset", type=int, default=500)
  p.add_argument("--sklearn-models", type=int, default=64)
  p.add_argument("--repeats", type=int, default=3)
  p.add_argument("--out", default="runs/bench")
  args = p.parse_args()
  task = get_task("digits")
  batches = [int(b) for b in args.batches.split(",")]
  info = {
    "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    "cpu": env.cpu_model(),
    "cores": os.cpu_count(),
    "jax": jax.__version__,
    "versions": env.versions(),
    "task": "digits",
    "pool": task.pool_size,
    "subset": args.subset,
  }
  print(f"machine: {info['cpu']}, {info['cores']} cores; jax {info['jax']}")
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
  uio.write_text(os.path.join(args.out, "learners.json"), json.dumps(out, indent=2))
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


if __name__ == "__main__":
  main()
