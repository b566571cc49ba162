"""``metaval report``: write a Nutrition Facts label (JSON, HTML, PNG).

A thin job: it hands the config to ``metaval.report.nutrition.run``, where the work lives.
"""

from __future__ import annotations

from metaval.report import nutrition


def run(config, workdir: str):
  """Runs ``metaval report``.

  Args:
    config: a ``value`` config (default ``value:quick``).
    workdir: where outputs go.

  Returns:
    The Nutrition Facts.
  """
  return nutrition.run(config, workdir)
