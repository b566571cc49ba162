"""The predictor's Goodhart margin: every attack is valued below the genuine set by a
clear, reported margin, and padding a genuine core with near-duplicates of B pays
nothing (the value API drops near repeats: ``metaval.predictor.novelty``).

One quick-suite run with 12 replicates (each a fresh B0, contributor, genuine set,
core and attacks: independent draws); the gaps are paired by replicate, so the
standard error is that of the per-replicate differences.
"""

import numpy as np
import pytest

from metaval.audit import goodhart as G
from metaval.configlib import load

CONFIG = "goodhart"
REPLICATES = 12
MIN_Z = 2.0  # mean paired gap in standard errors
MAX_PADDING_SHARE = 0.25  # padding may recover at most this share of the genuine - core gap


def paired_gaps(values: np.ndarray, row_names: list[str]) -> dict[str, tuple[float, float]]:
  """``{attack: (mean gap, standard error)}`` of genuine minus attack, paired by replicate."""
  g = row_names.index(G.GENUINE)
  out = {}
  for j, name in enumerate(row_names):
    if name in (G.GENUINE, G.GENUINE_CORE):
      continue
    gap = values[:, g] - values[:, j]
    out[name] = (float(gap.mean()), float(gap.std(ddof=1) / np.sqrt(len(gap))))
  return out


def test_paired_gaps_are_per_replicate_differences():
  rows = [G.GENUINE, G.GENUINE_CORE, "random_bits"]
  v = np.array([[0.10, 0.0, 0.02], [0.12, 0.0, 0.02], [0.08, 0.0, 0.05]])
  ((mean, se),) = paired_gaps(v, rows).values()
  assert mean == pytest.approx(np.mean([0.08, 0.10, 0.03]))
  assert se == pytest.approx(np.std([0.08, 0.10, 0.03], ddof=1) / np.sqrt(3))


@pytest.mark.slow
def test_every_attack_is_below_genuine_with_margin_and_padding_does_not_pay(tmp_path):
  cfg = load(f"{CONFIG}:quick")
  cfg.unlock()
  cfg.estimators = ("retraining", "predictor")
  cfg.num_bases = REPLICATES
  # As the acceptance test in test_goodhart.py: the quick labels, a 25-epoch predictor.
  cfg.predictor.overrides = ("--config.train.epochs=25",)
  res = G.goodhart_suite(cfg, str(tmp_path), log=print)
  rows = [r["supplement"] for r in res.rows]
  report = []
  for est in G.ACCEPTANCE_ESTIMATORS:
    for name, (mean, se) in paired_gaps(res.values[est], rows).items():
      report.append((est, name, mean, se, mean / se if se > 0 else float("inf")))
  print("estimator, attack, mean gap (genuine - attack), SE, z")
  for r in report:
    print(f"  {r[0]:10s} {r[1]:28s} {r[2]:+.4f} {r[3]:.4f} {r[4]:6.1f}")
  thin = [r[:2] for r in report if not r[2] > MIN_Z * r[3]]
  assert not thin, f"attacks within {MIN_Z} SE of the genuine set: {thin}"
  # Padding a genuine core with near-duplicates of B (or random bits) must not pay:
  # the padded set recovers at most a quarter of what the genuine set adds over its core.
  v = res.values["predictor"]
  g, c = rows.index(G.GENUINE), rows.index(G.GENUINE_CORE)
  core_gap = float((v[:, g] - v[:, c]).mean())
  assert core_gap > 0
  for name in ("padded_near_duplicates", "padded_random_bits"):
    paid = float((v[:, rows.index(name)] - v[:, c]).mean())
    print(f"  predictor {name}: pays {paid:+.4f} over its core ({paid / core_gap:.0%} of the gap)")
    assert paid < MAX_PADDING_SHARE * core_gap, name
