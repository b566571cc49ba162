"""Per-point valuation baselines: correctness on exact games, detection on digits."""

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from metaval import games, protocol
from metaval.learners.models import LearnerSpec
from metaval.valuation import noisy
from metaval.valuation import pointwise as pw

SPEC = LearnerSpec("linear", steps=100, lr=0.05, l2=1e-3)


class Game(games.Game):
  """A utility given by a function of the coalition (no training, no cache), counting calls."""

  def __init__(self, fn, p, batch_size=64):
    super().__init__(p, batch_size=batch_size, cache=False)
    self.fn = fn

  def _evaluate(self, coalitions):
    self.fits += int(coalitions.any(1).sum())
    self.fits_computed = self.fits
    return np.array([self.fn(row) for row in coalitions], np.float64)


W = np.array([0.5, -0.2, 0.1, 0.8, 0.3, 0.05])


def _concave(c):
  # Non-additive: diminishing returns plus a pairwise interaction.
  return math.sqrt(1.0 + max(0.0, float(W[c].sum()) + 0.5 * W[0] * c[0] * c[3])) - 1.0


def _exact_semivalue(fn, p, coef):
  """Sum over all coalitions S not holding i of coef(|S|) * (U(S+i) - U(S))."""
  vals = np.zeros(p)
  for bits in itertools.product([False, True], repeat=p):
    s = np.array(bits)
    for i in np.flatnonzero(~s):
      t = s.copy()
      t[i] = True
      vals[i] += coef(int(s.sum())) * (fn(t) - fn(s))
  return vals


def test_tmc_matches_exact_shapley_within_mc_error():
  p = len(W)
  exact = _exact_semivalue(_concave, p, lambda k: 1.0 / (p * math.comb(p - 1, k)))
  v = games.tmc_shapley(Game(_concave, p), num_permutations=3000, rtol=None, seed=1)
  # 3000 permutations: MC standard error per player is well under 0.01 here.
  np.testing.assert_allclose(v.values, exact, atol=0.01)
  assert abs(v.values.sum() - (_concave(np.ones(p, bool)) - _concave(np.zeros(p, bool)))) < 1e-9
  assert v.fits_needed == 3000 * p


def test_additive_game_values_are_exact():
  p = len(W)
  v = games.tmc_shapley(Game(lambda c: float(W[c].sum()), p), num_permutations=5, rtol=None)
  np.testing.assert_allclose(v.values, W, atol=1e-12)


def test_banzhaf_msr_matches_exact_banzhaf():
  p = len(W)
  exact = _exact_semivalue(_concave, p, lambda k: 1.0 / 2 ** (p - 1))
  v = games.banzhaf_msr(Game(_concave, p), num_samples=20000, seed=2)
  np.testing.assert_allclose(v.values, exact, atol=0.01)
  assert v.fits <= 20000


def test_beta_shapley_matches_exact_semivalue():
  p = len(W)
  alpha, beta = 4.0, 1.0
  pmf = stats.betabinom(p - 1, beta, alpha).pmf
  exact = _exact_semivalue(_concave, p, lambda k: pmf(k) / math.comb(p - 1, k))
  v = games.beta_shapley(
    Game(_concave, p), alpha=alpha, beta=beta, num_permutations=4000, tail=0.0, seed=3
  )
  np.testing.assert_allclose(v.values, exact, atol=0.012)
  # The weights are a probability law over prefix lengths.
  assert abs(games.beta_weights(50, 16, 1).sum() - 1.0) < 1e-9


def test_knn_shapley_matches_enumeration():
  rng = np.random.default_rng(0)
  x, y = rng.normal(size=(7, 2)), rng.integers(0, 2, 7)
  xt, yt = rng.normal(size=(3, 2)), rng.integers(0, 2, 3)
  k = 3

  def knn_utility(c):
    idx = np.flatnonzero(c)
    if idx.size == 0:
      return 0.0
    total = 0.0
    for t in range(len(yt)):
      d = ((x[idx] - xt[t]) ** 2).sum(1)
      near = idx[np.argsort(d, kind="stable")[:k]]
      total += (y[near] == yt[t]).sum() / k
    return total / len(yt)

  exact = _exact_semivalue(knn_utility, 7, lambda s: 1.0 / (7 * math.comb(6, s)))
  v = games.knn_shapley(x, y, xt, yt, k=k)
  np.testing.assert_allclose(v.values, exact, atol=1e-12)


@pytest.fixture(scope="module")
def problem():
  return noisy.noisy_problem("digits", n_train=150, noise_rate=0.1, seed=0)


def test_noisy_problem(problem):
  assert problem.is_noisy.sum() == 15
  assert np.all(problem.task.y[problem.is_noisy] != problem.clean_y[problem.is_noisy])
  assert np.all(problem.task.y[~problem.is_noisy] == problem.clean_y[~problem.is_noisy])
  assert problem.holdout.evals["holdout"][0].shape[0] == problem.task.evals["test"][0].shape[0] + (
    1297 - 150 - 500
  )


# (method, options, minimum AUROC, minimum precision@k): measured on this problem
# (AUROC 0.75-1.0, precision@k 0.67-0.93; chance is 0.5 and 0.1), margins left for
# numeric drift across machines.
CASES = [
  ("loo", {}, 0.65, 0.4),
  ("tmc_shapley", {"num_permutations": 16}, 0.9, 0.5),
  ("beta_shapley", {"num_permutations": 16}, 0.85, 0.45),
  ("banzhaf", {"num_samples": 512}, 0.9, 0.6),
  ("knn_shapley", {"k": 5}, 0.95, 0.7),
  ("data_oob", {"num_bags": 128}, 0.95, 0.6),
]


@pytest.mark.parametrize("method,opts,min_auroc,min_prec", CASES)
def test_flipped_labels_rank_low(problem, method, opts, min_auroc, min_prec):
  v = games.value_points(method, problem.task, SPEC, batch_size=128, **opts)
  assert v.values.shape == (150,) and np.all(np.isfinite(v.values))
  det = protocol.noisy_label_detection(v.values, problem.is_noisy)
  assert det["auroc"] >= min_auroc, det
  assert det["precision_at_k"] >= min_prec, det
  # Flipped points are worth less than clean ones on average.
  assert v.values[problem.is_noisy].mean() < v.values[~problem.is_noisy].mean()
  if method not in ("knn_shapley",):
    assert v.fits > 0 and v.fits_computed >= v.fits >= v.fits_needed > 0


def test_shapley_efficiency_on_learner(problem):
  """Per permutation the marginals telescope: sum = U(all) - U(empty)."""
  u = games.RetrainingUtility(problem.task, SPEC, batch_size=128)
  gain = u.full_value - u.empty_value
  v = games.tmc_shapley(u, num_permutations=2, rtol=None, block=64)
  assert abs(v.values.sum() - gain) < 1e-5
  # With truncation the sum stops within rtol of the full utility.
  v = games.tmc_shapley(u, num_permutations=8, rtol=0.05, seed=1)
  assert abs(v.values.sum() - gain) <= 0.05 * u.full_value + 1e-6
  assert v.fits_needed < 8 * 150  # truncation saved fits


def test_group_values_flipped_set_worth_less(problem):
  noisy = np.flatnonzero(problem.is_noisy)
  clean = np.flatnonzero(~problem.is_noisy)[:15]
  g = games.group_values(problem.task, SPEC, [noisy, clean], method="banzhaf", num_samples=256)
  assert g.values.shape == (2,)
  assert g.values[0] < g.values[1] - 0.02
  players, gid = games.players_for_groups(10, [[0, 1], [5]])
  assert list(gid) == [0, 1] and players[0] == players[1] == 0 and players[5] == 1
  assert sorted(players[[2, 3, 4, 6, 7, 8, 9]]) == list(range(2, 9))
  assert games.set_value(np.arange(5.0), [1, 3]) == 4.0


def test_background_points_value_given_base(problem):
  """Players -1 are always trained on: values are then given that base set."""
  n = problem.task.pool_size
  players = np.full(n, -1)
  players[:3] = [0, 1, 2]
  u = games.RetrainingUtility(problem.task, SPEC, players=players, batch_size=8)
  assert u.num_players == 3
  v = games.loo(u)
  assert v.fits == 4 and v.values.shape == (3,)
  assert u.empty_value == pytest.approx(float(u(np.zeros((1, 3), bool))[0]))


def test_errors(problem):
  with pytest.raises(games.GameError, match="unknown method"):
    games.value_points("shapley", problem.task, SPEC)
  with pytest.raises(games.GameError, match="players must be"):
    games.RetrainingUtility(problem.task, SPEC, players=np.zeros(3, int))
  with pytest.raises(games.GameError, match="overlaps"):
    games.players_for_groups(5, [[0, 1], [1, 2]])
  with pytest.raises(games.GameError, match="n_train"):
    noisy.noisy_problem("digits", n_train=5000)
  # A per-class accuracy has no data-free default: U(∅) must be given.
  with pytest.raises(games.GameError, match="no default empty-set utility"):
    games.RetrainingUtility(problem.task, SPEC, metric="test/class_0/accuracy")
  with pytest.raises(games.GameError, match="unknown metric"):
    games.RetrainingUtility(problem.task, SPEC, metric="test/nope", batch_size=4, empty_value=0.0)


def test_pointwise_keeps_the_names_other_code_imports():
  assert pw.Utility is games.RetrainingUtility and pw.banzhaf is games.banzhaf_msr
  assert pw.value_points is games.value_points and pw.ValuationError is games.GameError
  assert pw.noisy_problem is noisy.noisy_problem


@pytest.mark.slow
def test_cli_quick_end_to_end(tmp_path):
  from metaval.cli import main

  rc = main(["baselines", "--config", "baselines:quick", "--workdir", str(tmp_path)])
  assert rc == 0
  import json

  table = json.loads((tmp_path / "baselines.json").read_text())
  rows = {r["method"]: r for r in table["rows"]}
  assert rows["knn_shapley"]["auroc"] > 0.9
  assert rows["tmc_shapley"]["remove_high_auc"] < rows["tmc_shapley"]["remove_low_auc"]
  assert (tmp_path / "removal_curves.png").stat().st_size > 10_000
  # A rerun reuses the saved values (resume).
  assert main(["baselines", "--config", "baselines:quick", "--workdir", str(tmp_path)]) == 0


def test_solved_data_oob_bags_equal_bags_trained_one_program(problem):
  # Solved bags go through the retraining game (buckets, warm starts, threads); they
  # reach the optimum one train_many call over all bags reaches, so the out-of-bag
  # accuracies agree but for points on a decision boundary.
  import jax

  from metaval.learners import models, train_many

  solved = LearnerSpec("linear", steps=100, l2=1e-3, solver="lbfgs")
  task = problem.task
  v = games.value_points("data_oob", task, solved, num_bags=64, batch_size=32)
  bags = np.random.default_rng(0).multinomial(150, np.full(150, 1 / 150), size=64)
  keys = jax.random.split(jax.random.key(0), 64)
  ref = train_many(keys, task, bags.astype(np.float32), solved, return_params=True).params
  pred = np.asarray(jax.vmap(lambda p: models.apply(p, task.x, solved).argmax(-1))(ref))
  oob = bags == 0
  want = ((pred == task.y[None]) & oob).sum(0) / np.maximum(oob.sum(0), 1)
  seen = oob.sum(0) > 0
  assert np.abs(v.values[seen] - want[seen]).mean() < 0.01
  assert protocol.noisy_label_detection(v.values, problem.is_noisy)["auroc"] >= 0.95
