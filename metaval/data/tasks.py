"""Registry of named, offline base tasks.

A task is a training *pool* (the points any base set B or supplement S is drawn
from), one or more held-out *evaluation sets*, and metadata. Every built-in task is
deterministic for its seed and needs no network:

* ``digits``, ``breast_cancer``, ``wine``: scikit-learn's bundled datasets.
* ``synthetic``: a seeded ``make_classification`` task with controllable difficulty.
* ``code``: the Python standard library's own source files, cut into
  character windows grouped by package (a "contributor" is a set of files).

Classification pools hold standardised float features ``x [N, d]`` and integer
labels ``y [N]``. The code pool holds token windows ``x [N, T + 1]`` (input and
shifted target in one array) and ``y`` is the window's group id.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import sysconfig
from collections.abc import Callable

import numpy as np

from metaval.errors import MetavalError

CLASSIFICATION = "classification"
LANGUAGE_MODEL = "language_model"


class TaskError(MetavalError):
  """A task name or task argument is not valid."""


@dataclasses.dataclass(frozen=True, eq=False)
class Task:
  """A base task: training pool, evaluation sets and metadata.

  Attributes:
    name: registry name, e.g. ``"digits"``.
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


_REGISTRY: dict[str, Callable[..., Task]] = {}


def register_task(name: str):
  """Decorator adding a task builder ``fn(seed=0, **kwargs) -> Task`` to the registry."""

  def wrap(fn):
    if name in _REGISTRY:
      raise TaskError(f"task {name!r} is already registered")
    _REGISTRY[name] = fn
    return fn

  return wrap


def list_tasks() -> list[str]:
  return sorted(_REGISTRY)


def get_task(name: str, seed: int = 0, **kwargs) -> Task:
  """Builds (and caches) the named task.

  Args:
    name: a registry name; see ``list_tasks()``.
    seed: controls the pool/test split and any synthetic generation.
    **kwargs: task-specific options (e.g. ``test_size``, ``class_sep``).

  Returns:
    The ``Task``.

  Raises:
    TaskError: unknown name or bad options, with the list of available tasks.
  """
  if name not in _REGISTRY:
    raise TaskError(f"unknown task {name!r}; available tasks: {', '.join(list_tasks())}")
  frozen = tuple(sorted(kwargs.items()))
  try:
    return _cached_task(name, int(seed), frozen)
  except TypeError as e:
    raise TaskError(f"bad options for task {name!r}: {e}") from None


@functools.lru_cache(maxsize=16)
def _cached_task(name: str, seed: int, frozen_kwargs: tuple) -> Task:
  return _REGISTRY[name](seed=seed, **dict(frozen_kwargs))


# ----------------------------------------------------------------------------
# Classification tasks.


def _split_standardise(name, x, y, seed, test_size, group_names=None) -> Task:
  from sklearn.model_selection import train_test_split

  x = np.asarray(x, np.float64)
  y = np.asarray(y)
  _, y = np.unique(y, return_inverse=True)
  if not 0 < test_size < len(y):
    raise TaskError(f"test_size must be in (0, {len(y)}), got {test_size}")
  x_tr, x_te, y_tr, y_te = train_test_split(
    x, y, test_size=test_size, random_state=seed, stratify=y
  )
  # Statistics of the pool only, so nothing about the test set leaks into training.
  mu, sd = x_tr.mean(0), x_tr.std(0)
  sd = np.where(sd < 1e-8, 1.0, sd)
  x_tr = ((x_tr - mu) / sd).astype(np.float32)
  x_te = ((x_te - mu) / sd).astype(np.float32)
  num_classes = int(y.max()) + 1
  y_tr = y_tr.astype(np.int32)
  names = (
    tuple(group_names)
    if group_names is not None
    else tuple(f"class_{c}" for c in range(num_classes))
  )
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
  )


@register_task("digits")
def _digits(seed: int = 0, test_size: int = 500) -> Task:
  from sklearn.datasets import load_digits

  d = load_digits()
  return _split_standardise("digits", d.data, d.target, seed, test_size)


@register_task("breast_cancer")
def _breast_cancer(seed: int = 0, test_size: int = 169) -> Task:
  from sklearn.datasets import load_breast_cancer

  d = load_breast_cancer()
  return _split_standardise(
    "breast_cancer", d.data, d.target, seed, test_size, group_names=tuple(d.target_names)
  )


@register_task("wine")
def _wine(seed: int = 0, test_size: int = 58) -> Task:
  from sklearn.datasets import load_wine

  d = load_wine()
  return _split_standardise(
    "wine", d.data, d.target, seed, test_size, group_names=tuple(d.target_names)
  )


@register_task("synthetic")
def _synthetic(
  seed: int = 0,
  n: int = 2000,
  dim: int = 32,
  num_classes: int = 4,
  class_sep: float = 1.0,
  informative: int = 8,
  flip_y: float = 0.01,
  test_size: int = 500,
) -> Task:
  """``make_classification``; lower ``class_sep`` / higher ``flip_y`` make it harder."""
  from sklearn.datasets import make_classification

  if informative > dim:
    raise TaskError(f"informative ({informative}) must be <= dim ({dim})")
  x, y = make_classification(
    n_samples=n,
    n_features=dim,
    n_informative=informative,
    n_redundant=min(4, dim - informative),
    n_classes=num_classes,
    n_clusters_per_class=2,
    class_sep=class_sep,
    flip_y=flip_y,
    random_state=seed,
  )
  return _split_standardise("synthetic", x, y, seed, test_size)


# ----------------------------------------------------------------------------
# Code corpus: the Python standard library's own sources.

# Printable ASCII plus newline and tab; everything else maps to UNK (id 0).
_VOCAB = "\n\t" + "".join(chr(c) for c in range(32, 127))
VOCAB_SIZE = len(_VOCAB) + 1
_CHAR_TO_ID = np.zeros(256, np.int32)
for _i, _c in enumerate(_VOCAB):
  _CHAR_TO_ID[ord(_c)] = _i + 1

DEFAULT_CODE_PACKAGES = (
  "json",
  "email",
  "http",
  "logging",
  "urllib",
  "xml",
  "unittest",
  "importlib",
  "concurrent",
  "asyncio",
  "collections",
  "sqlite3",
  "wsgiref",
  "html",
  "dbm",
  "xmlrpc",
)


def encode_text(text: str) -> np.ndarray:
  """Maps text to token ids (0 = unknown character)."""
  raw = np.frombuffer(text.encode("ascii", errors="replace"), np.uint8)
  return _CHAR_TO_ID[raw]


def decode_tokens(tokens) -> str:
  return "".join(_VOCAB[t - 1] if 0 < t <= len(_VOCAB) else "?" for t in np.asarray(tokens))


def stdlib_dir() -> str:
  return sysconfig.get_paths()["stdlib"]


@register_task("code")
def _code(
  seed: int = 0,
  packages: tuple[str, ...] | str = DEFAULT_CODE_PACKAGES,
  seq_len: int = 64,
  chars_per_group: int = 24_000,
  eval_chars_per_group: int = 6_000,
  root: str | None = None,
) -> Task:
  """Character windows from standard-library packages, one group per package.

  Within a package, files are shuffled with ``seed``; the first files fill the
  held-out budget (``eval_chars_per_group``, at least one file) and the rest fill
  the training budget (``chars_per_group``), so evaluation is on unseen files of
  the same package. Packages with fewer than two files are skipped.
  """
  if isinstance(packages, str):
    packages = tuple(p for p in packages.split(",") if p)
  root = root or stdlib_dir()
  rng = np.random.default_rng(seed)
  win = seq_len + 1
  xs, groups, files, file_names, names = [], [], [], [], []
  eval_x = {}
  for pkg in packages:
    pdir = os.path.join(root, pkg)
    if not os.path.isdir(pdir):
      continue
    paths = sorted(
      os.path.join(dp, f)
      for dp, dn, fs in os.walk(pdir)
      if "test" not in os.path.relpath(dp, root).split(os.sep)[1:]
      for f in fs
      if f.endswith(".py")
    )
    paths = [paths[i] for i in rng.permutation(len(paths))]
    windows = []
    for path in paths:
      with open(path, encoding="utf-8", errors="replace") as fh:
        toks = encode_text(fh.read())
      n_win = len(toks) // win
      if n_win > 0:
        windows.append((os.path.relpath(path, root), toks[: n_win * win].reshape(n_win, win)))
    if len(windows) < 2:
      continue  # A package needs one file for training and another held out.
    # Held-out files first (at least one), the rest fill the training budget.
    ev, budget = [], eval_chars_per_group
    while budget > 0 and len(windows) > 1 and (not ev or len(windows) > 2):
      _, w = windows.pop(0)
      ev.append(w[: max(1, budget // win)])
      budget -= ev[-1].size
    gid, budget = len(names), chars_per_group
    names.append(pkg)
    eval_x[pkg] = np.concatenate(ev).astype(np.int32)
    for rel, w in windows:
      if budget <= 0:
        break
      w = w[: max(1, budget // win)]
      budget -= w.size
      xs.append(w)
      groups.append(np.full(len(w), gid, np.int32))
      files.append(np.full(len(w), len(file_names), np.int32))
      file_names.append(rel)
  if len(names) < 2:
    raise TaskError(f"code task needs >= 2 usable packages under {root!r}; found {names}")
  x = np.concatenate(xs).astype(np.int32)
  g = np.concatenate(groups)
  f = np.concatenate(files)
  # One held-out set; its labels are group ids so the trainer can report the
  # overall held-out loss and each package's loss from one forward pass.
  evals = {
    "heldout": (
      np.concatenate(list(eval_x.values())),
      np.concatenate([np.full(len(v), i, np.int32) for i, v in enumerate(eval_x.values())]),
    )
  }
  return Task(
    name="code",
    kind=LANGUAGE_MODEL,
    x=x,
    y=g.copy(),
    num_classes=VOCAB_SIZE,
    evals=evals,
    groups=g,
    group_names=tuple(names),
    files=f,
    file_names=tuple(file_names),
    seed=seed,
  )
