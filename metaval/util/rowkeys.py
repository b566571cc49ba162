"""Byte keys of array rows, for finding exact copies by hashing.

A row's key is the bytes of its float64 values (and class id), so two points share a
key exactly when every value is equal bit for bit after the cast to float64.
"""

from __future__ import annotations

import numpy as np


def input_keys(x: np.ndarray) -> np.ndarray:
  """One byte row per point: its float64 inputs."""
  x = np.ascontiguousarray(x, np.float64)
  return x.view(np.uint8).reshape(len(x), -1)


def row_keys(x: np.ndarray, y_ids: np.ndarray) -> np.ndarray:
  """One byte row per point: its float64 inputs and its class id."""
  return input_keys(np.c_[np.asarray(x, np.float64), y_ids.astype(np.float64)])
