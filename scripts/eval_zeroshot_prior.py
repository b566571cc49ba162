"""The shipped zero-shot model on any folder of generated-task labels (``metaval prior``).

  python scripts/eval_zeroshot_prior.py --labels runs/prior_wide      # a minute here
  python scripts/eval_zeroshot_prior.py --labels runs/prior_beyond --model runs/zeroshot/model

Featurises every labelled (B, S, learner) row of the folder as a query would
(``metaval.zeroshot.train.table``), scores the model (default: the one shipped in the
package) by the mean within-group Spearman correlation with the retraining gain
(group: task and learner), next to every single cheap-retrain proxy and the noise
ceiling (split-half Spearman of the label's own seeds), and checks the gain head:
its Pearson correlation with the gain, and the mean predicted against the mean
retraining gain per supplement kind. Writes JSON and markdown (``--out``, default
``experiments/results/e2_predictor/<folder name>``, prefixed ``prior_`` unless it is).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

from metaval.util.env import machine
from metaval.util.io import markdown_table, write_json, write_text
from metaval.zeroshot import evaluate
from metaval.zeroshot import features as Z
from metaval.zeroshot import labels as L
from metaval.zeroshot import train as T
from metaval.zeroshot.predictor import ZeroShotPredictor


def main(argv=None) -> dict:
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--labels", required=True, help="a `metaval prior` workdir")
  ap.add_argument("--model", default=None, help="a model folder (default: the shipped one)")
  ap.add_argument("--out", default=None)
  a = ap.parse_args(argv)
  name = os.path.basename(os.path.normpath(a.labels))
  stem = name if name.startswith("prior") else f"prior_{name}"
  out_stem = a.out or f"experiments/results/e2_predictor/{stem}"
  t0 = time.perf_counter()
  tab = T.table(L.from_prior(a.labels))
  featurise_s = time.perf_counter() - t0
  predictor = ZeroShotPredictor(a.model)
  score, gain = predictor.predict(tab.x)
  scores = evaluate.score_all(tab, {}, extra={"model": score})
  best, best_score = evaluate.best_proxy(scores)
  width = np.exp(tab.x[:, Z.FEATURE_NAMES.index("log_width")])
  kinds = [
    {
      "kind": str(k),
      "rows": int((tab.kind == k).sum()),
      "retraining gain": float(tab.gain[tab.kind == k].mean()),
      "predicted gain": float(gain[tab.kind == k].mean()),
    }
    for k in np.unique(tab.kind)
  ]
  out = {
    "command": "python scripts/eval_zeroshot_prior.py "
    + " ".join(sys.argv[1:] if argv is None else argv),
    "model": predictor.path,
    "labels": a.labels,
    "rows": len(tab.gain),
    "tasks": int(len(np.unique(tab.task))),
    "input_features": [int(round(width.min())), int(round(width.max()))],
    "featurise_seconds": featurise_s,
    "model_spearman": scores["model"],
    "best_proxy": best,
    "best_proxy_spearman": best_score,
    "ceiling": scores["ceiling"],
    "gain_pearson": float(np.corrcoef(gain, tab.gain)[0, 1]),
    "proxies": {k: float(scores[k]) for k in Z.PROXIES},
    "kinds": kinds,
    "machine": machine(),
  }
  print(
    f"{name}: {out['rows']} rows of {out['tasks']} tasks ({out['input_features'][0]}-"
    f"{out['input_features'][1]} features), featurised in {featurise_s:.1f} s; model "
    f"{out['model_spearman']:.3f}, best proxy {best} {best_score:.3f}, ceiling "
    f"{out['ceiling']:.3f}, gain Pearson {out['gain_pearson']:.3f}",
    flush=True,
  )
  write_json(out_stem + ".json", out)
  fmt = [{k: (f"{v:+.4f}" if isinstance(v, float) else v) for k, v in r.items()} for r in kinds]
  text = (
    f"# Zero-shot model on generated tasks: `{a.labels}`\n\n"
    f"`{out['command'].strip()}` ({out['rows']} rows of {out['tasks']} tasks with "
    f"{out['input_features'][0]}-{out['input_features'][1]} input features; featurised in "
    f"{featurise_s:.0f} s). Mean within-group Spearman with the retraining gain (group: "
    "task and learner).\n\n"
    + markdown_table(
      [
        {
          "model": f"{out['model_spearman']:.3f}",
          "best single proxy": f"{best} {best_score:.3f}",
          "ceiling": f"{out['ceiling']:.3f}",
          "gain Pearson": f"{out['gain_pearson']:.3f}",
        }
      ],
      ("model", "best single proxy", "ceiling", "gain Pearson"),
    )
    + "\n\nMean gain per supplement kind (retraining vs the model's gain head):\n\n"
    + markdown_table(fmt, ("kind", "rows", "retraining gain", "predicted gain"))
    + f"\n\nModel: `{os.path.relpath(predictor.path)}`. Machine: {json.dumps(out['machine'])}.\n"
  )
  write_text(out_stem + ".md", text)
  return out


if __name__ == "__main__":
  main()
