"""metaval: predict the value of supplemental data without retraining.

``metaval.load_predictor().value(supplemental, base=(x_B, y_B), eval=(x_T, y_T))``
returns the Nutrition Facts of a supplemental set from raw arrays of any tabular
task (the zero-shot model shipped with the package); ``load_predictor(path)`` loads
a trained model instead; the rest of the package is
organised as in DESIGN.md (data, learners, labeling, predictor, valuation, audit,
report). Heavy modules are imported on first use, so ``import metaval`` is cheap.
"""

__version__ = "0.1.0"

from metaval.errors import MetavalError  # noqa: E402


def load_predictor(path: str | None = None):
  """Loads the shipped zero-shot model, or the one at ``path``; see ``metaval.api.load_predictor``."""
  from metaval.api import load_predictor as _load

  return _load(path)


__all__ = ["MetavalError", "__version__", "load_predictor"]
