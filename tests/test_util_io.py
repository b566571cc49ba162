"""The shared I/O helpers: atomic writes leave no torn file, fingerprints are stable."""

import json
import os

import numpy as np
import pytest

from metaval.util import io as io_lib


def test_atomic_write_replaces_whole_or_not_at_all(tmp_path):
  path = str(tmp_path / "sub" / "a.json")
  io_lib.write_json(path, {"x": np.float32(1.5), "n": np.int64(3), "bad": float("nan")})
  assert json.load(open(path)) == {"x": 1.5, "n": 3, "bad": None}
  with pytest.raises(RuntimeError), io_lib.atomic_write(path) as fh:
    fh.write("partial")
    raise RuntimeError("crash mid-write")
  # The old content survives and no temporary file is left behind.
  assert json.load(open(path))["n"] == 3
  assert os.listdir(tmp_path / "sub") == ["a.json"]


def test_save_npz_keeps_extension_and_roundtrips(tmp_path):
  path = str(tmp_path / "x.npz")
  io_lib.save_npz(path, a=np.arange(4))
  np.testing.assert_array_equal(np.load(path)["a"], np.arange(4))
  assert os.listdir(tmp_path) == ["x.npz"]


def test_fingerprint_is_order_free_and_value_sensitive():
  a = io_lib.fingerprint({"a": 1, "b": [1, 2]})
  assert a == io_lib.fingerprint({"b": (1, 2), "a": np.int64(1)})
  assert a != io_lib.fingerprint({"a": 1, "b": [1, 3]})
  assert len(a) == 16


def test_markdown_table_formats_and_escapes():
  md = io_lib.markdown_table(
    [{"name": "a|b", "v": 0.12345, "n": 12000}, {"name": "c", "v": float("nan")}]
  )
  lines = md.splitlines()
  assert lines[0] == "| name | v | n |"
  assert lines[2] == "| a\\|b | 0.123 | 12,000 |"
  assert lines[3] == "| c | – | – |"
  assert io_lib.markdown_table([]) == "(no rows)"


def test_row_keys_equal_exactly_when_values_and_labels_are_equal():
  from metaval.util import rowkeys

  x = np.array([[0.0, 1.5], [-0.0, 1.5], [0.0, 1.5 + 1e-12], [0.0, 1.5]])
  y = np.array([3, 3, 3, 4])
  keys = rowkeys.key_list(rowkeys.row_keys(x, y))
  assert keys[0] == keys[1]  # -0.0 is 0.0
  assert keys[0] != keys[2]  # one ulp-sized change in float64 is another point
  assert keys[0] != keys[3]  # another label
  # In float32 the 1e-12 change vanishes; inputs alone ignore the label.
  k32 = rowkeys.key_list(rowkeys.input_keys(x, np.float32))
  assert k32[0] == k32[1] == k32[2] == k32[3]


def test_zero_shot_drops_copies_of_base_points_written_with_negative_zero():
  from metaval.zeroshot import features as Z

  rng = np.random.default_rng(0)
  xb = rng.normal(size=(40, 3))
  xb[:5, 0] = 0.0
  yb = np.arange(40) % 2
  ctx = Z.Context((xb, yb), (rng.normal(size=(20, 3)), np.arange(20) % 2))
  xs = np.r_[xb[:5] * -1.0 * np.array([1.0, -1.0, -1.0]), rng.normal(size=(3, 3))]  # -0.0 copies
  (kept_x, _), copies = ctx.new_points((xs, np.r_[yb[:5], [0, 1, 0]]))
  assert copies == 5 and len(kept_x) == 3


def test_nearest_equals_a_stable_sort_ties_and_infinities_included():
  from metaval.util.nearest import PASSES, nearest

  rng = np.random.default_rng(0)
  for _ in range(300):
    n, m = rng.integers(1, 25, 2)
    k = int(rng.integers(1, PASSES + 6))
    d = rng.integers(0, 5, (n, m)).astype(np.float64)  # many exact ties
    d[rng.random((n, m)) < 0.25] = np.inf  # rows with fewer than k finite entries
    idx, val = nearest(d, k)
    ref = np.argsort(d, axis=1, kind="stable")[:, : min(k, m)]
    np.testing.assert_array_equal(idx, ref)
    np.testing.assert_array_equal(val, np.take_along_axis(d, ref, 1))
    # Searching in the caller's array gives the same and leaves it as it was.
    work = d.copy()
    idx_s, val_s = nearest(work, k, scratch=True)
    np.testing.assert_array_equal(idx_s, ref)
    np.testing.assert_array_equal(val_s, val)
    np.testing.assert_array_equal(work, d)
  assert nearest(np.zeros((3, 0)), 5)[0].shape == (3, 0)
