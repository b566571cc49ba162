"""Inputs to a fixed-width embedding: the raw part of every element's features.

Raw inputs are zero-padded to ``RAW_WIDTH`` so one model serves several tasks; for
the code task each element is a token window whose "input" is a fixed embedding
(hashed character unigram + bigram histogram, square-rooted and standardised by the
pool's statistics) and whose "label" is the window's package.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from metaval.data.tasks import LANGUAGE_MODEL, Task
from metaval.errors import MetavalError

RAW_WIDTH = 64  # raw inputs are zero-padded (or hashed, for code) to this width
MAX_CLASSES = 16  # one-hot labels are padded to this many classes
CODE_BINS = RAW_WIDTH  # hashed n-gram histogram bins for code windows
CLIP = 10.0  # scaled distances and raw inputs are clipped to [-CLIP, CLIP]


class FeatureError(MetavalError):
  """A supplemental or base set cannot be featurised (shape, NaN, empty, ...)."""


def _code_hash_table() -> np.ndarray:
  # A fixed pseudo-random bin for every (previous, current) token pair; unigrams
  # use row 0 (previous token "0"), so one table serves both n-gram orders.
  rng = np.random.default_rng(20240611)
  return rng.integers(0, CODE_BINS, size=(256, 256)).astype(np.int32)


_CODE_TABLE = _code_hash_table()


def code_embedding(tokens: np.ndarray) -> np.ndarray:
  """Hashed character unigram + bigram histogram ``[n, T] -> [n, CODE_BINS]`` (sqrt)."""
  tokens = np.asarray(tokens, np.int64) % 256
  n, t = tokens.shape
  out = np.zeros((n, CODE_BINS), np.float64)
  rows = np.repeat(np.arange(n), t)
  np.add.at(out, (rows, _CODE_TABLE[0, tokens].reshape(-1)), 1.0)
  if t > 1:
    rows2 = np.repeat(np.arange(n), t - 1)
    bins = _CODE_TABLE[tokens[:, :-1], tokens[:, 1:]].reshape(-1)
    np.add.at(out, (rows2, bins), 1.0)
  out /= np.maximum(out.sum(1, keepdims=True), 1.0)
  return np.sqrt(out)


@dataclasses.dataclass
class TaskView:
  """A task's pool mapped into the fixed-width embedding, plus its statistics."""

  task: Task
  pool: np.ndarray  # [N, RAW_WIDTH] float32 embedded pool
  mu: np.ndarray  # embedding statistics used to standardise (code only)
  sd: np.ndarray

  @property
  def lm(self) -> bool:
    return self.task.kind == LANGUAGE_MODEL

  def embed(self, x) -> np.ndarray:
    """Maps raw inputs (features or token windows) of this task to ``[n, RAW_WIDTH]``."""
    x = np.asarray(x)
    task = self.task
    if self.lm:
      if x.ndim != 2 or x.shape[1] != task.x.shape[1]:
        raise FeatureError(
          f"task {task.name!r} expects token windows of shape [n, {task.x.shape[1]}]; got {x.shape}"
        )
      if not np.issubdtype(x.dtype, np.integer):
        raise FeatureError(f"task {task.name!r} expects integer tokens, got dtype {x.dtype}")
      if x.size and (x.min() < 0 or x.max() >= task.num_classes):
        raise FeatureError(f"token ids must be in [0, {task.num_classes}) for task {task.name!r}")
      e = (code_embedding(x) - self.mu) / self.sd  # whole window: input and target
    else:
      if x.ndim != 2 or x.shape[1] != task.feature_dim:
        raise FeatureError(
          f"task {task.name!r} expects inputs of width {task.feature_dim}; got shape {x.shape}"
        )
      x = x.astype(np.float64)
      if not np.all(np.isfinite(x)):
        raise FeatureError("supplemental inputs contain NaN or inf")
      if task.feature_dim > RAW_WIDTH:
        raise FeatureError(f"feature width {task.feature_dim} exceeds the predictor's {RAW_WIDTH}")
      e = np.zeros((x.shape[0], RAW_WIDTH))
      e[:, : task.feature_dim] = x
    return np.clip(e, -CLIP, CLIP).astype(np.float32)


_VIEWS: dict[tuple, TaskView] = {}


def task_view(task: Task) -> TaskView:
  """The (cached) embedded pool of ``task``."""
  key = (task.name, task.seed, task.x.shape)
  if key not in _VIEWS:
    if task.kind == LANGUAGE_MODEL:
      raw = code_embedding(task.x)
      mu, sd = raw.mean(0), raw.std(0)
      sd = np.where(sd < 1e-6, 1.0, sd)
    else:
      mu, sd = np.zeros(RAW_WIDTH), np.ones(RAW_WIDTH)
    view = TaskView(task=task, pool=np.zeros((0, RAW_WIDTH), np.float32), mu=mu, sd=sd)
    view.pool = view.embed(task.x)
    _VIEWS[key] = view
  return _VIEWS[key]


def embed_inputs(view: TaskView, x) -> np.ndarray:
  """Embeds (and validates) a set's inputs for ``view``'s task."""
  return view.embed(x)


def check_labels(view: TaskView, y, n: int) -> np.ndarray:
  """Validates labels ``[n]`` of a set for this task (0..num_groups-1)."""
  task = view.task
  k = len(task.group_names) if view.lm else task.num_classes
  y = np.asarray(y)
  if y.shape != (n,):
    raise FeatureError(f"labels must have shape [{n}] to match the inputs; got {y.shape}")
  if y.size and not np.issubdtype(y.dtype, np.integer):
    if not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
      raise FeatureError("labels must be integers (NaN or fractional values found)")
  y = y.astype(np.int64)
  if y.size and (y.min() < 0 or y.max() >= k):
    raise FeatureError(f"labels must be in [0, {k}) for task {task.name!r}")
  if k > MAX_CLASSES:
    raise FeatureError(f"task {task.name!r} has {k} classes; the predictor supports {MAX_CLASSES}")
  return y


def num_label_classes(task: Task) -> int:
  return len(task.group_names) if task.kind == LANGUAGE_MODEL else task.num_classes
