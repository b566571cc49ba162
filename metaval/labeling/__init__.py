"""Label pipeline: (base, supplement) pairs -> improvement labels."""

from metaval.labeling.schema import LabelError, LabelSet

__all__ = ["LabelError", "LabelSet"]
