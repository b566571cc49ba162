"""Sampling estimators of semivalues on any ``Game``: LOO, TMC/permutation/Beta Shapley, Banzhaf.

Players are whatever the game says: pool points, groups of points or contributors.
Every estimator asks the game for whole batches of coalitions, so a retraining
utility trains each batch as one compiled ``train_many`` program, and the game's
cache serves coalitions already evaluated (by this estimator or an earlier one).

* ``loo``: leave-one-out, ``P + 1`` coalitions in one batch.
* ``tmc_shapley``: truncated Monte-Carlo Shapley; the prefixes of several
  permutations are evaluated per batch, a permutation stops once its prefix
  utility is within ``rtol`` of the full-set utility.
* ``permutation_shapley``: Monte-Carlo Shapley over antithetic permutation pairs,
  every prefix evaluated (each permutation's marginals telescope to U(all) - U(∅),
  so the estimate is efficient exactly, not only in expectation).
* ``beta_shapley``: the Beta(alpha, beta) semivalue, the same permutation walk with
  cardinality weights (importance weighted, self-normalised) and a cut-off once
  the remaining cardinality weight is negligible.
* ``banzhaf_msr``: Banzhaf by maximum sample reuse, one batch of random coalitions.

References:
  Ghorbani & Zou, "Data Shapley: Equitable Valuation of Data for Machine
  Learning", ICML 2019. Castro, Gómez & Tejada, "Polynomial calculation of the
  Shapley value based on sampling", Computers & Operations Research 2009. Kwon &
  Zou, "Beta Shapley: a Unified and Noise-reduced Data Valuation Framework for
  Machine Learning", AISTATS 2022. Wang & Jia, "Data Banzhaf: A Robust Data
  Valuation Framework for Machine Learning", AISTATS 2023.
"""

from __future__ import annotations

import math
import time

import numpy as np
from scipy import stats

from metaval.games.game import Game, GameError
from metaval.games.result import Valuation


def finish(method: str, game: Game, values, stderr, start, *, needed=None, **kw) -> Valuation:
  """A ``Valuation`` whose costs are the game's counters since ``start``.

  Args:
    start: ``(perf_counter, fits, fits_computed)`` taken when the method began.
    needed: ``fits_needed`` when it differs from ``fits``.
    **kw: the other ``Valuation`` fields (``u_empty``, ``samples``, ``info``, ...).
  """
  t0, f0, c0 = start
  fits = game.fits - f0
  return Valuation(
    method=method,
    players=game.players,
    values=values,
    stderr=stderr,
    fits=fits,
    fits_computed=game.fits_computed - c0,
    fits_needed=fits if needed is None else int(needed),
    seconds=time.perf_counter() - t0,
    **kw,
  )


def start(game: Game) -> tuple[float, int, int]:
  """The clock and counters a method's ``finish`` measures from."""
  return time.perf_counter(), game.fits, game.fits_computed


def loo(game: Game) -> Valuation:
  """Leave-one-out: ``U(all) - U(all but i)``; ``P + 1`` coalitions (the full one first).

  The coalitions are hinted ``precise`` (a solved learner solves them to a tolerance
  below the one-player differences measured) and the leave-one-out fits start
  from the full set's solution.
  """
  s = start(game)
  p = game.num_players
  coal = np.ones((p + 1, p), bool)
  coal[np.arange(p), np.arange(p)] = False  # rows 0..P-1 drop one player; row P is full
  # Each value is a difference between coalitions one player apart, often smaller
  # than what a learner solved to its default tolerance resolves (a warm-started
  # fit would stop at or near the full set's solution and the difference would be
  # solver error): ask the game to solve these P + 1 coalitions precisely.
  game.precise(coal)
  # The full set first, so that a solved learner starts every leave-one-out fit from
  # its solution (one point away); the same P + 1 coalitions either way.
  game(coal[-1:])
  game.start_from(coal[:-1], coal[-1:].repeat(p, 0))
  util = game(coal)
  u_empty = game.peek(np.zeros(p, bool))
  return finish("loo", game, util[-1] - util[:-1], np.zeros(p), s, u_empty=u_empty, u_full=util[-1])


def walk_permutations(game: Game, perms: np.ndarray, *, block: int, rtol, max_len: int) -> dict:
  """Evaluates permutation prefixes in batches; returns every marginal contribution.

  All active permutations advance by up to ``block`` prefix lengths per batch;
  finished permutations are replaced by new ones so each batch stays full (a game
  with ``batch_size=None`` gets every prefix of every permutation in one batch).
  The first batch also holds the empty and the full coalition. A permutation stops
  at the first prefix whose utility is within ``rtol * |U(all)|`` of ``U(all)``
  (the truncation of Ghorbani & Zou) or at ``max_len``; players after the stop get
  a zero marginal.

  Args:
    game: the game.
    perms: ``[K, P]`` player permutations.
    block: prefix lengths per permutation per batch.
    rtol: truncation tolerance, or None for none.
    max_len: longest prefix evaluated.

  Returns:
    ``marginals [K, P]``, ``position [K, P]`` (1-based prefix length at which
    each player joins), ``stops [K]``, ``needed`` (models a one-at-a-time walk
    trains), ``u_empty``, ``u_full``.
  """
  k, p = perms.shape
  marg = np.zeros((k, p))
  pos = np.empty((k, p), np.int64)
  pos[np.arange(k)[:, None], perms] = np.arange(1, p + 1)[None]
  per_batch = game.batch_coalitions
  if per_batch is None:
    block, slots = max_len, k
  else:
    slots = max(1, per_batch // block)
  ends = np.stack([np.zeros(p, bool), np.ones(p, bool)])
  u_empty = u_full = None
  nxt, needed = 0, 0
  active: list[list] = []  # [perm index, prefix length done, previous utility]
  stops = np.zeros(k, np.int64)
  while nxt < k or active:
    while len(active) < slots and nxt < k:
      active.append([nxt, 0, u_empty])
      nxt += 1
    # Once no permutation is left to start, the remaining ones take the free slots
    # of the batch (speculative prefixes past a later truncation are counted in
    # ``fits`` but not in ``needed``).
    step = block if (per_batch is None or nxt < k) else max(block, per_batch // len(active))
    spans = [range(a[1] + 1, min(a[1] + step, max_len) + 1) for a in active]
    coal = np.zeros((sum(len(s) for s in spans), p), bool)
    # Each new prefix may start its fit from the permutation's last evaluated prefix
    # (a solved learner then needs only a few iterations to add up to ``block`` points).
    parents = np.zeros_like(coal)
    hinted = np.zeros(len(coal), bool)
    row = 0
    for a, span in zip(active, spans):
      for length in span:
        coal[row, perms[a[0], :length]] = True
        parents[row, perms[a[0], : a[1]]] = True
        hinted[row] = a[1] > 0
        row += 1
    game.start_from(coal[hinted], parents[hinted])
    if u_full is None:
      coal = np.concatenate([ends, coal])
    fresh = game.fresh(coal)
    util = game(coal)  # [rows]
    if u_full is None:
      u_empty, u_full = float(util[0]), float(util[1])
      util, fresh = util[2:], fresh[2:]
    row, still = 0, []
    for a, span in zip(active, spans):
      perm = perms[a[0]]
      prev = u_empty if a[2] is None else a[2]
      done = False
      for j, length in enumerate(span):
        ut = util[row + j]
        marg[a[0], perm[length - 1]] = ut - prev
        prev = ut
        a[1], a[2] = length, ut
        needed += int(fresh[row + j]) * game.num_seeds
        if (rtol is not None and abs(ut - u_full) <= rtol * abs(u_full)) or length >= max_len:
          done = True
          break
      row += len(span)
      if done:
        stops[a[0]] = a[1]
      else:
        still.append(a)
    active = still
  return {
    "marginals": marg,
    "position": pos,
    "stops": stops,
    "needed": needed,
    "u_empty": u_empty,
    "u_full": u_full,
  }


def _walk_result(method, game, values, se, s, walk, samples, **info) -> Valuation:
  """The ``Valuation`` of a permutation-walk estimator."""
  return finish(
    method,
    game,
    values,
    se,
    s,
    needed=walk["needed"],
    u_empty=walk["u_empty"],
    u_full=walk["u_full"],
    samples=samples,
    info={**info, "mean_stop": float(walk["stops"].mean())},
  )


def _check_permutations(num_permutations: int) -> None:
  if num_permutations < 1:
    raise GameError(f"num_permutations must be >= 1, got {num_permutations}")


def weighted_mean(x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Self-normalised weighted mean over axis 0 and its (delta-method) standard error.

  With equal weights this is the sample mean and ``std(ddof=1) / sqrt(K)``.
  """
  sw = w.sum(0)
  mean = (w * x).sum(0) / np.maximum(sw, 1e-300)
  sw2 = (w * w).sum(0)
  n_eff = sw**2 / np.maximum(sw2, 1e-300)
  var = (w * w * (x - mean) ** 2).sum(0) / np.maximum(sw, 1e-300) ** 2
  with np.errstate(divide="ignore", invalid="ignore"):
    se = np.where(n_eff > 1, np.sqrt(var * n_eff / (n_eff - 1)), np.nan)
  return mean, se


def _permutations(rng, k: int, p: int) -> np.ndarray:
  return np.stack([rng.permutation(p) for _ in range(k)])  # [K, P]


def tmc_shapley(
  game: Game,
  *,
  num_permutations: int = 100,
  rtol: float | None = 0.05,
  block: int = 16,
  seed: int = 0,
) -> Valuation:
  """Truncated Monte-Carlo Shapley values.

  Args:
    game: the game.
    num_permutations: permutations sampled.
    rtol: a permutation is truncated at the first prefix whose utility is within
      ``rtol * |U(all)|`` of ``U(all)``; None evaluates every prefix (then the
      values of each permutation sum exactly to ``U(all) - U(empty)``).
    block: prefix lengths per permutation per batch (overshoot < ``block``).
    seed: permutation seed.

  Returns:
    A ``Valuation``; ``info`` has the mean truncation length.

  References:
    Ghorbani & Zou, "Data Shapley", ICML 2019.
  """
  _check_permutations(num_permutations)
  s = start(game)
  p = game.num_players
  perms = _permutations(np.random.default_rng(seed), num_permutations, p)
  w = walk_permutations(game, perms, block=block, rtol=rtol, max_len=p)
  values, se = weighted_mean(w["marginals"], np.ones_like(w["marginals"]))
  return _walk_result("tmc_shapley", game, values, se, s, w, num_permutations, rtol=rtol)


def permutation_shapley(
  game: Game, num_permutations: int = 100, *, seed: int = 0, antithetic: bool = True
) -> Valuation:
  """Monte-Carlo permutation Shapley: mean marginal contribution along random orders.

  Antithetic sampling pairs each order with its reverse, which lowers variance
  when contributions are sub- or super-additive; the standard error then treats
  each pair as one draw.

  Args:
    game: the game.
    num_permutations: permutations drawn (at least 2 when antithetic).
    seed: numpy seed of the permutation sampler.
    antithetic: pair each permutation with its reverse.

  Returns:
    A ``Valuation``; each permutation's marginals telescope to U(all) - U(∅), so
    Σ values equals the gain exactly.
  """
  _check_permutations(num_permutations)
  s = start(game)
  n = game.num_players
  rng = np.random.default_rng(seed)
  half = math.ceil(num_permutations / 2) if antithetic else num_permutations
  perms = _permutations(rng, half, n)
  if antithetic:
    perms = np.concatenate([perms, perms[:, ::-1]])[: max(num_permutations, 2)]
  k = len(perms)
  w = walk_permutations(game, perms, block=n, rtol=None, max_len=n)
  marg = w["marginals"]
  values = marg.mean(0)
  if antithetic and k >= 4 and k % 2 == 0:
    pair = 0.5 * (marg[: k // 2] + marg[k // 2 :])
    se = pair.std(0, ddof=1) / np.sqrt(k // 2)
  else:
    se = marg.std(0, ddof=1) / np.sqrt(k) if k > 1 else np.full(n, np.nan)
  return _walk_result("permutation_shapley", game, values, se, s, w, k, antithetic=antithetic)


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
  game: Game,
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
    game: the game.
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
  _check_permutations(num_permutations)
  s = start(game)
  p = game.num_players
  w = beta_weights(p, alpha, beta)
  remaining = 1.0 - np.cumsum(w)  # [P + 1] weight beyond length L
  max_len = int(np.argmax(remaining < tail)) if (remaining < tail).any() else p
  max_len = max(1, min(p, max_len))
  perms = _permutations(np.random.default_rng(seed), num_permutations, p)
  walk = walk_permutations(game, perms, block=block, rtol=rtol, max_len=max_len)
  values, se = weighted_mean(walk["marginals"], p * w[walk["position"]])
  return _walk_result(
    "beta_shapley",
    game,
    values,
    se,
    s,
    walk,
    num_permutations,
    alpha=alpha,
    beta=beta,
    max_len=max_len,
  )


def banzhaf_msr(game: Game, num_samples: int = 2000, *, seed: int = 0) -> Valuation:
  """Banzhaf values by maximum sample reuse: one batch of random coalitions.

  Each coalition holds each player with probability 1/2; a player's value is the
  mean utility of the coalitions that hold it minus the mean of those that do not
  (0, with a NaN standard error, for a player never in or never out of a sample).
  U(∅) and U(all) are reported when the game has them cached (they cost no fit here).

  References:
    Wang & Jia, "Data Banzhaf", AISTATS 2023.
  """
  if num_samples < 2:
    raise GameError(f"banzhaf_msr needs num_samples >= 2, got {num_samples}")
  s = start(game)
  p = game.num_players
  rng = np.random.default_rng(seed)
  coal = rng.random((num_samples, p)) < 0.5  # [M, P]
  util = game(coal)  # [M]
  inn, out = coal.astype(np.float64), (~coal).astype(np.float64)
  n_in, n_out = inn.sum(0), out.sum(0)
  mean_in = inn.T @ util / np.maximum(n_in, 1)
  mean_out = out.T @ util / np.maximum(n_out, 1)
  values = np.where((n_in > 0) & (n_out > 0), mean_in - mean_out, 0.0)
  dev_in = inn * (util[:, None] - mean_in[None]) ** 2
  dev_out = out * (util[:, None] - mean_out[None]) ** 2
  with np.errstate(divide="ignore", invalid="ignore"):
    var = dev_in.sum(0) / (n_in - 1) / n_in + dev_out.sum(0) / (n_out - 1) / n_out
  se = np.where((n_in > 1) & (n_out > 1), np.sqrt(var), np.nan)
  return finish(
    "banzhaf_msr",
    game,
    values,
    se,
    s,
    u_empty=game.peek(np.zeros(p, bool)),
    u_full=game.peek(np.ones(p, bool)),
    samples=num_samples,
  )
