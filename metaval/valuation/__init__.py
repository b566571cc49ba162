"""Other strategies and baselines for valuing data, on the same learners.

The per-point baselines (games over pool points, from ``metaval.games``) are
imported here under their historical names; sibling modules (ablations,
untraining, attribution, royalties, the ``*_job`` CLI jobs) are imported by their
own names.
"""

from metaval.valuation.pointwise import (
  METHODS,
  NoisyProblem,
  Utility,
  Valuation,
  ValuationError,
  banzhaf,
  beta_shapley,
  beta_weights,
  data_oob,
  group_values,
  knn_shapley,
  loo,
  noisy_problem,
  players_for_groups,
  set_value,
  tmc_shapley,
  value_points,
)

__all__ = [
  "METHODS",
  "NoisyProblem",
  "Utility",
  "Valuation",
  "ValuationError",
  "banzhaf",
  "beta_shapley",
  "beta_weights",
  "data_oob",
  "group_values",
  "knn_shapley",
  "loo",
  "noisy_problem",
  "players_for_groups",
  "set_value",
  "tmc_shapley",
  "value_points",
]
