"""The supplement registry: the ``Supplement`` type, the kinds registry and draw helpers.

Kinds live in one registry (``SUPPLEMENT_KINDS``); add one with
``@register_supplement("name", task_kinds=...)``. A sampler function has the
signature ``fn(task, base_idx, rng, **params) -> (x, y, pool_indices, recipe)``;
parameters it is not given are drawn from ``rng``, and the drawn values go in the
recipe. ``sample_supplement`` validates the result and wraps it in a
``Supplement``. The kinds themselves are in ``metaval.data.samplers`` (the original
kinds and the registry's named lists) and ``metaval.data.generic`` (kinds defined for
any tabular task); import ``metaval.data.samplers`` to have them all registered.

Conventions: ``pool_indices[i] >= 0`` means S's i-th input *is* pool point
``pool_indices[i]`` (its label ``y[i]`` may still differ: label noise); ``-1``
means the input is synthetic. For the code task, ``x`` holds token windows
``[n, T + 1]`` and ``y`` the window's group id (-1 for synthetic windows).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np

from metaval.data.tasks import CLASSIFICATION, LANGUAGE_MODEL, Task
from metaval.errors import MetavalError
from metaval.util import io as io_lib

DEFAULT_BASE_SIZE = (50, 400)
DEFAULT_SUPP_SIZE = (10, 400)


class SamplerError(MetavalError):
  """A supplement kind or its parameters are not valid for the task."""


@dataclasses.dataclass(frozen=True, eq=False)
class Supplement:
  """A supplemental set S and how it was made.

  Attributes:
    x: inputs ``[n, d]`` float32 (token windows ``[n, T + 1]`` int32 for the code
      task), always materialised.
    y: labels ``[n]`` int32 as trained on (noisy labels stay noisy).
    pool_indices: ``[n]`` int32 pool index of each input, or -1 if synthetic.
    kind: registry name of the sampler, e.g. ``"label_noise"``.
    recipe: the sampler's parameters (JSON-serialisable), drawn ones included.
  """

  x: np.ndarray
  y: np.ndarray
  pool_indices: np.ndarray
  kind: str
  recipe: dict

  def __len__(self) -> int:
    return int(self.y.shape[0])

  def pool_exact(self, task: Task) -> np.ndarray:
    """``[n]`` bool: the point is a pool point with the pool's own label."""
    idx = self.pool_indices
    ok = idx >= 0
    same = np.zeros(len(self), bool)
    same[ok] = task.y[idx[ok]] == self.y[ok]
    return same


SamplerFn = Callable[..., tuple[np.ndarray, np.ndarray, np.ndarray, dict]]


@dataclasses.dataclass(frozen=True)
class SupplementKind:
  """A registry entry: sampler function, the task kinds it supports, a summary."""

  name: str
  fn: SamplerFn
  task_kinds: tuple[str, ...]
  description: str


SUPPLEMENT_KINDS: dict[str, SupplementKind] = {}


def register_supplement(
  name: str, task_kinds: tuple[str, ...] = (CLASSIFICATION,), description: str = ""
):
  """Decorator adding a sampler ``fn(task, base_idx, rng, **params)`` to the registry."""

  def wrap(fn):
    if name in SUPPLEMENT_KINDS:
      raise SamplerError(f"supplement kind {name!r} is already registered")
    desc = description or (fn.__doc__ or "").strip().splitlines()[0]
    SUPPLEMENT_KINDS[name] = SupplementKind(name, fn, tuple(task_kinds), desc)
    return fn

  return wrap


def kinds_for(task: Task) -> list[str]:
  """Registered kinds that apply to ``task`` (registration order)."""
  return [k for k, v in SUPPLEMENT_KINDS.items() if task.kind in v.task_kinds]


def sample_supplement(
  kind: str, task: Task, base_idx, rng: np.random.Generator, **params
) -> Supplement:
  """Draws one supplement of ``kind`` for base set ``base_idx``.

  Args:
    kind: a registry name (see ``SUPPLEMENT_KINDS`` / ``kinds_for(task)``).
    task: the base task whose pool B indexes.
    base_idx: ``[n_B]`` pool indices of B.
    rng: numpy generator; the only source of randomness.
    **params: sampler parameters; missing ones are drawn from ``rng``.

  Returns:
    The ``Supplement`` with its recipe.

  Raises:
    SamplerError: unknown kind, kind not applicable to the task, bad parameters
      or an empty result.
  """
  if kind not in SUPPLEMENT_KINDS:
    raise SamplerError(
      f"unknown supplement kind {kind!r}; available: {', '.join(SUPPLEMENT_KINDS)}"
    )
  entry = SUPPLEMENT_KINDS[kind]
  if task.kind not in entry.task_kinds:
    raise SamplerError(
      f"supplement kind {kind!r} does not apply to {task.kind} task {task.name!r}; "
      f"use one of: {', '.join(kinds_for(task))}"
    )
  base_idx = np.asarray(base_idx, np.int64).reshape(-1)
  if base_idx.size and (base_idx.min() < 0 or base_idx.max() >= task.pool_size):
    raise SamplerError(f"base indices must lie in [0, {task.pool_size})")
  try:
    x, y, idx, recipe = entry.fn(task, base_idx, rng, **params)
  except TypeError as e:
    raise SamplerError(f"bad parameters for supplement kind {kind!r}: {e}") from None
  lm = task.kind == LANGUAGE_MODEL
  x = np.ascontiguousarray(x, np.int32 if lm else np.float32)
  y = np.asarray(y, np.int32)
  idx = np.asarray(idx, np.int32)
  if y.shape[0] == 0:
    raise SamplerError(f"supplement kind {kind!r} produced an empty set (recipe {recipe})")
  if x.shape[0] != y.shape[0] or idx.shape != y.shape or x.shape[1:] != task.x.shape[1:]:
    raise SamplerError(f"sampler {kind!r} returned inconsistent shapes {x.shape}, {y.shape}")
  if not lm and not np.all(np.isfinite(x)):
    raise SamplerError(f"sampler {kind!r} produced non-finite inputs")
  recipe = {"size": int(y.shape[0]), **io_lib.jsonable(recipe)}
  return Supplement(x=x, y=y, pool_indices=idx, kind=kind, recipe=recipe)


# ----------------------------------------------------------------------------
# Draw helpers shared by the kinds.


def draw_size(rng, size, lo=DEFAULT_SUPP_SIZE[0], hi=DEFAULT_SUPP_SIZE[1]) -> int:
  if size is None:
    # Log-uniform: small and large supplements are equally common per octave.
    size = int(round(math.exp(rng.uniform(math.log(lo), math.log(hi)))))
  size = int(size)
  if size < 1:
    raise SamplerError(f"supplement size must be >= 1, got {size}")
  return size


def outside(task: Task, base_idx) -> np.ndarray:
  """Pool indices not in B."""
  keep = np.ones(task.pool_size, bool)
  keep[base_idx] = False
  return np.flatnonzero(keep)


def feature_range(task: Task):
  return task.x.min(0), task.x.max(0)


def draw_from(rng, avail, size, weights=None) -> np.ndarray:
  size = min(size, avail.size)
  if size < 1:
    raise SamplerError("no pool points available outside the base set")
  p = None if weights is None else weights / weights.sum()
  if p is not None and np.count_nonzero(p) < size:
    size = int(np.count_nonzero(p))
  return np.sort(rng.choice(avail, size, replace=False, p=p))
