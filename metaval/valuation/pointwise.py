"""Per-point data valuation baselines: the historical import path of ``metaval.games``.

The methods (LOO, TMC/Beta Shapley, Banzhaf, KNN-Shapley, Data-OOB) are games over
pool points in ``metaval.games``; the flipped-label benchmark problem is in
``metaval.valuation.noisy`` and the ``metaval baselines`` job in
``metaval.jobs.baselines``. This module keeps the names other code
imports from here.
"""

from metaval.games import (
  METHODS,
  GameError,
  Valuation,
  beta_shapley,
  beta_weights,
  data_oob,
  group_values,
  knn_shapley,
  loo,
  no_data_value,
  players_for_groups,
  set_value,
  tmc_shapley,
  value_points,
)
from metaval.games import RetrainingUtility as Utility
from metaval.games import banzhaf_msr as banzhaf
from metaval.valuation.noisy import NoisyProblem, noisy_problem

ValuationError = GameError


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
  "no_data_value",
  "noisy_problem",
  "players_for_groups",
  "set_value",
  "tmc_shapley",
  "value_points",
]
