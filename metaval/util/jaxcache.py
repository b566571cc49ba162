"""JAX's persistent compilation cache for the processes that label.

A label worker traces its programs and loads them from this cache instead of
compiling them (seconds each) when an earlier run, or another worker, compiled them
already. JAX keys every entry by the program and the versions that built it, so a
stale entry is never loaded. The cache lives in ``$METAVAL_CACHE/jax`` (default
``~/.cache/metaval/jax``) unless ``JAX_COMPILATION_CACHE_DIR`` is set already. The
cache still traces and lowers each program in every process; ``metaval.util.aot``
keeps the solver's executables whole in ``metaval-aot/`` inside it, loaded without
either.
"""

from __future__ import annotations

import contextlib
import os


def default_dir() -> str:
  """``$METAVAL_CACHE/jax``, else ``~/.cache/metaval/jax``."""
  root = os.environ.get("METAVAL_CACHE") or os.path.join(
    os.path.expanduser("~"), ".cache", "metaval"
  )
  return os.path.join(root, "jax")


KEPT = "metaval-aot"  # the subfolder of whole executables (``metaval.util.aot``)


def entries(path: str) -> int:
  """JAX's programs in the cache at ``path`` (0 if it does not exist; the folder of
  kept executables is not one of them: ``kept``)."""
  if not os.path.isdir(path):
    return 0
  return sum(1 for name in os.listdir(path) if name != KEPT)


def kept(path: str) -> int:
  """Executables kept whole in the cache at ``path`` (``metaval.util.aot``)."""
  folder = os.path.join(path, KEPT)
  return len(os.listdir(folder)) if os.path.isdir(folder) else 0


def cache_env(path: str | None = None) -> dict[str, str]:
  """Environment that makes a spawned process use the cache at ``path`` (default:
  ``JAX_COMPILATION_CACHE_DIR`` if set, else ``default_dir()``) for every program."""
  path = path or os.environ.get("JAX_COMPILATION_CACHE_DIR") or default_dir()
  return {
    "JAX_COMPILATION_CACHE_DIR": os.path.abspath(path),
    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
  }


@contextlib.contextmanager
def environ(values: dict[str, str]):
  """Sets environment variables for the block and restores them after it."""
  old = {k: os.environ.get(k) for k in values}
  os.environ.update(values)
  try:
    yield
  finally:
    for k, v in old.items():
      if v is None:
        os.environ.pop(k, None)
      else:
        os.environ[k] = v
