"""The learner benchmark's pinned label workers: one single-core process per core."""

from __future__ import annotations

import importlib.util
import os

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "scripts", "bench_learners.py")


def _script():
  spec = importlib.util.spec_from_file_location("bench_learners", SCRIPT)
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod


def test_pinned_workers_run_one_per_core_each_on_its_own_core():
  bench = _script()
  cores = sorted(os.sched_getaffinity(0))
  out = bench.pinned_labels(width=8, labels=2, base=30, supp=10, seeds=1)
  assert out["workers"] == len(cores) and out["labels"] == 2 * len(cores)
  # Each worker saw exactly one CPU, and together they cover this process's cores.
  assert all(len(c) == 1 for c in out["worker_cores"])
  assert sorted(c[0] for c in out["worker_cores"]) == cores
  assert out["labels_per_s"] > 0 and len(out["worker_seconds"]) == len(cores)
