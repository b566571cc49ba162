"""The gain's interval scaled per query (``metaval.zeroshot.interval``)."""

import json
import shutil

import numpy as np
import pytest

import metaval
from metaval.zeroshot import interval as I
from metaval.zeroshot.predictor import META, default_path


def _residuals(seed, tasks=90, rows=120, width=6):
  """Rows whose error size follows feature 0 (x11 between its 2.5% and 97.5% quantiles)."""
  rng = np.random.default_rng(seed)
  z = rng.normal(size=(tasks * rows, width))
  sigma = 0.02 * np.exp(0.6 * z[:, 0])
  gain = rng.normal(0, 0.05, len(z))
  resid = rng.normal(size=len(z)) * sigma
  task = np.repeat(np.arange(tasks), rows)
  return z, resid, gain, task, sigma


@pytest.mark.parametrize("seed", range(5))
def test_the_scaled_interval_covers_as_promised_where_errors_are_small_and_large(seed):
  z, resid, gain, task, sigma = _residuals(seed)
  scale, report = I.fit_scale(
    z, resid, gain, task, 0.9, seed, kind=np.where(z[:, 0] > 0, "hi", "lo")
  )
  held, const = report["held_out_scaled"], report["held_out_constant"]
  assert abs(held["coverage_mean"] - 0.9) < 0.02, held
  # Per error size, the scaled interval keeps its promise; one width cannot.
  lo, hi = held["coverage_by_kind_range"]
  assert 0.85 < lo and hi < 0.95, held
  c_lo, c_hi = const["coverage_by_kind_range"]
  assert c_lo < 0.82 and c_hi > 0.98, const
  assert held["half_width_median"] < const["half_width_median"]
  # The fitted scale follows the true error size.
  w = scale.half_width(z, gain)
  assert np.corrcoef(np.log(w), np.log(sigma))[0, 1] > 0.95
  # Rows of new tasks (drawn alike): covered at the nominal rate, by a margin of noise.
  z2, r2, g2, _, _ = _residuals(100 + seed)
  assert abs(np.mean(np.abs(r2) <= scale.half_width(z2, g2)) - 0.9) < 0.02


def test_conformal_q_is_the_finite_sample_quantile():
  scores = np.arange(1.0, 20.0)  # 19 scores: the ceil(20 * 0.9) = 18th smallest
  assert I.conformal_q(scores, 0.9) == 18.0
  assert I.conformal_q(np.array([3.0]), 0.9) == 3.0


def test_queries_get_intervals_of_their_own_and_older_models_a_constant_one(tmp_path):
  rng = np.random.default_rng(0)
  centres = rng.normal(0, 1.5, (3, 8))

  def draw(n):
    y = rng.integers(0, 3, n)
    return centres[y] + rng.normal(0, 1.5, (n, 8)), y

  base, ev = draw(60), draw(200)
  sets = [draw(5), draw(60), draw(400)]
  p = metaval.load_predictor()
  facts = [f.targets[0] for _, f in sorted(p.rank(sets, base=base, eval=ev))]
  halves = [round(t.high - t.value, 6) for t in facts]
  for t in facts:
    assert t.value - t.low == pytest.approx(t.high - t.value)
  assert len(set(halves)) == 3, halves  # one width per query, not one for all
  # A model folder from before the scaled interval: the constant half-width.
  old = tmp_path / "old"
  shutil.copytree(default_path(), old)
  meta = json.loads((old / META).read_text())
  del meta["interval_scale"]
  (old / META).write_text(json.dumps(meta))
  q = metaval.load_predictor(str(old))
  for _, f in q.rank(sets, base=base, eval=ev):
    t = f.targets[0]
    assert t.high - t.value == pytest.approx(meta["interval_half_width"])


def test_outside_the_training_domain_the_interval_is_never_narrower_than_the_constant_one():
  rng = np.random.default_rng(1)
  z, gain = rng.normal(size=(50, 4)), rng.normal(0, 0.05, 50)
  scale = I.Scale(np.r_[0.0, 0.0, 0.0, 0.0, 0.0, np.log(0.01)], 1.0)  # 0.01 everywhere
  outside = np.arange(50) % 2 == 0
  w = I.half_widths(scale, z, gain, 0.05, outside)
  np.testing.assert_allclose(w[~outside], 0.01)
  np.testing.assert_allclose(w[outside], 0.05)
  np.testing.assert_allclose(I.half_widths(None, z, gain, 0.05, outside), 0.05)
  # The shipped model, asked with more classes than any training task had.
  p = metaval.load_predictor()
  centres = rng.normal(0, 2.0, (30, 6))
  y = np.arange(600) % 30
  base, ev = (
    (centres[y[:400]] + rng.normal(size=(400, 6)), y[:400]),
    (centres[y] + rng.normal(size=(600, 6)), y),
  )
  facts = p.value((centres[y[:90]] + rng.normal(size=(90, 6)), y[:90]), base=base, eval=ev)
  assert any("extrapolates" in w for w in facts.warnings)
  t = facts.targets[0]
  assert t.high - t.value >= p.half_width - 1e-9


def test_calibrating_a_model_folder_reproduces_what_training_calibrated(tmp_path):
  """scripts/calibrate_zeroshot.py on a folder trained with the scaled interval writes
  the same interval back, and publishes the per-kind coverage with a figure."""
  import importlib.util
  import os

  from test_zeroshot import _toy_table

  from metaval.zeroshot import model as M
  from metaval.zeroshot import train as T

  table = _toy_table()
  fitted, report = T.select_and_fit(table, M.NetConfig(steps=300, hidden=32), val_share=0.34)
  out = T.save(fitted, report, str(tmp_path / "model"))
  table.save(str(tmp_path / "table.npz"))
  before = json.loads((tmp_path / "model" / META).read_text())
  path = os.path.join(os.path.dirname(__file__), "..", "scripts", "calibrate_zeroshot.py")
  spec = importlib.util.spec_from_file_location("calibrate_zeroshot", path)
  script = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(script)
  args = ["--table", str(tmp_path / "table.npz"), "--model", out, "--val-share", "0.34"]
  script.main([*args, "--out", str(tmp_path / "interval")])
  after = json.loads((tmp_path / "model" / META).read_text())
  assert after["interval_scale"] == before["interval_scale"]
  assert after["report"]["interval"] == before["report"]["interval"]
  for ext in ("json", "md", "png"):
    assert (tmp_path / f"interval.{ext}").stat().st_size > 0
  # Another split is not the model's: refused, nothing written.
  with pytest.raises(SystemExit, match="not the model's"):
    script.main(["--table", str(tmp_path / "table.npz"), "--model", out, "--val-share", "0.5"])
