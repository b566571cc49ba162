"""Closed-form values: exact Shapley values of a K-nearest-neighbour utility, no fits.

References:
  Jia et al., "Efficient Task-Specific Data Valuation for Nearest Neighbor
  Algorithms", VLDB 2019.
"""

from __future__ import annotations

import time

import numpy as np

from metaval.games.game import GameError
from metaval.games.result import Valuation


def knn_shapley(x_train, y_train, x_test, y_test, *, k: int = 5) -> Valuation:
  """Exact Shapley values of a K-nearest-neighbour utility (each training point a player).

  For each test point, training points are sorted by distance and the recursion
  ``s_N = 1[y_N = y_t] / N``,
  ``s_i = s_{i+1} + (1[y_i = y_t] - 1[y_{i+1} = y_t]) / K * min(K, i) / i``
  runs from the farthest point in; values are averaged over test points. The
  utility of a set is the mean over test points of the share of its K nearest
  members with the test point's label (0 for the empty set).

  Args:
    x_train: ``[N, d]`` inputs of the players.
    y_train: ``[N]`` labels of the players.
    x_test: inputs of the evaluation set.
    y_test: labels of the evaluation set.
    k: neighbours.

  Returns:
    A ``Valuation`` over the N training points (exact: zero standard errors).
  """
  t0 = time.perf_counter()
  xtr, xte = np.asarray(x_train, np.float64), np.asarray(x_test, np.float64)
  ytr, yte = np.asarray(y_train), np.asarray(y_test)
  n = len(ytr)
  if n == 0 or len(yte) == 0:
    raise GameError("knn_shapley needs non-empty training and test sets")
  if k < 1:
    raise GameError(f"k must be >= 1, got {k}")
  d2 = (xte**2).sum(1)[:, None] - 2 * xte @ xtr.T + (xtr**2).sum(1)[None]  # [T, N]
  order = np.argsort(d2, axis=1, kind="stable")
  match = (ytr[order] == yte[:, None]).astype(np.float64)  # [T, N] nearest first
  i = np.arange(1, n)  # 1-based rank of the nearer point of each adjacent pair
  step = (match[:, :-1] - match[:, 1:]) / k * np.minimum(k, i) / i  # [T, N-1]
  s = np.empty_like(match)
  s[:, -1] = match[:, -1] / n
  s[:, :-1] = s[:, -1:] + np.cumsum(step[:, ::-1], axis=1)[:, ::-1]
  values = np.zeros(n)
  np.add.at(values, order.reshape(-1), s.reshape(-1))
  values /= len(yte)
  return Valuation(
    method="knn_shapley",
    players=list(range(n)),
    values=values,
    stderr=np.zeros(n),
    seconds=time.perf_counter() - t0,
    u_empty=0.0,
    info={"k": k},
  )
