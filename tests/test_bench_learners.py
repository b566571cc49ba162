"""The learner benchmark's pinned label workers: one single-core process per core."""

from __future__ import annotations

import os

from conftest import load_script


def test_pinned_workers_run_one_per_core_each_on_its_own_core():
  bench = load_script("bench_learners")
  cores = sorted(os.sched_getaffinity(0))
  out = bench.pinned_labels(width=8, labels=2, base=30, supp=10, seeds=1)
  assert out["workers"] == len(cores) and out["labels"] == 2 * len(cores)
  # Each worker saw exactly one CPU, and together they cover this process's cores.
  assert all(len(c) == 1 for c in out["worker_cores"])
  assert sorted(c[0] for c in out["worker_cores"]) == cores
  assert out["labels_per_s"] > 0 and len(out["worker_seconds"]) == len(cores)
