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
  B ∪ S and scored on T. Their gains are features and, one by one, the baselines the
  model must beat.
* **optimal transport** (POT): how much closer B ∪ S is to T than B, with and without
  a label-mismatch cost, and S's own distance to T.
* **relational set statistics** (duplicates, label agreement with B's neighbours,
  spread, class balance; ``metaval.predictor.features``).
* **scale**: sizes, width, classes, the base accuracies (headroom) and the learner.

Inputs are raw: B's mean and standard deviation standardise B, S and T.
"""

from __future__ import annotations

import types
import zlib

import numpy as np
import ot

from metaval.predictor import features as PF
from metaval.util.nearest import nearest
from metaval.zeroshot import softmax as SM
from metaval.zeroshot.inputs import (
  FeatureError,
  as_arrays,
  input_keys,
  label_kind,
  row_keys,
)

MAX_CLASSES = 50  # labels beyond this many distinct classes are refused
MAX_WIDTH = 128  # wider inputs are projected on B's top principal components
MAX_EVAL = 300  # evaluation points the proxies score on (stratified subsample)
OT_POINTS = 16  # points per side of each transport problem
RIDGE = 1.0  # ridge penalty of the least-squares proxy (standardised inputs)
LOGIT_POINTS = 256  # B's points the stepped proxy runs over (a stratified, weighted sample)
Z_CLIP = 1e6  # standardised inputs are clipped here: squared distances stay finite
FAR_RMS = 10.0  # S's typical point this many of B's SDs (RMS over features) out: warned

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


def _digest(y: np.ndarray) -> int:
  """A 32-bit checksum of a set's class ids (seeds its subsamples: the same set draws
  the same points whatever the units of its inputs)."""
  return zlib.crc32(np.ascontiguousarray(y, np.int64).tobytes())


def _sqdist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  """Squared distances ``[n_a, n_b]``; without ``PF.sqdist``'s thread-pool guard, which
  costs more (about 2 ms a call) than the small products of one query."""
  d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :]
  ab = a @ b.T
  ab *= 2.0
  d -= ab
  return np.maximum(d, 0.0, out=d)


def _emd(a: np.ndarray, b: np.ndarray, cost: np.ndarray) -> float:
  """Exact transport cost. The marginals are built here to sum to one, so POT's check
  of them (a third of a small problem's time) and the centring of the dual potentials
  (unused: only the cost is read) are skipped; the cost is the same."""
  return float(ot.emd2(a, b, cost, check_marginals=False, center_dual=False))


def _onehot(y: np.ndarray, k: int) -> np.ndarray:
  out = np.zeros((len(y), k))
  out[np.arange(len(y)), y] = 1.0
  return out


def _stratified(y: np.ndarray, m: int, rng: np.random.Generator) -> np.ndarray:
  """``m`` indices of ``y`` drawn class by class in proportion, at least one of each
  class (all if ``len(y) <= m``), sorted: one permutation, then each class's first."""
  if len(y) <= m:
    return np.arange(len(y))
  _, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
  take = np.minimum(np.maximum(1, np.round(m * counts / len(y))), counts)
  perm = rng.permutation(len(y))
  by_class = perm[np.argsort(inverse[perm], kind="stable")]  # classes in turn, shuffled
  start = np.cumsum(counts) - counts
  rank = np.arange(len(y)) - np.repeat(start, counts)
  return np.sort(by_class[rank < np.repeat(take, counts)])


class Context:
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
    self.mu = xb.mean(0)
    sd = xb.std(0)
    self.sd = np.where(sd > 1e-8, sd, 1.0)  # constant columns stay centred, unscaled
    self.proj = None
    if self.width > MAX_WIDTH:  # B's principal directions: a B-only, query-free map
      z = (xb - self.mu) / self.sd
      self.proj = np.linalg.svd(z, full_matrices=False)[2][:MAX_WIDTH].T
    self.k = len(self.classes) + 1  # the last id: a label B and T never use
    self.xb, self.yb = self.transform(xb), self.labels(yb)
    keep = _stratified(ye, MAX_EVAL, rng)
    self.xe, self.ye = self.transform(xe[keep]), self.labels(ye[keep])
    self.n_b = len(self.yb)
    self._raw_b = (xb, self.yb)
    self._raw_e = xe
    self._eval_keys = None  # T's inputs as bytes, built on first use
    self._base_keys = None  # B's (input, label) rows as bytes, built on first use
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

  def new_points(self, supplemental) -> tuple[tuple[np.ndarray, np.ndarray], int]:
    """S without its exact copies of B's points: ``((x, y) kept, copies dropped)``.

    A row copies B when its raw inputs and its label equal those of a point of B
    (bit for bit, as float64). Such rows carry no new data: the predictor values
    only the rest (a set of copies alone is worth nothing).
    """
    xs, ys = as_arrays(supplemental, "supplemental")
    if xs.shape[1] != self.width:
      raise FeatureError(f"supplemental has {xs.shape[1]} features but base has {self.width}")
    if self._base_keys is None:
      xb, yb = self._raw_b
      self._base_keys = set(map(bytes, row_keys(xb, yb)))
    ids = self.labels(ys)
    copy = np.fromiter((bytes(k) in self._base_keys for k in row_keys(xs, ids)), bool, len(ids))
    return (xs[~copy], ys[~copy]), int(copy.sum())

  def checks(self, xs: np.ndarray, ys: np.ndarray) -> list[str]:
    """Warnings about S (raw, validated arrays) that its value alone would hide.

    * (B, T) itself: most evaluation labels are classes B never uses;
    * labels that B and the evaluation set never use (a mismatched label encoding
      makes every label of S one of these);
    * inputs far outside B (S in other units than B): the typical point of S lies
      more than ``FAR_RMS`` of B's standard deviations out, as the RMS over features;
    * points of S whose inputs are evaluation points (bit for bit): training on the
      evaluation set inflates the gain measured on it.
    """
    out = list(self.notes)
    if self._eval_keys is None:
      self._eval_keys = set(map(bytes, input_keys(self._raw_e)))
    leaked = sum(bytes(k) in self._eval_keys for k in input_keys(xs))
    if leaked:
      out.append(
        f"{leaked} of {len(xs)} points of S are evaluation points (same inputs): the gain "
        "measured on that set rewards them; value S on an evaluation set it does not contain"
      )
    unknown = self.labels(ys) == self.k - 1
    if unknown.any():
      out.append(
        f"{int(unknown.sum())} of {len(ys)} labels (e.g. {str(ys[unknown][0])!r}) are classes "
        "that B and the evaluation set never use: check the label encoding"
      )
    rms = np.sqrt(np.mean(self._standardise(xs) ** 2, axis=1))
    if np.median(rms) > FAR_RMS:
      out.append(
        f"S lies far from B: its typical point is {np.median(rms):.3g} of B's standard "
        "deviations out (RMS over features): check that S is in B's units"
      )
    return out

  # -- B's cache -----------------------------------------------------------------

  def _prepare(self, rng):
    xb1 = np.c_[self.xb, np.ones(self.n_b)]
    self.xe1 = np.c_[self.xe, np.ones(len(self.ye))]
    yb1h = _onehot(self.yb, self.k)
    self.gram = xb1.T @ xb1
    self.rhs = xb1.T @ yb1h
    self.sums = yb1h.T @ self.xb  # [k, d] class sums (nearest centroid)
    self.counts = yb1h.sum(0)
    self.d_eb = _sqdist(self.xe, self.xb)  # [n_T, n_B]
    d_bb = _sqdist(self.xb[: min(self.n_b, 256)], self.xb)
    d_bb[d_bb <= 1e-12] = np.inf
    self.bw = float(np.median(d_bb.min(1))) if np.isfinite(d_bb).any() else 1.0
    self.bw = max(self.bw, 1e-6)
    self.xb1, self.yb1h = xb1, yb1h
    # kNN on B ∪ S only needs B's own 5 nearest per T point: cache them.
    nn, self.nn_d = nearest(self.d_eb, 5)
    self.nn_y = self.yb[nn]
    self.mass_b = self._kernel_mass(self.d_eb, self.yb)
    # Softmax regression: B's fit and, at that fit, the blocks of its mean loss's
    # Hessian one class each (cross-class terms dropped), inverted once.
    self.theta_b = SM.fit(xb1, yb1h, np.ones(self.n_b))
    self.grad_b = xb1.T @ (SM.softmax(xb1 @ self.theta_b) - yb1h)  # summed, no penalty
    self.h_inv = SM.newton_blocks(xb1, self.theta_b)
    # The stepped proxy runs over at most LOGIT_POINTS of B's points, each weighted
    # to stand for n_B / LOGIT_POINTS (all of B, unweighted, when B is that small).
    sub = _stratified(self.yb, LOGIT_POINTS, np.random.default_rng([self._seed, 1]))
    self.lx1, self.ly1h, self.lw = xb1[sub], yb1h[sub], self.n_b / len(sub)
    self.base_scores = {
      "ridge": self._ridge(self.gram, self.rhs),
      "knn": self._knn(self.nn_d, self.nn_y),
      "kernel": self._kernel_ll(self.mass_b),
      "centroid": self._centroid(self.sums, self.counts),
      "logit": self._logit_score(self.theta_b),
      # B's own Newton step, the reference of B ∪ S's.
      "newton": self._logit_score(self._newton(self.grad_b, self.n_b)),
    }
    # B's side of the stepped proxy takes as many further steps as B ∪ S does.
    self.logit_b = self._logit_score(
      SM.fit(self.lx1, self.ly1h, np.ones(len(sub)), init=self.theta_b)
    )
    ot_pick = _stratified(self.yb, OT_POINTS, rng)
    self.ot_b, self.ot_by = self.xb[ot_pick], self.yb[ot_pick]
    self.ot_e = _stratified(self.ye, OT_POINTS, rng)
    self.ot_scale = max(float(np.median(_sqdist(self.xe[self.ot_e], self.ot_b))), 1e-6)
    self.ot_base = self._ot(self.ot_b, self.ot_by, None)
    self.rel_stats = PF.base_stats(self.xb.astype(np.float32), self.yb, self.k)
    # ``set_features`` reads only the task's kind and width.
    self._shim = types.SimpleNamespace(kind="classification", x=np.empty((0, self.xb.shape[1])))

  # -- proxies -------------------------------------------------------------------

  def _ridge(self, gram, rhs):
    reg = RIDGE * np.eye(len(gram))
    reg[-1, -1] = 0.0  # the bias is not penalised
    w = np.linalg.solve(gram + reg, rhs)
    s = self.xe1 @ w
    true = s[np.arange(len(s)), self.ye]
    s_other = s.copy()
    s_other[np.arange(len(s)), self.ye] = -np.inf
    margin = np.clip(true - s_other.max(1), -1.0, 1.0)
    return np.array([(s.argmax(1) == self.ye).mean(), margin.mean()])

  def _knn(self, d, lab):
    """1-NN and 5-NN accuracy on T from candidate distances and labels ``[n_T, m]``."""
    nn = nearest(d, 5)[0]
    y = np.take_along_axis(lab, nn, 1)  # [n_T, kk] nearest first
    votes = np.bincount(
      (np.arange(len(d))[:, None] * self.k + y).reshape(-1), minlength=len(d) * self.k
    )
    votes = votes.reshape(len(d), self.k)
    return np.array([(y[:, 0] == self.ye).mean(), (votes.argmax(1) == self.ye).mean()])

  def _kernel_mass(self, d, y):
    """``[n_T, k]`` Gaussian-kernel class mass (bandwidth: B's median NN distance)."""
    return np.exp(-0.5 * np.minimum(d / self.bw, 50.0)) @ _onehot(y, self.k)

  def _kernel_ll(self, mass):
    p = (mass + 1e-3) / (mass.sum(1, keepdims=True) + 1e-3 * self.k)
    return np.array([np.log(p[np.arange(len(p)), self.ye]).mean()])

  def _centroid(self, sums, counts):
    present = counts > 0
    cent = sums[present] / counts[present, None]
    ids = np.flatnonzero(present)
    pred = ids[_sqdist(self.xe, cent).argmin(1)]
    return np.array([(pred == self.ye).mean()])

  def _newton(self, grad_sum, n):
    """B's softmax fit moved by one damped Newton step on a mean loss over ``n`` points
    whose gradients there sum to ``grad_sum`` (B's Hessian blocks stand for the union's:
    exact to first order when S is a small share or B-like)."""
    return SM.newton_step(self.theta_b, self.h_inv, grad_sum, n)

  def _logit_score(self, theta):
    z = self.xe1 @ theta
    z -= z.max(1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    return np.array([(z.argmax(1) == self.ye).mean(), logp[np.arange(len(z)), self.ye].mean()])

  def _ot(self, xs, ys, weights, labelled=True):
    """Exact transport cost from points ``xs`` (mass ``weights``) to T's OT sample."""
    xe, ye = self.xe[self.ot_e], self.ye[self.ot_e]
    m = _sqdist(xs, xe) / self.ot_scale
    a = np.full(len(xs), 1.0 / len(xs)) if weights is None else weights
    b = np.full(len(xe), 1.0 / len(xe))
    plain = _emd(a, b, m)
    if not labelled:
      return np.array([plain, 0.0])
    return np.array([plain, _emd(a, b, m + (ys[:, None] != ye[None, :]))])

  # -- one supplement ------------------------------------------------------------

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

    The rows equal those of ``features`` called on each supplement in turn (each
    supplement's transport sample is seeded by its own labels); the stepped
    softmax-regression proxy runs for all supplements in one batch.

    Args:
      supplements: a list of ``(x_S, y_S)`` raw inputs and labels, same width as B.
      learner: the learner's spec as a dict (``LearnerSpec`` fields).
      learner_params: its parameter count on this task.

    Returns:
      float32 features (``FEATURE_NAMES`` order), one row per supplement.
    """
    sets = []
    for supplemental in supplements:
      xs_raw, ys_raw = as_arrays(supplemental, "supplemental")
      if xs_raw.shape[1] != self.width:
        raise FeatureError(f"supplemental has {xs_raw.shape[1]} features but base has {self.width}")
      xs, ys = self.transform(xs_raw), self.labels(ys_raw)
      sets.append((xs, ys, np.c_[xs, np.ones(len(ys))], _onehot(ys, self.k)))
    # Batches of supplements sized so the batched logits stay around 4M numbers.
    n_b = len(self.lx1)
    per = max(1, 4_000_000 // max(1, (n_b + max(len(s[1]) for s in sets)) * self.k))
    with PF.one_blas_thread():  # small products: one thread, the limit set once
      thetas = []
      for i in range(0, len(sets), per):
        extra = [(s[2], s[3]) for s in sets[i : i + per]]
        thetas += list(SM.fit_many(self.lx1, self.ly1h, extra, self.theta_b, self.lw))
      rows = [self._one(*s, th, learner, learner_params) for s, th in zip(sets, thetas)]
    return np.stack(rows)

  def _one(self, xs, ys, xs1, ys1h, theta, learner, learner_params) -> np.ndarray:
    n_s = len(ys)
    base = self.base_scores
    ridge = self._ridge(self.gram + xs1.T @ xs1, self.rhs + xs1.T @ ys1h) - base["ridge"]
    d_es = _sqdist(self.xe, xs)
    nn, near = nearest(d_es, 5)
    cand_d = np.concatenate([self.nn_d, near], 1)
    knn = self._knn(cand_d, np.concatenate([self.nn_y, ys[nn]], 1)) - base["knn"]
    kern = self._kernel_ll(self.mass_b + self._kernel_mass(d_es, ys)) - base["kernel"]
    cent = self._centroid(self.sums + ys1h.T @ xs, self.counts + ys1h.sum(0)) - base["centroid"]
    # Softmax regression on B ∪ S: B's fit moved by a Newton step with S's gradients.
    grad_s = xs1.T @ (SM.softmax(xs1 @ self.theta_b) - ys1h)
    newton = self._logit_score(self._newton(self.grad_b + grad_s, self.n_b + n_s))
    newton -= base["newton"]
    # ``theta``: B ∪ S's stepped softmax regression, started from B's fit as the label
    # engine's convex learners are (fitted for all supplements in ``features_many``).
    logit = self._logit_score(theta) - self.logit_b
    # S's transport sample depends on S's labels alone (not on earlier queries, nor on
    # the inputs' units): the same query always gets the same features.
    pick = _stratified(ys, OT_POINTS, np.random.default_rng([self._seed, _digest(ys)]))
    share = n_s / (n_s + self.n_b)
    w = np.concatenate(
      [np.full(len(self.ot_b), (1 - share) / len(self.ot_b)), np.full(len(pick), share / len(pick))]
    )
    union = np.concatenate([self.ot_b, xs[pick]]), np.concatenate([self.ot_by, ys[pick]])
    ot_union = self._ot(*union, w)
    ot_s = self._ot(xs[pick], ys[pick], None, labelled=False)
    rel = PF.relational(xs.astype(np.float32), ys, self.rel_stats, is_base=False)
    # proxies=False: the kNN proxies on B's probe points repeat the eval-set kNN gains
    # above at several times their cost.
    sets = PF.set_features(xs.astype(np.float32), ys, rel, self.rel_stats, self._shim, False)
    learn = PF.learner_features(learner, learner_params)
    other = [
      np.log((ot_s[0] + 1e-6) / (self.ot_base[0] + 1e-6)),
      np.log(self.n_b),
      np.log(n_s),
      np.log(n_s / self.n_b),
      np.log(self.width),
      np.log(self.k - 1),
      base["ridge"][0],
      base["knn"][1],
      base["logit"][0],
      1.0 / (self.k - 1),
      float((ys == self.k - 1).mean()),
    ]
    f = np.concatenate(
      [ridge, knn, kern, cent, logit, newton, self.ot_base - ot_union, other, sets, learn]
    ).astype(np.float32)
    return np.nan_to_num(f, nan=0.0, posinf=10.0, neginf=-10.0)
