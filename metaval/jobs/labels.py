"""``metaval labels``: label quality: repeatability and improvement per supplement kind.

A thin job: it hands the config to ``metaval.labeling.quality.run``, where the work lives.
"""

from __future__ import annotations

from metaval.labeling import quality


def run(config, workdir: str):
  """Runs ``metaval labels``.

  Args:
    config: a ``labels`` config (default ``labels:quick``).
    workdir: where outputs go.

  Returns:
    The quality summary.
  """
  return quality.run(config, workdir)
