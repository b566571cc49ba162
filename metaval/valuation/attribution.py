"""Fair attribution of a gain among contributors: Shapley and Banzhaf over groups.

A *contributor* brings a set of pool points (a row of multiplicities over the
task pool). For a coalition T of contributors the utility is

    u(T) = metric(train(B ∪ ⋃_{c ∈ T} S_c))    (higher is better),

so the gain to split is u(all) - u(∅) = metric(B ∪ S) - metric(B). Utilities are
*batched*: a utility is any callable mapping a boolean coalition matrix
``[C, n]`` to ``[C]`` values. ``RetrainingUtility`` evaluates all requested
coalitions of one call as one ``train_many`` batch of masks (all ``2^n``
coalitions at once for exact Shapley); a trained value predictor plugs in
through ``predictor_utility`` (no retraining) and any other estimator through
``set_function_utility``.

Estimators:
  * ``exact_shapley`` / ``exact_banzhaf``: all ``2^n`` coalitions (small n).
  * ``permutation_shapley``: Monte-Carlo over (antithetic) permutations. Each
    permutation's marginal contributions telescope to u(all) - u(∅), so the
    estimate is efficient exactly, not only in expectation.
  * ``banzhaf_msr``: Monte-Carlo Banzhaf by maximum sample reuse.

Copies: Shapley is symmetric, so a contributor who submits an exact copy of
another contributor's data is *symmetric* to the original and receives the same
share (the copier takes half of the original's credit). ``dedupe_contributors``
is the policy that prevents this: content already in the base set or submitted
earlier belongs to its first owner and is removed from later submissions before
the game is played.

References:
  Shapley, "A value for n-person games", 1953.
  Ghorbani & Zou, "Data Shapley: Equitable valuation of data for machine
  learning", ICML 2019.
  Wang & Jia, "Data Banzhaf: A robust data valuation framework for machine
  learning", AISTATS 2023 (maximum sample reuse estimator).
  Castro, Gómez & Tejada, "Polynomial calculation of the Shapley value based on
  sampling", Computers & Operations Research 2009.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Sequence

import jax
import numpy as np

from metaval.data.tasks import CLASSIFICATION, Task
from metaval.errors import MetavalError
from metaval.learners.models import LearnerSpec
from metaval.learners.train import metric_names, train_many

MAX_EXACT_PLAYERS = 16  # 2^16 coalitions: beyond that use the sampling estimators.


class AttributionError(MetavalError):
  """Attribution inputs (contributors, utilities, estimator options) are not valid."""


# ----------------------------------------------------------------------------
# Utilities.

Utility = Callable[[np.ndarray], np.ndarray]


def _check_coalitions(coalitions, n: int) -> np.ndarray:
  c = np.asarray(coalitions)
  if c.ndim != 2 or c.shape[1] != n:
    raise AttributionError(f"coalitions must be [num_coalitions, {n}] booleans; got {c.shape}")
  return c.astype(bool)


class CachedUtility:
  """Memoises a batched utility per coalition and counts fresh evaluations.

  Each call evaluates only the coalitions not seen before, in one batch, so the
  sampling estimators can request overlapping prefixes freely.

  Attributes:
    num_players: n.
    evaluations: number of distinct coalitions evaluated so far.
  """

  def __init__(self, utility: Utility, num_players: int):
    if num_players < 1:
      raise AttributionError(f"need at least one contributor, got {num_players}")
    self.fn = utility
    self.num_players = int(num_players)
    self.cache: dict[bytes, float] = {}

  @property
  def evaluations(self) -> int:
    return len(self.cache)

  def __call__(self, coalitions) -> np.ndarray:
    c = _check_coalitions(coalitions, self.num_players)
    keys = [np.packbits(row).tobytes() for row in c]
    todo, seen = [], set()
    for k, row in zip(keys, c):
      if k not in self.cache and k not in seen:
        seen.add(k)
        todo.append((k, row))
    if todo:
      vals = np.asarray(self.fn(np.stack([r for _, r in todo])), np.float64).reshape(-1)
      if vals.shape[0] != len(todo):
        raise AttributionError(
          f"utility returned {vals.shape[0]} values for {len(todo)} coalitions"
        )
      if not np.all(np.isfinite(vals)):
        raise AttributionError("utility returned NaN or inf for some coalition")
      for (k, _), v in zip(todo, vals):
        self.cache[k] = float(v)
    return np.array([self.cache[k] for k in keys])


def table_utility(values: Sequence[float]) -> Utility:
  """A utility given as a table over bitmasks: ``values[mask]``, bit i = player i.

  Args:
    values: ``[2^n]`` utility of every coalition.

  Returns:
    A batched utility.
  """
  v = np.asarray(values, np.float64)
  n = int(round(math.log2(len(v)))) if len(v) else -1
  if n < 1 or len(v) != 2**n:
    raise AttributionError(f"a utility table needs 2^n entries (n >= 1), got {len(v)}")

  def fn(coalitions):
    c = _check_coalitions(coalitions, n)
    return v[c.astype(np.int64) @ (1 << np.arange(n))]

  return fn


def set_function_utility(fn: Callable[[list[int]], float]) -> Utility:
  """Wraps a scalar set function ``fn(list of player ids) -> value`` as a batched utility.

  Use it to attribute with any estimator of value, e.g. a trained predictor:
  ``set_function_utility(lambda ids: p.value(concat(supp[i] for i in ids), base=B))``.
  """

  def batched(coalitions):
    c = np.asarray(coalitions, bool)
    return np.array([float(fn([int(i) for i in np.flatnonzero(row)])) for row in c])

  return batched


def predictor_utility(
  predictor, supplements, *, base=None, learner=None, task=None, target: int | str = 0
) -> Utility:
  """u(T) = the predictor's value of the union of the coalition's supplements.

  No learner is trained: each call ranks all requested unions in one batched
  forward pass of the value model (``predictor.rank``). u(∅) = 0 by definition
  (an empty supplement adds nothing), so the Shapley values split the predicted
  value of the full union.

  Args:
    predictor: a ``metaval.api.Predictor`` (anything with its ``rank`` method).
    supplements: per contributor, ``(x [n_c, d], y [n_c])`` numpy arrays.
    base: ``base=`` of ``Predictor.value`` (None = the predictor's default base).
    learner: ``learner=`` of ``Predictor.value``.
    task: ``task=`` of ``Predictor.value``.
    target: index or name of the predicted metric to attribute.

  Returns:
    A batched utility over ``len(supplements)`` contributors.
  """
  parts = []
  for i, s in enumerate(supplements):
    if not (isinstance(s, (tuple, list)) and len(s) == 2):
      raise AttributionError(f"supplement {i} must be a pair (x, y)")
    x, y = np.asarray(s[0]), np.asarray(s[1])
    if x.ndim != 2 or y.shape != (x.shape[0],) or x.shape[0] == 0:
      raise AttributionError(f"supplement {i} must be x [n, d], y [n] with n >= 1")
    parts.append((x, y))
  if not parts:
    raise AttributionError("no supplements to attribute")

  def fn(coalitions):
    c = _check_coalitions(coalitions, len(parts))
    out = np.zeros(len(c))
    rows = np.flatnonzero(c.any(1))
    if rows.size:
      unions = [
        (
          np.concatenate([parts[i][0] for i in np.flatnonzero(c[r])]),
          np.concatenate([parts[i][1] for i in np.flatnonzero(c[r])]),
        )
        for r in rows
      ]
      ranked = predictor.rank(unions, base=base, learner=learner, task=task)
      for j, facts in ranked:
        if isinstance(target, str):
          names = [t.metric for t in facts.targets]
          if target not in names:
            raise AttributionError(f"unknown target {target!r}; predictor has {names}")
          value = facts.targets[names.index(target)].value
        else:
          value = facts.targets[int(target)].value
        out[rows[j]] = value
    return out

  return fn


class RetrainingUtility:
  """u(T) = mean over seeds of ``metric(train(base + Σ_{c∈T} contributors[c]))``.

  Every call trains one model per (coalition, seed) in a single ``train_many``
  batch. All coalitions use the *same* seed keys on purpose (common random
  numbers): marginal contributions u(T ∪ i) - u(T) then compare models that
  differ only in their data, so seed noise cancels as far as it can.

  Args:
    task: the task whose pool the masks index.
    spec: learner spec.
    contributors: ``[n, N]`` non-negative multiplicities, one row per contributor
      (a copy of someone else's data is the same pool rows again).
    base: ``[N]`` multiplicities of the base set B (may be all zero).
    metric: a ``train_many`` metric name (higher is better).
    num_seeds: models per coalition, averaged.
    seed: root seed of the shared keys.
    chunk: ``train_many`` chunk size (memory bound for big batches).
    empty_value: utility of a coalition with no training data at all (only needed
      when ``base`` is empty; e.g. chance accuracy, or ``-log(vocab)`` for an LM).
  """

  def __init__(
    self,
    task: Task,
    spec: LearnerSpec,
    contributors,
    base=None,
    *,
    metric: str,
    num_seeds: int = 1,
    seed: int = 0,
    chunk: int | None = None,
    empty_value: float | None = None,
  ):
    n_pool = task.pool_size
    contrib = np.asarray(contributors, np.float32)
    if contrib.ndim != 2 or contrib.shape[1] != n_pool:
      raise AttributionError(
        f"contributors must be [num_contributors, pool_size={n_pool}]; got {contrib.shape}"
      )
    base = np.zeros(n_pool, np.float32) if base is None else np.asarray(base, np.float32)
    if base.shape != (n_pool,):
      raise AttributionError(f"base must be [pool_size={n_pool}]; got {base.shape}")
    for name, a in (("contributors", contrib), ("base", base)):
      if not np.all(np.isfinite(a)) or np.any(a < 0):
        raise AttributionError(f"{name} must be finite, non-negative multiplicities")
    empty_rows = np.flatnonzero(contrib.sum(1) <= 0)
    if empty_rows.size:
      raise AttributionError(f"contributor {empty_rows[0]} brings no data")
    if metric not in metric_names(task):
      raise AttributionError(
        f"unknown metric {metric!r} for task {task.name!r}; available: "
        f"{', '.join(metric_names(task)[:6])}, ..."
      )
    if base.sum() <= 0 and empty_value is None:
      raise AttributionError(
        "the base set is empty, so u(∅) is undefined: pass empty_value (e.g. chance accuracy)"
      )
    if num_seeds < 1:
      raise AttributionError(f"num_seeds must be >= 1, got {num_seeds}")
    self.task, self.spec, self.metric = task, spec, metric
    self.contributors, self.base = contrib, base
    self.num_seeds, self.chunk, self.empty_value = int(num_seeds), chunk, empty_value
    # One key per seed, shared by every coalition (common random numbers).
    self.seed_keys = jax.random.split(jax.random.key(seed), self.num_seeds)  # [K]
    self.models_trained = 0
    self.seconds = 0.0
    self.per_seed: dict[bytes, np.ndarray] = {}

  @property
  def num_players(self) -> int:
    return int(self.contributors.shape[0])

  def masks(self, coalitions) -> np.ndarray:
    """``[C, N]`` training multiplicities of each coalition."""
    c = _check_coalitions(coalitions, self.num_players).astype(np.float32)
    return self.base[None] + c @ self.contributors

  def __call__(self, coalitions) -> np.ndarray:
    c = _check_coalitions(coalitions, self.num_players)
    masks = self.masks(c)  # [C, N]
    out = np.full(len(c), np.nan)
    nonempty = masks.sum(1) > 0
    if not nonempty.all():
      out[~nonempty] = self.empty_value
    idx = np.flatnonzero(nonempty)
    if idx.size:
      k = self.num_seeds
      # Coalition-major, seed-minor: rows [C * K, N], keys [C * K].
      rep_masks = np.repeat(masks[idx], k, axis=0)
      keys = jax.random.key_data(self.seed_keys)
      rep_keys = np.tile(np.asarray(keys), (idx.size, 1))
      t0 = time.perf_counter()
      res = train_many(rep_keys, self.task, rep_masks, self.spec, chunk=self.chunk)
      self.seconds += time.perf_counter() - t0
      self.models_trained += rep_masks.shape[0]
      vals = res.metrics[self.metric].reshape(idx.size, k)  # [C, K]
      for j, row in zip(idx, vals):
        self.per_seed[np.packbits(c[j]).tobytes()] = row
      out[idx] = vals.mean(1)
    return out


# ----------------------------------------------------------------------------
# Results.


@dataclasses.dataclass
class Attribution:
  """Each contributor's value (credit) for a gain.

  Attributes:
    method: ``"exact_shapley"``, ``"permutation_shapley"``, ``"exact_banzhaf"`` or
      ``"banzhaf_msr"``.
    names: contributor names.
    values: ``[n]`` credit in metric units.
    se: ``[n]`` Monte-Carlo standard error (zeros for exact methods).
    u_empty: u(∅), the base set's metric.
    u_full: u(all contributors).
    evaluations: distinct coalitions evaluated.
    samples: permutations or subsets drawn (0 for exact methods).
    seed_se: ``[n]`` standard error over training seeds (retraining utilities with
      several seeds; the values are linear in u, so they can be computed per seed).
  """

  method: str
  names: list[str]
  values: np.ndarray
  se: np.ndarray
  u_empty: float
  u_full: float
  evaluations: int
  samples: int = 0
  seed_se: np.ndarray | None = None

  @property
  def total_gain(self) -> float:
    return self.u_full - self.u_empty

  @property
  def efficiency_gap(self) -> float:
    """Σ values - total gain (0 for Shapley; Banzhaf is not efficient)."""
    return float(self.values.sum() - self.total_gain)

  def shares(self) -> np.ndarray:
    """Values as fractions of their sum (the split of the gain; may be negative)."""
    s = self.values.sum()
    if s == 0:
      raise AttributionError("values sum to zero: no gain to split in proportion")
    return self.values / s

  def to_dict(self) -> dict:
    return {
      "method": self.method,
      "names": list(self.names),
      "values": [float(v) for v in self.values],
      "se": [float(v) for v in self.se],
      "u_empty": self.u_empty,
      "u_full": self.u_full,
      "total_gain": self.total_gain,
      "efficiency_gap": self.efficiency_gap,
      "evaluations": self.evaluations,
      "samples": self.samples,
      "seed_se": None if self.seed_se is None else [float(v) for v in self.seed_se],
    }


def _names(names, n):
  names = [f"c{i}" for i in range(n)] if names is None else [str(x) for x in names]
  if len(names) != n:
    raise AttributionError(f"got {len(names)} names for {n} contributors")
  if len(set(names)) != n:
    raise AttributionError("contributor names must be unique")
  return names


def _as_cached(utility, n) -> CachedUtility:
  if isinstance(utility, CachedUtility):
    if utility.num_players != n:
      raise AttributionError(f"utility has {utility.num_players} players, expected {n}")
    return utility
  return CachedUtility(utility, n)


def all_coalitions(n: int) -> np.ndarray:
  """``[2^n, n]`` booleans; row m is the coalition whose bitmask is m (bit i = player i)."""
  if not 1 <= n <= MAX_EXACT_PLAYERS:
    raise AttributionError(
      f"exact methods enumerate 2^n coalitions and allow 1 <= n <= {MAX_EXACT_PLAYERS}; "
      f"got n={n} (use permutation_shapley or banzhaf_msr)"
    )
  m = np.arange(2**n)
  return ((m[:, None] >> np.arange(n)) & 1).astype(bool)


def shapley_from_table(u: np.ndarray) -> np.ndarray:
  """Exact Shapley values from a ``[2^n]`` utility table indexed by bitmask.

  φ_i = Σ_{T ⊆ N∖{i}} |T|! (n-|T|-1)! / n! · (u(T ∪ {i}) - u(T)).
  """
  u = np.asarray(u, np.float64)
  n = int(round(math.log2(len(u))))
  m = np.arange(2**n)
  size = np.array([bin(x).count("1") for x in m])
  w = np.array(
    [math.factorial(s) * math.factorial(n - s - 1) / math.factorial(n) for s in range(n)]
  )
  phi = np.zeros(n)
  for i in range(n):
    without = m[((m >> i) & 1) == 0]  # [2^(n-1)] coalitions lacking i
    phi[i] = np.sum(w[size[without]] * (u[without | (1 << i)] - u[without]))
  return phi


def banzhaf_from_table(u: np.ndarray) -> np.ndarray:
  """Exact Banzhaf values: the mean of u(T ∪ {i}) - u(T) over all T ⊆ N∖{i}."""
  u = np.asarray(u, np.float64)
  n = int(round(math.log2(len(u))))
  m = np.arange(2**n)
  phi = np.zeros(n)
  for i in range(n):
    without = m[((m >> i) & 1) == 0]
    phi[i] = np.mean(u[without | (1 << i)] - u[without])
  return phi


def exact_shapley(utility: Utility, n: int, names=None) -> Attribution:
  """Exact Shapley values over n contributors (all 2^n coalitions in one batch).

  Args:
    utility: batched utility ``[C, n] bool -> [C]``.
    n: number of contributors (at most ``MAX_EXACT_PLAYERS``).
    names: optional contributor names.

  Returns:
    ``Attribution``; values sum to u(all) - u(∅) up to float rounding.
  """
  names = _names(names, n)
  util = _as_cached(utility, n)
  u = util(all_coalitions(n))  # [2^n]
  return Attribution(
    "exact_shapley", names, shapley_from_table(u), np.zeros(n), u[0], u[-1], util.evaluations
  )


def exact_banzhaf(utility: Utility, n: int, names=None) -> Attribution:
  """Exact Banzhaf values over n contributors (not efficient: Σ values ≠ gain in general)."""
  names = _names(names, n)
  util = _as_cached(utility, n)
  u = util(all_coalitions(n))
  return Attribution(
    "exact_banzhaf", names, banzhaf_from_table(u), np.zeros(n), u[0], u[-1], util.evaluations
  )


def arrival_order(utility: Utility, n: int, order=None, names=None) -> Attribution:
  """First-come accounting: each contributor gets its marginal gain on arrival.

  Efficient, but not symmetric: who arrives first is luck (the "ML luck" case
  that Shapley removes by averaging over every order). Shown for comparison.

  Args:
    utility: batched utility.
    n: number of contributors.
    order: arrival order (indices, earliest first); default 0..n-1.
    names: optional contributor names.
  """
  names = _names(names, n)
  order = list(range(n)) if order is None else [int(i) for i in order]
  if sorted(order) != list(range(n)):
    raise AttributionError(f"order must be a permutation of 0..{n - 1}, got {order}")
  util = _as_cached(utility, n)
  prefixes = np.zeros((n + 1, n), bool)
  for k in range(1, n + 1):
    prefixes[k] = prefixes[k - 1]
    prefixes[k, order[k - 1]] = True
  u = util(prefixes)
  values = np.zeros(n)
  values[order] = np.diff(u)
  return Attribution("arrival_order", names, values, np.zeros(n), u[0], u[-1], util.evaluations)


def permutation_shapley(
  utility: Utility,
  n: int,
  num_permutations: int,
  *,
  seed: int = 0,
  antithetic: bool = True,
  names=None,
) -> Attribution:
  """Monte-Carlo permutation Shapley: mean marginal contribution along random orders.

  All prefixes of all sampled permutations are evaluated in one utility call.
  Antithetic sampling pairs each order with its reverse, which lowers variance
  when contributions are sub- or super-additive.

  Args:
    utility: batched utility.
    n: number of contributors.
    num_permutations: permutations drawn (even when antithetic).
    seed: numpy seed of the permutation sampler.
    antithetic: pair each permutation with its reverse.
    names: optional contributor names.

  Returns:
    ``Attribution`` with standard errors over permutations. Each permutation's
    marginals telescope to u(all) - u(∅), so Σ values equals the gain exactly.
  """
  names = _names(names, n)
  if num_permutations < 1:
    raise AttributionError(f"num_permutations must be >= 1, got {num_permutations}")
  util = _as_cached(utility, n)
  rng = np.random.default_rng(seed)
  half = math.ceil(num_permutations / 2) if antithetic else num_permutations
  perms = np.stack([rng.permutation(n) for _ in range(half)])
  if antithetic:
    perms = np.concatenate([perms, perms[:, ::-1]])[: max(num_permutations, 2)]
  p = len(perms)
  # prefixes[j, k] = first k players of permutation j, as a coalition: [P, n+1, n].
  prefixes = np.zeros((p, n + 1, n), bool)
  for k in range(1, n + 1):
    prefixes[:, k] = prefixes[:, k - 1]
    prefixes[np.arange(p), k, perms[:, k - 1]] = True
  u = util(prefixes.reshape(-1, n)).reshape(p, n + 1)
  marg = np.zeros((p, n))
  marg[np.arange(p)[:, None], perms] = np.diff(u, axis=1)
  values = marg.mean(0)
  # Antithetic pairs are dependent: the standard error treats each pair as one draw.
  if antithetic and p >= 4 and p % 2 == 0:
    pair = 0.5 * (marg[: p // 2] + marg[p // 2 :])
    se = pair.std(0, ddof=1) / np.sqrt(p // 2)
  else:
    se = marg.std(0, ddof=1) / np.sqrt(p) if p > 1 else np.full(n, np.nan)
  return Attribution(
    "permutation_shapley", names, values, se, float(u[0, 0]), float(u[0, -1]), util.evaluations, p
  )


def banzhaf_msr(utility: Utility, n: int, num_samples: int, *, seed: int = 0, names=None):
  """Monte-Carlo Banzhaf by maximum sample reuse.

  Draws subsets with each contributor in w.p. 1/2 and estimates
  φ_i = mean u(T | i ∈ T) - mean u(T | i ∉ T), reusing every sample for every i.

  Args:
    utility: batched utility.
    n: number of contributors.
    num_samples: random subsets drawn (all evaluated in one call).
    seed: numpy seed of the subset sampler.
    names: optional contributor names.

  Returns:
    ``Attribution`` (Banzhaf is not efficient; ``efficiency_gap`` says by how much).
  """
  names = _names(names, n)
  if num_samples < 4:
    raise AttributionError(f"banzhaf_msr needs num_samples >= 4, got {num_samples}")
  util = _as_cached(utility, n)
  rng = np.random.default_rng(seed)
  subsets = rng.random((num_samples, n)) < 0.5
  ends = np.stack([np.zeros(n, bool), np.ones(n, bool)])
  u_all = util(np.concatenate([ends, subsets]))
  u0, u1, u = u_all[0], u_all[1], u_all[2:]
  values, se = np.zeros(n), np.zeros(n)
  for i in range(n):
    a, b = u[subsets[:, i]], u[~subsets[:, i]]
    if len(a) < 2 or len(b) < 2:
      raise AttributionError(
        f"contributor {names[i]} was in too few or too many samples; raise num_samples"
      )
    values[i] = a.mean() - b.mean()
    se[i] = math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
  return Attribution("banzhaf_msr", names, values, se, u0, u1, util.evaluations, num_samples)


# ----------------------------------------------------------------------------
# The copy policy.


def _content_keys(task: Task) -> np.ndarray:
  """A content hash per pool row: the inputs (and, for classification, the label)."""
  keys = []
  for i in range(task.pool_size):
    h = hashlib.blake2b(np.ascontiguousarray(task.x[i]).tobytes(), digest_size=16)
    if task.kind == CLASSIFICATION:
      h.update(np.int64(task.y[i]).tobytes())
    keys.append(h.digest())
  return np.array(keys, dtype=object)


def dedupe_contributors(task: Task, contributors, base=None, order=None):
  """Gives each distinct piece of content to its first owner (the copy policy).

  Content (an identical pool row, by hash) already in the base set, or already
  submitted by a contributor earlier in ``order``, is removed from later
  submissions; a contributor's own repeats count once. A verbatim copy of
  someone else's data therefore brings nothing new and earns nothing, and the
  original keeps its credit. Near-copies (edited windows) are not caught.

  Args:
    task: the task whose pool the rows index.
    contributors: ``[n, N]`` multiplicities.
    base: ``[N]`` multiplicities of the base set (already owned), or None.
    order: submission order (contributor indices, earliest first); default 0..n-1.

  Returns:
    ``(deduped [n, N] float32 multiplicities in {0, 1}, removed [n] rows dropped)``.
  """
  contrib = np.asarray(contributors, np.float32)
  n = contrib.shape[0]
  order = list(range(n)) if order is None else [int(i) for i in order]
  if sorted(order) != list(range(n)):
    raise AttributionError(f"order must be a permutation of 0..{n - 1}, got {order}")
  keys = _content_keys(task)
  owned = set()
  if base is not None:
    owned.update(keys[np.asarray(base) > 0])
  out = np.zeros_like(contrib)
  removed = np.zeros(n, np.int64)
  for c in order:
    for i in np.flatnonzero(contrib[c] > 0):
      if keys[i] in owned:
        removed[c] += 1
      else:
        owned.add(keys[i])
        out[c, i] = 1.0
  return out, removed


# ----------------------------------------------------------------------------
# ``metaval attribute``.


def _contributor_rows(task: Task, cfg, rng) -> tuple[list[str], np.ndarray, np.ndarray]:
  """Contributors and base set from the config: ``[n]`` names, ``[n, N]``, ``[N]``."""
  n_pool = task.pool_size
  c = cfg.contributors
  if c.by == "group":
    names = [s for s in c.groups.split(",") if s] if c.groups else []
    if not names:
      names = list(task.group_names[: c.num])
    unknown = [s for s in names if s not in task.group_names]
    if unknown:
      raise AttributionError(
        f"unknown group(s) {unknown} for task {task.name!r}; available: "
        f"{', '.join(task.group_names)}"
      )
    rows = np.stack([task.groups == task.group_names.index(s) for s in names]).astype(np.float32)
    if c.max_points:
      for r in rows:
        on = np.flatnonzero(r)
        r[on[c.max_points :]] = 0.0
    rest = np.flatnonzero(rows.sum(0) == 0)
  elif c.by == "random":
    if c.num < 1 or c.num * c.points > n_pool:
      raise AttributionError(f"cannot draw {c.num} contributors of {c.points} points each")
    perm = rng.permutation(n_pool)
    names = [f"contributor_{i}" for i in range(c.num)]
    rows = np.zeros((c.num, n_pool), np.float32)
    for i in range(c.num):
      rows[i, perm[i * c.points : (i + 1) * c.points]] = 1.0
    rest = perm[c.num * c.points :]
  else:
    raise AttributionError(f"contributors.by must be 'group' or 'random', got {c.by!r}")
  base = np.zeros(n_pool, np.float32)
  size = min(int(cfg.base_size), len(rest)) if cfg.base_size else len(rest)
  base[rng.choice(rest, size, replace=False)] = 1.0
  if cfg.copy_of:
    if cfg.copy_of not in names:
      raise AttributionError(f"copy_of {cfg.copy_of!r} is not a contributor; have {names}")
    rows = np.concatenate([rows, rows[names.index(cfg.copy_of)][None]])
    names.append(f"copy_of_{cfg.copy_of}")
  return names, rows, base


def _atomic_json(path: str, obj) -> None:
  with open(path + ".tmp", "w") as f:
    json.dump(obj, f, indent=2)
  os.replace(path + ".tmp", path)


def attribute(cfg, utility: Utility, n: int, names) -> list[Attribution]:
  """Runs the configured estimators on one utility (shared cache)."""
  util = _as_cached(utility, n)
  method = cfg.method
  if method == "auto":
    method = "exact" if n <= cfg.max_exact else "sampling"
  if method == "exact":
    return [
      exact_shapley(util, n, names),
      exact_banzhaf(util, n, names),
      arrival_order(util, n, names=names),
    ]
  if method == "sampling":
    out = [
      permutation_shapley(util, n, cfg.num_permutations, seed=cfg.seed, names=names),
      banzhaf_msr(util, n, cfg.banzhaf_samples, seed=cfg.seed, names=names),
    ]
    sampled = util.evaluations
    if cfg.compare_exact:
      # Ground truth for the sampling error (reuses every sampled coalition).
      out += [exact_shapley(util, n, names), exact_banzhaf(util, n, names)]
      for mc, ex in ((out[0], out[2]), (out[1], out[3])):
        z = np.abs(mc.values - ex.values) / np.maximum(mc.se, 1e-12)
        print(
          f"{mc.method}: {sampled} of {2**n} coalitions; max |error| "
          f"{np.abs(mc.values - ex.values).max():.4f}, max |error|/se {z.max():.2f}, "
          f"rank agreement (Spearman) {_spearman(mc.values, ex.values):.3f}"
        )
    return out
  raise AttributionError(f"method must be auto, exact or sampling, got {method!r}")


def _spearman(a, b) -> float:
  from scipy import stats

  return float(stats.spearmanr(a, b).statistic)


def format_table(results: dict[str, list[Attribution]]) -> str:
  """A markdown table: one row per contributor, one column per (policy, method).

  Cells show ``value ± standard error``: the Monte-Carlo error for sampling
  methods, the spread over training seeds for exact ones (when several seeds).
  """
  cols = [(pol, a) for pol, lst in results.items() for a in lst]
  names = cols[0][1].names
  head = "| contributor | " + " | ".join(f"{p}: {a.method}" for p, a in cols) + " |"
  lines = [head, "|---" * (len(cols) + 1) + "|"]
  for i, nm in enumerate(names):
    cells = []
    for _, a in cols:
      cell = f"{a.values[i]:+.4f}"
      if a.se[i] > 0:
        cell += f" ± {a.se[i]:.4f}"
      elif a.seed_se is not None:
        cell += f" ± {a.seed_se[i]:.4f}"
      cells.append(cell)
    lines.append(f"| {nm} | " + " | ".join(cells) + " |")
  lines.append("| **Σ values** | " + " | ".join(f"{a.values.sum():+.4f}" for _, a in cols) + " |")
  lines.append(
    "| **gain u(all)-u(∅)** | " + " | ".join(f"{a.total_gain:+.4f}" for _, a in cols) + " |"
  )
  return "\n".join(lines)


def run(config, workdir: str | None = None) -> dict:
  """``metaval attribute``: split a retraining gain among contributors, pay royalties.

  Trains every needed coalition with ``train_many`` (exact: all 2^n in one
  batch), attributes the gain with Shapley and Banzhaf, optionally adds a
  contributor who copies another's data and values it with and without the copy
  policy (``dedupe_contributors``), then writes ``attribution.json``,
  ``attribution.md`` and the royalty ledger ``royalties.json`` (from the Shapley
  values of the deduplicated game) to ``workdir``.
  """
  from metaval.data import get_task
  from metaval.valuation import royalties

  task = get_task(config.task.name, seed=config.task.seed, **dict(config.task.get("kwargs", {})))
  spec = LearnerSpec.from_config(config.learner)
  rng = np.random.default_rng(config.seed)
  names, rows, base = _contributor_rows(task, config, rng)
  n = len(names)
  print(task.describe())
  print(
    f"{n} contributors ({', '.join(f'{a}: {int(r.sum())} pts' for a, r in zip(names, rows))}), "
    f"base {int(base.sum())} pts, learner {spec.family} w{spec.width} x{config.num_seeds} seeds, "
    f"metric {config.metric}"
  )
  policies = {"plain": rows}
  if config.copy_of or config.dedupe:
    deduped, removed = dedupe_contributors(task, rows, base)
    if (removed > 0).any():
      print(
        "copy policy removed rows already owned: "
        + ", ".join(f"{a}: {int(k)}" for a, k in zip(names, removed) if k)
      )
    policies["deduped"] = deduped
  results, timing, utilities = {}, {}, {}
  for pol, contrib in policies.items():
    keep = np.flatnonzero(contrib.sum(1) > 0)
    util = RetrainingUtility(
      task,
      spec,
      contrib[keep],
      base,
      metric=config.metric,
      num_seeds=config.num_seeds,
      seed=config.seed,
      chunk=config.chunk or None,
    )
    t0 = time.perf_counter()
    res = attribute(config, util, len(keep), [names[i] for i in keep])
    timing[pol] = {
      "seconds": time.perf_counter() - t0,
      "models_trained": util.models_trained,
      "coalitions": len(util.per_seed),
    }
    # Every trained coalition's metric per seed, for audit and re-analysis:
    # key = membership bits in contributor order (of the contributors kept).
    utilities[pol] = {
      "contributors": [names[i] for i in keep],
      "per_seed": {
        "".join(
          "1" if b else "0" for b in np.unpackbits(np.frombuffer(k, np.uint8))[: len(keep)]
        ): [float(x) for x in v]
        for k, v in util.per_seed.items()
      },
    }
    if config.num_seeds >= 2 and len(util.per_seed) == 2 ** len(keep):
      # Exact methods are linear in u: compute them per seed for a seed spread.
      tables = np.stack(
        [util.per_seed[np.packbits(c).tobytes()] for c in all_coalitions(len(keep))], 1
      )  # [K, 2^n]
      per_fn = {"exact_shapley": shapley_from_table, "exact_banzhaf": banzhaf_from_table}
      for a in res:
        if a.method in per_fn:
          per = np.stack([per_fn[a.method](t) for t in tables])  # [K, n]
          a.seed_se = per.std(0, ddof=1) / np.sqrt(len(per))
    if len(keep) < n:
      # Contributors whose submission was entirely removed get exactly zero.
      for a in res:
        full = np.zeros(n)
        full[keep] = a.values
        se = np.zeros(n)
        se[keep] = a.se
        a.values, a.se, a.names = full, se, list(names)
        if a.seed_se is not None:
          sse = np.zeros(n)
          sse[keep] = a.seed_se
          a.seed_se = sse
    results[pol] = res
    print(
      f"[{pol}] {util.models_trained} models for {len(util.per_seed)} coalitions in "
      f"{timing[pol]['seconds']:.1f}s"
    )
  table = format_table(results)
  print(table)
  final = results["deduped" if "deduped" in results else "plain"][0]
  ledger = royalties.build_ledger(
    {a: float(v) for a, v in zip(final.names, final.values)},
    revenue_per_inference=config.royalties.revenue_per_inference,
    num_inferences=config.royalties.num_inferences,
    unit=config.royalties.unit,
    negative_policy=config.royalties.negative_policy,
    source=f"{final.method} over {'deduplicated ' if 'deduped' in results else ''}contributors, "
    f"task {task.name}, metric {config.metric}",
  )
  print(royalties.format_ledger(ledger))
  out = {
    "task": task.name,
    "learner": spec.to_dict(),
    "metric": config.metric,
    "num_seeds": config.num_seeds,
    "contributor_points": {a: int(r.sum()) for a, r in zip(names, rows)},
    "base_points": int(base.sum()),
    "results": {pol: [a.to_dict() for a in lst] for pol, lst in results.items()},
    "timing": timing,
    "ledger_hash": ledger["sha256"],
    "utilities": utilities,
  }
  if workdir:
    os.makedirs(workdir, exist_ok=True)
    _atomic_json(os.path.join(workdir, "attribution.json"), out)
    with open(os.path.join(workdir, "attribution.md.tmp"), "w") as f:
      f.write(table + "\n")
    os.replace(os.path.join(workdir, "attribution.md.tmp"), os.path.join(workdir, "attribution.md"))
    royalties.write_ledger(ledger, os.path.join(workdir, "royalties.json"))
    print(f"wrote {workdir}/attribution.json, attribution.md, royalties.json")
  return out
