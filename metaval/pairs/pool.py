"""The one way to build a training pool with appended points.

S's points that are pool points with the pool's own label become extra weight on
the pool (a duplicate of a B point counts twice). Every other S point (a flipped
label, a synthetic input) is appended to a copy of the pool; identical appended
rows of one pair are merged into one row whose weight is their count (a constant
set is one weighted point). Masks over the extended pool hold multiplicities.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from metaval.data.tasks import Task
from metaval.pairs.pairs import Pairs, PairsError
from metaval.util.rowkeys import row_keys


def dedup(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Unique (x, y) rows in first-appearance order with their counts ``[u]`` float32."""
  if len(y) == 0:
    return x, y, np.zeros((0,), np.float32)
  # Rows compared by value as float64 (-0.0 equal to 0.0), keyed by their bytes:
  # a dict keeps first appearances in order without a sort.
  keys = row_keys(x.reshape(len(y), -1), y)
  raw, size = keys.tobytes(), keys.shape[1]
  seen: dict[bytes, int] = {}
  first, counts = [], []
  for i in range(len(y)):
    j = seen.setdefault(raw[i * size : (i + 1) * size], len(first))
    if j == len(first):
      first.append(i)
      counts.append(0)
    counts[j] += 1
  first = np.asarray(first, np.int64)
  return x[first], y[first], np.asarray(counts, np.float32)


def split_supplement(task: Task, pairs: Pairs, p: int) -> tuple[np.ndarray, tuple]:
  """Pair ``p``'s S as ``(pool weights [N], appended (x, y, counts))``."""
  w = np.zeros(task.pool_size, np.float32)
  exact = pairs.pool_exact(p, task)
  idx = np.asarray(pairs.supp_indices[p])
  np.add.at(w, idx[exact].astype(np.int64), 1.0)
  x, y = np.asarray(pairs.supp_x[p]), np.asarray(pairs.supp_y[p])
  return w, dedup(x[~exact], y[~exact])


def base_weights(task: Task, pairs: Pairs) -> np.ndarray:
  """``[n_bases, N]`` multiplicity of each pool point in each base."""
  out = np.zeros((len(pairs.bases), task.pool_size), np.float32)
  for b, idx in enumerate(pairs.bases):
    np.add.at(out[b], np.asarray(idx, np.int64), 1.0)
  return out


def extended_task(task: Task, extras, capacity: int) -> Task:
  """A copy of ``task`` with the appended points and zero rows up to ``capacity``.

  Args:
    task: the base task.
    extras: ``(x, y, counts)`` triples, appended in order.
    capacity: appended rows in all (>= the extras' total); padding rows weigh 0
      in every mask, so one padded shape serves many groups of pairs.

  Returns:
    The extended task; appended rows have group and file -1.
  """
  used = sum(len(e[2]) for e in extras)
  if used > capacity:
    raise PairsError(f"{used} appended points exceed the capacity {capacity}")
  xs = [task.x] + [e[0].astype(task.x.dtype) for e in extras]
  ys = [task.y] + [e[1].astype(np.int32) for e in extras]
  xs.append(np.zeros((capacity - used, *task.x.shape[1:]), task.x.dtype))
  ys.append(np.zeros((capacity - used,), np.int32))
  x, y = np.concatenate(xs), np.concatenate(ys)
  fill = np.full(capacity, -1, np.int32)
  return dataclasses.replace(
    task,
    x=x,
    y=np.maximum(y, 0),  # synthetic code windows carry group -1; labels unused by the LM
    groups=np.concatenate([task.groups, fill]),
    files=np.concatenate([task.files, fill]),
  )


def training_pool(task: Task, pairs: Pairs) -> tuple[Task, np.ndarray, np.ndarray]:
  """One extended pool holding every pair's appended points, and the masks.

  Returns:
    ``(extended_task, base_masks [P, N'], supp_masks [P, N'])``: multiplicities
    of B's and S's points over the extended pool (S may duplicate B's points, so
    pair p trains B ∪ S on ``base_masks[p] + supp_masks[p]``).

  Raises:
    PairsError: a supplement is empty.
  """
  n, p_count = task.pool_size, len(pairs)
  bw = base_weights(task, pairs)
  pool_w, extras = [], []
  for p in range(p_count):
    w, e = split_supplement(task, pairs, p)
    pool_w.append(w)
    extras.append(e)
  total = sum(len(e[2]) for e in extras)
  ext = extended_task(task, extras, total) if total else task
  base = np.zeros((p_count, n + total), np.float32)
  supp = np.zeros_like(base)
  offset = n
  for p in range(p_count):
    base[p, :n] = bw[pairs.base_of[p]]
    supp[p, :n] = pool_w[p]
    cnt = extras[p][2]
    supp[p, offset : offset + len(cnt)] = cnt
    offset += len(cnt)
  if np.any(supp.sum(1) == 0):
    raise PairsError("a supplement is empty; every S needs at least one point")
  return ext, base, supp


def union_pool(task: Task, pairs: Pairs, p: int, size: int | None = None):
  """A task whose pool is pair ``p``'s B ∪ S alone: B's points, S's, then padding.

  The compact pool the per-point games train on (players are S's points, or all
  of B ∪ S). Zero padding up to ``size`` lets one compiled program serve pairs of
  different sizes; padding rows must get weight 0 in every mask.

  Args:
    task: the base task.
    pairs: the pairs.
    p: which pair.
    size: rows in all (default ``|B| + |S|``: no padding).

  Returns:
    ``(task', players [size], weights [size])``: B and padding are background
    (player -1), S's i-th point is player i; padding weighs 0, B and S weigh 1.
  """
  base = pairs.base(p)
  sx, sy = np.asarray(pairs.supp_x[p]), np.asarray(pairs.supp_y[p])
  n_b, n_s = len(base), len(sy)
  size = n_b + n_s if size is None else int(size)
  if n_b + n_s > size:
    raise PairsError(f"B ∪ S has {n_b + n_s} points, more than the padded size {size}")
  pad = size - n_b - n_s
  x = np.concatenate([task.x[base], sx, np.zeros((pad, *task.x.shape[1:]), task.x.dtype)])
  y = np.concatenate([task.y[base], sy, np.zeros(pad, np.int32)]).astype(np.int32)
  sub = dataclasses.replace(
    task, x=x.astype(task.x.dtype), y=y, groups=y.copy(), files=np.arange(size, dtype=np.int32)
  )
  players = np.concatenate([np.full(n_b, -1), np.arange(n_s), np.full(pad, -1)]).astype(np.int64)
  weights = np.concatenate([np.ones(n_b + n_s), np.zeros(pad)]).astype(np.float32)
  return sub, players, weights
