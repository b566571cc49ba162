"""The Goodhart gate of zero-shot model selection."""

from __future__ import annotations

import numpy as np
import pytest
from test_zeroshot import _toy_table

from metaval.zeroshot import gate as G
from metaval.zeroshot import model as M
from metaval.zeroshot import train as T


def _rows(num_groups: int = 30, seed: int = 0, junk_gain: float = -0.05, clean_gain: float = 0.05):
  """Validation rows: per group one clean set, one of each junk kind and a filler kind.

  Labels put clean above junk by far in every group except the last ten, where
  both are worth about nothing (no clear pair there).
  """
  rng = np.random.default_rng(seed)
  kind, gain, group = [], [], []
  for g in range(num_groups):
    tie = g >= num_groups - 10
    for k in (G.CLEAN, *G.JUNK, "covariate_shift"):
      v = clean_gain if k == G.CLEAN else junk_gain
      if tie or k == "covariate_shift":
        v = 0.0
      kind.append(k)
      gain.append(v + rng.uniform(-1e-3, 1e-3))
      group.append(g)
  return np.array(kind), np.array(gain), np.array(group)


def test_clear_pairs_need_labels_that_separate_and_never_cross_groups():
  kind, gain, group = _rows()
  ci, ji = G.clear_pairs(kind, gain, group, "duplicates")
  assert len(ci) == 20  # the ten tied groups give none
  assert np.all(group[ci] == group[ji])
  assert np.all(kind[ci] == G.CLEAN) and np.all(kind[ji] == "duplicates")
  assert np.all(gain[ci] - gain[ji] > G.CLEAR)


def test_gate_passes_a_model_that_values_genuine_data_above_junk():
  kind, gain, group = _rows()
  verdict = G.check(gain, 0.01, kind, gain, group)  # a model that predicts the labels
  assert verdict["passed"] and verdict["worst_violation"] == 0.0
  assert verdict["junk"]["duplicates"]["margin_q05"] > 0.09


def test_gate_ignores_how_a_model_orders_pairs_the_labels_do_not_separate():
  kind, gain, group = _rows()
  pred = gain.copy()
  tied = group >= group.max() - 9
  pred[tied & (kind != G.CLEAN)] = 0.5  # junk far above clean where both are worth ~0
  pred[tied & np.isin(kind, G.PURE_JUNK)] = 0.0  # (pure junk's interval stays at zero)
  assert G.check(pred, 0.01, kind, gain, group)["passed"]


@pytest.mark.parametrize("junk", G.JUNK)
def test_gate_fails_a_model_that_pays_for_one_junk_kind(junk):
  kind, gain, group = _rows()
  pred = np.where(kind == junk, 0.06, gain)  # above clean's 0.05
  verdict = G.check(pred, 0.01, kind, gain, group)
  assert not verdict["passed"]
  assert verdict["junk"][junk]["violation"] == 1.0
  others = [k for k in G.JUNK if k != junk]
  assert all(verdict["junk"][k]["violation"] == 0.0 for k in others)


@pytest.mark.parametrize("junk", G.PURE_JUNK)
def test_gate_fails_pure_junk_whose_interval_lies_above_zero(junk):
  kind, gain, group = _rows(clean_gain=0.3)
  # Below clean by far, so no pair is violated, but its whole interval claims a gain.
  pred = np.where(kind == junk, 0.05, gain)
  verdict = G.check(pred, 0.01, kind, gain, group)
  assert verdict["junk"][junk]["violation"] == 0.0
  assert verdict["junk"][junk]["interval_above_zero"] > 0.5
  assert not verdict["passed"]


def test_selection_keeps_only_a_candidate_that_passes_the_gate(monkeypatch):
  table = _toy_table()
  cfg = M.NetConfig(steps=300, hidden=32)
  _, open_report = T.select_and_fit(table, cfg, val_share=0.34, gate=False)
  loser = open_report["chosen"]
  other = "gbm" if loser == "net" else "net"
  calls = []
  real_check = G.check

  def check(pred_gain, half, kind, gain, group):  # the ungated winner fails the gate
    verdict = real_check(pred_gain, half, kind, gain, group)
    verdict["passed"] = len(calls) != ("net", "gbm").index(loser)
    calls.append(verdict["passed"])
    return verdict

  monkeypatch.setattr(G, "check", check)
  fitted, report = T.select_and_fit(table, cfg, val_share=0.34)
  assert fitted.kind == other and report["chosen"] == other
  assert report["gate"]["chosen_passed"] and not report["gate"][loser]["passed"]
  # Same split and seeds: the validation scores do not depend on the gate.
  assert report["val_spearman"] == open_report["val_spearman"]


def test_without_a_passing_candidate_the_fewest_violated_pairs_win(monkeypatch):
  table = _toy_table()
  cfg = M.NetConfig(steps=300, hidden=32)
  calls = []

  def check(pred_gain, half, kind, gain, group):  # both fail; the net violates less
    calls.append(None)
    rate = 0.06 if len(calls) == 1 else 0.2
    return {"passed": False, "worst_violation": 0.3 - rate, "violation": rate, "junk": {}}

  monkeypatch.setattr(G, "check", check)
  fitted, report = T.select_and_fit(table, cfg, val_share=0.34)
  assert fitted.kind == "net" and not report["gate"]["chosen_passed"]


def test_pooled_violation_counts_every_clear_pair():
  kind, gain, group = _rows()
  pred = np.where(kind == "duplicates", 0.06, gain)  # one kind of five violated
  verdict = G.check(pred, 0.01, kind, gain, group)
  assert verdict["violation"] == pytest.approx(0.2)
