"""E3: strategies at equal compute, scored against retraining labels.

Target learner and pairs: digits with the label pipeline's linear learner (the
cheapest target the predictor is trained for; an MLP target would need MLP labels
and a predictor trained on them, more than this experiment's budget).

quick: the ``tiny`` labels (linear, 40 steps, K=2 seeds) train a small predictor;
  8 held-out pairs; small budgets. A few minutes on 2 CPU cores (CI).
full: the ``quick`` labels (linear, 100 steps, K=1: the learner is deterministic)
  train ``predictor:quick``; 64 held-out pairs. About 10-15 minutes on
  2 CPU cores when the quick labels exist (generating them adds ~2 min).

The predictor is trained once into ``runs/experiments/e3_strategies_predictor/<mode>``
(not the results folder: checkpoints are not published). Held-out pairs come from
a root seed the training labels never use.
"""

import json
import os
import time

import jax
import numpy as np

from metaval.data import get_task
from metaval.jobs.experiment import Result
from metaval.jobs.experiments._common import config
from metaval.learners.models import LearnerSpec, ladder
from metaval.predictor.train import META_FILE, train_and_evaluate
from metaval.valuation import compare as C
from metaval.valuation import untrain as U

TITLE = "E3 strategies at equal compute: agreement with retraining labels vs cost"
CLAIM = (
  "On the same held-out (B, S) pairs of digits (every supplement kind) the value of S "
  "for the linear learner is estimated by a trained predictor, smaller-learner "
  "retraining, gradient-ascent untraining and Shapley-family sums over S's points "
  "(B as background); each is scored against the retraining label with "
  "metaval.protocol.agreement next to its measured cost per pair (wall seconds, "
  "x one retraining of the pair, model fits)."
)

METRIC = "test/accuracy"
HELDOUT_SEED = 7919  # never a label config's seed (0): the pairs are unseen


def _settings(mode: str) -> dict:
  if mode == "quick":
    return dict(labels="tiny", pairs=8, banzhaf_big=16, tmc_perms=1, ascent_steps=(5,), epochs=15)
  return dict(
    labels="quick", pairs=64, banzhaf_big=64, tmc_perms=1, ascent_steps=(5, 20), epochs=None
  )


def _ensure_predictor(mode: str, label_variant: str, epochs, log=print) -> tuple[str, float]:
  """Trains the predictor if absent; returns its path and training seconds (0 if reused)."""
  path = os.path.join("runs", "experiments", "e3_strategies_predictor", mode)
  if os.path.isfile(os.path.join(path, META_FILE)):
    return path, 0.0
  pcfg = config("predictor", "quick")
  pcfg.labels.configs = (f"labels:{label_variant}",)
  pcfg.labels.workdirs = (os.path.join("runs", f"labels_{label_variant}"),)
  if epochs is not None:
    pcfg.train.epochs = int(epochs)
  log(f"[e3] training the predictor on the {label_variant} labels into {path}")
  t0 = time.perf_counter()
  train_and_evaluate(pcfg, path)
  return path, time.perf_counter() - t0


def run(mode: str, workdir: str) -> Result:
  st = _settings(mode)
  lcfg = config("labels", st["labels"])
  (name, lcfg_learner), *_ = list(lcfg.learners.items())
  spec = LearnerSpec.from_config(lcfg_learner)
  k = int(lcfg.num_seeds)
  task = get_task(str(lcfg.task.name), seed=int(lcfg.task.seed))
  pairs = C.heldout_pairs(lcfg, task, st["pairs"], HELDOUT_SEED)
  key = jax.random.key(HELDOUT_SEED)

  # Ground truth: the target learner's retraining label (also the cost unit).
  truth, per_seed = C.retraining(task, pairs, spec, METRIC, num_seeds=k, key=key, name="retraining")
  truth.name = f"retraining label ({name}, K={k})"
  ests = [truth]

  ppath, t_pred_train = _ensure_predictor(mode, st["labels"], st["epochs"])
  ests.append(C.predictor_values(ppath, task, pairs, METRIC))

  # Small-model ablations: fewer random features (the linear ladder), fewer steps.
  (small,) = ladder(spec, (16,))
  short = LearnerSpec(**{**spec.to_dict(), "steps": max(1, spec.steps // 4)})
  for sname, sspec in (("ablation: 16 random features", small), ("ablation: 1/4 steps", short)):
    # Paired keys of their own (fold_in 1): the ablation is an independent label.
    e, _ = C.retraining(task, pairs, sspec, METRIC, num_seeds=k, key=jax.random.fold_in(key, 1))
    e.name = sname
    ests.append(e)

  ckpt = os.path.join("runs", "experiments", "e3_strategies_ckpt", mode)
  for steps in st["ascent_steps"]:
    asc = U.AscentSpec(steps=steps)
    ests.append(C.untraining_values(task, pairs, spec, asc, METRIC, num_seeds=k, ckpt_dir=ckpt))

  ests.append(C.knn_shapley_sums(task, pairs, METRIC, k=5))
  # Banzhaf at the fits of one retraining of the pair (equal compute) and at a larger budget.
  equal = max(2, int(round(truth.fits)))
  for b in (equal, st["banzhaf_big"]):
    ests.append(C.shapley_sums(task, pairs, spec, METRIC, "banzhaf", budget=b))
  ests.append(C.shapley_sums(task, pairs, spec, METRIC, "tmc_shapley", budget=st["tmc_perms"]))

  rows = C.score(ests, truth.values, per_seed, truth.seconds)
  for r in rows:
    if r["estimator"].startswith("retraining label"):
      r["note"] = "ground truth (cost unit)"

  # Predictor's amortised costs, reported apart from its query cost.
  pred = next(e for e in ests if e.name == "predictor")
  res_path = os.path.join(ppath, "results.json")
  with open(res_path) as f:
    pres = json.load(f)
  n_train = int(pres.get("num_pairs", 0))
  s_label = truth.seconds / len(pairs)
  amort = {
    "predictor_training_labels": n_train,
    "label_generation_s_estimated": n_train * s_label,
    "predictor_training_s": float(pres.get("seconds", float("nan"))),
    "predictor_training_s_this_run": t_pred_train,
    "predictor_load_s": pred.info["load_s"],
    "predictor_query_s_per_pair": pred.seconds / len(pairs),
  }
  by_kind = []
  label = truth.values
  for kind in sorted(set(pairs.kind)):
    m = pairs.kind == kind
    by_kind.append(
      {"kind": kind, "pairs": int(m.sum()), "mean_label": float(label[m].mean())}
      | {e.name: float(np.mean(e.values[m])) for e in ests[1:] if e.same_scale}
    )
  with open(os.path.join(workdir, "estimates.json.tmp"), "w") as f:
    json.dump(
      {
        "kind": pairs.kind.tolist(),
        "label_per_seed": per_seed.tolist(),
        "estimates": {e.name: e.values.tolist() for e in ests},
        "seconds": {e.name: e.seconds for e in ests},
        "amortised": amort,
      },
      f,
    )
  os.replace(os.path.join(workdir, "estimates.json.tmp"), os.path.join(workdir, "estimates.json"))

  cands = [r for r in rows[1:] if not r["estimator"].startswith("ceiling")]
  best = max((r for r in cands if r["spearman"] == r["spearman"]), key=lambda r: r["spearman"])
  notes = [
    f"{len(pairs)} held-out pairs ({', '.join(sorted(set(pairs.kind)))}); label = mean paired-"
    f"seed improvement of {METRIC} for {name} ({spec.steps} steps), K={k}"
    + (
      " (deterministic learner: no seed noise, so no repeatability ceiling row)." if k < 2 else "."
    ),
    f"Cost unit: one retraining of every pair = {s_label:.3f} s/pair wall (compilation "
    f"included, batched like the label pipeline), {truth.fits:.2f} fits/pair. Untraining "
    "is timed in steady state (compilation excluded, B ∪ S training included) and its "
    "x_retrain is against a steady-state retraining in the same call.",
    f"Predictor amortised cost, reported apart: {n_train} training labels ≈ "
    f"{amort['label_generation_s_estimated']:.0f} s to generate at this run's retraining "
    f"speed, {amort['predictor_training_s']:.0f} s to train, {amort['predictor_load_s']:.1f} s "
    f"to load; per held-out pair that is "
    f"{(amort['label_generation_s_estimated'] + amort['predictor_training_s']) / len(pairs):.1f} s "
    f"over these {len(pairs)} pairs (less the more pairs it values).",
    f"Highest Spearman besides the label: {best['estimator']} ({best['spearman']:.3f}).",
    "TMC-Shapley with B as background is efficient: each permutation's contributions sum "
    "to U(B ∪ S) - U(B), the label, so its set sum departs from the label only by "
    "truncation; Banzhaf and KNN-Shapley sums are different quantities (rank metrics only "
    "for KNN; MAE n/a).",
  ]
  return Result(rows=rows, notes=notes, extra_tables={"Mean value by supplement kind": by_kind})
