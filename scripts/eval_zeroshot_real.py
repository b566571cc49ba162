"""The shipped zero-shot model on freshly labelled real tasks, next to every single proxy.

  python scripts/eval_zeroshot_real.py            # wine, breast_cancer, digits: ~2 min here
  python scripts/eval_zeroshot_real.py --quick --tasks wine --out /tmp/zs_real

E2 scores the zero-shot model on real tasks too, but it needs the featurised prior
the model was trained on (to fit the other learned columns). This needs nothing but
the model: it labels supplements of every registered kind on each real task by
retraining (``e2_predictor.real_labels``: 3 bases, 2 supplements of each kind per
base, MLPs of width 32 and 128, 4 paired seeds; one file per task in ``--labels``,
reused by later runs), then scores the model (default: the one shipped in the
package, ``--model`` for another) by the mean within-group Spearman correlation with
the retraining gain (group: base and learner), next to each single cheap-retrain
proxy, the KNN-Shapley sum and the noise ceiling (the split-half Spearman of the
label's own seeds). Writes JSON and markdown (``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from metaval.jobs.experiments.e2_predictor import REAL, real_labels
from metaval.util.env import machine
from metaval.util.io import markdown_table, write_json, write_text
from metaval.zeroshot import evaluate
from metaval.zeroshot import features as Z
from metaval.zeroshot.predictor import ZeroShotPredictor


def main(argv=None) -> dict:
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--tasks", nargs="+", default=list(REAL), help="built-in task names")
  ap.add_argument("--labels", default="runs/zeroshot/real_labels_fresh")
  ap.add_argument("--model", default=None, help="a model folder (default: the shipped one)")
  ap.add_argument("--quick", action="store_true", help="1 base, 1 supplement a kind, MLP-32")
  ap.add_argument(
    "--seeds", type=int, default=None, help="paired seeds per label (default 4; quick: 2)"
  )
  ap.add_argument("--out", default="experiments/results/e2_predictor/shipped_real")
  a = ap.parse_args(argv)
  t0 = time.perf_counter()
  # One labels folder per task list, mode and seed count: files are numbered by position.
  stem = ("quick-" if a.quick else "") + "-".join(a.tasks)
  folder = os.path.join(a.labels, stem + (f"-seeds{a.seeds}" if a.seeds else ""))
  had = len(os.listdir(folder)) if os.path.isdir(folder) else 0
  real = real_labels(folder, a.tasks, a.quick, num_seeds=a.seeds)
  label_s = time.perf_counter() - t0
  predictor = ZeroShotPredictor(a.model)
  rows = []
  for name, (scores, n, extra) in evaluate.shipped(real, predictor).items():
    proxies = {k: v for k, v in scores.items() if k in Z.PROXIES}
    best, best_score = evaluate.best_proxy(scores)
    rows.append(
      {
        "task": name,
        "rows": n,
        "model": float(scores["model"]),
        "best single proxy": best,
        "best proxy": best_score,
        "KNN-Shapley sum": float(scores["KNN-Shapley sum"]),
        "ceiling": float(scores["ceiling"]),
        "gain Pearson": extra["pearson"],
        "interval coverage": extra["coverage"],
        "interval width": extra["width"],
        "sign accuracy": extra["sign"],
        "proxies": {k: float(v) for k, v in proxies.items()},
      }
    )
    print(
      f"{name}: model {scores['model']:.3f}, best proxy {best} {best_score:.3f}, "
      f"ceiling {scores['ceiling']:.3f} ({n} rows)",
      flush=True,
    )
  out = {
    "command": "python scripts/eval_zeroshot_real.py "
    + " ".join(sys.argv[1:] if argv is None else argv),
    "seeds": a.seeds or (2 if a.quick else 4),
    "model": predictor.path,
    "quick": a.quick,
    "machine": machine(),
    "seconds": time.perf_counter() - t0,
    "label_seconds": label_s,
    "label_files_reused": had,
    "tasks": rows,
  }
  write_json(a.out + ".json", out)
  cols = (
    "task", "rows", "model", "best single proxy", "best proxy", "KNN-Shapley sum", "ceiling",
    "gain Pearson", "interval coverage", "interval width",
  )  # fmt: skip
  cells = [{c: (f"{r[c]:.3f}" if isinstance(r[c], float) else r[c]) for c in cols} for r in rows]
  text = (
    "# Zero-shot model on freshly labelled real tasks\n\n"
    f"`{out['command'].strip()}` ({out['seconds']:.0f} s, of which labelling "
    f"{label_s:.0f} s; {had} of {len(a.tasks)} label files reused; {out['seeds']} paired seeds "
    "per label). Mean within-group Spearman "
    "with the retraining gain (group: base and learner); ceiling: split-half Spearman of "
    "the label's own seeds; gain Pearson, interval coverage and mean interval width "
    f"(nominal coverage of the model's interval: {predictor.coverage:.0%}): the gain head.\n\n"
    + markdown_table(cells, cols)
    + f"\n\nModel: `{os.path.relpath(predictor.path)}`. Machine: {json.dumps(out['machine'])}.\n"
  )
  write_text(a.out + ".md", text)
  return out


if __name__ == "__main__":
  main()
