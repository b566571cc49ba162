"""Size-ladder ablation: alignment, Spearman matrix, decision accuracy, extrapolation."""

import json

import numpy as np
import pytest

from metaval import cli
from metaval.configlib import load
from metaval.errors import MetavalError
from metaval.labeling.schema import LabelSet
from metaval.valuation import ablation as A

CONFIG = "ablation"


def _labelset(mat, params, bases):
  """A LabelSet whose rows are (pair, learner), labels = ``mat [P, L]`` on one metric."""
  p_count, n_learners = mat.shape
  rows = [(p, j) for p in range(p_count) for j in reversed(range(n_learners))]  # shuffled order
  base_full = np.zeros((len(rows), 1, 2))
  full = np.zeros_like(base_full)
  for r, (p, j) in enumerate(rows):
    full[r, 0, 1] = mat[p, j]
  return LabelSet(
    task="digits",
    task_seed=0,
    metric_names=["test/accuracy", "test/neg_log_loss"],
    base_indices=[np.asarray(bases[p], np.int32) for p, _ in rows],
    supp_indices=[np.zeros(1, np.int32) for _ in rows],
    supp_x=[np.zeros((1, 2), np.float32) for _ in rows],
    supp_y=[np.zeros(1, np.int32) for _ in rows],
    kind=np.array(["clean"] * len(rows)),
    recipe=np.array(["{}"] * len(rows)),
    learner=np.array([json.dumps({"name": f"m{params[j]}"}) for _, j in rows]),
    learner_params=np.array([params[j] for _, j in rows], np.int64),
    metric_base=base_full,
    metric_full=full,
    pair_id=np.array([p for p, _ in rows], np.int64),
    shard=np.zeros(len(rows), np.int32),
  )


def test_ladder_labels_align_pairs_and_sort_sizes_by_params():
  rng = np.random.default_rng(0)
  mat = rng.normal(size=(6, 3))
  params = [100, 400, 1600]
  bases = [[0, 1], [0, 1], [2, 3], [2, 3], [4], [4]]
  names, p, got, base_ids = A.ladder_labels(_labelset(mat, params, bases), "test/neg_log_loss")
  assert names == ["m100", "m400", "m1600"] and p.tolist() == params
  np.testing.assert_allclose(got, mat)
  assert base_ids[0] == base_ids[1] != base_ids[2]
  with pytest.raises(MetavalError, match="not every pair"):
    A.ladder_labels(_labelset(mat, params, bases).subset(np.arange(17)), "test/neg_log_loss")


def test_spearman_matrix_and_decision_accuracy_on_a_known_ladder():
  rng = np.random.default_rng(1)
  truth = rng.normal(size=40)
  # Size 0 is noisy, size 1 is exact up to scale, size 2 (largest) is the truth.
  mat = np.stack([truth + rng.normal(scale=2.0, size=40), 3 * truth + 1, truth], 1)
  sp = A.spearman_matrix(mat)
  assert sp[1, 2] == pytest.approx(1.0) and sp[0, 2] < 0.8 and np.allclose(sp, sp.T)
  bases = [i // 4 for i in range(40)]  # 10 bases x 4 supplements = 60 same-base pairs
  acc = A.decision_accuracy(mat, bases)
  assert acc[1] == 1.0 and acc[2] == 1.0 and 0.4 < acc[0] < 0.95
  # An anti-correlated size gets every decision wrong.
  assert A.decision_accuracy(np.stack([-truth, truth], 1), bases)[0] == 0.0


def test_extrapolation_recovers_a_log_linear_trend_and_a_power_law():
  rng = np.random.default_rng(2)
  params = np.array([100, 200, 400, 800, 1600])
  slope, icpt = rng.normal(size=30), rng.normal(size=30)
  mat = icpt[:, None] + slope[:, None] * np.log(params)[None]
  ex = A.extrapolate(mat, params)
  np.testing.assert_allclose(ex["per_pair_pred"], mat[:, -1], atol=1e-8)
  assert ex["per_pair_mae"] < 1e-8
  # Power law: mean |imp| = 2 * params**-0.5 exactly.
  pl = A.extrapolate(2.0 * params[None].astype(float) ** -0.5 * np.ones((5, 1)), params)
  assert pl["power_law"]["b"] == pytest.approx(-0.5) and abs(pl["power_law"]["rel_error"]) < 1e-9
  with pytest.raises(MetavalError, match="at least 3 sizes"):
    A.extrapolate(mat[:, :2], params[:2])


def test_labels_config_puts_every_ladder_size_on_the_same_pairs():
  cfg = load(f"{CONFIG}:quick")
  lcfg = A.labels_config(cfg.families.mlp, "mlp")
  assert set(lcfg.learners) == {"mlp8", "mlp16", "mlp32", "mlp64"}
  assert {lcfg.learners[k].width for k in lcfg.learners} == {8, 16, 32, 64}
  assert {lcfg.learners[k].steps for k in lcfg.learners} == {100}
  assert lcfg.num_shards == 2 and lcfg.task.name == "digits"


def test_cli_unknown_family_is_a_one_line_error(tmp_path, capsys):
  rc = cli.main(
    [
      "ablate",
      "--config",
      f"{CONFIG}:quick",
      "--workdir",
      str(tmp_path),
      "--config.families_to_run=('transformer',)",
    ]
  )
  assert rc == 2 and "unknown family 'transformer'" in capsys.readouterr().err


@pytest.mark.slow
def test_ablate_end_to_end_tiny(tmp_path):
  cfg = load(
    f"{CONFIG}:quick",
    [
      "--config.families.mlp.sizes=(4, 8, 16)",
      "--config.families.mlp.learner.steps=40",
      "--config.families.mlp.pipeline.num_shards=1",
    ],
  )
  summary = A.run(cfg, str(tmp_path))
  mlp = summary["mlp"]
  assert mlp["num_pairs"] == 16 and len(mlp["spearman"]) == 3
  # Neighbouring MLP sizes agree on which supplements help.
  assert mlp["spearman"][1][2] > 0.5
  for f in ("ablation.md", "ablation.json", "ablation.png", "ablation_summary.json"):
    assert (tmp_path / f).exists()
