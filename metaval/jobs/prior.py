"""``metaval prior``: labels from a prior of generated tasks.

A thin job: it hands the config to ``metaval.prior.job.run``, where the work lives.
"""

from __future__ import annotations

from metaval.prior import job


def run(config, workdir: str):
  """Runs ``metaval prior``.

  Args:
    config: a ``prior`` config (default ``prior:quick``).
    workdir: where the shards go.

  Returns:
    The ``PriorLabels``.
  """
  return job.run(config, workdir)
