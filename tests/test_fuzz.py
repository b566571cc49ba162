"""Malformed inputs get one clear line: task loaders, ``value()``, ``rank()`` and the CLI.

Every case either works or raises a ``MetavalError`` whose message is one line; no
exception from inside numpy, JAX, csv or zipfile reaches the user. The CLI answers
with a non-zero exit status and one line on stderr. Fixed catalogues name the inputs
that must be refused; seeded random mutations search around them.
"""

import csv
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from sklearn.datasets import load_wine

import metaval.api as api
from metaval import cli
from metaval.data import from_arrays, get_task, tasks
from metaval.errors import MetavalError
from metaval.predictor import toy

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _refused(fn, *args, **kwargs) -> str:
  """Asserts ``fn`` raises a one-line ``MetavalError``; returns the message."""
  with pytest.raises(MetavalError) as info:
    fn(*args, **kwargs)
  msg = str(info.value)
  assert msg and "\n" not in msg, msg
  return msg


def _works_or_refused(fn, *args, **kwargs):
  """Runs ``fn``: a result, or a one-line ``MetavalError`` (returned as the message)."""
  try:
    return fn(*args, **kwargs)
  except MetavalError as e:
    assert str(e) and "\n" not in str(e), str(e)
    return str(e)


@pytest.fixture(autouse=True)
def _fresh_cache():
  tasks._cached_task.cache_clear()
  yield
  tasks._cached_task.cache_clear()


@pytest.fixture(scope="session")
def predictor(tmp_path_factory):
  # The same folder as tests/test_api.py's: trained once per session.
  return api.load_predictor(
    toy.toy_predictor(str(tmp_path_factory.getbasetemp() / "toy_predictor"))
  )


@pytest.fixture(scope="module")
def wine_raw():
  """Raw wine rows (the toy predictor's task) and their labels."""
  d = load_wine()
  return d.data, d.target


# ----------------------------------------------------------------------------
# Task loaders.


def _mutate_arrays(rng, x, y):
  """One malformed (or borderline) variant of ``(x, y)`` and the options to load it."""
  x, y = x.copy(), y.copy()
  kind = rng.integers(13)
  i, j = rng.integers(len(x)), rng.integers(x.shape[1])
  if kind == 0:
    x[i, j] = [np.nan, np.inf, -np.inf][rng.integers(3)]
  elif kind == 1:
    x = x * 10.0 ** rng.integers(150, 309)  # huge: may overflow the standardisation
  elif kind == 2:
    x = x[: rng.integers(0, 4)]
  elif kind == 3:
    y = y[: -rng.integers(1, 5)]
  elif kind == 4:
    y = y + rng.choice([0.5, 0.25])
  elif kind == 5:
    y = np.zeros_like(y)  # a single class
  elif kind == 6:
    x = x.astype(str)
    x[i, j] = "abc"
  elif kind == 7:
    x = x[:, :0]
  elif kind == 8:
    x = x[:, 0]  # 1-D
  elif kind == 9:
    y = np.c_[y, y]
  elif kind == 10:
    y = y.astype(float)
    y[i] = np.nan
  elif kind == 11:
    x = np.zeros_like(x)  # every column constant
  else:
    y = np.array([None] * len(y), dtype=object)
  return x, y


@pytest.mark.parametrize("seed", range(40))
def test_from_arrays_on_malformed_arrays_is_one_line(seed, wine_raw):
  rng = np.random.default_rng(seed)
  x, y = _mutate_arrays(rng, *wine_raw)
  _works_or_refused(from_arrays, x, y, test_size=float(rng.choice([0.25, 0.5, 1.5, -1.0])))


def _write_rows(path, rows):
  with open(path, "w", newline="") as fh:
    csv.writer(fh).writerows(rows)
  return str(path)


CELLS = ["1", "-2.5", "", " ", "abc", "nan", "inf", "1e999", "0x10", "3,4", "1e-320", "7"]


@pytest.mark.parametrize("seed", range(30))
def test_csv_loader_on_random_cells_is_one_line(seed, tmp_path):
  rng = np.random.default_rng(seed)
  n_rows, n_cols = int(rng.integers(0, 30)), int(rng.integers(1, 5))
  header = [f"c{k}" for k in range(n_cols)] + ["label"]
  if rng.random() < 0.2:
    header[0] = "label"  # repeated column name
  rows = [header]
  for _ in range(n_rows):
    row = [str(rng.normal()) if rng.random() < 0.8 else rng.choice(CELLS) for _ in range(n_cols)]
    row.append(str(rng.integers(0, 3)) if rng.random() < 0.9 else rng.choice(CELLS))
    if rng.random() < 0.05:
      row = row[:-1]  # a short row
    rows.append(row)
  path = _write_rows(tmp_path / "data.csv", rows)
  _works_or_refused(get_task, f"csv:{path}", test_size=0.3)


def test_csv_loader_names_the_column_mixing_numbers_and_text(tmp_path):
  rows = [["a", "b", "label"]] + [["1", str(i), "0"] for i in range(5)] + [["1", "x", "1"]]
  path = _write_rows(tmp_path / "d.csv", rows)
  assert "column 'b' holds numbers and some text" in _refused(get_task, f"csv:{path}")
  binary = tmp_path / "b.csv"
  binary.write_bytes(bytes(range(256)) * 4)
  _refused(get_task, f"csv:{binary}")


@pytest.mark.parametrize("seed", range(12))
def test_npz_loader_on_damaged_files_is_one_line(seed, tmp_path, wine_raw):
  rng = np.random.default_rng(seed)
  path = tmp_path / "d.npz"
  x, y = wine_raw
  np.savez(path, x=x, y=y)
  data = bytearray(path.read_bytes())
  how = seed % 4
  if how == 0:
    data = data[: rng.integers(1, len(data))]  # truncated
  elif how == 1:
    for k in rng.integers(0, len(data), 20):
      data[k] ^= 0xFF  # flipped bytes
  elif how == 2:
    data = bytearray(rng.integers(0, 256, 500, dtype=np.uint8).tobytes())  # noise
  else:
    with zipfile.ZipFile(path, "w") as zf:  # a zip of the wrong things
      zf.writestr("x.npy", b"not an array")
    data = bytearray(path.read_bytes())
  path.write_bytes(bytes(data))
  _works_or_refused(get_task, f"npz:{path}")
  np.savez(path, x=np.array([object()] * 4, dtype=object), y=np.arange(4))
  _refused(get_task, f"npz:{path}")


# ----------------------------------------------------------------------------
# value() and rank().


def _query_cases(x, y):
  nan, inf = x.copy(), x.copy()
  nan[3, 2], inf[0, 0] = np.nan, -np.inf
  return {
    "none": None,
    "scalar": 5,
    "string": "abc",
    "pair of nones": (None, None),
    "ragged": ([[1, 2], [3]], [0, 1]),
    "too wide": (np.c_[x, x], y),
    "too narrow": (x[:, :3], y),
    "3-D": (x[:, :, None], y),
    "string inputs": (x.astype(str), y),
    "object inputs": (np.array([[None] * x.shape[1]] * 3, dtype=object), y[:3]),
    "complex inputs": (x.astype(complex), y),
    "datetime inputs": (np.zeros((3, x.shape[1]), "datetime64[s]"), y[:3]),
    "NaN": (nan, y),
    "inf": (inf, y),
    "empty": (np.zeros((0, x.shape[1])), np.zeros(0)),
    "too many points": (np.repeat(x, 600, 0), np.repeat(y, 600)),
    "short labels": (x, y[:-1]),
    "labels out of range": (x, y + 5),
    "negative labels": (x, y - 1),
    "fractional labels": (x, y + 0.5),
    "string labels": (x, y.astype(str)),
    "NaN labels": (x, np.where(np.arange(len(y)) == 1, np.nan, y)),
    "2-D labels": (x, np.c_[y, y]),
    "huge labels": (x, y * 1e30 + 1e30),
    "object labels": (x, np.array([None] * len(y), dtype=object)),
    "no labels": (x, None),
    "dict without x": {"y": y},
  }


@pytest.mark.parametrize("inputs", ["raw", "internal"])
def test_value_refuses_every_malformed_set_in_one_line(predictor, wine_raw, inputs):
  task = get_task("wine")
  x, y = wine_raw[0][:20], wine_raw[1][:20]
  if inputs == "internal":
    x = task.encode(x)
  for name, supp in _query_cases(x, y).items():
    msg = _refused(predictor.value, supp, inputs=inputs)
    assert msg, name
  _refused(predictor.value, (x, y), inputs="standardised")


def test_huge_values_are_refused_or_valued_finitely(predictor, wine_raw):
  x, y = wine_raw[0][:20].copy(), wine_raw[1][:20]
  x[0, 0] = np.finfo(np.float64).max  # finite, but beyond what standardising can hold
  assert "too large to standardise" in _refused(predictor.value, (x, y))
  for inputs, big in (("raw", wine_raw[0][:20] * 1e30), ("internal", x)):
    facts = predictor.value((big, y), inputs=inputs)  # far away, but numbers
    assert all(np.isfinite([t.value, t.low, t.high]).all() for t in facts.targets)
    if inputs == "raw":  # every point far from B
      assert any("out of domain" in w for w in facts.warnings)


def test_value_refuses_malformed_bases_learners_and_tasks(predictor, wine_raw):
  x, y = wine_raw[0][:20], wine_raw[1][:20]
  nan = x.copy()
  nan[0, 0] = np.nan
  for base in ["abc", np.array([1.5]), [], np.zeros((2, 2), int), np.array([-1]), (nan, y),
               (x[:, :3], y), (x, y + 7), np.arange(20_000) % 50, object()]:  # fmt: skip
    _refused(predictor.value, (x, y), base=base)
  for learner in [{"width": -1}, {"width": "abc"}, {"steps": 1e400}, {"lr": float("nan")},
                  {"family": None}, [1], "no such learner", {"depth": 0}]:  # fmt: skip
    _refused(predictor.value, (x, y), learner=learner)
  for task in [3, ["wine"], "digits", "csv:/nonexistent.csv"]:
    _refused(predictor.value, (x, y), task=task)


def test_rank_refuses_malformed_lists_in_one_line(predictor, wine_raw):
  x, y = wine_raw[0][:20], wine_raw[1][:20]
  for supplements in [[], None, 3, "ab", [(x, y), (x, y + 9)], [(x, y), None]]:
    _refused(predictor.rank, supplements)
  assert len(predictor.rank(iter([(x, y), (x[:5], y[:5])]))) == 2


@pytest.mark.parametrize("seed", range(25))
def test_value_on_random_mutations_works_or_is_one_line(predictor, wine_raw, seed):
  rng = np.random.default_rng(seed)
  x, y = _mutate_arrays(rng, wine_raw[0][:40], wine_raw[1][:40])
  out = _works_or_refused(predictor.value, (x, y))
  if not isinstance(out, str):
    assert all(np.isfinite([t.value, t.low, t.high]).all() for t in out.targets)


@pytest.mark.parametrize(
  ("n_s", "n_b"), [(1, 1), (2, 2), (1, 5_000), (65, 600), (3_000, 5_000), (200, 10_000)]
)
def test_every_accepted_set_size_gets_a_finite_value(predictor, wine_raw, n_s, n_b):
  # Sizes around the featuriser's caps (64 elements per set, 512 probe points) and the
  # API's limit: B of 5,000 points once died with a broadcast error.
  rng = np.random.default_rng(n_s + n_b)
  x, y = wine_raw
  spread = x.std(0)

  def draw(n):
    idx = rng.integers(0, len(x), n)
    return x[idx] + 0.05 * spread * rng.normal(size=(n, x.shape[1])), y[idx]

  facts = predictor.value(draw(n_s), base=draw(n_b))
  assert facts.supplement_size == n_s and facts.base_size == n_b
  assert all(np.isfinite([t.value, t.low, t.high]).all() for t in facts.targets)
  over = api.MAX_SET_POINTS + 1
  assert "at most" in _refused(predictor.value, draw(n_s), base=draw(over))
  assert "at most" in _refused(predictor.value, draw(over), base=draw(n_b))


# ----------------------------------------------------------------------------
# The CLI.


def _cli_refuses(capsys, *args) -> str:
  """Runs ``metaval <args>`` in-process: exit status != 0 and one line on stderr."""
  rc = cli.main(list(args))
  err = capsys.readouterr().err.strip()
  assert rc != 0, args
  assert err and len(err.splitlines()) == 1, err
  assert "Traceback" not in err
  return err


def test_cli_refuses_malformed_task_files_and_options_in_one_line(tmp_path, capsys):
  d = load_wine()
  good = _write_rows(
    tmp_path / "good.csv",
    [[*map(str, range(13)), "target"]] + [[*map(str, r), str(t)] for r, t in zip(d.data, d.target)],
  )
  words = _write_rows(
    tmp_path / "words.csv", [["a", "label"]] + [["1", "0"], ["2", "1"]] * 10 + [["x", "0"]]
  )
  garbage = tmp_path / "garbage.npz"
  garbage.write_bytes(b"PK\x03\x04 not really a zip")
  fit = ["fit", "--config", "fit:quick", "--workdir", str(tmp_path / "fit")]
  for overrides, needle in [
    ([f"--config.task.name=csv:{tmp_path}/missing.csv"], "not found"),
    ([f"--config.task.name=csv:{words}"], "numbers and some text"),
    ([f"--config.task.name=npz:{garbage}"], "npz"),
    ([f"--config.task.name=csv:{good}"], "no label column 'label'"),
    ([f"--config.task.name=csv:{good}", "--config.task.label=nope"], "nope"),
    (
      [
        f"--config.task.name=csv:{good}",
        "--config.task.label=target",
        "--config.task.test_size=abc",
      ],
      "test_size",
    ),  # fmt: skip
    (["--config.task.name=digits", "--config.task.test_size=-3"], "test_size"),
    (["--config.task.name=digits", "--config.task.label=x"], "bad options for task 'digits'"),
    (["--config.task.seed=abc"], "seed"),
    (["--config.task.name=tfds:"], "names no source"),
  ]:
    assert needle in _cli_refuses(capsys, *fit, *overrides), overrides
  # generate checks its task before starting any worker.
  gen = ["generate", "--config", "labels:tiny", "--workdir", str(tmp_path / "labels")]
  assert "numbers and some text" in _cli_refuses(capsys, *gen, f"--config.task.name=csv:{words}")


def test_cli_value_refuses_malformed_supplements_in_one_line(predictor, tmp_path, capsys):
  x, y = load_wine(return_X_y=True)
  nan = x[:10].copy()
  nan[2, 3] = np.nan
  files = {
    "nan.npz": dict(x=nan, y=y[:10]),
    "wide.npz": dict(x=np.c_[x[:10], x[:10]], y=y[:10]),
    "labels.npz": dict(x=x[:10], y=y[:10] + 7),
    "short.npz": dict(x=x[:10], y=y[:9]),
    "nox.npz": dict(y=y[:10]),
  }
  for name, arrays in files.items():
    np.savez(tmp_path / name, **arrays)
  (tmp_path / "notes.txt").write_text("hello")
  (tmp_path / "bad.csv").write_text("label,a\n0,1\n")  # no columns of the task
  value = ["value", "--config", "value:quick", f"--config.predictor={predictor.path}"]
  value += ["--workdir", str(tmp_path / "value")]
  for supp, needle in [
    ("nan.npz", "NaN"),
    ("wide.npz", "shape"),
    ("labels.npz", "not among the pool's classes"),
    ("short.npz", "labels must have shape"),
    ("nox.npz", "lacks array(s) x"),
    ("notes.txt", "must be an .npz"),
    ("bad.csv", "shape"),
    ("missing.npz", "not found"),
  ]:
    err = _cli_refuses(capsys, *value, f"--config.supplement.path={tmp_path / supp}")
    assert needle in err, (supp, err)
  assert "no trained predictor" in _cli_refuses(
    capsys, "value", "--config", "value:quick", f"--config.predictor={tmp_path}/none"
  )
  assert "unknown task 'digits'" in _cli_refuses(capsys, *value, "--config.task.name=digits")
  assert "NaN" in _cli_refuses(capsys, *value, f"--config.base.path={tmp_path / 'nan.npz'}")


def test_cli_error_from_a_real_process_is_one_line(tmp_path):
  words = _write_rows(
    tmp_path / "words.csv", [["a", "label"]] + [["1", "0"], ["2", "1"]] * 10 + [["x", "0"]]
  )
  env = {**os.environ, "PYTHONPATH": REPO}
  r = subprocess.run(
    [sys.executable, "-m", "metaval.cli", "fit", f"--config.task.name=csv:{words}"],
    capture_output=True,
    text=True,
    env=env,
    cwd=tmp_path,
    timeout=300,
  )
  assert r.returncode == 2
  assert len(r.stderr.strip().splitlines()) == 1 and "numbers and some text" in r.stderr, r.stderr
