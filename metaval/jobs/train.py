"""``metaval train``: train the set-encoder value predictor on generated labels.

A thin job: it points the label configs at ``config.task`` when that names a task
(``--config.task.name=csv:my.csv``) and hands the config to
``metaval.predictor.train.run``, where the work lives.
"""

from __future__ import annotations

import ml_collections

from metaval.data import task_spec
from metaval.errors import MetavalError
from metaval.predictor import train


def with_task(config) -> ml_collections.ConfigDict:
  """The predictor config with ``config.task`` applied to every label config.

  An empty ``task.name`` leaves the config as it is (each label config keeps its own
  task). Otherwise the task's name, seed and every option that is set become
  ``--config.task.<field>=<value>`` overrides of the label configs, so their labels
  are generated (or found) for that task.

  Args:
    config: a ``predictor`` config.

  Returns:
    The config to train with (a copy when it changes).

  Raises:
    MetavalError: a task set for toy labels, which name their tasks themselves.
  """
  if "task" not in config or not config.task.name:
    return config
  name, seed, options = task_spec(config.task)
  if config.labels.source != "pipeline":
    raise MetavalError(
      f"task.name applies to pipeline labels; labels.source is {config.labels.source!r} "
      "(set labels.toy_tasks instead)"
    )
  fields = {"name": name, "seed": seed, **options}
  task_overrides = tuple(f"--config.task.{k}={v}" for k, v in fields.items())
  out = ml_collections.ConfigDict(config.to_dict())
  out.labels.overrides = tuple(config.labels.overrides) + task_overrides
  out.lock()
  return out


def run(config, workdir: str):
  """Runs ``metaval train``.

  Args:
    config: a ``predictor`` config (default ``predictor:quick``).
    workdir: where outputs go.

  Returns:
    The training summary.
  """
  return train.run(with_task(config), workdir)
