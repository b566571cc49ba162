"""One shard of the label pipeline: a pure function of ``(config, task, shard)``.

A shard's pairs come from a numpy generator seeded with ``(seed, task id, shard)``
and its training keys from ``metaval.pairs.shard_key(seed, task id, shard,
learner index)``; labels are ``metaval.pairs.label`` on those pairs, so the shard
is the same bit for bit wherever it runs (see ``pipeline`` for the driver).
"""

from __future__ import annotations

import json
import math
import zlib

import jax
import ml_collections
import numpy as np

from metaval import pairs as pairs_lib
from metaval.data import LANGUAGE_MODEL, Task, task_from_config
from metaval.data import samplers as samplers_lib
from metaval.errors import MetavalError
from metaval.learners.models import LearnerSpec, num_params
from metaval.learners.train import gather_size, metric_names


class PipelineError(MetavalError):
  """The label pipeline's config or workdir is not valid."""


# ----------------------------------------------------------------------------
# Training pairs.


def _set_rows(cfg) -> int:
  """Rows of B ∪ S for every shard of a config: the bucket of max|B| + max|S| (B ∪ S
  usually has at most that many points)."""
  return gather_size(int(max(cfg.base_size)) + int(max(cfg.supp_size)))


def _fixed_gather(cfg, task: Task) -> int | None:
  """One gather size for every shard of a config (``_set_rows``; larger sets fall
  back to the dense pool). Gathering pays only when that is small next to the pool."""
  k = _set_rows(cfg)
  return k if 3 * k <= task.pool_size else None


def label_pairs(
  task: Task,
  bases: list[np.ndarray],
  supplements: list[samplers_lib.Supplement],
  spec: LearnerSpec,
  *,
  base_of=None,
  num_seeds: int = 4,
  key: jax.Array | None = None,
  chunk: int = 64,
  extra_capacity: int = 1024,
  gather: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
  """``metaval.pairs.label`` on sampled supplements; returns both sides' metrics.

  Args:
    task: the base task.
    bases: base sets (pool index arrays).
    supplements: P supplements.
    spec: the learner.
    base_of: ``[P]`` which base each supplement goes with (default: the i-th).
    num_seeds: see ``metaval.pairs.label``.
    key: see ``metaval.pairs.label``.
    chunk: see ``metaval.pairs.label``.
    extra_capacity: see ``metaval.pairs.label``.
    gather: see ``metaval.pairs.label``.

  Returns:
    ``(metric_base, metric_full)``, each ``[P, K, T]`` in ``metric_names(task)``
    order; pairs sharing a base share their ``metric_base`` rows.
  """
  try:
    pairs = pairs_lib.Pairs.from_supplements(bases, supplements, base_of)
  except pairs_lib.PairsError:
    raise MetavalError("base_of must map every supplement to one of the bases") from None
  out = pairs_lib.label(
    task,
    pairs,
    spec,
    num_seeds=num_seeds,
    key=key,
    chunk=chunk,
    extra_capacity=extra_capacity,
    gather=gather,
  )
  return out.metric_base, out.metric_full


# ----------------------------------------------------------------------------
# Shards.


def task_names(config) -> list[str]:
  names = [t.strip() for t in str(config.task.name).split(",") if t.strip()]
  if not names:
    raise PipelineError("config.task.name is empty")
  return names


def task_id(name: str) -> int:
  """A stable small integer per task name (folded into the shard seeds)."""
  return zlib.crc32(name.encode()) & 0x7FFFFFFF


def learner_specs(config) -> list[tuple[str, LearnerSpec]]:
  if not len(config.learners):
    raise PipelineError("config.learners is empty: name at least one learner")
  return [(name, LearnerSpec.from_config(cfg)) for name, cfg in config.learners.items()]


def _as_dict(config) -> dict:
  return config.to_dict() if isinstance(config, ml_collections.ConfigDict) else dict(config)


def sample_shard_pairs(config, task: Task, shard: int):
  """The shard's pairs: ``(bases, supplements, base_of)`` (deterministic)."""
  cfg = ml_collections.ConfigDict(_as_dict(config))
  rng = np.random.default_rng([int(cfg.seed), task_id(task.name), int(shard)])
  kinds = [k for k in cfg.kinds if task.kind in samplers_lib.SUPPLEMENT_KINDS[k].task_kinds]
  if not kinds:
    raise PipelineError(f"none of config.kinds applies to {task.kind} task {task.name!r}")
  weights = dict(cfg.kind_weights) if cfg.kind_weights else {}
  p = np.array([float(weights.get(k, 1.0)) for k in kinds])
  p = p / p.sum()
  r = int(cfg.supps_per_base)
  n_pairs = int(cfg.pairs_per_shard)
  bases, supps, base_of = [], [], []
  lo_b, hi_b = cfg.base_size
  lo_s, hi_s = cfg.supp_size
  while len(supps) < n_pairs:
    exclude = ()
    if task.kind == LANGUAGE_MODEL:
      # Hold half the groups out of B so "groups" supplements bring unseen packages.
      g = len(task.group_names)
      exclude = sorted(int(i) for i in rng.choice(g, g // 2, replace=False))
    # At most half the pool in B, so every kind can still draw points outside it.
    n_b = min(int(rng.integers(lo_b, hi_b + 1)), max(1, task.pool_size // 2))
    base = samplers_lib.sample_base(task, rng, n_b, exclude)
    bases.append(base)
    for _ in range(min(r, n_pairs - len(supps))):
      supps.append(_draw_supplement(task, base, rng, kinds, p, lo_s, hi_s))
      base_of.append(len(bases) - 1)
  return bases, supps, np.array(base_of)


def _draw_supplement(task, base, rng, kinds, p, lo_s, hi_s, tries: int = 20):
  """A supplement of a random kind; redraws (deterministically) if a kind cannot
  be filled for this base, e.g. a single class with no points left outside B."""
  for _ in range(tries):
    kind = str(rng.choice(kinds, p=p))
    size = int(round(math.exp(rng.uniform(math.log(lo_s), math.log(hi_s)))))
    params = {} if kind == "groups" else {"size": size}
    try:
      return samplers_lib.sample_supplement(kind, task, base, rng, **params)
    except samplers_lib.SamplerError:
      continue
  raise PipelineError(f"could not draw a supplement for task {task.name!r} in {tries} tries")


def shard_pair_key(config, task_name: str, shard: int, learner_index: int) -> np.ndarray:
  """The root key (raw key data) of one (task, shard, learner) label call
  (``metaval.pairs.keys``)."""
  return pairs_lib.shard_key(int(config.seed), task_id(task_name), shard, learner_index)


def label_options(config, task: Task) -> dict:
  """The ``metaval.pairs.label`` options a label config fixes for a task."""
  return dict(
    num_seeds=int(config.num_seeds),
    chunk=int(config.chunk),
    extra_capacity=int(config.extra_capacity),
    gather=_fixed_gather(config, task),
    # Rows a group of full-batch models shares, fixed per config (one program).
    shared_rows=_set_rows(config),
  )


def run_shard(config, task_name: str, shard: int) -> dict[str, np.ndarray]:
  """Generates one shard's labels for every learner (pure: same inputs, same output).

  Args:
    config: the label config (``ConfigDict`` or its ``to_dict()``).
    task_name: base task.
    shard: shard index.

  Returns:
    The shard record (numpy arrays) that ``storage.write_shard`` stores.
  """
  cfg = ml_collections.ConfigDict(_as_dict(config))
  task = task_from_config(cfg.task, name=task_name)
  bases, supps, base_of = sample_shard_pairs(cfg, task, shard)
  pairs = pairs_lib.Pairs.from_supplements(bases, supps, base_of)
  lm = task.kind == LANGUAGE_MODEL
  in_dim = 0 if lm else task.feature_dim
  mb, mf, learners, n_params = [], [], [], []
  for li, (name, spec) in enumerate(learner_specs(cfg)):
    out = pairs_lib.label(
      task, pairs, spec, key=shard_pair_key(cfg, task_name, shard, li), **label_options(cfg, task)
    )
    mb.append(out.metric_base)
    mf.append(out.metric_full)
    n_params.append(num_params(spec, in_dim, task.num_classes))
    learners.append(json.dumps({"name": name, **spec.to_dict(), "params": n_params[-1]}))
  synth = [s.x[s.pool_indices < 0] for s in supps]
  width = task.x.shape[1]
  off = lambda arrs: np.cumsum([0] + [len(a) for a in arrs]).astype(np.int64)  # noqa: E731
  return {
    "task": np.array(task.name),
    "task_seed": np.array(task.seed, np.int64),
    # What rebuilds a csv:/npz:/tfds: task from the dataset alone (``LabelSet.task_options``).
    "task_options": np.array(json.dumps(dict(task.options), sort_keys=True)),
    "task_kind": np.array(task.kind),
    "shard": np.array(shard, np.int64),
    "metric_names": np.array(metric_names(task)),
    "pair_id": shard * int(cfg.pairs_per_shard) + np.arange(len(supps), dtype=np.int64),
    "base_flat": np.concatenate([bases[i] for i in base_of]).astype(np.int32),
    "base_off": off([bases[i] for i in base_of]),
    "supp_idx_flat": np.concatenate([s.pool_indices for s in supps]).astype(np.int32),
    "supp_y_flat": np.concatenate([s.y for s in supps]).astype(np.int32),
    "supp_off": off([s.y for s in supps]),
    "synth_x_flat": np.concatenate(synth).reshape(-1, width).astype(task.x.dtype),
    "synth_off": off(synth),
    "kind": np.array([s.kind for s in supps]),
    "recipe": np.array([json.dumps(s.recipe, sort_keys=True) for s in supps]),
    "learner": np.array(learners),
    "learner_params": np.array(n_params, np.int64),
    "metric_base": np.stack(mb, axis=1),  # [P, L, K, T]
    "metric_full": np.stack(mf, axis=1),  # [P, L, K, T]
  }
