"""Calibrates the interval of a trained zero-shot model folder from its training table.

  python scripts/calibrate_zeroshot.py --table runs/zeroshot/table.npz \
      --model metaval/zeroshot/default            # ~1 min on 2 CPU cores (gbm)

``metaval zeroshot-train`` calibrates the interval as it trains (``train.validate``);
this gives a folder trained before the scaled interval existed the interval the job
would have given it, without featurising the prior again: it refits the folder's model
kind on the training tasks of the split its report records (same seed and share),
checks that the refit reproduces the folder's constant half-width (the same fit, so
the same validation residuals), calibrates the scaled interval on the validation
tasks, and rewrites ``interval_scale``, the report's ``interval`` and the Goodhart
gate's verdict in ``zeroshot.json``. The weights are not touched. It also writes the
held-out coverage per supplement kind, scaled against constant, as JSON, markdown and a
figure (``--out``, default ``experiments/results/e2_predictor/interval``).
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np

from metaval.util.io import write_json
from metaval.zeroshot import model as M
from metaval.zeroshot import train as T
from metaval.zeroshot.predictor import META


def main(argv=None) -> dict:
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--table", default="runs/zeroshot/table.npz")
  ap.add_argument("--model", default="metaval/zeroshot/default")
  ap.add_argument("--val-share", type=float, default=0.2)
  ap.add_argument("--seed", type=int, default=0)
  ap.add_argument("--out", default="experiments/results/e2_predictor/interval")
  a = ap.parse_args(argv)
  path = os.path.join(a.model, META)
  with open(path) as f:
    meta = json.load(f)
  report = meta["report"]
  t = T.Table.load(a.table)
  train_m, val_m = T.task_split(t, a.val_share, a.seed)
  if (int(train_m.sum()), int(val_m.sum())) != (report["train_rows"], report["val_rows"]):
    raise SystemExit(
      f"the split ({int(train_m.sum())}, {int(val_m.sum())} rows) is not the model's "
      f"({report['train_rows']}, {report['val_rows']}): give its --val-share and --seed"
    )
  cfg = M.NetConfig(**meta["net"]) if meta.get("net") else M.NetConfig(seed=a.seed)
  f = T.fit(t.select(train_m), meta["kind"], cfg, a.seed)
  spearman, half, interval, verdict = T.validate(f, t.select(val_m), meta["coverage"], a.seed)
  if abs(half - meta["interval_half_width"]) > 1e-9:
    raise SystemExit(
      f"the refit's constant half-width {half:.6f} is not the model's "
      f"{meta['interval_half_width']:.6f}: not the same fit, nothing written"
    )
  meta["interval_scale"] = f.scale.to_dict()
  report["interval"] = interval
  if "gate" in report:
    report["gate"][meta["kind"]] = verdict
    report["gate"]["chosen_passed"] = verdict["passed"]
  write_json(path, meta)
  out = {"validation Spearman": spearman, "interval": interval, "gate passed": verdict["passed"]}
  print(json.dumps(out, indent=2))
  if a.out and "held_out_scaled" in interval:
    _publish(
      a.out,
      interval,
      meta["coverage"],
      " ".join(["python scripts/calibrate_zeroshot.py", *(argv or [])]),
    )
  return out


def _publish(stem: str, interval: dict, coverage: float, command: str) -> None:
  """Held-out coverage per supplement kind, scaled vs constant: JSON, markdown, figure."""
  import matplotlib

  matplotlib.use("Agg", force=False)
  import matplotlib.pyplot as plt

  from metaval.util.io import markdown_table, save_figure, write_text

  scaled, const = interval["held_out_scaled"], interval["held_out_constant"]
  kinds = sorted(scaled["coverage_by_kind"], key=lambda k: const["coverage_by_kind"][k])
  write_json(stem + ".json", {"command": command, "interval": interval})
  cols = ("supplement kind", "scaled per query", "constant")
  rows = [
    {
      "supplement kind": k,
      "scaled per query": f"{scaled['coverage_by_kind'][k]:.3f}",
      "constant": f"{const['coverage_by_kind'][k]:.3f}",
    }
    for k in kinds
  ]
  rows.append(
    {
      "supplement kind": "all (mean half-width)",
      "scaled per query": f"{scaled['coverage_mean']:.3f} ({scaled['half_width_mean']:.3f})",
      "constant": f"{const['coverage_mean']:.3f} ({const['half_width_mean']:.3f})",
    }
  )
  write_text(
    stem + ".md",
    "# The zero-shot model's interval on held-out generated tasks\n\n"
    f"`{command}`: nominal coverage {coverage:.0%}; each figure is the share of labels "
    "inside the interval on validation tasks neither part of the interval was fitted on "
    "(three task folds, every ordering).\n\n"
    + markdown_table(rows, cols)
    + f"\n\n![{os.path.basename(stem)}.png]({os.path.basename(stem)}.png)\n",
  )
  fig, ax = plt.subplots(figsize=(6.4, 0.28 * len(kinds) + 1.2))
  y = np.arange(len(kinds))
  ax.barh(y - 0.2, [const["coverage_by_kind"][k] for k in kinds], 0.4, label="constant")
  ax.barh(y + 0.2, [scaled["coverage_by_kind"][k] for k in kinds], 0.4, label="scaled per query")
  ax.axvline(coverage, color="k", lw=0.8, ls="--", label=f"nominal {coverage:.0%}")
  ax.set_yticks(y, kinds, fontsize=8)
  ax.set_xlim(0.75, 1.0)
  ax.set_xlabel("held-out coverage")
  ax.legend(fontsize=7, loc="lower right")
  fig.tight_layout()
  save_figure(fig, stem + ".png", dpi=120)
  plt.close(fig)


if __name__ == "__main__":
  main()
