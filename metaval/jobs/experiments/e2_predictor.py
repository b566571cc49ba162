"""E2: the zero-shot value model per held-out split vs every single proxy and the ceiling.

quick: the ``zeroshot:quick`` prior (6 generated tasks, made under the workdir) and a
few wine pairs, short schedules. full: the featurised table the shipped model was
trained on (``runs/zeroshot/table.npz``, written by ``TRAIN_COMMAND``) and labels on
digits, wine and breast_cancer (made, resumably, in ``runs/zeroshot/real_labels``:
MLPs of width 32 and 128, 4 paired seeds). Models are chosen on generated validation
tasks only; the real tasks are never seen in training or selection. full also asks the
shipped model outside its domain: digits with bases of 400 to 1,000 points, larger than
any in the prior (``runs/zeroshot/real_labels_large``), and on generated tasks beyond
the prior (80-128 features, 12-30 classes, bases of 300-800: ``BEYOND_COMMAND``), to
show what its out-of-domain warning is worth.
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np

from metaval.data import get_task
from metaval.errors import MetavalError
from metaval.jobs.experiment import Result
from metaval.jobs.experiments._common import config
from metaval.jobs.zeroshot_train import all_labels
from metaval.learners.models import LearnerSpec
from metaval.util import io
from metaval.zeroshot import evaluate as E
from metaval.zeroshot import labels as L
from metaval.zeroshot import model as M
from metaval.zeroshot import train as T

TITLE = "E2 zero-shot value model per held-out split vs single proxies and the noise ceiling"
CLAIM = (
  "The zero-shot value model is trained on retraining labels of generated tasks only "
  "and scored (mean within-task Spearman against retraining labels) on real tasks it "
  "never saw, on generated tasks held out whole, without one supplement kind, on a "
  "larger learner than trained on, and on unseen pairs; next to each cheap-retrain "
  "proxy it uses as evidence, KNN-Shapley sums, ridge and gradient boosting on the same "
  "features, and the label's split-half repeatability."
)
REAL = ("wine", "breast_cancer", "digits")
TRAINED = "runs/zeroshot"
TRAIN_COMMAND = (
  "metaval prior --config prior --workdir runs/prior && "
  "metaval zeroshot-train --config zeroshot --workdir runs/zeroshot"
)
# Generated tasks beyond the prior (wider, more classes, larger bases), labelled by
# the prior's ladder: the shipped model's out-of-domain split on generated data.
BEYOND = "runs/prior_beyond"
BEYOND_COMMAND = "metaval prior --config prior:beyond --workdir runs/prior_beyond"
BEYOND_SPLIT = "beyond the prior: 80-128 features, 12-30 classes, B 300-800"
PEER = "runs/bench/zeroshot_peer.json"  # pyDVL's utility learning, made by PEER_COMMAND
PEER_COMMAND = "python scripts/bench_predictor_peer.py --labels runs/zeroshot/real_labels"


# Outside the domain: digits with bases larger than any the prior holds (its tasks have
# 10 to 256 base points), labelled like the real tasks, in a folder of their own.
LARGE = "digits"
LARGE_BASES = (400, 1000)
LARGE_NAME = f"{LARGE}, B {LARGE_BASES[0]}-{LARGE_BASES[1]}"  # its split: "zero-shot <name>"


def real_labels(
  workdir: str, names, quick: bool, base_range=(40, 250), first_id=0, num_seeds=None
) -> list:
  """Retraining labels of supplements of every kind on real tasks (one file per task
  in ``workdir``, made on first use): MLPs of width 32 (and 128 unless ``quick``),
  ``num_seeds`` paired seeds per label (default 4, 2 when ``quick``)."""
  out = []
  learners = [LearnerSpec(family="mlp", width=32, steps=100)]
  if not quick:
    learners.append(LearnerSpec(family="mlp", width=128, steps=100))
  os.makedirs(workdir, exist_ok=True)
  for j, name in enumerate(names):
    path = os.path.join(workdir, f"task_{first_id + j:05d}.pkl")
    if not os.path.exists(path):
      tl = L.label_task(
        get_task(name),
        first_id + j,
        learners,
        seed=7,
        num_bases=1 if quick else 3,
        per_kind=1 if quick else 2,
        num_seeds=num_seeds or (2 if quick else 4),
        base_range=base_range,
        supp_range=(10, 250),
      )
      L.save(tl, path)
    out.append(L.load_dir(workdir)[j])
  return out


def _rows(split: str, n: int, scores: dict) -> list[dict]:
  return [
    {
      "split": split,
      "test rows": n,
      "estimator": est,
      "spearman": float(v),
      "ceiling (split-half Spearman)": float(scores["ceiling"]),
    }
    for est, v in scores.items()
    if est != "ceiling"
  ]


def _peer_rows(real_dir: str) -> tuple[list[dict], list[str]]:
  """pyDVL's utility learning per real task from ``PEER``, for the tasks whose label
  files it was scored on (checked by their SHA-256); none when ``PEER`` is absent."""
  if not os.path.exists(PEER):
    return [], []
  with open(PEER) as f:
    peer = json.load(f)
  rows = []
  for name, r in peer["tasks"].items():
    path = os.path.join(real_dir, r["labels_file"])
    if os.path.exists(path) and io.file_sha256(path) == r["labels_sha256"]:
      scores = {"pyDVL utility learning (DeepSets, in-task K-fold)": r["pydvl"]["spearman"]}
      rows += _rows(f"zero-shot {name}", r["rows"], {**scores, "ceiling": r["ceiling"]})
  return rows, [f"{peer['note']} Made by `{PEER_COMMAND}`."] if rows else []


def run(mode: str, workdir: str) -> Result:
  quick = mode == "quick"
  cfg = config("zeroshot", "quick" if quick else None)
  if quick:
    cfg.prior.labels_dir = os.path.join(workdir, "labels")
    prior_labels = all_labels(cfg.prior, workdir, cfg.seed)
    prior = T.table(prior_labels)
    real_dir = os.path.join(workdir, "real_labels")
  else:  # the table the shipped model was trained on (metaval zeroshot-train, see TRAINED)
    path = os.path.join(TRAINED, "table.npz")
    if not os.path.exists(path):
      raise MetavalError(f"no trained zero-shot table at {path}; run: {TRAIN_COMMAND}")
    prior = T.Table.load(path)
    real_dir = os.path.join(TRAINED, "real_labels")
  net_cfg = M.NetConfig(seed=cfg.seed, **dict(cfg.model))
  real = real_labels(real_dir, REAL[:1] if quick else REAL, quick)
  rows, notes, tables = [], [], {}
  if not quick:  # the shipped model asked outside its domain
    large = os.path.join(TRAINED, "real_labels_large")
    (tl,) = real_labels(large, [LARGE], quick, LARGE_BASES, first_id=len(REAL))
    real.append(dataclasses.replace(tl, name=LARGE_NAME))
    if not os.path.isdir(BEYOND):
      raise MetavalError(f"no labels beyond the prior at {BEYOND}; run: {BEYOND_COMMAND}")
    tables[BEYOND_SPLIT] = T.table(L.from_prior(BEYOND))
  model_dir = None if quick else os.path.join(TRAINED, "model")
  zs, report = E.zero_shot(
    prior, real, net_cfg, seed=cfg.seed, coverage=cfg.coverage, model_dir=model_dir, tables=tables
  )
  chosen = f"chosen ({report['chosen']})"
  preds = {}
  for name, (scores, n, extra) in zs.items():
    split = name if name in tables else f"zero-shot {name}"
    rows += _rows(split, n, scores)
    # The chosen model's gain head against the retraining gain, for E2's scatter.
    preds[f"{split}/label"] = np.asarray(extra["label"], np.float32)
    preds[f"{split}/predicted"] = np.asarray(extra["predicted"], np.float32)
    preds[f"{split}/spearman"] = np.float32(scores[chosen])
    preds[f"{split}/ceiling"] = np.float32(scores["ceiling"])
    best, best_score = E.best_proxy(scores)
    notes.append(
      f"{split}: chosen model ({report['chosen']}) Spearman {scores[chosen]:.3f} "
      f"(network {scores['network']:.3f}, gradient boosting "
      f"{scores['gradient boosting']:.3f}) vs best single proxy {best} {best_score:.3f}, "
      f"KNN-Shapley sum {scores.get('KNN-Shapley sum', float('nan')):.3f}, "
      f"ceiling {scores['ceiling']:.3f}; "
      f"gain head: Pearson {extra['pearson']:.3f}, sign accuracy {extra['sign']:.2f}, "
      f"{report['coverage']:.0%} interval coverage {extra['coverage']:.2f}."
    )
  io.save_npz(os.path.join(workdir, "predictions.npz"), **preds)
  peer_rows, peer_notes = _peer_rows(real_dir)
  rows, notes = rows + peer_rows, notes + peer_notes
  for split, (scores, n) in E.splits(prior, net_cfg, seed=cfg.seed).items():
    rows += _rows(split, n, scores)
    notes.append(
      f"{split}: network {scores.get('network', float('nan')):.3f}, gradient boosting "
      f"{scores['gradient boosting']:.3f}, ridge {scores['ridge']:.3f}, "
      f"ceiling {scores['ceiling']:.3f}."
    )
  notes.append(
    f"prior: {len(np.unique(prior.task))} generated tasks, {len(prior.gain)} labelled rows; "
    f"selection on {report['val_tasks']} generated validation tasks: "
    f"{dataclasses.asdict(net_cfg)['steps']} network steps, chosen {report['chosen']} "
    f"(validation Spearman {report['val_spearman']})."
  )
  return Result(rows=rows, notes=notes)
