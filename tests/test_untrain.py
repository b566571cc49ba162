"""Gradient-ascent untraining: restore fidelity, boundedness, agreement, cost, CLI."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from metaval import cli
from metaval import pairs as pairs_lib
from metaval.configlib import load
from metaval.data import get_task
from metaval.errors import MetavalError
from metaval.learners import LearnerSpec
from metaval.protocol import agreement
from metaval.valuation import untrain as U

CONFIG = "untrain"
SMALL = LearnerSpec("mlp", width=32, steps=100, lr=0.01, l2=1e-4)


def _pairs(task, n, seed=0, kinds=("clean", "label_noise")):
  return U.sample_pairs(
    task, n, 200, (50, 100), kinds, np.random.default_rng(seed), supps_per_base=2
  )


def test_zero_ascent_steps_reproduce_the_checkpointed_model(tmp_path):
  # Restore + evaluate with no ascent must give back exactly the B ∪ S metrics:
  # checks the orbax round trip and that metric names line up with train_many's.
  task = get_task("digits")
  out = U.untrain_pairs(
    task,
    _pairs(task, 3),
    SMALL,
    U.AscentSpec(steps=0),
    num_seeds=2,
    ckpt_dir=str(tmp_path / "ck"),
    log=lambda *a: None,
  )
  np.testing.assert_allclose(out["estimate"], 0.0, atol=1e-5)
  assert np.abs(out["label"]).max() > 1e-3  # the labels themselves are not trivially 0


def test_sgd_ascent_moves_at_most_steps_lr_clip():
  task = get_task("wine")
  spec = LearnerSpec("mlp", width=8, steps=50)
  params = __import__("metaval.learners.models", fromlist=["init"]).init(
    jax.random.key(0), spec, task.feature_dim, task.num_classes
  )
  asc = U.AscentSpec(
    steps=7, lr=0.3, max_grad_norm=0.5, loss_cap=1e9, optimizer="sgd", fraction_scaled=False
  )
  sx, sy = jnp.asarray(task.x[:40]), jnp.asarray(task.y[:40])
  new, final = U.untrain_one(
    params, jax.random.key(1), sx, sy, jnp.ones(40), 1.0, spec, asc, lm=False
  )
  moved = optax.global_norm(jax.tree.map(lambda a, b: a - b, new, params))
  assert 0.3 < float(moved) <= 7 * 0.3 * 0.5 + 1e-5
  assert np.isfinite(float(final))


def test_loss_cap_stops_a_runaway_ascent():
  task = get_task("wine")
  spec = LearnerSpec("mlp", width=8, steps=50)
  params = __import__("metaval.learners.models", fromlist=["init"]).init(
    jax.random.key(0), spec, task.feature_dim, task.num_classes
  )
  sx, sy, sw = jnp.asarray(task.x[:40]), jnp.asarray(task.y[:40]), jnp.ones(40)
  run = lambda cap: U.untrain_one(  # noqa: E731
    params,
    jax.random.key(1),
    sx,
    sy,
    sw,
    1.0,
    spec,
    U.AscentSpec(steps=200, lr=0.05, loss_cap=cap, fraction_scaled=False),
    lm=False,
  )[1]
  free, capped = float(run(1e9)), float(run(3.0))
  assert np.isfinite(free) and free > 20.0  # without a cap 200 Adam steps run far
  assert 3.0 <= capped < 8.0  # with it the ascent stops just past the cap


def test_untraining_ranks_supplements_like_retraining(tmp_path):
  task = get_task("digits")
  pairs = _pairs(task, 10, seed=5, kinds=("clean", "label_noise", "random_bits", "duplicates"))
  out = U.untrain_pairs(
    task,
    pairs,
    SMALL,
    U.AscentSpec(),
    num_seeds=2,
    ckpt_dir=str(tmp_path / "ck"),
    log=lambda *a: None,
  )
  j = out["metric_names"].index("test/neg_log_loss")
  est, lab = out["estimate"][:, :, j].mean(1), out["label"][:, :, j].mean(1)
  assert agreement(est, lab)["spearman"] > 0.5
  # Noisy labels hurt in retraining and untraining them must not look valuable.
  clean, noisy = pairs.kind == "clean", pairs.kind == "label_noise"
  assert lab[clean].mean() > lab[noisy].mean()
  assert est[clean].mean() > est[noisy].mean()
  cost = U.cost_summary(out["timing"])
  # Wall-clock ratios of ~10 ms calls are load noise (orbax restore has a fixed
  # overhead of that order); only their presence is checked here.
  assert np.isfinite(cost["untrain_marginal_x"]) and cost["untrain_marginal_x"] > 0
  # Timing is noisy on a shared machine: a label is two trainings, so it costs
  # clearly more than one; the ascent's example-gradient count is exact.
  assert cost["retrain_label_x"] > 1.2
  assert cost["ascent_vs_train_example_grads"] < 0.1 and not cost["train_full_estimated"]


def test_leave_group_out_trains_one_model_for_all_subsets(tmp_path):
  task = get_task("wine")
  pairs = U.leave_group_out_pairs(task)
  assert len(pairs) == 3 and list(U.slice_names(pairs)) == [f"group:{g}" for g in task.group_names]
  assert set(pairs.kind) == {"single_class"}  # a registry kind: one class of wine
  ext, base, supp = pairs_lib.training_pool(task, pairs)
  assert np.unique(base + supp, axis=0).shape[0] == 1
  spec = LearnerSpec("mlp", width=8, steps=50)
  out = U.untrain_pairs(
    task,
    pairs,
    spec,
    U.AscentSpec(steps=20, lr=0.05),
    num_seeds=2,
    ckpt_dir=str(tmp_path / "ck"),
    log=lambda *a: None,
  )
  assert sorted(os.listdir(tmp_path / "ck")) == ["0", "before.npz"]
  assert out["timing"]["models_per_full_training"] == 3
  # Removing a whole class costs that class: retraining loses > 20 points of
  # accuracy; 20 ascent steps on the class raise the test loss.
  acc, nll = (
    out["metric_names"].index("test/accuracy"),
    out["metric_names"].index("test/neg_log_loss"),
  )
  assert (out["label"][:, :, acc].mean(1) > 0.2).all()
  assert (out["estimate"][:, :, nll].mean(1) > 0.05).all(), out["estimate"][:, :, nll]


def test_synthetic_points_are_appended_to_the_pool():
  task = get_task("wine")
  pairs = U.sample_pairs(task, 2, 40, (10,), ("random_bits",), np.random.default_rng(0))
  ext, base, supp = pairs_lib.training_pool(task, pairs)
  assert ext.pool_size == task.pool_size + 20
  assert supp[0, task.pool_size : task.pool_size + 10].sum() == 10
  assert supp[1, task.pool_size + 10 :].sum() == 10 and supp[:, : task.pool_size].sum() == 0
  np.testing.assert_array_equal(ext.x[task.pool_size + 10 :], pairs.supp_x[1])


def test_bad_settings_are_user_errors():
  task = get_task("wine")
  with pytest.raises(MetavalError, match="unknown supplement kind"):
    U.sample_pairs(task, 2, 40, (10,), ("poison",), np.random.default_rng(0))
  with pytest.raises(MetavalError, match="lr"):
    U.AscentSpec(lr=float("nan"))
  with pytest.raises(MetavalError, match="optimizer"):
    U.AscentSpec(optimizer="lion")


def test_cli_quick_end_to_end(tmp_path, capsys):
  rc = cli.main(
    [
      "untrain",
      "--config",
      f"{CONFIG}:quick",
      "--workdir",
      str(tmp_path),
      "--config.pairs.num_pairs=6",
      "--config.learner.steps=60",
    ]
  )
  assert rc == 0
  summary = json.loads((tmp_path / "untrain.json").read_text())
  assert summary["num_pairs"] == 6
  assert set(summary["agreement"]) == {"test/accuracy", "test/neg_log_loss"}
  assert "Spearman" in (tmp_path / "untrain.md").read_text()
  # A rerun resumes from the checkpoints: nothing is retrained for B ∪ S.
  rc = cli.main(
    [
      "untrain",
      "--config",
      f"{CONFIG}:quick",
      "--workdir",
      str(tmp_path),
      "--config.pairs.num_pairs=6",
      "--config.learner.steps=60",
    ]
  )
  assert rc == 0 and "trained 0 B∪S model group(s)" in capsys.readouterr().out
  rc = cli.main(["untrain", "--config", f"{CONFIG}:quick", "--config.pairs.kinds=('bogus',)"])
  assert rc == 2


@pytest.mark.slow
def test_code_lm_leave_one_package_out(tmp_path):
  cfg = load(
    f"{CONFIG}:code",
    [
      "--config.learner.steps=60",
      "--config.learner.width=16",
      "--config.pairs.groups=('json','html','http')",
    ],
  )
  summary = U.run(cfg, str(tmp_path))
  assert summary["num_pairs"] == 3
  assert np.isfinite(summary["cost"]["untrain_total_x"])
