"""Learners and the batched trainer."""

import dataclasses

import jax
import numpy as np
import pytest

from metaval.data import get_task
from metaval.learners import (
  TRACE_COUNTS,
  LearnerSpec,
  SpecError,
  TrainInputError,
  ladder,
  metric_names,
  num_params,
  train_many,
)
from metaval.learners import train as train_lib

MLP = LearnerSpec("mlp", width=64, steps=200, lr=0.01, l2=1e-4)
LINEAR = LearnerSpec("linear", steps=150, lr=0.05, l2=1e-3)


def _random_masks(n_models, pool, size, seed=0):
  rng = np.random.default_rng(seed)
  masks = np.zeros((n_models, pool), np.float32)
  for i in range(n_models):
    masks[i, rng.choice(pool, size, replace=False)] = 1.0
  return masks


def test_mlp_digits_500_points_reaches_90_percent():
  task = get_task("digits")
  masks = _random_masks(4, task.pool_size, 500)
  res = train_many(jax.random.split(jax.random.key(0), 4), task, masks, MLP)
  acc = res.metrics["test/accuracy"]
  assert acc.shape == (4,)
  assert acc.min() >= 0.9, acc


@pytest.mark.parametrize("spec", [MLP, LINEAR, dataclasses.replace(MLP, batch_size=64)])
def test_vmapped_equals_one_at_a_time(spec):
  task = get_task("digits")
  masks = _random_masks(3, task.pool_size, 200, seed=1)
  masks[1] *= 2.0  # duplicates: weights are multiplicities
  keys = jax.random.split(jax.random.key(3), 3)
  batched = train_many(keys, task, masks, spec, gather=None).metrics
  for i in range(3):
    single = train_many(keys[i : i + 1], task, masks[i : i + 1], spec, gather=None).metrics
    for name in ("test/accuracy", "test/neg_log_loss"):
      np.testing.assert_allclose(batched[name][i], single[name][0], atol=2e-4, rtol=1e-4)


def test_one_compilation_per_batch_shape():
  task = get_task("wine")
  spec = LearnerSpec("mlp", width=8, steps=5)
  key = (spec, False)
  before = TRACE_COUNTS[key]
  for seed in range(3):  # different keys and different subsets, same shapes
    masks = _random_masks(8, task.pool_size, 20 + 10 * seed, seed=seed)
    train_many(jax.random.split(jax.random.key(seed), 8), task, masks, spec)
  assert TRACE_COUNTS[key] - before == 1
  # Chunked training pads the last chunk, so 10 models in chunks of 4 reuse it too.
  spec2 = dataclasses.replace(spec, steps=6)
  masks = _random_masks(10, task.pool_size, 30)
  res = train_many(jax.random.split(jax.random.key(0), 10), task, masks, spec2, chunk=4)
  assert TRACE_COUNTS[(spec2, False)] == 1
  assert res.metrics["test/accuracy"].shape == (10,)


def test_paired_keys_make_identical_subsets_identical():
  task = get_task("wine")
  masks = _random_masks(1, task.pool_size, 40)
  masks = np.concatenate([masks, masks])
  keys = jax.random.split(jax.random.key(0), 1)
  res = train_many(jax.numpy.concatenate([keys, keys]), task, masks, MLP)
  acc = res.metrics["test/neg_log_loss"]
  assert acc[0] == acc[1]


def test_metrics_are_named_and_complete():
  task = get_task("breast_cancer")
  res = train_many(
    jax.random.split(jax.random.key(0), 2), task, _random_masks(2, task.pool_size, 100), LINEAR
  )
  assert list(res.metrics) == metric_names(task)
  assert "test/malignant/accuracy" in res.metrics


def test_lm_loss_falls_on_code_corpus():
  task = get_task("code")
  spec = LearnerSpec("lm", width=32, depth=1, heads=2, steps=150, lr=3e-3, l2=0.0, batch_size=16)
  short = dataclasses.replace(spec, steps=1)
  masks = _random_masks(2, task.pool_size, 1500)
  keys = jax.random.split(jax.random.key(0), 2)
  before = train_many(keys, task, masks, short).metrics["heldout/neg_loss"]
  after = train_many(keys, task, masks, spec).metrics["heldout/neg_loss"]
  assert np.all(before < -4.0)  # about uniform over ~98 tokens: -4.58
  assert np.all(after > before + 1.0), (before, after)
  assert "heldout/json/neg_loss" in train_many(keys, task, masks, short).metrics


def test_ladder_sizes_grow():
  for family in ("linear", "mlp"):
    specs = ladder(LearnerSpec(family))
    sizes = [num_params(s, 64, 10) for s in specs]
    assert len(specs) >= 4 and sizes == sorted(sizes) and len(set(sizes)) == len(sizes)
  lm = ladder(LearnerSpec("lm", batch_size=8))
  sizes = [num_params(s, 0, 98) for s in lm]
  assert len(lm) >= 4 and sizes == sorted(sizes)


def test_bad_inputs_raise_clear_errors():
  task = get_task("wine")
  keys = jax.random.split(jax.random.key(0), 2)
  good = _random_masks(2, task.pool_size, 10)
  with pytest.raises(TrainInputError, match="select no training points"):
    train_many(keys, task, np.zeros_like(good), MLP)
  with pytest.raises(TrainInputError, match="pool_size=120"):
    train_many(keys, task, good[:, :50], MLP)
  with pytest.raises(TrainInputError, match="1-D"):
    train_many(keys[:1], task, good[0], MLP)
  with pytest.raises(TrainInputError, match="one PRNG key per model"):
    train_many(keys[:1], task, good, MLP)
  with pytest.raises(TrainInputError, match="non-negative"):
    train_many(keys, task, -good, MLP)
  x = task.x.copy()
  x[3, 2] = np.nan
  with pytest.raises(TrainInputError, match="NaN"):
    train_many(keys, dataclasses.replace(task, x=x), good, MLP)
  with pytest.raises(TrainInputError, match="language-model"):
    train_many(keys, get_task("code"), _random_masks(2, get_task("code").pool_size, 10), MLP)
  with pytest.raises(SpecError, match="unknown learner family"):
    LearnerSpec("cnn")
  with pytest.raises(SpecError, match="batch_size"):
    LearnerSpec("lm")


@pytest.mark.parametrize("spec", [MLP, LINEAR])
def test_gathered_training_sets_match_the_dense_pool(spec):
  task = get_task("digits")
  masks = _random_masks(4, task.pool_size, 120, seed=5)
  masks[2] *= 3.0
  keys = jax.random.split(jax.random.key(1), 4)
  dense = train_many(keys, task, masks, spec, gather=None).metrics
  auto = train_many(keys, task, masks, spec).metrics  # 120 of 1297 points: gathers
  fixed = train_many(keys, task, masks, spec, gather=200).metrics
  one = 1.0 / len(task.evals["test"][1])
  for other in (auto, fixed):
    # Same math, another summation order: full-batch Adam near its optimum turns
    # round-off into small differences (its steps are normalised), so the
    # tolerance is one test example of accuracy and 2e-3 nats of log-loss.
    np.testing.assert_allclose(other["test/accuracy"], dense["test/accuracy"], atol=one + 1e-6)
    np.testing.assert_allclose(other["test/neg_log_loss"], dense["test/neg_log_loss"], atol=2e-3)
  with pytest.raises(TrainInputError, match="smaller than the largest training set"):
    train_many(keys, task, masks, spec, gather=100)


def _paired_label_masks(pool, base, supp, seeds, seed=0):
  """K models on B, then K on B ∪ S: the rows one label trains on."""
  perm = np.random.default_rng(seed).permutation(pool)
  masks = np.zeros((2 * seeds, pool), np.float32)
  masks[:, perm[:base]] = 1.0
  masks[seeds:, perm[base : base + supp]] = 1.0
  return masks


def test_rows_plan_prefers_shared_rows_when_models_share_them():
  w32 = dataclasses.replace(MLP, width=32)
  # A label's models share B: the union (500 rows) costs what one gathered set does.
  masks = _paired_label_masks(1297, 400, 100, 4)
  gather, union, group = train_lib._plan_rows(masks, 8, 1297, False, w32)
  assert gather is None and union.shape == (1, 512) and group == 8
  assert set(union[0][union[0] >= 0]) == set(np.flatnonzero(masks.any(0)))
  # Four bases' seeds in one chunk (as ``pairs.label`` orders them): each group of a
  # base's models shares that base's rows, not the chunk's union of all four; given
  # the grouping and a row budget, the plan does not depend on the sets.
  bases = np.concatenate([_paired_label_masks(1297, 400, 0, 2, seed=b) for b in range(4)])
  gather, union, group = train_lib._plan_rows(bases, 16, 1297, False, w32)
  assert gather is None and union.shape[1] == 512 and 4 % group == 0
  gather, union, group = train_lib._plan_rows(bases, 16, 1297, True, w32, rows=512, group=4)
  assert gather is None and union.shape == (4, 512) and group == 4
  for g in range(4):
    assert set(union[g][union[g] >= 0]) == set(np.flatnonzero(bases[4 * g]))
  # Disjoint small sets: each model's own rows are cheaper than any shared ones.
  disjoint = np.zeros((8, 1297), np.float32)
  for i in range(8):
    disjoint[i, i * 100 : (i + 1) * 100] = 1.0
  gather, union, _ = train_lib._plan_rows(disjoint, 8, 1297, False, w32)
  assert gather == 128 and union is None
  # Forced: groups of 4 get their own union, padded to one size.
  gather, union, group = train_lib._plan_rows(disjoint, 4, 1297, True, w32)
  assert gather is None and union.shape == (2, 512) and group == 4
  assert (union[1][:400] >= 400).all()
  # Sets covering most of the pool: dense.
  gather, union, _ = train_lib._plan_rows(np.ones((4, 1297), np.float32), 4, 1297, False, w32)
  assert gather is None and union is None


@pytest.mark.parametrize("seed", [0, 1])
def test_shared_rows_match_the_dense_pool(seed):
  task = get_task("digits")
  # Two labels with different bases: each group of 4 shares its own rows.
  masks = np.concatenate(
    [_paired_label_masks(task.pool_size, 150, 50, 2, seed=seed + s) for s in (0, 10)]
  )
  masks[3] *= 2.0  # multiplicities survive the compaction
  keys = jax.random.split(jax.random.key(seed), 2)
  keys = jax.numpy.concatenate([keys, keys, keys, keys])
  spec = dataclasses.replace(MLP, width=32, steps=100)
  dense = train_many(keys, task, masks, spec, gather=None).metrics
  union = train_many(keys, task, masks, spec, gather="union").metrics
  one = 1.0 / len(task.evals["test"][1])
  np.testing.assert_allclose(union["test/accuracy"], dense["test/accuracy"], atol=one + 1e-6)
  np.testing.assert_allclose(union["test/neg_log_loss"], dense["test/neg_log_loss"], atol=2e-3)
  with pytest.raises(TrainInputError, match="union"):
    train_many(keys, task, masks, dataclasses.replace(spec, batch_size=16), gather="union")


def test_shared_rows_compile_once_per_bucket():
  task = get_task("wine")
  spec = LearnerSpec("mlp", width=8, steps=4, lr=0.02)
  before = TRACE_COUNTS[(spec, False)]
  for seed in range(3):  # unions of 30-40 rows: one 64-row bucket, one program
    masks = _paired_label_masks(task.pool_size, 25, 5 + 5 * seed, 2, seed=seed)
    train_many(jax.random.split(jax.random.key(seed), 4), task, masks, spec, gather="union")
  assert TRACE_COUNTS[(spec, False)] - before == 1
