"""``metaval attribute``: split a gain among contributors and write a royalty ledger.

A thin job: it hands the config to ``metaval.valuation.attribution.run``, where the work lives.
"""

from __future__ import annotations

from metaval.valuation import attribution


def run(config, workdir: str):
  """Runs ``metaval attribute``.

  Args:
    config: a ``attribution`` config (default ``attribution:quick``).
    workdir: where outputs go.

  Returns:
    The attributions.
  """
  return attribution.run(config, workdir)
