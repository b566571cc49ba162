"""Tasks from user data (csv:, npz:, tfds:, from_arrays) and the loaders' bad-input errors."""

import csv
import re
import sys

import ml_collections
import numpy as np
import pytest
from sklearn.datasets import load_digits, load_wine

from metaval.data import (
  from_arrays,
  get_task,
  list_tasks,
  read_csv,
  task_from_config,
  task_prefixes,
  tasks,
)
from metaval.errors import MetavalError


def _one_line_error(fn, *args, match=None, **kwargs):
  """Asserts ``fn`` raises a ``MetavalError`` with a one-line message; returns it."""
  with pytest.raises(MetavalError) as info:
    fn(*args, **kwargs)
  msg = str(info.value)
  assert msg and "\n" not in msg, msg
  if match:
    assert re.search(match, msg), msg
  return msg


def _matches(internal, encoded, atol=1e-5):
  """Whether every internal row is (to float tolerance) one of the encoded raw rows."""
  d = ((internal[:, None, :] - encoded[None, :, :]) ** 2).sum(-1)
  return bool((d.min(1) <= atol).all())


def _assert_stratified(task, y_all_ids, test_share):
  ids, counts = np.unique(y_all_ids, return_counts=True)
  _, y_te = task.evals["test"]
  for c, n in zip(ids, counts, strict=True):
    # Stratification puts each class's share of the held-out rows within one row.
    assert abs((y_te == c).sum() - n * test_share) <= 1.0
    assert (task.y == c).sum() + (y_te == c).sum() == n


def _write_csv(path, header, rows):
  with open(path, "w", newline="") as fh:
    w = csv.writer(fh)
    w.writerow(header)
    w.writerows(rows)
  return str(path)


@pytest.fixture(autouse=True)
def _fresh_cache():
  tasks._cached_task.cache_clear()
  yield
  tasks._cached_task.cache_clear()


# ----------------------------------------------------------------------------
# Built-ins carry their transform.


@pytest.mark.parametrize("seed", [0, 3])
def test_digits_encode_of_raw_pixels_is_the_internal_space(seed):
  t = get_task("digits", seed=seed)
  raw = load_digits().data  # pixels 0..16
  enc = t.encode(raw)
  assert enc.dtype == np.float32 and enc.shape == raw.shape
  assert _matches(t.x, enc) and _matches(t.evals["test"][0], enc)
  back = t.decode(t.x)
  assert back.shape == t.x.shape and back.min() >= -1e-4 and back.max() <= 16 + 1e-4
  np.testing.assert_allclose(back, np.round(back), atol=1e-4)
  assert t.classes == tuple(range(10))
  np.testing.assert_array_equal(t.encode_labels([9, 0]), [9, 0])


def test_code_task_transform_checks_token_windows():
  t = get_task("code")
  np.testing.assert_array_equal(t.encode(t.x[:3]), t.x[:3])
  _one_line_error(t.encode, t.x[:3, :10], match="raw inputs are")


def test_list_tasks_keeps_builtins_and_documents_prefixes():
  assert {"digits", "breast_cancer", "wine", "synthetic", "code"} <= set(list_tasks())
  assert set(task_prefixes()) == {"csv", "npz", "tfds"}
  assert all(p in list_tasks.__doc__ for p in ("csv:", "npz:", "tfds:"))
  _one_line_error(get_task, "mnist", match="csv:.*npz:.*tfds:")
  _one_line_error(get_task, "csv:", match="names no source")


# ----------------------------------------------------------------------------
# Round trips: csv, npz, arrays.


@pytest.mark.parametrize("string_labels", [False, True])
def test_csv_round_trip_of_wine(tmp_path, string_labels):
  d = load_wine()
  names = [f"f{j}" for j in range(d.data.shape[1])]
  labels = d.target_names[d.target] if string_labels else d.target
  path = _write_csv(
    tmp_path / "wine.csv", [*names, "label"], [[*r, c] for r, c in zip(d.data, labels)]
  )
  t = get_task(f"csv:{path}")
  assert t.name == f"csv:{path}" and t.kind == "classification"
  n_test = int(np.ceil(0.25 * len(d.target)))
  assert t.pool_size == len(d.target) - n_test and len(t.evals["test"][1]) == n_test
  _assert_stratified(t, d.target, n_test / len(d.target))
  np.testing.assert_allclose(t.x.mean(0), 0, atol=1e-4)
  assert _matches(t.x, t.encode(d.data)) and _matches(t.evals["test"][0], t.encode(d.data))
  want = tuple(sorted(d.target_names)) if string_labels else (0, 1, 2)
  assert t.classes == want and t.num_classes == 3
  np.testing.assert_array_equal(t.encode_labels(labels[:5]), np.searchsorted(want, labels[:5]))
  np.testing.assert_allclose(t.decode(t.x[:4]), t.decode(t.encode(t.decode(t.x[:4]))), rtol=1e-5)


def test_csv_options_label_column_test_size_and_seed(tmp_path):
  d = load_wine()
  header = ["alcohol", "target", *[f"f{j}" for j in range(1, 13)]]
  rows = [[r[0], c, *r[1:]] for r, c in zip(d.data, d.target)]
  path = _write_csv(tmp_path / "w.csv", header, rows)
  _one_line_error(get_task, f"csv:{path}", match="no label column 'label'.*target")
  a = get_task(f"csv:{path}", label="target", test_size=30)
  b = get_task(f"csv:{path}", seed=1, label="target", test_size=30)
  assert len(a.evals["test"][1]) == 30 and a.pool_size == 148
  assert not np.array_equal(a.x, b.x)
  assert dict(a.options) == {"label": "target", "test_size": 30}
  # Features are the columns in file order, without the label column.
  assert _matches(a.x, a.encode(d.data))
  assert a.transform.feature_names == tuple(h for h in header if h != "target")
  # A supplement CSV with the columns in another order is read by name.
  shuffled = _write_csv(tmp_path / "s.csv", header[::-1], [r[::-1] for r in rows[:7]])
  xs, ys, names = read_csv(shuffled, label="target", columns=a.transform.feature_names)
  assert names == a.transform.feature_names
  np.testing.assert_allclose(a.encode(xs), a.encode(d.data[:7]))
  np.testing.assert_array_equal(a.encode_labels(ys), d.target[:7])
  _one_line_error(read_csv, shuffled, label="target", columns=["alcohol", "ph"], match="'?ph")


def test_task_config_fields_become_options(tmp_path):
  d = load_wine()
  path = _write_csv(
    tmp_path / "w.csv", ["a", *map(str, range(12)), "target"], np.c_[d.data, d.target]
  )
  cfg = ml_collections.ConfigDict(
    {"name": f"csv:{path}", "seed": 2, "label": None, "test_size": None, "kwargs": {}}
  )
  _one_line_error(task_from_config, cfg, match="no label column 'label'")
  cfg.label, cfg.test_size = "target", 40
  t = task_from_config(cfg)
  assert t.seed == 2 and len(t.evals["test"][1]) == 40 and t.num_classes == 3
  digits = task_from_config({"name": "digits", "seed": 0, "label": None, "kwargs": {}})
  assert digits is get_task("digits")


def test_file_tasks_are_reloaded_when_the_file_changes(tmp_path):
  path = tmp_path / "a.npz"
  x = np.random.default_rng(0).normal(size=(40, 3))
  np.savez(path, x=x, y=np.arange(40) % 2)
  first = get_task(f"npz:{path}")
  np.savez(path, x=x + 100.0, y=np.arange(40) % 2)
  second = get_task(f"npz:{path}")
  assert abs(second.transform.mean.mean() - first.transform.mean.mean()) > 50


def test_npz_round_trip_with_and_without_a_test_set(tmp_path):
  d = load_wine()
  held = np.arange(len(d.target)) % 5 == 0
  with_test = tmp_path / "t.npz"
  np.savez(
    with_test, x=d.data[~held], y=d.target[~held], x_test=d.data[held], y_test=d.target[held]
  )
  t = get_task(f"npz:{with_test}")
  np.testing.assert_allclose(t.x, t.encode(d.data[~held]), atol=1e-6)
  np.testing.assert_allclose(t.evals["test"][0], t.encode(d.data[held]), atol=1e-6)
  np.testing.assert_array_equal(t.evals["test"][1], d.target[held])
  np.testing.assert_allclose(t.transform.mean, d.data[~held].mean(0))
  plain = tmp_path / "p.npz"
  np.savez(plain, x=d.data, y=d.target.astype(np.float64))  # integral floats are labels
  p = get_task(f"npz:{plain}", test_size=0.2)
  n_test = int(np.ceil(0.2 * len(d.target)))
  assert len(p.evals["test"][1]) == n_test
  _assert_stratified(p, d.target, n_test / len(d.target))
  assert _matches(p.x, p.encode(d.data))


def test_from_arrays_round_trip_images_downsampled_and_string_labels():
  rng = np.random.default_rng(0)
  x = rng.uniform(0, 255, size=(120, 8, 8, 1))
  y = np.array(["cat", "dog", "eel"])[np.arange(120) % 3]
  t = from_arrays(x, y, name="pets", downsample=2)
  assert t.name == "pets" and t.feature_dim == 16 and t.classes == ("cat", "dog", "eel")
  assert t.group_names == ("cat", "dog", "eel") and t.transform.input_shape == (8, 8, 1)
  assert _matches(t.x, t.encode(x))
  pooled = x.reshape(120, 4, 2, 4, 2, 1).mean(axis=(2, 4)).reshape(120, 16)
  np.testing.assert_allclose(t.transform.decode(t.encode(x)), pooled, rtol=1e-5, atol=1e-3)
  _assert_stratified(t, np.arange(120) % 3, 30 / 120)
  # A flat raw vector of the right length is accepted too.
  np.testing.assert_array_equal(t.encode(x[:2].reshape(2, -1)), t.encode(x[:2]))


def test_constant_columns_are_kept_but_not_divided():
  rng = np.random.default_rng(1)
  x = np.c_[rng.normal(size=(60, 2)), np.full(60, 7.0)]
  t = from_arrays(x, np.arange(60) % 2)
  assert t.transform.scale[2] == 1.0 and np.all(t.x[:, 2] == 0)
  np.testing.assert_allclose(t.encode([[0.0, 0.0, 9.0]])[0, 2], 2.0)
  _one_line_error(from_arrays, np.ones((60, 3)), np.arange(60) % 2, match="all 3 .* constant")


# ----------------------------------------------------------------------------
# TFDS through tfds.data_source and tfds.testing.mock_data (offline, no TensorFlow).


def test_tfds_mock_dataset_loads_as_a_task_without_tensorflow():
  tfds = pytest.importorskip("tensorflow_datasets")
  with tfds.testing.mock_data(num_examples=200):
    t = get_task("tfds:mnist", downsample=4)
    assert t.transform.input_shape == (28, 28, 1) and t.feature_dim == 49
    assert t.pool_size == 200 and len(t.evals["test"][1]) == 200
    assert t.group_names[0] == "0"
    raw = np.stack([tfds.data_source("mnist", split="train")[i]["image"] for i in range(200)])
    np.testing.assert_allclose(t.encode(raw), t.x, atol=1e-5)
    held = get_task("tfds:mnist", test_split=None, test_size=50, max_examples=150)
    assert held.pool_size == 100 and len(held.evals["test"][1]) == 50
    _one_line_error(get_task, "tfds:mnist", feature="pixels", match="no feature 'pixels'")
    _one_line_error(get_task, "tfds:mnist", label="digit", match="no label feature 'digit'")
  assert "tensorflow" not in sys.modules


def test_tfds_unknown_or_unprepared_datasets_are_one_line():
  pytest.importorskip("tensorflow_datasets")
  _one_line_error(get_task, "tfds:no_such_dataset_xyz", match="unknown TFDS dataset")
  _one_line_error(
    get_task, "tfds:mnist", data_dir="/nonexistent", download=False, match="cannot open TFDS"
  )


# ----------------------------------------------------------------------------
# Fuzz: malformed inputs each give a one-line MetavalError.

_X = np.random.default_rng(0).normal(size=(40, 3))
_Y = np.arange(40) % 2
_BAD_ARRAYS = {
  "x 1-D": (np.arange(40.0), _Y, {}),
  "x scalar": (3.0, _Y, {}),
  "x empty": (np.zeros((0, 3)), np.zeros(0), {}),
  "x no features": (np.zeros((40, 0)), _Y, {}),
  "x strings": (np.full((40, 3), "a"), _Y, {}),
  "x complex": (_X + 1j, _Y, {}),
  "x objects": (np.array([[object()] * 3] * 40), _Y, {}),
  "x ragged": ([[1.0, 2.0], [3.0]] * 20, _Y, {}),
  "x NaN": (np.where(np.eye(40, 3) > 0, np.nan, _X), _Y, {}),
  "x inf": (np.where(np.eye(40, 3) > 0, -np.inf, _X), _Y, {}),
  "y 2-D": (_X, np.c_[_Y, _Y], {}),
  "y fractional": (_X, _Y + 0.5, {}),
  "y NaN": (_X, np.where(_Y == 0, np.nan, 1.0), {}),
  "y huge": (_X, _Y * 1e300, {}),
  "y complex": (_X, _Y + 1j, {}),
  "y None": (_X, np.array([None] * 40), {}),
  "y empty": (_X, np.zeros(0), {}),
  "single class": (_X, np.zeros(40), {}),
  "length mismatch": (_X, _Y[:39], {}),
  "class with one row": (_X, np.r_[np.zeros(39), 1], {}),
  "every row its class": (_X, np.arange(40), {}),
  "too few rows": (_X[:3], _Y[:3], {}),
  "test_size zero": (_X, _Y, {"test_size": 0}),
  "test_size all": (_X, _Y, {"test_size": 40}),
  "test_size share > 1": (_X, _Y, {"test_size": 1.5}),
  "test_size text": (_X, _Y, {"test_size": "half"}),
  "test_size below classes": (_X, _Y, {"test_size": 1}),
  "downsample tabular": (_X, _Y, {"downsample": 2}),
  "downsample zero": (np.ones((40, 4, 4)) * _Y[:, None, None], _Y, {"downsample": 0}),
  "x_test alone": (_X, _Y, {"x_test": _X}),
  "x_test width": (_X, _Y, {"x_test": _X[:, :2], "y_test": _Y}),
  "x_test rows": (_X, _Y, {"x_test": _X[:5], "y_test": _Y[:6]}),
  "y_test unseen class": (_X, _Y, {"x_test": _X[:4], "y_test": [0, 1, 2, 7]}),
  "y_test strings vs ints": (_X, _Y, {"x_test": _X[:2], "y_test": ["a", "b"]}),
  "x_test NaN": (_X, _Y, {"x_test": np.full((2, 3), np.nan), "y_test": [0, 1]}),
}


@pytest.mark.parametrize("case", sorted(_BAD_ARRAYS))
def test_from_arrays_rejects_malformed_input_in_one_line(case):
  x, y, kw = _BAD_ARRAYS[case]
  _one_line_error(from_arrays, x, y, **kw)


@pytest.mark.parametrize("unit", [1e-300, 1e-9, 1e9, 1e307])
def test_inputs_in_any_unit_are_standardised_alike(unit):
  """Standardising does not depend on the inputs' unit: columns in tiny units are not
  taken for constant, huge ones do not overflow; a constant column stays unscaled."""
  x = np.c_[_X, np.full(len(_X), 3.0)]
  ref = from_arrays(x, _Y, seed=0)
  task = from_arrays(np.c_[_X * unit, np.full(len(_X), 3.0 * unit)], _Y, seed=0)
  np.testing.assert_allclose(task.x, ref.x, rtol=1e-6, atol=1e-9)
  assert task.transform.scale[-1] == 1.0 and np.all(task.transform.scale[:-1] != 1.0)


def test_singleton_classes_are_named_with_what_to_do():
  y = np.r_[np.zeros(38, int), 5, 7]
  _one_line_error(from_arrays, _X, y, match=r"class 5 has only 1 row \(2 classes do\).*x_test")
  names = np.r_[["a"] * 39, ["rare"]]
  _one_line_error(from_arrays, _X, names, match=r"class 'rare' has only 1 row;")


@pytest.mark.parametrize("seed", range(4))
def test_random_garbage_either_loads_or_is_a_one_line_error(seed):
  rng = np.random.default_rng(seed)
  makers = [
    lambda s: rng.normal(size=s),
    lambda s: rng.integers(-3, 3, size=s),
    lambda s: np.where(rng.random(s) < 0.01, np.nan, rng.normal(size=s)),
    lambda s: rng.normal(size=s) * 10.0 ** rng.integers(-300, 300),
    lambda s: rng.choice(np.array(["a", "b", "1.5"]), size=s),
    lambda s: np.zeros(s, bool),
  ]
  for _ in range(40):
    n = int(rng.integers(0, 30))
    xs = (n, *rng.integers(0, 4, size=rng.integers(0, 3)))
    x = makers[rng.integers(len(makers))](xs)
    y = makers[rng.integers(len(makers))]((int(rng.integers(max(n - 1, 0), n + 2)),))
    try:
      t = from_arrays(x, y, test_size=float(rng.choice([0.3, 0.5])))
    except MetavalError as e:
      assert "\n" not in str(e)
    else:
      assert np.isfinite(t.x).all() and t.num_classes >= 2


def test_encode_rejects_queries_that_do_not_fit_the_task():
  t = from_arrays(_X, _Y)
  _one_line_error(t.encode, np.zeros((5, 4)), match=r"raw inputs are \[n, 3\]")
  _one_line_error(t.encode, np.full((2, 3), np.inf), match="non-finite")
  _one_line_error(t.encode, np.full((2, 3), 1e300), match="too large")
  _one_line_error(t.encode, [["a", "b", "c"]], match="numeric")
  _one_line_error(t.encode_labels, [0, 5], match="not among the pool's classes: 5")


def _csv_cases(tmp_path):
  ok = [[1.0, 2.0, 0], [2.0, 1.0, 1]] * 10
  return {
    "missing": (str(tmp_path / "nope.csv"), {}, "not found"),
    "directory": (str(tmp_path), {}, "not a file"),
    "empty": ("", {}, "empty"),
    "header only": ("a,b,label\n", {}, "no data rows"),
    "blank lines": ("\n\n \n", {}, "no rows"),
    "no label column": (_rows(["a", "b", "c"], ok), {}, "no label column 'label'"),
    "no features": ("label\n0\n1\n", {}, "no feature columns"),
    # Text columns and missing cells are encoded (tests/test_table.py); a column of
    # numbers with a stray word in it is refused.
    "numbers and text": (
      _rows(["a", "colour", "label"], [["1", "red", 0], ["2", "3", 1], ["3", "4", 0]] * 3),
      {},
      "'colour' holds numbers and some text.*'red'",
    ),
    "inf cell": (_rows(["a", "b", "label"], [[1, "-inf", 0], [2, 3, 1]] * 5), {}, "'b' has '-inf'"),
    "ragged row": ("a,b,label\n1,2,0\n1,0\n", {}, "data row 2 has 2 fields"),
    "repeated column": (_rows(["a", "a", "label"], ok), {}, "repeats column name"),
    "empty label": (_rows(["a", "b", "label"], [[1, 2, ""], [2, 3, 1]]), {}, "label column"),
    "fractional label": (
      _rows(["a", "b", "label"], [[1, 2, 0.5], [2, 3, 1]] * 5),
      {},
      "non-integral",
    ),
    "single class": (_rows(["a", "b", "label"], [[1, 2, 0], [2, 3, 0]] * 5), {}, "single class"),
    "bad delimiter": (_rows(["a", "b", "label"], ok), {"delimiter": ";;"}, "cannot parse"),
    "binary": (b"\xff\xfe\x00garbage\x81", {}, "not text|UTF-16"),
    "binary, no mark": (b"a,b,label\n\x00\x01\x02", {}, "not text"),
    "unknown option": (_rows(["a", "b", "label"], ok), {"colour": 1}, "bad options"),
  }


def _rows(header, rows):
  return ",".join(header) + "\n" + "".join(",".join(str(c) for c in r) + "\n" for r in rows)


def test_csv_loader_rejects_malformed_files_in_one_line(tmp_path):
  for case, (content, kw, match) in _csv_cases(tmp_path).items():
    if isinstance(content, str) and content and "\n" not in content:
      path = content
    else:
      path = tmp_path / f"{case.replace(' ', '_')}.csv"
      (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    msg = _one_line_error(get_task, f"csv:{path}", **kw)
    assert re.search(match, msg), (case, msg)


def test_npz_loader_rejects_damaged_and_malformed_files_in_one_line(tmp_path):
  good = tmp_path / "good.npz"
  np.savez_compressed(good, x=_X, y=_Y)
  blob = good.read_bytes()
  cases = {
    "truncated": blob[: len(blob) // 2],
    "garbled": blob[:40] + bytes(b ^ 0xFF for b in blob[40:200]) + blob[200:],
    "random bytes": np.random.default_rng(0).bytes(300),
    "empty": b"",
  }
  for case, data in cases.items():
    path = tmp_path / f"{case.replace(' ', '_')}.npz"
    path.write_bytes(data)
    _one_line_error(get_task, f"npz:{path}", match="damaged|empty|not npz")
  no_y = tmp_path / "no_y.npz"
  np.savez(no_y, x=_X, labels=_Y)
  _one_line_error(
    get_task, f"npz:{no_y}", match="lacks array.*y.*holds: labels, x|holds: x, labels"
  )
  pickled = tmp_path / "obj.npz"
  np.savez(pickled, x=_X, y=np.array([{"a": 1}] * 40, dtype=object))
  _one_line_error(get_task, f"npz:{pickled}", match="damaged or not npz")
  single = tmp_path / "one.npy"
  np.save(single, _X)
  _one_line_error(get_task, f"npz:{single}", match="single .npy array")
  _one_line_error(get_task, f"npz:{tmp_path / 'missing.npz'}", match="not found")
  wrong = tmp_path / "wrong.npz"
  np.savez(wrong, x=_X, y=_Y, x_test=_X[:, :2], y_test=_Y)
  _one_line_error(get_task, f"npz:{wrong}", match="x_test has shape")
