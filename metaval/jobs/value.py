"""``metaval value``: value a supplemental set with a trained predictor.

A thin job: it hands the config to ``metaval.api.run_value``, where the work lives.
"""

from __future__ import annotations

from metaval import api


def run(config, workdir: str):
  """Runs ``metaval value``.

  Args:
    config: a ``value`` config (default ``value:quick``).
    workdir: where outputs go.

  Returns:
    The Nutrition Facts of the supplement.
  """
  return api.run_value(config, workdir)
