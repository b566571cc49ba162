"""Query-time evidence for the zero-shot value model, defined for every tabular task.

A ``Context`` holds what depends on the base set B and the evaluation set T alone —
B's standardisation, its Gram matrix, class sums, distances from T to B, optimal-
transport samples, the relational statistics of ``metaval.predictor.features`` —
so that valuing one supplement S costs only S's own updates:

* **cheap retrains**: ridge (one-vs-rest least squares, closed form: B's Gram matrix
  plus S's), k-NN (1 and 5 neighbours, a Gaussian kernel), nearest centroid, and
  softmax regression twice (``metaval.zeroshot.softmax``): 25 further gradient steps
  from B's fit (over at most ``LOGIT_POINTS`` of B's points, weighted) and one damped
  Newton step from it (B's per-class Hessian blocks cached); each fitted on B and on
  B ∪ S and scored on T (``metaval.zeroshot.scores``). Their gains are features and,
  one by one, the baselines the model must beat.
* **optimal transport** (POT): how much closer B ∪ S is to T than B, with and without
  a label-mismatch cost, and S's own distance to T.
* **relational set statistics** (duplicates, label agreement with B's neighbours,
  spread, class balance; ``metaval.predictor.features``).
* **scale**: sizes, width, classes, the base accuracies (headroom) and the learner.

Inputs are raw: B's mean and standard deviation standardise B, S and T.

Many supplements are valued together (``features_many``, ``rank()``): laid end to end,
each per-point step runs once over all of them and the fits are batched products, with
each row what its supplement gets alone (to rounding; tested).
"""

from __future__ import annotations

import functools
import types
import zlib

import numpy as np

from metaval.data.transform import centre_scale
from metaval.predictor import features as PF
from metaval.util import threads
from metaval.util.nearest import nearest
from metaval.zeroshot import scores as S
from metaval.zeroshot import softmax as SM
from metaval.zeroshot.checks import FAR_RMS, SupplementChecks  # noqa: F401  (FAR_RMS: public here)
from metaval.zeroshot.inputs import (
  FeatureError,
  as_arrays,
  label_kind,
)

MAX_CLASSES = 50  # labels beyond this many distinct classes are refused
MAX_WIDTH = 512  # inputs up to this wide are used whole; wider ones are projected to it
PROJECT_ROWS = 2_000  # B's rows (a stratified sample) the projection is fitted on, with T's
MAX_EVAL = 300  # evaluation points the proxies score on (stratified subsample)
OT_POINTS = 16  # points per side of each transport problem
LOGIT_POINTS = 256  # B's points the stepped proxy runs over (a stratified, weighted sample)
Z_CLIP = 1e6  # standardised inputs are clipped here: squared distances stay finite
CHUNK = 1_000_000  # numbers in the largest intermediate of one batch of supplements (8 MB)
# Threads that value batches of supplements at once (their NumPy work releases the GIL).
THREADS = min(2, threads.usable_cores())

# The single-proxy gains (each also a baseline in E2), in feature order.
PROXIES = (
  "ridge_acc",
  "ridge_margin",
  "knn1_acc",
  "knn5_acc",
  "kernel_ll",
  "centroid_acc",
  "logit_acc",
  "logit_ll",
  "newton_acc",
  "newton_ll",
  "ot_gain",
  "ot_label_gain",
)
_LOGIT = slice(PROXIES.index("logit_acc"), PROXIES.index("logit_ll") + 1)  # the stepped fit's
OTHER = (
  "ot_supp_ratio",
  "log_n_base",
  "log_n_supp",
  "log_ratio",
  "log_width",
  "log_classes",
  "base_ridge_acc",
  "base_knn5_acc",
  "base_logit_acc",
  "chance",
  "unknown_label_share",
)
FEATURE_NAMES = (
  PROXIES
  + OTHER
  + tuple(f"set_{i}" for i in range(PF.SET_DIM))
  + tuple(f"learner_{i}" for i in range(PF.LEARNER_DIM))
)


def _runs(sizes, cost, budget: int, pad_rows: int = 0) -> list[tuple[int, int]]:
  """Consecutive runs ``(i, j)`` of items whose summed ``cost`` stays within ``budget``
  (an item alone may exceed it); with ``pad_rows``, also ``pad_rows`` times the run's
  length times its largest ``sizes`` (a ``[pad_rows, items, largest]`` padded array)."""
  runs, i = [], 0
  while i < len(sizes):
    j, total, big = i + 1, cost[i], sizes[i]
    while j < len(sizes):
      big_j = max(big, sizes[j])
      if total + cost[j] > budget or pad_rows * (j + 1 - i) * big_j > budget:
        break
      total, big, j = total + cost[j], big_j, j + 1
    runs.append((i, j))
    i = j
  return runs


def _digest(y: np.ndarray) -> int:
  """A 32-bit checksum of a set's class ids (seeds its subsamples: the same set draws
  the same points whatever the units of its inputs)."""
  return zlib.crc32(np.ascontiguousarray(y, np.int64).tobytes())


def _stratified(y: np.ndarray, m: int, rng: np.random.Generator) -> np.ndarray:
  """``m`` indices of ``y`` drawn class by class in proportion, at least one of each
  class (all if ``len(y) <= m``), sorted: one permutation, then each class's first."""
  if len(y) <= m:
    return np.arange(len(y))
  if y.dtype.kind in "iu" and 0 <= y.min() and y.max() <= 4 * len(y):  # class ids: counted
    counts = np.bincount(y)
    key, counts = y, counts[counts > 0]
  else:
    _, key, counts = np.unique(y, return_inverse=True, return_counts=True)
  take = np.minimum(np.maximum(1, np.round(m * counts / len(y))), counts)
  perm = rng.permutation(len(y))
  by_class = perm[np.argsort(key.reshape(-1)[perm], kind="stable")]  # classes in turn, shuffled
  start = np.cumsum(counts) - counts
  rank = np.arange(len(y)) - np.repeat(start, counts)
  return np.sort(by_class[rank < np.repeat(take, counts)])


class Context(SupplementChecks):
  """What every query against one (B, T) pair reuses; ``features(S)`` values one S.

  Args:
    base: ``(x_B, y_B)`` raw inputs and labels of the base set.
    eval: ``(x_T, y_T)`` the evaluation set; scored on at most ``MAX_EVAL`` of its
      points (a stratified subsample).
    seed: seed of the subsamples.
  """

  def __init__(self, base, eval, seed: int = 0):
    xb, yb = as_arrays(base, "base")
    xe, ye = as_arrays(eval, "eval")
    if xe.shape[1] != xb.shape[1]:
      raise FeatureError(f"eval has {xe.shape[1]} features but base has {xb.shape[1]}")
    self.classes = np.unique(np.concatenate([yb, ye]))
    if len(self.classes) > MAX_CLASSES:
      raise FeatureError(f"{len(self.classes)} classes; the zero-shot model takes <= {MAX_CLASSES}")
    kinds = [label_kind(y) for y in (yb, ye)]
    if None not in kinds and kinds[0] != kinds[1]:
      raise FeatureError(
        f"base labels are {kinds[0]} but eval labels are {kinds[1]}: encode both the same way"
      )
    # Most of T in classes B lacks is a label-encoding mismatch, not a task (a few
    # such labels are a real question: can S bring the class B misses?).
    unseen = ~np.isin(ye, yb)
    self.notes = []
    if unseen.mean() > 0.5:
      self.notes.append(
        f"{int(unseen.sum())} of {len(ye)} evaluation labels (e.g. {str(ye[unseen][0])!r}) "
        "are classes B never uses: check that eval's labels are encoded as B's"
      )
    rng = np.random.default_rng(seed)
    self._seed = int(seed)
    self.width = xb.shape[1]
    self.mu, self.sd = centre_scale(xb)  # constant columns stay centred, unscaled
    keep = _stratified(ye, MAX_EVAL, rng)
    self.proj = None
    if self.width > MAX_WIDTH:
      # The top principal directions of B's and T's points together: a query-free map.
      # B's alone would drop every direction B (often fewer points than features)
      # does not span, and with it what S brings there: on generated tasks of 168 to
      # 1,107 features that map ranked at 0.542 against 0.657 now, and valued helpful
      # supplements below zero (docs/zeroshot.md, "Wide inputs").
      rows = _stratified(yb, PROJECT_ROWS, np.random.default_rng([self._seed, 2]))
      z = self._standardise(np.concatenate([xb[rows], xe[keep]]))
      self.proj = np.linalg.svd(z, full_matrices=False)[2][:MAX_WIDTH].T
    self.k = len(self.classes) + 1  # the last id: a label B and T never use
    self.xb, self.yb = self.transform(xb), self.labels(yb)
    self.xe, self.ye = self.transform(xe[keep]), self.labels(ye[keep])
    self.n_b = len(self.yb)
    self._raw_b = (xb, self.yb)
    self._raw_e = xe
    self.n_eval = len(ye)  # the gain is measured on all of T (the proxies on ``keep``)
    self._eval_keys = None  # T's inputs as bytes, built on first use
    self._base_keys = None  # B's (input, label) rows as bytes -> count, built on first use
    self._base_repeats = 0.0  # the share of B's rows that repeat another (with the keys)
    with PF.one_blas_thread():  # small products: one thread, the limit set once
      self._prepare(rng)

  # -- inputs ------------------------------------------------------------------

  def transform(self, x: np.ndarray) -> np.ndarray:
    """Raw inputs -> B-standardised (and, for wide inputs, projected) inputs."""
    z = self._standardise(x)
    return z @ self.proj if self.proj is not None else z

  def _standardise(self, x: np.ndarray) -> np.ndarray:
    """Raw inputs in B's standard deviations from B's mean, clipped at ``Z_CLIP``."""
    return np.clip((np.asarray(x, np.float64) - self.mu) / self.sd, -Z_CLIP, Z_CLIP)

  def labels(self, y: np.ndarray) -> np.ndarray:
    """Raw labels -> class ids; labels B and T never use map to the extra id."""
    y = np.asarray(y).reshape(-1)
    pos = np.searchsorted(self.classes, y)
    pos = np.minimum(pos, len(self.classes) - 1)
    known = self.classes[pos] == y
    return np.where(known, pos, self.k - 1).astype(np.int64)

  # -- B's cache -----------------------------------------------------------------

  def _prepare(self, rng):
    xb1 = np.c_[self.xb, np.ones(self.n_b)]
    yb1h = S.onehot(self.yb, self.k)
    self.gram = xb1.T @ xb1
    self.rhs = xb1.T @ yb1h
    self.sums = yb1h.T @ self.xb  # [k, d] class sums (nearest centroid)
    self.counts = yb1h.sum(0)
    self.d_eb = PF.sqdist(self.xe, self.xb)  # [n_T, n_B]
    d_bb = PF.sqdist(self.xb[: min(self.n_b, 256)], self.xb)
    d_bb[d_bb <= 1e-12] = np.inf
    bw = float(np.median(d_bb.min(1))) if np.isfinite(d_bb).any() else 1.0
    # Transport: fixed samples of B and of T.
    ot_pick = _stratified(self.yb, OT_POINTS, rng)
    self.ot_b, self.ot_by = self.xb[ot_pick], self.yb[ot_pick]
    ot_e = _stratified(self.ye, OT_POINTS, rng)
    self.on_t = S.OnT(self.xe, self.ye, self.k, max(bw, 1e-6), self.xe[ot_e], self.ye[ot_e])
    self.xb1, self.yb1h = xb1, yb1h
    # kNN on B ∪ S only needs B's own 5 nearest per T point: cache them.
    nn, self.nn_d = nearest(self.d_eb, 5)
    self.nn_y = self.yb[nn]
    self.mass_b = self.on_t.kernel_w(self.d_eb) @ yb1h
    # Softmax regression: B's fit and, at that fit, the blocks of its mean loss's
    # Hessian one class each (cross-class terms dropped), inverted once.
    self.theta_b = SM.fit(xb1, yb1h, np.ones(self.n_b))
    self.grad_b = xb1.T @ (SM.softmax(xb1 @ self.theta_b) - yb1h)  # summed, no penalty
    self.h_inv = SM.newton_blocks(xb1, self.theta_b)
    # The stepped proxy runs over at most LOGIT_POINTS of B's points, each weighted
    # to stand for n_B / LOGIT_POINTS (all of B, unweighted, when B is that small).
    sub = _stratified(self.yb, LOGIT_POINTS, np.random.default_rng([self._seed, 1]))
    self.lx1, self.ly1h, self.lw = xb1[sub], yb1h[sub], self.n_b / len(sub)
    on_t = self.on_t
    self.base_scores = {  # B's own scores: the scorers' batches of one
      "ridge": on_t.ridge(self.gram[None], self.rhs[None])[0],
      "knn": on_t.knn(self.nn_d[None], self.nn_y[None])[0],
      "kernel": on_t.kernel_ll(self.mass_b[None])[0],
      "centroid": on_t.centroid(self.sums[None], self.counts[None])[0],
      "logit": on_t.logit(self.theta_b[None])[0],
      # B's own Newton step, the reference of B ∪ S's.
      "newton": on_t.logit(self._newton(self.grad_b[None], [self.n_b]))[0],
    }
    # B's side of the stepped proxy takes as many further steps as B ∪ S does.
    theta = SM.fit(self.lx1, self.ly1h, np.ones(len(sub)), init=self.theta_b)
    self.logit_b = on_t.logit(theta[None])[0]
    # B's transport sample's costs to T's (scaled by their median).
    cost = PF.sqdist(self.ot_b, on_t.ot_x)
    self.ot_scale = max(float(np.median(cost)), 1e-6)
    self.ot_cost_b = cost / self.ot_scale
    self.ot_base = on_t.ot(self.ot_cost_b, self.ot_by, None)
    self.rel_stats = PF.base_stats(self.xb.astype(np.float32), self.yb, self.k)
    # ``set_features`` reads only the task's kind and width.
    self._shim = types.SimpleNamespace(kind="classification", x=np.empty((0, self.xb.shape[1])))

  def _newton(self, grad_sum, n):
    """B's softmax fit moved by one damped Newton step on a mean loss over ``n`` points
    whose gradients there sum to ``grad_sum`` (B's Hessian blocks stand for the union's:
    exact to first order when S is a small share or B-like)."""
    return SM.newton_step(self.theta_b, self.h_inv, grad_sum, np.asarray(n)[..., None, None])

  # -- supplements ---------------------------------------------------------------

  def features(self, supplemental, learner: dict, learner_params: int) -> np.ndarray:
    """``[len(FEATURE_NAMES)]`` features of one supplement (raw ``(x_S, y_S)``).

    Args:
      supplemental: ``(x_S, y_S)`` raw inputs and labels, same width as B.
      learner: the learner's spec as a dict (``LearnerSpec`` fields).
      learner_params: its parameter count on this task.

    Returns:
      float32 feature vector (``FEATURE_NAMES`` order).
    """
    return self.features_many([supplemental], learner, learner_params)[0]

  def features_many(self, supplements, learner: dict, learner_params: int) -> np.ndarray:
    """``[P, len(FEATURE_NAMES)]`` features of several supplements, in order.

    Each row is what the supplement gets alone (to rounding; its transport sample is
    seeded by its own labels). The supplements are laid end to end and valued in
    batches: every per-point step (standardising, distances to T and to B, the
    relational statistics) runs once over a batch, the fits and scores on T as
    batched products, and only a few products per supplement remain in loops.

    Args:
      supplements: a list of ``(x_S, y_S)`` raw inputs and labels, same width as B.
      learner: the learner's spec as a dict (``LearnerSpec`` fields).
      learner_params: its parameter count on this task.

    Returns:
      float32 features (``FEATURE_NAMES`` order), one row per supplement.
    """
    sets = []
    for supplemental in supplements:
      xs, ys = as_arrays(supplemental, "supplemental")
      if xs.shape[1] != self.width:
        raise FeatureError(f"supplemental has {xs.shape[1]} features but base has {self.width}")
      if len(ys) == 0:
        raise FeatureError("a supplemental set is empty")
      sets.append((xs, ys))
    learn = PF.learner_features(learner, learner_params)
    sizes = np.array([len(y) for _, y in sets])
    with PF.one_blas_thread():  # small products: one thread, the limit set once
      xs = self.transform(np.concatenate([x for x, _ in sets]))
      ys = np.concatenate([self.labels(y) for _, y in sets])  # each set as encoded
      cuts = np.cumsum(sizes)[:-1]
      prepared = list(zip(np.split(xs, cuts), np.split(ys, cuts)))
      # The stepped fits in runs as wide as CHUNK allows (B's products are shared by a
      # run's supplements) and the other features in batches whose distances to B and
      # to T (and T's distances padded to the batch's largest set) stay around CHUNK
      # numbers. Each run and batch is computed alone (its rows do not depend on the
      # others), on threads when there are several: the fits beside the batches.
      cols = self.k + self.xb.shape[1] + 1  # a supplement's row: its logits, inputs, weight
      fit_runs = _runs(sizes, self.k * len(self.lx1) + cols * sizes, CHUNK, cols)
      runs = self.batches(sizes)
      done = _map(
        [functools.partial(self._fits, prepared[i:j]) for i, j in fit_runs]
        + [functools.partial(self._batch, prepared[i:j], learn) for i, j in runs],
        threaded=len(runs) > 1,
      )
      rows = np.concatenate(done[len(fit_runs) :])
      logit = self.on_t.logit(np.concatenate(done[: len(fit_runs)])) - self.logit_b
      rows[:, _LOGIT] = _finite(logit.astype(np.float32))
    return rows

  def batches(self, sizes) -> list[tuple[int, int]]:
    """The batches ``(i, j)`` that supplements of these sizes are valued in: their
    distances to B and to T (and T's distances padded to the batch's largest set)
    stay around CHUNK numbers."""
    sizes = np.asarray(sizes)
    return _runs(sizes, sizes * max(self.n_b, len(self.ye)), CHUNK, len(self.ye))

  def _fits(self, sets) -> np.ndarray:
    """``[P, d + 1, k]`` B ∪ S's stepped softmax fits, started from B's as the label
    engine's convex learners are."""
    extra = [(np.c_[x, np.ones(len(y))], S.onehot(y, self.k)) for x, y in sets]
    return SM.fit_many(self.lx1, self.ly1h, extra, self.theta_b, self.lw)

  def _batch(self, sets, learn) -> np.ndarray:
    """Every feature but the stepped fit's (``_LOGIT``, left at 0) of a few sets."""
    sizes = np.array([len(y) for _, y in sets])
    p, starts, ends = len(sizes), np.cumsum(sizes) - sizes, np.cumsum(sizes)
    xs = np.concatenate([x for x, _ in sets])
    ys = np.concatenate([y for _, y in sets])
    xs1, ys1h = np.c_[xs, np.ones(len(ys))], S.onehot(ys, self.k)
    base = self.base_scores
    span = list(zip(starts, ends))
    # Per supplement: S's Gram and class products (B's cached), S's class sums, the
    # kernel's class mass on T and S's summed softmax gradients at B's fit, as batched
    # products over the sets' rows padded to the largest (zero rows add nothing).
    m, d1, k = sizes.max(), xs1.shape[1], self.k
    own, at = np.repeat(np.arange(p), sizes), np.arange(len(ys)) - np.repeat(starts, sizes)
    rows = np.zeros((p, m, d1 + 2 * k))  # [P, m, (x, 1 | one-hot | residual)]
    rows[own, at] = np.concatenate([xs1, ys1h, SM.softmax(xs1 @ self.theta_b) - ys1h], 1)
    prod = np.matmul(rows[:, :, :d1].transpose(0, 2, 1), rows)  # [P, d1, d1 + 2k]
    gram, rhs, grad = prod[:, :, :d1], prod[:, :, d1 : d1 + k], prod[:, :, d1 + k :]
    sums = rhs[:, :-1].transpose(0, 2, 1)  # [P, k, d]: S's class sums
    # Distances to T, padded with inf: ``pad[t, q, i]`` from T's point t to set q's i-th.
    pad = np.full((len(self.ye), p, m), np.inf)
    for q, (a, b) in enumerate(span):
      # Each S's distances to T by its own product: one product over all of them rounds
      # by column position, and exact ties (S's copies of one input, under different
      # labels) would then break differently alone and in a batch.
      pad[:, q, : b - a] = PF.sqdist(self.xe, xs[a:b], a_sq=self.on_t.xe_sq)
    mass = np.matmul(self.on_t.kernel_w(pad).transpose(1, 0, 2), rows[:, :, d1 : d1 + k])
    counts = np.add.reduceat(ys1h, starts)  # [P, k]
    ridge = self.on_t.ridge(self.gram + gram, self.rhs + rhs) - base["ridge"]
    kern = self.on_t.kernel_ll(self.mass_b + mass) - base["kernel"]
    cent = self.on_t.centroid(self.sums + sums, self.counts + counts) - base["centroid"]
    # Softmax regression on B ∪ S: B's fit moved by a Newton step with S's gradients ...
    newton = self.on_t.logit(self._newton(self.grad_b + grad, self.n_b + sizes))
    newton -= base["newton"]
    # ... and B ∪ S's stepped fit (``_fits``) fills ``_LOGIT`` in ``features_many``.
    logit = np.zeros((p, 2))
    # k-NN on B ∪ S: B's 5 nearest per T point (cached) and each S's 5 nearest.
    width = min(5, m)
    nn, near = nearest(pad.reshape(-1, m), width, scratch=True)
    nn = nn.reshape(len(self.ye), p, width) + starts[None, :, None]
    near = near.reshape(len(self.ye), p, width)
    cand_d = np.concatenate([np.broadcast_to(self.nn_d[None], (p, *self.nn_d.shape)),
                             near.transpose(1, 0, 2)], 2)  # fmt: skip
    cand_y = np.concatenate([np.broadcast_to(self.nn_y[None], (p, *self.nn_y.shape)),
                             ys[np.minimum(nn, len(ys) - 1)].transpose(1, 0, 2)], 2)  # fmt: skip
    knn = self.on_t.knn(cand_d, cand_y) - base["knn"]
    # Transport. S's sample depends on S's labels alone (not on earlier queries, nor on
    # the inputs' units): the same query always gets the same features.
    picks = [
      a + _stratified(ys[a:b], OT_POINTS, np.random.default_rng([self._seed, _digest(ys[a:b])]))
      for a, b in span
    ]
    cost_s = PF.sqdist(xs[np.concatenate(picks)], self.on_t.ot_x) / self.ot_scale
    ot = np.empty((p, 3))
    at = 0
    for q, pick in enumerate(picks):
      c_s, y_s = cost_s[at : at + len(pick)], ys[pick]
      at += len(pick)
      share = sizes[q] / (sizes[q] + self.n_b)
      wts = np.concatenate(
        [
          np.full(len(self.ot_by), (1 - share) / len(self.ot_by)),
          np.full(len(pick), share / len(pick)),
        ]
      )
      union = self.on_t.ot(
        np.concatenate([self.ot_cost_b, c_s]), np.concatenate([self.ot_by, y_s]), wts
      )
      ot[q] = [*(self.ot_base - union), self.on_t.ot(c_s, y_s, None, labelled=False)[0]]
    xs32 = xs.astype(np.float32)
    # The within-set nearest distance is not a feature here (and is quadratic in |S|).
    rel = PF.relational(xs32, ys, self.rel_stats, is_base=False, sizes=sizes, within=False)
    # proxies=False: the kNN proxies on B's probe points repeat the eval-set kNN gains
    # above at several times their cost.
    stats = PF.set_features_many(xs32, ys, sizes, rel, self.rel_stats, self._shim, False)
    other = np.stack(
      [
        np.log((ot[:, 2] + 1e-6) / (self.ot_base[0] + 1e-6)),
        np.full(p, np.log(self.n_b)),
        np.log(sizes),
        np.log(sizes / self.n_b),
        np.full(p, np.log(self.width)),
        np.full(p, np.log(self.k - 1)),
        np.full(p, base["ridge"][0]),
        np.full(p, base["knn"][1]),
        np.full(p, base["logit"][0]),
        np.full(p, 1.0 / (self.k - 1)),
        np.bincount(np.repeat(np.arange(p), sizes), (ys == self.k - 1) * 1.0, minlength=p) / sizes,
      ],
      1,
    )
    f = np.concatenate(
      [ridge, knn, kern, cent, logit, newton, ot[:, :2], other, stats, np.tile(learn, (p, 1))], 1
    ).astype(np.float32)
    return _finite(f)


def _map(work: list, threaded: bool) -> list:
  """Each of ``work``'s calls' results, on ``THREADS`` threads if ``threaded``.

  Only for several batches: the work holds the GIL much of the time, and one query's
  fit and batch on two threads were slower than in turn (6.2 against 4.4 ms at
  |S| = 100 in one A/B), while 100 sets ran 1.45x faster.
  """
  if threaded and len(work) > 1 and THREADS > 1:
    return list(threads.pool("features", THREADS).map(lambda task: task(), work))
  return [task() for task in work]


def beside(fn, *args, threaded: bool):
  """``fn(*args)`` started on the pool's thread if ``threaded`` (to run beside the
  caller's next work), else now; returns a call that gives its result."""
  if threaded and THREADS > 1:
    return threads.pool("features", THREADS).submit(fn, *args).result
  out = fn(*args)
  return lambda: out


def _finite(f: np.ndarray) -> np.ndarray:
  """Features with NaN at 0 and infinities at +-10."""
  return np.nan_to_num(f, nan=0.0, posinf=10.0, neginf=-10.0)
