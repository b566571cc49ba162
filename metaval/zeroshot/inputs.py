"""A zero-shot query's raw arrays: validated, and keyed for exact-copy checks.

``as_arrays`` turns ``(x, y)``, ``{"x", "y"}`` or a scikit-learn ``Bunch`` into float64
inputs ``[n, d]`` and labels ``[n]``, refusing in one line what the model cannot value
(sparse, complex, non-numeric or infinite inputs, one-hot or non-class labels, empty or
mismatched sets); NaN inputs are missing values that the predictor fills with B's
column medians (``column_fill``, ``fill_missing``). ``tabular`` reads pandas DataFrames
first (text columns encoded by a table fitted on B's frame). The byte keys let
``Context`` find points of S that copy B or the evaluation set bit for bit.
"""

from __future__ import annotations

import warnings

import numpy as np

from metaval.data.table import Table, frame_rows, is_frame
from metaval.data.validate import TaskError
from metaval.predictor.features.inputs import FeatureError
from metaval.util.rowkeys import input_keys, row_keys

__all__ = [
  "FeatureError",
  "as_arrays",
  "column_fill",
  "fill_missing",
  "input_keys",
  "label_kind",
  "row_keys",
  "split_pair",
  "tabular",
]


def as_arrays(data, what: str, missing: bool = False) -> tuple[np.ndarray, np.ndarray]:
  """``(x, y)``, ``{"x", "y"}`` or ``{"data", "target"}`` -> float64 ``[n, d]`` and label ``[n]`` arrays.

  ``missing``: NaN inputs are let through (to be filled: ``fill_missing``); infinite
  ones are refused all the same.
  """
  x, y = split_pair(data, what)
  if hasattr(x, "toarray"):  # scipy.sparse
    raise FeatureError(f"{what} inputs are a sparse matrix; pass a dense array (x.toarray())")
  if np.iscomplexobj(x):
    raise FeatureError(f"{what} inputs are complex numbers; give real features")
  try:
    x = np.asarray(x, np.float64)
  except (TypeError, ValueError):
    raise FeatureError(
      f"{what} inputs are not numeric: encode text columns as numbers (one 0/1 column per "
      "level), or read a csv with metaval.data.read_csv, which does"
    ) from None
  if x.ndim == 1:
    x = x[:, None]
  if x.ndim != 2:
    raise FeatureError(f"{what} inputs must be 2-D [n, features]; got shape {x.shape}")
  y = np.asarray(y)
  if y.ndim > 1 and y.size != len(y):
    raise FeatureError(
      f"{what} labels must be one class per point; got shape {y.shape} "
      "(for one-hot labels pass y.argmax(1))"
    )
  y = y.reshape(-1)
  if y.dtype.kind == "O" and any(v is None or (isinstance(v, float) and v != v) for v in y):
    raise FeatureError(f"{what} labels contain missing values (None or NaN): label every point")
  if y.dtype.kind == "O":
    y = _object_labels(y, what)
  if y.dtype.kind == "f" and np.isnan(y).any():
    raise FeatureError(f"{what} labels contain missing values (NaN): label every point")
  if y.dtype.kind == "f" and not np.all(y == np.round(y)):
    bad = y[y != np.round(y)][0]
    raise FeatureError(
      f"{what} labels are not classes (e.g. {float(bad)!r}): the zero-shot model values "
      "classification data; give labels as integers or strings"
    )
  if len(x) == 0:
    raise FeatureError(f"{what} is empty")
  if len(y) != len(x):
    raise FeatureError(f"{what} has {len(x)} inputs but {len(y)} labels")
  if not np.all(np.isfinite(x)):
    if np.isinf(x).any():
      raise FeatureError(f"{what} inputs contain infinite values")
    if not missing:
      raise FeatureError(f"{what} inputs contain NaN values")
  return x, y


def _object_labels(y: np.ndarray, what: str) -> np.ndarray:
  """Labels held as Python objects (a pandas column of dtype object) as strings or as
  numbers, when all are one kind; a mix of the two would sort and compare by accident."""
  text = np.array([isinstance(v, (str, np.str_)) for v in y], bool)
  if text.all():
    return y.astype(str)
  number = np.array([isinstance(v, (bool, int, float, np.number)) for v in y], bool)
  if number.all():
    return np.array(y.tolist())
  if (text | number).all():
    raise FeatureError(
      f"{what} labels mix text and numbers (e.g. {y[text][0]!r} and {y[number][0]!r}): "
      "give every label as text or every label as a number"
    )
  odd = y[~(text | number)][0]
  raise FeatureError(f"{what} labels must be numbers or text; got a {type(odd).__name__}")


def split_pair(data, what: str):
  """``(x, y)``, ``{"x", "y"}`` or a scikit-learn ``Bunch`` ``{"data", "target"}`` -> ``x, y``
  as given (not yet arrays)."""
  if isinstance(data, dict):  # {"x", "y"}, or a scikit-learn Bunch {"data", "target"}
    keys = ("x", "y") if "x" in data or "y" in data else ("data", "target")
    if keys[0] not in data or keys[1] not in data:
      raise FeatureError(f"{what} as a dict needs 'x' and 'y' (or 'data' and 'target') entries")
    return data[keys[0]], data[keys[1]]
  if isinstance(data, (tuple, list)) and len(data) == 2:
    return data[0], data[1]
  raise FeatureError(f"{what} must be a pair (x, y) of arrays")


def tabular(data, what: str, table: Table | None, fit: bool = False):
  """``data`` whose inputs may be a pandas DataFrame, as ``(data, notes, table)``.

  A frame of numbers alone is read as its numbers. With text columns, B's frame
  (``fit``) fits a ``Table`` (``metaval.data.table``: one 0/1 column per level,
  missing cells filled with a missing column) and every other set's frame is encoded
  by it, its columns taken by name; ``notes`` says what the encoding could not place
  (levels B lacks). Other data passes unchanged (``as_arrays`` validates it), except
  a plain array of the wrong width once B was such a frame."""
  x, y = split_pair(data, what)
  if not is_frame(x):
    if table is not None and np.ndim(x) == 2 and np.shape(x)[1] != len(table.names):
      raise FeatureError(
        f"{what} is an array of {np.shape(x)[1]} columns but B was a DataFrame with text "
        f"columns ({len(table.names)} once encoded): pass {what} as a DataFrame with B's columns"
      )
    return data, [], table
  if table is None:
    try:
      return (np.asarray(x, np.float64), y), [], None  # numbers alone
    except (TypeError, ValueError):
      if not fit:  # text, and no table of B's to read it by: as_arrays refuses it
        return data, [], None
  header, rows = frame_rows(x, what)
  try:
    parsed = {}
    if fit:
      table = Table.fit(what, header, rows, header, parsed)
    x, notes = table.encode(what, header, rows, parsed)
  except TaskError as e:
    raise FeatureError(str(e)) from None
  return (x, y), notes, table


def column_fill(x: np.ndarray) -> np.ndarray:
  """Each column's median over its present (non-NaN) values; 0 where none is present."""
  if not np.isnan(x).any():
    return np.median(x, axis=0)
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column: 0 below
    return np.nan_to_num(np.nanmedian(x, axis=0), nan=0.0)


def fill_missing(x: np.ndarray, fill: np.ndarray) -> tuple[np.ndarray, int]:
  """``x`` with its NaN cells set to ``fill`` (per column) and how many there were."""
  gaps = np.isnan(x)
  n = int(gaps.sum())
  if n == 0:
    return x, 0
  return np.where(gaps, fill[None, :], x), n


def label_kind(y: np.ndarray) -> str | None:
  """'numbers' or 'strings' (None for mixed object arrays): labels of one kind compare."""
  if y.dtype.kind in "biuf":
    return "numbers"
  return "strings" if y.dtype.kind in "US" else None
