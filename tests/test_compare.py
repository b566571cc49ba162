"""Fast tests of metaval.valuation.compare (strategies on the same pairs)."""

import numpy as np
import pytest

from metaval.valuation import compare as C


def test_heldout_pairs_deterministic_and_unseen(wine_heldout):
  cfg, task, pairs = wine_heldout
  assert len(pairs) == 6 and len(pairs.base_of) == 6
  again = C.heldout_pairs(cfg, task, 6, seed=11)
  for a, b in zip(pairs.supp_x, again.supp_x):
    np.testing.assert_array_equal(a, b)
  other = C.heldout_pairs(cfg, task, 6, seed=12)
  assert any(
    a.shape != b.shape or not np.array_equal(a, b) for a, b in zip(pairs.supp_x, other.supp_x)
  )
  with pytest.raises(C.CompareError, match="seed"):
    C.heldout_pairs(cfg, task, 4, seed=int(cfg.seed))


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
