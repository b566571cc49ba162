"""metaval: predict the value of supplemental data without retraining."""

__version__ = "0.1.0"

from metaval.errors import MetavalError  # noqa: E402

__all__ = ["MetavalError", "__version__"]
