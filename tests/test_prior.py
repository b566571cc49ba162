"""The prior of generated tasks: generator, generic kinds, shape buckets, the label job."""

import dataclasses
import json

import numpy as np
import pytest

from metaval import pairs as pairs_lib
from metaval.configlib import load
from metaval.data import list_tasks, samplers
from metaval.errors import MetavalError
from metaval.learners.models import LearnerSpec
from metaval.prior import generator, job, labels, storage
from metaval.prior import pairs as prior_pairs


def test_tasks_are_deterministic_and_rebuilt_from_their_spec():
  spec = generator.sample_spec(11)
  a, b = (
    generator.sample_task(11),
    generator.build_task(generator.TaskSpec.from_json(spec.to_json())),
  )
  assert a.name == "prior:11" and a.seed == 11
  np.testing.assert_array_equal(a.x, b.x)
  np.testing.assert_array_equal(a.y, b.y)
  np.testing.assert_array_equal(a.evals["test"][0], b.evals["test"][0])
  c = generator.sample_task(12)
  assert a.x.shape != c.x.shape or not np.array_equal(a.x, c.x)


def test_specs_cover_the_ranges_and_tasks_honour_them():
  specs = [generator.sample_spec(s) for s in range(300)]
  dims = [s.dim for s in specs]
  classes = [s.num_classes for s in specs]
  pools = [s.pool_size for s in specs]
  assert min(dims) == 2 and max(dims) >= 48
  assert set(classes) == set(range(2, 11))
  assert min(pools) < 100 and max(pools) > 1500
  assert {s.structure for s in specs} == set(generator.STRUCTURES)
  assert any(s.redundant for s in specs) and any(s.warped for s in specs)
  assert any(s.label_noise > 0.05 for s in specs) and any(s.imbalance < 1 for s in specs)
  for spec in specs[:25]:
    task = generator.build_task(spec)
    xe, ye = task.evals["test"]
    assert task.x.shape == (spec.pool_size, spec.dim) and xe.shape == (spec.eval_size, spec.dim)
    assert task.num_classes == spec.num_classes
    assert np.bincount(task.y, minlength=spec.num_classes).min() >= 1
    assert np.bincount(ye, minlength=spec.num_classes).min() >= 1
    # Standardised by the pool alone.
    np.testing.assert_allclose(task.x.mean(0), 0, atol=1e-3)
    sd = task.x.std(0)
    assert np.all((np.abs(sd - 1) < 1e-2) | (sd < 1e-6))


def test_ranges_can_be_narrowed_and_bad_ones_are_refused():
  for s in range(20):
    spec = generator.sample_spec(s, dim=(5, 5), num_classes=(3, 3), pool_size=(100, 120))
    assert spec.dim == 5 and spec.num_classes == 3 and 100 <= spec.pool_size <= 120
  with pytest.raises(MetavalError, match="unknown prior range"):
    generator.sample_spec(0, width=(2, 3))
  with pytest.raises(MetavalError, match="empty"):
    generator.sample_spec(0, dim=(9, 3))
  with pytest.raises(MetavalError, match="structure"):
    generator.TaskSpec(0, 4, 2, 0, 2, 100, 100, "spiral")


@pytest.mark.parametrize("seed", range(4))
def test_categorical_features_are_drawn_apart_from_the_rest_of_the_task(seed):
  plain = generator.sample_spec(seed)
  spec = generator.sample_spec(seed, discrete=(0.5, 1.0))
  # Every other draw is the seed's: the same spec and, for the other columns, the same task.
  assert dataclasses.replace(spec, discrete=0) == plain
  assert 0.5 * spec.dim - 1 <= spec.discrete <= spec.dim
  x, _, xe, _ = generator.build_arrays(spec)
  x0, _, _, _ = generator.build_arrays(plain)
  levels = np.array([len(np.unique(np.r_[x[:, j], xe[:, j]])) for j in range(spec.dim)])
  assert (levels <= 5).sum() >= spec.discrete  # cut into 2-5 codes
  continuous = levels > 5
  np.testing.assert_array_equal(x[:, continuous], x0[:, continuous])
  with pytest.raises(MetavalError, match="discrete"):
    generator.sample_spec(seed, discrete=(0.5, 1.5))


def test_tasks_carry_signal_and_noise_lowers_it():
  """A linear model beats the majority class on most tasks; label noise costs accuracy."""
  from sklearn.linear_model import LogisticRegression

  def acc(spec):
    task = generator.build_task(spec)
    xe, ye = task.evals["test"]
    return LogisticRegression(max_iter=300).fit(task.x, task.y).score(xe, ye), np.bincount(
      ye
    ).max() / len(ye)

  wins, drops = 0, []
  for s in range(12):
    spec = generator.sample_spec(s, dim=(4, 12), pool_size=(400, 600), label_noise=(0.0, 0.0))
    a, maj = acc(spec)
    wins += a > maj + 0.05
    noisy = generator.TaskSpec(**{**spec.to_dict(), "label_noise": 0.4})
    drops.append(a - acc(noisy)[0])
  assert wins >= 9, wins
  assert np.mean(drops) > 0.1, drops


@pytest.fixture(scope="module")
def gen_task():
  return generator.sample_task(3, dim=(6, 6), num_classes=(4, 4), pool_size=(600, 600))


def test_generic_kinds_do_what_they_say(gen_task):
  t = gen_task
  base = samplers.sample_base(t, np.random.default_rng(0), 100)
  draw = lambda k, s, **p: samplers.sample_supplement(k, t, base, np.random.default_rng(s), **p)  # noqa: E731
  for s in range(5):
    sub = draw("class_subset", s, size=80)
    assert 1 <= len(set(sub.y)) < t.num_classes and sub.pool_exact(t).all()
    imb = draw("class_imbalance", s, size=100, share=0.9)
    assert np.bincount(imb.y).max() >= 0.85 * len(imb) and len(imb) >= 40
    rot = draw("transformed", s, size=50, transform="rotation")
    src = t.x[samplers.outside(t, base)]
    assert abs(np.linalg.norm(rot.x, axis=1).mean() - np.linalg.norm(src, axis=1).mean()) < 0.5
    miss = draw("missing_features", s, size=50, share=0.5)
    assert 0.35 < np.mean(miss.x == 0) < 0.65
    foreign = draw("foreign_task", s, size=40)
    assert foreign.x.shape == (40, t.feature_dim) and (foreign.pool_indices == -1).all()
  # Covariate shift: S sits on one side of the pool (its mean is far from the pool's).
  shift = [
    np.linalg.norm(draw("covariate_shift", s, size=60, strength=4.0).x.mean(0)) for s in range(6)
  ]
  clean = [
    np.linalg.norm(draw("clean", s, size=60, class_mix="natural").x.mean(0)) for s in range(6)
  ]
  assert np.mean(shift) > np.mean(clean) + 0.5, (shift, clean)
  noisy = draw("feature_noise", 0, size=60, sigma=2.0, share=1.0)
  assert np.abs(noisy.x).mean() > np.abs(t.x).mean() + 0.3


def test_generic_kinds_are_in_the_one_registry():
  for k in samplers.GENERIC_KINDS:
    assert k in samplers.SUPPLEMENT_KINDS
  assert list(samplers.CLASSIFICATION_KINDS[:9]) == [
    "clean",
    "label_noise",
    "duplicates",
    "near_duplicates",
    "random_bits",
    "constant",
    "single_class",
    "out_of_domain",
    "mixture",
  ]  # the original kinds keep their registration order
  assert list(load("prior").kinds) == list(samplers.GENERIC_KINDS)


def test_prior_draws_never_read_a_real_task(gen_task):
  real = set(list_tasks())
  for i in range(60):
    rng = np.random.default_rng(i)
    for kind in ("out_of_domain", "mixture"):
      params = prior_pairs.safe_params(kind, rng)
      assert params.get("mode", "invert") in prior_pairs.OOD_MODES
      assert params.get("junk_kind", "clean") != "out_of_domain"
  cfg = load("prior:tiny")
  pairs, supps = prior_pairs.task_pairs(gen_task, cfg)
  for s in supps:
    assert not (set(json.dumps(s.recipe).split('"')) & real), s.recipe


def test_padding_to_a_shape_bucket_keeps_the_linear_label(gen_task):
  """Zero columns and zero-weight rows change nothing for the zero-initialised linear learner."""
  cfg = load("prior:tiny")
  pairs, _ = prior_pairs.task_pairs(gen_task, cfg)
  big, wide = labels.padded(gen_task, pairs)
  assert big.feature_dim == 8 and big.pool_size == labels.POOL_ROWS
  spec = LearnerSpec(family="linear", steps=100, lr=0.1, l2=1e-3)
  a = pairs_lib.label(gen_task, pairs, spec, num_seeds=1, chunk=8, gather=128)
  b = pairs_lib.label(big, wide, spec, num_seeds=1, chunk=8, gather=128)
  np.testing.assert_allclose(
    a.improvement("test/accuracy"), b.improvement("test/accuracy"), atol=1e-6
  )
  np.testing.assert_allclose(
    a.improvement("test/neg_log_loss"), b.improvement("test/neg_log_loss"), atol=1e-4
  )


def test_every_kind_is_dealt_to_every_task():
  kinds = list(samplers.GENERIC_KINDS)
  dealt = prior_pairs.deal_kinds(kinds, 2 * len(kinds), np.random.default_rng(0))
  assert sorted(dealt) == sorted(kinds * 2)


def test_tiny_prior_run_stores_rebuildable_labels_and_resumes(tmp_path):
  cfg = load("prior:tiny")
  out = job.generate(cfg, str(tmp_path))
  assert len(out.specs) == 3 and len(out) == 12 and out.num_labels == 12
  assert out.metric_base.shape == (12, 1, 2, 2)
  tab = out.table()
  assert set(tab) >= {"task_seed", "kind", "learner", "n_base", "n_supp", "d_accuracy"}
  assert len(tab["d_accuracy"]) == 12 and np.all(np.isfinite(tab["d_neg_log_loss"]))
  assert np.all(np.abs(tab["d_accuracy"]) <= 1)
  for row in range(len(out)):
    arr = out.pair_arrays(row)
    again = out.pair_arrays(row, redraw=True)  # redrawn from seeds: the same arrays
    for k in arr:
      np.testing.assert_array_equal(arr[k], again[k])
    assert len(arr["x_base"]) == out.n_base[row] and len(arr["y_supp"]) == out.n_supp[row]
    assert arr["x_supp"].shape[1] == arr["x_eval"].shape[1] == out.specs[out.task_seed[row]].dim
  # A rerun finds every shard done and returns the same labels.
  again = job.generate(cfg, str(tmp_path))
  np.testing.assert_array_equal(again.metric_full, out.metric_full)
  with pytest.raises(MetavalError, match="different config"):
    job.generate(load("prior:tiny", ["--config.seed=1"]), str(tmp_path))
  assert storage.load_prior(str(tmp_path)).num_labels == 12


def test_bad_prior_configs_fail_in_one_line(tmp_path):
  with pytest.raises(MetavalError, match="unknown supplement kind"):
    job.check_config(load("prior:tiny", ["--config.kinds=('clean', 'bogus')"]))
  with pytest.raises(MetavalError, match="gather"):
    job.check_config(load("prior:tiny", ["--config.gather=64"]))
  with pytest.raises(MetavalError, match="no prior labels"):
    storage.load_prior(str(tmp_path))


def test_clean_beats_flipped_labels_on_generated_tasks():
  """Clean supplements help more than fully flipped ones, on average over tasks (margin)."""
  spec = LearnerSpec(family="linear", steps=100, l2=1e-3, solver="lbfgs")
  gaps = []
  for seed in range(4):
    task = generator.sample_task(
      seed, dim=(8, 8), num_classes=(3, 3), pool_size=(800, 800), label_noise=(0.0, 0.0)
    )
    rng = np.random.default_rng(seed)
    bases, supps = [], []
    for _ in range(4):
      base = samplers.sample_base(task, rng, 30)
      bases += [base, base]
      supps.append(samplers.sample_supplement("clean", task, base, rng, size=100))
      supps.append(samplers.sample_supplement("label_noise", task, base, rng, size=100, rate=1.0))
    pairs = pairs_lib.Pairs.from_supplements(bases, supps)
    d = pairs_lib.label(task, pairs, spec, num_seeds=1, chunk=8).improvement("test/accuracy")[:, 0]
    gaps.append(d[0::2].mean() - d[1::2].mean())
  assert np.mean(gaps) > 0.1 and min(gaps) > 0, gaps
