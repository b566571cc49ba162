"""``Valuation``: the one result type of every game estimator and per-point method."""

from __future__ import annotations

import dataclasses

import numpy as np

from metaval.games.game import GameError
from metaval.util.io import jsonable


@dataclasses.dataclass
class Valuation:
  """Each player's value, its uncertainty and what it cost.

  Attributes:
    method: the estimator (``"tmc_shapley"``, ``"exact_shapley"``, ``"knn_shapley"``, ...).
    players: one label per player (pool point ids, group or contributor names).
    values: ``[P]`` value per player, in metric units (higher = more useful).
    stderr: ``[P]`` Monte-Carlo standard error (0 for exact and closed-form
      methods, NaN where a sampler cannot tell).
    fits: models trained for this method (utilities computed, for non-retraining
      games), padding excluded; coalitions already in the game's cache cost nothing.
    fits_computed: the same with the padding that keeps one compiled batch shape.
    fits_needed: what a one-at-a-time sampler with the same stopping rule needs
      (the batched walk overshoots a truncation point by less than one block).
    seconds: wall time, compilation included.
    u_empty: U(∅) (NaN when the method did not evaluate it).
    u_full: U(all players) (NaN when the method did not evaluate it).
    samples: permutations, coalitions or bags drawn (0 for exact methods).
    seed_stderr: ``[P]`` standard error over training seeds (exact methods on a
      game with several seeds: they are linear in U, so they run per seed), or None.
    info: method-specific extras (truncation lengths, options, ...).
  """

  method: str
  players: list
  values: np.ndarray
  stderr: np.ndarray
  fits: int = 0
  fits_computed: int = 0
  fits_needed: int = 0
  seconds: float = 0.0
  u_empty: float = float("nan")
  u_full: float = float("nan")
  samples: int = 0
  seed_stderr: np.ndarray | None = None
  info: dict = dataclasses.field(default_factory=dict)

  def __post_init__(self):
    self.values = np.asarray(self.values, np.float64)
    self.stderr = np.asarray(self.stderr, np.float64)
    if self.seed_stderr is not None:
      self.seed_stderr = np.asarray(self.seed_stderr, np.float64)
    self.players = list(self.players)

  @property
  def total_gain(self) -> float:
    """U(all) - U(∅): the gain an efficient value splits."""
    return self.u_full - self.u_empty

  @property
  def efficiency_gap(self) -> float:
    """Σ values - total gain (0 for Shapley; Banzhaf is not efficient)."""
    return float(self.values.sum() - self.total_gain)

  def shares(self) -> np.ndarray:
    """Values as fractions of their sum (the split of the gain; may be negative)."""
    s = self.values.sum()
    if s == 0:
      raise GameError("values sum to zero: no gain to split in proportion")
    return self.values / s

  def to_dict(self) -> dict:
    """A JSON-ready dict (non-finite numbers become None); ``from_dict`` reads it back."""
    d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
    d["total_gain"] = self.total_gain
    d["efficiency_gap"] = self.efficiency_gap
    return jsonable(d)

  @classmethod
  def from_dict(cls, d: dict) -> Valuation:
    """The ``Valuation`` written by ``to_dict``."""
    names = {f.name for f in dataclasses.fields(cls)}
    kw = {k: v for k, v in d.items() if k in names}
    for k in ("u_empty", "u_full"):
      kw[k] = float("nan") if kw.get(k) is None else kw[k]
    for k in ("values", "stderr"):
      kw[k] = np.array([np.nan if x is None else x for x in kw[k]], np.float64)
    return cls(**kw)
