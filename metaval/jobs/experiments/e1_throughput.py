"""E1: label throughput — the vmapped pipeline vs scikit-learn, and vs pyDVL/OpenDataVal.

quick: 2 label shards and metaval's own baselines on a 100-point problem (no peer
libraries: CI has no benchmark environment); full: 16 label shards and the
head-to-head per-point benchmark against pyDVL and OpenDataVal (needs
``scripts/setup_bench_env.sh``), both on digits. Each part runs as its benchmark
script in a subprocess, so the two sides of every ratio share one machine state.
"""

import json
import os
import subprocess
import sys

from metaval.errors import MetavalError
from metaval.jobs.experiment import Result

# The benchmark scripts belong to a checkout, not to the installed package.
SCRIPTS = "scripts"

TITLE = "E1 label throughput: vmapped pipeline vs scikit-learn, pyDVL and OpenDataVal"
CLAIM = (
  "Labels/s of the JAX pipeline against a fair scikit-learn loop on identical pairs "
  "(one BLAS thread per process, both cores through joblib), and per-point valuation "
  "fits/s against pyDVL and OpenDataVal on digits with 10% flipped labels."
)


def _script(name: str, args: list[str]) -> None:
  path = os.path.join(SCRIPTS, name)
  if not os.path.isfile(path):
    raise MetavalError(
      f"E1 runs the benchmark script {path}: run it from a metaval checkout's root"
    )
  cmd = [sys.executable, path, *args]
  print("[e1] " + " ".join(cmd), flush=True)
  subprocess.run(cmd, check=True)


def run(mode: str, workdir: str) -> Result:
  quick = mode == "quick"
  _script("bench_labels.py", ["--shards", "2" if quick else "16", "--out", workdir])
  with open(os.path.join(workdir, "labels.json")) as f:
    lab = json.load(f)
  base_args = ["--out", workdir]
  if quick:
    base_args += [
      "--libs",
      "metaval",
      "--methods",
      "loo",
      "knn_shapley",
      "banzhaf",
      "--n-train",
      "100",
      "--banzhaf-samples",
      "128",
    ]
  else:
    base_args += ["--libs", "metaval", "pydvl", "opendataval"]
  _script("bench_baselines.py", base_args)
  with open(os.path.join(workdir, "baselines.json")) as f:
    base = json.load(f)
  rows = [
    {
      "benchmark": "labels (digits, linear learner)",
      "library": name,
      "rate": rate,
      "unit": "labels/s",
    }
    for name, rate in lab["labels_per_s"].items()
  ]
  for r in base["rows"]:
    rows.append(
      {
        "benchmark": f"per-point {r['method']}",
        "library": r["library"],
        "rate": r.get("fits_per_s", float("nan")) if r.get("fits") else float("nan"),
        "unit": "fits/s",
        "wall_s": r.get("wall_s"),
        "fits": r.get("fits"),
        "precision@k": r.get("precision_at_k"),
        "f1": r.get("f1"),
        "auroc": r.get("auroc"),
        "load_1m": r.get("load_1m"),
        "note": r.get("note", ""),
      }
    )
  acc = lab["agreement"]["accuracy"]
  notes = [
    f"Labels: pipeline vs scikit-learn speed-up {lab['speedup_warm']:.2f}x warm, "
    f"{lab['speedup_incl_compile']:.2f}x including compilation / worker start, on "
    f"{lab['pairs']} identical pairs; Spearman between the two label sets "
    f"{acc['spearman']:.3f} (Δ test accuracy), "
    f"{lab['agreement']['neg_log_loss']['spearman']:.3f} (Δ log-loss).",
    f"Load average at the start of the label benchmark: {lab['machine']['loadavg_start'][0]:.1f}.",
  ]
  for r in base["rows"]:
    if (
      r["library"] != "metaval"
      and r.get("metaval_speedup")
      and not r.get("note", "").startswith("failed")
    ):
      ratio = r.get("fits_per_s_ratio")
      notes.append(
        f"{r['method']}: metaval {r['metaval_speedup']:.1f}x faster than {r['library']} "
        "in wall time" + (f", {ratio:.1f}x its fits/s." if ratio else ".")
      )
  meta = base.get("meta", {})
  notes.append(
    f"Per-point learner: {meta.get('learner', '?')}; compiled programs: "
    f"{meta.get('compile_cache', '?')}."
  )
  return Result(rows=rows, notes=notes)
