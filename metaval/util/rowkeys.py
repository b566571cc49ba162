"""Byte keys of array rows, for finding exact copies by hashing.

A row's key is the bytes of its values cast to one dtype (float64 unless named; the
predictor's embedded inputs use float32), with ``-0.0`` stored as ``0.0``, and for
labelled rows the class id's: two points share a key exactly when every value is
equal after the cast (and the labels are equal). Exact copies
are found by comparing keys, never through a distance: ``|a|^2 + |b|^2 - 2ab``
loses exact zeros to round-off for large-magnitude rows.
"""

from __future__ import annotations

import numpy as np


def input_keys(x: np.ndarray, dtype=np.float64) -> np.ndarray:
  """``[n, bytes]`` uint8: one key per point, its inputs as ``dtype``."""
  x = np.asarray(x)
  x = np.ascontiguousarray(x.reshape(len(x), -1), dtype) + dtype(0.0)  # -0.0 -> 0.0
  return x.view(np.uint8).reshape(len(x), -1)


def row_keys(x: np.ndarray, y_ids: np.ndarray, dtype=np.float64) -> np.ndarray:
  """``[n, bytes]`` uint8: one key per point, its inputs as ``dtype`` and its integer
  class id (as int64)."""
  y = np.ascontiguousarray(np.asarray(y_ids).reshape(-1), np.int64)
  return np.concatenate([input_keys(x, dtype), y.view(np.uint8).reshape(len(y), -1)], 1)


def key_list(keys: np.ndarray) -> list[bytes]:
  """The rows of ``input_keys`` / ``row_keys`` as ``bytes``, for sets and dicts."""
  return list(map(bytes, keys))
