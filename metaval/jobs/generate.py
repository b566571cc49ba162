"""``metaval generate``: generate (base, supplement) improvement labels as a TFDS dataset.

A thin job: it hands the config to ``metaval.labeling.pipeline.run``, where the work lives.
"""

from __future__ import annotations

from metaval.labeling import pipeline


def run(config, workdir: str):
  """Runs ``metaval generate``.

  Args:
    config: a ``labels`` config (default ``labels:quick``).
    workdir: where outputs go.

  Returns:
    The label set (or one per learner).
  """
  return pipeline.run(config, workdir)
