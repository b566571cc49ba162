"""Registry of base tasks: built-ins by name, user data by prefix.

A task is a training *pool* (the points any base set B or supplement S is drawn
from), one or more held-out *evaluation sets*, metadata, and the *input transform*
that maps the user's raw inputs into the task's internal space
(``task.encode(x_raw)``). Every built-in task is deterministic for its seed and
needs no network:

* ``digits``, ``breast_cancer``, ``wine``: scikit-learn's bundled datasets, and
  ``synthetic``: a seeded ``make_classification`` task with controllable difficulty
  (``metaval.data.builtin``).
* ``code``: the Python standard library's own source files, cut into
  character windows grouped by package (a "contributor" is a set of files).

User data comes in through a prefix (``metaval.data.loaders``): ``csv:<path>``,
``npz:<path>``, ``tfds:<name>[:<config>]``, or ``from_arrays(x, y)`` in Python.

Classification pools hold standardised float features ``x [N, d]`` and integer
labels ``y [N]``. The code pool holds token windows ``x [N, T + 1]`` (input and
shifted target in one array) and ``y`` is the window's group id.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import re
import zlib
from collections.abc import Callable

import numpy as np

from metaval.data.transform import Transform
from metaval.data.validate import (
  TaskError,
  as_features,
  as_labels,
  check_pool,
  check_rows,
  check_split,
  class_ids,
)

CLASSIFICATION = "classification"
LANGUAGE_MODEL = "language_model"


@dataclasses.dataclass(frozen=True, eq=False)
class Task:
  """A base task: training pool, evaluation sets, metadata and input transform.

  Attributes:
    name: registry name, e.g. ``"digits"`` or ``"csv:data/my.csv"``.
    kind: ``"classification"`` or ``"language_model"``.
    x: training pool inputs; ``[N, d]`` float32 or ``[N, T + 1]`` int32 tokens.
    y: training pool labels ``[N]`` int32 (for the code task: the group id).
    num_classes: number of classes (vocabulary size for the code task).
    evals: evaluation sets by name, each ``(x, y)`` shaped like the pool.
    groups: ``[N]`` int32 group of each pool element (class for classification
      tasks, package for code).
    group_names: name of each group id.
    files: ``[N]`` int32 source-file id of each pool element (code task) or the
      element's own index (classification).
    file_names: name of each file id (code task only; empty otherwise).
    seed: the seed the task was built with.
    transform: raw inputs -> internal inputs (see ``encode``); None if unknown.
    classes: the raw label of each class id (classification), e.g. ``(0, 1, 2)``
      or ``("cat", "dog")``; ``y == i`` means raw label ``classes[i]``.
    options: the keyword options the task was built with, sorted ``(key, value)``.
  """

  name: str
  kind: str
  x: np.ndarray
  y: np.ndarray
  num_classes: int
  evals: dict[str, tuple[np.ndarray, np.ndarray]]
  groups: np.ndarray
  group_names: tuple[str, ...]
  files: np.ndarray
  file_names: tuple[str, ...] = ()
  seed: int = 0
  transform: Transform | None = None
  classes: tuple = ()
  options: tuple = ()

  @property
  def pool_size(self) -> int:
    return int(self.x.shape[0])

  @property
  def feature_dim(self) -> int:
    return int(self.x.shape[1])

  def describe(self) -> str:
    evals = ", ".join(f"{k}: {v[0].shape[0]}" for k, v in self.evals.items())
    return (
      f"task {self.name!r} ({self.kind}): pool {self.x.shape}, "
      f"{self.num_classes} classes/tokens, {len(self.group_names)} groups, evals [{evals}]"
    )

  def _transform(self) -> Transform:
    if self.transform is None:
      raise TaskError(f"task {self.name!r} has no input transform; pass internal inputs")
    return self.transform

  def encode(self, x_raw, what: str = "x") -> np.ndarray:
    """Maps raw inputs ``[n, *transform.input_shape]`` to the internal ``[n, d]``.

    Raises:
      TaskError: inputs that are non-numeric, non-finite or of the wrong shape.
    """
    return self._transform().encode(x_raw, what)

  def decode(self, x: np.ndarray) -> np.ndarray:
    """Maps internal inputs back to the raw space (see ``Transform.decode``)."""
    return self._transform().decode(x)

  def encode_labels(self, y_raw, what: str = "y") -> np.ndarray:
    """Maps raw labels (as in the user's data) to class ids ``[n]`` int32.

    Raises:
      TaskError: labels that are not among the task's classes.
    """
    if not self.classes:
      raise TaskError(f"task {self.name!r} ({self.kind}) has no class labels")
    return class_ids(as_labels(y_raw, what), np.asarray(self.classes), what)


@dataclasses.dataclass(frozen=True)
class _Prefix:
  build: Callable[..., Task]
  usage: str
  stamp: Callable[[str], object] | None


_REGISTRY: dict[str, Callable[..., Task]] = {}
_PREFIXES: dict[str, _Prefix] = {}


def register_task(name: str):
  """Decorator adding a task builder ``fn(seed=0, **kwargs) -> Task`` to the registry."""

  def wrap(fn):
    if name in _REGISTRY:
      raise TaskError(f"task {name!r} is already registered")
    _REGISTRY[name] = fn
    return fn

  return wrap


def register_prefix(prefix: str, usage: str, stamp: Callable[[str], object] | None = None):
  """Decorator adding a builder ``fn(spec, seed=0, **kwargs) -> Task`` for ``prefix:spec``.

  Args:
    prefix: e.g. ``"csv"``; task names ``"csv:<spec>"`` go to this builder.
    usage: one line shown by ``task_prefixes()`` and in unknown-task errors.
    stamp: ``stamp(spec)`` -> a hashable that changes when the source changes (a
      file's size and mtime), so the task cache never serves a stale file.
  """

  def wrap(fn):
    if prefix in _PREFIXES:
      raise TaskError(f"task prefix {prefix!r} is already registered")
    _PREFIXES[prefix] = _Prefix(fn, usage, stamp)
    return fn

  return wrap


def list_tasks() -> list[str]:
  """Names of the built-in tasks.

  User data needs no registration; name it with a prefix (``task_prefixes()``):

  * ``csv:<path>`` — a CSV with a header; the ``label`` option names the label column
    (default ``"label"``), every other column is a numeric feature.
  * ``npz:<path>`` — arrays ``x``, ``y`` and optionally ``x_test``, ``y_test``.
  * ``tfds:<name>[:<config>]`` — a TFDS dataset read with ``tfds.data_source``
    (array_record; no TensorFlow), options ``feature``, ``label``, ``split``,
    ``test_split``, ``downsample``, ``max_examples``, ``data_dir``, ``download``.

  In Python, ``metaval.data.from_arrays(x, y)`` builds the same ``Task``.
  """
  return sorted(_REGISTRY)


def task_prefixes() -> dict[str, str]:
  """Each user-data prefix (``csv``, ``npz``, ``tfds``) with a one-line usage."""
  return {p: _PREFIXES[p].usage for p in sorted(_PREFIXES)}


def _freeze(v):
  return tuple(_freeze(e) for e in v) if isinstance(v, (list, tuple)) else v


def get_task(name: str, seed: int = 0, **kwargs) -> Task:
  """Builds (and caches) the named task.

  Args:
    name: a built-in name (``list_tasks()``) or ``<prefix>:<spec>`` for user data,
      e.g. ``"csv:data/my.csv"``, ``"npz:arrays.npz"``, ``"tfds:mnist"`` (see
      ``task_prefixes()``).
    seed: controls the pool/test split and any synthetic generation.
    **kwargs: task-specific options (e.g. ``test_size``, ``class_sep``, ``label``).

  Returns:
    The ``Task``.

  Raises:
    TaskError: unknown name, bad options or bad data, in one line.
  """
  key = _cache_key(name, seed, kwargs)
  return _PRIMED[key] if key in _PRIMED else _cached_task(*key)


def _cache_key(name, seed, kwargs: dict) -> tuple:
  """``(name, seed, frozen options, source stamp)``: validated; ``get_task``'s cache key."""
  if not isinstance(name, str):
    raise TaskError(f"a task name must be a string, got {type(name).__name__}")
  if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
    raise TaskError(f"task seed must be an integer, got {seed!r}")
  prefix, sep, spec = name.partition(":")
  if sep and prefix in _PREFIXES:
    entry = _PREFIXES[prefix]
    if not spec:
      raise TaskError(f"task {name!r} names no source; usage: {entry.usage}")
    fn, stamp = entry.build, entry.stamp(spec) if entry.stamp else None
    call = (spec,)
  elif name in _REGISTRY:
    fn, stamp, call = _REGISTRY[name], None, ()
  else:
    raise TaskError(
      f"unknown task {name!r}; available tasks: {', '.join(list_tasks())}; "
      f"or user data as {', '.join(p + ':...' for p in task_prefixes())}"
    )
  try:
    inspect.signature(fn).bind(*call, seed=seed, **kwargs)
  except TypeError as e:
    raise TaskError(f"bad options for task {name!r}: {e}") from None
  frozen = tuple(sorted((k, _freeze(v)) for k, v in kwargs.items()))
  try:
    hash(frozen)
  except TypeError:
    raise TaskError(f"options of task {name!r} must be numbers, strings or lists") from None
  return (name, int(seed), frozen, stamp)


# Tasks handed to this process ready-built (``prime``), by ``get_task``'s cache key.
_PRIMED: dict[tuple, Task] = {}


def task_key(name: str, seed: int = 0, **kwargs) -> tuple:
  """``get_task``'s cache key of a task (validated; for ``prime``)."""
  return _cache_key(name, seed, kwargs)


def prime(key: tuple, task: Task) -> None:
  """Makes ``get_task`` return ``task`` for the task whose ``task_key`` is ``key``.

  A label worker receives the tasks its parent has already built, keyed in the
  parent, so it neither builds them again nor imports their loaders
  (scikit-learn's dataset loaders and split take about 1.5 s to import, most of a
  worker's start-up). A user-data file that changes afterwards changes its key
  (the file's stamp), and is then built afresh.
  """
  _PRIMED[key] = task


def task_nbytes(task: Task) -> int:
  """Bytes of a task's arrays (pool and evaluation sets)."""
  arrays = [task.x, task.y, *(a for xy in task.evals.values() for a in xy)]
  return int(sum(np.asarray(a).nbytes for a in arrays))


def task_spec(cfg) -> tuple[str, int, dict]:
  """``(name, seed, options)`` of a config's ``task`` section.

  Every field besides ``name`` and ``seed`` that is not None is a task option, and so
  is every entry of an optional ``kwargs`` dict. Fingerprints of cached results use
  this form, so adding an unset option field to a config does not change them.

  Args:
    cfg: the ``task`` ConfigDict (or any mapping) with at least ``name``.

  Returns:
    The task name (as written: possibly a comma-separated list), its seed and options.

  Raises:
    TaskError: no ``name``, or a seed that is not an integer.
  """
  d = dict(cfg.to_dict() if hasattr(cfg, "to_dict") else cfg)
  if "name" not in d:
    raise TaskError("the task config has no 'name'")
  name, seed = d.pop("name"), d.pop("seed", 0)
  if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
    raise TaskError(f"task seed must be an integer, got {seed!r}")
  options = {k: v for k, v in d.items() if k != "kwargs" and v is not None}
  options.update(d.get("kwargs") or {})
  return str(name), int(seed), options


def task_from_config(cfg, name: str | None = None) -> Task:
  """Builds the task a config's ``task`` section names.

  ``--config.task.name=csv:my.csv --config.task.label=target`` ->
  ``get_task("csv:my.csv", seed=0, label="target")`` (see ``task_spec``). Options
  default to None in the config (``config_defaults.task_config``) so a built-in task
  never sees them.

  Args:
    cfg: the ``task`` ConfigDict (or any mapping) with at least ``name``.
    name: build this task instead of ``cfg.name`` (one entry of a comma-separated
      list), with the config's seed and options.

  Returns:
    The ``Task``.
  """
  cfg_name, seed, options = task_spec(cfg)
  return get_task(cfg_name if name is None else name, seed=seed, **options)


# Task names that are safe as a file name as they are (every built-in).
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.-]+")


def task_slug(name: str) -> str:
  """A file-name-safe form of a task name, for directories and cache files.

  Built-in names are returned as they are; a user-data name such as
  ``csv:/data/my.csv`` becomes ``csv_data_my.csv-<crc32>`` (readable, and unique
  because the checksum covers the whole name).
  """
  if _PLAIN_NAME.fullmatch(name) and name not in (".", ".."):
    return name
  readable = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_.")[:60]
  return f"{readable}-{zlib.crc32(name.encode()):08x}"


@functools.lru_cache(maxsize=16)
def _cached_task(name: str, seed: int, frozen_kwargs: tuple, stamp) -> Task:
  del stamp  # only part of the cache key
  prefix, sep, spec = name.partition(":")
  if sep and prefix in _PREFIXES:
    task = _PREFIXES[prefix].build(spec, seed=seed, **dict(frozen_kwargs))
  else:
    task = _REGISTRY[name](seed=seed, **dict(frozen_kwargs))
  return dataclasses.replace(task, options=frozen_kwargs) if frozen_kwargs else task


# ----------------------------------------------------------------------------
# Classification tasks.


def classification_task(
  name: str,
  x,
  y,
  seed: int = 0,
  test_size: int | float = 0.25,
  x_test=None,
  y_test=None,
  group_names=None,
  downsample: int = 1,
  feature_names: tuple[str, ...] = (),
  table=None,
) -> Task:
  """Validates raw arrays and builds a standardised classification ``Task``.

  Without ``x_test``/``y_test`` a seeded stratified split holds out ``test_size``
  rows. Standardisation is fitted on the pool only (nothing about the evaluation set
  leaks into training) and kept on the task as ``task.transform``.

  Args:
    name: the task's name.
    x: raw inputs ``[N, d]``, or images ``[N, H, W]`` / ``[N, H, W, C]`` (flattened).
    y: ``[N]`` class labels: integers, integral floats or strings (see ``validate``).
    seed: seed of the held-out split.
    test_size: held-out rows (int) or share (float in (0, 1)) when no test set is given.
    x_test: optional raw evaluation inputs shaped like ``x``.
    y_test: labels of ``x_test``; each must be one of the pool's classes.
    group_names: name of each class id; default the raw label (``class_<k>`` for ints).
    downsample: average-pool images by this factor per side before flattening.
    feature_names: name of each raw feature column (CSV headers), kept on the transform.
    table: a CSV's column encoding (``metaval.data.table.Table``), kept on the transform.

  Returns:
    The ``Task`` with one evaluation set, ``"test"``.

  Raises:
    TaskError: any invalid input, in one line.
  """
  x = as_features(x, "x")
  y = as_labels(y, "y")
  check_rows(x, y)
  raw_shape = x.shape[1:]
  if (
    isinstance(downsample, bool) or not isinstance(downsample, (int, np.integer)) or downsample < 1
  ):
    raise TaskError(f"downsample must be a positive integer, got {downsample!r}")
  if downsample != 1 and (x.ndim < 3 or min(raw_shape[:2]) < downsample):
    raise TaskError(
      f"downsample={downsample} needs images [N, H, W(, C)] with H, W >= {downsample}; "
      f"got x of shape {x.shape}"
    )
  pre = Transform(raw_shape, downsample=int(downsample))
  x = pre.preprocess(x)
  classes = np.unique(y)
  ids = class_ids(y, classes)
  check_pool(x, ids)
  if (x_test is None) != (y_test is None):
    raise TaskError("give both x_test and y_test, or neither (then a split is held out)")
  if x_test is None:
    from sklearn.model_selection import train_test_split

    check_split(y, test_size)  # raw labels: errors name the classes as the user wrote them
    x_tr, x_te, y_tr, y_te = train_test_split(
      x, ids, test_size=test_size, random_state=seed, stratify=ids
    )
  else:
    x_tr, y_tr = x, ids
    x_te = pre.preprocess(x_test, "x_test")
    y_te_raw = as_labels(y_test, "y_test")
    check_rows(x_te, y_te_raw, "_test")
    y_te = class_ids(y_te_raw, classes, "y_test")
  transform = Transform.fit(x_tr, raw_shape, int(downsample), tuple(feature_names), table)
  x_tr = transform.standardise(x_tr)
  x_te = transform.standardise(x_te)
  num_classes = len(classes)
  y_tr = y_tr.astype(np.int32)
  raw = tuple(c.item() for c in classes)
  if group_names is not None:
    names = tuple(group_names)
  else:
    names = tuple(c if isinstance(c, str) else f"class_{c}" for c in raw)
  return Task(
    name=name,
    kind=CLASSIFICATION,
    x=x_tr,
    y=y_tr,
    num_classes=num_classes,
    evals={"test": (x_te, y_te.astype(np.int32))},
    groups=y_tr.copy(),
    group_names=names,
    files=np.arange(len(y_tr), dtype=np.int32),
    seed=seed,
    transform=transform,
    classes=raw,
  )
