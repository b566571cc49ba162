"""E2 for the zero-shot model: held-out splits against every single proxy and the ceiling.

Splits (models are refitted on the training side of each, never on its test side):

* ``zero-shot <task>``: trained on the generated prior only (the model chosen by
  validation on generated tasks, as shipped), scored on a real task's labels.
* ``unseen tasks``: generated tasks held out whole.
* ``leave-one-kind-out``: trained without one supplement kind, scored on the
  held-out tasks (all their pairs, that kind included; the mean over kinds).
* ``unseen learner size``: trained on MLPs of width <= 32 only, scored on the
  labels of MLPs of width >= 64 on held-out tasks.
* ``unseen pairs``: pairs held out at random (tasks seen in training).
* further tables given to ``zero_shot`` (E2: generated tasks beyond the prior's
  widths, class counts and base sizes), scored like the real tasks.

Every split scores the network, gradient boosting and ridge on the same features
(all three predict the within-task rank), each single proxy, KNN-Shapley sums
(real tasks) and the label's split-half Spearman (the noise ceiling), all as the
mean within-group Spearman correlation (group: task and learner).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from metaval.games.closed_form import knn_shapley
from metaval.zeroshot import features as Z
from metaval.zeroshot import model as M
from metaval.zeroshot import train as T
from metaval.zeroshot.labels import TaskLabels
from metaval.zeroshot.predictor import ZeroShotPredictor


def _ridge(tr: T.Table):
  from sklearn.linear_model import Ridge

  mean, sd = M.feature_scale(tr.x)
  m = Ridge(alpha=10.0).fit(
    M.standardise(tr.x, mean, sd, np.float64), M.within_rank(tr.gain, tr.group)
  )
  return lambda x: m.predict(M.standardise(x, mean, sd, np.float64))


def knn_shapley_sums(tl: TaskLabels) -> np.ndarray:
  """``[P]`` sum over S's points of their KNN-Shapley values in B ∪ S (T as test set)."""
  out = np.zeros(len(tl.kind))
  for i, (xs, ys) in enumerate(tl.supp):
    ctx = Z.Context(tl.bases[tl.base_of[i]], (tl.x_eval, tl.y_eval), seed=tl.task_id)
    xb, yb = ctx.xb, ctx.yb
    v = knn_shapley(np.r_[xb, ctx.transform(xs)], np.r_[yb, ctx.labels(ys)], ctx.xe, ctx.ye)
    out[i] = float(np.sum(np.asarray(v.values)[len(yb) :]))
  return out


def score_all(te: T.Table, models: dict, extra: dict | None = None) -> dict:
  """Mean within-group Spearman of every model, proxy and extra estimate on ``te``."""
  out = {name: T.group_spearman(f(te.x), te.gain, te.group) for name, f in models.items()}
  for j, name in enumerate(Z.PROXIES):
    out[name] = T.group_spearman(te.x[:, j], te.gain, te.group)
  for name, v in (extra or {}).items():
    out[name] = T.group_spearman(v, te.gain, te.group)
  out["ceiling"] = T.group_spearman(te.split_a, te.split_b, te.group)
  return out


def fit_models(tr: T.Table, net_cfg: M.NetConfig, seed: int = 0, network: bool = True) -> dict:
  """The learned estimators on ``tr`` (the network only if ``network``), each ``x -> score``."""
  mean, sd = M.feature_scale(tr.x)

  def z(x):
    return M.standardise(x, mean, sd)

  rank_gbm = M.fit_gbm(z(tr.x), tr.gain, tr.group, seed, gain_head=False)[0]
  out = {"gradient boosting": lambda x: rank_gbm.predict(z(x)), "ridge": _ridge(tr)}
  if network:
    net = T.fit(tr, "net", net_cfg, seed)
    out["network"] = lambda x: net.predict(x)[0]
  return out


def splits(
  prior: T.Table, net_cfg: M.NetConfig, seed: int = 0, val_share: float = 0.2, loko_network=False
):
  """The generated-task splits: ``{split: (scores, test rows)}``."""
  out = {}
  train_m, test_m = T.task_split(prior, val_share, seed)
  tr, te = prior.select(train_m), prior.select(test_m)
  out["unseen tasks"] = (score_all(te, fit_models(tr, net_cfg, seed)), len(te.gain))
  # Leave one kind out: its rows leave training; the test ranks the held-out tasks'
  # pairs of that kind among all their pairs (Spearman over all, as elsewhere).
  per_kind = []
  # One refit per kind: gradient boosting and ridge only (a network per kind would
  # dominate E2's cost on 2 cores); the split's name says so.
  for kind in np.unique(prior.kind):
    models = fit_models(tr.select(tr.kind != kind), net_cfg, seed, network=loko_network)
    per_kind.append(score_all(te, models))
  out["leave-one-kind-out (mean over kinds)" + ("" if loko_network else "; no network")] = (
    {k: float(np.nanmean([s[k] for s in per_kind])) for k in per_kind[0]},
    len(te.gain),
  )
  width = np.array([int(n[3:].split("x")[0]) if n.startswith("mlp") else 0 for n in prior.learner])
  small, large = (width > 0) & (width <= 32), width >= 64
  if small.any() and large.any():
    te_l = te.select(large[test_m])
    out["unseen learner size (train mlp <= 32, test mlp >= 64)"] = (
      score_all(te_l, fit_models(tr.select(small[train_m]), net_cfg, seed)),
      len(te_l.gain),
    )
  rng = np.random.default_rng(seed)
  pair_test = rng.random(len(prior.gain)) < val_share
  out["unseen pairs"] = (
    score_all(prior.select(pair_test), fit_models(prior.select(~pair_test), net_cfg, seed)),
    int(pair_test.sum()),
  )
  return out


def zero_shot(
  prior: T.Table,
  real: list[TaskLabels],
  net_cfg: M.NetConfig,
  seed=0,
  coverage=0.9,
  model_dir=None,
  tables: dict | None = None,
):
  """Per real task: the models trained on the whole prior, scored on its labels.

  ``model_dir``: a trained model folder (the shipped one) to score as the chosen
  model; by default the model is selected and fitted here. ``tables``: further
  featurised label tables ``{name: Table}`` (e.g. generated tasks beyond the prior)
  scored by the same models, without KNN-Shapley sums.

  Returns:
    ``(rows, report)``: ``{task: (scores, n_pairs, interval coverage)}`` and the
    selection report of the model chosen on generated validation tasks.
  """
  if model_dir:
    chosen = ZeroShotPredictor(model_dir)
    report = chosen.meta["report"]
  else:
    chosen, report = T.select_and_fit(prior, net_cfg, coverage=coverage, seed=seed)
  models = fit_models(prior, net_cfg, seed)
  models["chosen (" + report["chosen"] + ")"] = lambda x: chosen.predict(x)[0]
  out = {tl.name: _scored(T.task_rows(tl), models, chosen, _knn_sums(tl)) for tl in real}
  for name, te in (tables or {}).items():
    out[name] = _scored(te, models, chosen, {})
  return out, report


def best_proxy(scores: dict) -> tuple[str, float]:
  """The single cheap-retrain proxy that scored best among ``scores`` (NaN scores last)."""
  proxies = {k: v for k, v in scores.items() if k in Z.PROXIES}
  best = max(proxies, key=lambda k: np.nan_to_num(proxies[k], nan=-2.0))
  return best, float(proxies[best])


def shipped(real: list[TaskLabels], predictor: ZeroShotPredictor | None = None) -> dict:
  """A trained model (default: the shipped one) on real tasks' labels; no prior needed.

  Returns:
    ``{task: (scores, n_rows, extra)}`` as ``zero_shot`` gives: ``scores`` holds the
    model (``"model"``), every single proxy, the KNN-Shapley sum and the ceiling;
    ``extra`` the gain head's interval coverage, sign accuracy and Pearson
    correlation with the retraining gain.
  """
  chosen = predictor or ZeroShotPredictor()
  models = {"model": lambda x: chosen.predict(x)[0]}
  return {tl.name: _scored(T.task_rows(tl), models, chosen, _knn_sums(tl)) for tl in real}


def _knn_sums(tl: TaskLabels) -> dict:
  return {"KNN-Shapley sum": knn_shapley_sums(tl)[_pair_index(tl)]}


def _scored(te: T.Table, models: dict, chosen, extra_scores: dict) -> tuple:
  """``(scores, rows, extra)`` of ``models`` on ``te``; ``chosen``'s gain head and its
  interval's coverage and mean width in ``extra``."""
  scores = score_all(te, models, extra_scores)
  gain_pred = chosen.predict(te.x)[1]
  half = chosen.half_widths(te.x, gain_pred)
  cov = float(np.mean(np.abs(gain_pred - te.gain) <= half))
  sign = float(np.mean(np.sign(gain_pred) == np.sign(te.gain)))
  pearson = float(stats.pearsonr(gain_pred, te.gain)[0]) if np.ptp(gain_pred) > 0 else 0.0
  extra = {"coverage": cov, "width": float(np.mean(2 * half)), "sign": sign, "pearson": pearson}
  extra.update(label=te.gain, predicted=gain_pred)  # per row, for the figure
  return scores, len(te.gain), extra


def _pair_index(tl: TaskLabels) -> np.ndarray:
  """The pair of each row of ``task_rows(tl)`` (rows go base by base, learner inner)."""
  idx = []
  for b in range(len(tl.bases)):
    for i in np.flatnonzero(tl.base_of == b):
      idx += [i] * len(tl.learners)
  return np.asarray(idx)
