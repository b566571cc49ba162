"""The machine and the package versions a result was made with (one record for all tables).

Every results table (``metaval experiment``) and every benchmark (``scripts/bench_*.py``)
records :func:`machine` so a number can be traced to the CPU and the exact versions of
the numerical stack that produced it (the lock file ``requirements/lock.txt`` pins them).
"""

from __future__ import annotations

import importlib.metadata
import os
import platform

# Distributions whose versions change results; the order is the order they are printed in.
VERSIONED = ("jax", "jaxlib", "flax", "optax", "numpy", "scipy", "scikit-learn")


def cpu_model() -> str:
  """The CPU's model name (from /proc/cpuinfo), for benchmark and result records."""
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or "unknown"


def versions() -> dict[str, str]:
  """Python's version and those of :data:`VERSIONED` (``"missing"`` if not installed)."""
  out = {"python": platform.python_version()}
  for dist in VERSIONED:
    try:
      out[dist] = importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
      out[dist] = "missing"
  return out


def format_versions(v: dict[str, str]) -> str:
  """``"python 3.11.9, jax 0.4.35, ..."``: a record's versions on one line."""
  return ", ".join(f"{k} {val}" for k, val in v.items())


def machine() -> dict:
  """CPU, cores, accelerator and :func:`versions` of this process (imports jax)."""
  import jax

  kinds = sorted({d.device_kind for d in jax.devices()})
  return {
    "cpu": cpu_model(),
    "cores": os.cpu_count(),
    "accelerator": ", ".join(kinds),
    "python": platform.python_version(),
    "jax": jax.__version__,
    "versions": versions(),
  }
