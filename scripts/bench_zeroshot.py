"""Latency of the zero-shot value model vs the retraining label it replaces.

  python scripts/bench_zeroshot.py             # a few minutes on 2 CPU cores
  python scripts/bench_zeroshot.py --repeats 50 --label-seeds 4

Measures, in one run (so the ratio is taken under the same machine load):
* query p50/p90 of ``value()`` with |B| = 1,000 and |S| in {10, 100} on a 20-feature,
  5-class raw task (B's context cached, as after the first query);
* batched ``rank()`` throughput in sets per second (100 sets of |S| = 50, fresh sets in
  each of ``--rank-repeats`` calls: the median after the first, and the first call,
  which also pays for touching its working memory the first time);
* the width-256 MLP retraining label with K paired seeds (B and B ∪ S trained by the
  label engine, compiled program reused: the second of two calls is timed);
and prints the ratio label / p50 next to the load average; then (``--sweep``, on by
default) how the query's p50 grows with |B| in {100, 1,000, 10,000} and |S| in {10,
100, 1,000}, as a table and a figure (``<out>.png``). Every time is taken both
on the wall clock and as this process's CPU time: on a shared machine the wall clock
is inflated by other jobs, the CPU time much less (the label engine's XLA threads
count in full, so its CPU ratio is the cost one core pays). Writes JSON and markdown
(``--out``, default ``experiments/results/bench/zeroshot_latency``).
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

import metaval
from metaval.data.tasks import classification_task
from metaval.learners.models import LearnerSpec
from metaval.pairs.labels import label
from metaval.pairs.pairs import Pairs
from metaval.util.env import machine


def _raw(rng, n, width, classes, centres):
  y = rng.integers(0, classes, n)
  return centres[y] + rng.normal(0, 1.0, (n, width)), y


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--repeats", type=int, default=30)
  ap.add_argument("--label-seeds", type=int, default=4)
  ap.add_argument("--rank-repeats", type=int, default=6, help="rank() calls (the first apart)")
  ap.add_argument("--out", default="experiments/results/bench/zeroshot_latency")
  ap.add_argument("--sweep", action=argparse.BooleanOptionalAction, default=True)
  ap.add_argument("--sweep-repeats", type=int, default=15, help="queries per sweep cell")
  args = ap.parse_args()
  rng = np.random.default_rng(0)
  width, classes = 20, 5
  centres = rng.normal(0, 1.5, (classes, width))
  base = _raw(rng, 1000, width, classes, centres)
  ev = _raw(rng, 300, width, classes, centres)
  p = metaval.load_predictor()
  out = {"machine": machine(), "load_average_start": [round(v, 2) for v in os.getloadavg()]}
  p.value(_raw(rng, 10, width, classes, centres), base=base, eval=ev)  # B's context
  for n_s in (10, 100):
    wall, cpu = _queries(p, rng, centres, base, ev, n_s, args.repeats)
    out[f"query_ms_p50_S{n_s}"] = 1e3 * float(np.median(wall))
    out[f"query_ms_p90_S{n_s}"] = 1e3 * float(np.percentile(wall, 90))
    out[f"query_cpu_ms_p50_S{n_s}"] = 1e3 * float(np.median(cpu))
    print(
      f"|S| = {n_s}: p50 {out[f'query_ms_p50_S{n_s}']:.1f} ms wall, "
      f"{out[f'query_cpu_ms_p50_S{n_s}']:.1f} ms CPU",
      flush=True,
    )
  wall, cpu = [], []
  for _ in range(args.rank_repeats):  # fresh sets each call; the first call is reported apart
    sets = [_raw(rng, 50, width, classes, centres) for _ in range(100)]
    t0, c0 = time.perf_counter(), time.process_time()
    p.rank(sets, base=base, eval=ev)
    wall.append(len(sets) / (time.perf_counter() - t0))
    cpu.append(len(sets) / (time.process_time() - c0))
  out["rank_first_sets_per_s"] = wall[0]
  out["rank_sets_per_s"] = float(np.median(wall[1:] or wall))
  out["rank_sets_per_cpu_s"] = float(np.median(cpu[1:] or cpu))
  print(
    f"rank: {out['rank_sets_per_s']:.0f} sets/s (median of {len(wall) - 1} calls; first call "
    f"{out['rank_first_sets_per_s']:.0f}), {out['rank_sets_per_cpu_s']:.0f} per CPU s",
    flush=True,
  )

  if args.sweep:  # before the label: XLA's threads, once started, share the cores a while
    out["sweep"] = _sweep(p, rng, centres, ev, args.sweep_repeats)

  # The label it replaces: MLP-256, K paired seeds, B (1,000) vs B ∪ S (100).
  x = np.r_[base[0], ev[0]].astype(np.float32)
  y = np.r_[base[1], ev[1]]
  task = classification_task("bench", x[:1000], y[:1000], x_test=x[1000:], y_test=y[1000:])
  s = _raw(rng, 100, width, classes, centres)
  pairs = Pairs.from_lists(
    [np.arange(1000)], [np.full(100, -1)], [s[0].astype(np.float32)], [s[1]], ["clean"]
  )
  spec = LearnerSpec(family="mlp", width=256, steps=200)
  label(task, pairs, spec, num_seeds=args.label_seeds)  # compile
  t0, c0 = time.perf_counter(), time.process_time()
  label(task, pairs, spec, num_seeds=args.label_seeds)
  out["label_mlp256_s"] = time.perf_counter() - t0
  out["label_mlp256_cpu_s"] = time.process_time() - c0
  out["speedup_vs_label"] = out["label_mlp256_s"] / (out["query_ms_p50_S100"] / 1e3)
  out["cpu_speedup_vs_label"] = out["label_mlp256_cpu_s"] / (out["query_cpu_ms_p50_S100"] / 1e3)
  out["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
  print(json.dumps(out, indent=2))
  _write(args.out, out, args.label_seeds)


SWEEP_B = (100, 1_000, 10_000)
SWEEP_S = (10, 100, 1_000)


def _queries(p, rng, centres, base, ev, n_s: int, repeats: int) -> tuple[list, list]:
  """Wall and CPU seconds of ``repeats`` ``value()`` calls, a fresh S of ``n_s`` each."""
  wall, cpu = [], []
  for _ in range(repeats):
    s = _raw(rng, n_s, centres.shape[1], centres.shape[0], centres)
    t0, c0 = time.perf_counter(), time.process_time()
    p.value(s, base=base, eval=ev)
    wall.append(time.perf_counter() - t0)
    cpu.append(time.process_time() - c0)
  return wall, cpu


def _sweep(p, rng, centres, ev, repeats: int) -> list[dict]:
  """p50 wall time of ``value()`` per (|B|, |S|), B's context cached (built first)."""
  width, classes = centres.shape[1], centres.shape[0]
  rows = []
  for n_b in SWEEP_B:
    base = _raw(rng, n_b, width, classes, centres)
    p.value(_raw(rng, 10, width, classes, centres), base=base, eval=ev)
    for n_s in SWEEP_S:
      wall, _ = _queries(p, rng, centres, base, ev, n_s, repeats)
      rows.append({"base": n_b, "supplement": n_s, "p50_ms": 1e3 * float(np.median(wall))})
      print(f"sweep |B| = {n_b}, |S| = {n_s}: p50 {rows[-1]['p50_ms']:.1f} ms", flush=True)
  return rows


def _figure(stem: str, sweep: list[dict]) -> None:
  import matplotlib

  matplotlib.use("Agg", force=False)
  import matplotlib.pyplot as plt

  from metaval.util.io import save_figure

  fig, ax = plt.subplots(figsize=(5.5, 3.6))
  for n_b in SWEEP_B:
    pts = [r for r in sweep if r["base"] == n_b]
    ax.plot(
      [r["supplement"] for r in pts], [r["p50_ms"] for r in pts], "o-", label=f"|B| = {n_b:,}"
    )
  ax.axhline(2.0, color="grey", ls="--", lw=1, label="target (|S| <= 100, |B| <= 1,000)")
  ax.set(xscale="log", yscale="log", xlabel="|S| (points valued)", ylabel="value() p50, ms")
  ax.set_title("Zero-shot query latency, B's context cached", fontsize=10)
  ax.legend(fontsize=8)
  save_figure(fig, stem + ".png")
  plt.close(fig)


def _write(stem: str, out: dict, seeds: int) -> None:
  from metaval.util.io import markdown_table, write_json, write_text

  write_json(stem + ".json", out)
  cols = ("measure", "wall clock", "CPU time")
  cells = [
    ("value(), |S| = 10, p50", f"{out['query_ms_p50_S10']:.1f} ms", f"{out['query_cpu_ms_p50_S10']:.1f} ms"),
    ("value(), |S| = 100, p50", f"{out['query_ms_p50_S100']:.1f} ms", f"{out['query_cpu_ms_p50_S100']:.1f} ms"),
    ("rank() of 100 sets (|S| = 50)", f"{out['rank_sets_per_s']:.0f} sets/s", f"{out['rank_sets_per_cpu_s']:.0f} sets/CPU s"),
    ("rank(), its first call", f"{out['rank_first_sets_per_s']:.0f} sets/s", ""),
    (f"MLP-256 retraining label, K = {seeds}", f"{out['label_mlp256_s']:.2f} s", f"{out['label_mlp256_cpu_s']:.2f} s"),
    ("label / query (|S| = 100)", f"{out['speedup_vs_label']:.0f}x", f"{out['cpu_speedup_vs_label']:.0f}x"),
  ]  # fmt: skip
  rows = [dict(zip(cols, c)) for c in cells]
  m = out["machine"]
  sweep = ""
  if out.get("sweep"):
    _figure(stem, out["sweep"])
    scols = ("|B|", *(f"|S| = {n:,}" for n in SWEEP_S))
    srows = [
      {"|B|": f"{n_b:,}", **{f"|S| = {r['supplement']:,}": f"{r['p50_ms']:.1f} ms"
                            for r in out["sweep"] if r["base"] == n_b}}
      for n_b in SWEEP_B
    ]  # fmt: skip
    png = os.path.basename(stem) + ".png"
    sweep = (
      "\n\nHow a query grows with the sets' sizes (p50 wall time of `value()`, "
      "B's context cached, evaluation set of 300):\n\n"
      + markdown_table(srows, scols)
      + f"\n\n![{png}]({png})"
    )
  text = (
    "# Zero-shot value model: query latency vs the retraining label\n\n"
    "`python scripts/bench_zeroshot.py` (|B| = 1,000, 20 raw features, 5 classes, "
    "evaluation set of 300; B's context cached).\n\n"
    + markdown_table(rows, cols)
    + sweep
    + f"\n\nMachine: {json.dumps(m)}; load average (1, 5, 15 min) at the start "
    f"{out['load_average_start']}, at the end {out['load_average_end']}.\n"
  )
  write_text(stem + ".md", text)


if __name__ == "__main__":
  main()
