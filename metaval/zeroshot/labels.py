"""Retraining labels of one task, kept as raw arrays so any featuriser can read them.

``label_task`` draws a few bases and supplements of every kind for a task, trains
each learner on B and on B ∪ S with paired seeds (the one label engine,
``metaval.pairs.labels.label``) and returns ``TaskLabels``: B, S and the evaluation
set as arrays, with the mean gain in accuracy per (pair, learner). The value model
is trained on many of these (``metaval.zeroshot.train``); nothing here knows about
features.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from metaval.data.samplers import SamplerError, kinds_for, sample_base, sample_supplement
from metaval.data.tasks import CLASSIFICATION, Task
from metaval.errors import MetavalError
from metaval.learners.models import LearnerSpec, num_params
from metaval.pairs.keys import root_key
from metaval.pairs.labels import label
from metaval.pairs.pairs import Pairs

METRIC = "test/accuracy"
GATHER = 512  # rows per model: the largest B ∪ S the prior draws


@dataclasses.dataclass
class TaskLabels:
  """Labelled pairs of one task, learner by learner.

  Attributes:
    task_id: the task's id in its prior (groups the pairs for ranking).
    name: the task's name (``"synthetic"``, a prior kind, ...).
    x_eval: ``[n_T, d]`` the evaluation set the gain is measured on.
    y_eval: ``[n_T]`` its labels.
    bases: ``[(x_B, y_B)]`` the base sets.
    base_of: ``[P]`` each pair's base.
    supp: ``[(x_S, y_S)]`` per pair.
    kind: ``[P]`` supplement kind of each pair.
    learners: ``[L]`` learner specs (dicts with a ``name``).
    learner_params: ``[L]`` parameter counts on this task.
    gain: ``[P, L]`` mean gain in accuracy over the paired seeds.
    spread: ``[P, L]`` standard deviation of the per-seed gains.
    split_a: ``[P, L]`` mean gain over the first half of the seeds (noise ceiling).
    split_b: ``[P, L]`` mean gain over the second half.
  """

  task_id: int
  name: str
  x_eval: np.ndarray
  y_eval: np.ndarray
  bases: list
  base_of: np.ndarray
  supp: list
  kind: np.ndarray
  learners: list
  learner_params: list
  gain: np.ndarray
  spread: np.ndarray
  split_a: np.ndarray
  split_b: np.ndarray


def learner_name(spec: LearnerSpec) -> str:
  """``"linear"``, ``"mlp32"``, ``"mlp64x2"``: the short name of a learner."""
  if spec.family != "mlp":
    return spec.family
  return f"mlp{spec.width}" + (f"x{spec.depth}" if spec.depth > 1 else "")


def label_task(
  task: Task,
  task_id: int,
  learners: list[LearnerSpec],
  *,
  seed: int = 0,
  num_bases: int = 2,
  per_kind: int = 1,
  base_range: tuple[int, int] = (40, 300),
  supp_range: tuple[int, int] = (10, 200),
  kinds: tuple[str, ...] | None = None,
  num_seeds: int = 2,
) -> TaskLabels:
  """Samples pairs of every kind on ``task`` and labels them with every learner.

  Args:
    task: a classification task (its ``test`` evaluation set measures the gain).
    task_id: the task's id (stored, and folded into the sampling seed).
    learners: the learner ladder.
    seed: sampling seed.
    num_bases: distinct base sets drawn.
    per_kind: supplements of each kind per base.
    base_range: inclusive range of base sizes.
    supp_range: inclusive range of supplement sizes (kinds that take a size).
    kinds: supplement kinds (default: every kind registered for the task).
    num_seeds: paired seeds per label (even, so the two halves give a ceiling).

  Returns:
    ``TaskLabels``.
  """
  if task.kind != CLASSIFICATION:
    raise MetavalError(f"the zero-shot prior needs classification tasks, got {task.kind!r}")
  rng = np.random.default_rng([seed, task_id])
  kinds = tuple(kinds or kinds_for(task))
  bases, supps, base_of = [], [], []
  for _ in range(num_bases):
    n_b = int(rng.integers(base_range[0], base_range[1] + 1))
    base = sample_base(task, rng, n_b)
    bases.append(base)
    for kind in kinds:
      for _ in range(per_kind):
        size = int(rng.integers(supp_range[0], supp_range[1] + 1))
        try:
          s = sample_supplement(kind, task, base, rng, size=size)
        except SamplerError:  # a kind without a size parameter, or too few points
          try:
            s = sample_supplement(kind, task, base, rng)
          except SamplerError:
            continue
        supps.append(s)
        base_of.append(len(bases) - 1)
  pairs = Pairs.from_supplements(bases, supps, base_of=np.asarray(base_of))
  x_eval, y_eval = task.evals["test"]
  gains, spreads, sa, sb, n_params = [], [], [], [], []
  for spec in learners:
    # gather: every model trains on its own rows (B ∪ S <= GATHER), so the cost is
    # per pair rather than per pool, and one program serves every task of a shape.
    lab = label(
      task,
      pairs,
      spec,
      num_seeds=num_seeds,
      key=root_key(seed * 7919 + task_id),
      gather=GATHER,
      chunk=48,
    )
    per_seed = lab.improvement(METRIC)  # [P, K]
    half = max(1, num_seeds // 2)
    gains.append(per_seed.mean(1))
    spreads.append(per_seed.std(1))
    sa.append(per_seed[:, :half].mean(1))
    sb.append(per_seed[:, half:].mean(1) if num_seeds > 1 else per_seed[:, 0])
    n_params.append(num_params(spec, task.feature_dim, task.num_classes))
  return TaskLabels(
    task_id=task_id,
    name=task.name,
    x_eval=np.asarray(x_eval, np.float32),
    y_eval=np.asarray(y_eval, np.int64),
    bases=[(task.x[b], task.y[b].astype(np.int64)) for b in pairs.bases],
    base_of=pairs.base_of,
    supp=[(np.asarray(s.x, np.float32), np.asarray(s.y, np.int64)) for s in supps],
    kind=np.asarray([s.kind for s in supps]),
    learners=[{"name": learner_name(s), **s.to_dict()} for s in learners],
    learner_params=n_params,
    gain=np.stack(gains, 1),
    spread=np.stack(spreads, 1),
    split_a=np.stack(sa, 1),
    split_b=np.stack(sb, 1),
  )


def prior_task(task_id: int) -> Task:
  """Task ``task_id`` of the prior: ``metaval.prior.sample_task`` where available,
  else ``synthetic_task``."""
  try:
    from metaval.prior import sample_task
  except ImportError:
    return synthetic_task(task_id)
  return sample_task(task_id)


def synthetic_task(task_id: int) -> Task:
  """A generated task: ``synthetic`` with width, classes, separation and noise drawn from the id.

  Widths and class counts come from short lists so that tasks share compiled
  training programs (one per shape).
  """
  from metaval.data import get_task

  rng = np.random.default_rng([20261130, task_id])
  dim = int(rng.choice([8, 16]))
  classes = int(rng.choice([2, 3, 4]))
  return get_task(
    "synthetic",
    seed=1000 + task_id,
    n=900,
    dim=dim,
    num_classes=classes,
    informative=int(rng.integers(3, dim // 2 + 2)),
    class_sep=float(rng.uniform(0.4, 2.0)),
    flip_y=float(rng.choice([0.0, 0.02, 0.1])),
    test_size=300,
  )


def save(labels: TaskLabels, path: str) -> None:
  """Writes one task's labels (a pickle of plain arrays, written atomically)."""
  import pickle

  from metaval.util import io

  with io.atomic_write(path, "wb") as f:
    f.write(pickle.dumps(dataclasses.asdict(labels)))


def load_dir(workdir: str) -> list[TaskLabels]:
  """Every ``task_*.pkl`` under ``workdir``, in task order."""
  import glob
  import os
  import pickle

  out = []
  for p in sorted(glob.glob(os.path.join(workdir, "task_*.pkl"))):
    with open(p, "rb") as f:
      out.append(TaskLabels(**pickle.load(f)))
  return out


def from_prior(workdir: str) -> list[TaskLabels]:
  """The labels of a ``metaval prior`` run, regrouped task by task.

  Args:
    workdir: the prior job's workdir (its finished shards are read).

  Returns:
    One ``TaskLabels`` per generated task (its seed as ``task_id``), B, S and the
    evaluation set redrawn from the stored specs and checked against the labels.
  """
  import json

  from metaval.prior.storage import load_prior

  pl = load_prior(workdir)
  specs = [json.loads(s) if isinstance(s, str) else dict(s) for s in pl.learner_specs]
  names = list(pl.learners)
  fields = {f.name for f in dataclasses.fields(LearnerSpec)}
  learner_objs = [LearnerSpec(**{k: v for k, v in s.items() if k in fields}) for s in specs]
  per_seed = (pl.metric_full - pl.metric_base)[..., pl.metric_names.index(METRIC)]  # [P, L, K]
  out = []
  for seed in np.unique(pl.task_seed):
    rows = np.flatnonzero(pl.task_seed == seed)
    task = pl.task(int(rows[0]))
    seen, bases, base_of, supp = {}, [], [], []
    for r in rows:
      arr = pl.pair_arrays(int(r))
      key = np.asarray(pl.base_indices[r]).tobytes()
      if key not in seen:
        seen[key] = len(bases)
        bases.append((arr["x_base"], np.asarray(arr["y_base"], np.int64)))
      base_of.append(seen[key])
      supp.append((np.asarray(arr["x_supp"], np.float32), np.asarray(arr["y_supp"], np.int64)))
    d = per_seed[rows]  # [p, L, K]
    half = max(1, d.shape[2] // 2)
    x_eval, y_eval = task.evals["test"]
    out.append(
      TaskLabels(
        task_id=int(seed),
        name=task.name,
        x_eval=np.asarray(x_eval, np.float32),
        y_eval=np.asarray(y_eval, np.int64),
        bases=bases,
        base_of=np.asarray(base_of),
        supp=supp,
        kind=np.asarray(pl.kind[rows]).astype(str),
        learners=[{"name": n, **s.to_dict()} for n, s in zip(names, learner_objs)],
        learner_params=[num_params(s, task.feature_dim, task.num_classes) for s in learner_objs],
        gain=d.mean(2),
        spread=d.std(2),
        split_a=d[:, :, :half].mean(2),
        split_b=d[:, :, half:].mean(2) if d.shape[2] > 1 else d[:, :, 0],
      )
    )
  return out
