"""Small label sets made directly with ``train_many``, for tests and demos.

The label pipeline (``metaval.labeling``) is the real source of labels; this module
builds a few dozen (B, S) pairs of several supplement kinds on a small task in
seconds, so the predictor's tests do not depend on a generated dataset. Labels
are real retraining improvements (paired seeds: B and B ∪ S share each init key).
"""

from __future__ import annotations

import dataclasses
import json

import jax
import numpy as np

from metaval.data import get_task
from metaval.labeling.schema import LabelSet
from metaval.learners.models import LearnerSpec, num_params
from metaval.learners.train import metric_names, train_many

TOY_KINDS = ("clean", "label_noise", "duplicate", "constant", "random_bits")


def _supplement(kind, task, base, rng):
  """``(x [n, d], y [n], pool_idx [n] or -1)`` of one supplement of ``kind``."""
  n_pool = task.pool_size
  outside = np.setdiff1d(np.arange(n_pool), base)
  size = int(rng.integers(4, max(5, min(len(outside), 3 * len(base) // 2))))
  d = task.feature_dim
  if kind in ("clean", "label_noise"):
    idx = rng.choice(outside, min(size, len(outside)), replace=False)
    x, y = task.x[idx], task.y[idx].copy()
    if kind == "label_noise":
      rate = rng.uniform(0.3, 1.0)
      flip = rng.random(len(y)) < rate
      y[flip] = (y[flip] + rng.integers(1, task.num_classes, flip.sum())) % task.num_classes
      idx = np.where(flip, -1, idx)
    return x, y, idx
  if kind == "duplicate":
    idx = rng.choice(base, size, replace=True)
    return task.x[idx], task.y[idx], idx
  if kind == "constant":
    x = np.repeat(rng.normal(size=(1, d)), size, 0)
  elif kind == "random_bits":
    x = rng.choice([-1.0, 1.0], size=(size, d)) * 2.0
  else:
    raise ValueError(f"unknown toy kind {kind!r}; available: {', '.join(TOY_KINDS)}")
  y = rng.integers(0, task.num_classes, size)
  return x.astype(np.float32), y.astype(np.int32), np.full(size, -1)


def toy_labels(
  task_name: str = "wine",
  num_pairs: int = 40,
  num_seeds: int = 2,
  kinds=TOY_KINDS,
  spec: LearnerSpec | None = None,
  learner_name: str = "toy_mlp",
  base_size: tuple[int, int] = (20, 60),
  seed: int = 0,
) -> LabelSet:
  """A ``LabelSet`` of ``num_pairs`` real retraining labels on a small task.

  Args:
    task_name: a classification task (``wine``, ``breast_cancer``, ``digits``, ...).
    num_pairs: pairs; kinds cycle through ``kinds``.
    num_seeds: paired seeds per pair.
    kinds: supplement kinds (``TOY_KINDS``).
    spec: learner (default: a small MLP).
    learner_name: the learner's name in the label JSON (as the pipeline writes it).
    base_size: range of |B|.
    seed: controls every random choice.

  Returns:
    The label set.
  """
  task = get_task(task_name)
  spec = spec or LearnerSpec("mlp", width=16, steps=100, lr=0.02, l2=1e-3)
  rng = np.random.default_rng(seed)
  n_pool = task.pool_size
  bases, supps, kinds_out = [], [], []
  extra_x, extra_y, offset = [], [], n_pool
  for p in range(num_pairs):
    kind = kinds[p % len(kinds)]
    base = np.sort(rng.choice(n_pool, int(rng.integers(*base_size)), replace=False))
    x, y, idx = _supplement(kind, task, base, rng)
    # Every S point trains as an appended row (its label may differ from the pool's).
    rows = np.arange(offset, offset + len(y))
    offset += len(y)
    extra_x.append(x.astype(np.float32))
    extra_y.append(y.astype(np.int32))
    bases.append(base)
    supps.append((x, y, idx, rows))
    kinds_out.append(kind)
  ext = dataclasses.replace(
    task,
    x=np.concatenate([task.x] + extra_x),
    y=np.concatenate([task.y] + extra_y),
    groups=np.concatenate([task.groups] + extra_y),
    files=np.arange(offset, dtype=np.int32),
  )
  masks = np.zeros((num_pairs, num_seeds, 2, offset), np.float32)
  for p, (base, (_, _, _, rows)) in enumerate(zip(bases, supps)):
    masks[p, :, :, base] = 1.0
    masks[p, :, 1, rows] = 1.0
  root = jax.random.key(seed)
  keys = jax.vmap(lambda p: jax.random.split(jax.random.fold_in(root, p), num_seeds))(
    np.arange(num_pairs)
  )  # [P, K]
  # Paired seeds on purpose: the B run and the B ∪ S run share each key.
  keys = jax.numpy.repeat(keys[:, :, None], 2, axis=2).reshape(-1)
  res = train_many(keys, ext, masks.reshape(-1, offset), spec)
  names = metric_names(task)
  met = np.stack([res.metrics[n] for n in names], -1).reshape(num_pairs, num_seeds, 2, -1)
  # The label pipeline's learner JSON: the spec plus its name and parameter count.
  n_params = num_params(spec, task.feature_dim, task.num_classes)
  spec_json = json.dumps(
    {"name": learner_name, **spec.to_dict(), "params": n_params}, sort_keys=True
  )
  return LabelSet(
    task=task.name,
    task_seed=task.seed,
    metric_names=names,
    base_indices=[b.astype(np.int32) for b in bases],
    supp_indices=[s[2].astype(np.int32) for s in supps],
    supp_x=[s[0].astype(np.float32) for s in supps],
    supp_y=[s[1].astype(np.int32) for s in supps],
    kind=np.array(kinds_out),
    recipe=np.array([json.dumps({"kind": k}) for k in kinds_out]),
    learner=np.array([spec_json] * num_pairs),
    learner_params=np.full(num_pairs, n_params),
    metric_base=met[:, :, 0],
    metric_full=met[:, :, 1],
    pair_id=np.arange(num_pairs, dtype=np.int64) + seed * 1_000_000,
    shard=np.zeros(num_pairs, np.int32),
  )
