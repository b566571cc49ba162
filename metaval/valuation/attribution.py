"""Fair attribution of a gain among contributors: the import path ``metaval attribute`` uses.

The library is ``metaval.valuation.contributors`` (contributor games, ``attribute``,
the copy policy) on the game engine ``metaval.games``; the CLI job is
``metaval.jobs.attribute``. This module keeps the names other code
imports from here.
"""

from metaval.valuation.contributors import attribute, dedupe_contributors, predictor_game

__all__ = ["attribute", "dedupe_contributors", "predictor_game"]
