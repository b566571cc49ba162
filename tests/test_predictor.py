"""Predictor features, training (orbax resume, early stopping), quality on toy labels."""

import json
import os

import numpy as np
import pytest

from metaval.data import get_task
from metaval.predictor import features as F
from metaval.predictor import testing, toy
from metaval.predictor.train import (
  META_FILE,
  PredictorError,
  calibration_scale,
  choose_targets,
  train_and_evaluate,
)
from metaval.predictor.writers import MetricWriter


@pytest.fixture(scope="session")
def toy_dir(tmp_path_factory):
  return toy.toy_predictor(str(tmp_path_factory.getbasetemp() / "toy_predictor"))


def _view_and_base(name="digits", n_base=300, seed=0):
  task = get_task(name)
  view = F.task_view(task)
  rng = np.random.default_rng(seed)
  bi = rng.choice(task.pool_size, n_base, replace=False)
  return task, view, bi, view.pool[bi], task.y[bi].astype(np.int64)


def test_relational_features_flag_duplicates_and_label_noise():
  task, view, bi, xb, yb = _view_and_base()
  fz = F.Featurizer(max_s=32, max_b=32)
  lf = np.zeros(F.LEARNER_DIM, np.float32)
  dup = fz.pair(view, xb, yb, xb[:40], yb[:40], lf)
  outside = np.setdiff1d(np.arange(task.pool_size), bi)[:40]
  clean = fz.pair(view, xb, yb, view.pool[outside], task.y[outside].astype(np.int64), lf)
  flipped = fz.pair(view, xb, yb, view.pool[outside], (task.y[outside] + 1) % 10, lf)
  idx = {n: i for i, n in enumerate(F.SET_FEATURES)}
  assert dup.sets[0, idx["share_exact_dup"]] == 1.0
  assert clean.sets[0, idx["share_exact_dup"]] == 0.0
  assert clean.sets[0, idx["mean_knn_agreement"]] > 0.8
  assert flipped.sets[0, idx["mean_knn_agreement"]] < 0.15
  # Constant inputs: every row identical -> all within-set duplicates, no variance.
  const = fz.pair(view, xb, yb, np.repeat(xb[:1] + 3.0, 20, 0), yb[:20], lf)
  assert const.sets[0, idx["share_dup_within_set"]] == 1.0
  assert const.sets[0, idx["log_var_ratio"]] < -5
  # Padding: real S elements first, then zeros; sizes are the true sizes.
  assert clean.s_mask[0].sum() == 32 and clean.s_size[0] == 40
  assert dup.s.shape == (1, 32, F.ELEM_DIM)


def test_set_statistics_of_sets_laid_end_to_end_are_each_sets_own():
  task, view, _, xb, yb = _view_and_base()
  stats = F.base_stats(xb, yb, 10)
  rng = np.random.default_rng(0)
  sets = [(view.pool[rng.choice(task.pool_size, n)], rng.integers(0, 10, n)) for n in (1, 2, 7, 40)]
  sets.append((np.repeat(xb[:1], 5, 0), yb[:5]))  # copies of one B point, within-set copies
  sizes = [len(y) for _, y in sets]
  xs, ys = np.concatenate([x for x, _ in sets]), np.concatenate([y for _, y in sets])
  rel = F.relational(xs, ys, stats, is_base=False, sizes=sizes)
  together = F.set_features_many(xs, ys, sizes, rel, stats, task, proxies=True)
  # Without the (quadratic) within-set distance every other column is the same.
  lean = F.relational(xs, ys, stats, is_base=False, sizes=sizes, within=False)
  col = F.RELATIONAL.index("log_nn_dist_within_set")
  assert np.all(lean[:, col] == 0.0)
  np.testing.assert_array_equal(np.delete(lean, col, 1), np.delete(rel, col, 1))
  at = 0
  for i, (x, y) in enumerate(sets):
    alone = F.relational(x, y, stats, is_base=False)
    np.testing.assert_array_equal(rel[at : at + len(y)], alone)
    at += len(y)
    np.testing.assert_allclose(together[i], F.set_features(x, y, alone, stats, task), atol=1e-6)


@pytest.mark.parametrize("scale,offset", [(1e-3, 0.0), (1.0, 0.0), (1e4, 3e4), (1e6, -1e7)])
def test_exact_copies_of_b_are_flagged_whatever_the_order_and_magnitude(scale, offset):
  rng = np.random.default_rng(1)
  xb = (rng.normal(size=(200, F.RAW_WIDTH)) * scale + offset).astype(np.float32)
  yb = rng.integers(0, 5, 200)
  fz = F.Featurizer(max_s=32, max_b=32)
  lf = np.zeros(F.LEARNER_DIM, np.float32)
  idx = {n: i for i, n in enumerate(F.SET_FEATURES)}
  perm = rng.permutation(200)
  copy = fz.pair(F.task_view(get_task("digits")), xb, yb, xb[perm], yb[perm], lf)
  assert copy.sets[0, idx["share_exact_dup"]] == 1.0
  assert copy.sets[0, idx["share_dup_within_set"]] == 0.0
  # A copy changes no leave-one-out kNN classification of B (its own copy is left out).
  assert copy.sets[0, idx["delta_loo_1nn_acc"]] == 0.0
  # One ulp-scale nudge per row: no longer exact copies.
  nudged = np.nextafter(xb[perm], np.float32(np.inf))
  near = fz.pair(F.task_view(get_task("digits")), xb, yb, nudged, yb[perm], lf)
  assert near.sets[0, idx["share_exact_dup"]] == 0.0
  # B's own elements: flagged only where B holds a second copy of the point.
  xb2 = np.concatenate([xb[:20], xb[:5]])
  stats = F.base_stats(xb2, yb[:25], 5)
  rel = F.relational(xb2, yb[:25], stats, is_base=True)
  np.testing.assert_array_equal(rel[:, 1], np.r_[np.ones(5), np.zeros(15), np.ones(5)])


def test_knn_proxies_rise_with_clean_data_and_fall_with_wrong_labels():
  task, view, bi, xb, yb = _view_and_base(n_base=200)
  fz = F.Featurizer(max_s=32, max_b=32)
  lf = np.zeros(F.LEARNER_DIM, np.float32)
  outside = np.setdiff1d(np.arange(task.pool_size), bi)
  j = F.SET_FEATURES.index("delta_loo_kernel_loglik")

  def ll(n, flip=0):
    ys = (task.y[outside[:n]].astype(np.int64) + flip) % 10
    return fz.pair(view, xb, yb, view.pool[outside[:n]], ys, lf).sets[0, j]

  assert 0 < ll(50) < ll(400)
  assert ll(200, flip=1) < 0


def test_feature_errors_are_clear():
  task, view, *_ = _view_and_base("wine", 30)
  with pytest.raises(F.FeatureError, match="width 13"):
    F.embed_inputs(view, np.zeros((4, 12)))
  bad = np.zeros((4, 13))
  bad[1, 2] = np.nan
  with pytest.raises(F.FeatureError, match="NaN"):
    F.embed_inputs(view, bad)
  with pytest.raises(F.FeatureError, match=r"labels must be in \[0, 3\)"):
    F.check_labels(view, np.array([0, 1, 5]), 3)


def test_code_windows_embed_into_the_common_width():
  task = get_task("code")
  view = F.task_view(task)
  assert view.pool.shape == (task.pool_size, F.RAW_WIDTH)
  # Windows of different packages are farther apart on average than within one.
  a = view.pool[task.groups == 0][:50]
  b = view.pool[task.groups == 1][:50]
  within = np.linalg.norm(a[:, None] - a[None], axis=-1).mean()
  across = np.linalg.norm(a[:, None] - b[None], axis=-1).mean()
  assert across > within
  with pytest.raises(F.FeatureError, match="token windows"):
    F.embed_inputs(view, np.zeros((3, 5), np.int32))


def test_pairwise_rank_loss_prefers_the_right_order_and_ignores_ties():
  import jax.numpy as jnp

  from metaval.predictor.train import pairwise_rank_loss

  y = jnp.array([[0.0], [1.0], [2.0], [2.0]])
  right = pairwise_rank_loss(y, y)
  wrong = pairwise_rank_loss(-y, y)
  assert float(right) < 0.01 < 1.0 < float(wrong)
  # The tied pair (2.0, 2.0) contributes nothing whatever the predictions.
  swapped = jnp.array([[0.0], [1.0], [2.5], [2.0]])
  assert abs(float(pairwise_rank_loss(swapped, y)) - float(pairwise_rank_loss(y, y))) < 0.01


def test_calibration_scale_hits_nominal_coverage():
  rng = np.random.default_rng(0)
  y = rng.normal(size=(4000, 2)) * 3.0
  mean, sigma = np.zeros_like(y), np.ones_like(y)  # sigma 3x too small
  c = calibration_scale(y, mean, sigma, 0.9)
  np.testing.assert_allclose(c, 3.0, rtol=0.08)


def test_choose_targets_intersects_label_sets():
  a = testing.toy_labels("wine", num_pairs=5, num_seeds=1)
  assert choose_targets([a])[:2] == ["test/accuracy", "test/neg_log_loss"]
  with pytest.raises(PredictorError, match="not in the labels"):
    choose_targets([a], ("test/f1",))


def test_toy_training_writes_predictor_and_ranks_noise_below_clean(toy_dir):
  meta = json.load(open(os.path.join(toy_dir, META_FILE)))
  assert meta["targets"][0] == "test/accuracy"
  assert os.path.isdir(os.path.join(toy_dir, "checkpoints", "best"))
  lines = open(os.path.join(toy_dir, "metrics.jsonl")).read().splitlines()
  assert lines and "val_loss" in json.loads(lines[-1])
  res = json.load(open(os.path.join(toy_dir, "results.json")))
  acc = res["test"]["test/accuracy"]
  # The toy labels' spread comes from label noise (large negative values); the
  # other kinds differ by seed noise only. Even a tiny predictor must track it.
  assert acc["pearson"] > 0.6, acc
  assert 0.0 <= acc["coverage"] <= 1.0


def test_interrupted_training_resumes_from_latest_checkpoint(tmp_path):
  cfg = toy.toy_config(epochs=2, patience=50)
  cfg.labels.toy_pairs = 10
  cfg.labels.toy_seeds = 1
  cfg.train.log_every = 1
  r1 = train_and_evaluate(cfg, str(tmp_path))
  assert [h["epoch"] for h in r1["history"]] == [1, 2]
  cfg.train.epochs = 4
  r2 = train_and_evaluate(cfg, str(tmp_path))  # resumes at epoch 3
  assert [h["epoch"] for h in r2["history"]] == [3, 4]
  lines = [json.loads(x) for x in open(tmp_path / "metrics.jsonl")]
  assert [rec["epoch"] for rec in lines] == [1, 2, 3, 4]


def test_metric_writer_writes_json_lines_and_keeps_wandb_off(tmp_path, capsys):
  import ml_collections

  wb = ml_collections.ConfigDict({"enabled": False, "mode": "offline", "project": "x"})
  with MetricWriter(str(tmp_path), wb, name="t") as w:
    w.write(3, {"loss": 0.5, "acc": np.float32(0.25)})
  assert "step 3" in capsys.readouterr().out
  rec = json.loads((tmp_path / "metrics.jsonl").read_text())
  assert rec["step"] == 3 and rec["acc"] == 0.25
  assert not (tmp_path / "wandb").exists()


@pytest.mark.slow
def test_end_to_end_generate_train_value(tmp_path):
  """generate (tiny label config) -> train -> value, through the real pipeline."""
  import metaval.api as api
  from metaval.configlib import load
  from metaval.data import samplers

  cfg = load(
    "predictor:quick",
    [
      "--config.labels.configs=('labels:tiny',)",
      f"--config.labels.workdirs=('{tmp_path / 'labels'}',)",
      "--config.features.cache_dir=",
      "--config.train.epochs=15",
      "--config.train.batch_size=8",
    ],
  )
  res = train_and_evaluate(cfg, str(tmp_path / "predictor"))
  assert res["num_pairs"] == 32
  p = api.load_predictor(str(tmp_path / "predictor"))
  task, info = p._task(None)
  base = np.asarray(info["base_indices"])
  rng = np.random.default_rng(0)
  clean = samplers.sample_supplement("clean", task, base, rng, size=80)
  facts = p.value((clean.x, clean.y), inputs="internal")  # sampled: internal space
  assert facts.task == "digits" and np.isfinite(facts.targets[0].value)
  flipped = p.value((clean.x, (clean.y + 1) % 10), inputs="internal")
  assert any("label noise" in w for w in flipped.warnings)


def _metaval_imports(path: str) -> set[str]:
  """Every ``metaval.*`` module a file imports (module- or function-level)."""
  import ast

  out = set()
  for node in ast.walk(ast.parse(open(path).read())):
    if isinstance(node, ast.Import):
      out |= {a.name for a in node.names}
    elif isinstance(node, ast.ImportFrom) and node.module:
      out |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
  return {m for m in out if m.startswith("metaval")}


def test_predictor_api_and_report_layers_are_small_and_flow_one_way():
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  files = [os.path.join(root, "metaval", "api.py")]
  for sub in ("predictor", "report"):
    for d, _, fs in os.walk(os.path.join(root, "metaval", sub)):
      files += [os.path.join(d, f) for f in fs if f.endswith(".py")]
  for f in files:
    assert sum(1 for _ in open(f)) <= 500, f
  imports = {os.path.relpath(f, root): _metaval_imports(f) for f in files}
  # Rendering and the facts type never reach back into the API; production training
  # never imports the test helpers' toy predictor.
  for f in ("metaval/report/facts.py", "metaval/report/render.py"):
    assert not any(m.startswith("metaval.api") for m in imports[f]), f
  for f in ("train.py", "data.py", "checkpoint.py", "features/featurizer.py"):
    assert not any(m.startswith("metaval.predictor.toy") for m in imports[f"metaval/predictor/{f}"])
  assert not any(
    m.startswith("metaval.predictor.train") for m in imports["metaval/predictor/testing.py"]
  )
  # The API takes only the facts type from the report package (which imports the API).
  from_report = {
    m.split(".")[2] for m in imports["metaval/api.py"] if m.startswith("metaval.report.")
  }
  assert from_report == {"facts"}


def test_importing_the_features_does_not_load_the_training_stack():
  import subprocess
  import sys

  code = (
    "import sys, metaval.predictor as P, metaval.predictor.features; "
    "assert 'metaval.predictor.train' not in sys.modules; "
    "assert callable(P.train_and_evaluate)"
  )
  subprocess.run([sys.executable, "-c", code], check=True)


def test_evaluate_writes_tables_and_json(tmp_path):
  from metaval.predictor import evaluate

  cfg = toy.toy_config(epochs=2, patience=50)
  cfg.labels.toy_pairs = 20
  cfg.eval.splits = ("pairs",)
  out = evaluate.run(cfg, str(tmp_path))
  assert out["num_pairs"] == 20 and set(out["splits"]) == {"pairs"}
  md = (tmp_path / "eval.md").read_text()
  assert "| estimator | spearman |" in md and "| predictor |" in md and "| ridge |" in md
  back = json.load(open(tmp_path / "eval.json"))
  assert back["targets"] == out["targets"]
