"""E2: predictor quality per held-out split vs simple baselines and the noise ceiling.

quick: ``predictor:toy`` (labels made on the fly on wine: unseen pairs and
unseen kinds); full: ``predictor:suite`` with the Deep Sets encoder and a short schedule (digits, breast_cancer, wine and
synthetic, a linear learner and two MLP sizes: unseen pairs, unseen supplement
kinds, unseen base task, larger learner). The suite labels are generated (or
resumed) first.
"""

from metaval.jobs.experiment import Result
from metaval.jobs.experiments._common import config
from metaval.predictor import evaluate

TITLE = "E2 predictor quality per split vs simple baselines and the noise ceiling"
CLAIM = (
  "The set-encoder predictor is retrained without the held-out pairs of each split "
  "(unseen pairs; leave-one-supplement-kind-out; leave-one-base-task-out; the largest "
  "learner held out) and scored against the retraining labels next to the simple "
  "baselines (size of S alone, kNN on mean features, ridge on meta-features) and the "
  "label's own split-half repeatability."
)

ESTIMATORS = ("predictor", "ridge", "knn", "size")


def run(mode: str, workdir: str) -> Result:
  cfg = config("predictor", "toy" if mode == "quick" else "suite")
  if mode == "full":
    cfg.labels.workdirs = ("runs/labels_suite",)
    # 15 folds (pairs, 9 kinds, 4 tasks, learner) each retrain the predictor: the
    # Deep Sets encoder and the quick schedule keep the whole table near 30 minutes.
    cfg.model.encoder = "deepsets"
    cfg.train.epochs = 40
    cfg.train.patience = 8
  out = evaluate.run(cfg, workdir)
  rows = []
  for target in out["targets"][:2]:
    for split, res in out["splits"].items():
      sc = res["scores"][target]
      for est in ESTIMATORS:
        a = sc[est]
        rows.append(
          {
            "target": target,
            "split": split,
            "test pairs": res["n_test"],
            "estimator": est,
            "spearman": a["spearman"],
            "pearson": a["pearson"],
            "mae": a["mae"],
            "sign_acc": a["sign_acc"],
            "top10%_precision": a["topk_precision"],
            "ceiling (split-half Spearman)": sc["ceiling"]["split_spearman"],
          }
        )
  notes = []
  for target in out["targets"][:1]:
    for split, res in out["splits"].items():
      sc = res["scores"][target]
      best = max(ESTIMATORS[1:], key=lambda e: sc[e]["spearman"])
      notes.append(
        f"{split} ({target}): predictor Spearman {sc['predictor']['spearman']:.3f} vs best "
        f"simple baseline {best} {sc[best]['spearman']:.3f}; interval coverage "
        f"{sc['predictor'].get('coverage', float('nan')):.2f}."
      )
  notes.append(f"{out['num_pairs']} labelled pairs in all; {out['seconds']:.0f}s.")
  return Result(rows=rows, notes=notes)
