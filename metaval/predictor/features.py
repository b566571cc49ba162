"""Element and set features for the value predictor.

A supplemental set S is valued *relative to* a base set B, so each element of S is
described by its raw input and label (padded to a common width so one model serves
several tasks) plus **relational** features computed against B: the distance to its
nearest B point (scaled by B's own typical nearest-neighbour distance), whether
that neighbour's label agrees, kNN label agreement and purity, duplicate flags,
and how common its class is in B and in S. Set-level statistics (log |S|, log |B|,
feature variance, label entropy, class balance, duplicate and agreement shares)
summarise the pair. Raw inputs do not transfer across base tasks (width and meaning
differ); the relational features do, which is what lets one predictor value
duplicates, label noise, constant inputs and random bits on kinds or tasks it has
not seen.

For the code task each element is a token window; its "input" is a fixed embedding
(hashed character unigram + bigram histogram, square-rooted and standardised by the
pool's statistics) and its "label" is the window's package.

Everything here is numpy, deterministic, and shared by training and the API.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import hashlib
import json

import numpy as np
import threadpoolctl

from metaval.data.tasks import LANGUAGE_MODEL, Task
from metaval.errors import MetavalError

FEATURE_VERSION = 2  # bump when features change (invalidates feature caches)
RAW_WIDTH = 64  # raw inputs are zero-padded (or hashed, for code) to this width
MAX_CLASSES = 16  # one-hot labels are padded to this many classes
CODE_BINS = RAW_WIDTH  # hashed n-gram histogram bins for code windows
KNN = 5
PROBE = 512  # B points used as leave-one-out queries (scale estimate, kNN proxies)
CLIP = 10.0  # scaled distances and raw inputs are clipped to [-CLIP, CLIP]

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

SET_FEATURES = (
  "log_size_s",
  "log_size_b",
  "log_ratio",
  "log_var_ratio",
  "label_entropy_s",
  "label_entropy_b",
  "class_balance_tv",
  "share_exact_dup",
  "share_near_dup",
  "share_nn_agrees",
  "mean_knn_agreement",
  "mean_log_nn_dist",
  "share_dup_within_set",
  "share_unique_rows",
  "log_num_classes",
  "log_feature_dim",
  "share_constant_rows",
  "log_novel_agreeing_mass",
  "share_far",
  "is_language_model",
  "share_of_union",
  "delta_loo_1nn_acc",
  "delta_loo_knn_acc",
  "delta_loo_kernel_acc",
  "delta_loo_kernel_loglik",
)
SET_DIM = len(SET_FEATURES)

FAMILIES = ("linear", "mlp", "lm")
LEARNER_FEATURES = (
  "log_params",
  "log_width",
  "depth",
  "log_steps",
  "log_lr",
  "log_features",
  "family_linear",
  "family_mlp",
  "family_lm",
)
LEARNER_DIM = len(LEARNER_FEATURES)


class FeatureError(MetavalError):
  """A supplemental or base set cannot be featurised (shape, NaN, empty, ...)."""


# ----------------------------------------------------------------------------
# Inputs to a fixed-width embedding.


def _code_hash_table() -> np.ndarray:
  # A fixed pseudo-random bin for every (previous, current) token pair; unigrams
  # use row 0 (previous token "0"), so one table serves both n-gram orders.
  rng = np.random.default_rng(20240611)
  return rng.integers(0, CODE_BINS, size=(256, 256)).astype(np.int32)


_CODE_TABLE = _code_hash_table()


def code_embedding(tokens: np.ndarray) -> np.ndarray:
  """Hashed character unigram + bigram histogram ``[n, T] -> [n, CODE_BINS]`` (sqrt)."""
  tokens = np.asarray(tokens, np.int64) % 256
  n, t = tokens.shape
  out = np.zeros((n, CODE_BINS), np.float64)
  rows = np.repeat(np.arange(n), t)
  np.add.at(out, (rows, _CODE_TABLE[0, tokens].reshape(-1)), 1.0)
  if t > 1:
    rows2 = np.repeat(np.arange(n), t - 1)
    bins = _CODE_TABLE[tokens[:, :-1], tokens[:, 1:]].reshape(-1)
    np.add.at(out, (rows2, bins), 1.0)
  out /= np.maximum(out.sum(1, keepdims=True), 1.0)
  return np.sqrt(out)


@dataclasses.dataclass
class TaskView:
  """A task's pool mapped into the fixed-width embedding, plus its statistics."""

  task: Task
  pool: np.ndarray  # [N, RAW_WIDTH] float32 embedded pool
  mu: np.ndarray  # embedding statistics used to standardise (code only)
  sd: np.ndarray

  @property
  def lm(self) -> bool:
    return self.task.kind == LANGUAGE_MODEL

  def embed(self, x) -> np.ndarray:
    """Maps raw inputs (features or token windows) of this task to ``[n, RAW_WIDTH]``."""
    x = np.asarray(x)
    task = self.task
    if self.lm:
      if x.ndim != 2 or x.shape[1] != task.x.shape[1]:
        raise FeatureError(
          f"task {task.name!r} expects token windows of shape [n, {task.x.shape[1]}]; got {x.shape}"
        )
      if not np.issubdtype(x.dtype, np.integer):
        raise FeatureError(f"task {task.name!r} expects integer tokens, got dtype {x.dtype}")
      if x.size and (x.min() < 0 or x.max() >= task.num_classes):
        raise FeatureError(f"token ids must be in [0, {task.num_classes}) for task {task.name!r}")
      e = (code_embedding(x) - self.mu) / self.sd  # whole window: input and target
    else:
      if x.ndim != 2 or x.shape[1] != task.feature_dim:
        raise FeatureError(
          f"task {task.name!r} expects inputs of width {task.feature_dim}; got shape {x.shape}"
        )
      x = x.astype(np.float64)
      if not np.all(np.isfinite(x)):
        raise FeatureError("supplemental inputs contain NaN or inf")
      if task.feature_dim > RAW_WIDTH:
        raise FeatureError(f"feature width {task.feature_dim} exceeds the predictor's {RAW_WIDTH}")
      e = np.zeros((x.shape[0], RAW_WIDTH))
      e[:, : task.feature_dim] = x
    return np.clip(e, -CLIP, CLIP).astype(np.float32)


_VIEWS: dict[tuple, TaskView] = {}


def task_view(task: Task) -> TaskView:
  """The (cached) embedded pool of ``task``."""
  key = (task.name, task.seed, task.x.shape)
  if key not in _VIEWS:
    if task.kind == LANGUAGE_MODEL:
      raw = code_embedding(task.x)
      mu, sd = raw.mean(0), raw.std(0)
      sd = np.where(sd < 1e-6, 1.0, sd)
    else:
      mu, sd = np.zeros(RAW_WIDTH), np.ones(RAW_WIDTH)
    view = TaskView(task=task, pool=np.zeros((0, RAW_WIDTH), np.float32), mu=mu, sd=sd)
    view.pool = view.embed(task.x)
    _VIEWS[key] = view
  return _VIEWS[key]


def embed_inputs(view: TaskView, x) -> np.ndarray:
  """Embeds (and validates) a set's inputs for ``view``'s task."""
  return view.embed(x)


def check_labels(view: TaskView, y, n: int) -> np.ndarray:
  """Validates labels ``[n]`` of a set for this task (0..num_groups-1)."""
  task = view.task
  k = len(task.group_names) if view.lm else task.num_classes
  y = np.asarray(y)
  if y.shape != (n,):
    raise FeatureError(f"labels must have shape [{n}] to match the inputs; got {y.shape}")
  if y.size and not np.issubdtype(y.dtype, np.integer):
    if not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
      raise FeatureError("labels must be integers (NaN or fractional values found)")
  y = y.astype(np.int64)
  if y.size and (y.min() < 0 or y.max() >= k):
    raise FeatureError(f"labels must be in [0, {k}) for task {task.name!r}")
  if k > MAX_CLASSES:
    raise FeatureError(f"task {task.name!r} has {k} classes; the predictor supports {MAX_CLASSES}")
  return y


def num_label_classes(task: Task) -> int:
  return len(task.group_names) if task.kind == LANGUAGE_MODEL else task.num_classes


# ----------------------------------------------------------------------------
# Relational features.


@functools.cache
def _blas() -> threadpoolctl.ThreadpoolController:
  return threadpoolctl.ThreadpoolController()  # scans the loaded libraries once


def sqdist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  # One thread: these matmuls are small, and multi-threaded BLAS on a shared
  # machine spends more time synchronising than computing.
  with _blas().limit(limits=1, user_api="blas"):
    # float64: exact duplicates must come out at distance ~0 (float32 rounding
    # of |a|^2 + |b|^2 - 2ab would hide them).
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
  return np.maximum(d, 0.0)


def row_keys(x: np.ndarray) -> list[bytes]:
  """Exact identity of each row: the bytes of its float32 values (``-0.0`` as ``0.0``).

  Exact duplicates are found by comparing these keys, never through a distance:
  ``|a|^2 + |b|^2 - 2ab`` loses exact zeros to round-off for large-magnitude rows.
  """
  x = np.ascontiguousarray(np.asarray(x, np.float32) + np.float32(0.0))
  return [r.tobytes() for r in x]


def _dup_flags(keys: list[bytes], counts: dict, own: int = 0) -> np.ndarray:
  """1 where a row's key occurs in ``counts`` more than ``own`` times."""
  return np.array([counts.get(k, 0) > own for k in keys], np.float32)


def _key_counts(keys: list[bytes]) -> dict:
  return collections.Counter(keys)


def _purity(nn_y: np.ndarray, k: int) -> np.ndarray:
  """Share of the most common label among each row's neighbours ``[n, knn]``."""
  if nn_y.size == 0:
    return np.zeros(len(nn_y))
  counts = np.zeros((len(nn_y), k))
  np.add.at(counts, (np.repeat(np.arange(len(nn_y)), nn_y.shape[1]), nn_y.reshape(-1)), 1.0)
  return counts.max(1) / nn_y.shape[1]


def _entropy(counts: np.ndarray, k: int) -> float:
  p = counts / max(counts.sum(), 1.0)
  p = p[p > 0]
  return float(-(p * np.log(p)).sum() / np.log(max(k, 2)))


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


def relational(xs, ys, base: BaseStats, *, is_base: bool) -> np.ndarray:
  """Relational features ``[n, len(RELATIONAL)]`` of a set against B.

  Args:
    xs: ``[n, RAW_WIDTH]`` embedded inputs.
    ys: ``[n]`` labels.
    base: statistics of B.
    is_base: the set *is* B: neighbours exclude the point itself.
  """
  n = len(ys)
  d = sqdist(xs, base.x)  # [n, n_B]
  if is_base:
    np.fill_diagonal(d, np.inf)
  nb = base.x.shape[0] - (1 if is_base else 0)
  out = np.zeros((n, len(RELATIONAL)), np.float32)
  if nb > 0:
    k = min(KNN, nb)
    order = np.argpartition(d, k - 1, axis=1)[:, :k] if k < d.shape[1] else np.argsort(d, 1)
    order = np.take_along_axis(order, np.argsort(np.take_along_axis(d, order, 1), 1), 1)[:, :k]
    exact = _dup_flags(row_keys(xs), base.keys, own=1 if is_base else 0)
    nn_d = np.where(exact > 0, 0.0, np.sqrt(d[np.arange(n), order[:, 0]]) / base.scale)
    nn_y = base.y[order]  # [n, k]
    agree = nn_y == ys[:, None]
    purity = _purity(nn_y, base.k)
    out[:, 0] = np.log1p(np.minimum(nn_d, CLIP))
    out[:, 1] = exact
    out[:, 2] = nn_d < 0.25
    out[:, 3] = agree[:, 0]
    out[:, 4] = agree.mean(1)
    out[:, 5] = purity
  else:
    out[:, 0] = np.log1p(CLIP)
  out[:, 6] = base.counts[ys] / max(base.counts.sum(), 1.0)
  s_counts = np.bincount(ys, minlength=base.k)
  out[:, 7] = s_counts[ys] / max(n, 1)
  if is_base:
    out[:, 8:10] = out[:, [0, 1]]
  elif n > 1:
    ds = sqdist(xs, xs)
    np.fill_diagonal(ds, np.inf)
    exact_s = _dup_flags(row_keys(xs), _key_counts(row_keys(xs)), own=1)
    within = np.where(exact_s > 0, 0.0, np.sqrt(ds.min(1)) / base.scale)
    out[:, 8] = np.log1p(np.minimum(within, CLIP))
    out[:, 9] = exact_s
  else:
    out[:, 8] = np.log1p(CLIP)
  out[:, 10] = np.log1p(np.minimum(np.sqrt(((xs - base.mean) ** 2).sum(1)) / base.radius, CLIP))
  out[:, 11] = 0.0 if is_base else 1.0
  return out


def element_features(xs, ys, rel, k: int) -> np.ndarray:
  """``[n, ELEM_DIM]``: raw embedding | one-hot label (padded) | relational."""
  n = len(ys)
  onehot = np.zeros((n, MAX_CLASSES), np.float32)
  onehot[np.arange(n), ys] = 1.0
  return np.concatenate([xs.astype(np.float32), onehot, rel], 1)


def knn_proxies(xs, ys, base: BaseStats) -> np.ndarray:
  """Closed-form proxies of the label: how adding S changes kNN classifiers on B.

  Each of B's probe points is classified leave-one-out by its neighbours in B and
  by its neighbours in B ∪ S (copies of the query itself in S left out as well, so
  a verbatim copy of B earns nothing); the features are the changes in 1-NN
  accuracy, k-NN majority accuracy, and accuracy and mean log-likelihood of the
  true class under a Gaussian-kernel classifier (bandwidth: B's median NN
  distance). Clean points grow these with |S|, wrong labels shrink them, points far
  from B leave them unchanged: a signal that carries across supplement kinds.

  Returns:
    ``[4]``: delta 1-NN accuracy, delta kNN accuracy, delta kernel accuracy, delta
    kernel log-likelihood.
  """
  k = base.k
  yq = base.y[base.probe]  # [n_p]
  d_b = base.probe_d  # [n_p, n_B]
  d_s = sqdist(base.x[base.probe], xs)  # [n_p, n_S]
  ids: dict = {}
  s_id = np.array([ids.setdefault(key, len(ids)) for key in row_keys(xs)])
  q_id = np.array([ids.get(key, -1) for key in row_keys(base.x[base.probe])])
  d_s = np.where(q_id[:, None] == s_id[None, :], np.inf, d_s)
  d_all = np.concatenate([d_b, d_s], 1)
  y_all = np.concatenate([base.y, ys])

  def knn_acc(d, y, kk):
    kk = min(kk, d.shape[1])
    order = np.argpartition(d, kk - 1, axis=1)[:, :kk] if kk < d.shape[1] else np.argsort(d, 1)
    fin = np.isfinite(np.take_along_axis(d, order, 1))
    votes = np.zeros((len(d), k))
    rows = np.repeat(np.arange(len(d)), order.shape[1])
    np.add.at(votes, (rows, y[order].reshape(-1)), fin.reshape(-1).astype(np.float64))
    nn1 = y[np.argmin(d, 1)] == yq
    return nn1.mean(), (votes.argmax(1) == yq).mean()

  def kernel(d, y):
    w = np.exp(-0.5 * np.minimum(d / base.scale**2, 1e4))  # [n_p, m]
    mass = np.zeros((len(d), k))
    for c in range(k):
      mass[:, c] = w[:, y == c].sum(1)
    p = (mass + 1e-3) / (mass.sum(1, keepdims=True) + 1e-3 * k)
    ll = np.log(p[np.arange(len(d)), yq])
    return (p.argmax(1) == yq).mean(), ll.mean()

  a1_b, ak_b = knn_acc(d_b, base.y, KNN)
  a1_u, ak_u = knn_acc(d_all, y_all, KNN)
  ka_b, ll_b = kernel(d_b, base.y)
  ka_u, ll_u = kernel(d_all, y_all)
  return np.array([a1_u - a1_b, ak_u - ak_b, ka_u - ka_b, ll_u - ll_b])


def set_features(xs, ys, rel, base: BaseStats, task: Task, proxies: bool = True) -> np.ndarray:
  """``[SET_DIM]`` hand-made statistics of the pair (also the ridge baseline's input).

  ``proxies=False`` leaves the four ``knn_proxies`` features at zero.
  """
  n, nb, k = len(ys), len(base.y), base.k
  s_counts = np.bincount(ys, minlength=k).astype(np.float64)
  var_s = float(xs.var(0).mean()) if n > 1 else 0.0
  unique = len({r.tobytes() for r in np.round(xs, 4)}) / n
  row_sd = xs.std(1)
  dup = rel[:, 1]  # exact duplicates of B
  novel_agree = ((1.0 - rel[:, 2]) * rel[:, 4]).sum()
  f = np.array(
    [
      np.log1p(n),
      np.log1p(nb),
      np.log(n / nb),
      np.log((var_s + 1e-3) / (base.var + 1e-3)),
      _entropy(s_counts, k),
      _entropy(base.counts, k),
      0.5 * np.abs(s_counts / n - base.counts / max(nb, 1)).sum(),
      dup.mean(),
      rel[:, 2].mean(),
      rel[:, 3].mean(),
      rel[:, 4].mean(),
      rel[:, 0].mean(),
      rel[:, 9].mean(),
      unique,
      np.log(k),
      np.log(task.x.shape[1]),
      (row_sd < 1e-3).mean(),
      np.log1p(novel_agree / nb * 100.0),
      (rel[:, 0] > np.log1p(3.0)).mean(),
      float(task.kind == LANGUAGE_MODEL),
      n / (n + nb),
      *(knn_proxies(xs, ys, base) if proxies else np.zeros(4)),
    ],
    np.float32,
  )
  return f


def learner_features(spec: dict, num_params: int) -> np.ndarray:
  """``[LEARNER_DIM]`` descriptor of a learner (log sizes, steps, lr, family)."""
  fam = spec.get("family", "mlp")
  if fam not in FAMILIES:
    raise FeatureError(f"unknown learner family {fam!r}; available: {', '.join(FAMILIES)}")
  return np.array(
    [
      np.log10(max(num_params, 1)),
      np.log2(max(spec.get("width", 1), 1)),
      float(spec.get("depth", 1)),
      np.log10(max(spec.get("steps", 1), 1)),
      np.log10(max(spec.get("lr", 1e-2), 1e-8)),
      np.log2(1 + spec.get("features", 0)),
    ]
    + [float(fam == f) for f in FAMILIES],
    np.float32,
  )


# ----------------------------------------------------------------------------
# Pairs to padded arrays.


@dataclasses.dataclass
class PairFeatures:
  """Featurised pairs, padded to fixed set sizes (the model's input).

  Attributes:
    s: ``[P, n_s, ELEM_DIM]`` supplement elements (a subsample if S is larger).
    s_mask: ``[P, n_s]`` 1 for real elements, 0 for padding.
    b: ``[P, n_b, ELEM_DIM]`` base elements (a subsample if B is larger).
    b_mask: ``[P, n_b]``.
    sets: ``[P, SET_DIM]`` set statistics (computed on the full sets).
    learner: ``[P, LEARNER_DIM]``.
    s_size: ``[P]`` true |S|.
  """

  s: np.ndarray
  s_mask: np.ndarray
  b: np.ndarray
  b_mask: np.ndarray
  sets: np.ndarray
  learner: np.ndarray
  s_size: np.ndarray

  def __len__(self):
    return len(self.s_size)

  def take(self, idx) -> PairFeatures:
    return PairFeatures(**{f.name: getattr(self, f.name)[idx] for f in dataclasses.fields(self)})

  def arrays(self) -> dict[str, np.ndarray]:
    return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

  @staticmethod
  def concatenate(parts: list[PairFeatures]) -> PairFeatures:
    return PairFeatures(
      **{
        f.name: np.concatenate([getattr(p, f.name) for p in parts])
        for f in dataclasses.fields(PairFeatures)
      }
    )


def _subsample(n: int, cap: int, seed: int) -> np.ndarray:
  if n <= cap:
    return np.arange(n)
  return np.sort(np.random.default_rng(seed).choice(n, cap, replace=False))


class Featurizer:
  """Turns (task, B, S, learner) into padded ``PairFeatures``, caching per-B work."""

  def __init__(self, max_s: int = 128, max_b: int = 128, proxies: bool = True):
    self.max_s = int(max_s)
    self.max_b = int(max_b)
    self.proxies = bool(proxies)  # False: the kNN proxy set features are zero
    self._base_cache: dict[str, tuple[BaseStats, np.ndarray]] = {}

  def base(self, view: TaskView, xb: np.ndarray, yb: np.ndarray):
    """``(BaseStats, [n_b_sub, ELEM_DIM])`` of a base set, cached by content."""
    h = hashlib.sha1(xb.tobytes() + yb.astype(np.int64).tobytes()).hexdigest()
    key = f"{view.task.name}:{h}"
    if key not in self._base_cache:
      k = num_label_classes(view.task)
      stats = base_stats(xb, yb, k)
      sub = _subsample(len(yb), self.max_b, seed=0)
      rel = relational(xb[sub], yb[sub], stats, is_base=False)
      # Neighbours of a subsampled base point must exclude itself: recompute those
      # features against B with the point's own distance masked.
      rel_self = _relational_self(xb, yb, sub, stats)
      rel[:, :6] = rel_self[:, :6]
      rel[:, 7] = rel[:, 6]
      rel[:, 8:10] = rel[:, 0:2]
      rel[:, 11] = 0.0
      elems = element_features(xb[sub], yb[sub], rel, k)
      if len(self._base_cache) > 256:
        self._base_cache.clear()
      self._base_cache[key] = (stats, elems)
    return self._base_cache[key]

  def pair(self, view: TaskView, xb, yb, xs, ys, learner: np.ndarray, seed: int = 0):
    """Features of one pair as ``PairFeatures`` with P = 1."""
    if len(ys) == 0:
      raise FeatureError("the supplemental set is empty")
    stats, b_elems = self.base(view, xb, yb)
    rel = relational(xs, ys, stats, is_base=False)
    sets = set_features(xs, ys, rel, stats, view.task, proxies=self.proxies)
    sub = _subsample(len(ys), self.max_s, seed)
    s_elems = element_features(xs[sub], ys[sub], rel[sub], stats.k)
    s = np.zeros((1, self.max_s, ELEM_DIM), np.float32)
    s[0, : len(sub)] = s_elems
    s_mask = np.zeros((1, self.max_s), np.float32)
    s_mask[0, : len(sub)] = 1.0
    b = np.zeros((1, self.max_b, ELEM_DIM), np.float32)
    b[0, : len(b_elems)] = b_elems
    b_mask = np.zeros((1, self.max_b), np.float32)
    b_mask[0, : len(b_elems)] = 1.0
    return PairFeatures(
      s=s,
      s_mask=s_mask,
      b=b,
      b_mask=b_mask,
      sets=sets[None],
      learner=np.asarray(learner, np.float32)[None],
      s_size=np.array([len(ys)], np.int64),
    )


def _relational_self(xb, yb, sub, stats: BaseStats) -> np.ndarray:
  n = len(sub)
  d = sqdist(xb[sub], xb)
  d[np.arange(n), sub] = np.inf
  nb = len(yb) - 1
  out = np.zeros((n, 6), np.float32)
  if nb <= 0:
    out[:, 0] = np.log1p(CLIP)
    return out
  k = min(KNN, nb)
  order = np.argsort(d, 1)[:, :k]
  exact = _dup_flags(row_keys(xb[sub]), stats.keys, own=1)  # a copy of another B point
  nn_d = np.where(exact > 0, 0.0, np.sqrt(d[np.arange(n), order[:, 0]]) / stats.scale)
  nn_y = yb[order]
  agree = nn_y == yb[sub][:, None]
  out[:, 0] = np.log1p(np.minimum(nn_d, CLIP))
  out[:, 1] = exact
  out[:, 2] = nn_d < 0.25
  out[:, 3] = agree[:, 0]
  out[:, 4] = agree.mean(1)
  out[:, 5] = _purity(nn_y, stats.k)
  return out


def featurize_labels(labels, featurizer: Featurizer, task: Task | None = None) -> PairFeatures:
  """Featurises every pair of a ``LabelSet`` (one task)."""
  from metaval.data import get_task
  from metaval.learners.models import LearnerSpec, num_params

  task = task or get_task(labels.task, seed=labels.task_seed)
  view = task_view(task)
  parts = []
  lcache: dict[str, np.ndarray] = {}
  for i in range(len(labels)):
    bi = np.asarray(labels.base_indices[i], np.int64)
    xb = view.pool[bi]
    yb = np.asarray(task.y[bi], np.int64)
    xs = embed_inputs(view, labels.supp_x[i])
    ys = np.asarray(labels.supp_y[i], np.int64)
    lj = str(labels.learner[i])
    if lj not in lcache:
      spec = json.loads(lj)
      n_params = int(labels.learner_params[i])
      if n_params <= 0:
        in_dim = 0 if view.lm else task.feature_dim
        known = {k: v for k, v in spec.items() if k in LearnerSpec.__dataclass_fields__}
        n_params = num_params(LearnerSpec(**known), in_dim, task.num_classes)
      lcache[lj] = learner_features(spec, n_params)
    parts.append(featurizer.pair(view, xb, yb, xs, ys, lcache[lj], seed=int(labels.pair_id[i])))
  return PairFeatures.concatenate(parts)
