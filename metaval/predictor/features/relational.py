"""Relational features: each element of a set described against the base set B.

The distance to its nearest B point (scaled by B's own typical nearest-neighbour
distance), whether that neighbour's label agrees, kNN label agreement and purity,
duplicate flags, and how common its class is in B and in S. Unlike raw inputs these
transfer across base tasks, which is what lets one predictor value duplicates, label
noise, constant inputs and random bits on kinds or tasks it has not seen.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import functools

import numpy as np
import threadpoolctl

from metaval.predictor.features.inputs import CLIP, MAX_CLASSES, RAW_WIDTH, FeatureError
from metaval.util.nearest import nearest
from metaval.util.rowkeys import input_keys, key_list

KNN = 5
PROBE = 512  # B points used as leave-one-out queries (scale estimate, kNN proxies)
NEAR_DUP = 0.25  # the ``near_dup`` flag: nearest B point within this many B scales
BLOCK = 4_000_000  # distances held at once when a set is compared with B or itself

RELATIONAL = (
  "log_nn_dist",
  "exact_dup",
  "near_dup",
  "nn_label_agrees",
  "knn_agreement",
  "knn_purity",
  "class_share_in_base",
  "class_share_in_set",
  "log_nn_dist_within_set",
  "dup_within_set",
  "log_dist_to_base_mean",
  "is_supplement",
)
ELEM_DIM = RAW_WIDTH + MAX_CLASSES + len(RELATIONAL)


@functools.cache
def _blas() -> threadpoolctl.ThreadpoolController:
  return threadpoolctl.ThreadpoolController()  # scans the loaded libraries once


_ONE_THREAD = False  # True inside ``one_blas_thread``


@contextlib.contextmanager
def one_blas_thread():
  """BLAS on one thread for the block; nested blocks cost nothing.

  The controller scans the loaded libraries once (``_blas``, cached); setting and
  restoring the limit then costs about 10 µs (measured 2026-12-02). Callers that
  value many sets still wrap the whole loop once.
  """
  global _ONE_THREAD
  if _ONE_THREAD:
    yield
    return
  with _blas().limit(limits=1, user_api="blas"):
    _ONE_THREAD = True
    try:
      yield
    finally:
      _ONE_THREAD = False


def sqdist(
  a: np.ndarray, b: np.ndarray, b_sq: np.ndarray | None = None, a_sq: np.ndarray | None = None
) -> np.ndarray:
  """Squared distances ``[n_a, n_b]`` in float64; ``b_sq`` / ``a_sq``: ``b``'s / ``a``'s
  squared norms if already known (``BaseStats.sq``, a query's evaluation set)."""
  # One thread: these matmuls are small, and multi-threaded BLAS on a shared
  # machine spends more time synchronising than computing.
  with one_blas_thread():
    # float64: exact duplicates must come out at distance ~0 (float32 rounding
    # of |a|^2 + |b|^2 - 2ab would hide them).
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    b_sq = (b * b).sum(1) if b_sq is None else b_sq
    a_sq = (a * a).sum(1) if a_sq is None else a_sq
    # ``(|a|^2 + |b|^2) - 2ab`` in place: the same roundings, two fewer temporaries.
    d = a_sq[:, None] + b_sq[None, :]
    ab = a @ b.T
    ab *= 2.0
    d -= ab
  return np.maximum(d, 0.0, out=d)


def row_keys(x: np.ndarray) -> list[bytes]:
  """Exact identity of each row: the bytes of its float32 values (``-0.0`` as ``0.0``)."""
  return key_list(input_keys(x, np.float32))


def _dup_flags(keys: list[bytes], counts: dict, own: int = 0) -> np.ndarray:
  """1 where a row's key occurs in ``counts`` more than ``own`` times."""
  return np.array([counts.get(k, 0) > own for k in keys], np.float32)


def _key_counts(keys: list[bytes]) -> dict:
  return collections.Counter(keys)


def _purity(nn_y: np.ndarray, k: int) -> np.ndarray:
  """Share of the most common label among each row's neighbours ``[n, knn]``."""
  if nn_y.size == 0:
    return np.zeros(len(nn_y))
  rows = np.arange(len(nn_y))[:, None] * k
  counts = np.bincount((rows + nn_y).reshape(-1), minlength=len(nn_y) * k).reshape(len(nn_y), k)
  return counts.max(1) / nn_y.shape[1]


@dataclasses.dataclass
class BaseStats:
  """What every query against one base set reuses (computed once per B)."""

  x: np.ndarray  # [n_B, RAW_WIDTH] embedded
  y: np.ndarray  # [n_B]
  scale: float  # median leave-one-out NN distance within B
  mean: np.ndarray
  radius: float
  var: float
  counts: np.ndarray  # [k] class counts
  k: int
  keys: dict  # exact row key -> multiplicity in B
  probe: np.ndarray  # [n_p] B points used as leave-one-out queries of the kNN proxies
  probe_d: np.ndarray  # [n_p, n_B] squared distances, the query itself at inf
  x64: np.ndarray = dataclasses.field(init=False, repr=False)  # ``x`` as float64
  sq: np.ndarray = dataclasses.field(init=False, repr=False)  # its squared norms
  # ``[d + 1, n_B]``: ``-2 x`` over the squared norms; ``[a, 1]`` times it is each
  # row's ``|b|^2 - 2ab``, its squared distance to B's points less ``|a|^2``.
  lifted: np.ndarray = dataclasses.field(init=False, repr=False)

  def __post_init__(self):
    self.x64 = np.asarray(self.x, np.float64)
    self.sq = (self.x64 * self.x64).sum(1)
    self.lifted = np.ascontiguousarray(np.r_[-2.0 * self.x64.T, self.sq[None]])

  def nearest(self, xs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``k`` nearest points of B and their squared distances, nearest first.

    One product ranks all of B (the row's own norm, the same along the row, is added
    to the ``k`` kept only), where ``sqdist`` then ``nearest`` would pass over the
    ``[n, n_B]`` distances three more times. Rows go in blocks of at most ``BLOCK``
    distances, so a large set never holds all of them at once.
    """
    a = np.asarray(xs, np.float64)
    step = max(1, BLOCK // max(1, len(self.y)))
    order = np.empty((len(a), min(k, len(self.y))), np.int64)
    near = np.empty(order.shape)
    for i in range(0, len(a), step):
      with one_blas_thread():
        part = np.c_[a[i : i + step], np.ones(len(a[i : i + step]))] @ self.lifted
      order[i : i + step], near[i : i + step] = nearest(part, k, scratch=True)
    near += (a * a).sum(1)[:, None]
    return order, np.maximum(near, 0.0, out=near)


def _nearest_within(xs: np.ndarray) -> np.ndarray:
  """``[n]`` each row's squared distance to the nearest *other* row of ``xs`` (``n > 1``),
  in blocks of rows of at most ``BLOCK`` distances."""
  n = len(xs)
  step = max(1, BLOCK // n)
  out = np.empty(n)
  for i in range(0, n, step):
    ds = sqdist(xs[i : i + step], xs)
    ds[np.arange(len(ds)), np.arange(i, i + len(ds))] = np.inf
    out[i : i + step] = ds.min(1)
  return out


def base_stats(xb: np.ndarray, yb: np.ndarray, k: int) -> BaseStats:
  if len(yb) == 0:
    raise FeatureError("the base set is empty")
  n = len(yb)
  # Subsample very large bases for the scale estimate only.
  probe = np.arange(n) if n <= PROBE else np.random.default_rng(0).choice(n, PROBE, replace=False)
  d = sqdist(xb[probe], xb)
  d[np.arange(len(probe)), probe] = np.inf  # leave the query itself out
  if n > 1:
    nn = np.sqrt(d.min(1))
    nn = nn[np.isfinite(nn) & (nn > 0)]
    scale = float(np.median(nn)) if nn.size else 1.0
  else:
    scale = 1.0
  mean = xb.mean(0)
  radius = float(np.sqrt(((xb - mean) ** 2).sum(1)).mean()) or 1.0
  return BaseStats(
    x=xb,
    y=yb,
    scale=max(scale, 1e-6),
    mean=mean,
    radius=max(radius, 1e-6),
    var=float(xb.var(0).mean()) if n > 1 else 1.0,
    counts=np.bincount(yb, minlength=k).astype(np.float64),
    k=k,
    keys=_key_counts(row_keys(xb)),
    probe=probe,
    probe_d=d,
  )


def relational(xs, ys, base: BaseStats, *, is_base: bool, sizes=None, within=True) -> np.ndarray:
  """Relational features ``[n, len(RELATIONAL)]`` of a set against B.

  Args:
    xs: ``[n, RAW_WIDTH]`` embedded inputs.
    ys: ``[n]`` labels.
    base: statistics of B.
    is_base: the set *is* B: neighbours exclude the point itself.
    sizes: the rows are several sets laid end to end, of these sizes (default: one
      set); the features against B are the same row by row, the within-set ones
      (class share, nearest point, copies) are each set's own.
    within: compute ``log_nn_dist_within_set`` (quadratic in a set's size: a set of
      100,000 points costs most of a minute); ``False`` leaves it at 0 for callers
      that do not read it.
  """
  n = len(ys)
  sizes = np.array([n] if sizes is None else sizes, np.int64)
  if is_base and len(sizes) > 1:
    raise ValueError("is_base describes B itself: one set")
  keys = row_keys(xs)
  nb = base.x.shape[0] - (1 if is_base else 0)
  out = np.zeros((n, len(RELATIONAL)), np.float32)
  if nb > 0:
    k = min(KNN, nb)
    if is_base:  # B against itself: each point's own distance left out
      d = sqdist(xs, base.x64, base.sq)
      np.fill_diagonal(d, np.inf)
      order, near = nearest(d, k)
    else:
      order, near = base.nearest(xs, k)
    exact = _dup_flags(keys, base.keys, own=1 if is_base else 0)
    nn_d = np.where(exact > 0, 0.0, np.sqrt(near[:, 0]) / base.scale)
    nn_y = base.y[order]  # [n, k]
    agree = nn_y == ys[:, None]
    purity = _purity(nn_y, base.k)
    out[:, 0] = np.log1p(np.minimum(nn_d, CLIP))
    out[:, 1] = exact
    out[:, 2] = nn_d < NEAR_DUP
    out[:, 3] = agree[:, 0]
    out[:, 4] = agree.mean(1)
    out[:, 5] = purity
  else:
    out[:, 0] = np.log1p(CLIP)
  out[:, 6] = base.counts[ys] / max(base.counts.sum(), 1.0)
  own = np.repeat(np.arange(len(sizes)), sizes) * base.k + ys  # (set, class) of each row
  out[:, 7] = np.bincount(own, minlength=len(sizes) * base.k)[own] / np.repeat(
    np.maximum(sizes, 1), sizes
  )
  if is_base:
    out[:, 8:10] = out[:, [0, 1]]
  else:
    for a, b in zip(np.cumsum(sizes) - sizes, np.cumsum(sizes)):
      if b - a > 1:
        exact_s = _dup_flags(keys[a:b], _key_counts(keys[a:b]), own=1)
        if within:
          near = np.sqrt(_nearest_within(xs[a:b])) / base.scale
          out[a:b, 8] = np.log1p(np.minimum(np.where(exact_s > 0, 0.0, near), CLIP))
        out[a:b, 9] = exact_s
      elif within:
        out[a:b, 8] = np.log1p(CLIP)
  out[:, 10] = np.log1p(np.minimum(np.sqrt(((xs - base.mean) ** 2).sum(1)) / base.radius, CLIP))
  out[:, 11] = 0.0 if is_base else 1.0
  return out


def element_features(xs, ys, rel, k: int) -> np.ndarray:
  """``[n, ELEM_DIM]``: raw embedding | one-hot label (padded) | relational."""
  n = len(ys)
  onehot = np.zeros((n, MAX_CLASSES), np.float32)
  onehot[np.arange(n), ys] = 1.0
  return np.concatenate([xs.astype(np.float32), onehot, rel], 1)


def relational_self(xb, yb, sub, stats: BaseStats) -> np.ndarray:
  """The first six relational features of B's points ``sub`` against B without themselves.

  Args:
    xb: ``[n_B, RAW_WIDTH]`` embedded inputs of B.
    yb: ``[n_B]`` labels of B.
    sub: indices of the B points to describe.
    stats: statistics of B.

  Returns:
    ``[len(sub), 6]`` (distance, duplicate and neighbour-label features).
  """
  n = len(sub)
  d = sqdist(xb[sub], xb)
  d[np.arange(n), sub] = np.inf
  nb = len(yb) - 1
  out = np.zeros((n, 6), np.float32)
  if nb <= 0:
    out[:, 0] = np.log1p(CLIP)
    return out
  k = min(KNN, nb)
  order, near = nearest(d, k)
  exact = _dup_flags(row_keys(xb[sub]), stats.keys, own=1)  # a copy of another B point
  nn_d = np.where(exact > 0, 0.0, np.sqrt(near[:, 0]) / stats.scale)
  nn_y = yb[order]
  agree = nn_y == yb[sub][:, None]
  out[:, 0] = np.log1p(np.minimum(nn_d, CLIP))
  out[:, 1] = exact
  out[:, 2] = nn_d < NEAR_DUP
  out[:, 3] = agree[:, 0]
  out[:, 4] = agree.mean(1)
  out[:, 5] = _purity(nn_y, stats.k)
  return out
