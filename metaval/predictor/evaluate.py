"""Held-out evaluation of the predictor against baselines and the label noise ceiling.

Splits (each trains its own predictor in ``<workdir>/<split>/``, resumable):

* ``pairs``: unseen pairs (the seeded random split of ``train.py``).
* ``kind``: leave one supplement kind out. One predictor per held-out kind; the
  held-out kind's predictions are pooled over folds and scored together
  (``pooled``: can the model place kinds it never saw among the others?), and
  each kind is also scored on its own (``within``).
* ``task``: leave one base task out (needs labels of two or more tasks).
* ``learner``: train on every learner but the largest, test on the largest.

Every estimate is scored by ``protocol.agreement`` next to the simple baselines
(``baselines.py``, fitted on the same training pairs) and the noise ceiling: the
split-half seed correlation of the test labels, Spearman-Brown-corrected to K
seeds (as in ``metaval.labeling.quality.repeatability``); with K = 1 it cannot be
measured.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np
from scipy import stats as sstats

from metaval import protocol
from metaval.data import task_slug
from metaval.predictor import baselines
from metaval.predictor import data as D
from metaval.predictor import train as T
from metaval.util import io

METRICS = ("spearman", "pearson", "mae", "sign_acc", "topk_precision")


def noise_ceiling(per_seed: np.ndarray) -> dict:
  """Split-half repeatability of labels ``[P, K]``: Spearman and corrected Pearson."""
  k = per_seed.shape[1]
  nan = float("nan")
  if k < 2 or len(per_seed) < 3:
    return {"split_spearman": nan, "ceiling_pearson": nan}
  a, b = per_seed[:, 0::2].mean(1), per_seed[:, 1::2].mean(1)
  if np.std(a) == 0 or np.std(b) == 0:
    return {"split_spearman": nan, "ceiling_pearson": nan}
  rs = float(sstats.spearmanr(a, b).statistic)
  rp = float(sstats.pearsonr(a, b).statistic)
  return {"split_spearman": rs, "ceiling_pearson": 2 * rp / (1 + rp) if rp > -1 else nan}


def _fold(config, workdir, data: D.PairData, train_idx, test_idx, name):
  """Fits a predictor on ``train_idx`` (with a validation share) and predicts ``test_idx``."""
  rng = np.random.default_rng(config.seed)
  train_idx = rng.permutation(train_idx)
  n_val = max(1, int(round(config.train.val_frac * len(train_idx))))
  val, tr = train_idx[:n_val], train_idx[n_val:]
  model, norm, calib, hist = T.fit(config, workdir, data.take(tr), data.take(val), name=name)
  test = data.take(test_idx)
  mean, half = T.predict(model, norm, calib, test.x, config.interval)
  base = baselines.all_baselines(
    data.x.take(tr), data.y[tr], test.x, k=config.eval.knn_k, alpha=config.eval.ridge_alpha
  )
  return {"predictor": mean, "half": half, **base}, hist


def _score(est: dict, data: D.PairData, idx, targets) -> dict:
  """Per target: agreement of each estimator, coverage, and the noise ceiling."""
  out = {}
  for t, name in enumerate(targets):
    y = data.y[idx, t]
    row = {k: protocol.agreement(v[:, t], y) for k, v in est.items() if k != "half"}
    row["predictor"]["coverage"] = float(
      np.mean(np.abs(y - est["predictor"][:, t]) <= est["half"][:, t])
    )
    row["ceiling"] = noise_ceiling(data.per_seed[idx, :, t])
    out[name] = row
  return out


def _merge(preds: list[tuple[np.ndarray, dict]], n: int) -> tuple[np.ndarray, dict]:
  idx = np.concatenate([i for i, _ in preds])
  keys = preds[0][1].keys()
  return idx, {k: np.concatenate([p[k] for _, p in preds]) for k in keys}


def run_splits(config, workdir: str, data: D.PairData, targets, predictions=None) -> dict:
  """Runs every configured split; returns ``{split: {"n", "scores", ...}}``.

  Args:
    config: a ``predictor`` config.
    workdir: where each fold's predictor is trained.
    data: the labelled pairs.
    targets: metric names, in ``data.y``'s column order.
    predictions: if a dict, filled with ``<split>/label`` and ``<split>/<estimator>``
      arrays ``[n_test, targets]`` (the per-pair numbers behind each split's scores).

  Returns:
    ``{split: {"n_test", "scores", ...}}``.
  """
  results = {}

  def keep(split, idx, est):
    if predictions is not None:
      predictions[f"{split}/label"] = data.y[idx]
      predictions.update({f"{split}/{k}": v for k, v in est.items()})

  splits = tuple(config.eval.splits)
  n = len(data)
  if "pairs" in splits:
    tr, va, te = D.random_split(n, config.train.val_frac, config.train.test_frac, config.seed)
    est, _ = _fold(
      config, os.path.join(workdir, "pairs"), data, np.concatenate([tr, va]), te, "pairs"
    )
    results["pairs"] = {"n_test": len(te), "scores": _score(est, data, te, targets)}
    keep("pairs", te, est)
  if "kind" in splits:
    kinds = list(config.eval.kinds) or sorted(set(data.kind))
    preds, within = [], {}
    for k in kinds:
      te = np.flatnonzero(data.kind == k)
      tr = np.flatnonzero(data.kind != k)
      if len(te) < 3 or len(tr) < 10:
        continue
      est, _ = _fold(config, os.path.join(workdir, f"kind_{k}"), data, tr, te, f"kind-{k}")
      preds.append((te, est))
      within[k] = _score(est, data, te, targets)
    if preds:
      idx, est = _merge(preds, n)
      results["kind"] = {
        "n_test": len(idx),
        "held_out": kinds,
        "scores": _score(est, data, idx, targets),
        "within": within,
      }
      keep("kind", idx, est)
  if "task" in splits and len(set(data.task)) > 1:
    preds, within = [], {}
    for t in sorted(set(data.task)):
      te, tr = np.flatnonzero(data.task == t), np.flatnonzero(data.task != t)
      est, _ = _fold(
        config, os.path.join(workdir, f"task_{task_slug(t)}"), data, tr, te, f"task-{t}"
      )
      preds.append((te, est))
      within[t] = _score(est, data, te, targets)
    idx, est = _merge(preds, n)
    results["task"] = {
      "n_test": len(idx),
      "scores": _score(est, data, idx, targets),
      "within": within,
    }
    keep("task", idx, est)
  if "learner" in splits and len(set(data.learner_params)) > 1:
    # "Larger": the largest parameter count, per task (sizes differ across tasks).
    te_mask = np.zeros(n, bool)
    for t in set(data.task):
      m = data.task == t
      te_mask |= m & (data.learner_params == data.learner_params[m].max())
    te, tr = np.flatnonzero(te_mask), np.flatnonzero(~te_mask)
    est, _ = _fold(config, os.path.join(workdir, "learner"), data, tr, te, "learner")
    results["learner"] = {"n_test": len(te), "scores": _score(est, data, te, targets)}
    keep("learner", te, est)
  return results


def markdown(results: dict, target: str) -> str:
  """One table per split for ``target``: estimators x metrics, with the ceiling."""
  lines = []
  for split, res in results.items():
    sc = res["scores"][target]
    ceil = sc["ceiling"]
    lines.append(
      f"\n**{split}** ({res['n_test']} test pairs, {target}; noise ceiling: split-half "
      f"Spearman {ceil['split_spearman']:.3f}, corrected Pearson {ceil['ceiling_pearson']:.3f})\n"
    )
    rows = []
    for est in ("predictor", "ridge", "knn", "size"):
      a = sc[est]
      row = {"estimator": est, **{m: f"{a[m]:.3f}" for m in METRICS}}
      row["coverage"] = f"{a['coverage']:.2f}" if "coverage" in a else ""
      rows.append(row)
    lines.append(io.markdown_table(rows))
    if "within" in res:
      lines.append(
        f"\nwithin each held-out group ({target}, Spearman): predictor / ridge / knn / size\n"
      )
      rows = []
      for g, w in res["within"].items():
        r = w[target]
        row = {"group": g, "n": int(r["predictor"]["n"])}
        row.update({e: f"{r[e]['spearman']:.3f}" for e in ("predictor", "ridge", "knn", "size")})
        rows.append(row)
      lines.append(io.markdown_table(rows))
  return "\n".join(lines) + "\n"


def run(config, workdir: str) -> dict:
  """``metaval evaluate``: every held-out split, printed and written to ``workdir``."""
  os.makedirs(workdir, exist_ok=True)
  t0 = time.perf_counter()
  label_sets = D.load_label_sets(config)
  targets = D.choose_targets(label_sets, tuple(config.targets))
  featurizer = D.make_featurizer(config)
  data = D.build_pairs(label_sets, targets, featurizer, config.features.get("cache_dir") or None)
  predictions = {}
  results = run_splits(config, workdir, data, targets, predictions)
  md = "".join(markdown(results, t) for t in targets[:2])
  out = {
    "targets": targets,
    "num_pairs": len(data),
    "splits": results,
    "seconds": time.perf_counter() - t0,
  }
  # NaN (e.g. the noise ceiling with one seed) stays NaN, as readers of eval.json expect.
  io.write_text(os.path.join(workdir, "eval.json"), json.dumps(out, indent=1))
  io.write_text(os.path.join(workdir, "eval.md"), md)
  # Per-pair label and estimates of every split: E2's scatter is drawn from these.
  io.save_npz(os.path.join(workdir, "predictions.npz"), **predictions)
  print(md)
  print(f"[evaluate] {len(data)} pairs, {out['seconds']:.0f}s; wrote {workdir}/eval.md")
  return out
