"""Supplement samplers: (B, S) pairs of many kinds, each with its recipe.

A *supplement* S is a set of training points offered on top of a base set B (a
subset of a task's pool). S may reuse pool points (clean subsets, duplicates of
B) or be partly or wholly synthetic (noisy labels, perturbed or random inputs,
out-of-domain inputs). Every sampler records the parameters it used (the
*recipe*), so labels can be sliced by kind and parameter later.

The registry itself (``SUPPLEMENT_KINDS``, ``register_supplement``,
``sample_supplement``, the ``Supplement`` type) is ``metaval.data.supplement``;
its names are importable from here too. This module registers the original kinds
(clean subsets, label noise, duplicates, random bits, constant inputs, ...), then the
generic kinds of ``metaval.data.generic`` (covariate shift, feature noise, class
imbalance, class subsets, transformed copies, data from another task), so the
original kinds keep their registration order, and it holds the registry's named
lists (``CLASSIFICATION_KINDS``, ``GENERIC_KINDS``, ...).

Conventions: ``pool_indices[i] >= 0`` means S's i-th input *is* pool point
``pool_indices[i]`` (its label ``y[i]`` may still differ: label noise); ``-1``
means the input is synthetic. For the code task, ``x`` holds token windows
``[n, T + 1]`` and ``y`` the window's group id (-1 for synthetic windows).
"""

from __future__ import annotations

import math

import numpy as np

from metaval.data import generic
from metaval.data.supplement import (  # noqa: F401  (the registry's public names live here too)
  DEFAULT_BASE_SIZE,
  DEFAULT_SUPP_SIZE,
  SUPPLEMENT_KINDS,
  SamplerError,
  SamplerFn,
  Supplement,
  SupplementKind,
  draw_from,
  draw_size,
  feature_range,
  kinds_for,
  outside,
  register_supplement,
  sample_supplement,
)
from metaval.data.tasks import CLASSIFICATION, LANGUAGE_MODEL, Task, get_task, list_tasks


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
# Classification kinds.


@register_supplement("clean")
def _clean(task, base_idx, rng, size=None, class_mix=None, alpha=0.3):
  """Clean pool points outside B; ``class_mix`` natural, balanced or skewed."""
  size = draw_size(rng, size)
  class_mix = class_mix or str(rng.choice(["natural", "balanced", "skewed"]))
  avail = outside(task, base_idx)
  ya = task.y[avail]
  counts = np.bincount(ya, minlength=task.num_classes)
  if class_mix == "natural":
    class_w = counts / max(counts.sum(), 1)  # no point outside B: draw_from says so
    idx = draw_from(rng, avail, size)
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
  size = draw_size(rng, size)
  rate = float(rng.choice([0.1, 0.25, 0.5, 0.75, 1.0]) if rate is None else rate)
  if not 0.0 <= rate <= 1.0:
    raise SamplerError(f"label noise rate must be in [0, 1], got {rate}")
  idx = draw_from(rng, outside(task, base_idx), size)
  y = task.y[idx].copy()
  n_flip = int(round(rate * len(idx)))
  flip = rng.choice(len(idx), n_flip, replace=False)
  # A flip always moves to a *different* class.
  y[flip] = (y[flip] + rng.integers(1, task.num_classes, n_flip)) % task.num_classes
  return task.x[idx], y, idx, {"rate": rate, "flipped": n_flip}


@register_supplement("duplicates", task_kinds=(CLASSIFICATION, LANGUAGE_MODEL))
def _duplicates(task, base_idx, rng, size=None):
  """Exact copies of points already in B (drawn with replacement if S > B)."""
  size = draw_size(rng, size)
  if base_idx.size == 0:
    raise SamplerError("duplicates need a non-empty base set")
  idx = np.sort(rng.choice(base_idx, size, replace=size > base_idx.size))
  return task.x[idx], task.y[idx], idx, {"distinct": int(np.unique(idx).size)}


@register_supplement("near_duplicates", task_kinds=(CLASSIFICATION, LANGUAGE_MODEL))
def _near_duplicates(task, base_idx, rng, size=None, sigma=None):
  """B's points slightly perturbed: Gaussian noise (features) or token swaps (code)."""
  size = draw_size(rng, size)
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
  size = draw_size(rng, size)
  if task.kind == LANGUAGE_MODEL:
    x = rng.integers(1, task.num_classes, (size, task.x.shape[1]))
    return x, np.full(size, -1), np.full(size, -1), {"mode": "tokens"}
  mode = mode or str(rng.choice(["bits", "uniform"]))
  lo, hi = feature_range(task)
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
  size = draw_size(rng, size)
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
  size = draw_size(rng, size)
  cls = int(rng.integers(task.num_classes) if cls is None else cls)
  if not 0 <= cls < task.num_classes:
    raise SamplerError(f"class must be in [0, {task.num_classes}), got {cls}")
  avail = outside(task, base_idx)
  avail = avail[task.y[avail] == cls]
  idx = draw_from(rng, avail, size)
  return task.x[idx], task.y[idx], idx, {"cls": cls}


def _ood_modes(task: Task) -> list[str]:
  side = math.isqrt(task.feature_dim)
  modes = ["invert", "shift", "other_task"]
  if side * side == task.feature_dim and side > 1:
    modes = ["rotate90", "rotate180", "flip"] + modes
  return modes


def other_tasks(name: str) -> list[str]:
  """The built-in tasks ``out_of_domain`` may draw "another task's inputs" from (each
  built with the task's seed and no options)."""
  return [t for t in list_tasks() if t not in (name, "code")]


def source_tasks(name: str, kinds) -> list[str]:
  """Tasks besides ``name`` itself that sampling ``kinds`` on it may build."""
  return other_tasks(name) if "out_of_domain" in kinds else []


@register_supplement("out_of_domain")
def _out_of_domain(task, base_idx, rng, size=None, mode=None, source=None, scale=None):
  """Shifted inputs: rotated/flipped images, inverted, offset, or another task's inputs."""
  size = draw_size(rng, size)
  modes = _ood_modes(task)
  mode = mode or str(rng.choice(modes))
  if mode not in modes:
    raise SamplerError(f"out_of_domain mode {mode!r} not available for {task.name!r}: {modes}")
  recipe = {"mode": mode}
  if mode == "other_task":
    source = source or str(rng.choice(other_tasks(task.name)))
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
  idx = draw_from(rng, outside(task, base_idx), size)
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
  size = max(draw_size(rng, size), 2)
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
  avail = outside(task, base_idx)
  avail = avail[np.isin(task.groups[avail], groups)]
  if size is not None:
    avail = draw_from(rng, avail, int(size))
  if avail.size == 0:
    raise SamplerError(f"groups {groups} have no windows outside the base set")
  recipe = {"groups": groups, "group_names": [task.group_names[g] for g in groups]}
  return task.x[avail], task.y[avail], avail, recipe


# ----------------------------------------------------------------------------
# Generic kinds (any tabular task), registered after the original kinds.

for _name, _fn in generic.SAMPLERS:
  register_supplement(_name)(_fn)


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
# The kinds defined for any tabular classification task (``metaval.prior`` keeps
# ``out_of_domain`` and ``mixture`` to modes that read no other built-in task).
GENERIC_KINDS = (
  "clean",
  "label_noise",
  "duplicates",
  "near_duplicates",
  "random_bits",
  "constant",
  "single_class",
  "out_of_domain",
  "mixture",
  "covariate_shift",
  "feature_noise",
  "class_imbalance",
  "class_subset",
  "transformed",
  "missing_features",
  "foreign_task",
)
