"""Label pipeline: paired labels, storage round trip, resume, quality, backends."""

import dataclasses
import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from unittest import mock

import jax
import numpy as np
import pytest

from metaval.configlib import load
from metaval.data import get_task, samplers
from metaval.errors import MetavalError
from metaval.labeling import generate, label_pairs, load_labels, pipeline, quality, storage
from metaval.labeling.schema import LabelSet
from metaval.learners import TRACE_COUNTS, LearnerSpec, metric_names, train_many

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = "labels:tiny"
LINEAR = LearnerSpec("linear", steps=100, lr=0.1, l2=1e-3)


def _tiny(**overrides):
  return load(TINY, [f"--config.{k}={v}" for k, v in overrides.items()])


def _files(d):
  out = {}
  for p in sorted(glob.glob(os.path.join(d, "**", "*"), recursive=True)):
    if os.path.isfile(p) and ("shard-" in p or ".array_record" in p):
      with open(p, "rb") as fh:
        out[os.path.relpath(p, d)] = fh.read()
  return out


def _assert_same_labels(a: LabelSet, b: LabelSet):
  assert len(a) == len(b)
  np.testing.assert_array_equal(a.metric_base, b.metric_base)
  np.testing.assert_array_equal(a.metric_full, b.metric_full)
  np.testing.assert_array_equal(a.kind, b.kind)
  np.testing.assert_array_equal(a.recipe, b.recipe)
  for xa, xb in zip(a.supp_x, b.supp_x):
    np.testing.assert_array_equal(xa, xb)


def test_label_pairs_uses_paired_keys_and_shares_base_models():
  task = get_task("wine")
  spec = LearnerSpec("mlp", width=8, steps=30, lr=0.02, l2=1e-4)
  rng = np.random.default_rng(0)
  bases = [samplers.sample_base(task, rng, 40), samplers.sample_base(task, rng, 60)]
  supps = [
    samplers.sample_supplement("clean", task, bases[0], rng, size=20),
    samplers.sample_supplement("random_bits", task, bases[0], rng, size=15),
    samplers.sample_supplement("label_noise", task, bases[1], rng, size=25, rate=0.5),
  ]
  key = jax.random.key(11)
  mb, mf = label_pairs(
    task, bases, supps, spec, base_of=[0, 0, 1], num_seeds=3, key=key, chunk=4,
    extra_capacity=32,
  )  # fmt: skip
  t = len(metric_names(task))
  assert mb.shape == mf.shape == (3, 3, t)
  np.testing.assert_array_equal(mb[0], mb[1])  # one B model per (base, seed), shared
  # The B model of (base 1, seed 2) is the plain trainer with key fold_in(fold_in(key, 1), 2).
  k12 = jax.random.fold_in(jax.random.fold_in(key, 1), 2)
  mask = np.zeros((1, task.pool_size), np.float32)
  mask[0, bases[1]] = 1
  ref = train_many(k12[None], task, mask, spec).metrics
  np.testing.assert_allclose(mb[2, 2], [ref[n][0] for n in metric_names(task)], atol=1e-5)
  # B ∪ S (pair 2, seed 2): same key, pool weights plus the flipped points appended.
  s = supps[2]
  exact = s.pool_exact(task)
  ext = dataclasses.replace(
    task, x=np.concatenate([task.x, s.x[~exact]]), y=np.concatenate([task.y, s.y[~exact]])
  )
  m2 = np.concatenate([mask, np.ones((1, int((~exact).sum())), np.float32)], 1)
  m2[0, s.pool_indices[exact]] += 1
  ref2 = train_many(k12[None], ext, m2, spec).metrics
  np.testing.assert_allclose(mf[2, 2], [ref2[n][0] for n in metric_names(task)], atol=1e-4)


def test_digits_clean_helps_flipped_and_random_bits_do_not():
  """What must hold on digits: clean 200-point supplements improve accuracy on
  average; fully label-flipped and random-bit supplements of equal size do not."""
  task = get_task("digits")
  rng = np.random.default_rng(0)
  bases = [samplers.sample_base(task, rng, int(n)) for n in rng.integers(80, 200, 6)]
  kinds = [("clean", {}), ("label_noise", {"rate": 1.0}), ("random_bits", {})]
  supps, base_of = [], []
  for b, base in enumerate(bases):
    for kind, params in kinds:
      supps.append(samplers.sample_supplement(kind, task, base, rng, size=200, **params))
      base_of.append(b)
  mb, mf = label_pairs(task, bases, supps, LINEAR, base_of=base_of, num_seeds=1, chunk=8)
  acc = (mf - mb)[:, 0, metric_names(task).index("test/accuracy")].reshape(len(bases), 3)
  clean, flipped, bits = acc.mean(0)
  assert clean > 0.01, acc  # measured +0.023 (6 bases of 80-200 points)
  assert flipped < 0, acc
  assert bits <= 0.005, acc
  assert clean > bits + 0.01 and clean > flipped + 0.02


def test_shards_reuse_one_compilation():
  cfg = _tiny()
  pipeline.run_shard(cfg, "digits", 0)
  spec = LearnerSpec.from_config(cfg.learners.linear)
  before = TRACE_COUNTS[(spec, False)]
  for shard in (1, 2, 3):
    pipeline.run_shard(cfg, "digits", shard)
  assert TRACE_COUNTS[(spec, False)] == before
  assert 1 <= before <= 2  # plain pool, and pool + padded synthetic points


def test_generate_roundtrip_resume_and_quality(tmp_path):
  cfg = _tiny()
  ls = generate(cfg, str(tmp_path / "a"))
  assert len(ls) == 32 and ls.num_seeds == 2 and ls.task == "digits"
  assert ls.metric_names == metric_names(get_task("digits"))
  assert set(ls.kind) <= set(cfg.kinds) and len(set(ls.kind)) >= 4
  np.testing.assert_array_equal(ls.pair_id, np.arange(32))
  task = get_task("digits")
  for i in range(len(ls)):
    idx, x = ls.supp_indices[i], ls.supp_x[i]
    np.testing.assert_array_equal(x[idx >= 0], task.x[idx[idx >= 0]])
    assert ls.recipe_of(i)["size"] == len(idx) == len(ls.supp_y[i])
    assert ls.learner_spec(i)["family"] == "linear" and ls.learner_params[i] == 650
  # Paired seeds of the deterministic linear learner agree exactly.
  np.testing.assert_array_equal(ls.metric_full[:, 0], ls.metric_full[:, 1])
  # Readable directly through TFDS as well.
  import tensorflow_datasets as tfds

  src = tfds.builder("metaval_labels", data_dir=str(tmp_path / "a" / "digits" / "tfds"))
  rows = src.as_data_source()["train"]
  assert len(rows) == 32
  row = rows[0]
  i = int(np.flatnonzero(ls.pair_id == int(row["pair_id"]))[0])
  np.testing.assert_allclose(row["improvement"], ls.improvement[i])
  np.testing.assert_allclose(row["improvement_se"], ls.improvement_se[i])
  _assert_same_labels(load_labels(str(tmp_path / "a")), ls)

  # Resume: drop two shards and the built dataset; the rerun redoes only those
  # and rewrites byte-identical files.
  before = _files(str(tmp_path / "a"))
  for s in (1, 3):
    os.remove(storage.shard_path(str(tmp_path / "a" / "digits"), s))
  os.remove(tmp_path / "a" / "digits" / "tfds_complete.json")
  again = generate(cfg, str(tmp_path / "a"))
  assert _files(str(tmp_path / "a")) == before
  _assert_same_labels(again, ls)

  # A different config may not write into the same workdir.
  with pytest.raises(MetavalError, match="different config"):
    generate(_tiny(seed=1), str(tmp_path / "a"))

  rep = quality.run(cfg, str(tmp_path / "a"))
  entry = rep["digits"]["learners"]["linear"]["metrics"]["test/accuracy"]
  assert os.path.getsize(entry["plot"]) > 1000
  assert sum(r["n"] for r in entry["per_kind"]) == 32
  # Deterministic learner: both seed halves agree, so the ceiling is exactly 1.
  assert entry["repeatability"]["ceiling_pearson"] == pytest.approx(1.0)


def test_repeatability_recovers_known_noise():
  rng = np.random.default_rng(0)
  p, k = 400, 8
  truth = rng.normal(0, 1.0, p)
  base = rng.normal(0, 1, (p, k, 1))
  full = base + truth[:, None, None] + rng.normal(0, 2.0, (p, k, 1))
  ls = LabelSet(
    task="digits", task_seed=0, metric_names=["m"], base_indices=[np.zeros(1)] * p,
    supp_indices=[np.zeros(1)] * p, supp_x=[np.zeros((1, 1))] * p, supp_y=[np.zeros(1)] * p,
    kind=np.array(["a", "b"] * (p // 2)), recipe=np.array(["{}"] * p),
    learner=np.array(['{"name": "x", "family": "mlp"}'] * p), learner_params=np.ones(p),
    metric_base=base, metric_full=full, pair_id=np.arange(p), shard=np.zeros(p),
  )  # fmt: skip
  rep = quality.repeatability(ls, "m")
  # Half of 8 seeds: noise var 4/4 = 1 vs signal var 1 -> split-half r = 0.5, ceiling 2/3.
  assert rep["split_pearson"] == pytest.approx(0.5, abs=0.1)
  assert rep["ceiling_pearson"] == pytest.approx(2 / 3, abs=0.08)
  rows = {r["kind"]: r for r in quality.per_kind(ls, "m")}
  assert rows["a"]["n"] == rows["b"]["n"] == 200
  np.testing.assert_allclose(rows["a"]["mean"], ls.improvement[::2, 0].mean())
  one = ls.subset(np.arange(p))
  one.metric_base, one.metric_full = base[:, :1], full[:, :1]
  assert np.isnan(quality.repeatability(one, "m")["split_pearson"])


def test_config_errors_are_one_line_metaval_errors(tmp_path):
  with pytest.raises(MetavalError, match="unknown supplement kind"):
    generate(_tiny(kinds="('clean', 'bogus')"), str(tmp_path))
  with pytest.raises(MetavalError, match="backend"):
    generate(_tiny(backend="spark"), str(tmp_path))
  with pytest.raises(MetavalError, match="no finished label dataset"):
    load_labels(str(tmp_path / "empty"))


@pytest.mark.slow
def test_sigkill_then_resume_equals_uninterrupted_run(tmp_path):
  cmd = [sys.executable, "-m", "metaval", "generate", "--config", TINY, "--config.num_shards=10"]
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  killed = tmp_path / "killed"
  proc = subprocess.Popen([*cmd, "--workdir", str(killed)], cwd=REPO, env=env)
  first = storage.shard_path(str(killed / "digits"), 0)
  deadline = time.time() + 240
  while not os.path.exists(first) and proc.poll() is None and time.time() < deadline:
    time.sleep(0.02)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  done = storage.finished_shards(str(killed / "digits"))
  assert 1 <= len(done) < 10, done  # killed mid-run, after the first shard
  assert not os.path.exists(killed / "digits" / "tfds_complete.json")
  kept = {s: os.stat(storage.shard_path(str(killed / "digits"), s)).st_mtime_ns for s in done}
  subprocess.run([*cmd, "--workdir", str(killed)], cwd=REPO, env=env, check=True)
  # Finished shards survive the kill and are not redone: only the rest is lost.
  assert kept == {
    s: os.stat(storage.shard_path(str(killed / "digits"), s)).st_mtime_ns for s in done
  }
  clean = tmp_path / "clean"
  subprocess.run([*cmd, "--workdir", str(clean)], cwd=REPO, env=env, check=True)
  assert _files(str(killed)) == _files(str(clean))
  _assert_same_labels(load_labels(str(killed)), load_labels(str(clean)))


@pytest.mark.slow
def test_ray_backend_matches_local(tmp_path):
  ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'metaval[ray]')")
  local = generate(_tiny(), str(tmp_path / "local"))
  ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
  try:
    remote = generate(_tiny(backend="ray"), str(tmp_path / "ray"))
  finally:
    ray.shutdown()
  _assert_same_labels(local, remote)
  assert _files(str(tmp_path / "local")) == _files(str(tmp_path / "ray"))
  shutil.rmtree(tmp_path)


def _worker_shard(cfg, shard):
  rec = pipeline.run_shard(cfg, "digits", shard)
  from metaval.data import tasks

  return rec, "sklearn.datasets" in sys.modules, len(tasks._PRIMED)


def test_workers_start_with_the_parents_tasks_and_label_the_same():
  # A worker handed the parent's built task labels with it (no scikit-learn loader
  # imported: that import was most of a cold worker's start-up) and gives the same
  # shard, bit for bit, as one that builds the task itself.
  # The tiny config samples ``out_of_domain`` supplements, which may draw another
  # built-in task's inputs: those tasks are handed over too.
  cfg = _tiny()
  assert "out_of_domain" in cfg.kinds
  built = pipeline.built_tasks(cfg)
  names = [k[0] for k, _ in built]
  assert names[0] == "digits" and set(names[1:]) == set(samplers.other_tasks("digits"))
  made = []
  real_mkdtemp = tempfile.mkdtemp

  def mkdtemp(*a, **k):  # the folder the tasks are handed over through
    made.append(real_mkdtemp(*a, **k))
    return made[-1]

  with mock.patch.object(tempfile, "mkdtemp", mkdtemp):
    with pipeline.shard_pool(1, built) as pool:
      rec, imported, primed = pool.submit(_worker_shard, cfg.to_dict(), 2).result()
  assert not imported and primed == len(built)
  assert len(made) == 1 and not os.path.exists(made[0])  # removed with the pool
  with pipeline.shard_pool(1) as pool:
    ref, imported, primed = pool.submit(_worker_shard, cfg.to_dict(), 2).result()
  assert imported and primed == 0
  for k in ("metric_base", "metric_full", "pair_id", "base_flat"):
    np.testing.assert_array_equal(rec[k], ref[k])
  # Another seed is another task: not the primed one.
  from metaval.data import tasks

  assert tasks.task_key("digits", 1) != built[0][0]


def test_generate_keeps_compiled_programs_in_the_persistent_cache(tmp_path, monkeypatch):
  # Local workers write their programs to $METAVAL_CACHE/jax (a later run loads them
  # instead of compiling); jax_cache=False leaves no cache behind.
  from metaval.util import jaxcache

  monkeypatch.setenv("METAVAL_CACHE", str(tmp_path / "cache"))
  monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
  cache = tmp_path / "cache" / "jax"

  generate(_tiny(num_shards=2, jax_cache=False), str(tmp_path / "off"))
  assert jaxcache.entries(str(cache)) + jaxcache.kept(str(cache)) == 0
  a = generate(_tiny(num_shards=2), str(tmp_path / "on"))
  assert jaxcache.entries(str(cache)) + jaxcache.kept(str(cache)) > 0
  # The cache is a runtime choice: same labels, and the same dataset may be resumed
  # with it on or off.
  b = load_labels(str(tmp_path / "off"))
  _assert_same_labels(a, b)
  generate(_tiny(num_shards=2, jax_cache=False), str(tmp_path / "on"))
