"""Which rows each model of a ``train_many`` call computes on.

Full-batch training need not read the whole pool: a model's rows can be the dense
pool, the rows a *group* of models shares (one wide GEMM per layer for the group),
or its own points gathered. This module sizes and plans them; ``train_many`` runs
the plan.
"""

from __future__ import annotations

import math

import jax
import numpy as np

from metaval.learners.models import LearnerSpec

# Gathered training sets are padded to one of these sizes (or a multiple of the
# largest), so varying subset sizes reuse a handful of compiled programs.
GATHER_BUCKETS = (64, 128, 256, 512, 1024, 2048)


# Finer buckets, at most 1.5x apart, for solved coalitions that are random subsets
# of about one size (``metaval.games.utility``'s ``fine_buckets``: Banzhaf's halves):
# a half of 257-280 points is padded to 288, not 512, and a padded row costs what a
# real one does. On digits (500 points, 2 cores, one process alternating) Banzhaf ran
# 427-525 fits/s against 413-468 with powers of two, as many programs compiled. For
# permutation prefixes, which span every size, each bucket is one more program to
# compile: TMC-Shapley's first call took 26-30 s against 9-12 s (13-17 s with buckets
# 1.5x apart), for 0-20% faster calls after, so they keep powers of two.
FINE_BUCKETS = (64, 96, 128, 160, 192, 224, 256, 288, 320, 384, 448, 512, 640, 768, 1024, 1280,
                1536, 2048)  # fmt: skip


def gather_size(max_active: int, buckets: tuple[int, ...] = GATHER_BUCKETS) -> int:
  """The padded training-set size used for ``max_active`` points (a bucket of
  ``buckets``, or a multiple of the largest)."""
  for b in buckets:
    if max_active <= b:
      return b
  top = buckets[-1]
  return top * math.ceil(max_active / top)


def _plan_rows(
  masks: np.ndarray,
  chunk: int,
  pool_size: int,
  forced_union: bool,
  spec,
  rows: int | None = None,
  group: int | None = None,
):
  """Rows each model computes on in full-batch training: shared rows or its own.

  Shared rows keep the first layer one wide GEMM for a group of models: the dense
  pool (``pool_size`` rows), or each *group's* rows, the union of its models'
  training sets padded to a size bucket (paired seeds, and a base's or a pair's
  models, share all of them when they are neighbours in ``masks``). Groups are as
  many consecutive models as keep their activations in cache for the chunk's rows
  (``_group_size``), or, given ``group``, a divisor of it. Gathered rows (each model its own points, padded to a bucket)
  waste nothing but batch small per-model products, about 2.7x slower per row at
  width 32 on CPU; shared rows are chosen while they are at most
  ``_SHARED_PER_GATHERED`` times as many.

  Args:
    masks: ``[M, N]`` weights, M a multiple of ``chunk``.
    chunk: models per compiled batch.
    pool_size: N.
    forced_union: use the groups' rows whatever they cost.
    spec: the learner (its width sizes the groups).
    rows: with ``forced_union``, pad every group's rows to this many (when they
      fit), so that calls with different sets share one program.
    group: with ``forced_union``, models per group are a divisor of this (the
      caller knows which neighbours share rows), not chosen from the data.

  Returns:
    ``(gather, rows, group)``: a gather size (or None); for group rows the
    ``[M / group, U]`` row indices of each group, padded with -1 (else None); and
    the models per group.
  """
  active = masks > 0
  k = gather_size(int(active.sum(1).max()))

  def shared(g, size=None):  # each group's rows [M / g, U], padded with -1
    per_group = active.reshape(-1, g, active.shape[1]).any(1)
    most = int(per_group.sum(1).max())
    u = size if size and most <= size else gather_size(most)
    out = np.full((per_group.shape[0], u), -1, np.int64)
    for c, row in enumerate(per_group):
      nz = np.flatnonzero(row)
      out[c, : len(nz)] = nz
    return out

  if forced_union and group:  # the caller's grouping: one program for every call
    g = _divisor_at_most(group, _group_size(spec, rows or k, chunk))
    return None, shared(g, rows), g
  # Groups as many models as keep their activations in cache for the chunk's rows
  # (data-independent but for the size bucket, so calls share programs).
  u_chunk = gather_size(int(active.reshape(-1, chunk, active.shape[1]).any(1).sum(1).max()))
  g = _divisor_at_most(chunk, _group_size(spec, u_chunk, chunk))
  union = shared(g)
  u = union.shape[1]
  if forced_union or (u < pool_size and u <= _SHARED_PER_GATHERED * k):
    return None, union, g
  if pool_size <= _SHARED_PER_GATHERED * k:
    return None, None, _group_size(spec, pool_size, chunk)  # the dense pool
  return k, None, _group_size(spec, k, chunk)


# Gathered rows are worth this many shared rows (see ``_plan_rows``).
_SHARED_PER_GATHERED = 2


def _divisor_at_most(n: int, cap: int) -> int:
  """The largest divisor of ``n`` that is at most ``cap`` (at least 1)."""
  return max(d for d in range(1, max(1, min(n, cap)) + 1) if n % d == 0)


# Activations of one model group ([group, rows, width] f32) should fit in a core's
# L2 cache: measured on 2 shared EPYC cores (512 KiB L2), width-256 MLPs on 512
# rows trained 2-3x faster one model at a time than 8 vmapped together.
_CACHE_BYTES = 512 * 1024


def _group_size(spec: LearnerSpec, rows: int, chunk: int) -> int:
  """Models vmapped together per group (``chunk``: all at once) on this backend."""
  if spec.family != "mlp" or jax.default_backend() != "cpu":
    return chunk  # accelerators (and the small linear family) batch everything
  return max(1, min(chunk, _CACHE_BYTES // (4 * rows * spec.width)))


def _compact(masks: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
  """Dense weights ``[M, N]`` -> (indices ``[M, k]``, weights ``[M, k]``), zero-padded."""
  m = masks.shape[0]
  idx = np.zeros((m, k), np.int32)
  w = np.zeros((m, k), np.float32)
  for i in range(m):
    nz = np.flatnonzero(masks[i])
    idx[i, : len(nz)] = nz
    w[i, : len(nz)] = masks[i, nz]
  return idx, w
