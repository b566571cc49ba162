"""The shared evaluation protocol: agreement, detection, curves, tables, plots."""

import json

import numpy as np
import pytest

from metaval import protocol
from metaval.labeling.schema import LabelSet
from metaval.learners.models import LearnerSpec


def test_agreement_unchanged():
  e = np.array([0.1, 0.2, 0.3, 0.4, -0.1])
  out = protocol.agreement(e, 2 * e)
  assert out["spearman"] == pytest.approx(1.0) and out["pearson"] == pytest.approx(1.0)
  assert out["sign_acc"] == 1.0 and out["n"] == 5.0
  assert protocol.agreement(e, -e)["spearman"] == pytest.approx(-1.0)


def _labelset(p=40, k=4, noise=0.01, seed=0):
  rng = np.random.default_rng(seed)
  truth = rng.normal(size=p) * 0.1
  base = rng.normal(size=(p, k, 1)) * 0.05 + 0.8
  full = base + truth[:, None, None] + rng.normal(size=(p, k, 1)) * noise
  empty = [np.zeros(0, np.int32)] * p
  return LabelSet(
    task="digits",
    task_seed=0,
    metric_names=["test/accuracy"],
    base_indices=empty,
    supp_indices=empty,
    supp_x=[np.zeros((0, 64), np.float32)] * p,
    supp_y=empty,
    kind=np.array(["clean"] * p),
    recipe=np.array(["{}"] * p),
    learner=np.array(["{}"] * p),
    learner_params=np.zeros(p, np.int64),
    metric_base=base,
    metric_full=full,
    pair_id=np.arange(p),
    shard=np.zeros(p, np.int32),
  ), truth


def test_agreement_with_labels_reports_ceiling():
  labels, truth = _labelset()
  out = protocol.agreement_with_labels(truth, labels, "test/accuracy")
  assert out["spearman"] > 0.95 and out["ceiling_spearman"] > 0.9
  noisy, _ = _labelset(noise=1.0)
  assert protocol.agreement_with_labels(truth, noisy, "test/accuracy")["ceiling_spearman"] < 0.7


def test_noisy_label_detection_extremes():
  noisy = np.zeros(100, bool)
  noisy[:10] = True
  perfect = np.where(noisy, -1.0, 1.0) + np.linspace(0, 0.01, 100)
  d = protocol.noisy_label_detection(perfect, noisy)
  assert d["precision_at_k"] == 1.0 and d["f1"] == 1.0 and d["auroc"] == 1.0
  assert d["chance"] == pytest.approx(0.1)
  d = protocol.noisy_label_detection(-perfect, noisy)
  assert d["precision_at_k"] == 0.0 and d["auroc"] == 0.0
  d = protocol.noisy_label_detection(perfect, noisy, k=20)
  assert d["precision_at_k"] == 0.5 and d["recall_at_k"] == 1.0
  rng = np.random.default_rng(0)
  aucs = [protocol.noisy_label_detection(rng.normal(size=100), noisy)["auroc"] for _ in range(50)]
  assert abs(np.mean(aucs) - 0.5) < 0.05


def test_two_means_split_is_optimal():
  v = np.array([0.0, 0.1, 0.2, 5.0, 5.1, 5.3])
  t = protocol._two_means_split(v)
  assert 0.2 < t < 5.0


def test_detection_errors():
  with pytest.raises(protocol.ProtocolError, match="NaN"):
    protocol.noisy_label_detection([np.nan, 1.0], [True, False])
  with pytest.raises(protocol.ProtocolError, match="some but not all"):
    protocol.noisy_label_detection([0.0, 1.0], [False, False])
  with pytest.raises(protocol.ProtocolError, match="differ in shape"):
    protocol.noisy_label_detection([0.0, 1.0, 2.0], [True, False])


def test_removal_curve_orders():
  from metaval.valuation.pointwise import noisy_problem

  prob = noisy_problem("digits", n_train=150, noise_rate=0.2, seed=0)
  spec = LearnerSpec("linear", steps=100, lr=0.05, l2=1e-3)
  oracle = np.where(prob.is_noisy, -1.0, 1.0)  # clean points are the valuable ones
  kw = dict(metric="holdout/accuracy", fractions=(0.0, 0.1, 0.2, 0.3))
  low = protocol.removal_curve(prob.holdout, oracle, spec, order="low_first", **kw)
  high = protocol.removal_curve(prob.holdout, oracle, spec, order="high_first", **kw)
  assert low["metric"][0] == pytest.approx(high["metric"][0])  # same model at 0 removed
  assert low["metric"][-1] > low["metric"][0] + 0.03  # dropping flipped labels helps
  assert high["metric"][-1] < high["metric"][0]  # dropping clean points hurts
  assert high["auc"] < low["auc"]
  add = protocol.removal_curve(
    prob.holdout, oracle, spec, mode="add", metric="holdout/accuracy", fractions=(0.2, 0.8)
  )
  assert add["metric"][0] > 0.7
  with pytest.raises(protocol.ProtocolError, match="one per pool point"):
    protocol.removal_curve(prob.holdout, oracle[:5], spec, metric="holdout/accuracy")
  with pytest.raises(protocol.ProtocolError, match="at least one point"):
    protocol.removal_curve(
      prob.holdout, oracle, spec, mode="add", metric="holdout/accuracy", fractions=(0.0,)
    )


def test_table_and_plot(tmp_path):
  rows = [
    {"method": "a|b", "fits": 1200, "f1": 0.51234, "t": float("nan")},
    {"method": "c", "fits": 3, "extra": 1e-6},
  ]
  md = protocol.format_table(rows)
  lines = md.splitlines()
  assert lines[0] == "| method | fits | f1 | t | extra |"
  assert "| a\\|b | 1,200 | 0.512 | – | – |" == lines[2]
  assert lines[3].endswith("| 1e-06 |")
  out = protocol.write_table(rows, str(tmp_path / "sub" / "tab"), title="T", meta={"n": 3})
  assert out.startswith("## T") and (tmp_path / "sub" / "tab.md").read_text().startswith("## T")
  data = json.loads((tmp_path / "sub" / "tab.json").read_text())
  assert data["rows"][0]["t"] is None and data["meta"] == {"n": 3}
  path = protocol.plot_curves(
    {"m (high first)": ([0, 0.5], [0.9, 0.6]), "m (low first)": ([0, 0.5], [0.9, 0.95])},
    str(tmp_path / "c.png"),
    xlabel="x",
    ylabel="y",
    title="t",
  )
  with open(path, "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"
