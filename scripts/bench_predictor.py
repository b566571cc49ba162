"""Query latency of the trained predictor against one retraining label for the same pair.

Usage:
  python scripts/bench_predictor.py [--predictor runs/predictor_quick] [--repeats 50]

One "retraining label" is what the label pipeline computes per pair
(``metaval.labeling.label_pairs``): K paired seeds, each training the learner on B
and on B ∪ S. Both sides are timed warm (compilation excluded, the median of
several calls) and the label is also timed cold (first call, compilation
included). Writes ``runs/bench/predictor_latency.{json,md}`` and prints the table.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import time

import numpy as np

import metaval.api as api
from metaval.data import samplers
from metaval.labeling import label_pairs
from metaval.learners.models import LearnerSpec
from metaval.util import env
from metaval.util import io as uio


def _median_time(fn, repeats: int) -> float:
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t0)
  return float(np.median(times))


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--predictor", default="runs/predictor_quick")
  ap.add_argument("--kind", default="clean")
  ap.add_argument("--size", type=int, default=100)
  ap.add_argument("--seeds", type=int, default=0, help="K for the label (0: as in training)")
  ap.add_argument("--repeats", type=int, default=50)
  ap.add_argument(
    "--label-learner",
    default="",
    help="JSON LearnerSpec fields for the label instead of the predictor's learner",
  )
  ap.add_argument("--label-repeats", type=int, default=3)
  ap.add_argument("--out", default="runs/bench")
  args = ap.parse_args()

  p = api.load_predictor(args.predictor)
  task, info = p._task(None)
  base = np.asarray(info["base_indices"], np.int64)
  supp = samplers.sample_supplement(args.kind, task, base, np.random.default_rng(0), size=args.size)
  fields = {f.name for f in dataclasses.fields(LearnerSpec)}
  spec = LearnerSpec(**{k: v for k, v in info["learner"].items() if k in fields})
  if args.label_learner:
    spec = LearnerSpec(**{**spec.to_dict(), **json.loads(args.label_learner)})
  k = args.seeds or int(p.meta.get("extra", {}).get("num_seeds", 1) or 1)

  # Predictor: the first call compiles the forward pass and featurises B (cached).
  t0 = time.perf_counter()
  facts = p.value((supp.x, supp.y))
  cold_query = time.perf_counter() - t0
  warm_query = _median_time(lambda: p.value((supp.x, supp.y)), args.repeats)

  def label():
    return label_pairs(task, [base], [supp], spec, num_seeds=k, chunk=max(2, 2 * k))

  t0 = time.perf_counter()
  mb, mf = label()
  cold_label = time.perf_counter() - t0
  warm_label = _median_time(label, args.label_repeats)
  ti = 0  # first target metric
  # The label's metric order is metric_names(task); the predictor's first target.
  from metaval.learners.train import metric_names

  mi = metric_names(task).index(p.targets[ti])
  true = float((mf - mb)[0, :, mi].mean())
  result = {
    "date": datetime.datetime.now().isoformat(timespec="seconds"),
    "machine": {
      "nproc": os.cpu_count(),
      "cpu": env.cpu_model(),
      "load_avg_1m": os.getloadavg()[0],
      "versions": env.versions(),
    },
    "task": task.name,
    "kind": args.kind,
    "supplement_size": len(supp),
    "base_size": len(base),
    "learner": spec.to_dict(),
    "num_seeds": k,
    "query_warm_s": warm_query,
    "query_cold_s": cold_query,
    "label_warm_s": warm_label,
    "label_cold_s": cold_label,
    "speedup_warm": warm_label / warm_query,
    "speedup_cold_label_vs_warm_query": cold_label / warm_query,
    "predicted": facts.targets[ti].value,
    "label": true,
  }
  md = [
    f"Predictor query vs one retraining label ({task.name}, |B|={len(base)}, "
    f"{args.kind} |S|={len(supp)}, {spec.family} learner, K={k}); "
    f"{result['machine']['nproc']} x {result['machine']['cpu']}, "
    f"load {result['machine']['load_avg_1m']:.1f}, {result['date']}; "
    f"{env.format_versions(result['machine']['versions'])}",
    "",
    "| | predictor query | retraining label | ratio |",
    "|---|---:|---:|---:|",
    f"| warm (median) | {warm_query * 1e3:.2f} ms | {warm_label * 1e3:.1f} ms | "
    f"{result['speedup_warm']:.0f}x |",
    f"| cold (first call) | {cold_query * 1e3:.1f} ms | {cold_label * 1e3:.1f} ms | "
    f"{cold_label / cold_query:.0f}x |",
    "",
    f"predicted {p.targets[ti]} improvement {result['predicted']:+.4f}, "
    f"retraining label {result['label']:+.4f}",
  ]
  path = os.path.join(args.out, f"predictor_latency_{spec.family}_k{k}")
  uio.write_text(path + ".json", json.dumps(result, indent=2))
  uio.write_text(path + ".md", "\n".join(md) + "\n")
  print("\n".join(md))


if __name__ == "__main__":
  main()
