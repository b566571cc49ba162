"""``metaval untrain``: value subsets by gradient-ascent untraining.

A thin job: it hands the config to ``metaval.valuation.untrain.run``, where the work lives.
"""

from __future__ import annotations

from metaval.valuation import untrain


def run(config, workdir: str):
  """Runs ``metaval untrain``.

  Args:
    config: a ``untrain`` config (default ``untrain:quick``).
    workdir: where outputs go.

  Returns:
    The untraining scores.
  """
  return untrain.run(config, workdir)
