"""Per-point data valuation baselines on metaval's vmapped learners.

Every method here values *players* (by default: the points of a task's pool) with
a utility ``U(coalition)`` = a held-out metric of a learner trained on the
coalition's points. Coalitions are turned into ``train_many`` masks, so a whole
batch of coalitions trains as one compiled program:

* ``loo``: leave-one-out, ``N + 1`` fits in one batch.
* ``tmc_shapley``: truncated Monte-Carlo Shapley; the prefixes of several
  permutations are evaluated per batch, a permutation stops once its prefix
  utility is within ``rtol`` of the full-set utility.
* ``beta_shapley``: Beta(alpha, beta) semivalue, the same permutation walk with
  cardinality weights (importance weighted, self-normalised) and a cut-off once
  the remaining cardinality weight is negligible.
* ``banzhaf``: Data Banzhaf with maximum sample reuse (MSR), one batch.
* ``knn_shapley``: the closed form for a K-nearest-neighbour utility (no fits).
* ``data_oob``: Data-OOB, bootstrap bags as multiplicity masks, out-of-bag accuracy.

A set's value is the sum of its points' values (``set_value``); ``group_values``
computes Shapley/Banzhaf values of whole sets directly, each set one player.

Fits are counted honestly: ``fits`` is the number of models the method asked
for, ``fits_computed`` adds the padding that keeps one compiled batch shape, and
``fits_needed`` is what a sequential sampler with the same truncation would have
trained (the batched walk overshoots a permutation's truncation point by less
than one block).

References:
  Ghorbani & Zou, "Data Shapley: Equitable Valuation of Data for Machine
  Learning", ICML 2019. Kwon & Zou, "Beta Shapley: a Unified and Noise-reduced
  Data Valuation Framework for Machine Learning", AISTATS 2022. Wang & Jia, "Data
  Banzhaf: A Robust Data Valuation Framework for Machine Learning", AISTATS 2023.
  Jia et al., "Efficient Task-Specific Data Valuation for Nearest Neighbor
  Algorithms", VLDB 2019. Kwon & Zou, "Data-OOB: Out-of-bag Estimate as a Simple
  and Efficient Data Value", ICML 2023.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import time
from collections.abc import Sequence

import jax
import numpy as np
from scipy import stats

from metaval.data.tasks import CLASSIFICATION, Task
from metaval.errors import MetavalError
from metaval.learners import models
from metaval.learners.models import LearnerSpec
from metaval.learners.train import train_many

METHODS = ("loo", "tmc_shapley", "beta_shapley", "banzhaf", "knn_shapley", "data_oob")


class ValuationError(MetavalError):
  """A valuation method or its inputs are not valid."""


@dataclasses.dataclass
class Valuation:
  """Per-player values and what they cost.

  Attributes:
    method: method name (one of ``METHODS``).
    values: ``[P]`` value per player (higher = more useful).
    fits: models the method asked for (non-empty coalitions, bootstrap bags, ...).
    fits_computed: models actually trained, padding to the batch shape included.
    fits_needed: models a sequential sampler with the same stopping rule needs.
    seconds: wall time, compilation included.
    info: method-specific extras (utilities of the full/empty set, permutations, ...).
  """

  method: str
  values: np.ndarray
  fits: int
  fits_computed: int
  fits_needed: int
  seconds: float
  info: dict = dataclasses.field(default_factory=dict)


# ----------------------------------------------------------------------------
# Problems: a task pool with flipped labels, the standard valuation benchmark.


@dataclasses.dataclass
class NoisyProblem:
  """A training set with some labels flipped, plus held-out sets.

  Attributes:
    task: the valuation task; its pool is the training set (noisy labels) and its
      ``evals`` the set the utility is measured on.
    holdout: a task with the same pool and a disjoint held-out set, used for the
      point removal/addition curves so they are not scored on the set that
      produced the values.
    is_noisy: ``[N]`` bool, True where the label was flipped.
    clean_y: ``[N]`` the labels before flipping.
  """

  task: Task
  holdout: Task
  is_noisy: np.ndarray
  clean_y: np.ndarray


def noisy_problem(
  task: str | Task = "digits",
  *,
  n_train: int = 500,
  noise_rate: float = 0.1,
  seed: int = 0,
  task_seed: int = 0,
) -> NoisyProblem:
  """Draws ``n_train`` pool points and flips the labels of ``noise_rate`` of them.

  The remaining pool points become the removal-curve holdout set. Each flipped
  label moves to a different class, chosen uniformly.

  Args:
    task: a task name (built with ``task_seed``) or a classification ``Task``.
    n_train: training points drawn from the pool.
    noise_rate: fraction of training labels to flip.
    seed: seed of the draw and of the flips.
    task_seed: seed of the task's own pool/test split.

  Returns:
    The ``NoisyProblem``.
  """
  from metaval.data import get_task

  base = get_task(task, seed=task_seed) if isinstance(task, str) else task
  if base.kind != CLASSIFICATION:
    raise ValuationError(f"noisy-label problems need a classification task, got {base.name!r}")
  n = base.pool_size
  if not 2 <= n_train < n:
    raise ValuationError(f"n_train must be in [2, {n - 1}] for task {base.name!r}, got {n_train}")
  if not 0.0 <= noise_rate < 1.0:
    raise ValuationError(f"noise_rate must be in [0, 1), got {noise_rate}")
  rng = np.random.default_rng(seed)
  order = rng.permutation(n)
  tr, ho = np.sort(order[:n_train]), np.sort(order[n_train:])
  clean = base.y[tr].copy()
  flip = np.zeros(n_train, bool)
  flip[rng.choice(n_train, int(round(noise_rate * n_train)), replace=False)] = True
  y = clean.copy()
  shift = rng.integers(1, base.num_classes, size=n_train)
  y[flip] = (clean[flip] + shift[flip]) % base.num_classes
  task_ = dataclasses.replace(
    base,
    x=base.x[tr],
    y=y.astype(np.int32),
    groups=y.astype(np.int32),
    files=np.arange(n_train, dtype=np.int32),
  )
  holdout = dataclasses.replace(task_, evals={"holdout": (base.x[ho], base.y[ho])})
  return NoisyProblem(task=task_, holdout=holdout, is_noisy=flip, clean_y=clean)


# ----------------------------------------------------------------------------
# The utility: U(coalition) by training on the coalition's points.


def default_empty_value(task: Task, metric: str) -> float:
  """Utility of the empty coalition: the best a model that saw no data can do.

  Accuracy: the share of the most common class in the evaluation set (a constant
  prediction). Log-loss: the uniform prediction, ``-log(num_classes)``.
  """
  ev = metric.split("/")[0]
  if ev not in task.evals:
    raise ValuationError(f"metric {metric!r}: no evaluation set {ev!r} in task {task.name!r}")
  ey = np.asarray(task.evals[ev][1])
  if metric.endswith("accuracy"):
    return float(np.bincount(ey, minlength=task.num_classes).max() / max(len(ey), 1))
  if metric.endswith("neg_log_loss") or metric.endswith("neg_loss"):
    return -math.log(task.num_classes)
  raise ValuationError(f"no default empty-set utility for metric {metric!r}; pass empty_value")


class Utility:
  """``U(coalitions)``: the metric of a learner trained on each coalition.

  Players map to pool points through ``players`` (``[N]`` int): point ``j`` is in
  a coalition when its player is; ``-1`` marks background points that are always
  in (a base set B), so values are then *given B*. All fits share one PRNG key on
  purpose (common random numbers): coalitions that differ by one player then
  differ only by that player's data, not by initialisation or data order.

  Attributes:
    task, spec, metric: what is trained and measured.
    num_players: P.
    batch_size: models per compiled batch; every call is padded to a multiple.
    fits: non-empty coalitions trained so far; ``fits_computed`` adds padding.
  """

  def __init__(
    self,
    task: Task,
    spec: LearnerSpec,
    *,
    metric: str = "test/accuracy",
    players=None,
    seed: int = 0,
    batch_size: int = 256,
    empty_value: float | None = None,
  ):
    self.task, self.spec, self.metric = task, spec, metric
    n = task.pool_size
    players = np.arange(n) if players is None else np.asarray(players)
    if players.shape != (n,) or not np.issubdtype(players.dtype, np.integer):
      raise ValuationError(f"players must be [{n}] integers, got {players.shape} {players.dtype}")
    if players.min() < -1:
      raise ValuationError("players must be >= -1 (-1 = background point, always included)")
    self.players = players.astype(np.int64)
    self.num_players = int(players.max()) + 1
    if self.num_players < 1:
      raise ValuationError("no players: every point is background")
    missing = np.setdiff1d(np.arange(self.num_players), self.players)
    if missing.size:
      raise ValuationError(f"player ids must be contiguous; player {missing[0]} has no points")
    self.background = self.players < 0
    if batch_size < 1:
      raise ValuationError(f"batch_size must be >= 1, got {batch_size}")
    self.batch_size = int(batch_size)
    self.key = jax.random.key(seed)
    self.fits = 0
    self.fits_computed = 0
    self._full = None
    if empty_value is None and not self.background.any():
      empty_value = default_empty_value(task, metric)
    self._empty = empty_value

  def masks(self, coalitions) -> np.ndarray:
    """``[M, P]`` bool coalitions -> ``[M, N]`` float32 training masks."""
    c = np.asarray(coalitions, bool)
    m = np.ones((c.shape[0], self.task.pool_size), np.float32)
    fg = ~self.background
    m[:, fg] = c[:, self.players[fg]]
    return m

  def __call__(self, coalitions) -> np.ndarray:
    """Utilities ``[M]`` of ``[M, P]`` bool coalitions (empty ones cost no fit)."""
    c = np.asarray(coalitions, bool)
    if c.ndim != 2 or c.shape[1] != self.num_players:
      raise ValuationError(f"coalitions must be [M, {self.num_players}], got {c.shape}")
    out = np.empty(c.shape[0], np.float64)
    empty = ~c.any(1) & ~self.background.any()
    if empty.any():
      out[empty] = self._empty
    todo = np.flatnonzero(~empty)
    if todo.size:
      masks = self.masks(c[todo])
      b = self.batch_size
      pad = (-len(todo)) % b
      if pad:
        masks = np.concatenate([masks, np.repeat(masks[-1:], pad, 0)])
      # [R] identical keys: common random numbers across coalitions (see class doc).
      keys = jax.numpy.repeat(jax.random.key_data(self.key)[None], masks.shape[0], 0)
      res = train_many(keys, self.task, masks, self.spec, chunk=b)
      if self.metric not in res.metrics:
        raise ValuationError(f"unknown metric {self.metric!r}; available: {', '.join(res.metrics)}")
      out[todo] = res.metrics[self.metric][: len(todo)]
      self.fits += len(todo)
      self.fits_computed += masks.shape[0]
    return out

  @property
  def full_value(self) -> float:
    """U(all players), computed once."""
    if self._full is None:
      self._full = float(self(np.ones((1, self.num_players), bool))[0])
    return self._full

  @property
  def empty_value(self) -> float:
    """U(no player): the background's utility, or the no-data default."""
    if self._empty is None:
      self._empty = float(self(np.zeros((1, self.num_players), bool))[0])
    return self._empty


# ----------------------------------------------------------------------------
# Methods.


def _finish(method, u: Utility, values, t0, fits0, computed0, needed=None, **info) -> Valuation:
  fits = u.fits - fits0
  return Valuation(
    method=method,
    values=np.asarray(values, np.float64),
    fits=fits,
    fits_computed=u.fits_computed - computed0,
    fits_needed=fits if needed is None else int(needed),
    seconds=time.perf_counter() - t0,
    info=info,
  )


def loo(u: Utility) -> Valuation:
  """Leave-one-out: ``U(all) - U(all but i)``; ``P + 1`` fits in one batch."""
  t0, f0, c0 = time.perf_counter(), u.fits, u.fits_computed
  p = u.num_players
  coal = np.ones((p + 1, p), bool)
  coal[np.arange(p), np.arange(p)] = False  # rows 0..P-1 drop one player; row P is full
  util = u(coal)
  u._full = float(util[-1]) if u._full is None else u._full
  return _finish("loo", u, util[-1] - util[:-1], t0, f0, c0, full_value=float(util[-1]))


def _walk_permutations(
  u: Utility,
  perms: np.ndarray,
  *,
  block: int,
  rtol: float | None,
  max_len: int,
  weight_of_len: np.ndarray,
):
  """Evaluates permutation prefixes in batches and accumulates weighted marginals.

  All active permutations advance by up to ``block`` prefix lengths per batch;
  finished permutations are replaced by new ones so each batch stays full. A
  permutation stops at the first prefix whose utility is within ``rtol`` of the
  full-set utility (the truncation of Ghorbani & Zou) or at ``max_len``. Players
  after the stop get a zero marginal, still counted with their position's weight.

  Args:
    u: the utility.
    perms: ``[K, P]`` player permutations.
    block: prefix lengths per permutation per batch.
    rtol: truncation tolerance, or None for none.
    max_len: longest prefix evaluated.
    weight_of_len: ``[P + 1]`` weight of a marginal at prefix length L (index L).

  Returns:
    ``(weighted_sum [P], weight_sum [P], fits_needed, stop_lengths [K])``.
  """
  k, p = perms.shape
  wsum = np.zeros(p)
  wtot = np.zeros(p)
  u_full, u_empty = u.full_value, u.empty_value
  slots = max(1, u.batch_size // block)
  nxt = 0
  active: list[list] = []  # [perm index, prefix length done, previous utility]
  needed = 0
  stops = np.zeros(k, np.int64)
  while nxt < k or active:
    while len(active) < slots and nxt < k:
      active.append([nxt, 0, u_empty])
      nxt += 1
    # Once no permutation is left to start, the remaining ones take the free slots
    # of the batch (speculative prefixes past a later truncation are counted in
    # ``fits`` but not in ``fits_needed``).
    step = block if nxt < k else max(block, u.batch_size // len(active))
    spans = [range(a[1] + 1, min(a[1] + step, max_len) + 1) for a in active]
    coal = np.zeros((sum(len(s) for s in spans), p), bool)
    row = 0
    for a, span in zip(active, spans):
      perm = perms[a[0]]
      for length in span:
        coal[row, perm[:length]] = True
        row += 1
    util = u(coal)  # [rows]
    row, still = 0, []
    for a, span in zip(active, spans):
      perm = perms[a[0]]
      done = False
      for j, length in enumerate(span):
        ut = util[row + j]
        player = perm[length - 1]
        w = weight_of_len[length]
        wsum[player] += w * (ut - a[2])
        wtot[player] += w
        a[1], a[2] = length, ut
        needed += 1
        if (rtol is not None and abs(ut - u_full) <= rtol * abs(u_full)) or length >= max_len:
          done = True
          break
      row += len(span)
      if done:
        rest = perm[a[1] :]  # zero marginals after the stop, weighted by position
        wtot[rest] += weight_of_len[a[1] + 1 : p + 1]
        stops[a[0]] = a[1]
      else:
        still.append(a)
    active = still
  return wsum, wtot, needed, stops


def tmc_shapley(
  u: Utility,
  *,
  num_permutations: int = 100,
  rtol: float | None = 0.05,
  block: int = 16,
  seed: int = 0,
) -> Valuation:
  """Truncated Monte-Carlo Shapley values.

  Args:
    u: the utility.
    num_permutations: permutations sampled.
    rtol: a permutation is truncated at the first prefix whose utility is within
      ``rtol * |U(all)|`` of ``U(all)``; None evaluates every prefix (then the
      values of each permutation sum exactly to ``U(all) - U(empty)``).
    block: prefix lengths per permutation per batch (overshoot < ``block``).
    seed: permutation seed.

  Returns:
    A ``Valuation``; ``info`` has the full/empty utilities and mean stop length.

  References:
    Ghorbani & Zou, "Data Shapley", ICML 2019.
  """
  t0, f0, c0 = time.perf_counter(), u.fits, u.fits_computed
  p = u.num_players
  rng = np.random.default_rng(seed)
  perms = np.stack([rng.permutation(p) for _ in range(num_permutations)])  # [K, P]
  wsum, wtot, needed, stops = _walk_permutations(
    u, perms, block=block, rtol=rtol, max_len=p, weight_of_len=np.ones(p + 1)
  )
  values = wsum / np.maximum(wtot, 1e-12)
  return _finish(
    "tmc_shapley",
    u,
    values,
    t0,
    f0,
    c0,
    needed=needed,
    full_value=u.full_value,
    empty_value=u.empty_value,
    num_permutations=num_permutations,
    mean_stop=float(stops.mean()),
  )


def beta_weights(p: int, alpha: float = 16.0, beta: float = 1.0) -> np.ndarray:
  """``[P + 1]`` probability of each prefix length L (index L; 0 unused).

  The Beta(alpha, beta) semivalue averages a player's marginal contribution to a
  coalition of size ``k = L - 1`` with probability
  ``C(P-1, k) B(k + beta, P - 1 - k + alpha) / B(alpha, beta)``, a beta-binomial
  law; alpha > beta puts the weight on small coalitions.
  """
  w = np.zeros(p + 1)
  w[1:] = stats.betabinom(p - 1, beta, alpha).pmf(np.arange(p))
  return w


def beta_shapley(
  u: Utility,
  *,
  alpha: float = 16.0,
  beta: float = 1.0,
  num_permutations: int = 100,
  rtol: float | None = None,
  tail: float = 1e-3,
  block: int = 16,
  seed: int = 0,
) -> Valuation:
  """Beta Shapley values by importance-weighted permutation sampling.

  In a uniform permutation a player's prefix length is uniform on ``1..P``; its
  marginal there is weighted by ``P * w(L)`` (``beta_weights``) and the estimate
  is self-normalised per player (sum of weighted marginals / sum of weights).
  Prefixes stop once the remaining weight ``sum_{l > L} w(l) < tail`` (marginals
  beyond it count as zero; the bias is at most ``tail`` times the largest
  marginal) and, if ``rtol`` is set, at the TMC truncation point.

  Args:
    u: the utility.
    alpha: first Beta parameter; (alpha, beta) = (16, 1) is Kwon & Zou's default.
    beta: second Beta parameter.
    num_permutations: permutations sampled.
    rtol: optional TMC truncation tolerance.
    tail: cardinality weight left out at the cut-off.
    block: prefix lengths per permutation per batch.
    seed: permutation seed.

  Returns:
    A ``Valuation``.

  References:
    Kwon & Zou, "Beta Shapley", AISTATS 2022.
  """
  t0, f0, c0 = time.perf_counter(), u.fits, u.fits_computed
  p = u.num_players
  w = beta_weights(p, alpha, beta)
  remaining = 1.0 - np.cumsum(w)  # [P + 1] weight beyond length L
  max_len = int(np.argmax(remaining < tail)) if (remaining < tail).any() else p
  max_len = max(1, min(p, max_len))
  rng = np.random.default_rng(seed)
  perms = np.stack([rng.permutation(p) for _ in range(num_permutations)])
  wsum, wtot, needed, stops = _walk_permutations(
    u, perms, block=block, rtol=rtol, max_len=max_len, weight_of_len=p * w
  )
  values = wsum / np.maximum(wtot, 1e-12)
  return _finish(
    "beta_shapley",
    u,
    values,
    t0,
    f0,
    c0,
    needed=needed,
    alpha=alpha,
    beta=beta,
    max_len=max_len,
    num_permutations=num_permutations,
    mean_stop=float(stops.mean()),
  )


def banzhaf(u: Utility, *, num_samples: int = 2000, seed: int = 0) -> Valuation:
  """Data Banzhaf by maximum sample reuse: one batch of random coalitions.

  Each coalition holds each player with probability 1/2; a player's value is the
  mean utility of the coalitions that hold it minus the mean of those that do not.

  References:
    Wang & Jia, "Data Banzhaf", AISTATS 2023.
  """
  t0, f0, c0 = time.perf_counter(), u.fits, u.fits_computed
  rng = np.random.default_rng(seed)
  coal = rng.random((num_samples, u.num_players)) < 0.5  # [M, P]
  util = u(coal)  # [M]
  n_in = coal.sum(0)
  n_out = num_samples - n_in
  mean_in = (coal * util[:, None]).sum(0) / np.maximum(n_in, 1)
  mean_out = (~coal * util[:, None]).sum(0) / np.maximum(n_out, 1)
  values = np.where((n_in > 0) & (n_out > 0), mean_in - mean_out, 0.0)
  return _finish("banzhaf", u, values, t0, f0, c0, num_samples=num_samples)


def knn_shapley(x_train, y_train, x_test, y_test, *, k: int = 5) -> Valuation:
  """Exact Shapley values of a K-nearest-neighbour utility (no model fits).

  For each test point, training points are sorted by distance and the recursion
  ``s_N = 1[y_N = y_t] / N``,
  ``s_i = s_{i+1} + (1[y_i = y_t] - 1[y_{i+1} = y_t]) / K * min(K, i) / i``
  runs from the farthest point in; values are averaged over test points.

  References:
    Jia et al., "Efficient Task-Specific Data Valuation for Nearest Neighbor
    Algorithms", VLDB 2019.
  """
  t0 = time.perf_counter()
  xtr, xte = np.asarray(x_train, np.float64), np.asarray(x_test, np.float64)
  ytr, yte = np.asarray(y_train), np.asarray(y_test)
  n = len(ytr)
  if n == 0 or len(yte) == 0:
    raise ValuationError("knn_shapley needs non-empty training and test sets")
  if k < 1:
    raise ValuationError(f"k must be >= 1, got {k}")
  d2 = (xte**2).sum(1)[:, None] - 2 * xte @ xtr.T + (xtr**2).sum(1)[None]  # [T, N]
  order = np.argsort(d2, axis=1, kind="stable")
  match = (ytr[order] == yte[:, None]).astype(np.float64)  # [T, N] nearest first
  i = np.arange(1, n)  # 1-based rank of the nearer point of each adjacent pair
  step = (match[:, :-1] - match[:, 1:]) / k * np.minimum(k, i) / i  # [T, N-1]
  s = np.empty_like(match)
  s[:, -1] = match[:, -1] / n
  s[:, :-1] = s[:, -1:] + np.cumsum(step[:, ::-1], axis=1)[:, ::-1]
  values = np.zeros(n)
  np.add.at(values, order.reshape(-1), s.reshape(-1))
  values /= len(yte)
  return Valuation(
    method="knn_shapley",
    values=values,
    fits=0,
    fits_computed=0,
    fits_needed=0,
    seconds=time.perf_counter() - t0,
    info={"k": k},
  )


def data_oob(
  task: Task, spec: LearnerSpec, *, num_bags: int = 256, seed: int = 0, batch_size: int = 256
) -> Valuation:
  """Data-OOB: each point's accuracy under the bootstrap models that left it out.

  Bags are multinomial draws of N points from N (``[B, N]`` multiplicities, so a
  point drawn twice weighs twice). Each bag gets its own key, as bagging does.
  Points never out of bag get the mean value.

  References:
    Kwon & Zou, "Data-OOB", ICML 2023.
  """
  t0 = time.perf_counter()
  if task.kind != CLASSIFICATION:
    raise ValuationError("data_oob needs a classification task")
  n = task.pool_size
  rng = np.random.default_rng(seed)
  bags = rng.multinomial(n, np.full(n, 1.0 / n), size=num_bags).astype(np.float32)  # [B, N]
  pad = (-num_bags) % batch_size
  masks = np.concatenate([bags, np.repeat(bags[-1:], pad, 0)]) if pad else bags
  keys = jax.random.split(jax.random.key(seed), masks.shape[0])
  res = train_many(keys, task, masks, spec, return_params=True, chunk=batch_size)
  x = jax.numpy.asarray(task.x)
  predict = jax.jit(jax.vmap(lambda prm: models.apply(prm, x, spec).argmax(-1)))
  pred = np.asarray(predict(res.params))[:num_bags]  # [B, N]
  correct = pred == task.y[None]
  oob = bags == 0
  cnt = oob.sum(0)
  values = (correct & oob).sum(0) / np.maximum(cnt, 1)
  values = np.where(cnt > 0, values, values[cnt > 0].mean() if (cnt > 0).any() else 0.0)
  return Valuation(
    method="data_oob",
    values=values.astype(np.float64),
    fits=num_bags,
    fits_computed=int(masks.shape[0]),
    fits_needed=num_bags,
    seconds=time.perf_counter() - t0,
    info={"num_bags": num_bags, "min_oob": int(cnt.min())},
  )


# ----------------------------------------------------------------------------
# Sets: sums of point values, and groups valued directly as one player.


def set_value(values, indices) -> float:
  """A set's value as the sum of its points' values."""
  idx = np.asarray(indices, np.int64)
  values = np.asarray(values)
  if idx.size and (idx.min() < 0 or idx.max() >= len(values)):
    raise ValuationError(f"set indices must be in [0, {len(values)}), got {idx.min()}..{idx.max()}")
  return float(values[idx].sum())


def players_for_groups(n: int, groups: Sequence) -> tuple[np.ndarray, np.ndarray]:
  """``[N]`` player ids where each (disjoint) group is one player.

  Groups take player ids ``0..G-1``; every point outside all groups is a player
  of its own.

  Returns:
    ``(players [N], group_player_ids [G])``.
  """
  players = np.full(n, -2, np.int64)
  for g, idx in enumerate(groups):
    idx = np.asarray(idx, np.int64)
    if idx.size == 0:
      raise ValuationError(f"group {g} is empty")
    if (players[idx] != -2).any():
      raise ValuationError(f"group {g} overlaps an earlier group; groups must be disjoint")
    players[idx] = g
  rest = np.flatnonzero(players == -2)
  players[rest] = len(groups) + np.arange(len(rest))
  return players, np.arange(len(groups))


def group_values(
  task: Task,
  spec: LearnerSpec,
  groups: Sequence,
  *,
  method: str = "tmc_shapley",
  metric: str = "test/accuracy",
  seed: int = 0,
  batch_size: int = 256,
  **kwargs,
) -> Valuation:
  """Shapley or Banzhaf values of whole sets, each set treated as one player.

  One game serves all (disjoint) groups: the groups are players and every other
  point is a player of its own. Compare with ``set_value`` of per-point values.

  Returns:
    A ``Valuation`` whose ``values`` are ``[G]`` (one per group).
  """
  players, gid = players_for_groups(task.pool_size, groups)
  u = Utility(task, spec, metric=metric, players=players, seed=seed, batch_size=batch_size)
  if method == "tmc_shapley":
    v = tmc_shapley(u, seed=seed, **kwargs)
  elif method == "banzhaf":
    v = banzhaf(u, seed=seed, **kwargs)
  else:
    raise ValuationError(f"group values support 'tmc_shapley' and 'banzhaf', not {method!r}")
  v.values = v.values[gid]
  v.method = f"group_{method}"
  return v


def value_points(
  method: str,
  task: Task,
  spec: LearnerSpec,
  *,
  metric: str = "test/accuracy",
  seed: int = 0,
  batch_size: int = 256,
  **kwargs,
) -> Valuation:
  """Runs one method on every pool point of ``task`` (the common entry point).

  Args:
    method: one of ``METHODS``.
    task: whose pool points are valued; ``metric`` names its utility.
    spec: the learner.
    metric: ``"<eval set>/<metric>"`` as ``train_many`` reports it.
    seed: seeds sampling and the shared training key.
    batch_size: models per compiled batch.
    **kwargs: the method's own options (``num_permutations``, ``num_samples``, ...).
  """
  if method not in METHODS:
    raise ValuationError(f"unknown method {method!r}; available: {', '.join(METHODS)}")
  if method == "knn_shapley":
    ev = metric.split("/")[0]
    ex, ey = task.evals[ev]
    return knn_shapley(task.x, task.y, ex, ey, **kwargs)
  if method == "data_oob":
    return data_oob(task, spec, seed=seed, batch_size=batch_size, **kwargs)
  u = Utility(task, spec, metric=metric, seed=seed, batch_size=batch_size)
  fn = {"loo": loo, "tmc_shapley": tmc_shapley, "beta_shapley": beta_shapley, "banzhaf": banzhaf}
  if method == "loo":
    return loo(u, **kwargs)
  return fn[method](u, seed=seed, **kwargs)


# ----------------------------------------------------------------------------
# ``metaval baselines``.


def _fingerprint(d: dict) -> str:
  return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _atomic_json(path: str, obj) -> None:
  with open(path + ".tmp", "w") as f:
    json.dump(obj, f, indent=2, default=float)
  os.replace(path + ".tmp", path)


def method_options(config, method: str) -> dict:
  """The config's options for one method, as keyword arguments."""
  opts = config.methods_options.get(method) if "methods_options" in config else None
  return dict(opts) if opts is not None else {}


def run(config, workdir: str | None = None) -> dict:
  """Values a noisy training set with every configured method and scores them.

  For each method: wall time, fits, fits/s, noisy-label detection (precision@k,
  F1, AUROC) and, if ``config.curves``, point removal curves on the holdout set.
  Finished methods are saved under ``workdir/values`` and reused by a rerun with
  the same settings. Writes ``baselines.{json,md}`` and ``removal_curves.png``.
  """
  from metaval import protocol

  spec = LearnerSpec.from_config(config.learner)
  prob = noisy_problem(
    config.task.name,
    n_train=config.n_train,
    noise_rate=config.noise_rate,
    seed=config.seed,
    task_seed=config.task.seed,
  )
  methods = list(config.methods)
  bad = [m for m in methods if m not in METHODS]
  if bad:
    raise ValuationError(f"unknown method(s) {bad}; available: {', '.join(METHODS)}")
  print(prob.task.describe())
  print(
    f"{config.n_train} training points, {int(prob.is_noisy.sum())} flipped labels; learner {spec}"
  )
  vdir = os.path.join(workdir, "values") if workdir else None
  if vdir:
    os.makedirs(vdir, exist_ok=True)
  rows, curves = [], {}
  for method in methods:
    opts = method_options(config, method)
    fp = _fingerprint(
      {
        "method": method,
        "opts": opts,
        "spec": spec.to_dict(),
        "task": dict(config.task),
        "n": config.n_train,
        "noise": config.noise_rate,
        "seed": config.seed,
        "metric": config.metric,
      }
    )
    path = os.path.join(vdir, f"{method}.json") if vdir else None
    v = None
    if path and os.path.exists(path):
      with open(path) as f:
        saved = json.load(f)
      if saved.get("fingerprint") == fp:
        v = Valuation(**{k: saved[k] for k in saved if k != "fingerprint"})
        v.values = np.asarray(v.values)
        print(f"  {method}: reusing {path}")
    if v is None:
      v = value_points(
        method,
        prob.task,
        spec,
        metric=config.metric,
        seed=config.seed,
        batch_size=config.batch_size,
        **opts,
      )
      if path:
        d = dataclasses.asdict(v)
        d["values"] = v.values.tolist()
        d["fingerprint"] = fp
        _atomic_json(path, d)
    det = protocol.noisy_label_detection(v.values, prob.is_noisy)
    row = {
      "method": method,
      "library": "metaval",
      "wall_s": v.seconds,
      "fits": v.fits,
      "fits_needed": v.fits_needed,
      "fits_per_s": v.fits / v.seconds if v.fits and v.seconds > 0 else float("nan"),
      "precision_at_k": det["precision_at_k"],
      "f1": det["f1"],
      "auroc": det["auroc"],
    }
    if config.curves:
      c = protocol.removal_curve(
        prob.holdout,
        v.values,
        spec,
        metric="holdout/accuracy",
        order="high_first",
        fractions=tuple(config.curve_fractions),
      )
      low = protocol.removal_curve(
        prob.holdout,
        v.values,
        spec,
        metric="holdout/accuracy",
        order="low_first",
        fractions=tuple(config.curve_fractions),
      )
      row["remove_high_auc"] = c["auc"]
      row["remove_low_auc"] = low["auc"]
      curves[f"{method} (high first)"] = (c["fractions"], c["metric"])
      curves[f"{method} (low first)"] = (low["fractions"], low["metric"])
    rows.append(row)
    print(
      f"  {method:13s} {v.seconds:7.1f}s {v.fits:7d} fits  P@k {det['precision_at_k']:.3f}"
      f"  F1 {det['f1']:.3f}  AUROC {det['auroc']:.3f}"
    )
  if config.group_values:
    rows += _group_rows(config, prob, spec, {r["method"]: r for r in rows}, vdir)
  meta = {
    "task": config.task.name,
    "n_train": config.n_train,
    "noise_rate": config.noise_rate,
    "learner": spec.to_dict(),
    "metric": config.metric,
  }
  table = protocol.format_table(rows)
  print(table)
  if workdir:
    protocol.write_table(
      rows, os.path.join(workdir, "baselines"), title="metaval baselines", meta=meta
    )
    if curves:
      protocol.plot_curves(
        curves,
        os.path.join(workdir, "removal_curves.png"),
        xlabel="fraction of training points removed",
        ylabel="holdout accuracy",
        title="point removal: highest- vs lowest-valued first",
      )
    print(f"wrote {os.path.join(workdir, 'baselines.md')}")
  return {"rows": rows, "meta": meta}


def _group_rows(config, prob: NoisyProblem, spec, by_method, vdir) -> list[dict]:
  """Flipped set vs an equal-size clean set: direct group values vs sums of points."""
  rng = np.random.default_rng(config.seed + 1)
  noisy = np.flatnonzero(prob.is_noisy)
  clean = rng.choice(np.flatnonzero(~prob.is_noisy), len(noisy), replace=False)
  rows = []
  for method in ("tmc_shapley", "banzhaf"):
    opts = method_options(config, method)
    gv = group_values(
      prob.task,
      spec,
      [noisy, clean],
      method=method,
      metric=config.metric,
      seed=config.seed,
      batch_size=config.batch_size,
      **opts,
    )
    saved = os.path.join(vdir, f"{method}.json") if vdir else None
    sums = [float("nan"), float("nan")]
    if saved and os.path.exists(saved):
      with open(saved) as f:
        vals = np.asarray(json.load(f)["values"])
      sums = [set_value(vals, noisy), set_value(vals, clean)]
    for name, direct, s in zip(("flipped set", "clean set"), gv.values, sums):
      rows.append(
        {
          "method": f"group {method}: {name}",
          "library": "metaval",
          "wall_s": gv.seconds,
          "fits": gv.fits,
          "group_value": float(direct),
          "sum_of_points": s,
        }
      )
  return rows
