"""Fast tests of metaval.valuation.compare (strategies on the same pairs)."""

import jax
import numpy as np
import pytest

from metaval.configlib import load
from metaval.data import get_task
from metaval.learners.models import LearnerSpec
from metaval.valuation import compare as C

SPEC_KW = dict(family="linear", steps=20, lr=0.1, l2=1e-3)
METRIC = "test/accuracy"


@pytest.fixture(scope="module")
def setup():
  cfg = load("labels:tiny", ["--config.task.name=wine"])
  task = get_task("wine", seed=int(cfg.task.seed))
  pairs = C.heldout_pairs(cfg, task, 6, seed=11)
  return cfg, task, pairs


def test_heldout_pairs_deterministic_and_unseen(setup):
  cfg, task, pairs = setup
  assert len(pairs) == 6 and len(pairs.base_of) == 6
  again = C.heldout_pairs(cfg, task, 6, seed=11)
  for a, b in zip(pairs.supps, again.supps):
    np.testing.assert_array_equal(a.x, b.x)
  other = C.heldout_pairs(cfg, task, 6, seed=12)
  assert any(
    a.x.shape != b.x.shape or not np.array_equal(a.x, b.x) for a, b in zip(pairs.supps, other.supps)
  )
  with pytest.raises(C.CompareError, match="seed"):
    C.heldout_pairs(cfg, task, 4, seed=int(cfg.seed))


def test_tmc_sum_is_label_without_truncation(setup):
  """Efficiency with B as background: every permutation sums to U(B ∪ S) - U(B).

  The zero-padded union pool must train exactly like the label pipeline's pool
  (padding weighs nothing), so the sum matches the retraining label.
  """
  _, task, pairs = setup
  spec = LearnerSpec(**SPEC_KW)
  truth, per_seed = C.retraining(
    task, pairs, spec, METRIC, num_seeds=1, key=jax.random.key(0), chunk=8
  )
  assert per_seed.shape == (6, 1)
  assert np.std(truth.values) > 0  # the kinds differ in value: a real check below
  tmc = C.shapley_sums(task, pairs, spec, METRIC, "tmc_shapley", budget=1, tmc_rtol=None)
  np.testing.assert_allclose(tmc.values, truth.values, atol=1e-6)
  assert tmc.fits > 2  # every prefix of one permutation is a fit
  bz = C.shapley_sums(task, pairs, spec, METRIC, "banzhaf", budget=4)
  assert bz.fits == 4 and not bz.same_scale and np.all(np.isfinite(bz.values))


def test_score_rows_cost_and_ceiling():
  label = np.array([0.1, -0.2, 0.05, 0.3, 0.0])
  per_seed = np.stack([label + 0.01, label - 0.01], 1)
  good = C.Estimate("good", 2 * label, seconds=1.0, fits=0.0, same_scale=False)
  bad = C.Estimate("bad", -label, seconds=4.0, fits=3.0, info={"x_retrain": 0.5})
  rows = C.score([good, bad], label, per_seed, ref_seconds=2.0)
  assert [r["estimator"] for r in rows][:2] == ["good", "bad"]
  assert rows[0]["spearman"] == pytest.approx(1.0) and np.isnan(rows[0]["mae"])
  assert rows[1]["spearman"] == pytest.approx(-1.0)
  assert rows[1]["mae"] == pytest.approx(2 * np.abs(label).mean())
  assert rows[0]["x_retrain"] == pytest.approx(0.5) and rows[1]["x_retrain"] == 0.5
  assert rows[0]["s_per_pair"] == pytest.approx(0.2)
  assert rows[2]["estimator"].startswith("ceiling") and rows[2]["spearman"] == pytest.approx(1.0)
  rows1 = C.score([good], label, per_seed[:, :1], ref_seconds=2.0)
  assert len(rows1) == 1  # K = 1: no ceiling row
  with pytest.raises(C.CompareError):
    C.score([C.Estimate("short", label[:3], 1.0, 0.0)], label, per_seed, 1.0)


def test_knn_sums_and_bad_method(setup):
  _, task, pairs = setup
  knn = C.knn_shapley_sums(task, pairs, METRIC, k=3)
  assert knn.values.shape == (6,) and np.all(np.isfinite(knn.values)) and knn.fits == 0
  with pytest.raises(C.CompareError, match="unknown per-point"):
    C.shapley_sums(task, pairs, LearnerSpec(**SPEC_KW), METRIC, "loo", budget=2)
  with pytest.raises(C.CompareError, match="evaluation set"):
    C.knn_shapley_sums(task, pairs, "nope/accuracy")
