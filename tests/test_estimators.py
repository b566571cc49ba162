"""The one estimator interface: every estimator answers estimate(task, pairs, spec, metric)."""

import jax
import numpy as np
import pytest

from metaval import estimators as E
from metaval import pairs as pairs_lib
from metaval.configlib import load
from metaval.data import get_task
from metaval.labeling import pipeline
from metaval.learners.models import LearnerSpec
from metaval.valuation import untrain as U

SPEC_KW = dict(family="linear", steps=20, lr=0.1, l2=1e-3)
METRIC = "test/accuracy"


def test_retraining_estimate_equals_the_label_pipeline():
  """The same (B, S) valued by the pipeline's shard and by the retraining estimator."""
  cfg = load("labels:tiny")
  task = get_task("digits", seed=int(cfg.task.seed))
  rec = pipeline.run_shard(cfg, "digits", 1)
  bases, supps, base_of = pipeline.sample_shard_pairs(cfg, task, 1)
  pairs = pairs_lib.Pairs.from_supplements(bases, supps, base_of)
  (name, lcfg), *_ = list(cfg.learners.items())
  opts = pipeline.label_options(cfg, task)
  est = E.Retraining(
    num_seeds=opts.pop("num_seeds"), key=pipeline.shard_pair_key(cfg, "digits", 1, 0), **opts
  ).estimate(task, pairs, LearnerSpec.from_config(lcfg), METRIC)
  j = [str(n) for n in rec["metric_names"]].index(METRIC)
  label = rec["metric_full"][:, 0, :, j] - rec["metric_base"][:, 0, :, j]  # [P, K]
  np.testing.assert_array_equal(E.per_seed(est), label)
  np.testing.assert_array_equal(est.value, label.mean(1))
  # K = 2: a seed interval (zero wide here: the linear learner ignores its seed).
  assert np.all(np.isfinite(est.stderr)) and np.all(est.low <= est.high)


def test_tmc_sum_is_label_without_truncation(wine_heldout):
  """Efficiency with B as background: every permutation sums to U(B ∪ S) - U(B).

  The zero-padded union pool must train exactly like the label pipeline's pool
  (padding weighs nothing), so the sum matches the retraining label.
  """
  _, task, pairs = wine_heldout
  spec = LearnerSpec(**SPEC_KW)
  truth = E.Retraining(num_seeds=1, key=jax.random.key(0), chunk=8).estimate(
    task, pairs, spec, METRIC
  )
  assert E.per_seed(truth).shape == (6, 1)
  assert np.std(truth.value) > 0  # the kinds differ in value: a real check below
  tmc = E.TmcShapleySum(num_permutations=1, rtol=None).estimate(task, pairs, spec, METRIC)
  np.testing.assert_allclose(tmc.value, truth.value, atol=1e-6)
  assert tmc.fits > 2  # every prefix of one permutation is a fit
  bz = E.BanzhafSum(num_samples=4).estimate(task, pairs, spec, METRIC)
  assert bz.fits == 4 and not bz.same_scale and np.all(np.isfinite(bz.value))


def test_knn_sums_and_bad_settings(wine_heldout):
  _, task, pairs = wine_heldout
  spec = LearnerSpec(**SPEC_KW)
  knn = E.KnnShapleySum(k=3).estimate(task, pairs, spec, METRIC)
  assert knn.value.shape == (6,) and np.all(np.isfinite(knn.value)) and knn.fits == 0
  assert np.all(np.isnan(knn.low))  # no interval of its own
  assert "loo" not in E.ESTIMATORS
  with pytest.raises(E.EstimatorError, match="budget"):
    E.BanzhafSum(num_samples=0)
  with pytest.raises(E.EstimatorError, match="evaluation set"):
    E.KnnShapleySum().estimate(task, pairs, spec, "nope/accuracy")
  with pytest.raises(E.EstimatorError, match="unknown metric"):
    E.Retraining(num_seeds=1).estimate(task, pairs, spec, "test/nope")
  with pytest.raises(E.EstimatorError, match="ablation"):
    E.Ablation()


def test_every_estimator_answers_the_same_call(wine_heldout):
  """Retraining, ablation, untraining and the per-point sums on the same pairs."""
  _, task, pairs = wine_heldout
  spec = LearnerSpec("mlp", width=8, steps=30, lr=0.02, l2=1e-4)
  pairs = pairs.select([0, 1, 2])
  ests = [
    E.Retraining(num_seeds=2),
    E.Ablation(steps_fraction=0.5, num_seeds=2, key=jax.random.key(1)),
    E.Untraining(U.AscentSpec(steps=2), num_seeds=2),
    E.KnnShapleySum(k=3),
    E.DataOobSum(num_bags=4),
    E.BanzhafSum(num_samples=2),
  ]
  for est in ests:
    e = est.estimate(task, pairs, spec, "test/neg_log_loss")
    assert isinstance(e, E.Estimate) and e.value.shape == (3,), est.name
    assert np.all(np.isfinite(e.value)) and e.seconds > 0 and e.fits >= 0, est.name
  assert set(E.ESTIMATORS) >= {"retraining", "predictor", "ablation", "untraining", "tmc_shapley"}


def test_estimate_interval_from_stderr():
  e = E.Estimate("x", [1.0, 2.0], 1.0, 0.0, stderr=[0.5, np.nan])
  assert e.low[0] == pytest.approx(1.0 - 1.96 * 0.5, abs=1e-3) and np.isnan(e.high[1])
  with pytest.raises(E.EstimatorError):
    E.Estimate("x", [1.0, 2.0], 1.0, 0.0, low=[0.0])
