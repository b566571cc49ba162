"""The in-memory form of a label set: what every consumer of labels reads.

The label pipeline writes a TFDS ``array_record`` dataset; ``load_labels``
returns it as a ``LabelSet`` of numpy arrays (one row per (B, S, learner) pair).
The predictor, the baselines and the audits read only this class, so the
storage format can change without touching them.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np

from metaval.errors import MetavalError


class LabelError(MetavalError):
  """A label set is malformed or does not match its task."""


@dataclasses.dataclass
class LabelSet:
  """Improvement labels for P pairs, K paired seeds and T metrics.

  Ragged per-pair arrays are Python lists of numpy arrays (length P).

  Attributes:
    task: base task name (``metaval.data.get_task(task, seed=task_seed)``).
    task_seed: seed the task was built with.
    metric_names: the T metric names (higher is better), as ``train_many`` names them.
    base_indices: per pair, ``[n_B]`` int32 indices of B's points in the task pool.
    supp_indices: per pair, ``[n_S]`` int32 pool index of each S point, or -1
      where the point is synthetic (not in the pool).
    supp_x: per pair, S's inputs ``[n_S, d]`` float32 (tokens ``[n_S, T+1]`` int32
      for the code task), always materialised, pool points included.
    supp_y: per pair, S's labels ``[n_S]`` int32 (as trained on: noisy labels stay noisy).
    kind: ``[P]`` supplement kind, e.g. ``"clean"``, ``"label_noise"``.
    recipe: ``[P]`` JSON string of the sampler parameters that made S.
    learner: ``[P]`` JSON string of the ``LearnerSpec`` fields.
    learner_params: ``[P]`` int64 trained-parameter count of the learner.
    metric_base: ``[P, K, T]`` metric of the model trained on B, per seed.
    metric_full: ``[P, K, T]`` metric of the model trained on B ∪ S, same seeds.
    pair_id: ``[P]`` int64 stable id (shard * shard_size + position).
    shard: ``[P]`` int32 shard each pair was generated in.
    task_options: the options the task was built with (``Task.options`` as a dict,
      e.g. ``{"label": "target"}`` for a ``csv:`` task), so
      ``get_task(task, seed=task_seed, **task_options)`` rebuilds it; empty for
      built-ins and for datasets written before the field existed.
  """

  task: str
  task_seed: int
  metric_names: list[str]
  base_indices: list[np.ndarray]
  supp_indices: list[np.ndarray]
  supp_x: list[np.ndarray]
  supp_y: list[np.ndarray]
  kind: np.ndarray
  recipe: np.ndarray
  learner: np.ndarray
  learner_params: np.ndarray
  metric_base: np.ndarray
  metric_full: np.ndarray
  pair_id: np.ndarray
  shard: np.ndarray
  task_options: dict = dataclasses.field(default_factory=dict)

  def __len__(self) -> int:
    return len(self.kind)

  @property
  def num_seeds(self) -> int:
    return int(self.metric_base.shape[1])

  @property
  def improvement_per_seed(self) -> np.ndarray:
    """``[P, K, T]`` paired improvement metric(B ∪ S) - metric(B) per seed."""
    return self.metric_full - self.metric_base

  @property
  def improvement(self) -> np.ndarray:
    """``[P, T]`` mean improvement over seeds: the label."""
    return self.improvement_per_seed.mean(1)

  @property
  def improvement_se(self) -> np.ndarray:
    """``[P, T]`` standard error of the mean improvement over seeds."""
    k = self.num_seeds
    if k < 2:
      return np.zeros_like(self.improvement)
    return self.improvement_per_seed.std(1, ddof=1) / np.sqrt(k)

  def metric_index(self, name: str) -> int:
    if name not in self.metric_names:
      raise LabelError(f"unknown metric {name!r}; available: {', '.join(self.metric_names)}")
    return self.metric_names.index(name)

  def learner_spec(self, i: int) -> dict:
    return json.loads(self.learner[i])

  def recipe_of(self, i: int) -> dict:
    return json.loads(self.recipe[i])

  def subset(self, idx) -> LabelSet:
    """A LabelSet of the rows ``idx`` (bool mask or integer indices)."""
    idx = np.asarray(idx)
    if idx.dtype == bool:
      idx = np.flatnonzero(idx)
    pick = lambda xs: [xs[i] for i in idx]  # noqa: E731
    return dataclasses.replace(
      self,
      base_indices=pick(self.base_indices),
      supp_indices=pick(self.supp_indices),
      supp_x=pick(self.supp_x),
      supp_y=pick(self.supp_y),
      kind=self.kind[idx],
      recipe=self.recipe[idx],
      learner=self.learner[idx],
      learner_params=self.learner_params[idx],
      metric_base=self.metric_base[idx],
      metric_full=self.metric_full[idx],
      pair_id=self.pair_id[idx],
      shard=self.shard[idx],
    )

  @staticmethod
  def concatenate(sets: list[LabelSet]) -> LabelSet:
    """Joins label sets of the same task and metrics (e.g. several learners)."""
    if not sets:
      raise LabelError("nothing to concatenate")
    first = sets[0]
    for s in sets[1:]:
      same = (s.task, s.task_seed, s.task_options, s.metric_names)
      if same != (first.task, first.task_seed, first.task_options, first.metric_names):
        raise LabelError("label sets differ in task or metrics; cannot concatenate")
    cat = lambda f: np.concatenate([getattr(s, f) for s in sets])  # noqa: E731
    lst = lambda f: [a for s in sets for a in getattr(s, f)]  # noqa: E731
    return LabelSet(
      task=first.task,
      task_seed=first.task_seed,
      metric_names=list(first.metric_names),
      base_indices=lst("base_indices"),
      supp_indices=lst("supp_indices"),
      supp_x=lst("supp_x"),
      supp_y=lst("supp_y"),
      kind=cat("kind"),
      recipe=cat("recipe"),
      learner=cat("learner"),
      learner_params=cat("learner_params"),
      metric_base=cat("metric_base"),
      metric_full=cat("metric_full"),
      pair_id=cat("pair_id"),
      shard=cat("shard"),
      task_options=dict(first.task_options),
    )
