"""Contributor games: attribute a gain among contributors, the copy policy, predictor games.

A *contributor* brings a set of pool points (a row of multiplicities over the
task pool). For a coalition T of contributors the utility is

    u(T) = metric(train(B ∪ ⋃_{c ∈ T} S_c))    (higher is better),

so the gain to split is u(all) - u(∅) = metric(B ∪ S) - metric(B). The game is
``metaval.games.RetrainingUtility`` with the contributors' rows as players and B as
background (the same utility, cache and empty-set policy as the per-point
baselines); a trained value predictor plays the same role through
``predictor_game`` (no retraining), any other estimator through
``metaval.games.set_function_game``. ``attribute`` runs the estimators of
``metaval.games`` (exact Shapley/Banzhaf and arrival order for few contributors,
permutation Shapley and Banzhaf-MSR otherwise) on one game, so they share its cache.

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

import hashlib

import numpy as np
from scipy import stats

from metaval import games
from metaval.data.tasks import CLASSIFICATION, Task
from metaval.games import FunctionGame, Game, GameError, Valuation


def predictor_game(
  predictor, supplements, *, base=None, learner=None, task=None, target: int | str = 0, names=None
) -> FunctionGame:
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
    names: optional contributor names.

  Returns:
    A game over ``len(supplements)`` contributors.
  """
  parts = []
  for i, s in enumerate(supplements):
    if not (isinstance(s, (tuple, list)) and len(s) == 2):
      raise GameError(f"supplement {i} must be a pair (x, y)")
    x, y = np.asarray(s[0]), np.asarray(s[1])
    if x.ndim != 2 or y.shape != (x.shape[0],) or x.shape[0] == 0:
      raise GameError(f"supplement {i} must be x [n, d], y [n] with n >= 1")
    parts.append((x, y))
  if not parts:
    raise GameError("no supplements to attribute")

  def fn(coalitions):
    out = np.zeros(len(coalitions))
    rows = np.flatnonzero(coalitions.any(1))
    if rows.size:
      unions = [
        tuple(np.concatenate([parts[i][j] for i in np.flatnonzero(coalitions[r])]) for j in (0, 1))
        for r in rows
      ]
      for j, facts in predictor.rank(unions, base=base, learner=learner, task=task):
        out[rows[j]] = _target_value(facts, target)
    return out

  return FunctionGame(fn, len(parts), players=names)


def _target_value(facts, target: int | str) -> float:
  if isinstance(target, str):
    names = [t.metric for t in facts.targets]
    if target not in names:
      raise GameError(f"unknown target {target!r}; predictor has {names}")
    return facts.targets[names.index(target)].value
  return facts.targets[int(target)].value


def attribute(
  game: Game,
  *,
  method: str = "auto",
  max_exact: int = 10,
  num_permutations: int = 64,
  banzhaf_samples: int = 128,
  seed: int = 0,
  compare_exact: bool = False,
) -> list[Valuation]:
  """Splits a game's gain among its players with several estimators (one shared cache).

  Args:
    game: the contributors' game.
    method: ``"exact"`` (exact Shapley, exact Banzhaf, arrival order),
      ``"sampling"`` (permutation Shapley, Banzhaf-MSR) or ``"auto"`` (exact when
      there are at most ``max_exact`` players).
    max_exact: the ``"auto"`` threshold.
    num_permutations: permutation Shapley's permutations.
    banzhaf_samples: Banzhaf-MSR's coalitions.
    seed: sampler seed.
    compare_exact: with sampling, also run the exact methods (reusing every sampled
      coalition) and record each sampler's error against them in its ``info``.

  Returns:
    The ``Valuation`` of each estimator, Shapley first.
  """
  if method == "auto":
    method = "exact" if game.num_players <= max_exact else "sampling"
  if method == "exact":
    return [games.exact_shapley(game), games.exact_banzhaf(game), games.arrival_order(game)]
  if method != "sampling":
    raise GameError(f"method must be auto, exact or sampling, got {method!r}")
  out = [
    games.permutation_shapley(game, num_permutations, seed=seed),
    games.banzhaf_msr(game, banzhaf_samples, seed=seed),
  ]
  sampled = game.coalitions
  if compare_exact:
    out += [games.exact_shapley(game), games.exact_banzhaf(game)]
    for mc, ex in ((out[0], out[2]), (out[1], out[3])):
      err = np.abs(mc.values - ex.values)
      mc.info["vs_exact"] = {
        "coalitions_sampled": sampled,
        "coalitions_total": 2**game.num_players,
        "max_abs_error": float(err.max()),
        "max_error_over_se": float((err / np.maximum(mc.stderr, 1e-12)).max()),
        "spearman": float(stats.spearmanr(mc.values, ex.values).statistic),
      }
  return out


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
    raise GameError(f"order must be a permutation of 0..{n - 1}, got {order}")
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
