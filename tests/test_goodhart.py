"""Goodhart suite: attack construction, verdicts, resume, CLI, and the acceptance run."""

import json
import os

import numpy as np
import pytest

from metaval import cli
from metaval.audit import goodhart as G
from metaval.configlib import load

CONFIG = "goodhart"
NO_PREDICTOR = ("retraining", "ablation", "untraining", "knn_shapley", "data_oob")


def _cfg(variant="tiny", **overrides):
  cfg = load(f"{CONFIG}:{variant}")
  cfg.unlock()
  for k, v in overrides.items():
    cfg[k] = v
  return cfg


def test_attacks_are_what_they_claim():
  # Digits, no training: every row has |S| = supp_size (the core: core_frac of it)
  # and each attack's content matches its description.
  cfg = _cfg("quick", num_bases=2)
  task, markets, names, supps, rep = G.build_pairs(cfg)
  n_rows = len(names) // 2
  assert names[:n_rows] == [G.GENUINE, G.GENUINE_CORE] + list(cfg.attacks)
  for s, name, r in zip(supps, names, rep):
    m = markets[r]
    assert len(s) == (len(m.core) if name == G.GENUINE_CORE else cfg.supp_size), name
    in_base = np.isin(s.pool_indices, m.base)
    if name in (G.GENUINE, G.GENUINE_CORE):
      assert s.pool_exact(task).all() and not in_base.any()
    elif name == "duplicates_of_base":
      assert in_base.all() and s.pool_exact(task).all()
    elif name == "copy_of_contributor":
      # Every point of A, and nothing else (A is inside B already).
      assert set(s.pool_indices) == set(m.contributor)
      assert np.isin(m.contributor, m.base).all()
    elif name == "label_flip":
      assert (s.y != task.y[s.pool_indices]).all()
    elif name == "adversarial_near_duplicates":
      ratio = G.nearest_base_distance(s.x, task.x[m.base]) / m.scale
      # Evades both an exact check and the predictor's near-duplicate rule ...
      assert ratio.min() >= G.NEAR_DUP_THRESHOLD
      assert s.recipe["flagged_near_dup"] == 0.0
      # ... yet every point stays within its margin of a B point.
      assert ratio.max() <= cfg.attack_params.adv_margin + 1e-4
    elif name.startswith("padded"):
      core = s.pool_indices[: len(m.core)]
      np.testing.assert_array_equal(core, m.core)
  # Replicates differ (fresh B0 and A each).
  assert not np.array_equal(markets[0].base, markets[1].base)


def test_judge_marks_failures():
  rows = [G.GENUINE, G.GENUINE_CORE, "random_bits", "label_noise", "padded_random_bits"]
  # [R=3, rows]: random bits valued above zero with a tight interval (a junk
  # failure), label noise above genuine (a failure), padding below genuine but above
  # its own core (padding pays).
  v = np.array(
    [
      [0.10, 0.02, 0.05, 0.12, 0.04],
      [0.11, 0.03, 0.05, 0.13, 0.05],
      [0.09, 0.01, 0.06, 0.11, 0.03],
    ]
  )
  table, summary = G.judge({"est": v, "neg": -np.abs(v) + v[:, :1]}, rows)
  by = {r["supplement"]: r for r in table}
  assert by["random_bits"]["est_below_genuine"] and not by["random_bits"]["est_junk_ok"]
  assert by["random_bits"]["est_pass"] is False
  assert by["label_noise"]["est_pass"] is False
  assert by["padded_random_bits"]["est_pass"] is True
  assert by[G.GENUINE]["est_pass"] is None
  s = {r["estimator"]: r for r in summary}
  assert s["est"]["failures"] == "random_bits, label_noise"
  assert s["est"]["padding_pays"] == "padded_random_bits"
  assert s["est"]["below_genuine"] == "2/3" and s["est"]["junk_at_or_below_zero"] == "0/1"
  mean, half = G.interval(v[:, 0])
  assert mean == pytest.approx(0.10) and half == pytest.approx(4.303 * 0.01 / np.sqrt(3), 1e-3)


def test_tiny_suite_runs_resumes_and_ranks_flipped_labels_low(tmp_path):
  cfg = _cfg(estimators=NO_PREDICTOR)
  logs = []
  res = G.goodhart_suite(cfg, str(tmp_path), log=logs.append)
  assert set(res.values) == set(NO_PREDICTOR)
  n_rows = 2 + len(cfg.attacks)
  assert all(v.shape == (cfg.num_bases, n_rows) for v in res.values.values())
  row = {r["supplement"]: r for r in res.rows}
  # Fully flipped labels hurt the retrained model; a clean set of equal size does not.
  assert row["label_flip"]["retraining"] < 0 < row[G.GENUINE]["retraining"]
  # Data-OOB sums non-negative point scores: a set of random bits gets a positive sum.
  assert row["random_bits"]["data_oob"] > 0
  assert set(res.acceptance) == {"retraining"}
  # A rerun loads every estimator from the cache and reproduces the values.
  logs2 = []
  res2 = G.goodhart_suite(cfg, str(tmp_path), log=logs2.append)
  assert sum("cached" in line for line in logs2) == len(NO_PREDICTOR)
  for est in NO_PREDICTOR:
    np.testing.assert_array_equal(res.values[est], res2.values[est])


def test_cli_writes_tables_and_errors_are_one_line(tmp_path, capsys):
  wd = str(tmp_path / "gh")
  rc = cli.main(
    [
      "audit",
      "goodhart",
      "--config",
      f"{CONFIG}:tiny",
      "--workdir",
      wd,
      "--config.estimators=('retraining','knn_shapley')",
      "--config.num_bases=2",
    ]
  )
  assert rc == 0
  out = capsys.readouterr().out
  assert "| genuine |" in out and "per-estimator verdict" in out
  with open(os.path.join(wd, "goodhart_full.json")) as f:
    full = json.load(f)
  assert {r["supplement"] for r in full["rows"]} >= {"genuine", "couch", "padded_random_bits"}
  assert os.path.isfile(os.path.join(wd, "goodhart.md"))
  rc = cli.main(
    ["audit", "goodhart", "--config", f"{CONFIG}:tiny", "--config.attacks=('no_such_attack',)"]
  )
  err = capsys.readouterr().err
  assert rc == 2 and "unknown attack" in err and len(err.strip().splitlines()) == 1


def test_predictor_estimator_with_a_given_path_must_exist(tmp_path):
  cfg = _cfg(estimators=("predictor",))
  cfg.predictor.path = str(tmp_path / "nothing")
  cfg.predictor.train_if_missing = False
  with pytest.raises(G.GoodhartError, match="no trained predictor"):
    G.goodhart_suite(cfg, None, log=lambda *a: None)


@pytest.mark.slow
def test_tiny_suite_with_toy_predictor(tmp_path):
  # The toy predictor (wine, MLP 16): the predictor path end to end.
  cfg = _cfg(estimators=("retraining", "predictor"))
  res = G.goodhart_suite(cfg, str(tmp_path), log=lambda *a: None)
  assert np.all(np.isfinite(res.values["predictor"]))
  assert res.extras["predictor"]["learner_matches_training"] is True
  low, high = (np.asarray(res.extras["predictor"][k]) for k in ("low", "high"))
  assert np.all(low <= high)


@pytest.mark.slow
def test_quick_suite_meets_the_acceptance_criteria(tmp_path):
  # Acceptance (issue 6, part 5): for retraining labels and the predictor every
  # attack is valued below the genuine set and pure junk at or below zero within
  # its interval. Reuses runs/labels_quick when present (else generates it).
  cfg = _cfg("quick", estimators=("retraining", "predictor"))
  # A shorter predictor run than the quick config's 60 epochs (its best epoch on
  # the quick labels was 15); the labels themselves are the quick labels.
  cfg.predictor.overrides = ("--config.train.epochs=25",)
  res = G.goodhart_suite(cfg, str(tmp_path), log=print)
  for s in res.summary:
    print(s)
  assert res.acceptance == {"retraining": True, "predictor": True}
