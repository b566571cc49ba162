"""The linear family solved to its optimum (``metaval.learners.solve``)."""

import dataclasses

import jax
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from metaval.data import get_task
from metaval.errors import MetavalError
from metaval.learners import (
  TRACE_COUNTS,
  LearnerSpec,
  SpecError,
  TrainInputError,
  solve,
  train_many,
)
from metaval.pairs import Pairs, label

SOLVED = LearnerSpec("linear", steps=200, l2=1e-3, solver="lbfgs")


def _subsets(pool, sizes, seed):
  rng = np.random.default_rng(seed)
  return [rng.choice(pool, s, replace=False) for s in sizes]


def _masks(pool, subsets):
  masks = np.zeros((len(subsets), pool), np.float32)
  for i, s in enumerate(subsets):
    masks[i, s] = 1.0
  return masks


def _objective(w, b, x, y, l2):
  z = x.astype(np.float64) @ w + b
  z -= z.max(1, keepdims=True)
  logp = z - np.log(np.exp(z).sum(1, keepdims=True))
  return -logp[np.arange(len(y)), y].mean() + 0.5 * l2 * np.sum(w * w)


@pytest.fixture(scope="module")
def digits():
  return get_task("digits")


@pytest.fixture(scope="module")
def solved(digits):
  subsets = _subsets(digits.pool_size, [120, 160, 200], seed=0)
  keys = jax.random.split(jax.random.key(0), 3)
  res = train_many(keys, digits, _masks(digits.pool_size, subsets), SOLVED, return_params=True)
  return subsets, keys, res


def _scikit_learn(digits, s):
  x, y = digits.x[s], digits.y[s]
  return LogisticRegression(C=1.0 / (SOLVED.l2 * len(s)), tol=1e-8, max_iter=10_000).fit(x, y)


def test_reaches_scikit_learns_optimum(digits, solved):
  subsets, _, res = solved
  x_te = digits.evals["test"][0]
  for i, s in enumerate(subsets):
    x, y = digits.x[s], digits.y[s]
    ref = _scikit_learn(digits, s)
    w, b = np.asarray(res.params["w"][i]), np.asarray(res.params["b"][i])
    ours = _objective(w, b, x, y, SOLVED.l2)
    theirs = _objective(ref.coef_.T, ref.intercept_, x, y, SOLVED.l2)
    # The default stopping rule is scikit-learn's (max |grad| <= 1e-4), which
    # leaves ~1e-3 of relative excess objective here (measured 1.6e-3 at most).
    assert 0 <= (ours - theirs) / theirs < 5e-3, (ours, theirs)
    agree = np.mean((x_te @ w + b).argmax(1) == ref.predict(x_te))
    assert agree >= 0.98, agree


def test_tight_tolerance_reaches_the_exact_optimum(digits):
  subsets = _subsets(digits.pool_size, [120, 200], seed=0)
  x = np.stack([np.pad(digits.x[s], ((0, 200 - len(s)), (0, 0))) for s in subsets])
  y = np.stack([np.pad(digits.y[s], (0, 200 - len(s))) for s in subsets])
  w = np.stack([np.pad(np.ones(len(s), np.float32), (0, 200 - len(s))) for s in subsets])
  out = solve.fit_linear(w, x, y, dataclasses.replace(SOLVED, steps=1000, tol=1e-6), 10)
  for i, s in enumerate(subsets):
    ref = _scikit_learn(digits, s)
    ours = _objective(
      np.asarray(out["w"][i]), np.asarray(out["b"][i]), digits.x[s], digits.y[s], SOLVED.l2
    )
    theirs = _objective(ref.coef_.T, ref.intercept_, digits.x[s], digits.y[s], SOLVED.l2)
    # f32 at max |grad| <= 1e-6: the excess is float round-off (~1e-6 relative).
    assert abs(ours - theirs) / theirs < 1e-4, (ours, theirs)


def test_batched_equals_one_at_a_time(digits, solved):
  subsets, keys, res = solved
  masks = _masks(digits.pool_size, subsets)
  single = train_many(keys, digits, masks, SOLVED, return_params=True, chunk=1)
  np.testing.assert_allclose(single.params["w"], res.params["w"], atol=2e-3)
  for name in ("test/accuracy", "test/neg_log_loss"):
    np.testing.assert_allclose(single.metrics[name], res.metrics[name], atol=4e-3)


def test_one_compilation_per_size_bucket_cold_or_warm(digits):
  spec = dataclasses.replace(SOLVED, l2=2e-3)  # a spec no other test compiles
  keys = jax.random.split(jax.random.key(1), 4)
  for seed, size in enumerate((90, 110, 128)):  # all in the 128-point bucket
    masks = _masks(digits.pool_size, _subsets(digits.pool_size, [size] * 4, seed))
    res = train_many(keys, digits, masks, spec, return_params=True)
  # A warm start reuses the same program (solvers always take start parameters).
  train_many(keys, digits, masks, spec, init_params=res.params, return_params=True)
  assert TRACE_COUNTS[(spec, False)] == 1


def test_warm_start_from_b_gives_the_cold_label(digits):
  rng = np.random.default_rng(3)
  bases = _subsets(digits.pool_size, [60, 100, 150], seed=4)
  supp_idx, base_of = [], []
  for b, base in enumerate(bases):
    rest = np.setdiff1d(np.arange(digits.pool_size), base)
    for size in (20, 80):
      supp_idx.append(rng.choice(rest, size, replace=False))
      base_of.append(b)
  pairs = Pairs.from_lists(
    [bases[b] for b in base_of],
    supp_idx,
    [digits.x[i] for i in supp_idx],
    [digits.y[i] for i in supp_idx],
    ["clean"] * len(supp_idx),
  )
  tight = dataclasses.replace(SOLVED, steps=1000, tol=1e-6)
  warm = label(digits, pairs, tight, num_seeds=1, chunk=4, warm_start=True)
  cold = label(digits, pairs, tight, num_seeds=1, chunk=4, warm_start=False)
  # Same optimum to the solver's tolerance: at max |grad| <= 1e-6 the log-loss
  # labels agree to 1e-4 (their spread here is ~1e-1); accuracy may flip at most
  # one of 500 test points whose two top logits are within round-off. (At the
  # default tol 1e-4 they differ by up to ~4e-3 in log-loss.)
  loss = warm.metric_names.index("test/neg_log_loss")
  acc = warm.metric_names.index("test/accuracy")
  np.testing.assert_allclose(warm.metric_full[..., loss], cold.metric_full[..., loss], atol=1e-4)
  np.testing.assert_allclose(warm.metric_full[..., acc], cold.metric_full[..., acc], atol=2.1e-3)


def _sets(digits, sizes, seed):
  return [
    (digits.x[s], digits.y[s], np.ones(len(s), np.float32))
    for s in _subsets(digits.pool_size, sizes, seed)
  ]


def test_solve_sets_reaches_scikit_learns_optimum(digits):
  # Sizes below, at and above one block (64 rows), more sets than slots, and a
  # duplicated point (weight 2) to check weights are multiplicities.
  sets = _sets(digits, [40, 64, 130, 250, 90, 300, 75], seed=6)
  x, y, w = sets[2]
  sets[2] = (x, y, np.concatenate([[2.0], w[1:]]).astype(np.float32))
  tight = dataclasses.replace(SOLVED, steps=1000, tol=1e-6)
  out = solve.solve_sets(sets, tight, 10, slots=2, blocks=8)
  for i, (x, y, w) in enumerate(sets):
    rep = np.repeat(np.arange(len(y)), w.astype(int))
    ref = LogisticRegression(C=1.0 / (SOLVED.l2 * w.sum()), tol=1e-8, max_iter=10_000)
    ref.fit(x[rep], y[rep])
    ours = _objective(out["w"][i], out["b"][i], x[rep], y[rep], SOLVED.l2)
    theirs = _objective(ref.coef_.T, ref.intercept_, x[rep], y[rep], SOLVED.l2)
    # f32 at max |grad| <= 1e-6: the excess is float round-off (~1e-6 relative).
    assert abs(ours - theirs) / theirs < 1e-4, (i, ours, theirs)


def test_solve_sets_batched_equals_one_at_a_time(digits):
  sets = _sets(digits, [70, 200, 130, 60, 260], seed=7)
  tight = dataclasses.replace(SOLVED, steps=1000, tol=1e-6)
  together = solve.solve_sets(sets, tight, 10, slots=4, blocks=16)
  alone = [solve.solve_sets([s], tight, 10, slots=1, blocks=8) for s in sets]
  for i, one in enumerate(alone):
    np.testing.assert_allclose(together["w"][i], one["w"][0], atol=2e-3)
    np.testing.assert_allclose(together["b"][i], one["b"][0], atol=2e-3)


def test_solve_sets_warm_start_reaches_the_same_optimum(digits):
  base = _sets(digits, [150], seed=8)[0]
  more = _sets(digits, [120], seed=9)[0]
  full = tuple(np.concatenate([a, b]) for a, b in zip(base, more))
  tight = dataclasses.replace(SOLVED, steps=1000, tol=1e-6)
  warm = solve.solve_sets([base, full], tight, 10, parents=[-1, 0], slots=2, blocks=16)
  cold = solve.solve_sets([base, full], tight, 10, slots=2, blocks=16)
  np.testing.assert_allclose(warm["w"][1], cold["w"][1], atol=2e-3)


def test_solve_sets_compiles_a_few_programs_for_any_mix_of_sizes(digits):
  spec = dataclasses.replace(SOLVED, l2=3e-3)  # a spec no other test compiles
  before = solve._advance._cache_size()
  for seed, sizes in enumerate(([50, 300, 120, 90], [200, 70, 70, 260, 140], [30, 500])):
    solve.solve_sets(_sets(digits, sizes, seed), spec, 10, slots=4, blocks=16)
  # The full block count and the tail's halvings (16, 8, 4, 2 blocks): at most four.
  assert solve._advance._cache_size() - before <= 4


def test_bad_solver_settings_raise_one_line_errors(digits):
  with pytest.raises(SpecError, match="unknown solver 'newtn'"):
    LearnerSpec("linear", solver="newtn")
  with pytest.raises(SpecError, match="tol must be positive"):
    LearnerSpec("linear", solver="lbfgs", tol=0.0)
  with pytest.raises(SpecError, match="needs the linear family"):
    LearnerSpec("mlp", solver="lbfgs")
  masks = _masks(digits.pool_size, _subsets(digits.pool_size, [50], seed=5))
  with pytest.raises(TrainInputError, match="init_params needs a convex solver"):
    train_many(
      jax.random.split(jax.random.key(0), 1),
      digits,
      masks,
      LearnerSpec("linear", steps=2),
      init_params={"w": np.zeros((1, 64, 10)), "b": np.zeros((1, 10))},
    )
  sets = _sets(digits, [100, 80], seed=10)
  with pytest.raises(MetavalError, match="index of an earlier set"):
    solve.solve_sets(sets, SOLVED, 10, parents=[1, -1])
  with pytest.raises(MetavalError, match="set 1 has no points"):
    solve.solve_sets([sets[0], (sets[1][0][:0], sets[1][1][:0], sets[1][2][:0])], SOLVED, 10)
  with pytest.raises(MetavalError, match="a set needs 2 blocks of 64 rows; blocks=1"):
    solve.solve_sets(sets, SOLVED, 10, blocks=1)
  with pytest.raises(MetavalError, match="needs a convex solver"):
    solve.solve_sets(sets, LearnerSpec("linear"), 10)


def test_hessian_inverse_is_the_inverse_of_the_objectives_hessian(digits):
  from metaval.learners.precondition import hessian_inverse

  rng = np.random.default_rng(0)
  s = rng.choice(digits.pool_size, 150, replace=False)
  w = rng.integers(1, 3, 150).astype(np.float32)  # multiplicities weight the points
  x, y = digits.x[s][None], digits.y[s][None]
  opt = solve.fit_linear(w[None], x, y, SOLVED, 10)
  theta = solve._flat(opt, 1)[0]

  def objective(t):
    prob = solve._Problem(w[None], x, y, SOLVED, 10)
    return prob.objective(t[None], prob.logits(t[None]))[0]

  h = np.asarray(jax.hessian(objective)(theta), np.float64)  # autodiff, [P, P]
  params = {f: np.asarray(a[0]) for f, a in opt.items()}
  ridge = 1e-3
  inv = hessian_inverse(digits.x[s], w, SOLVED, 10, params, ridge=ridge)
  eye = inv.astype(np.float64) @ (h + ridge * np.eye(len(h)))
  assert np.abs(eye - np.eye(len(h))).max() < 1e-2


def test_preconditioned_solves_reach_the_same_optimum(digits):
  # Large subsets preconditioned by the whole pool's inverse Hessian stop at the
  # optimum the plain solver reaches (tight tolerance: both at the exact optimum).
  from metaval.learners.precondition import hessian_inverse

  tight = dataclasses.replace(SOLVED, steps=1000, tol=1e-6)
  pool = np.arange(400)
  full = solve.fit_linear(np.ones((1, 400), np.float32), digits.x[pool][None], digits.y[pool][None], tight, 10)  # fmt: skip
  params = {f: np.asarray(a[0]) for f, a in full.items()}
  h_inv = hessian_inverse(digits.x[pool], np.ones(400), tight, 10, params)
  subsets = _subsets(400, [200, 300, 399], seed=1)
  x = np.stack([np.pad(digits.x[s], ((0, 400 - len(s)), (0, 0))) for s in subsets])
  y = np.stack([np.pad(digits.y[s], (0, 400 - len(s))) for s in subsets])
  w = np.stack([np.pad(np.ones(len(s), np.float32), (0, 400 - len(s))) for s in subsets])
  plain = solve.fit_linear(w, x, y, tight, 10)
  pre = solve.fit_linear(w, x, y, tight, 10, init_params=full_like(full, 3), precond=h_inv)
  for i, s in enumerate(subsets):
    f = [
      _objective(np.asarray(o["w"][i]), np.asarray(o["b"][i]), digits.x[s], digits.y[s], tight.l2)
      for o in (plain, pre)
    ]
    assert abs(f[0] - f[1]) / f[0] < 1e-4, f


def full_like(params, m):
  return {f: np.repeat(np.asarray(a), m, 0) for f, a in params.items()}
