"""``metaval baselines``: per-point valuation baselines (LOO, Shapley, Banzhaf, KNN, OOB).

A thin job: it hands the config to ``metaval.valuation.pointwise.run``, where the work lives.
"""

from __future__ import annotations

from metaval.valuation import pointwise


def run(config, workdir: str):
  """Runs ``metaval baselines``.

  Args:
    config: a ``baselines`` config (default ``baselines:quick``).
    workdir: where outputs go.

  Returns:
    The baselines' scores.
  """
  return pointwise.run(config, workdir)
