"""Labels of prior tasks: every pair of a task, every learner of the ladder, K paired seeds.

Labels are ``metaval.pairs.label`` (B and B ∪ S trained with shared keys), on a copy
of the task padded to a *shape bucket*: zero feature columns up to the next of
``FEATURE_BUCKETS`` and zero-weight pool rows up to a multiple of ``POOL_ROWS``, with
every model gathering its own points (a fixed ``gather`` size). The compiled
training programs depend only on (learner, classes, feature bucket), so one program
serves every task of a bucket instead of each task compiling its own (compiling
costs far more than training these small models). Zero columns change nothing for
the linear learner (zero-initialised: their weights get no gradient and stay 0);
for an MLP they only set the first layer's init scale (``sqrt(2 / padded width)``).

A task's root key is ``metaval.pairs.shard_key(seed, task seed, 0, learner index)``.
"""

from __future__ import annotations

import dataclasses
import json

import ml_collections
import numpy as np

from metaval import pairs as pairs_lib
from metaval.data.tasks import Task
from metaval.learners.models import LearnerSpec
from metaval.learners.train import metric_names
from metaval.prior import generator
from metaval.prior import pairs as prior_pairs

FEATURE_BUCKETS = (8, 16, 32, 64)
POOL_ROWS = 2048
# The two metrics kept (per-class accuracies differ in number between tasks).
METRICS = ("test/accuracy", "test/neg_log_loss")


def feature_bucket(dim: int) -> int:
  """The padded width of a task with ``dim`` features."""
  for b in FEATURE_BUCKETS:
    if dim <= b:
      return b
  top = FEATURE_BUCKETS[-1]
  return top * -(-dim // top)


def signature(spec: generator.TaskSpec) -> tuple[int, int]:
  """``(classes, padded width)``: tasks with one signature share compiled programs."""
  return spec.num_classes, feature_bucket(spec.dim)


def _pad_cols(x: np.ndarray, width: int) -> np.ndarray:
  return np.pad(x, ((0, 0), (0, width - x.shape[1]))).astype(np.float32)


def padded(task: Task, pairs: pairs_lib.Pairs) -> tuple[Task, pairs_lib.Pairs]:
  """The task and pairs padded to the task's shape bucket (same labels, shared programs)."""
  width = feature_bucket(task.feature_dim)
  n, rows = task.pool_size, POOL_ROWS * -(-task.pool_size // POOL_ROWS)
  fill = np.full(rows - n, -1, np.int32)
  ev = {k: (_pad_cols(x, width), y) for k, (x, y) in task.evals.items()}
  big = dataclasses.replace(
    task,
    x=np.concatenate([_pad_cols(task.x, width), np.zeros((rows - n, width), np.float32)]),
    y=np.concatenate([task.y, np.zeros(rows - n, np.int32)]),
    evals=ev,
    groups=np.concatenate([task.groups, fill]),
    files=np.concatenate([task.files, fill]),
  )
  wide = dataclasses.replace(pairs, supp_x=[_pad_cols(x, width) for x in pairs.supp_x])
  return big, wide


def learner_specs(cfg) -> list[tuple[str, LearnerSpec]]:
  """The config's learner ladder as ``(name, spec)``."""
  return [(name, LearnerSpec.from_config(c)) for name, c in cfg.learners.items()]


def label_task(cfg, task_seed: int) -> dict:
  """Every label of one prior task (pure: same config and seed, same output).

  Args:
    cfg: the prior config (``ConfigDict`` or its ``to_dict()``).
    task_seed: the task's seed.

  Returns:
    Per-task arrays: ``pairs`` (the ``Pairs``), ``supplements``, ``spec`` and the
    metrics ``metric_base``, ``metric_full`` ``[P, L, K, 2]`` (``METRICS`` order).
  """
  cfg = ml_collections.ConfigDict(cfg if isinstance(cfg, dict) else cfg.to_dict())
  spec = generator.sample_spec(task_seed, **dict(cfg.ranges))
  task = generator.build_task(spec)
  pairs, supps = prior_pairs.task_pairs(task, cfg)
  big, wide = padded(task, pairs)
  names = metric_names(big)
  cols = [names.index(m) for m in METRICS]
  mb, mf = [], []
  for li, (_, ls) in enumerate(learner_specs(cfg)):
    out = pairs_lib.label(
      big,
      wide,
      ls,
      num_seeds=int(cfg.num_seeds),
      key=pairs_lib.shard_key(int(cfg.seed), task_seed, 0, li),
      chunk=int(cfg.chunk),
      extra_capacity=int(cfg.extra_capacity),
      gather=int(cfg.gather),
    )
    mb.append(out.metric_base[..., cols])
    mf.append(out.metric_full[..., cols])
  return {
    "spec": spec,
    "pairs": pairs,
    "supplements": supps,
    "metric_base": np.stack(mb, 1),  # [P, L, K, 2]
    "metric_full": np.stack(mf, 1),
  }


def _offsets(arrs) -> np.ndarray:
  return np.cumsum([0] + [len(a) for a in arrs]).astype(np.int64)


def run_shard(cfg, task_seeds) -> dict[str, np.ndarray]:
  """One shard's record: the labels of ``task_seeds`` (numpy arrays, one row per pair).

  Args:
    cfg: the prior config (``ConfigDict`` or its ``to_dict()``).
    task_seeds: the shard's task seeds.

  Returns:
    The arrays ``metaval.prior.storage`` writes and reads.
  """
  cfg = ml_collections.ConfigDict(cfg if isinstance(cfg, dict) else cfg.to_dict())
  rows = {k: [] for k in ("task_seed", "pair_index", "kind", "recipe", "x_sum")}
  bases, sidx, sy, synth, mb, mf, specs = [], [], [], [], [], [], []
  for seed in task_seeds:
    out = label_task(cfg, int(seed))
    p, supps = out["pairs"], out["supplements"]
    specs.append(out["spec"].to_json())
    for i, s in enumerate(supps):
      rows["task_seed"].append(int(seed))
      rows["pair_index"].append(i)
      rows["kind"].append(s.kind)
      rows["recipe"].append(json.dumps(s.recipe, sort_keys=True))
      # A checksum of S's inputs: readers that redraw S can verify they got it back.
      rows["x_sum"].append(float(np.asarray(s.x, np.float64).sum()))
      bases.append(p.base(i))
      sidx.append(s.pool_indices)
      sy.append(s.y)
      synth.append(np.asarray(s.x[s.pool_indices < 0], np.float32).reshape(-1))
    mb.append(out["metric_base"])
    mf.append(out["metric_full"])
  specs_l = learner_specs(cfg)
  learners = [json.dumps({"name": n, **ls.to_dict()}, sort_keys=True) for n, ls in specs_l]
  return {
    "task_seeds": np.asarray(task_seeds, np.int64),
    "task_specs": np.array(specs),
    "task_seed": np.array(rows["task_seed"], np.int64),
    "pair_index": np.array(rows["pair_index"], np.int64),
    "kind": np.array(rows["kind"]),
    "recipe": np.array(rows["recipe"]),
    "x_sum": np.array(rows["x_sum"], np.float64),
    "base_flat": np.concatenate(bases).astype(np.int32),
    "base_off": _offsets(bases),
    "supp_idx_flat": np.concatenate(sidx).astype(np.int32),
    "supp_y_flat": np.concatenate(sy).astype(np.int32),
    "supp_off": _offsets(sy),
    # S's synthetic inputs (rows with pool index -1), flattened per pair: readers get
    # S without redrawing it (pool points are rows of the rebuilt task).
    "synth_x_flat": np.concatenate(synth),
    "synth_off": _offsets(synth),
    "learner": np.array([n for n, _ in specs_l]),
    "learner_spec": np.array(learners),
    "metric_names": np.array(METRICS),
    "metric_base": np.concatenate(mb),  # [P, L, K, 2]
    "metric_full": np.concatenate(mf),
  }
