"""Learner families (pure JAX) and the batched trainer."""

from metaval.learners.models import (
  FAMILIES,
  LADDERS,
  SOLVERS,
  LearnerSpec,
  SpecError,
  apply,
  forward_flops,
  init,
  ladder,
  num_params,
  train_flops,
)
from metaval.learners.solve import CONVEX_SOLVERS, fit_linear
from metaval.learners.train import (
  TRACE_COUNTS,
  TrainInputError,
  TrainResult,
  metric_names,
  train_many,
  train_one,
)

__all__ = [
  "CONVEX_SOLVERS",
  "FAMILIES",
  "LADDERS",
  "LearnerSpec",
  "SOLVERS",
  "SpecError",
  "TRACE_COUNTS",
  "TrainInputError",
  "TrainResult",
  "apply",
  "fit_linear",
  "forward_flops",
  "init",
  "ladder",
  "metric_names",
  "num_params",
  "train_flops",
  "train_many",
  "train_one",
]
