"""Compiled programs kept across processes, ready to run: no tracing, no lowering.

JAX's persistent compilation cache (``metaval.util.jaxcache``) spares a fresh process
the XLA compilation of a program, not its tracing and lowering. For the linear
solver's programs those cost 0.2-0.3 s each, and a label worker needs five of them
before its first label: most of a cold labelling run's start-up. ``call(fn, *args,
**static)`` runs the jitted ``fn`` through an executable compiled once and serialized
(``jax.experimental.serialize_executable``) into ``metaval-aot/`` inside the
persistent cache's folder; a later process loads it (about 0.07 s) and calls it.
Without a cache folder (``jax_compilation_cache_dir`` unset) it is
``fn(*args, **static)``.

An executable is keyed by ``fn``'s module and name, the static arguments, the
arguments' tree, shapes and dtypes, the versions of Python, jax and jaxlib,
``XLA_FLAGS``, 64-bit mode, the device and the CPU's model and instruction-set flags,
and a digest of the code it traces (its module's file and all of
``metaval.learners``): an edited program, another machine or another XLA setting
never runs a stale executable, and an edit elsewhere in metaval keeps the
executables. A file that cannot be loaded, or whose executable fails to start, is
compiled again and replaced; one not loaded for ``UNUSED_DAYS`` is removed when a new
one is written. The executable is the one ``jit`` compiles, so its results are the
same bit for bit (``tests/test_aot.py``).

The executable written is always freshly compiled, with JAX's persistent cache off
for that one compilation: an executable that JAX itself loaded from its cache
serializes without its compiled functions (jaxlib 0.10: it fails to start, "Function
... not found"), so it is never the one kept.
"""

from __future__ import annotations

import functools
import hashlib
import os
import pickle
import platform
import sys
import threading
import time

import jax
import numpy as np

from metaval.util import jaxcache
from metaval.util.io import atomic_write

FOLDER = jaxcache.KEPT  # inside the persistent cache's folder
UNUSED_DAYS = 30  # a kept executable not loaded for this long is removed (edited code's)

_MEMO: dict = {}  # (fn, static, tree, shapes, folder) -> executable, this process's
_LOADED: set = set()  # the programs whose executable came from a file
_LOCK = threading.Lock()


def cache_dir() -> str | None:
  """The folder of the executables (``None``: JAX's persistent cache is off)."""
  root = jax.config.jax_compilation_cache_dir
  return os.path.join(root, FOLDER) if root else None


def call(fn, *args, **static):
  """``fn(*args, **static)`` for a jitted ``fn``, through a kept executable.

  Args:
    fn: a ``jax.jit`` function; ``static`` are its static arguments.
    *args: its array arguments (a Python scalar among them: plain call, as jit
      would give it a weak type).
    **static: its static arguments (their ``repr`` keys the executable).

  Returns:
    What ``fn`` returns.
  """
  folder = cache_dir()
  leaves, tree = jax.tree_util.tree_flatten(args)
  if folder is None or any(isinstance(v, (bool, int, float, complex)) for v in leaves):
    return fn(*args, **static)
  shapes = tuple((np.shape(v), np.result_type(v)) for v in leaves)
  memo = (fn, tuple(sorted(static.items())), tree, shapes, folder)
  exe = _MEMO.get(memo)
  if exe is None:
    with _LOCK:  # one compile per program, whichever thread asks first
      exe = _MEMO.get(memo)
      if exe is None:
        path = _path(folder, fn, static, tree, shapes)
        exe = _load(path)
        if exe is None:
          exe = _compile(fn, args, static, path)
        else:
          _LOADED.add(memo)
        _MEMO[memo] = exe
  try:
    return exe(*args)
  except jax.errors.JaxRuntimeError:
    if memo not in _LOADED:
      raise  # a freshly compiled program's own error
    with _LOCK:  # a kept executable that does not start: compiled again, replaced
      _LOADED.discard(memo)
      exe = _MEMO[memo] = _compile(fn, args, static, _path(folder, fn, static, tree, shapes))
    return exe(*args)


def _path(folder: str, fn, static: dict, tree, shapes) -> str:
  """The file of a program: named by the digest of everything it depends on."""
  signature = (
    fn.__module__,
    fn.__qualname__,
    repr(sorted(static.items())),
    str(tree),
    tuple((tuple(shape), str(dtype)) for shape, dtype in shapes),
    _environment(),
    _source_digest(sys.modules[fn.__module__].__file__),
  )
  return os.path.join(folder, hashlib.sha256(repr(signature).encode()).hexdigest()[:40])


def _load(path: str):
  """The executable kept at ``path``, or None (none, or unreadable)."""
  from jax.experimental import serialize_executable

  try:
    with open(path, "rb") as f:
      exe = serialize_executable.deserialize_and_load(*pickle.load(f))
  except Exception:  # noqa: BLE001  (missing, truncated, or from another jaxlib)
    return None
  try:
    os.utime(path)  # its time is its last use (``_prune``)
  except OSError:
    pass
  return exe


def _compile(fn, args, static, path: str):
  """``fn`` compiled for ``args`` (JAX's persistent cache off: see the module doc),
  kept at ``path``; without the JAX switch this needs (a private one, which a later JAX
  may lack), jit's own compiled function, nothing kept."""
  try:
    from jax._src.config import enable_compilation_cache
    from jax.experimental import serialize_executable
  except ImportError:
    return functools.partial(fn, **static)
  with enable_compilation_cache(False):
    compiled = fn.lower(*args, **static).compile()
  try:
    data = pickle.dumps(serialize_executable.serialize(compiled))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with atomic_write(path, "wb") as f:
      f.write(data)
    _prune(os.path.dirname(path))
  except OSError:  # a read-only cache: this process keeps its executable all the same
    pass
  return compiled


def _prune(folder: str, days: float = UNUSED_DAYS) -> None:
  """Removes the executables not loaded for ``days`` (each edit of the traced code
  keys a new set; the old ones would otherwise stay for good)."""
  cutoff = time.time() - days * 86400
  for entry in os.scandir(folder):
    try:
      if entry.is_file() and entry.stat().st_mtime < cutoff:
        os.remove(entry.path)
    except OSError:  # another process removed it first
      pass


@functools.cache
def _environment() -> tuple:
  """What an executable depends on besides its program's signature (once per process)."""
  import jaxlib

  device = jax.devices()[0]
  return (
    platform.python_version(),
    jax.__version__,
    jaxlib.__version__,
    os.environ.get("XLA_FLAGS", ""),
    bool(jax.config.jax_enable_x64),
    device.platform,
    getattr(device, "device_kind", ""),
    platform.machine(),
    _cpu(),
  )


def _cpu() -> str:
  """The CPU's model and instruction-set flags (XLA:CPU compiles for the host's)."""
  try:
    with open("/proc/cpuinfo") as f:
      lines = [ln for ln in f.read().splitlines() if ln.startswith(("model name", "flags"))]
  except OSError:
    return platform.processor()
  return hashlib.sha256("\n".join(sorted(set(lines))).encode()).hexdigest()


@functools.cache
def _source_digest(module_file: str) -> str:
  """A digest of the code a program traces: its own module's file and every file of
  ``metaval.learners`` (the models, the solver, the training step they call)."""
  learners = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "learners")
  files = sorted({os.path.abspath(module_file)} | {
    os.path.join(learners, n) for n in os.listdir(learners) if n.endswith(".py")
  })  # fmt: skip
  h = hashlib.sha256()
  for path in files:
    h.update(os.path.basename(path).encode())
    with open(path, "rb") as f:
      h.update(f.read())
  return h.hexdigest()
