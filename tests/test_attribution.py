"""Shapley / Banzhaf attribution over contributors, from tables and from retraining."""

import itertools
import json
import math

import numpy as np
import pytest

from metaval import cli, games
from metaval.data import get_task
from metaval.games import GameError
from metaval.learners import LearnerSpec
from metaval.valuation import attribution as A

MLP = LearnerSpec("mlp", width=32, steps=150, lr=0.01, l2=1e-4)


def _brute_force_shapley(u, n):
  """Average marginal contribution over all n! orders (the definition)."""
  phi = np.zeros(n)
  for order in itertools.permutations(range(n)):
    mask = 0
    for i in order:
      phi[i] += u[mask | (1 << i)] - u[mask]
      mask |= 1 << i
  return phi / math.factorial(n)


def _permute_table(u, n, perm):
  """Table of the same game with player i renamed perm[i]."""
  out = np.zeros_like(u)
  for m in range(2**n):
    m2 = sum(1 << perm[i] for i in range(n) if m >> i & 1)
    out[m2] = u[m]
  return out


@pytest.mark.parametrize("n", [1, 3, 5])
def test_exact_shapley_matches_the_definition_and_is_efficient(n):
  u = np.random.default_rng(n).normal(size=2**n)
  res = games.exact_shapley(games.TableGame(u))
  np.testing.assert_allclose(res.values, _brute_force_shapley(u, n), atol=1e-12)
  assert abs(res.values.sum() - (u[-1] - u[0])) < 1e-12
  assert abs(res.efficiency_gap) < 1e-12 and res.fits == 2**n


def test_additive_game_gives_each_contributor_its_own_part():
  a = np.array([0.3, -0.1, 0.05, 0.0])
  u = np.array([sum(a[i] for i in range(4) if m >> i & 1) for m in range(16)]) + 0.7
  for f in (games.exact_shapley, games.exact_banzhaf):
    np.testing.assert_allclose(f(games.TableGame(u)).values, a, atol=1e-12)


def test_ml_luck_two_contributors_with_half_each_get_equal_shares_in_every_order():
  # Players 0 and 1 each bring the same half of the gain (either alone suffices,
  # both together add nothing more: who "came first" is luck); player 2 is
  # additive. First-come accounting pays the lucky one 0.5 and the other 0.
  n = 3
  u = np.array([(0.5 if (m & 0b011) else 0.0) + (0.5 if m & 0b100 else 0.0) for m in range(8)])
  for perm in itertools.permutations(range(n)):
    res = games.exact_shapley(games.TableGame(_permute_table(u, n, perm)))
    assert res.values[perm[0]] == pytest.approx(0.25, abs=1e-12)
    assert res.values[perm[1]] == pytest.approx(0.25, abs=1e-12)
    assert res.values[perm[2]] == pytest.approx(0.5, abs=1e-12)
    # First-come accounting pays whoever of the two arrives first 0.5, the other 0.
    first = games.arrival_order(games.TableGame(_permute_table(u, n, perm)), order=list(perm))
    assert (first.values[perm[0]], first.values[perm[1]]) == (0.5, 0.0)
    mc = games.permutation_shapley(games.TableGame(_permute_table(u, n, perm)), 40, seed=1)
    assert abs(mc.values.sum() - 1.0) < 1e-12  # telescoping: exactly efficient
    assert abs(mc.values[perm[0]] - mc.values[perm[1]]) < 4 * mc.stderr[perm[0]] + 0.05


def test_sampling_estimators_agree_with_exact_within_their_error():
  n = 8
  w = np.random.default_rng(0).uniform(0.1, 1.0, size=n)
  # A submodular game (diminishing returns): marginals depend on the coalition.
  u = np.array([math.sqrt(sum(w[i] for i in range(n) if m >> i & 1)) for m in range(2**n)])
  util = games.TableGame(u)
  exact, mc = games.exact_shapley(util), games.permutation_shapley(util, 200, seed=0)
  assert abs(mc.values.sum() - exact.values.sum()) < 1e-12
  z = np.abs(mc.values - exact.values) / np.maximum(mc.stderr, 1e-9)
  assert z.max() < 4.0, z
  assert np.all(mc.stderr < 0.02)
  bz_exact, bz = games.exact_banzhaf(util), games.banzhaf_msr(util, 2000, seed=0)
  z = np.abs(bz.values - bz_exact.values) / bz.stderr
  assert z.max() < 4.0, z
  assert abs(bz_exact.efficiency_gap) > 1e-3  # Banzhaf is not efficient here
  assert np.argsort(bz.values).tolist() == np.argsort(exact.values).tolist()


def test_cached_utility_evaluates_each_coalition_once_in_one_batch():
  calls = []

  def fn(c):
    calls.append(len(c))
    return c.sum(1).astype(float) ** 2

  util = games.FunctionGame(fn, 4)
  games.exact_shapley(util)
  games.exact_banzhaf(util)
  games.permutation_shapley(util, 10)
  assert calls == [16]  # everything after the first batch came from the cache


def _digits_setup(seed=0):
  task = get_task("digits")
  n_pool = task.pool_size
  perm = np.random.default_rng(seed).permutation(n_pool)
  base = np.zeros(n_pool, np.float32)
  base[perm[:100]] = 1.0
  halves = np.zeros((2, n_pool), np.float32)
  for k in range(task.num_classes):  # two disjoint halves with the same class mix
    idx = [i for i in perm[100:] if task.y[i] == k][:12]
    halves[0, idx[:6]] = 1.0
    halves[1, idx[6:]] = 1.0
  return task, base, halves, perm


def _game(task, contrib, base, metric="test/accuracy", **kw):
  """The contributors' retraining game, every call one batch (as ``metaval attribute``)."""
  return games.RetrainingUtility(task, MLP, contrib, base, metric=metric, batch_size=None, **kw)


def test_retraining_shapley_is_efficient_symmetric_and_copies_split_or_earn_nothing():
  task, base, halves, perm = _digits_setup()
  copy_of_base = np.zeros_like(base)
  copy_of_base[perm[:60]] = 1.0  # 60 points already in B, submitted again
  contrib = np.stack([halves[0], halves[1], copy_of_base, halves[0]])  # 3 = copy of 0
  names = ["half_a", "half_b", "copy_of_base", "copy_of_a"]
  util = _game(task, contrib, base, num_seeds=4, names=names)
  res = games.exact_shapley(util)
  assert util.fits == 16 * 4  # all coalitions x seeds, in one batch
  assert res.players == names and res.seed_stderr.shape == (
    4,
  )  # all coalitions x seeds, in one batch
  gain = res.total_gain
  assert gain > 0.03, gain
  assert abs(res.values.sum() - gain) < 1e-9  # efficiency
  # A verbatim copy of another contributor's data is *symmetric* to it under
  # plain Shapley: exactly the same value (the copier takes half the credit).
  assert res.values[3] == pytest.approx(res.values[0], abs=1e-12)
  # A copy of data already in the base set earns (near) nothing.
  assert abs(res.values[2]) < 0.1 * gain, res.values
  # The copy policy removes both copies before the game: they earn exactly 0,
  # and the original gets (near) its copy-free credit back.
  deduped, removed = A.dedupe_contributors(task, contrib, base)
  assert removed.tolist() == [0, 0, 60, 60]
  solo = games.exact_shapley(_game(task, contrib[:2], base, num_seeds=4))
  # Symmetry in distribution: two halves of the same class mix, shares within 25%.
  assert abs(solo.values[0] - solo.values[1]) < 0.25 * solo.total_gain, solo.values
  assert res.values[0] < 0.75 * solo.values[0]  # the copier stole a real part
  np.testing.assert_array_equal(deduped[:2], contrib[:2])
  assert deduped[2:].sum() == 0


def test_retraining_utility_errors_name_the_problem():
  task, base, halves, _ = _digits_setup()
  with pytest.raises(GameError, match="players must be"):
    _game(task, halves[:, :10], base)
  with pytest.raises(GameError, match="unknown metric"):
    _game(task, halves, base, metric="test/acc")
  # No base set and a metric without a data-free default: U(∅) must be given.
  with pytest.raises(GameError, match="empty_value"):
    _game(task, halves, None, metric="test/class_0/accuracy")
  with pytest.raises(GameError, match="brings no data"):
    _game(task, halves * 0, base)
  with pytest.raises(GameError, match="use permutation_shapley"):
    games.exact_shapley(games.set_function_game(len, 30))
  with pytest.raises(GameError, match="NaN"):
    games.exact_shapley(games.FunctionGame(lambda c: np.full(len(c), np.nan), 2))
  with pytest.raises(GameError, match="unique"):
    _game(task, halves, base, names=["a", "a"])


def test_empty_base_uses_the_given_empty_value():
  task, _, halves, _ = _digits_setup()
  util = _game(task, halves, None, empty_value=0.1)
  res = games.exact_shapley(util)
  assert res.u_empty == 0.1 and res.u_full > 0.7
  assert abs(res.values.sum() - (res.u_full - 0.1)) < 1e-9
  assert util.fits == 3  # the empty coalition is not trained: there is nothing to train on


def test_empty_base_defaults_to_the_no_data_prediction():
  """The one empty-set policy: with no base, U(∅) is the majority class's share."""
  task, _, halves, _ = _digits_setup()
  res = games.exact_shapley(_game(task, halves, None))
  ey = task.evals["test"][1]
  assert res.u_empty == pytest.approx(np.bincount(ey).max() / len(ey), abs=1e-12)


def test_cli_attribute_quick_writes_table_and_a_verified_ledger(tmp_path):
  rc = cli.main(
    [
      "attribute",
      "--config",
      "attribution:quick",
      "--config.num_seeds=1",
      "--config.learner.steps=60",
      "--workdir",
      str(tmp_path),
    ]
  )
  assert rc == 0
  out = json.loads((tmp_path / "attribution.json").read_text())
  plain, deduped = out["results"]["plain"][0], out["results"]["deduped"][0]
  assert plain["players"][-1] == "copy_of_contributor_0"
  assert plain["values"][-1] == pytest.approx(plain["values"][0], abs=1e-12)
  assert deduped["values"][-1] == 0.0
  assert abs(sum(plain["values"]) - plain["total_gain"]) < 1e-9
  from metaval.valuation import royalties

  led = royalties.load_ledger(str(tmp_path / "royalties.json"))
  assert led["sha256"] == out["ledger_hash"]
  assert sum(float(e["payment"]) for e in led["entries"]) == pytest.approx(1500.0)


class _SizePredictor:
  """Duck-typed predictor whose value is sqrt(#distinct rows): copies add nothing."""

  def __init__(self):
    self.calls = 0

  def rank(self, supplements, base=None, learner=None, task=None):
    import types

    self.calls += 1
    out = []
    for i, (x, _) in enumerate(supplements):
      v = math.sqrt(len(np.unique(x, axis=0)))
      out.append((i, types.SimpleNamespace(targets=[types.SimpleNamespace(metric="m", value=v)])))
    return out[::-1]  # rank order differs from input order on purpose


def test_predictor_utility_batches_unions_and_maps_ranked_results_back():
  rng = np.random.default_rng(0)
  parts = [(rng.normal(size=(k, 3)), np.zeros(k, int)) for k in (4, 9, 16)]
  parts.append(parts[0])  # a copy of contributor 0
  fake = _SizePredictor()
  res = games.exact_shapley(A.predictor_game(fake, parts, target="m"))
  assert fake.calls == 1  # all 15 non-empty unions in one batch
  assert res.u_empty == 0.0 and res.u_full == pytest.approx(math.sqrt(29))
  assert abs(res.values.sum() - math.sqrt(29)) < 1e-12
  assert res.values[3] == pytest.approx(res.values[0])  # symmetric, as retraining
  with pytest.raises(GameError, match="unknown target"):
    games.exact_shapley(A.predictor_game(fake, parts[:2], target="acc"))


@pytest.mark.slow
def test_attribution_with_the_toy_predictor_is_efficient(tmp_path):
  import metaval.api as api
  from metaval.predictor import toy

  p = api.load_predictor(toy.toy_predictor(str(tmp_path / "toy")))
  task = get_task("wine")
  x, y = task.x[-36:], task.y[-36:]
  parts = [(x[i::3], y[i::3]) for i in range(3)]
  res = games.exact_shapley(A.predictor_game(p, parts))
  assert abs(res.values.sum() - res.u_full) < 1e-9 and res.u_empty == 0.0
  assert res.u_full == pytest.approx(p.value((x, y)).targets[0].value, rel=1e-4, abs=1e-6)
