"""Per-point sums: a set's value as the sum of its points' per-point values.

Each name has one meaning, the same in every table:

* ``knn_shapley``: exact KNN-Shapley values (Jia et al. 2019) of the points of
  B ∪ S against the metric's evaluation set, summed over S's points. No fits;
  its scale is not the metric's.
* ``data_oob``: Data-OOB values (Kwon & Zou 2023) with bootstrap bags over B ∪ S,
  summed over S's points (a count-like scale, not the metric's).
* ``tmc_shapley``: TMC-Shapley values in the game whose players are S's points
  and whose utility is the learner trained on B ∪ (coalition), B always present;
  summed over S. Shapley values are efficient, so each full permutation's
  contributions sum to U(B ∪ S) - U(B), the label: the sum departs from it only
  through truncation and the shared training key (same scale as the label).
* ``banzhaf``: Banzhaf values (maximum-sample-reuse estimate) in the same game,
  summed over S. Banzhaf values are not efficient: a different quantity.

The per-point engines are the game engine's (``metaval.games``: ``RetrainingUtility``,
``tmc_shapley``, ``banzhaf_msr``, ``knn_shapley``, ``data_oob``, ``set_value``).
"""

from __future__ import annotations

import math

import numpy as np

from metaval import games
from metaval import pairs as pairs_lib
from metaval.data.tasks import Task
from metaval.estimators.base import Estimate, Estimator, EstimatorError, Timer, check_metric
from metaval.learners.models import LearnerSpec


def _s_points(pairs: pairs_lib.Pairs, p: int) -> np.ndarray:
  """Rows of S in pair ``p``'s union pool (B's rows come first)."""
  n_b = len(pairs.base(p))
  return np.arange(n_b, n_b + len(pairs.supp_y[p]))


class KnnShapleySum(Estimator):
  """Sum over S of exact KNN-Shapley values on B ∪ S (see the module doc).

  Args:
    k: neighbours.
  """

  def __init__(self, *, k: int = 5, name: str | None = None):
    self.k = int(k)
    self.name = name or f"knn_shapley (k={self.k})"

  def estimate(self, task: Task, pairs, spec: LearnerSpec, metric: str) -> Estimate:
    del spec  # a nearest-neighbour game: no learner
    ev = metric.split("/")[0]
    if ev not in task.evals:
      raise EstimatorError(
        f"no evaluation set {ev!r} for {metric!r}; task has {sorted(task.evals)}"
      )
    ex, ey = task.evals[ev]
    pairs = pairs_lib.as_pairs(pairs)
    vals = []
    with Timer() as t:
      for p in range(len(pairs)):
        sub, _, _ = pairs_lib.union_pool(task, pairs, p)
        v = games.knn_shapley(sub.x, sub.y, ex, ey, k=self.k).values
        vals.append(games.set_value(v, _s_points(pairs, p)))
    return Estimate(self.name, np.asarray(vals), t.seconds, 0.0, same_scale=False)


class DataOobSum(Estimator):
  """Sum over S of Data-OOB values with bags over B ∪ S (see the module doc).

  Args:
    num_bags: bootstrap bags (= fits per pair).
    seed: bag seed.
  """

  def __init__(self, *, num_bags: int = 64, seed: int = 0, name: str = "data_oob"):
    self.num_bags, self.seed, self.name = int(num_bags), int(seed), name

  def estimate(self, task: Task, pairs, spec: LearnerSpec, metric: str) -> Estimate:
    del metric  # Data-OOB scores each point by out-of-bag accuracy
    pairs = pairs_lib.as_pairs(pairs)
    vals = []
    with Timer() as t:
      for p in range(len(pairs)):
        sub, _, _ = pairs_lib.union_pool(task, pairs, p)
        v = games.data_oob(
          sub, spec, num_bags=self.num_bags, seed=self.seed, batch_size=self.num_bags
        ).values
        vals.append(games.set_value(v, _s_points(pairs, p)))
    return Estimate(self.name, np.asarray(vals), t.seconds, float(self.num_bags), same_scale=False)


class _PairUtility(games.RetrainingUtility):
  """A ``Utility`` on a zero-padded B ∪ S pool: padding rows have weight 0.

  Padding to a fixed pool size lets one compiled program serve every pair.
  """

  def __init__(self, task: Task, spec: LearnerSpec, players, weights, **kwargs):
    super().__init__(task, spec, players=players, **kwargs)
    self._weights = np.asarray(weights, np.float32)

  def masks(self, coalitions) -> np.ndarray:
    return super().masks(coalitions) * self._weights[None]


class _GameSum(Estimator):
  """Shared loop of the semivalue sums: S's points are players, B is background."""

  method = ""
  unit = ""
  same_scale = True

  def __init__(self, budget: int, *, seed: int, batch_size: int, pad_multiple: int, name):
    if budget < 1:
      raise EstimatorError(f"budget must be >= 1, got {budget}")
    self.budget, self.seed, self.batch_size = int(budget), int(seed), int(batch_size)
    self.pad_multiple = int(pad_multiple)
    self.name = name or f"{self.method} ({self.budget} {self.unit})"

  def _values(self, u: games.RetrainingUtility, p: int) -> games.Valuation:
    raise NotImplementedError

  def estimate(self, task: Task, pairs, spec: LearnerSpec, metric: str) -> Estimate:
    check_metric(task, metric)
    pairs = pairs_lib.as_pairs(pairs)
    n = max(len(pairs.base(p)) + len(pairs.supp_y[p]) for p in range(len(pairs)))
    size = self.pad_multiple * math.ceil(n / self.pad_multiple)
    vals, fits = [], 0
    with Timer() as t:
      for p in range(len(pairs)):
        sub, players, weights = pairs_lib.union_pool(task, pairs, p, size)
        # All fits of a pair share one key (common random numbers, see ``Utility``).
        u = _PairUtility(
          sub, spec, players, weights, metric=metric, seed=self.seed, batch_size=self.batch_size
        )
        vals.append(float(self._values(u, p).values.sum()))
        fits += u.fits
    return Estimate(
      self.name, np.asarray(vals), t.seconds, fits / len(pairs), same_scale=self.same_scale
    )


class TmcShapleySum(_GameSum):
  """Sum over S of TMC-Shapley values with S's points as players, B always present.

  The game: players are S's points; the utility of a coalition C is the metric of
  the learner trained on B ∪ C (B is background, in every coalition). The sum
  over S of the Shapley values is therefore efficient: every full permutation
  telescopes to U(B ∪ S) - U(B), so the estimate departs from the retraining label
  only through truncation (``rtol``) and the shared training key.

  Args:
    num_permutations: permutations sampled per pair.
    rtol: truncation tolerance (None: every prefix).
    block: prefix lengths per permutation per batch.
    seed: utility key; pair p's permutations use ``seed + p``.
    batch_size: models per compiled batch.
    pad_multiple: union pools are zero-padded to a multiple of this (one program).
  """

  method, unit = "tmc_shapley", "permutations"

  def __init__(
    self,
    *,
    num_permutations: int = 1,
    rtol: float | None = 0.05,
    block: int = 16,
    seed: int = 0,
    batch_size: int = 16,
    pad_multiple: int = 256,
    name: str | None = None,
  ):
    super().__init__(
      num_permutations, seed=seed, batch_size=batch_size, pad_multiple=pad_multiple, name=name
    )
    self.rtol, self.block = rtol, int(block)

  def _values(self, u, p):
    return games.tmc_shapley(
      u, num_permutations=self.budget, rtol=self.rtol, block=self.block, seed=self.seed + p
    )


class BanzhafSum(_GameSum):
  """Sum over S of Banzhaf values (MSR) in the same game as ``TmcShapleySum``.

  Args:
    num_samples: sampled coalitions per pair (= fits).
    seed: utility key; pair p's coalitions use ``seed + p``.
    batch_size: models per compiled batch (default: ``num_samples``).
    pad_multiple: union pools are zero-padded to a multiple of this.
  """

  method, unit, same_scale = "banzhaf", "fits", False

  def __init__(
    self,
    *,
    num_samples: int = 64,
    seed: int = 0,
    batch_size: int | None = None,
    pad_multiple: int = 256,
    name: str | None = None,
  ):
    super().__init__(
      num_samples,
      seed=seed,
      batch_size=batch_size or num_samples,
      pad_multiple=pad_multiple,
      name=name,
    )

  def _values(self, u, p):
    return games.banzhaf_msr(u, num_samples=self.budget, seed=self.seed + p)
