"""Threads for NumPy and XLA work that releases the GIL: one shared pool per purpose.

A pool is made on first use and kept (callers come and go; threads are not). Work
handed to a pool must not depend on which thread or how many run it: each task
computes a fixed part of the result.
"""

from __future__ import annotations

import concurrent.futures
import os
import threading

_POOLS: dict[str, concurrent.futures.ThreadPoolExecutor] = {}
_LOCK = threading.Lock()


def usable_cores() -> int:
  """Cores this process may run on (its CPU affinity where the OS reports one)."""
  try:
    return len(os.sched_getaffinity(0))
  except AttributeError:  # not on Linux
    return os.cpu_count() or 1


def pool(name: str, workers: int) -> concurrent.futures.ThreadPoolExecutor:
  """The process's pool ``name`` of ``workers`` threads (the first call's count)."""
  with _LOCK:
    if name not in _POOLS:
      _POOLS[name] = concurrent.futures.ThreadPoolExecutor(
        max(1, int(workers)), thread_name_prefix=f"metaval-{name}"
      )
    return _POOLS[name]
