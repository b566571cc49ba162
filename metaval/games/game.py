"""Cooperative games over players: the cache, the fit counters, table and function games.

A *game* maps coalitions of ``P`` players (boolean rows ``[M, P]``) to utilities
``[M]``. Every game in metaval derives from ``Game``, which memoises each coalition's
value (per training seed) so that several estimators, or overlapping prefixes of one
estimator, pay for a coalition once, and counts what the evaluations cost. The
retraining utility (``metaval.games.utility.RetrainingUtility``) is one such game;
``TableGame`` and ``FunctionGame`` wrap a table or any other set function (e.g. a
trained value predictor).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from metaval.errors import MetavalError

MAX_EXACT_PLAYERS = 16  # 2^16 coalitions: beyond that use the sampling estimators.


class GameError(MetavalError):
  """A game, its players or an estimator's options are not valid."""


def all_coalitions(n: int) -> np.ndarray:
  """``[2^n, n]`` booleans; row m is the coalition whose bitmask is m (bit i = player i)."""
  if not 1 <= n <= MAX_EXACT_PLAYERS:
    raise GameError(
      f"exact methods enumerate 2^n coalitions and allow 1 <= n <= {MAX_EXACT_PLAYERS}; "
      f"got n={n} (use permutation_shapley or banzhaf_msr)"
    )
  m = np.arange(2**n)
  return ((m[:, None] >> np.arange(n)) & 1).astype(bool)


def coalition_key(row: np.ndarray) -> bytes:
  """The cache key of one boolean coalition row (its packed bits)."""
  return np.packbits(row).tobytes()


def player_labels(labels, n: int) -> list:
  """Validated player labels: ``0..n-1`` by default, else ``n`` unique names."""
  labels = list(range(n)) if labels is None else list(labels)
  if len(labels) != n:
    raise GameError(f"got {len(labels)} player names for {n} players")
  if len({str(x) for x in labels}) != n:
    raise GameError("player names must be unique")
  return labels


class Game:
  """A cached, counted game over ``num_players`` players.

  Subclasses implement ``_evaluate`` (unique, uncached coalitions -> per-seed
  values) and count what it trains or computes in ``fits`` / ``fits_computed``.

  Attributes:
    num_players: P.
    players: one label per player (names for contributors, ids otherwise).
    num_seeds: values per coalition (training seeds); a coalition's utility is their mean.
    batch_size: models per evaluation batch, or None for one batch per call (the
      permutation walk sizes its batches by it).
    fits: models trained (or utilities computed) so far, padding excluded.
    fits_computed: the same with the padding that keeps one compiled batch shape.
  """

  def __init__(
    self,
    num_players: int,
    *,
    players=None,
    num_seeds: int = 1,
    batch_size: int | None = None,
    cache: bool = True,
  ):
    if num_players < 1:
      raise GameError(f"a game needs at least one player, got {num_players}")
    if num_seeds < 1:
      raise GameError(f"num_seeds must be >= 1, got {num_seeds}")
    if batch_size is not None and batch_size < 1:
      raise GameError(f"batch_size must be >= 1 or None, got {batch_size}")
    self.num_players = int(num_players)
    self.players = player_labels(players, self.num_players)
    self.num_seeds = int(num_seeds)
    self.batch_size = None if batch_size is None else int(batch_size)
    self.fits = 0
    self.fits_computed = 0
    # Coalition bits -> [K] per-seed values; None: evaluate every request (the cost
    # of a sampler without any reuse).
    self._cache: dict[bytes, np.ndarray] | None = {} if cache else None

  def _evaluate(self, coalitions: np.ndarray) -> np.ndarray:
    """Per-seed utilities ``[m, K]`` of ``[m, P]`` coalitions (no cache involved)."""
    raise NotImplementedError

  @property
  def batch_coalitions(self) -> int | None:
    """Coalitions per batch (models per batch over seeds), None for one batch per call."""
    return None if self.batch_size is None else max(1, self.batch_size // self.num_seeds)

  @property
  def coalitions(self) -> int:
    """Distinct coalitions evaluated so far (0 without a cache)."""
    return 0 if self._cache is None else len(self._cache)

  def check(self, coalitions) -> np.ndarray:
    """``coalitions`` as ``[M, P]`` booleans, or a ``GameError`` naming the shape."""
    c = np.asarray(coalitions)
    if c.ndim != 2 or c.shape[1] != self.num_players:
      raise GameError(f"coalitions must be [M, {self.num_players}] booleans; got {c.shape}")
    return c.astype(bool)

  def fresh(self, coalitions) -> np.ndarray:
    """``[M]`` True where the next call evaluates the row (not cached, first of its kind)."""
    c = self.check(coalitions)
    if self._cache is None:
      return np.ones(len(c), bool)
    out, seen = np.zeros(len(c), bool), set()
    for j, row in enumerate(c):
      k = coalition_key(row)
      if k not in self._cache and k not in seen:
        seen.add(k)
        out[j] = True
    return out

  def start_from(self, coalitions, parents) -> None:
    """Hints that each coalition's fit may start from its parent's solution.

    A game that solves a convex learner (``RetrainingUtility``) starts the fit of
    ``coalitions[j]`` from the solution already found for ``parents[j]`` (e.g.
    the previous prefix of a permutation): the same optimum, reached in fewer
    iterations. A hint never changes a value beyond the solver's tolerance; games
    that do not train ignore it.

    Args:
      coalitions: ``[M, P]`` booleans about to be evaluated.
      parents: ``[M, P]`` booleans, each an evaluated coalition near its row.
    """

  def precise(self, coalitions) -> None:
    """Hints that the caller measures small differences between these coalitions' utilities.

    Leave-one-out compares coalitions one player apart, whose utilities may differ
    by less than a learner solved to its default tolerance resolves. A game that
    solves a learner (``RetrainingUtility``) then solves these coalitions, when it
    evaluates them, to a tolerance well below such differences; games that do
    not train ignore it. Values already cached are kept.

    Args:
      coalitions: ``[M, P]`` booleans about to be evaluated.
    """

  def per_seed(self, coalitions) -> np.ndarray:
    """``[M, K]`` utilities per seed; evaluates the uncached rows in one batch."""
    c = self.check(coalitions)
    if self._cache is None:
      return self._checked(self._evaluate(c), len(c))
    keys = [coalition_key(row) for row in c]
    todo: dict[bytes, np.ndarray] = {}
    for k, row in zip(keys, c):
      if k not in self._cache and k not in todo:
        todo[k] = row
    if todo:
      vals = self._checked(self._evaluate(np.stack(list(todo.values()))), len(todo))
      self._cache.update(zip(todo, vals))
    return np.stack([self._cache[k] for k in keys])

  def _checked(self, vals, m: int) -> np.ndarray:
    vals = np.asarray(vals, np.float64).reshape(m, -1)
    if vals.shape[1] != self.num_seeds:
      raise GameError(
        f"utility returned {vals.shape[1]} values per coalition, not {self.num_seeds}"
      )
    if not np.all(np.isfinite(vals)):
      raise GameError("utility returned NaN or inf for some coalition")
    return vals

  def __call__(self, coalitions) -> np.ndarray:
    """Utilities ``[M]`` of ``[M, P]`` coalitions: the mean over seeds."""
    return self.per_seed(coalitions).mean(1)

  def cached(self) -> tuple[np.ndarray, np.ndarray]:
    """Every cached coalition ``[C, P]`` and its per-seed values ``[C, K]``."""
    if not self._cache:
      return np.zeros((0, self.num_players), bool), np.zeros((0, self.num_seeds))
    bits = np.unpackbits(np.frombuffer(b"".join(self._cache), np.uint8))
    rows = bits.reshape(len(self._cache), -1)[:, : self.num_players].astype(bool)
    return rows, np.stack(list(self._cache.values()))

  def peek(self, coalition) -> float:
    """A coalition's cached utility, or NaN if it has not been evaluated."""
    row = self.check(np.asarray(coalition)[None])[0]
    v = None if self._cache is None else self._cache.get(coalition_key(row))
    return float("nan") if v is None else float(v.mean())

  @property
  def full_value(self) -> float:
    """U(all players)."""
    return float(self(np.ones((1, self.num_players), bool))[0])

  @property
  def empty_value(self) -> float:
    """U(no player)."""
    return float(self(np.zeros((1, self.num_players), bool))[0])


class TableGame(Game):
  """A game given as a table over bitmasks: ``values[mask]``, bit i = player i.

  Args:
    values: ``[2^n]`` utility of every coalition.
    players: optional player names.
    batch_size: coalitions per batch for the permutation walk (None: one batch).
  """

  def __init__(self, values: Sequence[float], *, players=None, batch_size: int | None = None):
    v = np.asarray(values, np.float64)
    n = int(round(math.log2(len(v)))) if len(v) else -1
    if n < 1 or len(v) != 2**n:
      raise GameError(f"a utility table needs 2^n entries (n >= 1), got {len(v)}")
    super().__init__(n, players=players, batch_size=batch_size)
    self.table = v

  def _evaluate(self, coalitions):
    self.fits += len(coalitions)
    self.fits_computed += len(coalitions)
    return self.table[coalitions.astype(np.int64) @ (1 << np.arange(self.num_players))]


class FunctionGame(Game):
  """A game given by a batched function ``bool [M, P] -> [M]`` (or ``[M, K]`` per seed).

  Args:
    fn: the batched utility; it is called once per batch of uncached coalitions.
    num_players: P.
    players: optional player names.
    num_seeds: values per coalition ``fn`` returns.
    cache: memoise coalitions (False: every request calls ``fn``).
  """

  def __init__(self, fn: Callable, num_players: int, *, players=None, num_seeds=1, cache=True):
    super().__init__(num_players, players=players, num_seeds=num_seeds, cache=cache)
    self.fn = fn

  def _evaluate(self, coalitions):
    self.fits += len(coalitions)
    self.fits_computed += len(coalitions)
    vals = np.asarray(self.fn(coalitions), np.float64)
    if vals.shape[0] != len(coalitions):
      raise GameError(f"utility returned {vals.shape[0]} values for {len(coalitions)} coalitions")
    return vals


def set_function_game(fn: Callable[[list[int]], float], num_players: int, *, players=None):
  """A game from a scalar set function ``fn(list of player ids) -> value``.

  Use it to value players with any estimator, e.g. a trained predictor:
  ``set_function_game(lambda ids: p.value(concat(supp[i] for i in ids), base=B), n)``.
  """

  def batched(coalitions):
    return np.array([float(fn([int(i) for i in np.flatnonzero(row)])) for row in coalitions])

  return FunctionGame(batched, num_players, players=players)
