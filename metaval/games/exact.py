"""Exact values by enumerating all 2^n coalitions (few players), and first-come accounting.

``exact_shapley`` and ``exact_banzhaf`` evaluate every coalition in one batch; they
are linear in U, so on a game with several training seeds they also run per seed
and report the spread over seeds (``seed_stderr``). ``arrival_order`` is the
efficient but asymmetric split that Shapley's average over orders replaces.

References:
  Shapley, "A value for n-person games", 1953.
"""

from __future__ import annotations

import math

import numpy as np

from metaval.games.game import Game, GameError, all_coalitions
from metaval.games.semivalues import finish, start


def shapley_from_table(u: np.ndarray) -> np.ndarray:
  """Exact Shapley values from a ``[2^n]`` utility table indexed by bitmask.

  φ_i = Σ_{T ⊆ N∖{i}} |T|! (n-|T|-1)! / n! · (u(T ∪ {i}) - u(T)).
  """
  u = np.asarray(u, np.float64)
  n = int(round(math.log2(len(u))))
  m = np.arange(2**n)
  size = np.array([bin(x).count("1") for x in m])
  w = np.array(
    [math.factorial(s) * math.factorial(n - s - 1) / math.factorial(n) for s in range(n)]
  )
  phi = np.zeros(n)
  for i in range(n):
    without = m[((m >> i) & 1) == 0]  # [2^(n-1)] coalitions lacking i
    phi[i] = np.sum(w[size[without]] * (u[without | (1 << i)] - u[without]))
  return phi


def banzhaf_from_table(u: np.ndarray) -> np.ndarray:
  """Exact Banzhaf values: the mean of u(T ∪ {i}) - u(T) over all T ⊆ N∖{i}."""
  u = np.asarray(u, np.float64)
  n = int(round(math.log2(len(u))))
  m = np.arange(2**n)
  phi = np.zeros(n)
  for i in range(n):
    without = m[((m >> i) & 1) == 0]
    phi[i] = np.mean(u[without | (1 << i)] - u[without])
  return phi


def _exact(method: str, game: Game, from_table):
  s = start(game)
  n = game.num_players
  per = game.per_seed(all_coalitions(n))  # [2^n, K]
  u = per.mean(1)
  seed_se = None
  if game.num_seeds >= 2:
    vals = np.stack([from_table(per[:, k]) for k in range(game.num_seeds)])  # [K, n]
    seed_se = vals.std(0, ddof=1) / np.sqrt(game.num_seeds)
  return finish(
    method,
    game,
    from_table(u),
    np.zeros(n),
    s,
    u_empty=u[0],
    u_full=u[-1],
    seed_stderr=seed_se,
  )


def exact_shapley(game: Game):
  """Exact Shapley values (all 2^n coalitions in one batch; n <= ``MAX_EXACT_PLAYERS``).

  Returns:
    A ``Valuation``; values sum to U(all) - U(∅) up to float rounding.
  """
  return _exact("exact_shapley", game, shapley_from_table)


def exact_banzhaf(game: Game):
  """Exact Banzhaf values (not efficient: Σ values ≠ gain in general)."""
  return _exact("exact_banzhaf", game, banzhaf_from_table)


def arrival_order(game: Game, order=None):
  """First-come accounting: each player gets its marginal gain on arrival.

  Efficient, but not symmetric: who arrives first is luck (the "ML luck" case
  that Shapley removes by averaging over every order). Shown for comparison.

  Args:
    game: the game.
    order: arrival order (player indices, earliest first); default 0..n-1.
  """
  n = game.num_players
  order = list(range(n)) if order is None else [int(i) for i in order]
  if sorted(order) != list(range(n)):
    raise GameError(f"order must be a permutation of 0..{n - 1}, got {order}")
  s = start(game)
  prefixes = np.zeros((n + 1, n), bool)
  for k in range(1, n + 1):
    prefixes[k] = prefixes[k - 1]
    prefixes[k, order[k - 1]] = True
  u = game(prefixes)
  values = np.zeros(n)
  values[order] = np.diff(u)
  return finish("arrival_order", game, values, np.zeros(n), s, u_empty=u[0], u_full=u[-1])
