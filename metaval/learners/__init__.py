"""Learner families (pure JAX) and the batched trainer."""

from metaval.learners.models import (
  FAMILIES,
  LADDERS,
  LearnerSpec,
  SpecError,
  apply,
  forward_flops,
  init,
  ladder,
  num_params,
  train_flops,
)
from metaval.learners.train import (
  TRACE_COUNTS,
  TrainInputError,
  TrainResult,
  metric_names,
  train_many,
  train_one,
)

__all__ = [
  "FAMILIES",
  "LADDERS",
  "LearnerSpec",
  "SpecError",
  "TRACE_COUNTS",
  "TrainInputError",
  "TrainResult",
  "apply",
  "forward_flops",
  "init",
  "ladder",
  "metric_names",
  "num_params",
  "train_flops",
  "train_many",
  "train_one",
]
