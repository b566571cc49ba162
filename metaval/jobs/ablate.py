"""``metaval ablate``: small-model ablations across a size ladder.

A thin job: it hands the config to ``metaval.valuation.ablation.run``, where the work lives.
"""

from __future__ import annotations

from metaval.valuation import ablation


def run(config, workdir: str):
  """Runs ``metaval ablate``.

  Args:
    config: a ``ablation`` config (default ``ablation:quick``).
    workdir: where outputs go.

  Returns:
    The ablation summary per family.
  """
  return ablation.run(config, workdir)
