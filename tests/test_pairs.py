"""The pair engine: Pairs, the pool with appended points, paired keys, kinds registry."""

import ast
import glob
import os

import jax
import numpy as np
import pytest

from metaval import pairs as pairs_lib
from metaval.data import get_task, samplers
from metaval.learners.models import LearnerSpec
from metaval.learners.train import metric_names, train_many
from metaval.pairs import pool as pool_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _pairs(task, rng):
  bases = [samplers.sample_base(task, rng, 40), samplers.sample_base(task, rng, 50)]
  supps = [
    samplers.sample_supplement("clean", task, bases[0], rng, size=12),
    samplers.sample_supplement("random_bits", task, bases[0], rng, size=7, mode="bits"),
    samplers.sample_supplement("label_noise", task, bases[1], rng, size=10, rate=0.5),
    samplers.sample_supplement("duplicates", task, bases[1], rng, size=5),
  ]
  return pairs_lib.Pairs.from_supplements(bases, supps, [0, 0, 1, 1])


def test_pair_keys_are_shared_between_b_and_b_union_s():
  """Model (base b, seed k) is keyed fold_in(fold_in(key, b), k) on both sides: a
  B ∪ S model equals the plain trainer run with its base's B key."""
  task = get_task("wine")
  spec = LearnerSpec("mlp", width=8, steps=30, lr=0.02, l2=1e-4)
  pairs = _pairs(task, np.random.default_rng(3))
  key = jax.random.key(5)
  out = pairs_lib.label(task, pairs, spec, num_seeds=2, key=key, chunk=4, extra_capacity=32)
  keys = pairs_lib.pair_keys(key, len(pairs.bases), 2)
  for b in range(2):
    for k in range(2):
      want = jax.random.key_data(jax.random.fold_in(jax.random.fold_in(key, b), k))
      np.testing.assert_array_equal(keys[b, k], np.asarray(want))
  # Pair 0 (clean: pool points only) with seed 1: B ∪ S trained with B's key (0, 1).
  mask = np.zeros((1, task.pool_size), np.float32)
  np.add.at(mask[0], pairs.base(0), 1.0)
  np.add.at(mask[0], pairs.supp_indices[0], 1.0)
  ref = train_many(keys[0, 1][None], task, mask, spec).metrics
  np.testing.assert_allclose(
    out.metric_full[0, 1], [ref[n][0] for n in metric_names(task)], atol=1e-5
  )
  np.testing.assert_array_equal(out.metric_base[0], out.metric_base[1])  # shared B models
  assert out.fits == (2 + 4) * 2
  # Seeds matter for the MLP: different keys give different B models.
  assert not np.array_equal(out.metric_base[0, 0], out.metric_base[0, 1])


def test_a_label_with_fewer_models_than_a_chunk_trains_only_what_it_needs(monkeypatch):
  """4 models under chunk=64 train as 4, with the same metrics as padded to 64."""
  from metaval.pairs import labels as labels_mod

  task = get_task("wine")
  spec = LearnerSpec("mlp", width=8, steps=30, lr=0.02, l2=1e-4)
  pairs = _pairs(task, np.random.default_rng(3))
  key = jax.random.key(5)
  seen = []

  def spy(keys, data, masks, spec, **kw):
    seen.append(masks.shape[0])
    return train_many(keys, data, masks, spec, **kw)

  monkeypatch.setattr(labels_mod, "train_many", spy)
  out = pairs_lib.label(task, pairs, spec, num_seeds=2, key=key, chunk=64, extra_capacity=32)
  assert max(seen) <= 8, seen  # 2 bases x 2 seeds, then the pairs' groups: never 64
  monkeypatch.undo()
  # The same models, padded to the whole chunk: the same metrics.
  keys = pairs_lib.pair_keys(key, len(pairs.bases), 2).reshape(-1, 2)
  masks = np.repeat(pool_lib.base_weights(task, pairs), 2, 0).astype(np.float32)
  pad = lambda a: np.concatenate([a, np.repeat(a[:1], 64 - len(a), 0)])  # noqa: E731
  ref = train_many(pad(keys), task, pad(masks), spec, chunk=64).metrics
  want = np.stack([ref[n][:4] for n in metric_names(task)], 1).reshape(2, 2, -1)
  np.testing.assert_allclose(out.metric_base[pairs.base_of == 0][0], want[0], atol=1e-5)
  np.testing.assert_allclose(out.metric_base[pairs.base_of == 1][0], want[1], atol=1e-5)


def test_appended_points_land_where_recorded():
  task = get_task("wine")
  pairs = _pairs(task, np.random.default_rng(0))
  ext, base, supp = pairs_lib.training_pool(task, pairs)
  n = task.pool_size
  offset = n
  for p in range(len(pairs)):
    np.testing.assert_array_equal(np.flatnonzero(base[p]), np.unique(pairs.base(p)))
    exact = pairs.pool_exact(p, task)
    idx = pairs.supp_indices[p]
    # Pool points with their own label: weight on the pool; the rest appended in order.
    assert supp[p, :n].sum() == exact.sum()
    np.testing.assert_array_equal(np.flatnonzero(supp[p, :n]), np.unique(idx[exact]))
    k = int((~exact).sum())
    rows = np.flatnonzero(supp[p, n:]) + n
    np.testing.assert_array_equal(rows, np.arange(offset, offset + len(rows)))
    x_u, y_u, counts = pairs_lib.pool.dedup(pairs.supp_x[p][~exact], pairs.supp_y[p][~exact])
    np.testing.assert_array_equal(ext.x[rows], x_u)
    np.testing.assert_array_equal(ext.y[rows], y_u)
    np.testing.assert_array_equal(supp[p, rows], counts)
    assert counts.sum() == k  # duplicates merge into counts, none is lost
    offset += len(rows)
  assert ext.pool_size == offset
  assert (ext.groups[n:] == -1).all()


def test_union_pool_pads_with_weightless_rows():
  task = get_task("wine")
  pairs = _pairs(task, np.random.default_rng(1))
  sub, players, weights = pairs_lib.union_pool(task, pairs, 2, size=80)
  n_b, n_s = len(pairs.base(2)), len(pairs.supp_y[2])
  np.testing.assert_array_equal(sub.x[:n_b], task.x[pairs.base(2)])
  np.testing.assert_array_equal(sub.y[n_b : n_b + n_s], pairs.supp_y[2])
  assert (players[n_b : n_b + n_s] == np.arange(n_s)).all() and (players[:n_b] == -1).all()
  assert weights.sum() == n_b + n_s and sub.pool_size == 80
  with pytest.raises(pairs_lib.PairsError):
    pairs_lib.union_pool(task, pairs, 2, size=n_b)


def test_pairs_from_lists_merges_identical_bases_and_checks_lengths():
  task = get_task("wine")
  pairs = _pairs(task, np.random.default_rng(2))
  again = pairs_lib.as_pairs(
    type(
      "L",
      (),
      {
        f: getattr(pairs, f)
        for f in ("base_indices", "supp_indices", "supp_x", "supp_y", "kind", "recipe")
      },
    )()
  )
  assert len(again.bases) == 2 and list(again.base_of) == [0, 0, 1, 1]
  with pytest.raises(pairs_lib.PairsError):
    pairs_lib.Pairs(
      [np.arange(3)], [0, 0], [np.arange(2)], [np.zeros((2, 1))], [np.zeros(2)], ["a"], [{}]
    )


def test_kinds_registry_is_the_one_source():
  """Every kinds list in configs and code is the registry's; no module defines its own."""
  from metaval import config_defaults

  assert config_defaults.CLASSIFICATION_KINDS == samplers.CLASSIFICATION_KINDS
  cls = [k for k, v in samplers.SUPPLEMENT_KINDS.items() if "classification" in v.task_kinds]
  assert set(samplers.CLASSIFICATION_KINDS) == set(cls)
  assert samplers.LANGUAGE_MODEL_KINDS[0] == "groups"
  from metaval.configlib import load

  for name in ("labels", "labels:code", "untrain", "ablation"):
    cfg = load(name)
    kinds = list(cfg.kinds) if "kinds" in cfg else list(cfg.pairs.kinds) if "pairs" in cfg else []
    for fam in cfg.get("families", {}).values():
      kinds += list(fam.pipeline.get("kinds", ()))
    assert set(kinds) <= set(samplers.SUPPLEMENT_KINDS), (name, kinds)
  # Any other tuple of kinds in the package is a choice among registered kinds.
  for path in glob.glob(os.path.join(REPO, "metaval", "**", "*.py"), recursive=True):
    for node in ast.walk(ast.parse(open(path).read())):
      if isinstance(node, ast.Assign) and isinstance(node.value, ast.Tuple):
        names = [t.id for t in node.targets if isinstance(t, ast.Name)]
        if any(n.endswith("_KINDS") for n in names):
          values = [ast.literal_eval(e) for e in node.value.elts]
          unknown = set(values) - set(samplers.SUPPLEMENT_KINDS)
          assert not unknown, f"{path}: {names} holds unregistered kinds {unknown}"


def test_dedup_merges_equal_rows_in_first_appearance_order():
  """Rows equal by value (-0.0 == 0.0, float32 inputs compared exactly) and label merge
  into their first appearance, with their count; different labels stay apart."""
  x = np.array(
    [[1.0, 0.0], [2.0, 1.0], [1.0, -0.0], [1.0, 0.0], [2.0, 1.0], [3.0, 3.0]], np.float32
  )
  y = np.array([0, 1, 0, 1, 1, 2])
  ux, uy, counts = pool_lib.dedup(x, y)
  np.testing.assert_array_equal(ux, x[[0, 1, 3, 5]])
  np.testing.assert_array_equal(uy, [0, 1, 1, 2])
  np.testing.assert_array_equal(counts, [2.0, 2.0, 1.0, 1.0])
  assert counts.dtype == np.float32
  # One ulp apart is a different point; an empty S stays empty.
  close = np.nextafter(np.float32(1.0), np.float32(2.0))
  assert len(pool_lib.dedup(np.array([[1.0], [close]], np.float32), np.zeros(2, int))[2]) == 2
  assert len(pool_lib.dedup(np.zeros((0, 2), np.float32), np.zeros(0, int))[2]) == 0


def test_host_key_derivation_is_jaxs_bit_for_bit():
  # Keys are derived in NumPy (no compiled programs in a fresh worker); they must be
  # exactly what jax.random derives, or labels would change with the code path.
  from metaval.pairs import keys as keys_lib

  rng = np.random.default_rng(0)
  for _ in range(20):
    seed, task = int(rng.integers(0, 2**31)), int(rng.integers(0, 2**32))
    shard, li = int(rng.integers(0, 10_000)), int(rng.integers(0, 8))
    ref = jax.random.fold_in(jax.random.fold_in(jax.random.key(seed), task), shard)
    ref = np.asarray(jax.random.key_data(jax.random.fold_in(ref, li)))
    np.testing.assert_array_equal(pairs_lib.shard_key(seed, task, shard, li), ref)
  for key in (jax.random.key(0), jax.random.key(12345), pairs_lib.shard_key(3, 7, 1, 0)):
    typed = key if not isinstance(key, np.ndarray) else jax.random.wrap_key_data(key)
    ref = np.array(
      [
        [jax.random.key_data(jax.random.fold_in(jax.random.fold_in(typed, b), k)) for k in range(3)]
        for b in range(4)
      ]
    )
    np.testing.assert_array_equal(keys_lib.pair_keys(key, 4, 3), ref)
  for seed, n in ((0, 1), (9, 5), (2**31 - 1, 64)):
    ref = np.asarray(jax.random.key_data(jax.random.split(jax.random.key(seed), n)))
    np.testing.assert_array_equal(keys_lib.split_keys(seed, n), ref)
