"""``metaval evaluate``: score the predictor on held-out splits against baselines.

A thin job: it applies ``config.task`` to the label configs as ``metaval train`` does
(``metaval.jobs.train.with_task``) and hands the config to
``metaval.predictor.evaluate.run``, where the work lives.
"""

from __future__ import annotations

from metaval.jobs.train import with_task
from metaval.predictor import evaluate


def run(config, workdir: str):
  """Runs ``metaval evaluate``.

  Args:
    config: a ``predictor`` config (default ``predictor:quick``).
    workdir: where outputs go.

  Returns:
    The scores per split.
  """
  return evaluate.run(with_task(config), workdir)
