"""The one estimate type and the one call every set-value estimator answers.

Every way of valuing S given B (retraining, the value model, ablations,
untraining, per-point sums) is an ``Estimator``:

    estimator.estimate(task, pairs, spec, metric) -> Estimate

``pairs`` holds P (B, S) pairs (``metaval.pairs.Pairs``), ``spec`` is the target
learner whose gain metric(B ∪ S) - metric(B) is estimated, and ``metric`` the
evaluation metric (``"<eval set>/<metric>"``). The ``Estimate`` holds the P values,
their uncertainty where the estimator has one, and what they cost.
"""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np

from metaval.data.tasks import Task
from metaval.errors import MetavalError
from metaval.learners.models import LearnerSpec
from metaval.learners.train import metric_names
from metaval.pairs import Pairs

# Two-sided 95 % normal quantile: intervals from a standard error.
Z95 = 1.959963984540054


class EstimatorError(MetavalError):
  """An estimator's settings or inputs are not valid."""


@dataclasses.dataclass
class Estimate:
  """One estimator's values of P pairs, their uncertainty and their cost.

  Attributes:
    name: row name, e.g. ``"banzhaf (64 fits)"``.
    value: ``[P]`` estimated value of each pair's S given its B.
    seconds: wall seconds for all P pairs (compilation included unless ``info``
      says otherwise).
    fits: model fits per pair (one fit = one training of one model).
    same_scale: whether ``value`` is on the label's scale (a metric difference;
      MAE against the label is meaningful).
    info: extras (amortised costs, per-seed values, ...).
    low: ``[P]`` lower end of a 95 % interval (NaN where there is none).
    high: ``[P]`` upper end of a 95 % interval (NaN where there is none).
    stderr: ``[P]`` standard error (NaN where there is none); when given and
      ``low``/``high`` are not, the interval is ``value ± 1.96 stderr``.
  """

  name: str
  value: np.ndarray
  seconds: float
  fits: float
  same_scale: bool = True
  info: dict = dataclasses.field(default_factory=dict)
  low: np.ndarray | None = None
  high: np.ndarray | None = None
  stderr: np.ndarray | None = None

  def __post_init__(self):
    self.value = np.asarray(self.value, np.float64).reshape(-1)
    nan = np.full(self.value.shape, np.nan)
    self.stderr = nan if self.stderr is None else np.asarray(self.stderr, np.float64)
    if self.low is None:
      self.low = self.value - Z95 * self.stderr
    if self.high is None:
      self.high = self.value + Z95 * self.stderr
    self.low = np.asarray(self.low, np.float64)
    self.high = np.asarray(self.high, np.float64)
    for f in ("stderr", "low", "high"):
      if getattr(self, f).shape != self.value.shape:
        raise EstimatorError(f"{self.name}: {f} has shape {getattr(self, f).shape}")

  def __len__(self) -> int:
    return len(self.value)


class Estimator:
  """Base class: ``estimate(task, pairs, spec, metric) -> Estimate``.

  Subclasses set ``name`` and implement ``estimate``; settings (budgets, keys,
  checkpoint folders) are constructor arguments, so one list of estimators can be
  run over any pairs.
  """

  name: str = "estimator"

  def estimate(self, task: Task, pairs: Pairs, spec: LearnerSpec, metric: str) -> Estimate:
    """The estimated value of every pair's S given its B for learner ``spec``.

    Args:
      task: the base task the pairs index.
      pairs: P (B, S) pairs.
      spec: the target learner.
      metric: ``"<eval set>/<metric>"`` as ``train_many`` names it.

    Returns:
      An ``Estimate`` of P values.
    """
    raise NotImplementedError


def check_metric(task: Task, metric: str) -> int:
  """Index of ``metric`` in ``metric_names(task)``; a one-line error if unknown."""
  names = metric_names(task)
  if metric not in names:
    raise EstimatorError(f"unknown metric {metric!r}; available: {', '.join(names)}")
  return names.index(metric)


def seed_stderr(per_seed: np.ndarray) -> np.ndarray:
  """``[P]`` standard error of the mean over K seeds of ``[P, K]`` (NaN for K = 1)."""
  k = per_seed.shape[1]
  if k < 2:
    return np.full(per_seed.shape[0], np.nan)
  return per_seed.std(1, ddof=1) / math.sqrt(k)


class Timer:
  """``with Timer() as t: ...`` then ``t.seconds``."""

  def __enter__(self):
    self._t0 = time.perf_counter()
    return self

  def __exit__(self, *exc):
    self.seconds = time.perf_counter() - self._t0
