"""The Python API: load_predictor, value, rank, and clear errors."""

import numpy as np
import pytest

import metaval.api as api
from metaval.data import get_task
from metaval.learners.models import LearnerSpec
from metaval.predictor import toy


@pytest.fixture(scope="session")
def predictor(tmp_path_factory):
  path = toy.toy_predictor(str(tmp_path_factory.getbasetemp() / "toy_predictor"))
  return api.load_predictor(path)


def _clean_and_flipped(n=30):
  """A clean and a label-flipped set of wine pool points, in the task's raw space."""
  task = get_task("wine")
  x, y = task.decode(task.x[-n:]), task.y[-n:]  # wine's raw labels are its class ids
  return task, (x, y), (x, (y + 1) % task.num_classes)


def test_value_returns_facts_and_flipped_labels_are_worth_less(predictor):
  task, clean, flipped = _clean_and_flipped()
  f_clean = predictor.value(clean)
  f_flip = predictor.value(flipped)
  assert f_clean.task == "wine" and f_clean.supplement_size == 30
  assert [t.metric for t in f_clean.targets] == predictor.targets
  for t in f_clean.targets:
    assert t.low <= t.value <= t.high
  # Same inputs, labels flipped: the predicted accuracy gain must drop clearly.
  assert f_flip.targets[0].value < f_clean.targets[0].value - 0.05
  assert any("label noise" in w for w in f_flip.warnings)
  assert not any("label noise" in w for w in f_clean.warnings)
  # Accepts dicts and explicit bases too, and the default base matches its indices.
  base_idx = np.asarray(predictor.tasks["wine"]["base_indices"])
  f_dict = predictor.value({"x": clean[0], "y": clean[1]}, base=base_idx)
  assert f_dict.targets[0].value == pytest.approx(f_clean.targets[0].value, abs=1e-5)
  f_xy = predictor.value(clean, base=(task.decode(task.x[base_idx]), task.y[base_idx]))
  assert f_xy.targets[0].value == pytest.approx(f_clean.targets[0].value, abs=1e-5)


def test_duplicates_are_flagged_and_worth_nothing(predictor):
  task = get_task("wine")
  base_idx = np.asarray(predictor.tasks["wine"]["base_indices"])
  facts = predictor.value((task.decode(task.x[base_idx[:20]]), task.y[base_idx[:20]]))
  assert any("repeat points already in B" in w for w in facts.warnings)
  assert facts.diagnostics["dropped_exact_duplicates"] == 20
  assert all(t.value == t.low == t.high == 0.0 for t in facts.targets)
  # Padding a clean set with copies of B buys nothing: same value as the clean part.
  _, clean, _ = _clean_and_flipped()
  padded = (
    np.concatenate([clean[0], task.decode(task.x[base_idx[:20]])]),
    np.concatenate([clean[1], task.y[base_idx[:20]]]),
  )
  f_pad, f_clean = predictor.value(padded), predictor.value(clean)
  assert f_pad.targets[0].value == pytest.approx(f_clean.targets[0].value, abs=1e-6)
  assert f_pad.supplement_size == 50
  ranked = predictor.rank([(task.decode(task.x[base_idx[:5]]), task.y[base_idx[:5]]), clean])
  assert ranked[0][0] == 1


def test_rank_orders_by_predicted_value(predictor):
  _, clean, flipped = _clean_and_flipped()
  order = predictor.rank([flipped, clean, flipped])
  assert [i for i, _ in order][0] == 1
  values = [f.targets[0].value for _, f in order]
  assert values == sorted(values, reverse=True)


def test_larger_learner_warns_about_extrapolation(predictor):
  _, clean, _ = _clean_and_flipped()
  facts = predictor.value(clean, learner=LearnerSpec("mlp", width=512, depth=2))
  assert facts.learner_params > predictor.tasks["wine"]["max_learner_params"]
  assert any("larger than any" in w for w in facts.warnings)


def test_learner_accepts_a_spec_a_pipeline_dict_or_a_name(predictor):
  _, clean, _ = _clean_and_flipped()
  info = predictor.tasks["wine"]
  default = predictor.value(clean)
  assert info["learner"]["name"] == "toy_mlp"
  by_name = predictor.value(clean, learner="toy_mlp")
  # The label JSON itself, extra keys (name, params) included.
  by_dict = predictor.value(clean, learner=dict(info["learner"]))
  spec = LearnerSpec(**{k: v for k, v in info["learner"].items() if k not in ("name", "params")})
  by_spec = predictor.value(clean, learner=spec)
  for f in (by_name, by_dict, by_spec):
    assert f.learner_params == default.learner_params
    assert f.targets[0].value == pytest.approx(default.targets[0].value, abs=1e-6)
  wide = predictor.value(clean, learner={"name": "wide", "width": 64, "params": 1})
  assert wide.learner_params > default.learner_params
  assert wide.learner["width"] == 64 and wide.learner["name"] == "wide"
  with pytest.raises(api.QueryError, match="unknown learner name 'resnet'.*toy_mlp"):
    predictor.value(clean, learner="resnet")
  with pytest.raises(api.QueryError, match="learner must be"):
    predictor.value(clean, learner=3)
  with pytest.raises(api.QueryError, match="unknown learner field.*widht"):
    predictor.value(clean, learner={"widht": 64})


def test_bad_queries_raise_one_line_errors(predictor):
  task, (x, y), _ = _clean_and_flipped()
  x = task.encode(x)  # the internal space's own checks (inputs="internal")
  cases = [
    ((x[:, :5], y), "width 13"),
    ((np.zeros((0, 13)), np.zeros(0, int)), "empty"),
    ((np.where(np.arange(13) == 3, np.nan, x), y), "NaN"),
    ((x, y[:-1]), "labels must have shape"),
    ((x, y + 10), r"labels must be in \[0, 3\)"),
    (x, "labels are required"),
    ((x[0], y[:1]), "2-D"),
  ]
  for supp, msg in cases:
    with pytest.raises(api.QueryError, match=msg) as e:
      predictor.value(supp, inputs="internal")
    assert "\n" not in str(e.value)
  with pytest.raises(api.QueryError, match="unknown task 'digits'"):
    predictor.value((x, y), task="digits")
  with pytest.raises(api.QueryError, match="base indices"):
    predictor.value((x, y), base=np.array([0, 999]))
  with pytest.raises(api.QueryError, match="bad learner"):
    predictor.value((x, y), learner={"family": "cnn"})
  with pytest.raises(api.QueryError, match="no trained predictor"):
    api.load_predictor("/nonexistent/predictor")


def test_exact_repeats_of_base_are_worth_nothing():
  from metaval.api import novel_points

  rng = np.random.default_rng(0)
  xb = rng.normal(size=(30, 5)).astype(np.float32)
  yb = rng.integers(0, 3, 30)
  xs = np.concatenate([xb[[3, 7]], rng.normal(size=(2, 5)).astype(np.float32), xb[[9]]])
  ys = np.concatenate([yb[[3, 7]], [0, 1], (yb[[9]] + 1) % 3])  # last: flipped label
  xs = np.concatenate([xs, xs[2:3]])  # a repeat within S
  ys = np.concatenate([ys, ys[2:3]])
  np.testing.assert_array_equal(novel_points(xs, ys, xb, yb), [0, 0, 1, 1, 1, 0])


def test_near_repeats_within_half_the_base_spacing_are_dropped():
  from metaval.predictor.novelty import repeats

  rng = np.random.default_rng(1)
  xb = rng.normal(size=(40, 6))
  yb = rng.integers(0, 3, 40)
  u = rng.normal(size=(4, 6))
  u /= np.linalg.norm(u, axis=1, keepdims=True)
  radius = 0.5
  xs = np.concatenate(
    [
      xb[[0, 1]] + 0.4 * u[:2],  # near copies, same label: near repeats
      xb[[2]] + 0.4 * u[2:3],  # near copy with a flipped label: label noise, kept
      xb[[3]] + 0.6 * u[3:4],  # just outside the radius: kept
      xb[[4]] + 10.0,  # far from everything: kept ...
      xb[[4]] + 10.0 + 0.1 * u[:1],  # ... and its near copy within S is a near repeat
      xb[[5]],  # an exact repeat of B
    ]
  )
  ys = np.concatenate([yb[[0, 1]], (yb[[2]] + 1) % 3, yb[[3, 4, 4, 5]]])
  v = repeats(xs, ys, xb, yb, radius)
  np.testing.assert_array_equal(v.keep, [0, 0, 1, 1, 1, 0, 0])
  np.testing.assert_array_equal(v.exact, [0, 0, 0, 0, 0, 0, 1])
  np.testing.assert_array_equal(v.near, [1, 1, 0, 0, 0, 1, 0])
  assert (v.num_exact, v.num_near) == (1, 3)
  # Radius 0: only exact repeats go.
  np.testing.assert_array_equal(repeats(xs, ys, xb, yb).keep, [1, 1, 1, 1, 1, 1, 0])


def test_padding_with_near_copies_of_the_base_buys_nothing(predictor):
  # The Goodhart attack: a clean core padded with copies of B points moved by 0.35 of
  # B's nearest-neighbour spacing is worth exactly what the core is worth.
  from metaval.predictor.novelty import NEAR_REPEAT_RADIUS

  task, clean, _ = _clean_and_flipped(10)
  clean = (task.encode(clean[0]), clean[1])  # the padding is built in the internal space
  base_idx = np.asarray(predictor.tasks["wine"]["base_indices"])
  xb, yb = task.x[base_idx], task.y[base_idx]
  d = ((xb[:, None] - xb[None]) ** 2).sum(-1)
  np.fill_diagonal(d, np.inf)
  scale = float(np.median(np.sqrt(d.min(1))))
  rng = np.random.default_rng(0)
  src = rng.choice(len(xb), 30)
  u = rng.normal(size=(30, xb.shape[1]))
  u /= np.linalg.norm(u, axis=1, keepdims=True)
  pad_x = xb[src] + 0.7 * NEAR_REPEAT_RADIUS * scale * u
  padded = (np.concatenate([clean[0], pad_x]), np.concatenate([clean[1], yb[src]]))
  f_pad = predictor.value(padded, inputs="internal")
  f_core = predictor.value(clean, inputs="internal")
  assert f_pad.diagnostics["dropped_near_duplicates"] == 30
  # (Some of the clean points are in the default base: exact repeats in both queries.)
  assert (
    f_pad.diagnostics["dropped_exact_duplicates"] == f_core.diagnostics["dropped_exact_duplicates"]
  )
  assert any("near repeats" in w for w in f_pad.warnings)
  assert f_pad.targets[0].value == pytest.approx(f_core.targets[0].value, abs=1e-6)


@pytest.fixture(scope="module")
def digits_predictor(tmp_path_factory):
  """A small digits predictor (toy labels on digits): only its inputs matter here."""
  from metaval.configlib import load
  from metaval.predictor.train import train_and_evaluate

  cfg = load(
    "predictor:toy",
    [
      "--config.labels.toy_tasks=('digits',)",
      "--config.labels.toy_pairs=16",
      "--config.train.epochs=2",
    ],
  )
  path = str(tmp_path_factory.mktemp("digits_predictor"))
  train_and_evaluate(cfg, path)
  return api.load_predictor(path)


def test_raw_digits_pixels_give_the_value_of_their_standardised_form(digits_predictor):
  from sklearn.datasets import load_digits

  p, task, d = digits_predictor, get_task("digits"), load_digits()
  for rows in (slice(0, 40), slice(100, 400)):
    raw, y = d.data[rows], d.target[rows]  # pixels 0-16, as a user holds them
    assert raw.max() == 16.0
    # What value() took before inputs were raw: the standardised form.
    before = p.value((task.encode(raw), y), inputs="internal")
    after = p.value((raw, y))
    for a, b in zip(after.targets, before.targets, strict=True):
      assert (a.value, a.low, a.high) == pytest.approx((b.value, b.low, b.high), abs=1e-6)
    assert after.diagnostics == before.diagnostics and after.warnings == before.warnings
    # A raw base too: the same as its standardised form.
    xb, yb = d.data[1000:1100], d.target[1000:1100]
    raw_b = p.value((raw, y), base=(xb, yb))
    std_b = p.value((task.encode(raw), y), base=(task.encode(xb), yb), inputs="internal")
    assert raw_b.targets[0].value == pytest.approx(std_b.targets[0].value, abs=1e-6)
  # Raw pixels taken for internal points (what a user got before, silently) lie far
  # from every point of B; read as raw they do not.
  wrong = p.value((raw, y), inputs="internal")
  assert wrong.diagnostics["share_far"] > 0.9
  assert after.diagnostics["share_far"] < 0.5
