"""Supplement samplers: every kind, its recipe, determinism and the registry."""

import json

import numpy as np
import pytest

from metaval.data import get_task, samplers
from metaval.errors import MetavalError


@pytest.fixture(scope="module")
def digits():
  return get_task("digits")


@pytest.fixture(scope="module")
def code():
  return get_task("code")


def _base(task, n=150, seed=0):
  return samplers.sample_base(task, np.random.default_rng(seed), n)


@pytest.mark.parametrize(
  "kind",
  [k for k, v in samplers.SUPPLEMENT_KINDS.items() if "classification" in v.task_kinds],
)
def test_every_classification_kind_is_valid_and_deterministic(digits, kind):
  base = _base(digits)
  a = samplers.sample_supplement(kind, digits, base, np.random.default_rng(7), size=60)
  b = samplers.sample_supplement(kind, digits, base, np.random.default_rng(7), size=60)
  assert a.kind == kind and 1 <= len(a) <= 60
  assert a.x.shape == (len(a), digits.feature_dim) and a.x.dtype == np.float32
  assert a.y.dtype == np.int32 and a.y.min() >= 0 and a.y.max() < digits.num_classes
  assert np.all(np.isfinite(a.x))
  json.dumps(a.recipe)  # recipes are JSON
  assert a.recipe["size"] == len(a)
  np.testing.assert_array_equal(a.x, b.x)
  np.testing.assert_array_equal(a.pool_indices, b.pool_indices)
  assert a.recipe == b.recipe
  # Where S claims a pool point, its input is exactly that point.
  inpool = a.pool_indices >= 0
  np.testing.assert_array_equal(a.x[inpool], digits.x[a.pool_indices[inpool]])


@pytest.mark.parametrize(
  "kind",
  [k for k, v in samplers.SUPPLEMENT_KINDS.items() if "classification" in v.task_kinds],
)
def test_a_base_holding_the_whole_pool_gives_a_set_or_a_sampler_error(digits, kind):
  # Small tasks can have B = the whole pool: every kind must then draw a valid set
  # (from B, or synthetic) or refuse with SamplerError, never fail inside numpy.
  base = np.arange(digits.pool_size)
  try:
    s = samplers.sample_supplement(kind, digits, base, np.random.default_rng(3), size=20)
  except samplers.SamplerError as e:
    assert "\n" not in str(e)
  else:
    assert len(s) >= 1 and np.all(np.isfinite(s.x))


def test_clean_is_disjoint_from_base_and_balanced(digits):
  base = _base(digits, 300)
  s = samplers.sample_supplement(
    "clean", digits, base, np.random.default_rng(1), size=200, class_mix="balanced"
  )
  assert not set(s.pool_indices) & set(base)
  assert s.pool_exact(digits).all()
  counts = np.bincount(s.y, minlength=10)
  assert counts.min() >= 18 and counts.max() <= 22, counts
  skew = samplers.sample_supplement(
    "clean", digits, base, np.random.default_rng(1), size=200, class_mix="skewed", alpha=0.1
  )
  assert np.bincount(skew.y, minlength=10).max() >= 60  # a Dirichlet(0.1) mix is lopsided
  assert len(skew.recipe["class_weights"]) == 10


def test_label_noise_flips_exactly_the_rate(digits):
  base = _base(digits)
  full = samplers.sample_supplement(
    "label_noise", digits, base, np.random.default_rng(2), size=100, rate=1.0
  )
  assert np.all(full.y != digits.y[full.pool_indices])
  assert not full.pool_exact(digits).any()
  half = samplers.sample_supplement(
    "label_noise", digits, base, np.random.default_rng(2), size=100, rate=0.3
  )
  assert np.sum(half.y != digits.y[half.pool_indices]) == 30 == half.recipe["flipped"]


def test_duplicates_and_near_duplicates_come_from_base(digits):
  base = _base(digits, 50)
  dup = samplers.sample_supplement("duplicates", digits, base, np.random.default_rng(3), size=80)
  assert set(dup.pool_indices) <= set(base)  # with replacement: S (80) > B (50)
  near = samplers.sample_supplement(
    "near_duplicates", digits, base, np.random.default_rng(3), size=40, sigma=0.1
  )
  assert np.all(near.pool_indices == -1)
  dist = np.min(((near.x[:, None] - digits.x[base][None]) ** 2).sum(-1), axis=1) ** 0.5
  assert np.all(dist < 0.1 * 8 * 2)  # ||N(0, 0.1² I_64)|| ≈ 0.8


def test_junk_kinds(digits):
  base = _base(digits)
  const = samplers.sample_supplement(
    "constant", digits, base, np.random.default_rng(4), size=30, jitter=0.0, label_mode="single"
  )
  assert np.all(const.x == const.x[0]) and len(set(const.y)) == 1
  bits = samplers.sample_supplement(
    "random_bits", digits, base, np.random.default_rng(4), size=30, mode="bits"
  )
  lo, hi = digits.x.min(0), digits.x.max(0)
  assert np.all((bits.x == lo) | (bits.x == hi))
  one = samplers.sample_supplement(
    "single_class", digits, base, np.random.default_rng(4), size=30, cls=3
  )
  assert np.all(one.y == 3)


def test_out_of_domain_rotation_and_other_task(digits):
  base = _base(digits)
  rot = samplers.sample_supplement(
    "out_of_domain", digits, base, np.random.default_rng(5), size=20, mode="rotate180"
  )
  src = np.flatnonzero(
    np.ones(digits.pool_size, bool) & ~np.isin(np.arange(digits.pool_size), base)
  )
  # Rotating twice by 180 degrees gives back pool images outside B.
  back = np.rot90(rot.x.reshape(-1, 8, 8), 2, axes=(1, 2)).reshape(-1, 64)
  hits = (back[:, None] == digits.x[src][None]).all(-1).any(-1)
  assert hits.all()
  other = samplers.sample_supplement(
    "out_of_domain", digits, base, np.random.default_rng(5), size=20, mode="other_task",
    source="wine",
  )  # fmt: skip
  assert other.x.shape == (20, 64) and other.recipe["source"] == "wine"
  with pytest.raises(MetavalError, match="not available"):
    samplers.sample_supplement(
      "out_of_domain", get_task("wine"), np.arange(5), np.random.default_rng(0), mode="rotate90"
    )


def test_mixture_records_its_components(digits):
  s = samplers.sample_supplement(
    "mixture", digits, _base(digits), np.random.default_rng(6), size=100, good_frac=0.3,
    junk_kind="random_bits",
  )  # fmt: skip
  comps = s.recipe["components"]
  assert [c["kind"] for c in comps] == ["clean", "random_bits"]
  assert sum(c["size"] for c in comps) == len(s) == 100
  assert np.sum(s.pool_indices >= 0) == 30


def test_errors_name_the_problem(digits):
  with pytest.raises(MetavalError, match="unknown supplement kind 'nope'"):
    samplers.sample_supplement("nope", digits, [], np.random.default_rng(0))
  with pytest.raises(MetavalError, match="does not apply"):
    samplers.sample_supplement("groups", digits, [], np.random.default_rng(0))
  with pytest.raises(MetavalError, match="rate must be in"):
    samplers.sample_supplement("label_noise", digits, [], np.random.default_rng(0), rate=2.0)
  with pytest.raises(MetavalError, match="bad parameters"):
    samplers.sample_supplement("clean", digits, [], np.random.default_rng(0), colour="red")


def test_registry_is_open_for_extension(digits):
  @samplers.register_supplement("test_first_points", description="the first n pool points")
  def _first(task, base_idx, rng, size=5):
    idx = np.arange(size)
    return task.x[idx], task.y[idx], idx, {}

  try:
    s = samplers.sample_supplement("test_first_points", digits, [], np.random.default_rng(0))
    assert len(s) == 5 and "test_first_points" in samplers.kinds_for(digits)
    with pytest.raises(MetavalError, match="already registered"):
      samplers.register_supplement("test_first_points")(_first)
  finally:
    del samplers.SUPPLEMENT_KINDS["test_first_points"]


def test_code_groups_are_new_packages(code):
  rng = np.random.default_rng(0)
  base, s = samplers.sample_pair(code, rng, "groups")
  assert s.x.dtype == np.int32 and s.x.shape[1] == code.x.shape[1]
  groups = set(s.recipe["groups"])
  assert groups and not groups & set(code.groups[base].tolist())
  assert set(code.groups[s.pool_indices].tolist()) == groups
  for kind in ("duplicates", "near_duplicates", "random_bits", "constant"):
    junk = samplers.sample_supplement(kind, code, base, rng, size=10)
    assert junk.x.shape == (10, code.x.shape[1]) and junk.x.min() >= 0
    assert junk.x.max() < code.num_classes
