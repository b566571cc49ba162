"""``metaval fit``: train a batch of learners on random subsets of a task's pool."""

from __future__ import annotations

import os
import time

import jax
import numpy as np

from metaval.data import task_from_config
from metaval.errors import MetavalError
from metaval.learners.models import LearnerSpec, num_params
from metaval.learners.train import train_many
from metaval.util import io as uio


def run(config, workdir: str | None = None) -> dict:
  """Trains ``config.num_models`` learners, prints and returns metric summaries.

  Args:
    config: a ``fit`` config.
    workdir: where ``fit_metrics.json`` goes (nothing is written if empty).

  Returns:
    Task, learner, seconds and the mean/std of every metric.
  """
  task = task_from_config(config.task)
  spec = LearnerSpec.from_config(config.learner)
  n = task.pool_size
  size = int(config.subset_size)
  if not 0 < size <= n:
    raise MetavalError(f"subset_size must be in [1, {n}] for task {task.name!r}, got {size}")
  rng = np.random.default_rng(config.seed)
  masks = np.zeros((config.num_models, n), np.float32)
  for i in range(config.num_models):
    masks[i, rng.choice(n, size, replace=False)] = 1.0
  keys = jax.random.split(jax.random.key(config.seed), config.num_models)
  in_dim = 0 if spec.family == "lm" else task.feature_dim
  print(task.describe())
  print(
    f"learner {spec} ({num_params(spec, in_dim, task.num_classes):,} params), "
    f"{config.num_models} models x {size} points"
  )
  t0 = time.perf_counter()
  result = train_many(keys, task, masks, spec, chunk=config.get("chunk") or None)
  seconds = time.perf_counter() - t0
  summary = {
    name: {"mean": float(v.mean()), "std": float(v.std())} for name, v in result.metrics.items()
  }
  head = [k for k in summary if k.count("/") == 1]
  for k in head:
    print(f"  {k:32s} {summary[k]['mean']:+.4f} ± {summary[k]['std']:.4f}")
  print(
    f"trained {config.num_models} models in {seconds:.1f}s "
    f"({config.num_models / seconds:.1f} models/s, compile included)"
  )
  out = {"task": task.name, "learner": spec.to_dict(), "seconds": seconds, "metrics": summary}
  if workdir:
    path = uio.write_json(os.path.join(workdir, "fit_metrics.json"), out)
    print(f"wrote {path}")
  return out
