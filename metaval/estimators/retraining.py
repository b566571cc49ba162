"""Retraining (the label) and ablations (a cheaper learner's label).

Both train on B and on B ∪ S with K paired seeds through ``metaval.pairs.label``,
the function the label pipeline calls: with the pipeline's key and options the
numbers are the pipeline's labels bit for bit.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from metaval import pairs as pairs_lib
from metaval.data.tasks import Task
from metaval.estimators.base import (
  Estimate,
  Estimator,
  EstimatorError,
  Timer,
  check_metric,
  seed_stderr,
)
from metaval.learners.models import LearnerSpec, ladder


class Retraining(Estimator):
  """metric(B ∪ S) - metric(B), mean over K paired seeds: the ground truth.

  The estimate's ``stderr`` is the seed standard error; ``info["per_seed"]`` holds
  the ``[P, K]`` improvements and ``info["labels"]`` the ``PairLabels``.

  Args:
    num_seeds: K paired seeds.
    key: root key of the paired-seed scheme (default ``key(0)``).
    chunk: a ``metaval.pairs.label`` option.
    extra_capacity: a ``metaval.pairs.label`` option.
    gather: a ``metaval.pairs.label`` option.
    shared_rows: a ``metaval.pairs.label`` option.
    name: row name.
  """

  def __init__(
    self,
    *,
    num_seeds: int = 4,
    key: jax.Array | None = None,
    chunk: int = 8,
    extra_capacity: int = 1024,
    gather: int | None = None,
    shared_rows: int | None = None,
    name: str = "retraining",
  ):
    self.num_seeds, self.key, self.name = int(num_seeds), key, name
    self.options = dict(
      chunk=int(chunk), extra_capacity=int(extra_capacity), gather=gather, shared_rows=shared_rows
    )

  def learner(self, spec: LearnerSpec) -> LearnerSpec:
    """The learner actually retrained (the target itself)."""
    return spec

  def estimate(self, task: Task, pairs, spec: LearnerSpec, metric: str) -> Estimate:
    check_metric(task, metric)
    pairs = pairs_lib.as_pairs(pairs)
    with Timer() as t:
      labels = pairs_lib.label(
        task, pairs, self.learner(spec), num_seeds=self.num_seeds, key=self.key, **self.options
      )
    per_seed = labels.improvement(metric)  # [P, K]
    return Estimate(
      self.name,
      per_seed.mean(1),
      t.seconds,
      labels.fits / len(pairs),
      stderr=seed_stderr(per_seed),
      info={"per_seed": per_seed, "labels": labels},
    )


class Ablation(Retraining):
  """The retraining label of a cheaper learner: a smaller ladder rung or fewer steps.

  Args:
    size: the target's size ladder rung (``metaval.learners.models.ladder``; for
      the linear learner, fixed random features), or None to keep the size.
    steps_fraction: train for this share of the target's steps (None: all).
    **kwargs: ``Retraining`` options (give it its own ``key``: an independent label).
  """

  def __init__(self, *, size: int | None = None, steps_fraction: float | None = None, **kwargs):
    if size is None and steps_fraction is None:
      raise EstimatorError("an ablation needs a smaller size or a steps_fraction")
    if steps_fraction is not None and not 0 < steps_fraction <= 1:
      raise EstimatorError(f"steps_fraction must be in (0, 1], got {steps_fraction}")
    kwargs.setdefault("name", "ablation")
    super().__init__(**kwargs)
    self.size, self.steps_fraction = size, steps_fraction

  def learner(self, spec: LearnerSpec) -> LearnerSpec:
    if self.size is not None:
      (spec,) = ladder(spec, (int(self.size),))
    if self.steps_fraction is not None:
      steps = max(1, int(spec.steps * self.steps_fraction))
      spec = dataclasses.replace(spec, steps=steps)
    return spec


def per_seed(estimate: Estimate) -> np.ndarray:
  """``[P, K]`` per-seed improvements of a ``Retraining`` estimate."""
  if "per_seed" not in estimate.info:
    raise EstimatorError(f"{estimate.name} has no per-seed values")
  return np.asarray(estimate.info["per_seed"])
