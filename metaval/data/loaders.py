"""User data as base tasks: arrays, ``npz:``/``csv:`` files and ``tfds:`` datasets.

All of them end in ``tasks.classification_task``, so they get what the built-ins get:
the same validation and one-line ``TaskError`` messages, a seeded stratified held-out
``"test"`` split when the data brings none (``test_size``: a share in (0, 1) or a row
count; default 0.25), standardisation fitted on the pool only and kept on the task
(``task.encode(x_raw)`` maps raw inputs), and raw labels kept as ``task.classes``.

Options are keyword arguments of ``get_task`` (and so fields of the task config)::

  get_task("csv:data/my.csv", label="target", test_size=0.2)
  get_task("npz:arrays.npz")
  get_task("tfds:mnist", downsample=4, max_examples=5000)
  from_arrays(x, y, name="mine")
"""

from __future__ import annotations

import os
import pickle
import warnings
import zipfile
import zlib

import numpy as np

from metaval.data.csvfile import existing_file, read_table
from metaval.data.tasks import LANGUAGE_MODEL, Task, classification_task, register_prefix
from metaval.data.validate import TaskError
from metaval.errors import message_line

DEFAULT_TEST_SIZE = 0.25


def from_arrays(
  x,
  y,
  x_test=None,
  y_test=None,
  name: str = "arrays",
  seed: int = 0,
  test_size: int | float = DEFAULT_TEST_SIZE,
  downsample: int = 1,
) -> Task:
  """Builds a classification ``Task`` from arrays in memory.

  Args:
    x: raw inputs ``[N, d]``, or images ``[N, H, W]`` / ``[N, H, W, C]`` (flattened).
    y: ``[N]`` labels: integers, integral floats or strings.
    x_test: optional raw evaluation inputs shaped like ``x``; without them a seeded
      stratified split holds out ``test_size`` rows.
    y_test: labels of ``x_test``; each must also occur in ``y``.
    name: the task's name (shown in reports; not registered).
    seed: seed of the held-out split.
    test_size: held-out share in (0, 1) or row count.
    downsample: average-pool images by this factor per side before flattening.

  Returns:
    The ``Task``; ``task.encode(x_raw)`` maps new raw inputs to its internal space.

  Raises:
    TaskError: invalid inputs (NaN/inf, non-numeric, a single class, too few rows,
      non-integral labels, mismatched lengths or shapes), in one line.
  """
  return classification_task(name, x, y, seed, test_size, x_test, y_test, downsample=downsample)


# ----------------------------------------------------------------------------
# Files.


def _file_stamp(spec: str):
  try:
    st = os.stat(os.path.expanduser(spec))
  except OSError:
    return None
  return st.st_size, st.st_mtime_ns


_NPZ_KEYS = ("x", "y", "x_test", "y_test")


def read_npz(path: str, required=("x", "y")) -> dict[str, np.ndarray]:
  """Reads the arrays ``x``, ``y`` (and ``x_test``, ``y_test`` if present) of an ``.npz``.

  Args:
    path: the archive written by ``np.savez`` / ``np.savez_compressed``.
    required: the arrays that must be present.

  Returns:
    The arrays by name, unchecked (``classification_task`` and ``Task.encode`` check).

  Raises:
    TaskError: a missing, empty, damaged or non-npz file, object (pickled) arrays, or
      a missing ``required`` array.
  """
  path = existing_file(path, "npz")
  try:
    # Our own handle, so a damaged archive cannot leak the file numpy would open.
    with open(path, "rb") as fh:
      f = np.load(fh, allow_pickle=False)
      if not isinstance(f, np.lib.npyio.NpzFile):
        raise TaskError(f"{path} is a single .npy array; save x and y with np.savez")
      missing = [k for k in required if k not in f.files]
      if missing:
        raise TaskError(
          f"npz file {path} lacks array(s) {', '.join(missing)}; it holds: "
          f"{', '.join(f.files) or 'nothing'}"
        )
      return {k: f[k] for k in _NPZ_KEYS if k in f.files}
  except TaskError:
    raise
  except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, pickle.PickleError) as e:
    raise TaskError(
      f"cannot read npz file {path} (damaged or not npz): {message_line(e, with_type=True)}"
    ) from None


@register_prefix(
  "npz",
  "npz:<path> - arrays x, y and optionally x_test, y_test; options test_size, downsample",
  stamp=_file_stamp,
)
def _npz(spec: str, seed: int = 0, test_size=DEFAULT_TEST_SIZE, downsample: int = 1) -> Task:
  """An ``.npz`` archive (``np.savez``) with arrays ``x``, ``y`` (+ ``x_test``, ``y_test``).

  Labels may be integers or strings; object arrays (pickles) are refused.
  """
  arrays = read_npz(spec)
  return classification_task(
    f"npz:{spec}",
    arrays["x"],
    arrays["y"],
    seed,
    test_size,
    arrays.get("x_test"),
    arrays.get("y_test"),
    downsample=downsample,
  )


@register_prefix(
  "csv",
  "csv:<path> - header row, a label column (option label, default 'label') and feature "
  "columns (numbers, or text levels one-hot encoded); options label, test_size, delimiter",
  stamp=_file_stamp,
)
def _csv(
  spec: str, seed: int = 0, label: str = "label", test_size=DEFAULT_TEST_SIZE, delimiter=None
) -> Task:
  """A CSV file: a header row, one label column, every other column a feature.

  Labels are classes: integers (``3``, ``3.0``) or any strings (mapped to class ids in
  sorted order, kept as ``task.classes``). Feature columns are encoded by a ``Table``
  fitted on the whole file (``metaval.data.table``: text columns one-hot, missing
  cells filled), kept as ``task.transform.table``; ``task.encode`` takes the encoded
  columns (``table.names``), and ``read_set`` reads another file of the task through
  the same table.
  """
  x, y, table, notes = read_table(spec, label, delimiter)
  for note in notes:
    warnings.warn(f"csv file {spec}: {note}", stacklevel=2)
  return classification_task(
    f"csv:{spec}", x, y, seed, test_size, feature_names=table.sources, table=table
  )


# ----------------------------------------------------------------------------
# Sets in a task's raw space (supplements and bases given to the value commands).


def read_set(path: str, task: Task, what: str = "supplement") -> tuple[np.ndarray, np.ndarray]:
  """Reads a raw set of ``task`` from a file: an ``.npz`` or, for tabular data, a ``.csv``.

  An ``.npz`` holds ``x [n, ...]`` and ``y [n]`` (``y`` optional for the code task).
  A ``.csv`` has a header and the task's columns: its label column (the task's
  ``label`` option, default ``label``) and, for a ``csv:`` task, the task's feature
  columns by name (any order; other columns are ignored).

  Args:
    path: the file.
    task: the task whose raw space the set is in.
    what: the set's name in error messages.

  Returns:
    Raw ``(x, y)``; ``y`` is None for code windows without labels.

  Raises:
    TaskError: a missing, damaged or malformed file, in one line.
  """
  opts = dict(task.options)
  try:
    if path.endswith(".csv"):
      tr = task.transform
      x, y, _, notes = read_table(
        path,
        opts.get("label", "label"),
        opts.get("delimiter"),
        columns=(tr.feature_names or None) if tr else None,
        table=tr.table if tr else None,
      )
      for note in notes:
        warnings.warn(note, stacklevel=2)
      return x, y
    if path.endswith(".npz"):
      lm = task.kind == LANGUAGE_MODEL
      arrays = read_npz(path, required=("x",) if lm else ("x", "y"))
      return arrays["x"], arrays.get("y")
  except TaskError as e:
    raise TaskError(f"{what} file: {e}") from None
  raise TaskError(f"{what} file {path!r} must be an .npz (x, y) or a .csv")


def encode_set(task: Task, x, y, what: str = "supplemental") -> tuple[np.ndarray, np.ndarray]:
  """Maps a raw set ``(x, y)`` of ``task`` into its internal space.

  Inputs go through ``task.encode`` (shape checks, fixed preprocessing, the pool's
  standardisation) and class labels through ``task.encode_labels`` (raw label ->
  class id); the code task's labels are package ids already and pass through.

  Args:
    task: the base task.
    x: raw inputs ``[n, *task.transform.input_shape]``.
    y: raw labels ``[n]``.
    what: the set's name in error messages.

  Returns:
    ``(x [n, d], y [n])`` in the internal space.

  Raises:
    TaskError: inputs or labels that do not fit the task, in one line.
  """
  xi = task.encode(x, f"{what} x")
  if task.kind == LANGUAGE_MODEL:
    return xi, y
  return xi, task.encode_labels(y, f"{what} y").astype(np.int64)


# ----------------------------------------------------------------------------
# TensorFlow Datasets, read through tfds.data_source (array_record; no TensorFlow).


@register_prefix(
  "tfds",
  "tfds:<name>[:<config>] - a TFDS dataset via tfds.data_source (array_record); options "
  "feature, label, split, test_split, test_size, downsample, max_examples, data_dir, download",
)
def _tfds(
  spec: str,
  seed: int = 0,
  feature: str | None = None,
  label: str = "label",
  split: str = "train",
  test_split: str | None = "test",
  test_size=DEFAULT_TEST_SIZE,
  downsample: int = 1,
  max_examples: int | None = None,
  data_dir: str | None = None,
  download: bool = True,
) -> Task:
  """A TFDS dataset (``tfds:mnist``, ``tfds:<name>:<config>`` for ``<name>/<config>``).

  Read with ``tfds.data_source``, which needs the dataset prepared in the
  ``array_record`` format but never imports TensorFlow. On a machine that can
  download, ``download=True`` (the default) fetches and prepares it into ``data_dir``
  (default ``~/tensorflow_datasets``); preparing may need the dataset's own extra
  packages. Elsewhere prepare it once with
  ``tfds build <name> --file_format=array_record --data_dir=<dir>`` and pass
  ``data_dir``, ``download=False``.

  Args:
    spec: ``<name>`` or ``<name>:<config>``.
    seed: seed of the held-out split and of the ``max_examples`` subsample.
    feature: the input feature; default ``"image"`` if present, else the only
      feature besides the label.
    label: the integer label feature.
    split: the split that becomes the pool (TFDS split syntax, e.g. ``"train[:10%]"``).
    test_split: the evaluation split; None holds out ``test_size`` of ``split``.
    test_size: held-out share or count when ``test_split`` is None.
    downsample: average-pool images by this factor per side before flattening.
    max_examples: read at most this many examples (a seeded random subset) per split.
    data_dir: TFDS data directory.
    download: whether TFDS may download and prepare the dataset.
  """
  import tensorflow_datasets as tfds  # heavy; only for tfds: tasks

  name = spec.replace(":", "/")
  rng = np.random.default_rng(seed)
  pool = _tfds_source(tfds, name, split, data_dir, download)
  keys = set(pool[0])
  if label not in keys:
    raise TaskError(
      f"TFDS dataset {name!r} has no label feature {label!r}; features: {sorted(keys)}"
    )
  if feature is None:
    rest = sorted(keys - {label, "id"})
    feature = "image" if "image" in keys else (rest[0] if len(rest) == 1 else None)
    if feature is None:
      raise TaskError(f"TFDS dataset {name!r}: choose the input with feature=, one of {rest}")
  elif feature not in keys:
    raise TaskError(f"TFDS dataset {name!r} has no feature {feature!r}; features: {sorted(keys)}")
  x, y = _tfds_read(pool, name, feature, label, max_examples, rng)
  x_test = y_test = None
  if test_split:
    test = _tfds_source(tfds, name, test_split, data_dir, download)
    x_test, y_test = _tfds_read(test, name, feature, label, max_examples, rng)
  features = getattr(getattr(pool, "dataset_info", None), "features", None)
  names = getattr(features[label], "names", None) if features and label in features else None
  group_names = None
  if names and y.dtype.kind in "iu" and y.min() >= 0 and y.max() < len(names):
    group_names = tuple(names[c] for c in np.unique(y))
  return classification_task(
    f"tfds:{spec}", x, y, seed, test_size, x_test, y_test, group_names, downsample
  )


def _tfds_source(tfds, name: str, split: str, data_dir, download: bool):
  try:
    ds = tfds.data_source(name, split=split, data_dir=data_dir, download=download)
  except tfds.core.registered.DatasetNotFoundError:
    raise TaskError(f"unknown TFDS dataset {name!r}") from None
  except Exception as e:  # tfds raises many kinds (missing files, formats, network)
    raise TaskError(
      f"cannot open TFDS dataset {name!r} split {split!r}: {message_line(e, with_type=True)} "
      "(it must be prepared as array_record; see tfds.data_source)"
    ) from None
  if len(ds) == 0:
    raise TaskError(f"TFDS dataset {name!r} split {split!r} is empty")
  return ds


def _tfds_read(ds, name, feature, label, max_examples, rng) -> tuple[np.ndarray, np.ndarray]:
  n = len(ds)
  idx = np.arange(n)
  if max_examples is not None:
    if int(max_examples) < 1:
      raise TaskError(f"max_examples must be >= 1, got {max_examples}")
    if max_examples < n:
      idx = np.sort(rng.choice(n, int(max_examples), replace=False))
  xs, ys = [], []
  for i in idx:
    ex = ds[int(i)]
    xs.append(np.asarray(ex[feature]))
    ys.append(np.asarray(ex[label]))
  if xs[0].dtype.kind not in "biuf":
    raise TaskError(
      f"TFDS feature {feature!r} of {name!r} is not numeric (dtype {xs[0].dtype}); "
      "choose an image or tensor feature with feature="
    )
  shapes = {a.shape for a in xs}
  if len(shapes) > 1:
    raise TaskError(f"TFDS feature {feature!r} of {name!r} varies in shape: {sorted(shapes)[:3]}")
  return np.stack(xs), np.stack(ys)
