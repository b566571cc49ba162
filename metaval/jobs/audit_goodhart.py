"""``metaval audit goodhart``: gaming attacks valued by every estimator.

A thin job: it hands the config to ``metaval.audit.goodhart.run``, where the work lives.
"""

from __future__ import annotations

from metaval.audit import goodhart


def run(config, workdir: str):
  """Runs ``metaval audit goodhart``.

  Args:
    config: a ``goodhart`` config (default ``goodhart:quick``).
    workdir: where outputs go.

  Returns:
    The suite's result.
  """
  return goodhart.run(config, workdir)
