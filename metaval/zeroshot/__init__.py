"""The zero-shot value model: value any tabular supplement from raw arrays.

``load()`` (or ``metaval.load_predictor()``) returns the model shipped with the
package; ``ZeroShotPredictor.value(S, base=(x_B, y_B), eval=(x_T, y_T), learner=)``
returns Nutrition Facts. Modules: ``inputs`` (validated raw arrays), ``features``
(query-time evidence: cheap retrains, optimal transport, relational statistics),
``model`` (the network and gradient boosting), ``labels`` (retraining labels of
generated tasks), ``train`` (featurise, select by validation on generated tasks,
save), ``predictor`` (inference).
"""

from metaval.zeroshot.features import FEATURE_NAMES, MAX_CLASSES, PROXIES, Context
from metaval.zeroshot.predictor import (
  ZeroShotError,
  ZeroShotPredictor,
  default_path,
  is_model_dir,
  load,
  parse_learner,
)

__all__ = [
  "FEATURE_NAMES",
  "MAX_CLASSES",
  "PROXIES",
  "Context",
  "ZeroShotError",
  "ZeroShotPredictor",
  "default_path",
  "is_model_dir",
  "load",
  "parse_learner",
]
