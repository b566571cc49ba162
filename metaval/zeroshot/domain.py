"""Where a query lies outside what the zero-shot model was trained on.

The question-level features (B's and S's sizes, the input width, the classes, the
learner's descriptor) of a query are compared with the range of the model's training
rows; a query outside it is answered and warned as extrapolated, in the user's terms.
"""

from __future__ import annotations

import numpy as np

from metaval.predictor.features.sets import LEARNER_FEATURES
from metaval.zeroshot import features as Z

# Features that describe the question rather than S's content, with how each is read
# back into the user's terms: (what, decode). A query whose value of one of them lies
# outside the range the model was trained on is answered, and warned as extrapolated.
_DOMAIN = {
  "log_n_base": ("points in B", np.exp),
  "log_n_supp": ("new points in S", np.exp),
  "log_width": ("input features", np.exp),
  "log_classes": ("classes", np.exp),
  # The learner's descriptor, in the order of ``LEARNER_FEATURES``; family flags last.
  **{
    f"learner_{i}": {
      "log_params": ("learner parameters", lambda v: 10.0**v),
      "log_width": ("learner width", np.exp2),
      "depth": ("learner depth", lambda v: v),
      "log_steps": ("learner steps", lambda v: 10.0**v),
      "log_lr": ("learner learning rate", lambda v: 10.0**v),
      "log_features": ("learner random features", lambda v: np.exp2(v) - 1),
    }.get(name, (f"learner family {name.removeprefix('family_')!r}", None))
    for i, name in enumerate(LEARNER_FEATURES)
  },
}
_DOMAIN_SLACK = 1e-4  # features are float32: a value equal to a bound is inside


def _num(v: float) -> str:
  """A decoded feature for a message: counts as integers, the rest to 3 digits."""
  if 1 <= abs(v) < 1e9 and abs(v - round(v)) <= 1e-3 * abs(v):
    return f"{round(v):,}"
  return f"{v:.3g}"


_DOMAIN_COLUMNS = np.array([Z.FEATURE_NAMES.index(name) for name in _DOMAIN])


def outside_domain(rows: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
  """``[n, D]``: which question-level features (``_DOMAIN``) of each row lie outside
  the training rows' range ``[low, high]``."""
  v = np.asarray(rows, np.float64)[..., _DOMAIN_COLUMNS]
  lo, hi = (np.asarray(a, np.float64)[_DOMAIN_COLUMNS] for a in (low, high))
  return (v < lo - _DOMAIN_SLACK) | (v > hi + _DOMAIN_SLACK)


def domain_warning(row: np.ndarray, low: np.ndarray, high: np.ndarray, outside=None) -> str | None:
  """One warning naming each question-level feature of ``row`` outside [low, high]
  (``outside``: ``outside_domain`` of the row, when already known)."""
  outside = outside_domain(row, low, high) if outside is None else outside
  if not outside.any():
    return None
  v, lo, hi = (np.asarray(a, np.float64)[_DOMAIN_COLUMNS] for a in (row, low, high))
  out = []
  for i, (what, decode) in enumerate(_DOMAIN.values()):
    if not outside[i]:
      continue
    v_i, lo_i, hi_i = float(v[i]), float(lo[i]), float(hi[i])
    if decode is None:  # a family flag the training labels never set
      out.append(f"{what} (never trained on)")
    else:
      span = _num(decode(lo_i)) + ("" if hi_i == lo_i else f" to {_num(decode(hi_i))}")
      out.append(f"{what} {_num(decode(v_i))} (trained: {span})")
  return "outside what the model was trained on, the value extrapolates: " + "; ".join(out)
