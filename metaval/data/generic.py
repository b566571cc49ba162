"""Generic supplement kinds: defined for any tabular classification task.

Each is a sampler ``fn(task, base_idx, rng, **params) -> (x, y, pool_indices, recipe)``
(see ``metaval.data.supplement``); ``metaval.data.samplers`` registers them, after
the original kinds, under the names in ``SAMPLERS``. They use nothing about a task
beyond its standardised pool (no image layout, no other built-in task), so they
apply to user data and to the generated tasks of ``metaval.prior`` alike.
"""

from __future__ import annotations

import math

import numpy as np

from metaval.data.supplement import SamplerError, draw_from, draw_size, outside


def _log_uniform(rng, lo: float, hi: float) -> float:
  return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def _covariate_shift(task, base_idx, rng, size=None, strength=None):
  """Clean pool points outside B, selected with a bias along a random direction."""
  size = draw_size(rng, size)
  strength = _log_uniform(rng, 0.5, 4.0) if strength is None else float(strength)
  if strength < 0:
    raise SamplerError(f"covariate_shift strength must be >= 0, got {strength}")
  avail = outside(task, base_idx)
  if avail.size == 0:
    raise SamplerError("no pool points available outside the base set")
  u = rng.standard_normal(task.feature_dim)
  proj = task.x[avail].astype(np.float64) @ (u / np.linalg.norm(u))
  # Selection weight exp(strength * z) on the standardised projection z: S covers one
  # side of the input distribution, with true labels (a shifted input distribution).
  z = (proj - proj.mean()) / max(proj.std(), 1e-12)
  w = np.exp(strength * (z - z.max()))
  idx = draw_from(rng, avail, size, weights=np.maximum(w, 1e-300))
  return task.x[idx], task.y[idx], idx, {"strength": strength}


def _feature_noise(task, base_idx, rng, size=None, sigma=None, share=None):
  """Pool points outside B with Gaussian noise on a share of their features."""
  size = draw_size(rng, size)
  sigma = _log_uniform(rng, 0.1, 3.0) if sigma is None else float(sigma)
  share = float(rng.choice([0.25, 0.5, 1.0]) if share is None else share)
  if sigma < 0 or not 0.0 < share <= 1.0:
    raise SamplerError(f"feature_noise needs sigma >= 0 and share in (0, 1], got {sigma}, {share}")
  idx = draw_from(rng, outside(task, base_idx), size)
  x = task.x[idx].astype(np.float64)
  hit = rng.random(x.shape) < share
  x = x + hit * sigma * rng.standard_normal(x.shape)
  return x, task.y[idx], np.full(len(idx), -1), {"sigma": sigma, "share": share}


def _class_imbalance(task, base_idx, rng, size=None, majority=None, share=None):
  """Clean pool points outside B where one class makes up most of S."""
  size = draw_size(rng, size)
  c = task.num_classes
  majority = int(rng.integers(c) if majority is None else majority)
  share = float(rng.uniform(0.6, 0.95) if share is None else share)
  if not 0 <= majority < c or not 0.0 < share < 1.0:
    raise SamplerError(f"class_imbalance needs a class in [0, {c}) and share in (0, 1)")
  avail = outside(task, base_idx)
  major, minor = avail[task.y[avail] == majority], avail[task.y[avail] != majority]
  if major.size == 0 or minor.size == 0:
    raise SamplerError(f"class_imbalance: class {majority} or the others have no points outside B")
  # Exact quotas: `share` of S from the majority class; if that class runs short
  # outside B, S shrinks rather than lose its imbalance.
  n_major = min(major.size, max(1, int(round(share * size))))
  n_minor = min(minor.size, max(1, int(round(n_major * (1.0 - share) / share))))
  idx = np.sort(np.concatenate([draw_from(rng, major, n_major), draw_from(rng, minor, n_minor)]))
  return task.x[idx], task.y[idx], idx, {"majority": majority, "share": share}


def _class_subset(task, base_idx, rng, size=None, classes=None):
  """Clean pool points outside B from a random subset of the classes (not all)."""
  size = draw_size(rng, size)
  c = task.num_classes
  if classes is None:
    k = int(rng.integers(1, c))  # 1 .. C - 1 classes
    classes = sorted(int(v) for v in rng.choice(c, k, replace=False))
  classes = [int(v) for v in classes]
  if not classes or min(classes) < 0 or max(classes) >= c:
    raise SamplerError(f"class_subset classes must be ids in [0, {c}), got {classes}")
  avail = outside(task, base_idx)
  avail = avail[np.isin(task.y[avail], classes)]
  idx = draw_from(rng, avail, size)
  return task.x[idx], task.y[idx], idx, {"classes": classes}


TRANSFORMS = ("rotation", "scaling", "permutation", "reflection")


def _transformed(task, base_idx, rng, size=None, transform=None):
  """Copies of pool points (outside B) under one random rotation, scaling, column
  permutation or reflection, with their true labels: the same data, seen differently."""
  size = draw_size(rng, size)
  transform = transform or str(rng.choice(TRANSFORMS))
  if transform not in TRANSFORMS:
    raise SamplerError(f"transform must be one of {TRANSFORMS}, got {transform!r}")
  idx = draw_from(rng, outside(task, base_idx), size)
  x, d = task.x[idx].astype(np.float64), task.feature_dim
  if transform == "rotation":
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    x = x @ (q * np.sign(np.diag(r)))  # a uniformly random orthogonal map
  elif transform == "scaling":
    x = x * np.exp(rng.uniform(np.log(0.2), np.log(5.0), d))
  elif transform == "permutation":
    x = x[:, rng.permutation(d)]
  else:  # reflection of a random half of the features
    x = x * np.where(rng.random(d) < 0.5, -1.0, 1.0)
  return x, task.y[idx], np.full(len(idx), -1), {"transform": transform}


def _missing_features(task, base_idx, rng, size=None, share=None):
  """Pool points outside B with a share of feature values missing, mean-imputed (0 in
  the standardised space)."""
  size = draw_size(rng, size)
  share = float(rng.uniform(0.1, 0.8) if share is None else share)
  if not 0.0 < share <= 1.0:
    raise SamplerError(f"missing_features share must be in (0, 1], got {share}")
  idx = draw_from(rng, outside(task, base_idx), size)
  x = task.x[idx].copy()
  x[rng.random(x.shape) < share] = 0.0
  return x, task.y[idx], np.full(len(idx), -1), {"share": share}


def _foreign_task(task, base_idx, rng, size=None, seed=None):
  """Points and labels of an unrelated generated task with this task's width and
  class count: plausible-looking, standardised inputs whose labels mean nothing here."""
  from metaval.prior import generator  # the prior's task generator (numpy only)

  del base_idx
  size = draw_size(rng, size)
  seed = int(rng.integers(2**31) if seed is None else seed)
  n_min = generator.MIN_PER_CLASS * task.num_classes
  spec = generator.sample_spec(
    seed,
    dim=(task.feature_dim, task.feature_dim),
    num_classes=(task.num_classes, task.num_classes),
    pool_size=(max(size, n_min), max(size, n_min)),
    eval_size=(n_min, n_min),
  )
  other = generator.build_task(spec)
  pick = np.sort(rng.choice(other.pool_size, min(size, other.pool_size), replace=False))
  return other.x[pick], other.y[pick], np.full(len(pick), -1), {"seed": seed}


# (name, sampler) in registration order.
SAMPLERS = (
  ("covariate_shift", _covariate_shift),
  ("feature_noise", _feature_noise),
  ("class_imbalance", _class_imbalance),
  ("class_subset", _class_subset),
  ("transformed", _transformed),
  ("missing_features", _missing_features),
  ("foreign_task", _foreign_task),
)
