"""Other strategies and baselines for valuing data, on the same learners.

The per-point baselines (games over pool points, from ``metaval.games``) are
imported here under their historical names; sibling modules (ablations,
untraining, attribution, royalties, the ``*_job`` CLI jobs) are imported by their
own names.
"""

from metaval.valuation import pointwise
from metaval.valuation.pointwise import *  # noqa: F403 (the names listed in pointwise.__all__)

__all__ = list(pointwise.__all__)
