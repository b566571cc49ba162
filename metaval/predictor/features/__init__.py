"""Element and set features for the value predictor.

A supplemental set S is valued *relative to* a base set B, so each element of S is
described by its raw input and label (``inputs``: padded to a common width so one
model serves several tasks) plus **relational** features computed against B
(``relational``). Set-level statistics and the kNN-classifier proxies summarise the
pair (``sets``); ``featurizer`` assembles padded ``PairFeatures`` for the model.

Everything here is numpy, deterministic, and shared by training and the API.
"""

from metaval.predictor.features.featurizer import (
  FEATURE_VERSION,
  Featurizer,
  PairFeatures,
  featurize_labels,
)
from metaval.predictor.features.inputs import (
  CLIP,
  CODE_BINS,
  MAX_CLASSES,
  RAW_WIDTH,
  FeatureError,
  TaskView,
  check_labels,
  code_embedding,
  embed_inputs,
  num_label_classes,
  task_view,
)
from metaval.predictor.features.relational import (
  ELEM_DIM,
  KNN,
  NEAR_DUP,
  PROBE,
  RELATIONAL,
  BaseStats,
  base_stats,
  element_features,
  one_blas_thread,
  relational,
  row_keys,
  sqdist,
)
from metaval.predictor.features.sets import (
  FAMILIES,
  LEARNER_DIM,
  LEARNER_FEATURES,
  SET_DIM,
  SET_FEATURES,
  knn_proxies,
  learner_features,
  set_features,
  set_features_many,
)

__all__ = [
  "CLIP",
  "CODE_BINS",
  "ELEM_DIM",
  "FAMILIES",
  "FEATURE_VERSION",
  "KNN",
  "LEARNER_DIM",
  "LEARNER_FEATURES",
  "MAX_CLASSES",
  "NEAR_DUP",
  "PROBE",
  "RAW_WIDTH",
  "RELATIONAL",
  "SET_DIM",
  "SET_FEATURES",
  "BaseStats",
  "FeatureError",
  "Featurizer",
  "PairFeatures",
  "TaskView",
  "base_stats",
  "check_labels",
  "code_embedding",
  "element_features",
  "embed_inputs",
  "featurize_labels",
  "knn_proxies",
  "learner_features",
  "num_label_classes",
  "one_blas_thread",
  "relational",
  "row_keys",
  "set_features",
  "set_features_many",
  "sqdist",
  "task_view",
]
