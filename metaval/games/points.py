"""Values of pool points and of sets of points: the entry point the per-point baselines share.

``value_points`` runs one method on every pool point of a task (each point a player
of one ``RetrainingUtility``, or the closed form / bagging estimate); ``group_values``
plays the same game with whole sets as players; ``set_value`` sums point values.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from metaval.data.tasks import Task
from metaval.games import semivalues
from metaval.games.closed_form import knn_shapley
from metaval.games.game import GameError
from metaval.games.oob import data_oob
from metaval.games.result import Valuation
from metaval.games.utility import RetrainingUtility
from metaval.learners.models import LearnerSpec

METHODS = ("loo", "tmc_shapley", "beta_shapley", "banzhaf", "knn_shapley", "data_oob")
# The semivalue estimators behind the method names that train on coalitions.
GAME_METHODS = {
  "loo": semivalues.loo,
  "tmc_shapley": semivalues.tmc_shapley,
  "beta_shapley": semivalues.beta_shapley,
  "banzhaf": semivalues.banzhaf_msr,
}


def value_points(
  method: str,
  task: Task,
  spec: LearnerSpec,
  *,
  metric: str = "test/accuracy",
  seed: int = 0,
  batch_size: int = 256,
  **kwargs,
) -> Valuation:
  """Runs one method on every pool point of ``task`` (the common entry point).

  Args:
    method: one of ``METHODS``.
    task: whose pool points are valued; ``metric`` names its utility.
    spec: the learner.
    metric: ``"<eval set>/<metric>"`` as ``train_many`` reports it.
    seed: seeds sampling and the shared training key.
    batch_size: models per compiled batch.
    **kwargs: the method's own options (``num_permutations``, ``num_samples``, ...).

  Returns:
    A ``Valuation`` over the ``task.pool_size`` points.
  """
  if method not in METHODS:
    raise GameError(f"unknown method {method!r}; available: {', '.join(METHODS)}")
  if method == "knn_shapley":
    ex, ey = task.evals[metric.split("/")[0]]
    return knn_shapley(task.x, task.y, ex, ey, **kwargs)
  if method == "data_oob":
    return data_oob(task, spec, seed=seed, batch_size=batch_size, **kwargs)
  game = RetrainingUtility(
    task, spec, metric=metric, seed=seed, batch_size=batch_size, fine_buckets=method == "banzhaf"
  )
  if method == "loo":
    return semivalues.loo(game, **kwargs)
  return GAME_METHODS[method](game, seed=seed, **kwargs)


def set_value(values, indices) -> float:
  """A set's value as the sum of its points' values."""
  idx = np.asarray(indices, np.int64)
  values = np.asarray(values)
  if idx.size and (idx.min() < 0 or idx.max() >= len(values)):
    raise GameError(f"set indices must be in [0, {len(values)}), got {idx.min()}..{idx.max()}")
  return float(values[idx].sum())


def players_for_groups(n: int, groups: Sequence) -> tuple[np.ndarray, np.ndarray]:
  """``[N]`` player ids where each (disjoint) group is one player.

  Groups take player ids ``0..G-1``; every point outside all groups is a player
  of its own.

  Returns:
    ``(players [N], group_player_ids [G])``.
  """
  players = np.full(n, -2, np.int64)
  for g, idx in enumerate(groups):
    idx = np.asarray(idx, np.int64)
    if idx.size == 0:
      raise GameError(f"group {g} is empty")
    if (players[idx] != -2).any():
      raise GameError(f"group {g} overlaps an earlier group; groups must be disjoint")
    players[idx] = g
  rest = np.flatnonzero(players == -2)
  players[rest] = len(groups) + np.arange(len(rest))
  return players, np.arange(len(groups))


def group_values(
  task: Task,
  spec: LearnerSpec,
  groups: Sequence,
  *,
  method: str = "tmc_shapley",
  metric: str = "test/accuracy",
  seed: int = 0,
  batch_size: int = 256,
  **kwargs,
) -> Valuation:
  """Shapley or Banzhaf values of whole sets, each set treated as one player.

  One game serves all (disjoint) groups: the groups are players and every other
  point is a player of its own. Compare with ``set_value`` of per-point values.

  Returns:
    A ``Valuation`` whose ``values`` are ``[G]`` (one per group).
  """
  if method not in ("tmc_shapley", "banzhaf"):
    raise GameError(f"group values support 'tmc_shapley' and 'banzhaf', not {method!r}")
  players, gid = players_for_groups(task.pool_size, groups)
  game = RetrainingUtility(
    task, spec, players, metric=metric, seed=seed, batch_size=batch_size,
    fine_buckets=method == "banzhaf",
  )  # fmt: skip
  v = GAME_METHODS[method](game, seed=seed, **kwargs)
  v.values, v.stderr, v.players = v.values[gid], v.stderr[gid], [int(g) for g in gid]
  v.method = f"group_{method}"
  return v
