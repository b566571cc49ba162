"""``metaval evaluate``: score the predictor on held-out splits against baselines.

A thin job: it hands the config to ``metaval.predictor.evaluate.run``, where the work lives.
"""

from __future__ import annotations

from metaval.predictor import evaluate


def run(config, workdir: str):
  """Runs ``metaval evaluate``.

  Args:
    config: a ``predictor`` config (default ``predictor:quick``).
    workdir: where outputs go.

  Returns:
    The scores per split.
  """
  return evaluate.run(config, workdir)
