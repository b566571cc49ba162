"""The game engine: one retraining utility, semivalues over points or groups, one result.

Layout:
  game.py: ``Game`` (cache and fit counters), ``TableGame``, ``FunctionGame``.
  utility.py: ``RetrainingUtility`` and the empty-set policy (``no_data_value``).
  semivalues.py: LOO, TMC/permutation/Beta Shapley, Banzhaf-MSR (sampling).
  exact.py: exact Shapley/Banzhaf by enumeration, arrival-order accounting.
  closed_form.py: KNN-Shapley.  oob.py: Data-OOB.
  points.py: ``value_points`` (every pool point), ``group_values``, ``set_value``.
  result.py: ``Valuation``, the one result type.
"""

from metaval.games.closed_form import knn_shapley
from metaval.games.exact import (
  arrival_order,
  banzhaf_from_table,
  exact_banzhaf,
  exact_shapley,
  shapley_from_table,
)
from metaval.games.game import (
  MAX_EXACT_PLAYERS,
  FunctionGame,
  Game,
  GameError,
  TableGame,
  all_coalitions,
  set_function_game,
)
from metaval.games.oob import data_oob
from metaval.games.points import (
  METHODS,
  group_values,
  players_for_groups,
  set_value,
  value_points,
)
from metaval.games.result import Valuation
from metaval.games.semivalues import (
  banzhaf_msr,
  beta_shapley,
  beta_weights,
  loo,
  permutation_shapley,
  tmc_shapley,
)
from metaval.games.utility import RetrainingUtility, no_data_value

__all__ = [
  "MAX_EXACT_PLAYERS",
  "METHODS",
  "FunctionGame",
  "Game",
  "GameError",
  "RetrainingUtility",
  "TableGame",
  "Valuation",
  "all_coalitions",
  "arrival_order",
  "banzhaf_from_table",
  "banzhaf_msr",
  "beta_shapley",
  "beta_weights",
  "data_oob",
  "exact_banzhaf",
  "exact_shapley",
  "group_values",
  "knn_shapley",
  "loo",
  "no_data_value",
  "permutation_shapley",
  "players_for_groups",
  "set_function_game",
  "set_value",
  "shapley_from_table",
  "tmc_shapley",
  "value_points",
]
