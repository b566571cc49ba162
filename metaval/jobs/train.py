"""``metaval train``: train the set-encoder value predictor on generated labels.

A thin job: it hands the config to ``metaval.predictor.train.run``, where the work lives.
"""

from __future__ import annotations

from metaval.predictor import train


def run(config, workdir: str):
  """Runs ``metaval train``.

  Args:
    config: a ``predictor`` config (default ``predictor:quick``).
    workdir: where outputs go.

  Returns:
    The training summary.
  """
  return train.run(config, workdir)
