"""One estimator interface: every way of valuing S given B answers one call.

    estimator.estimate(task, pairs, spec, metric) -> Estimate

``ESTIMATORS`` maps each name to its class; each name has one meaning, the same
in every table (E3 strategies, E5 Goodhart suite):

* ``retraining``: metric(B ∪ S) - metric(B), K paired seeds (the label).
* ``predictor``: the trained value model (``metaval.api.load_predictor``).
* ``ablation``: the retraining label of a smaller learner or fewer steps.
* ``untraining``: the drop when gradient ascent unlearns S from the B ∪ S model.
* ``knn_shapley``, ``data_oob``, ``tmc_shapley``, ``banzhaf``: sums over S of
  per-point values (see ``metaval.estimators.pointwise`` for each game).
"""

from metaval.estimators.base import Estimate, Estimator, EstimatorError
from metaval.estimators.pointwise import BanzhafSum, DataOobSum, KnnShapleySum, TmcShapleySum
from metaval.estimators.retraining import Ablation, Retraining, per_seed
from metaval.estimators.untraining import Untraining
from metaval.estimators.value_model import ValueModel

ESTIMATORS = {
  "retraining": Retraining,
  "predictor": ValueModel,
  "ablation": Ablation,
  "untraining": Untraining,
  "knn_shapley": KnnShapleySum,
  "data_oob": DataOobSum,
  "tmc_shapley": TmcShapleySum,
  "banzhaf": BanzhafSum,
}

__all__ = [
  "ESTIMATORS",
  "Ablation",
  "BanzhafSum",
  "DataOobSum",
  "Estimate",
  "Estimator",
  "EstimatorError",
  "KnnShapleySum",
  "Retraining",
  "TmcShapleySum",
  "Untraining",
  "ValueModel",
  "per_seed",
]
