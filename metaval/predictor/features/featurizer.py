"""Pairs to padded arrays: ``Featurizer`` turns (task, B, S, learner) into ``PairFeatures``."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np

from metaval.data.tasks import Task
from metaval.predictor.features.inputs import (
  FeatureError,
  TaskView,
  embed_inputs,
  num_label_classes,
  task_view,
)
from metaval.predictor.features.relational import (
  ELEM_DIM,
  BaseStats,
  base_stats,
  element_features,
  relational,
  relational_self,
)
from metaval.predictor.features.sets import learner_features, set_features

FEATURE_VERSION = 2  # bump when features change (invalidates feature caches)


@dataclasses.dataclass
class PairFeatures:
  """Featurised pairs, padded to fixed set sizes (the model's input).

  Attributes:
    s: ``[P, n_s, ELEM_DIM]`` supplement elements (a subsample if S is larger).
    s_mask: ``[P, n_s]`` 1 for real elements, 0 for padding.
    b: ``[P, n_b, ELEM_DIM]`` base elements (a subsample if B is larger).
    b_mask: ``[P, n_b]``.
    sets: ``[P, SET_DIM]`` set statistics (computed on the full sets).
    learner: ``[P, LEARNER_DIM]``.
    s_size: ``[P]`` true |S|.
  """

  s: np.ndarray
  s_mask: np.ndarray
  b: np.ndarray
  b_mask: np.ndarray
  sets: np.ndarray
  learner: np.ndarray
  s_size: np.ndarray

  def __len__(self):
    return len(self.s_size)

  def take(self, idx) -> PairFeatures:
    return PairFeatures(**{f.name: getattr(self, f.name)[idx] for f in dataclasses.fields(self)})

  def arrays(self) -> dict[str, np.ndarray]:
    return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

  @staticmethod
  def concatenate(parts: list[PairFeatures]) -> PairFeatures:
    return PairFeatures(
      **{
        f.name: np.concatenate([getattr(p, f.name) for p in parts])
        for f in dataclasses.fields(PairFeatures)
      }
    )


def _subsample(n: int, cap: int, seed: int) -> np.ndarray:
  if n <= cap:
    return np.arange(n)
  return np.sort(np.random.default_rng(seed).choice(n, cap, replace=False))


class Featurizer:
  """Turns (task, B, S, learner) into padded ``PairFeatures``, caching per-B work."""

  def __init__(self, max_s: int = 128, max_b: int = 128, proxies: bool = True):
    self.max_s = int(max_s)
    self.max_b = int(max_b)
    self.proxies = bool(proxies)  # False: the kNN proxy set features are zero
    self._base_cache: dict[str, tuple[BaseStats, np.ndarray]] = {}

  def base(self, view: TaskView, xb: np.ndarray, yb: np.ndarray):
    """``(BaseStats, [n_b_sub, ELEM_DIM])`` of a base set, cached by content."""
    h = hashlib.sha1(xb.tobytes() + yb.astype(np.int64).tobytes()).hexdigest()
    key = f"{view.task.name}:{h}"
    if key not in self._base_cache:
      k = num_label_classes(view.task)
      stats = base_stats(xb, yb, k)
      sub = _subsample(len(yb), self.max_b, seed=0)
      rel = relational(xb[sub], yb[sub], stats, is_base=False)
      # Neighbours of a subsampled base point must exclude itself: recompute those
      # features against B with the point's own distance masked.
      rel_self = relational_self(xb, yb, sub, stats)
      rel[:, :6] = rel_self[:, :6]
      rel[:, 7] = rel[:, 6]
      rel[:, 8:10] = rel[:, 0:2]
      rel[:, 11] = 0.0
      elems = element_features(xb[sub], yb[sub], rel, k)
      if len(self._base_cache) > 256:
        self._base_cache.clear()
      self._base_cache[key] = (stats, elems)
    return self._base_cache[key]

  def pair(self, view: TaskView, xb, yb, xs, ys, learner: np.ndarray, seed: int = 0):
    """Features of one pair as ``PairFeatures`` with P = 1."""
    if len(ys) == 0:
      raise FeatureError("the supplemental set is empty")
    stats, b_elems = self.base(view, xb, yb)
    rel = relational(xs, ys, stats, is_base=False)
    sets = set_features(xs, ys, rel, stats, view.task, proxies=self.proxies)
    sub = _subsample(len(ys), self.max_s, seed)
    s_elems = element_features(xs[sub], ys[sub], rel[sub], stats.k)
    s = np.zeros((1, self.max_s, ELEM_DIM), np.float32)
    s[0, : len(sub)] = s_elems
    s_mask = np.zeros((1, self.max_s), np.float32)
    s_mask[0, : len(sub)] = 1.0
    b = np.zeros((1, self.max_b, ELEM_DIM), np.float32)
    b[0, : len(b_elems)] = b_elems
    b_mask = np.zeros((1, self.max_b), np.float32)
    b_mask[0, : len(b_elems)] = 1.0
    return PairFeatures(
      s=s,
      s_mask=s_mask,
      b=b,
      b_mask=b_mask,
      sets=sets[None],
      learner=np.asarray(learner, np.float32)[None],
      s_size=np.array([len(ys)], np.int64),
    )


def featurize_labels(labels, featurizer: Featurizer, task: Task | None = None) -> PairFeatures:
  """Featurises every pair of a ``LabelSet`` (one task)."""
  from metaval.data import get_task
  from metaval.learners.models import LearnerSpec, num_params

  task = task or get_task(labels.task, seed=labels.task_seed, **labels.task_options)
  view = task_view(task)
  parts = []
  lcache: dict[str, np.ndarray] = {}
  for i in range(len(labels)):
    bi = np.asarray(labels.base_indices[i], np.int64)
    xb = view.pool[bi]
    yb = np.asarray(task.y[bi], np.int64)
    xs = embed_inputs(view, labels.supp_x[i])
    ys = np.asarray(labels.supp_y[i], np.int64)
    lj = str(labels.learner[i])
    if lj not in lcache:
      spec = json.loads(lj)
      n_params = int(labels.learner_params[i])
      if n_params <= 0:
        in_dim = 0 if view.lm else task.feature_dim
        known = {k: v for k, v in spec.items() if k in LearnerSpec.__dataclass_fields__}
        n_params = num_params(LearnerSpec(**known), in_dim, task.num_classes)
      lcache[lj] = learner_features(spec, n_params)
    parts.append(featurizer.pair(view, xb, yb, xs, ys, lcache[lj], seed=int(labels.pair_id[i])))
  return PairFeatures.concatenate(parts)
