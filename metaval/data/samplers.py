"""Supplement samplers: (B, S) pairs of many kinds, each with its recipe.

A *supplement* S is a set of training points offered on top of a base set B (a
subset of a task's pool). S may reuse pool points (clean subsets, duplicates of
B) or be partly or wholly synthetic (noisy labels, perturbed or random inputs,
out-of-domain inputs). Every sampler records the parameters it used (the
*recipe*), so labels can be sliced by kind and parameter later.

Kinds live in a registry (``SUPPLEMENT_KINDS``); add one with
``@register_supplement("name", task_kinds=...)``. A sampler function has the
signature ``fn(task, base_idx, rng, **params) -> (x, y, pool_indices, recipe)``;
parameters it is not given are drawn from ``rng``, and the drawn values go in the
recipe. ``sample_supplement`` validates the result and wraps it in a
``Supplement``.

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

from metaval.data.tasks import CLASSIFICATION, LANGUAGE_MODEL, Task, get_task, list_tasks
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


def sample_base(task: Task, rng: np.random.Generator, size: int, exclude_groups=()) -> np.ndarray:
  """A random base set: ``size`` distinct pool indices (sorted), avoiding groups."""
  avail = np.arange(task.pool_size)
  if len(exclude_groups):
    avail = avail[~np.isin(task.groups, np.asarray(exclude_groups))]
  if avail.size == 0:
    raise SamplerError("no pool points left for the base set")
  size = int(min(size, avail.size))
  if size < 1:
    raise SamplerError(f"base size must be >= 1, got {size}")
  return np.sort(rng.choice(avail, size, replace=False)).astype(np.int32)


def sample_pair(
  task: Task,
  rng: np.random.Generator,
  kind: str,
  base_size: int | None = None,
  base_range: tuple[int, int] = DEFAULT_BASE_SIZE,
  **params,
) -> tuple[np.ndarray, Supplement]:
  """Draws B (size ``base_size`` or uniform in ``base_range``) then S of ``kind``.

  For the code task's ``groups`` kind, S's groups are chosen first and B is drawn
  from the other groups, so S is genuinely new material for the base model.
  """
  n_b = int(base_size) if base_size else int(rng.integers(base_range[0], base_range[1] + 1))
  exclude = ()
  if kind == "groups":
    n_groups = len(task.group_names)
    k = params.get("num_groups") or int(rng.integers(1, min(2, n_groups - 1) + 1))
    groups = params.get("groups") or sorted(int(g) for g in rng.choice(n_groups, k, replace=False))
    params = {**params, "groups": list(groups), "num_groups": len(groups)}
    exclude = groups
  base = sample_base(task, rng, n_b, exclude_groups=exclude)
  return base, sample_supplement(kind, task, base, rng, **params)


# ----------------------------------------------------------------------------
# Helpers.


def _size(rng, size, lo=DEFAULT_SUPP_SIZE[0], hi=DEFAULT_SUPP_SIZE[1]) -> int:
  if size is None:
    # Log-uniform: small and large supplements are equally common per octave.
    size = int(round(math.exp(rng.uniform(math.log(lo), math.log(hi)))))
  size = int(size)
  if size < 1:
    raise SamplerError(f"supplement size must be >= 1, got {size}")
  return size


def _outside(task: Task, base_idx) -> np.ndarray:
  """Pool indices not in B."""
  keep = np.ones(task.pool_size, bool)
  keep[base_idx] = False
  return np.flatnonzero(keep)


def _feature_range(task: Task):
  return task.x.min(0), task.x.max(0)


def _draw_from(rng, avail, size, weights=None) -> np.ndarray:
  size = min(size, avail.size)
  if size < 1:
    raise SamplerError("no pool points available outside the base set")
  p = None if weights is None else weights / weights.sum()
  if p is not None and np.count_nonzero(p) < size:
    size = int(np.count_nonzero(p))
  return np.sort(rng.choice(avail, size, replace=False, p=p))


# ----------------------------------------------------------------------------
# Classification kinds.


@register_supplement("clean")
def _clean(task, base_idx, rng, size=None, class_mix=None, alpha=0.3):
  """Clean pool points outside B; ``class_mix`` natural, balanced or skewed."""
  size = _size(rng, size)
  class_mix = class_mix or str(rng.choice(["natural", "balanced", "skewed"]))
  avail = _outside(task, base_idx)
  ya = task.y[avail]
  counts = np.bincount(ya, minlength=task.num_classes)
  if class_mix == "natural":
    class_w = counts / counts.sum()
    idx = _draw_from(rng, avail, size)
  elif class_mix in ("balanced", "skewed"):
    if class_mix == "balanced":
      class_w = np.full(task.num_classes, 1.0 / task.num_classes)
      # Exact quotas: size // C each, the remainder to randomly chosen classes.
      quota = np.full(task.num_classes, size // task.num_classes)
      quota[rng.choice(task.num_classes, size % task.num_classes, replace=False)] += 1
    else:
      class_w = rng.dirichlet(np.full(task.num_classes, float(alpha)))
      quota = rng.multinomial(size, class_w)
    quota = np.minimum(quota, counts)  # a class cannot give more than it has
    picks = [rng.choice(avail[ya == c], quota[c], replace=False) for c in range(task.num_classes)]
    idx = np.sort(np.concatenate(picks))
    if idx.size == 0:
      raise SamplerError("no pool points available outside the base set")
  else:
    raise SamplerError(f"class_mix must be natural, balanced or skewed, got {class_mix!r}")
  recipe = {"class_mix": class_mix, "class_weights": np.round(class_w, 4)}
  if class_mix == "skewed":
    recipe["alpha"] = float(alpha)
  return task.x[idx], task.y[idx], idx, recipe


@register_supplement("label_noise")
def _label_noise(task, base_idx, rng, size=None, rate=None):
  """Clean pool points outside B with a fraction ``rate`` of labels flipped."""
  size = _size(rng, size)
  rate = float(rng.choice([0.1, 0.25, 0.5, 0.75, 1.0]) if rate is None else rate)
  if not 0.0 <= rate <= 1.0:
    raise SamplerError(f"label noise rate must be in [0, 1], got {rate}")
  idx = _draw_from(rng, _outside(task, base_idx), size)
  y = task.y[idx].copy()
  n_flip = int(round(rate * len(idx)))
  flip = rng.choice(len(idx), n_flip, replace=False)
  # A flip always moves to a *different* class.
  y[flip] = (y[flip] + rng.integers(1, task.num_classes, n_flip)) % task.num_classes
  return task.x[idx], y, idx, {"rate": rate, "flipped": n_flip}


@register_supplement("duplicates", task_kinds=(CLASSIFICATION, LANGUAGE_MODEL))
def _duplicates(task, base_idx, rng, size=None):
  """Exact copies of points already in B (drawn with replacement if S > B)."""
  size = _size(rng, size)
  if base_idx.size == 0:
    raise SamplerError("duplicates need a non-empty base set")
  idx = np.sort(rng.choice(base_idx, size, replace=size > base_idx.size))
  return task.x[idx], task.y[idx], idx, {"distinct": int(np.unique(idx).size)}


@register_supplement("near_duplicates", task_kinds=(CLASSIFICATION, LANGUAGE_MODEL))
def _near_duplicates(task, base_idx, rng, size=None, sigma=None):
  """B's points slightly perturbed: Gaussian noise (features) or token swaps (code)."""
  size = _size(rng, size)
  if base_idx.size == 0:
    raise SamplerError("near duplicates need a non-empty base set")
  src = np.sort(rng.choice(base_idx, size, replace=size > base_idx.size))
  if task.kind == LANGUAGE_MODEL:
    rate = float(rng.uniform(0.01, 0.1) if sigma is None else sigma)
    x = task.x[src].copy()
    swap = rng.random(x.shape) < rate
    x[swap] = rng.integers(1, task.num_classes, int(swap.sum()))
    return x, task.y[src], np.full(size, -1), {"sigma": rate, "perturb": "token_swap"}
  sigma = float(math.exp(rng.uniform(math.log(0.02), math.log(0.5))) if sigma is None else sigma)
  x = task.x[src] + sigma * rng.standard_normal(task.x[src].shape)
  return x, task.y[src], np.full(size, -1), {"sigma": sigma, "perturb": "gaussian"}


@register_supplement("random_bits", task_kinds=(CLASSIFICATION, LANGUAGE_MODEL))
def _random_bits(task, base_idx, rng, size=None, mode=None):
  """Inputs of random bits or uniform noise (random tokens for code), random labels."""
  del base_idx
  size = _size(rng, size)
  if task.kind == LANGUAGE_MODEL:
    x = rng.integers(1, task.num_classes, (size, task.x.shape[1]))
    return x, np.full(size, -1), np.full(size, -1), {"mode": "tokens"}
  mode = mode or str(rng.choice(["bits", "uniform"]))
  lo, hi = _feature_range(task)
  shape = (size, task.feature_dim)
  if mode == "bits":
    x = np.where(rng.random(shape) < 0.5, lo, hi)
  elif mode == "uniform":
    x = lo + (hi - lo) * rng.random(shape)
  else:
    raise SamplerError(f"random_bits mode must be bits or uniform, got {mode!r}")
  return x, rng.integers(0, task.num_classes, size), np.full(size, -1), {"mode": mode}


@register_supplement("constant", task_kinds=(CLASSIFICATION, LANGUAGE_MODEL))
def _constant(task, base_idx, rng, size=None, jitter=None, label_mode=None):
  """Constant or near-constant inputs (a "video of a motionless couch")."""
  del base_idx
  size = _size(rng, size)
  jitter = float(rng.choice([0.0, 0.01, 0.05]) if jitter is None else jitter)
  if task.kind == LANGUAGE_MODEL:
    tok = int(rng.integers(1, task.num_classes))
    x = np.full((size, task.x.shape[1]), tok)
    if jitter > 0:
      swap = rng.random(x.shape) < jitter
      x[swap] = rng.integers(1, task.num_classes, int(swap.sum()))
    return x, np.full(size, -1), np.full(size, -1), {"jitter": jitter, "token": tok}
  label_mode = label_mode or str(rng.choice(["single", "random"]))
  anchor = task.x[int(rng.integers(task.pool_size))]
  x = np.repeat(anchor[None], size, 0) + jitter * rng.standard_normal((size, task.feature_dim))
  if label_mode == "single":
    y = np.full(size, int(rng.integers(task.num_classes)))
  elif label_mode == "random":
    y = rng.integers(0, task.num_classes, size)
  else:
    raise SamplerError(f"constant label_mode must be single or random, got {label_mode!r}")
  return x, y, np.full(size, -1), {"jitter": jitter, "label_mode": label_mode}


@register_supplement("single_class")
def _single_class(task, base_idx, rng, size=None, cls=None):
  """Clean pool points outside B, all of one class."""
  size = _size(rng, size)
  cls = int(rng.integers(task.num_classes) if cls is None else cls)
  if not 0 <= cls < task.num_classes:
    raise SamplerError(f"class must be in [0, {task.num_classes}), got {cls}")
  avail = _outside(task, base_idx)
  avail = avail[task.y[avail] == cls]
  idx = _draw_from(rng, avail, size)
  return task.x[idx], task.y[idx], idx, {"cls": cls}


def _ood_modes(task: Task) -> list[str]:
  side = math.isqrt(task.feature_dim)
  modes = ["invert", "shift", "other_task"]
  if side * side == task.feature_dim and side > 1:
    modes = ["rotate90", "rotate180", "flip"] + modes
  return modes


@register_supplement("out_of_domain")
def _out_of_domain(task, base_idx, rng, size=None, mode=None, source=None, scale=None):
  """Shifted inputs: rotated/flipped images, inverted, offset, or another task's inputs."""
  size = _size(rng, size)
  modes = _ood_modes(task)
  mode = mode or str(rng.choice(modes))
  if mode not in modes:
    raise SamplerError(f"out_of_domain mode {mode!r} not available for {task.name!r}: {modes}")
  recipe = {"mode": mode}
  if mode == "other_task":
    others = [t for t in list_tasks() if t not in (task.name, "code")]
    source = source or str(rng.choice(others))
    other = get_task(source, seed=task.seed)
    if other.kind != CLASSIFICATION:
      raise SamplerError(f"out_of_domain source {source!r} is not a classification task")
    pick = np.sort(rng.choice(other.pool_size, min(size, other.pool_size), replace=False))
    xo = other.x[pick]
    # Map to this task's width: tile columns if narrower, truncate if wider.
    reps = math.ceil(task.feature_dim / xo.shape[1])
    x = np.tile(xo, (1, reps))[:, : task.feature_dim]
    y = other.y[pick] % task.num_classes
    return x, y, np.full(len(pick), -1), {**recipe, "source": source}
  idx = _draw_from(rng, _outside(task, base_idx), size)
  x = task.x[idx]
  if mode in ("rotate90", "rotate180", "flip"):
    side = math.isqrt(task.feature_dim)
    img = x.reshape(-1, side, side)
    img = {
      "rotate90": lambda a: np.rot90(a, 1, axes=(1, 2)),
      "rotate180": lambda a: np.rot90(a, 2, axes=(1, 2)),
      "flip": lambda a: a[:, :, ::-1],
    }[mode](img)
    x = img.reshape(-1, task.feature_dim)
  elif mode == "invert":
    # On standardised features, inverting intensities (v -> max - v) is negation.
    x = -x
  else:  # shift
    scale = float(rng.uniform(1.0, 3.0) if scale is None else scale)
    x = x + scale * rng.standard_normal(task.feature_dim)
    recipe["scale"] = scale
  return x, task.y[idx], np.full(len(idx), -1), recipe


JUNK_KINDS = ("label_noise", "random_bits", "constant", "out_of_domain", "near_duplicates")


@register_supplement("mixture")
def _mixture(task, base_idx, rng, size=None, good_frac=None, junk_kind=None):
  """A clean set padded with junk of another kind (e.g. 30% clean + 70% random bits)."""
  size = max(_size(rng, size), 2)
  good_frac = float(rng.uniform(0.1, 0.9) if good_frac is None else good_frac)
  if not 0.0 < good_frac < 1.0:
    raise SamplerError(f"mixture good_frac must be in (0, 1), got {good_frac}")
  junk_kind = junk_kind or str(rng.choice(JUNK_KINDS))
  if junk_kind == "mixture":
    raise SamplerError("a mixture cannot contain another mixture")
  n_good = max(1, int(round(good_frac * size)))
  n_junk = max(1, size - n_good)
  good = sample_supplement("clean", task, base_idx, rng, size=n_good, class_mix="natural")
  junk_params = {"rate": 1.0} if junk_kind == "label_noise" else {}
  junk = sample_supplement(junk_kind, task, base_idx, rng, size=n_junk, **junk_params)
  recipe = {
    "good_frac": good_frac,
    "junk_kind": junk_kind,
    "components": [{"kind": "clean", **good.recipe}, {"kind": junk_kind, **junk.recipe}],
  }
  return (
    np.concatenate([good.x, junk.x]),
    np.concatenate([good.y, junk.y]),
    np.concatenate([good.pool_indices, junk.pool_indices]),
    recipe,
  )


# ----------------------------------------------------------------------------
# Code-corpus kinds.


@register_supplement("groups", task_kinds=(LANGUAGE_MODEL,))
def _groups(task, base_idx, rng, size=None, groups=None, num_groups=None):
  """Windows of whole groups (standard-library packages), by default ones absent from B."""
  n_groups = len(task.group_names)
  if groups is None:
    absent = np.setdiff1d(np.arange(n_groups), np.unique(task.groups[base_idx]))
    choices = absent if absent.size else np.arange(n_groups)
    k = int(num_groups or rng.integers(1, min(2, choices.size) + 1))
    groups = sorted(int(g) for g in rng.choice(choices, min(k, choices.size), replace=False))
  groups = [int(g) for g in groups]
  if not groups or min(groups) < 0 or max(groups) >= n_groups:
    raise SamplerError(f"groups must be ids in [0, {n_groups}), got {groups}")
  avail = _outside(task, base_idx)
  avail = avail[np.isin(task.groups[avail], groups)]
  if size is not None:
    avail = _draw_from(rng, avail, int(size))
  if avail.size == 0:
    raise SamplerError(f"groups {groups} have no windows outside the base set")
  recipe = {"groups": groups, "group_names": [task.group_names[g] for g in groups]}
  return task.x[avail], task.y[avail], avail, recipe


# ----------------------------------------------------------------------------
# The kinds registry's named lists (the one source for configs and samplers).


def kinds_of(task_kind: str, first: tuple[str, ...] = ()) -> tuple[str, ...]:
  """Registered kinds for a task kind, ``first`` leading, then registration order."""
  names = [k for k, v in SUPPLEMENT_KINDS.items() if task_kind in v.task_kinds]
  missing = [k for k in first if k not in names]
  if missing:
    raise SamplerError(f"kind(s) {missing} are not registered for {task_kind} tasks")
  return tuple(first) + tuple(k for k in names if k not in first)


# Every classification kind, in the order the label configs sample them.
CLASSIFICATION_KINDS = kinds_of(CLASSIFICATION)
# Every code-corpus kind; whole packages ("groups") first, as the code labels sample them.
LANGUAGE_MODEL_KINDS = kinds_of(LANGUAGE_MODEL, first=("groups",))
