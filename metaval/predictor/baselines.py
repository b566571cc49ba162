"""Simple baselines the predictor must beat, fitted on the same training pairs.

* ``size``: a least-squares line on log(1 + |S|): the size of S alone.
* ``knn``: k-nearest-neighbour regression on the *mean element features* of S
  (mean raw input and class mix) plus log |S| and log |B|.
* ``ridge``: ridge regression on the hand-made meta-features (``SET_FEATURES``:
  sizes, variance ratio, label entropy, class balance, duplicate / agreement
  shares, ...) and the learner descriptor.

Each is fitted per target metric and returns estimates on the label's scale, so
``protocol.agreement`` scores them exactly like the predictor.
"""

from __future__ import annotations

import numpy as np

from metaval.predictor import features as F
from metaval.util.nearest import nearest


def _standardise(train, test):
  mu, sd = train.mean(0), train.std(0)
  sd = np.where(sd < 1e-8, 1.0, sd)
  return (train - mu) / sd, (test - mu) / sd


def size_inputs(x: F.PairFeatures) -> np.ndarray:
  return np.log1p(x.s_size.astype(np.float64))[:, None]


def mean_feature_inputs(x: F.PairFeatures) -> np.ndarray:
  """Mean raw input + class mix of S (the first RAW_WIDTH + MAX_CLASSES features)."""
  w = F.RAW_WIDTH + F.MAX_CLASSES
  m = x.s_mask[..., None]
  mean = (x.s[..., :w] * m).sum(1) / np.maximum(m.sum(1), 1.0)
  sizes = x.sets[:, [F.SET_FEATURES.index("log_size_s"), F.SET_FEATURES.index("log_size_b")]]
  return np.concatenate([mean, sizes], 1).astype(np.float64)


def meta_inputs(x: F.PairFeatures) -> np.ndarray:
  return np.concatenate([x.sets, x.learner], 1).astype(np.float64)


def fit_linear(a, y, alpha: float = 0.0):
  """Ridge (``alpha`` > 0) or least squares with an unpenalised intercept."""
  mu_a, mu_y = a.mean(0), y.mean(0)
  ac, yc = a - mu_a, y - mu_y
  w = np.linalg.solve(ac.T @ ac + alpha * np.eye(a.shape[1]), ac.T @ yc)
  return lambda b: (b - mu_a) @ w + mu_y


def size_baseline(train_x, train_y, test_x):
  return fit_linear(size_inputs(train_x), train_y, 1e-9)(size_inputs(test_x))


def knn_baseline(train_x, train_y, test_x, k: int = 10):
  a, b = _standardise(mean_feature_inputs(train_x), mean_feature_inputs(test_x))
  k = min(k, len(a))
  d = (b * b).sum(1)[:, None] + (a * a).sum(1)[None] - 2 * b @ a.T  # [test, train]
  nn = nearest(d, k)[0]
  return train_y[nn].mean(1)  # [test, T]


def ridge_baseline(train_x, train_y, test_x, alpha: float = 1.0):
  a, b = _standardise(meta_inputs(train_x), meta_inputs(test_x))
  return fit_linear(a, train_y, alpha)(b)


def all_baselines(train_x, train_y, test_x, *, k: int = 10, alpha: float = 1.0) -> dict:
  """``{name: [P_test, T] estimates}`` of every simple baseline."""
  return {
    "size": size_baseline(train_x, train_y, test_x),
    "knn": knn_baseline(train_x, train_y, test_x, k),
    "ridge": ridge_baseline(train_x, train_y, test_x, alpha),
  }
