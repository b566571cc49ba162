"""Memorization spot-check: scores, calibration, AUC and the end-to-end audit."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metaval import cli
from metaval.audit import membership as mem
from metaval.configlib import load
from metaval.data import get_task
from metaval.jobs import audit_membership
from metaval.learners import LearnerSpec, apply, init

TINY = LearnerSpec("lm", width=16, depth=1, heads=2, steps=20, lr=3e-3, l2=0.0, batch_size=8)


def test_teacher_forced_exact_match_equals_greedy_generation():
  task = get_task("code")
  params = init(jax.random.key(0), TINY, 0, task.num_classes)
  prefix, length = 8, 12
  # Real greedy decoding, one character at a time, in a fixed-length buffer (the
  # model is causal, so the not-yet-generated tail cannot affect the argmax).
  logits_fn = jax.jit(lambda s: apply(params, s, TINY))
  seq = jnp.zeros((5, prefix + length), jnp.int32).at[:, :prefix].set(task.x[:5, :prefix])
  for t in range(prefix, prefix + length):
    seq = seq.at[:, t].set(jnp.argmax(logits_fn(seq)[:, t - 1], -1).astype(jnp.int32))
  # Corrupt the continuation at a different position per row (row 4 untouched).
  cut = np.array([0, 3, 5, 11, length])
  windows = np.asarray(seq).copy()
  for r, j in enumerate(cut):
    if j < length:
      windows[r, prefix + j] = (windows[r, prefix + j] % (task.num_classes - 1)) + 1
  score_fn = jax.jit(mem.token_logprobs, static_argnames=("spec", "prefix_len"))
  logp, hit = score_fn(params, jnp.asarray(windows), spec=TINY, prefix_len=prefix)
  scores = mem.scores_from_logprobs(logp, hit, 0.2)
  np.testing.assert_array_equal(np.asarray(scores["exact_match"]), cut)
  assert logp.shape == (5, length)


def test_min_k_is_the_mean_of_the_lowest_fraction():
  logp = jnp.array([[-1.0, -5.0, -0.1, -3.0, -0.2, -0.3, -0.4, -0.5, -0.6, -0.7]])
  hit = jnp.array([[True, True, False] + [True] * 7])
  s = mem.scores_from_logprobs(logp, hit, 0.2)
  assert float(s["min_k"][0]) == pytest.approx(-4.0)  # mean of -5 and -3
  assert float(s["mean_loglik"][0]) == pytest.approx(float(logp.mean()))
  assert float(s["exact_match"][0]) == 2.0


def test_complementary_plan_makes_every_contributor_a_member_once_per_pair():
  plan = mem.complementary_plan(7, 4, np.random.default_rng(0))
  assert plan.shape == (8, 7)
  np.testing.assert_array_equal(plan[0::2] ^ plan[1::2], np.ones((4, 7), bool))
  assert set(plan.sum(1).tolist()) <= {3, 4}
  with pytest.raises(mem.MembershipError):
    mem.complementary_plan(5, 1, np.random.default_rng(0))


def test_calibration_removes_per_contributor_difficulty():
  # Contributors differ in difficulty (offset 0..3) far more than membership
  # moves the score (+0.2): raw AUC is weak, calibrated AUC is perfect.
  rng = np.random.default_rng(0)
  k, pairs, per = 10, 4, 3
  plan = mem.complementary_plan(k, pairs, rng)
  owner = np.repeat(np.arange(k), per)
  offset = rng.uniform(0, 3, size=k)
  s = offset[owner][None] + 0.2 * plan[:, owner] + rng.normal(0, 0.01, (2 * pairs, k * per))
  rows = mem.analyse({"mean_loglik": s}, plan, owner, num_boot=200, rng=rng)
  by = {(r["score"], r["level"]): r for r in rows}
  assert by[("mean_loglik", "contributor")]["auc"] < 0.75
  cal = by[("mean_loglik_calibrated", "contributor")]
  assert cal["auc"] == 1.0 and cal["lo"] == pytest.approx(1.0)
  assert cal["paired_win"] == 1.0 and cal["mean_gap"] == pytest.approx(0.2, abs=0.01)
  assert by[("mean_loglik_calibrated", "prompt")]["auc"] > 0.99


def test_auc_with_ci_brackets_a_noisy_signal():
  rng = np.random.default_rng(1)
  labels = np.tile([True, False], 200)
  scores = labels * 1.0 + rng.normal(0, 1, 400)
  auc, lo, hi = mem.auc_with_ci(scores, labels, np.arange(400) // 8, num_boot=300, rng=rng)
  assert 0.68 < auc < 0.84 and lo < auc < hi and hi - lo < 0.2  # true AUC 0.76
  clusters = np.arange(400) // 8
  wins, pairs = mem._pair_counts(scores, labels, clusters, np.unique(clusters))
  assert wins.sum() / pairs.sum() == pytest.approx(auc, abs=1e-12)


def test_cluster_bootstrap_is_centred_when_members_differ_only_within_contributors():
  # Big between-contributor spread, small within-contributor membership shift:
  # resampling duplicated clusters naively would push the interval above the AUC.
  rng = np.random.default_rng(2)
  k, per = 12, 24
  clusters = np.repeat(np.arange(k), per)
  labels = np.tile([True, False], k * per // 2)
  scores = rng.normal(0, 5, k)[clusters] + 0.5 * labels + rng.normal(0, 0.1, k * per)
  auc, lo, hi = mem.auc_with_ci(scores, labels, clusters, num_boot=500, rng=rng)
  assert lo < auc < hi
  assert abs((lo + hi) / 2 - auc) < 0.5 * (hi - lo)


def test_bad_inputs_name_the_problem():
  with pytest.raises(mem.MembershipError, match="language-model task"):
    mem.select_contributors(get_task("wine"), 2, 1, 0, np.random.default_rng(0))
  with pytest.raises(mem.MembershipError, match="files have"):
    mem.select_contributors(get_task("code"), 500, 16, 0, np.random.default_rng(0))
  cfg = load("membership:quick", ["--config.prefix_len=64"])
  with pytest.raises(mem.MembershipError, match="prefix_len"):
    audit_membership.run(cfg)


def test_cli_membership_tiny_run_writes_a_complete_table(tmp_path):
  rc = cli.main(
    [
      "audit",
      "membership",
      "--config",
      "membership:quick",
      "--config.num_contributors=4",
      "--config.num_pairs=2",
      "--config.learner.width=16",
      "--config.learner.steps=20",
      "--config.learner.batch_size=8",
      "--config.base_size=100",
      "--config.prompts_per_contributor=4",
      "--config.num_boot=50",
      "--workdir",
      str(tmp_path),
    ]
  )
  assert rc == 0
  out = json.loads((tmp_path / "membership.json").read_text())
  assert len(out["rows"]) == 12 and len(out["contributor_files"]) == 4
  plan = np.array(out["plan"])
  np.testing.assert_array_equal(plan[0] + plan[1], np.ones(4))
  for r in out["rows"]:
    assert 0.0 <= r["auc"] <= 1.0


@pytest.mark.slow
def test_quick_audit_detects_membership_with_calibrated_likelihood(tmp_path):
  cfg = load("membership:quick")
  out = audit_membership.run(cfg, str(tmp_path))
  by = {(r["score"], r["level"]): r for r in out["rows"]}
  # Measured 0.95 [0.91, 1.00]; the raw likelihood was 0.61.
  assert by[("mean_loglik_calibrated", "contributor")]["auc"] > 0.8
  assert by[("mean_loglik", "contributor")]["paired_win"] > 0.8
