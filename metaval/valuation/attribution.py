"""Fair attribution of a gain among contributors: the import path ``metaval attribute`` uses.

The library is ``metaval.valuation.contributors`` (contributor games, ``attribute``,
the copy policy) on the game engine ``metaval.games``; the CLI job is
``metaval.valuation.attribution_job``. This module keeps the names other code
imports from here.
"""

from metaval.valuation.contributors import attribute, dedupe_contributors, predictor_game


def run(config, workdir: str | None = None) -> dict:
  """``metaval attribute``: see ``metaval.valuation.attribution_job.run``."""
  from metaval.valuation import attribution_job

  return attribution_job.run(config, workdir)


__all__ = ["attribute", "dedupe_contributors", "predictor_game", "run"]
