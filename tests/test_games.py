"""The one game engine: points and groups share a utility, a cache, an empty-set policy."""

import itertools
import math

import numpy as np
import pytest

from metaval import games
from metaval.learners.models import LearnerSpec
from metaval.valuation import noisy

SPEC = LearnerSpec("linear", steps=60, lr=0.05, l2=1e-3)


@pytest.fixture(scope="module")
def task():
  return noisy.noisy_problem("digits", n_train=30, noise_rate=0.1, seed=0).task


def _background_and_players(n):
  """26 background points and 4 single-point players, in both player formats."""
  ids = np.full(n, -1)
  ids[-4:] = np.arange(4)
  rows = np.zeros((4, n), np.float32)
  rows[np.arange(4), n - 4 + np.arange(4)] = 1.0
  return ids, rows, (ids == -1).astype(np.float32)


def test_a_group_game_with_singleton_groups_is_the_point_game(task):
  n = task.pool_size
  points = games.RetrainingUtility(task, SPEC, batch_size=64)
  groups = games.RetrainingUtility(task, SPEC, np.eye(n, dtype=np.float32), batch_size=64)
  coal = np.random.default_rng(0).random((40, n)) < 0.5
  np.testing.assert_array_equal(points.masks(coal), groups.masks(coal))
  np.testing.assert_allclose(points(coal), groups(coal), atol=1e-6)
  assert points.fits == groups.fits == 40
  # The same representation for few players: exact values agree, through one cache each.
  ids, rows, bg = _background_and_players(n)
  a = games.exact_shapley(games.RetrainingUtility(task, SPEC, ids, batch_size=None))
  b = games.exact_shapley(games.RetrainingUtility(task, SPEC, rows, bg, batch_size=None))
  np.testing.assert_allclose(a.values, b.values, atol=1e-6)
  assert a.fits == b.fits == 16 and abs(a.u_empty - b.u_empty) < 1e-6


def test_the_cache_serves_repeats_and_every_estimator(task):
  ids, _, _ = _background_and_players(task.pool_size)
  game = games.RetrainingUtility(task, SPEC, ids, batch_size=8)
  first = game(np.ones((3, 4), bool))  # three copies of one coalition: one fit
  assert game.fits == 1 and game.fits_computed == 8 and game.coalitions == 1
  exact = games.exact_shapley(game)
  assert exact.fits == 15  # 16 coalitions, the full one already cached
  again = [games.exact_banzhaf(game), games.permutation_shapley(game, 6), games.loo(game)]
  assert [v.fits for v in again] == [0, 0, 0] and game.fits == 16
  assert game.full_value == first[0]
  assert abs(again[1].values.sum() - exact.total_gain) < 1e-9


def test_one_empty_set_policy_for_points_and_groups(task):
  n = task.pool_size
  ey = task.evals["test"][1]
  majority = np.bincount(ey).max() / len(ey)
  ids, rows, bg = _background_and_players(n)
  # No background: nothing to train on, U(∅) is the data-free prediction, no fit.
  no_bg = [
    games.RetrainingUtility(task, SPEC, batch_size=4),
    games.RetrainingUtility(task, SPEC, rows, batch_size=4),
  ]
  for g in no_bg:
    assert g.empty_value == pytest.approx(majority, abs=1e-12) and g.fits == 0
  assert games.no_data_value(task, "test/neg_log_loss") == pytest.approx(-math.log(10))
  # With a background: U(∅) is the background's own model (one fit), in both formats.
  with_bg = [
    games.RetrainingUtility(task, SPEC, ids, batch_size=4),
    games.RetrainingUtility(task, SPEC, rows, bg, batch_size=4),
  ]
  empties = [g.empty_value for g in with_bg]
  assert [g.fits for g in with_bg] == [1, 1]
  assert abs(empties[0] - empties[1]) < 1e-6 and abs(empties[0] - majority) > 1e-3
  for g in no_bg + with_bg:
    with pytest.raises(games.GameError, match="coalitions must be"):
      g(np.zeros((1, g.num_players + 1), bool))


def _table(fn, n):
  return np.array([fn({i for i in range(n) if m >> i & 1}) for m in range(2**n)], np.float64)


def test_exact_shapley_axioms_on_a_table_game():
  # Players 0 and 1 are interchangeable, 2 is a null player, 3 interacts with 0.
  def u(s):
    return math.sqrt(len(s & {0, 1})) + 0.3 * (3 in s) + 0.2 * (0 in s and 3 in s) + 1.0

  n = 4
  table = _table(u, n)
  v = games.exact_shapley(games.TableGame(table))
  assert abs(v.values.sum() - (table[-1] - table[0])) < 1e-12  # efficiency
  assert abs(v.values[0] - v.values[1]) > 0.05  # 0 and 3 interact, 1 does not...
  sym = _table(lambda s: math.sqrt(len(s & {0, 1})) + 0.3 * (3 in s) + 1.0, n)
  w = games.exact_shapley(games.TableGame(sym))
  assert abs(w.values[0] - w.values[1]) < 1e-12  # ...without it they are symmetric
  for res in (v, w, games.exact_banzhaf(games.TableGame(table))):
    assert abs(res.values[2]) < 1e-12  # null player
  # The definition: the mean marginal over all n! orders.
  phi = np.zeros(n)
  for order in itertools.permutations(range(n)):
    seen = set()
    for i in order:
      phi[i] += u(seen | {i}) - u(seen)
      seen.add(i)
  np.testing.assert_allclose(v.values, phi / math.factorial(n), atol=1e-12)


def test_samplers_report_costs_and_errors_consistently():
  n = 6
  w = np.random.default_rng(1).uniform(0.1, 1.0, n)
  table = _table(lambda s: math.sqrt(sum(w[i] for i in s)), n)
  exact = games.exact_shapley(games.TableGame(table)).values
  for seed in range(3):
    game = games.TableGame(table, batch_size=16)
    tmc = games.tmc_shapley(game, num_permutations=400, rtol=None, block=3, seed=seed)
    assert tmc.fits_computed >= tmc.fits >= 1 and tmc.fits <= 2**n
    # Within five standard errors of the exact values, for every player.
    assert np.all(np.abs(tmc.values - exact) < 5 * tmc.stderr + 1e-9), (tmc.values, exact)
    assert abs(tmc.values.sum() - (table[-1] - table[0])) < 1e-9
  bz = games.banzhaf_msr(games.TableGame(table), 8, seed=0)
  assert bz.samples == 8 and np.isnan(bz.u_full)  # not evaluated by Banzhaf-MSR


def test_valuation_round_trips_through_json():
  v = games.exact_shapley(games.TableGame(np.arange(8.0), players=["a", "b", "c"]))
  v.info["note"] = "x"
  back = games.Valuation.from_dict(v.to_dict())
  np.testing.assert_array_equal(back.values, v.values)
  assert back.players == ["a", "b", "c"] and back.method == "exact_shapley"
  assert back.total_gain == v.total_gain and back.info == {"note": "x"}
  bz = games.Valuation.from_dict(games.banzhaf_msr(games.TableGame(np.arange(8.0)), 4).to_dict())
  assert np.isnan(bz.u_full)


# Solved to a tight tolerance, so that warm and cold solves meet at one optimum.
SOLVED = LearnerSpec("linear", steps=400, l2=1e-2, solver="lbfgs", tol=1e-6)


def test_warm_starts_reach_the_cold_optimum(task):
  # A solved learner's utility does not depend on where the solver starts: warm
  # starts from hinted parents (permutation prefixes) or from the last batch's mean
  # solution give the cold solve's accuracy. (Accuracy, not log-loss: a coalition
  # that misses a class has no finite optimum, its unpenalised bias for that class
  # keeps falling, which moves the test log-loss but never the predicted class.)
  n = task.pool_size
  warm = games.RetrainingUtility(task, SOLVED, batch_size=16)
  cold = games.RetrainingUtility(task, SOLVED, batch_size=16, warm_start=False)
  tmc = games.tmc_shapley(warm, num_permutations=3, rtol=None, block=4, seed=0)
  assert tmc.fits == warm.fits == warm.coalitions - 1  # U(∅) is not trained
  rows, vals = warm.cached()
  rng = np.random.default_rng(1)
  coal = np.concatenate([rows, rng.random((40, n)) < 0.5])  # random ones use the reference
  diff = np.abs(warm(coal) - cold(coal))
  one_point = 1.0 / len(task.evals["test"][1])
  assert np.mean(diff > 1e-9) <= 0.1 and diff.max() <= 2 * one_point + 1e-9, diff
  # Every coalition's solution is kept; the values still telescope to the gain.
  assert len(warm._solutions) == warm.coalitions - 1
  assert abs(tmc.values.sum() - tmc.total_gain) < 1e-9


def test_solved_batches_count_padding_and_hints_are_optional(task):
  n = task.pool_size
  coal = np.random.default_rng(2).random((5, n)) < 0.5
  exact = games.RetrainingUtility(task, SOLVED, batch_size=None, num_seeds=2)
  exact(coal)
  assert exact.fits == exact.fits_computed == 10  # one batch of exactly its rows
  padded = games.RetrainingUtility(task, SOLVED, batch_size=8, num_seeds=2)
  padded(coal)
  assert padded.fits == 10 and padded.fits_computed % 8 == 0 and padded.fits_computed >= 10
  # A table game ignores start hints; a hint never changes a cached value.
  table = games.TableGame(np.arange(8.0))
  table.start_from(np.ones((1, 3), bool), np.zeros((1, 3), bool))
  assert table.full_value == 7.0
  with pytest.raises(games.GameError, match="start_from got"):
    padded.start_from(coal, coal[:2])


def test_solved_chunks_on_two_threads_give_what_one_thread_gives(task):
  # Chunks of a call run two at a time; their starts are fixed per wave, so the
  # utilities and kept solutions are the same bit for bit whatever the thread count.
  n = task.pool_size
  rng = np.random.default_rng(3)
  coal = rng.random((40, n)) < rng.uniform(0.2, 0.9, (40, 1))  # several buckets
  out = {}
  for threads in (1, 2):
    game = games.RetrainingUtility(task, SOLVED, batch_size=4, threads=threads)
    first = game(coal[:20])
    game.start_from(coal[20:], coal[:20])  # hinted parents, solved in the first call
    out[threads] = (first, game(coal[20:]), game._reference["w"])
  assert all(np.array_equal(a, b) for a, b in zip(out[1], out[2]))
  with pytest.raises(games.GameError, match="threads"):
    games.RetrainingUtility(task, SOLVED, threads=0)


def test_preconditioned_leave_one_out_gives_the_plain_values(task):
  # LOO's precise coalitions start from the grand coalition's inverse Hessian: the
  # same optimum, so the same values as without it (to float32 round-off: a test
  # point on the decision boundary may flip, one point of accuracy). Accuracy only:
  # a coalition missing a class has no finite optimum (see above).
  vals = {}
  for pre in (False, True):
    game = games.RetrainingUtility(task, SOLVED, batch_size=8, precondition=pre)
    vals[pre] = games.loo(game).values
  assert game._precond[1] is not None  # the last game (precondition=True) used one
  diff = np.abs(vals[True] - vals[False])
  one_point = 1.0 / len(task.evals["test"][1])
  assert diff.max() <= one_point + 1e-6 and np.mean(diff > 1e-6) <= 0.1, diff
