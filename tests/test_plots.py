"""Experiment figures: each is drawn from a small synthetic saved result; none is missing."""

import json
import os

import numpy as np
import pytest

from metaval.audit import membership
from metaval.errors import MetavalError
from metaval.jobs import experiment
from metaval.report import figures, plots
from metaval.util import io as uio

PNG = b"\x89PNG\r\n\x1a\n"


def _assert_png(path):
  data = open(path, "rb").read()
  assert data[:8] == PNG and len(data) > 5_000, path


def _e1(d, rng):
  uio.write_json(d / "labels.json", {"labels_per_s": {"pipeline (warm)": 90.0, "sklearn": 80.0}})
  rows = [
    {"method": m, "library": lib, "wall_s": float(rng.uniform(0.1, 20)), "note": ""}
    for m in ("loo", "banzhaf")
    for lib in ("metaval", "pydvl")
  ]
  rows[-1]["note"] = "failed: timeout"
  uio.write_json(d / "baselines.json", {"rows": rows})


def _e2(d, rng, with_predictions=True):
  scores = {
    e: {"spearman": float(rng.uniform(-0.2, 0.9))} for e in ("predictor", "ridge", "knn", "size")
  }
  splits = {
    s: {"n_test": 30, "scores": {"acc": {**scores, "ceiling": {"split_spearman": 0.8}}}}
    for s in ("pairs", "kind")
  }
  uio.write_json(d / "eval.json", {"targets": ["acc", "nll"], "splits": splits})
  if with_predictions:
    y = rng.normal(size=(30, 2))
    arrays = {f"{s}/label": y for s in splits}
    arrays.update({f"{s}/predictor": y + 0.1 * rng.normal(size=y.shape) for s in splits})
    uio.save_npz(str(d / "predictions.npz"), **arrays)


def _e3(d, rng):
  rows = [
    {"estimator": f"est{i}", "spearman": float(rng.uniform(0, 1)), "x_retrain": 10 ** (i - 2)}
    for i in range(4)
  ]
  rows.append({"estimator": "ceiling", "spearman": 0.9})  # no cost: not drawn
  uio.write_json(d / "table.json", {"rows": rows})


def _e4(d, rng):
  sp = np.clip(0.5 + 0.5 * np.eye(3) + 0.1 * rng.normal(size=(3, 3)), -1, 1)
  fam = {
    "names": ["s8", "s16", "s32"],
    "params": [100, 400, 1600],
    "metric": "acc",
    "spearman": sp.tolist(),
    "mean_abs": [0.1, 0.07, 0.05],
    "extrapolation": {"power_law": {"a": -1.0, "b": -0.3, "pred_mean_abs": 0.05}},
  }
  old = {k: v for k, v in fam.items() if k != "mean_abs"}  # a summary saved before mean_abs
  old["extrapolation"] = {**fam["extrapolation"], "mean_abs": fam["mean_abs"]}
  uio.write_json(d / "ablation_summary.json", {"mlp": fam, "lm": old})


def _e5(d, rng):
  ests = ["retraining", "predictor", "data_oob"]
  rows = [
    {"supplement": s, **{e: float(rng.normal()) for e in ests}}
    for s in ("genuine", "random_bits", "label_flip")
  ]
  uio.write_json(d / "goodhart_full.json", {"rows": rows, "values": {e: [] for e in ests}})


def _e6(d, rng):
  plan = membership.complementary_plan(3, 4, rng)
  owner = np.repeat(np.arange(3), 6)
  member = plan[:, owner]
  uio.save_npz(
    str(d / "scores.npz"),
    plan=plan,
    owner=owner,
    mean_loglik=member + rng.normal(size=member.shape),
    exact_match=rng.integers(0, 4, size=member.shape).astype(float),
  )


def _e7(d, rng):
  names = ["a", "b", "copy_of_a"]
  # "plain" in the games engine's keys, "deduped" in the keys of results saved before it.
  res = {
    pol: [
      {
        "method": m,
        players: names,
        "values": rng.uniform(0, 0.1, 3).tolist(),
        seed_se: [0.01] * 3 if m != "arrival_order" else None,
      }
      for m in ("exact_shapley", "arrival_order")
    ]
    for pol, players, seed_se in (
      ("plain", "players", "seed_stderr"),
      ("deduped", "names", "seed_se"),
    )
  }
  uio.write_json(d / "attribution.json", {"results": res})
  entries = [{"contributor": n, "payment": f"{p:.2f}"} for n, p in zip(names, (60, 40, 0))]
  uio.write_json(d / "royalties.json", {"entries": entries, "inputs": {"currency": "USD"}})


SYNTHETIC = {
  "e1_throughput": _e1,
  "e2_predictor": _e2,
  "e3_strategies": _e3,
  "e4_ladder": _e4,
  "e5_goodhart": _e5,
  "e6_membership": _e6,
  "e7_attribution": _e7,
}


def test_every_experiment_has_a_figure_function():
  names = set(experiment.list_experiments())
  assert names == set(figures.FIGURES), "an experiment without a figure function (or vice versa)"
  assert names == set(SYNTHETIC), "add a synthetic result for the new experiment's figure test"


@pytest.mark.parametrize("name", sorted(SYNTHETIC))
def test_figure_from_synthetic_result(name, tmp_path):
  SYNTHETIC[name](tmp_path, np.random.default_rng(0))
  paths = figures.draw(name, str(tmp_path))
  assert paths and all(os.path.dirname(p) == str(tmp_path) for p in paths)
  for p in paths:
    _assert_png(p)


def test_e2_without_predictions_draws_spearman_per_split(tmp_path):
  _e2(tmp_path, np.random.default_rng(1), with_predictions=False)
  (path,) = figures.draw("e2_predictor", str(tmp_path))
  assert os.path.basename(path) == "quality_per_split.png"
  _assert_png(path)


def test_e2_zero_shot_rows_draw_spearman_per_split(tmp_path):
  # A zero-shot E2 run keeps its scores only as table rows (no eval.json).
  rows = [
    {"split": s, "estimator": e, "spearman": v, "ceiling (split-half Spearman)": 0.9}
    for s in ("zero-shot wine", "unseen pairs")
    for e, v in (("gradient boosting", 0.7), ("ridge", 0.5))
  ]
  uio.write_json(os.path.join(tmp_path, "table.json"), {"rows": rows})
  (path,) = figures.draw("e2_predictor", str(tmp_path))
  assert os.path.basename(path) == "quality_per_split.png"
  _assert_png(path)


def test_missing_results_are_one_line_errors(tmp_path):
  with pytest.raises(MetavalError, match="labels.json is missing"):
    figures.draw("e1_throughput", str(tmp_path))
  with pytest.raises(MetavalError, match="scores.npz is missing"):
    figures.draw("e6_membership", str(tmp_path))
  with pytest.raises(MetavalError, match="no figure function"):
    figures.draw("e9_nothing", str(tmp_path))


def test_figures_only_redraws_and_links_without_running(tmp_path):
  results = tmp_path / "experiments"
  work = results / "results" / "e3_strategies"
  work.mkdir(parents=True)
  _e3(work, np.random.default_rng(2))
  record = json.load(open(work / "table.json"))
  record.update(
    name="e3_strategies",
    title="E3",
    claim="c",
    command="x",
    date="d",
    seconds=1.0,
    notes=[],
    plots=[],
    machine={"cpu": "c", "cores": 2, "accelerator": "cpu", "jax": "0"},
  )
  uio.write_json(work / "table.json", record)
  res = experiment.run_experiment("e3", results=str(results), figures_only=True)
  assert [os.path.basename(p) for p in res.plots] == ["quality_vs_cost.png"]
  assert json.load(open(work / "table.json"))["plots"] == ["quality_vs_cost.png"]
  readme = open(results / "README.md").read()
  assert "](results/e3_strategies/quality_vs_cost.png)" in readme


def test_one_style():
  import matplotlib.pyplot as plt

  with plt.rc_context(plots.STYLE):
    assert plt.rcParams["axes.prop_cycle"].by_key()["color"] == list(plots.COLOURS)
  from metaval import protocol

  assert protocol.STYLE is plots.STYLE
