"""Validation of user-supplied inputs and labels, each problem one ``TaskError`` line.

Every loader (built-ins, ``tfds:``, ``csv:``, ``npz:``, ``from_arrays``) and
``Task.encode`` pass their arrays through here, so a NaN, a string column or a
mismatched length gets the same one-line message everywhere instead of a traceback
from inside numpy.

Label policy: integer labels, booleans and floats with integral values are classes;
strings are classes too (sorted, the mapping kept on the task as ``Task.classes``).
Non-integral floats (regression targets) are refused.
"""

from __future__ import annotations

import math

import numpy as np

from metaval.errors import MetavalError, message_line

# Integral float labels beyond this are not exactly representable; refuse them.
_MAX_INTEGRAL_FLOAT = 2.0**53


class TaskError(MetavalError):
  """A task name, task argument or task input is not valid."""


def _array(v, what: str) -> np.ndarray:
  try:
    return np.asarray(v)
  except (ValueError, TypeError) as e:  # ragged nested lists and the like
    raise TaskError(
      f"{what} is not a rectangular array: {message_line(e, with_type=True)}"
    ) from None


def as_features(x, what: str = "x", min_ndim: int = 2) -> np.ndarray:
  """Checks inputs and returns them as float64.

  Args:
    x: array-like ``[N, ...]`` of numbers.
    what: the name used in error messages.
    min_ndim: the fewest axes accepted (2 for a pool: rows × features).

  Returns:
    ``x`` as a float64 array.

  Raises:
    TaskError: empty, too few axes, non-numeric or non-finite inputs.
  """
  a = _array(x, what)
  if a.dtype.kind not in "biuf":
    if a.dtype.kind == "O":
      try:
        a = a.astype(np.float64)
      except (ValueError, TypeError):
        raise TaskError(f"{what} must be numeric; it holds non-numeric objects") from None
    else:
      raise TaskError(f"{what} must be numeric, got dtype {a.dtype}")
  if a.ndim < min_ndim:
    hint = "; reshape to (N, 1) for one feature" if a.ndim == 1 else ""
    raise TaskError(f"{what} must have at least {min_ndim} axes, got shape {a.shape}{hint}")
  if a.size == 0:
    raise TaskError(f"{what} is empty (shape {a.shape})")
  a = np.asarray(a, np.float64)
  bad = ~np.isfinite(a)
  if bad.any():
    pos = tuple(int(i) for i in np.argwhere(bad)[0])
    kind = "NaN" if np.isnan(a[pos]) else "inf"
    raise TaskError(f"{what} has {int(bad.sum())} non-finite value(s), first {kind} at {pos}")
  return a


def input_shape_error(what: str, got: tuple, want: tuple) -> TaskError:
  """The one-line error for inputs that do not fit the task's raw input shape."""
  dims = ", ".join(str(d) for d in want)
  return TaskError(f"{what} has shape {got}; the task's raw inputs are [n, {dims}]")


def as_labels(y, what: str = "y") -> np.ndarray:
  """Checks class labels and returns them 1-D as int64 or as strings.

  Raises:
    TaskError: empty, multi-column, non-finite or non-integral labels.
  """
  a = _array(y, what)
  if a.ndim == 2 and a.shape[1] == 1:
    a = a[:, 0]
  if a.ndim != 1:
    raise TaskError(f"{what} must be one label per row, got shape {a.shape}")
  if a.size == 0:
    raise TaskError(f"{what} is empty")
  if a.dtype.kind == "O":
    if all(isinstance(v, str) for v in a):
      a = a.astype(str)
    else:
      a = _array(a.tolist(), what)
      if a.dtype.kind not in "biuf":
        raise TaskError(f"{what} holds values that are neither numbers nor strings")
  if a.dtype.kind in "US":
    return a.astype(str)
  if a.dtype.kind in "bi" or a.dtype.kind == "u":
    return a.astype(np.int64)
  if a.dtype.kind != "f":
    raise TaskError(f"{what} must hold integer or string class labels, got dtype {a.dtype}")
  if not np.isfinite(a).all():
    raise TaskError(f"{what} has non-finite labels (NaN or inf)")
  if np.abs(a).max() > _MAX_INTEGRAL_FLOAT:
    raise TaskError(f"{what} has labels too large to be class ids (max |y| {np.abs(a).max():g})")
  frac = a != np.round(a)
  if frac.any():
    raise TaskError(
      f"{what} must hold class labels; got non-integral value {a[frac][0]:g} "
      "(regression targets are not supported)"
    )
  return a.astype(np.int64)


def class_ids(y: np.ndarray, classes: np.ndarray, what: str = "y") -> np.ndarray:
  """Maps checked labels to ids ``0..K-1`` by their position in sorted ``classes``.

  Raises:
    TaskError: a label is not one of ``classes`` (or has the wrong type).
  """
  if (y.dtype.kind == "U") != (classes.dtype.kind == "U"):
    kinds = {True: "strings", False: "integers"}
    raise TaskError(
      f"{what} labels are {kinds[y.dtype.kind == 'U']} but the task's classes are "
      f"{kinds[classes.dtype.kind == 'U']}"
    )
  ids = np.searchsorted(classes, y)
  unknown = (ids >= len(classes)) | (classes[np.minimum(ids, len(classes) - 1)] != y)
  if unknown.any():
    bad = sorted({str(v) for v in y[unknown]})
    raise TaskError(
      f"{what} has label(s) not among the pool's classes: {', '.join(bad[:5])}"
      + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
    )
  return ids.astype(np.int32)


def check_rows(x: np.ndarray, y: np.ndarray, what: str = "") -> None:
  """Checks that inputs and labels pair up one to one."""
  if len(x) != len(y):
    raise TaskError(f"x{what} has {len(x)} rows but y{what} has {len(y)} labels")


def check_pool(x: np.ndarray, y: np.ndarray) -> None:
  """Refuses pools no classifier can be trained or standardised on.

  Args:
    x: preprocessed pool inputs ``[N, d]`` float64.
    y: pool labels.

  Raises:
    TaskError: a single class, or every feature constant.
  """
  classes = np.unique(y)
  if len(classes) < 2:
    raise TaskError(f"y has a single class ({classes[0]}); a classification task needs >= 2")
  if len(x) > 1 and (x.max(0) == x.min(0)).all():
    raise TaskError(f"all {x.shape[1]} feature column(s) are constant; nothing to learn from")


def check_split(y: np.ndarray, test_size: int | float) -> int:
  """Checks that a seeded stratified split of ``y`` by ``test_size`` is possible.

  Args:
    y: labels of every row before the split.
    test_size: number of held-out rows (int), or their share in (0, 1) (float).

  Returns:
    The number of held-out rows.

  Raises:
    TaskError: a bad ``test_size``, or too few rows (overall or in some class).
  """
  n = len(y)
  if isinstance(test_size, (bool, np.bool_)) or not isinstance(
    test_size, (int, float, np.integer, np.floating)
  ):
    raise TaskError(f"test_size must be a count or a share in (0, 1), got {test_size!r}")
  if isinstance(test_size, (float, np.floating)) and not float(test_size).is_integer():
    if not 0 < test_size < 1:
      raise TaskError(f"test_size share must be in (0, 1), got {test_size}")
    n_test = math.ceil(test_size * n)
  else:
    n_test = int(test_size)
  if not 0 < n_test < n:
    raise TaskError(f"test_size must be in (0, {n}), got {test_size}")
  values, counts = np.unique(y, return_counts=True)
  if counts.min() < 2:
    single = values[counts < 2]
    raise TaskError(
      f"class {single[0].item()!r} has only 1 row"
      + (f" ({len(single)} classes do)" if len(single) > 1 else "")
      + "; a stratified split needs >= 2 per class: drop or merge such classes, or bring "
      "your own held-out set (x_test, y_test in an .npz)"
    )
  k = len(values)
  if n_test < k or n - n_test < k:
    raise TaskError(
      f"a stratified split of {n} rows into {n - n_test} pool / {n_test} held out needs "
      f">= {k} rows (one per class) on each side"
    )
  return n_test
