"""The ``Pairs`` value: P (base, supplement) pairs over one task's pool.

Every part of metaval that values a supplemental set S given a base set B (the
label pipeline, untraining, ablations, the strategy comparison, the Goodhart suite
and the toy labels) holds its pairs in this one type. B is a set of pool indices;
S is a list of points, each either a pool point (its pool index) or an appended
point (index -1, its inputs in ``supp_x``). Pairs that share a base share one entry
of ``bases``, so the label function trains that base's B models once.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np

from metaval.data.samplers import Supplement
from metaval.data.tasks import Task
from metaval.errors import MetavalError


class PairsError(MetavalError):
  """Pairs are malformed or do not fit their task."""


@dataclasses.dataclass
class Pairs:
  """P (B, S) pairs; ragged per-pair arrays are lists of numpy arrays.

  Attributes:
    bases: the distinct base sets, each ``[n_B]`` int32 pool indices.
    base_of: ``[P]`` index into ``bases`` of each pair's B.
    supp_indices: per pair, ``[n_S]`` int32 pool index of each S point, -1 where
      the point is appended (not a pool point).
    supp_x: per pair, S's inputs (pool points included).
    supp_y: per pair, S's labels as trained on (noisy labels stay noisy).
    kind: ``[P]`` supplement kind (a ``metaval.data.samplers`` registry name, or
      an attack name for the Goodhart suite).
    recipe: ``[P]`` the sampler parameters that made each S (dicts).
  """

  bases: list[np.ndarray]
  base_of: np.ndarray
  supp_indices: list[np.ndarray]
  supp_x: list[np.ndarray]
  supp_y: list[np.ndarray]
  kind: np.ndarray
  recipe: list[dict]

  def __post_init__(self):
    self.base_of = np.asarray(self.base_of, np.int64).reshape(-1)
    self.kind = np.asarray(self.kind)
    p = len(self.base_of)
    lens = {len(self.supp_indices), len(self.supp_x), len(self.supp_y), len(self.kind)}
    if lens != {p} or len(self.recipe) != p:
      raise PairsError(f"every per-pair field needs {p} entries, got lengths {sorted(lens)}")
    if p and (self.base_of.min() < 0 or self.base_of.max() >= len(self.bases)):
      raise PairsError("base_of must map every pair to one of the bases")
    for i in range(p):
      if not len(self.supp_y[i]) == len(self.supp_x[i]) == len(self.supp_indices[i]):
        raise PairsError(f"pair {i}: supp_indices, supp_x and supp_y differ in length")

  def __len__(self) -> int:
    return len(self.base_of)

  def base(self, p: int) -> np.ndarray:
    """``[n_B]`` pool indices of pair ``p``'s B."""
    return np.asarray(self.bases[int(self.base_of[p])])

  @property
  def base_indices(self) -> list[np.ndarray]:
    """Per pair, B's pool indices (the ``LabelSet`` field of the same name)."""
    return [self.base(p) for p in range(len(self))]

  def supplement(self, p: int) -> Supplement:
    """Pair ``p``'s S as a ``Supplement``."""
    return Supplement(
      x=np.asarray(self.supp_x[p]),
      y=np.asarray(self.supp_y[p], np.int32),
      pool_indices=np.asarray(self.supp_indices[p], np.int32),
      kind=str(self.kind[p]),
      recipe=dict(self.recipe[p]),
    )

  def pool_exact(self, p: int, task: Task) -> np.ndarray:
    """``[n_S]`` bool: S's point is a pool point carrying the pool's own label."""
    return self.supplement(p).pool_exact(task)

  def select(self, idx) -> Pairs:
    """The pairs at ``idx`` (bases kept, so shared bases stay shared)."""
    idx = np.asarray(idx, np.int64).reshape(-1)
    return Pairs(
      bases=self.bases,
      base_of=self.base_of[idx],
      supp_indices=[self.supp_indices[i] for i in idx],
      supp_x=[self.supp_x[i] for i in idx],
      supp_y=[self.supp_y[i] for i in idx],
      kind=self.kind[idx],
      recipe=[self.recipe[i] for i in idx],
    )

  @classmethod
  def from_supplements(cls, bases, supplements, base_of=None) -> Pairs:
    """Pairs from sampled ``Supplement``s.

    Args:
      bases: base sets (pool index arrays).
      supplements: P ``Supplement``s.
      base_of: ``[P]`` which base each supplement goes with (default: the i-th).

    Returns:
      ``Pairs`` (``bases`` kept in the given order).
    """
    supplements = list(supplements)
    base_of = np.arange(len(supplements)) if base_of is None else np.asarray(base_of)
    return cls(
      bases=[np.asarray(b, np.int32) for b in bases],
      base_of=base_of,
      supp_indices=[np.asarray(s.pool_indices, np.int32) for s in supplements],
      supp_x=[s.x for s in supplements],
      supp_y=[np.asarray(s.y, np.int32) for s in supplements],
      kind=np.asarray([s.kind for s in supplements]),
      recipe=[dict(s.recipe) for s in supplements],
    )

  @classmethod
  def from_lists(cls, base_indices, supp_indices, supp_x, supp_y, kind, recipe=None) -> Pairs:
    """Pairs from per-pair lists (e.g. a ``LabelSet``'s fields).

    Identical bases are merged into one ``bases`` entry in order of first
    appearance, so their B models are trained once.
    """
    seen, bases, base_of = {}, [], []
    for b in base_indices:
      b = np.asarray(b, np.int32)
      key = b.tobytes()
      if key not in seen:
        seen[key] = len(bases)
        bases.append(b)
      base_of.append(seen[key])
    recipe = [{} for _ in base_of] if recipe is None else [_as_dict(r) for r in recipe]
    return cls(
      bases=bases,
      base_of=np.asarray(base_of, np.int64),
      supp_indices=[np.asarray(i, np.int32) for i in supp_indices],
      supp_x=list(supp_x),
      supp_y=[np.asarray(y, np.int32) for y in supp_y],
      kind=np.asarray(kind),
      recipe=recipe,
    )


def _as_dict(r) -> dict:
  if isinstance(r, dict):
    return r
  return json.loads(str(r)) if str(r) else {}


def as_pairs(obj) -> Pairs:
  """``obj`` as ``Pairs``: a ``Pairs`` as is, a ``LabelSet`` (or anything with its
  per-pair fields) converted with ``Pairs.from_lists``."""
  if isinstance(obj, Pairs):
    return obj
  try:
    return Pairs.from_lists(
      obj.base_indices,
      obj.supp_indices,
      obj.supp_x,
      obj.supp_y,
      obj.kind,
      getattr(obj, "recipe", None),
    )
  except AttributeError as e:
    raise PairsError(f"cannot read pairs from a {type(obj).__name__}: {e}") from None
