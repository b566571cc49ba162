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
