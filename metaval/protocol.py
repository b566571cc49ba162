"""One evaluation protocol for every estimator of data value.

Whatever produced an estimate (the learned predictor, small-model ablations,
untraining, per-point Shapley sums), it is scored against the retraining labels
on the same pairs by ``agreement``. Extensions (noisy-label detection, removal
curves, the shared table format and plot style) live beside it here.
"""

from __future__ import annotations

import numpy as np
from scipy import stats


def agreement(estimate, label, *, top_frac: float = 0.1) -> dict[str, float]:
  """Agreement of value estimates with retraining labels on the same pairs.

  Args:
    estimate: ``[P]`` estimated value per pair (any scale for the rank metrics).
    label: ``[P]`` retraining label (mean improvement) per pair.
    top_frac: fraction of pairs counted as "top" for top-k precision.

  Returns:
    ``spearman``, ``pearson``, ``mae`` (same-scale estimators only are meaningful),
    ``sign_acc`` (share of pairs whose sign matches; zero labels count as
    non-positive), ``topk_precision`` (share of the estimate's top ``top_frac``
    that is in the label's top ``top_frac``) and ``n``.
  """
  e = np.asarray(estimate, np.float64).reshape(-1)
  y = np.asarray(label, np.float64).reshape(-1)
  if e.shape != y.shape:
    raise ValueError(f"estimate and label differ in shape: {e.shape} vs {y.shape}")
  ok = np.isfinite(e) & np.isfinite(y)
  e, y = e[ok], y[ok]
  n = len(y)
  out = {"n": float(n)}
  if n < 3 or np.std(e) == 0 or np.std(y) == 0:
    out.update(spearman=float("nan"), pearson=float("nan"))
  else:
    out["spearman"] = float(stats.spearmanr(e, y).statistic)
    out["pearson"] = float(stats.pearsonr(e, y).statistic)
  out["mae"] = float(np.mean(np.abs(e - y))) if n else float("nan")
  out["sign_acc"] = float(np.mean((e > 0) == (y > 0))) if n else float("nan")
  k = max(1, int(round(top_frac * n)))
  if n >= 2:
    top_e = set(np.argsort(-e, kind="stable")[:k])
    top_y = set(np.argsort(-y, kind="stable")[:k])
    out["topk_precision"] = len(top_e & top_y) / k
  else:
    out["topk_precision"] = float("nan")
  return out
