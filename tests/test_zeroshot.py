"""The zero-shot value model: features, errors, training round trip and the Goodhart suite."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse
import scipy.stats

import metaval
from metaval.audit.goodhart.attacks import manufactured
from metaval.errors import MetavalError
from metaval.zeroshot import features as Z
from metaval.zeroshot import model as M
from metaval.zeroshot import scores as S
from metaval.zeroshot import softmax as SM
from metaval.zeroshot import train as T

DRAWS = 8


def _problem(seed: int, width: int = 10, classes: int = 3, n_base: int = 150, noise: float = 1.5):
  """A raw (unstandardised) task: class clusters with offsets and scales per column."""
  rng = np.random.default_rng(seed)
  centres = rng.normal(0, 2.0, (classes, width))
  scale = rng.uniform(0.5, 20.0, width)
  offset = rng.normal(0, 50.0, width)

  def draw(n):
    y = rng.integers(0, classes, n)
    x = (centres[y] + rng.normal(0, noise, (n, width))) * scale + offset
    return x, y

  return draw(n_base), draw(400), draw, rng


def _attack_sets(base, draw, rng, n=100, synthetic=False):
  xb, yb = base
  x_clean, y_clean = draw(n)
  dup = rng.integers(0, len(xb), n)
  lo, hi = xb.min(0), xb.max(0)
  sets = {
    "genuine": (x_clean, y_clean),
    "random bits": (rng.uniform(lo, hi, (n, xb.shape[1])), rng.integers(0, yb.max() + 1, n)),
    "couch": (np.repeat(xb.mean(0, keepdims=True), n, 0), np.zeros(n, np.int64)),
    "duplicates": (xb[dup], yb[dup]),
    "label noise": (x_clean, (y_clean + rng.integers(1, yb.max() + 1, n)) % (yb.max() + 1)),
  }
  if synthetic:  # drawn last: the other sets are those drawn without it
    sets["synthetic"] = manufactured(xb, yb, n, rng)  # SMOTE's recipe on B
  return sets


# -- features ----------------------------------------------------------------------


def test_features_are_finite_and_deterministic():
  base, ev, draw, _ = _problem(0)
  s = draw(40)
  spec = metaval.zeroshot.parse_learner("mlp32").to_dict()
  f1 = Z.Context(base, ev).features(s, spec, 1000)
  f2 = Z.Context(base, ev).features(s, spec, 1000)
  assert f1.shape == (len(Z.FEATURE_NAMES),)
  assert np.all(np.isfinite(f1))
  np.testing.assert_allclose(f1, f2, rtol=1e-6, atol=1e-6)


def test_batches_cover_every_supplement_in_order_within_the_budget():
  rng = np.random.default_rng(0)
  for _ in range(50):
    sizes = rng.integers(1, 400, rng.integers(1, 30))
    cost, budget, pad = sizes * 7, int(rng.integers(100, 5000)), int(rng.integers(0, 4))
    runs = Z._runs(sizes, cost, budget, pad)
    assert [i for i, _ in runs] == [0] + [j for _, j in runs[:-1]] and runs[-1][1] == len(sizes)
    for i, j in runs:  # within the budget, or a single item that exceeds it alone
      within = cost[i:j].sum() <= budget and pad * (j - i) * sizes[i:j].max() <= budget
      assert within or j == i + 1


def test_transport_costs_equal_pots_emd2():
  import ot

  rng = np.random.default_rng(0)
  for n_a, n_b in [(16, 16), (32, 16), (5, 16), (1, 3)]:
    a, b = rng.dirichlet(np.ones(n_a)), rng.dirichlet(np.ones(n_b))
    cost = rng.random((n_a, n_b)) + (rng.random((n_a, n_b)) < 0.5)
    assert S.emd(a, b, cost) == pytest.approx(float(ot.emd2(a, b, cost)), rel=1e-12, abs=1e-15)


def test_a_query_does_not_depend_on_earlier_queries():
  # Sets larger than the transport sample: S's subsample must not follow a shared stream.
  base, ev, draw, _ = _problem(0)
  sets = [draw(90) for _ in range(3)]
  spec = metaval.zeroshot.parse_learner("mlp32").to_dict()
  ctx = Z.Context(base, ev)
  first = ctx.features(sets[0], spec, 1000)
  ctx.features_many(sets[1:], spec, 1000)
  np.testing.assert_array_equal(ctx.features(sets[0], spec, 1000), first)
  np.testing.assert_array_equal(ctx.features_many(sets[::-1], spec, 1000)[-1], first)


def test_clean_supplement_beats_flipped_labels_on_every_retrain_proxy():
  spec = metaval.zeroshot.parse_learner("mlp32").to_dict()
  for seed in range(3):
    base, ev, draw, rng = _problem(seed, n_base=60)
    sets = _attack_sets(base, draw, rng, n=150)
    ctx = Z.Context(base, ev)
    clean = ctx.features(sets["genuine"], spec, 1000)
    noisy = ctx.features(sets["label noise"], spec, 1000)
    for name in ("ridge_acc", "knn5_acc", "centroid_acc", "logit_ll", "newton_ll"):
      j = Z.FEATURE_NAMES.index(name)
      assert clean[j] > noisy[j], (seed, name)


def _softmax_optimum(x1, y1h, l2):
  """The exact minimiser of mean cross-entropy + l2 / 2 |theta|^2 (scipy's L-BFGS)."""
  import scipy.optimize

  d1, k = x1.shape[1], y1h.shape[1]

  def loss(t):
    theta = t.reshape(d1, k)
    z = x1 @ theta
    z -= z.max(1, keepdims=True)
    lse = np.log(np.exp(z).sum(1))
    p = np.exp(z - lse[:, None])
    value = lse.mean() - (z * y1h).sum(1).mean() + 0.5 * l2 * (theta**2).sum()
    return value, (x1.T @ (p - y1h) / len(x1) + l2 * theta).ravel()

  opts = {"maxiter": 2000, "gtol": 1e-10}
  res = scipy.optimize.minimize(loss, np.zeros(d1 * k), jac=True, method="L-BFGS-B", options=opts)
  return res.x.reshape(d1, k)


@pytest.mark.parametrize("seed", range(4))
def test_the_newton_proxy_moves_towards_the_union_optimum(seed):
  # One damped Newton step from B's fit, with S's gradients and B's cached Hessian
  # blocks, must predict on T much closer to the exact B ∪ S optimum than B's fit does.
  base, ev, draw, _ = _problem(seed)
  ctx = Z.Context(base, ev)
  s = draw(60)
  xs, ys = ctx.transform(s[0]), ctx.labels(s[1])
  xs1, ys1h = np.c_[xs, np.ones(len(ys))], S.onehot(ys, ctx.k)
  grad_s = xs1.T @ (SM.softmax(xs1 @ ctx.theta_b) - ys1h)
  moved = ctx._newton(ctx.grad_b + grad_s, ctx.n_b + len(ys))
  star = _softmax_optimum(np.r_[ctx.xb1, xs1], np.r_[ctx.yb1h, ys1h], SM.NEWTON_L2)

  def error(theta):
    return np.abs(SM.softmax(ctx.on_t.xe1 @ theta) - SM.softmax(ctx.on_t.xe1 @ star)).mean()

  assert error(moved) < 0.5 * error(ctx.theta_b), (error(moved), error(ctx.theta_b))


@pytest.mark.parametrize("seed", range(3))
def test_the_stepped_proxy_on_a_sample_of_a_large_base_ranks_like_all_of_it(seed):
  # Over 256 weighted points of a 1,000-point B, the stepped softmax proxy's gain must
  # order genuine, relabelled and noisy supplements as the proxy over all of B does.
  rng = np.random.default_rng(seed)
  centres = rng.normal(0, 1.2, (4, 12))

  def draw(n, noise=1.5):
    y = rng.integers(0, 4, n)
    return centres[y] + rng.normal(0, noise, (n, 12)), y

  ctx = Z.Context(draw(1000), draw(300))
  assert len(ctx.lx1) < ctx.n_b
  sets = [draw(60) for _ in range(6)] + [draw(60, 4.0) for _ in range(4)]
  sets += [(draw(60)[0], rng.integers(0, 4, 60)) for _ in range(6)]
  full_ref = ctx.on_t.logit(SM.fit(ctx.xb1, ctx.yb1h, np.ones(ctx.n_b), init=ctx.theta_b)[None])[0]
  sampled, full = [], []
  for xs, ys in sets:
    xs, ys = ctx.transform(xs), ctx.labels(ys)
    extra = [(np.c_[xs, np.ones(len(ys))], S.onehot(ys, ctx.k))]
    theta = SM.fit_many(ctx.lx1, ctx.ly1h, extra, ctx.theta_b, ctx.lw)
    sampled.append((ctx.on_t.logit(theta)[0] - ctx.logit_b)[1])
    theta = SM.fit_many(ctx.xb1, ctx.yb1h, extra, ctx.theta_b)
    full.append((ctx.on_t.logit(theta)[0] - full_ref)[1])
  rho = scipy.stats.spearmanr(sampled, full)[0]
  assert rho > 0.9


@pytest.mark.parametrize("unit", [1e3, 1e-9, 1e-300, 1e200])
def test_features_do_not_depend_on_the_raw_scale(unit):
  """Inputs in tiny units are not taken for constant columns, nor do huge ones overflow
  (no NumPy warning either way)."""
  base, ev, draw, _ = _problem(1)
  s = draw(30)
  spec = metaval.zeroshot.parse_learner("mlp32").to_dict()
  a = Z.Context(base, ev).features(s, spec, 1000)

  def scaled(d):
    return (d[0] * unit - 7.0 * unit, d[1])

  with warnings.catch_warnings():
    warnings.simplefilter("error")
    b = Z.Context(scaled(base), scaled(ev)).features(scaled(s), spec, 1000)
  np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-3)


# -- errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
  "supp, match",
  [
    ((np.zeros((5, 3)), np.zeros(5)), "features but base has"),
    ((np.full((5, 3), np.nan), np.zeros(5)), "3 features but base has 10"),
    ((np.full((5, 10), -np.inf), np.zeros(5)), "infinite"),
    ((np.zeros((5, 10)), np.zeros(4)), "labels"),
    ((np.zeros((0, 10)), np.zeros(0)), "empty"),
    ((np.zeros((5, 10)), np.linspace(0.0, 1.0, 5)), "labels are not classes"),
    ((np.zeros((5, 10)), np.array([0.0, 1.0, np.nan, 0.0, 1.0])), "missing values"),
    ((np.zeros((5, 10)), np.array([0, 1, None, 0, 1], object)), "missing values"),
    ((np.zeros((5, 10)), [None] * 5), "missing values"),
    ("not arrays", "pair"),
    ((np.zeros((5, 10), complex), np.zeros(5)), "complex"),
    ((scipy.sparse.csr_matrix(np.zeros((5, 10))), np.zeros(5)), r"sparse matrix.*toarray"),
    ((np.zeros((5, 10)), np.eye(3)[[0, 1, 2, 0, 1]]), r"one class per point.*argmax"),
    ((np.zeros((5, 10)), np.array([0, "a", 1, "b", 0], object)), r"mix text and numbers"),
    ((np.zeros((5, 10)), np.array([(0,), 1, 2, 0, 1, None], object)[:5]), "numbers or text"),
  ],
)
def test_bad_queries_are_one_line_errors(supp, match):
  base, ev, _, _ = _problem(0)
  p = metaval.load_predictor()
  with pytest.raises(MetavalError, match=match) as e:
    p.value(supp, base=base, eval=ev)
  assert "\n" not in str(e.value)


def test_missing_inputs_take_the_base_medians_and_are_said():
  base, ev, draw, _ = _problem(0)
  p = metaval.load_predictor()
  xs, ys = draw(40)
  holed = xs.copy()
  holed[::4, 3] = np.nan
  medians = np.median(base[0], axis=0)
  by_hand = np.where(np.isnan(holed), medians, holed)
  got, want = p.value((holed, ys), base=base, eval=ev), p.value((by_hand, ys), base=base, eval=ev)
  assert got.targets[0].value == want.targets[0].value
  assert "10 missing input cell(s) (NaN) of S" in " ".join(got.warnings)
  assert not any("missing" in w for w in want.warnings)
  # Holes in B: filled with the medians of its present values, and said on every label.
  xb = base[0].copy()
  xb[::3, 0] = np.nan
  filled = xb.copy()
  filled[::3, 0] = np.median(base[0][np.arange(len(xb)) % 3 != 0, 0])
  a = p.value((xs, ys), base=(xb, base[1]), eval=ev)
  b = p.value((xs, ys), base=(filled, base[1]), eval=ev)
  assert a.targets[0].value == b.targets[0].value
  assert any(w.startswith(f"base: {len(xb[::3])} missing input cell(s)") for w in a.warnings)
  with pytest.raises(MetavalError, match="eval has 3 features but base has 10"):
    p.value((xs, ys), base=(xb, base[1]), eval=(np.full((5, 3), np.nan), np.zeros(5)))


def test_an_evaluation_set_coarser_than_the_interval_is_said():
  """Accuracy on n points moves in steps of 1/n: a label whose interval is narrower
  than one step says so; on the usual 400 points it does not."""
  base, ev, draw, _ = _problem(0)
  p = metaval.load_predictor()
  s = draw(40)
  wide = p.value(s, base=base, eval=ev)
  assert wide.targets[0].high - wide.targets[0].low > 2.0 / len(ev[1])  # the test's premise
  assert not any("steps of" in w for w in wide.warnings)
  for n in (1, 5):
    small = p.value(s, base=base, eval=(ev[0][:n], ev[1][:n]))
    half = (small.targets[0].high - small.targets[0].low) / 2
    assert 1.0 / n > half
    said = [w for w in small.warnings if "steps of" in w]
    assert len(said) == 1
    assert said[0].startswith(
      f"the evaluation set has {n} point(s): accuracy on it moves in steps of {1.0 / n:.3f}, "
      "coarser than this interval"
    )


def test_bad_learner_and_too_many_classes():
  base, ev, draw, _ = _problem(0)
  p = metaval.load_predictor()
  with pytest.raises(MetavalError, match="learner"):
    p.value(draw(10), base=base, eval=ev, learner="resnet")
  for name in ("mlpx", "mlp32x", "mlp-4", "mlp 32"):
    with pytest.raises(MetavalError, match=r"an MLP is named 'mlp<width>'"):
      p.value(draw(10), base=base, eval=ev, learner=name)
  # A misspelt field is refused, not silently left at its default; a label file's
  # learner entry (its title and parameter count beside the fields) is accepted.
  with pytest.raises(MetavalError, match="unknown learner field.*widht"):
    p.value(draw(10), base=base, eval=ev, learner={"family": "mlp", "widht": 64})
  entry = {**metaval.zeroshot.parse_learner("mlp64").to_dict(), "name": "w64", "params": 1}
  assert p.value(draw(10), base=base, eval=ev, learner=entry).learner["width"] == 64
  xb = np.random.default_rng(0).normal(size=(200, 4))
  yb = np.arange(200) % (Z.MAX_CLASSES + 1)
  with pytest.raises(MetavalError, match="classes"):
    p.value((xb[:5], yb[:5]), base=(xb, yb), eval=(xb, yb))


def test_a_scikit_learn_bunch_is_a_set_as_its_data_and_target_are():
  from sklearn.datasets import load_wine
  from sklearn.utils import Bunch

  wine = load_wine()
  x, y = wine.data, wine.target
  s = (x[::7], y[::7])
  p = metaval.load_predictor()
  a = p.value(s, base=(x, y), eval=(x[1::3], y[1::3])).targets[0].value
  b = p.value(Bunch(data=s[0], target=s[1]), base=wine, eval=(x[1::3], y[1::3]))
  assert a == b.targets[0].value
  with pytest.raises(MetavalError, match="'data' and 'target'"):
    p.value({"data": s[0]}, base=wine)


def test_labels_given_as_integral_floats_are_classes():
  base, ev, draw, _ = _problem(0)
  p = metaval.load_predictor()
  xs, ys = draw(40)
  a = p.value((xs, ys), base=base, eval=ev).targets[0].value
  b = p.value((xs, ys.astype(float)), base=base, eval=ev).targets[0].value
  assert a == b
  # Labels held as Python objects (a pandas column of dtype object) read as their kind.
  c = p.value((xs, ys.astype(object)), base=(base[0], base[1].astype(object)), eval=ev)
  assert c.targets[0].value == a
  text = (base[0], base[1].astype(str).astype(object))
  d = p.value((xs, ys.astype(str).astype(object)), base=text, eval=(ev[0], ev[1].astype(str)))
  assert (
    d.targets[0].value
    == p.value((xs, ys.astype(str)), base=text, eval=(ev[0], ev[1].astype(str))).targets[0].value
  )


def test_rank_takes_a_dict_of_named_supplements():
  base, ev, draw, _ = _problem(1)
  p = metaval.load_predictor()
  sets = {"clean": draw(40), "flipped": (lambda s: (s[0], (s[1] + 1) % 3))(draw(40))}
  by_name = p.rank(sets, base=base, eval=ev)
  by_index = p.rank(list(sets.values()), base=base, eval=ev, names=list(sets))
  assert [k for k, _ in by_name] == [list(sets)[i] for i, _ in by_index]
  for (k, f), (_, g) in zip(by_name, by_index):
    assert f.name == g.name == k and f.targets[0].value == g.targets[0].value


@pytest.mark.parametrize("seed", range(3))
def test_label_encoding_and_unit_mismatches_are_warned(seed):
  base, ev, draw, _ = _problem(seed)
  p = metaval.load_predictor()
  xs, ys = draw(60)
  assert p.value((xs, ys), base=base, eval=ev).warnings == []  # same source as B: silent
  (warn,) = p.value((xs, ys.astype(str)), base=base, eval=ev).warnings[:1]
  assert warn.startswith("60 of 60 labels") and "label encoding" in warn
  shifted = p.value((xs + 2.0 * base[0].std(0), ys), base=base, eval=ev).warnings
  assert not any("far from B" in w for w in shifted)  # a covariate shift is not a unit error
  scaled = p.value((xs * 1000.0, ys), base=base, eval=ev).warnings
  assert any("far from B" in w and "units" in w for w in scaled)
  # S holding evaluation points: the gain on that set is inflated, and the label says so
  leak = (np.r_[xs[:30], ev[0][:30]], np.r_[ys[:30], ev[1][:30]])
  assert any(
    w.startswith("30 of 60 points of S are evaluation points")
    for w in p.value(leak, base=base, eval=ev).warnings
  )
  # eval encoded apart from B: strings against integers are refused, other integers warned
  with pytest.raises(MetavalError, match="labels are numbers but eval labels are strings"):
    p.value((xs, ys), base=base, eval=(ev[0], ev[1].astype(str)))
  (warn,) = p.value((xs, ys), base=base, eval=(ev[0], ev[1] + 10)).warnings[:1]
  assert warn.startswith(f"{len(ev[1])} of {len(ev[1])} evaluation labels") and "encoded" in warn
  # a class only S and T have is a real question, not an encoding error: silent
  one = ev[1] == 0
  warned = p.value((xs, ys), base=(base[0][base[1] != 0], base[1][base[1] != 0]), eval=ev).warnings
  assert one.mean() < 0.5 and not any("evaluation labels" in w for w in warned)


def test_rank_warns_each_supplement_as_valuing_it_alone_would():
  base, ev, draw, rng = _problem(3)
  p = metaval.load_predictor()
  xs, ys = draw(60)
  sets = [
    (xs, ys),
    (xs, ys.astype(str)),  # labels B never uses
    (xs * 1000.0, ys),  # other units
    (np.r_[xs[:30], ev[0][:30]], np.r_[ys[:30], ev[1][:30]]),  # evaluation points
    (np.r_[base[0][:10], xs[:5]], np.r_[base[1][:10], ys[:5]]),  # copies of B
    (base[0][:8], base[1][:8]),  # nothing but copies
  ]
  ranked = dict(p.rank(sets, base=base, eval=ev))
  for i, s in enumerate(sets):
    alone = p.value(s, base=base, eval=ev)
    assert ranked[i].warnings == alone.warnings, i
    assert ranked[i].targets[0].value == pytest.approx(alone.targets[0].value, abs=1e-6), i
  assert len({tuple(f.warnings) for f in ranked.values()}) == len(sets)


def test_questions_outside_the_training_domain_are_warned_by_name():
  p = metaval.load_predictor()
  base, ev, draw, _ = _problem(3)  # 150 points, 10 features, 3 classes: inside
  assert p.value(draw(50), base=base, eval=ev, learner="mlp32").warnings == []

  def outside(facts):
    (w,) = [w for w in facts.warnings if w.startswith("outside what the model was trained on")]
    return w

  assert "learner depth 2 (trained: 1)" in outside(p.value(draw(50), base, ev, "mlp32x2"))
  assert "learner width 1,024 (trained: 16 to" in outside(p.value(draw(50), base, ev, "mlp1024"))
  big, ev2, draw2, _ = _problem(4, n_base=3000)
  w = outside(p.value(draw2(50), big, ev2))
  assert "points in B 3,000 (trained: 10 to" in w and "learner" not in w
  many, ev3, draw3, _ = _problem(5, classes=30, n_base=600)
  assert "classes 30 (trained: 2 to" in outside(p.value(draw3(100), many, ev3))


def test_domain_warning_reads_each_fact_back_in_the_users_terms():
  from metaval.zeroshot.domain import domain_warning

  p = metaval.load_predictor()
  row = (p.low + p.high) / 2.0
  row[Z.FEATURE_NAMES.index("learner_2")] = p.high[Z.FEATURE_NAMES.index("learner_2")]
  assert domain_warning(row, p.low, p.high) is None  # a bound is inside
  row[Z.FEATURE_NAMES.index("learner_8")] = 1.0  # the LM family flag: never trained on
  row[Z.FEATURE_NAMES.index("log_width")] = np.log(200.0)
  w = domain_warning(row, p.low, p.high)
  assert "learner family 'lm' (never trained on)" in w and "input features 200 (trained: 2" in w


def test_a_model_without_its_domain_still_answers(tmp_path):
  import json
  import shutil

  from metaval.zeroshot.predictor import META, default_path

  shutil.copytree(default_path(), tmp_path / "m")
  meta = json.loads((tmp_path / "m" / META).read_text())
  del meta["feature_min"], meta["feature_max"]
  (tmp_path / "m" / META).write_text(json.dumps(meta))
  base, ev, draw, _ = _problem(3)
  facts = metaval.load_predictor(str(tmp_path / "m")).value(draw(50), base, ev, "mlp32x2")
  assert not any(w.startswith("outside") for w in facts.warnings)


def test_absurd_inputs_give_a_finite_value_without_numpy_warnings():
  base, ev, draw, _ = _problem(1)
  xs, ys = draw(30)
  with warnings.catch_warnings():
    warnings.simplefilter("error")  # no overflow inside the featuriser
    facts = metaval.load_predictor().value((xs * 1e300, ys), base=base, eval=ev)
  t = facts.targets[0]
  assert np.isfinite([t.value, t.low, t.high]).all()
  assert any("far from B" in w for w in facts.warnings)


# -- the shipped model -------------------------------------------------------------


def test_shipped_model_loads_and_values_raw_arrays():
  base, ev, draw, _ = _problem(2)
  p = metaval.load_predictor()
  assert isinstance(p, metaval.zeroshot.ZeroShotPredictor)
  facts = p.value(draw(50), base=base, eval=ev, learner="mlp32")
  t = facts.targets[0]
  assert t.low <= t.value <= t.high
  assert facts.supplement_size == 50 and facts.base_size == len(base[1])
  # Without eval a quarter of B is held out.
  facts = p.value(draw(50), base=base)
  assert facts.base_size < len(base[1])
  ranked = p.rank([draw(20), draw(80)], base=base, eval=ev)
  assert sorted(i for i, _ in ranked) == [0, 1]


def test_builtin_task_name_is_a_shortcut():
  from metaval.data import get_task

  task = get_task("wine")
  x_raw = task.decode(task.evals["test"][0][:20])
  y_raw = np.asarray(task.classes)[task.evals["test"][1][:20]]
  facts = metaval.load_predictor().value((x_raw, y_raw), base="wine")
  assert facts.task == "wine"


ATTACKS = ("random bits", "couch", "duplicates", "label noise", "synthetic")
TRUTH_SEEDS = 8  # paired seeds of the retraining truth
CLEAR = 0.02  # the truth separates genuine data from an attack by more than this


def _retrain_gains(base, ev, sets, names, seed):
  """Retraining truth: test-accuracy gain of B ∪ S over B for each named set.

  The predictor's default learner, ``TRUTH_SEEDS`` paired seeds; duplicates of B
  enter as extra weight on the copied points.
  """
  import jax

  from metaval.data.tasks import classification_task
  from metaval.learners import train_many

  xb, yb = base
  fresh = [n for n in names if n != "duplicates"]
  x = np.concatenate([xb] + [sets[n][0] for n in fresh])
  y = np.concatenate([yb] + [sets[n][1] for n in fresh])
  task = classification_task("goodhart", x, y, seed=0, x_test=ev[0], y_test=ev[1])
  m_b = np.zeros(len(y))
  m_b[: len(yb)] = 1.0
  masks, off = [m_b], len(yb)
  for n in names:
    m = m_b.copy()
    if n == "duplicates":
      rows = [int(np.flatnonzero((xb == r).all(1))[0]) for r in sets[n][0]]
      np.add.at(m, rows, 1.0)
    else:
      m[off : off + len(sets[n][1])] = 1.0
      off += len(sets[n][1])
    masks.append(m)
  keys = jax.random.split(jax.random.key(seed), TRUTH_SEEDS)
  keys = jax.numpy.concatenate([keys] * len(masks))
  spec = metaval.zeroshot.parse_learner(None)
  acc = train_many(keys, task, np.repeat(np.stack(masks), TRUTH_SEEDS, 0), spec)
  acc = np.asarray(acc.metrics["test/accuracy"]).reshape(len(masks), TRUTH_SEEDS).mean(1)
  return dict(zip(names, acc[1:] - acc[0]))


@pytest.fixture(scope="module")
def goodhart_draws():
  """Per draw: the predictor's facts and the retraining truth of genuine data and attacks."""
  p = metaval.load_predictor()
  names = ("genuine",) + ATTACKS
  draws = []
  for seed in range(DRAWS):
    base, ev, draw, rng = _problem(100 + seed, n_base=40, noise=5.0)
    sets = _attack_sets(base, draw, rng, synthetic=True)
    ranked = dict(p.rank([sets[n] for n in names], base=base, eval=ev))
    facts = {n: ranked[i].targets[0] for i, n in enumerate(names)}
    draws.append((facts, _retrain_gains(base, ev, sets, names, seed)))
  return draws


@pytest.mark.parametrize("attack", ATTACKS)
def test_goodhart_attacks_are_valued_below_genuine_data(attack, goodhart_draws):
  """Where retraining says genuine data beats the attack, so must the predictor, by 0.01.

  The problems are small noisy bases (40 points, heavy class overlap): retraining
  finds genuine data worth about nothing in some draws (and the couch worth as much),
  and a faithful predictor may order those either way, so they ask nothing. Every
  attack must be clearly beaten in most draws, and pure junk's interval must reach
  zero in every draw.
  """
  margins = []
  for facts, truth in goodhart_draws:
    if attack in ("random bits", "couch", "synthetic"):  # junk: zero within its interval
      assert facts[attack].low <= 0.0, facts[attack]
    if truth["genuine"] - truth[attack] > CLEAR:
      margins.append(facts["genuine"].value - facts[attack].value)
  assert len(margins) >= DRAWS // 2, (attack, len(margins))
  assert min(margins) > 0.01, margins


def test_copies_of_base_points_are_not_counted():
  p = metaval.load_predictor()
  base, ev, draw, rng = _problem(7, n_base=60)
  xb, yb = base
  xs, ys = draw(40)
  copies = (xb[:15], yb[:15])
  mixed = (np.r_[xs, copies[0]], np.r_[ys, copies[1]])
  relabelled = (xb[:15], (yb[:15] + 1) % 3)  # same inputs, another label: new data
  ranked = dict(p.rank([(xs, ys), mixed, copies, relabelled], base=base, eval=ev))
  # The copies in a mixed set change nothing; the set's size still counts them.
  assert ranked[1].targets[0].value == ranked[0].targets[0].value
  assert ranked[1].supplement_size == 55 and ranked[1].diagnostics["base_copies"] == 15
  assert any("15 of 55" in w for w in ranked[1].warnings)
  # Copies alone: no new data, worth exactly zero, ranked last.
  only = ranked[2].targets[0]
  assert (only.value, only.low, only.high) == (0.0, 0.0, 0.0)
  assert [i for i, _ in p.rank([copies, (xs, ys)], base=base, eval=ev)] == [1, 0]
  assert ranked[3].diagnostics["base_copies"] == 0
  assert not any("repeats" in w for f in ranked.values() for w in f.warnings)  # B is continuous


@pytest.mark.parametrize("seed", range(3))
def test_copies_are_noted_as_maybe_genuine_where_b_repeats_its_own_rows(seed):
  # Four binary features: 16 possible inputs, so B repeats rows and a fresh sample
  # often equals a point of B. Such copies are still not counted (a set of copies
  # pays nothing), but the note says the value may be too low.
  rng = np.random.default_rng(seed)

  def draw(n):
    x = rng.integers(0, 2, (n, 4)).astype(float)
    return x, (x.sum(1) + rng.random(n) > 2.5).astype(int)

  base, ev, fresh = draw(80), draw(200), draw(60)
  facts = metaval.load_predictor().value(fresh, base=base, eval=ev)
  assert facts.diagnostics["base_copies"] > 0
  note = next(w for w in facts.warnings if "copy base points" in w)
  assert "B itself repeats" in note and "may be genuine new samples" in note


@pytest.mark.parametrize("seed", range(3))
def test_a_supplement_repeating_its_own_rows_is_told_so_unless_the_data_repeats_anyway(seed):
  p = metaval.load_predictor()
  base, ev, draw, _ = _problem(seed, n_base=60)
  xs, ys = draw(30)
  tiled = (np.tile(xs, (4, 1)), np.tile(ys, 4))
  ranked = dict(p.rank([(xs, ys), tiled], base=base, eval=ev))
  assert not any("repeat another point of S" in w for w in ranked[0].warnings)
  assert any(w.startswith("90 of 120 points of S repeat") for w in ranked[1].warnings)
  # Binary inputs: B repeats its rows as much as a fresh sample does, so nothing to say.
  rng = np.random.default_rng(seed)

  def binary(n):
    x = rng.integers(0, 2, (n, 4)).astype(float)
    return x, (x.sum(1) + rng.random(n) > 2.5).astype(int)

  facts = p.value(binary(60), base=binary(80), eval=binary(200))
  assert not any("repeat another point of S" in w for w in facts.warnings)


# -- training round trip -----------------------------------------------------------


def _toy_table(num_tasks=12, pairs=12, seed=0, first=500):
  """Rows with real features whose gain follows the ridge proxy (plus noise)."""
  rng = np.random.default_rng(seed)
  spec = metaval.zeroshot.parse_learner("mlp32").to_dict()
  rows, gains, tasks = [], [], []
  for t in range(num_tasks):
    base, ev, draw, r = _problem(first + t, n_base=60)
    ctx = Z.Context(base, ev)
    for i in range(pairs):
      sets = _attack_sets(base, draw, r, n=int(r.integers(10, 80)))
      s = list(sets.values())[i % len(sets)]
      f = ctx.features(s, spec, 1000)
      rows.append(f)
      gains.append(f[0] + rng.normal(0, 0.005))
      tasks.append(t)
  n = len(gains)
  g = np.asarray(gains, np.float32)
  return T.Table(
    x=np.stack(rows),
    gain=g,
    split_a=g + rng.normal(0, 0.005, n).astype(np.float32),
    split_b=g + rng.normal(0, 0.005, n).astype(np.float32),
    task=np.asarray(tasks),
    group=np.asarray(tasks) * 16,
    kind=np.asarray(["k"] * n),
    learner=np.asarray(["mlp32"] * n),
    source=np.asarray(["toy"] * n),
  )


def test_select_fit_save_load_round_trip(tmp_path):
  table = _toy_table()
  fitted, report = T.select_and_fit(table, M.NetConfig(steps=300, hidden=32), val_share=0.34)
  assert report["chosen"] in ("net", "gbm")
  # The target follows a feature: the chosen model ranks held-out tasks well.
  assert report["val_spearman"][report["chosen"]] > 0.6, report
  out = T.save(fitted, report, str(tmp_path / "model"))
  p = metaval.load_predictor(out)
  x = table.x[:5]
  np.testing.assert_allclose(p.predict(x)[0], fitted.predict(x)[0], rtol=1e-4, atol=1e-4)
  # The training rows' range (the model's domain) survives the round trip.
  np.testing.assert_array_equal(p.low, fitted.low)
  np.testing.assert_array_equal(p.high, fitted.high)
  # So does the interval, scaled per row: the loaded model's half-widths are the fit's.
  gain = fitted.predict(table.x)[1]
  np.testing.assert_allclose(
    p.half_widths(table.x, gain), fitted.half_widths(table.x, gain), rtol=1e-5
  )
  assert report["interval"]["q"] == fitted.scale.q > 0


def test_refit_uses_every_task_and_keeps_the_held_out_report():
  table = _toy_table()
  cfg = M.NetConfig(steps=300, hidden=32)
  held, held_report = T.select_and_fit(table, cfg, val_share=0.34)
  refit, report = T.select_and_fit(table, cfg, val_share=0.34, refit=True)
  assert report["refit_on_all_tasks"] and not held_report["refit_on_all_tasks"]
  assert report["chosen"] == held_report["chosen"]
  # The figures measured on held-out tasks are the training-task fit's, unchanged.
  assert report["val_spearman"] == held_report["val_spearman"]
  assert report["interval_half_width"] == held_report["interval_half_width"]
  assert report["interval"] == held_report["interval"]
  np.testing.assert_array_equal(refit.scale.coef, held.scale.coef)
  # The returned model is the chosen kind fitted on all tasks, not the held-out fit.
  whole = T.fit(table, report["chosen"], cfg, 0)
  np.testing.assert_allclose(refit.predict(table.x)[0], whole.predict(table.x)[0], atol=1e-6)
  assert np.abs(refit.predict(table.x)[0] - held.predict(table.x)[0]).max() > 1e-3
  # Its domain is the range of every row it was fitted on.
  np.testing.assert_array_equal(refit.low, table.x.min(0))
  np.testing.assert_array_equal(refit.high, table.x.max(0))


def test_zero_shot_scores_further_tables_with_the_same_models():
  from metaval.zeroshot import evaluate as E

  prior, beyond = _toy_table(), _toy_table(num_tasks=4, seed=1, first=900)
  out, report = E.zero_shot(prior, [], M.NetConfig(steps=200, hidden=16), tables={"b": beyond})
  scores, n, extra = out["b"]
  assert n == len(beyond.gain) == len(extra["predicted"])
  assert "KNN-Shapley sum" not in scores and "ceiling" in scores
  # The gain follows the ridge proxy on unseen tasks too: the chosen model ranks it.
  assert scores[f"chosen ({report['chosen']})"] > 0.6, scores


def test_within_rank_is_per_group():
  r = M.within_rank(np.array([0.1, 0.3, 0.2, 5.0, -5.0]), np.array([0, 0, 0, 1, 1]))
  np.testing.assert_allclose(r, [0.0, 1.0, 0.5, 1.0, 0.0])


@pytest.mark.slow
def test_zeroshot_train_job_end_to_end_on_a_tiny_prior(tmp_path):
  from metaval.configlib import load
  from metaval.jobs import zeroshot_train
  from metaval.prior import job as prior_job

  prior_dir = str(tmp_path / "prior")
  prior_job.generate(load("prior:tiny"), prior_dir)
  cfg = load(
    "zeroshot:quick",
    [
      f"--config.prior.from_prior={prior_dir}",
      "--config.prior.num_tasks=0",
      "--config.model.steps=50",
    ],
  )
  report = zeroshot_train.run(cfg, str(tmp_path / "zs"))
  assert report["train_tasks"] >= 1 and report["val_tasks"] >= 1
  p = metaval.load_predictor(str(tmp_path / "zs" / "model"))
  base, ev, draw, _ = _problem(0)
  assert np.isfinite(p.value(draw(20), base=base, eval=ev).targets[0].value)


@pytest.mark.parametrize("chunk", [Z.CHUNK, 60_000])
def test_batched_features_equal_one_at_a_time(chunk, monkeypatch):
  rng = np.random.default_rng(1)
  x, y = rng.normal(size=(900, 12)), rng.integers(0, 4, 900)
  spec = {"family": "mlp", "width": 32, "depth": 1, "steps": 100, "name": "mlp32"}
  # Sets of different sizes, one with a label B never uses, single points, a "couch"
  # (one input repeated under mixed labels: its distances to T tie exactly), copies of B.
  sets = [(x[300 + 37 * i : 305 + 44 * i], y[300 + 37 * i : 305 + 44 * i]) for i in range(8)]
  sets.append((x[:7], np.full(7, 9)))
  sets += [(x[250:251], y[250:251]), (x[251:253], y[251:253])]
  sets.append((np.repeat(x[260:261], 30, 0), rng.integers(0, 4, 30)))
  sets.append((x[:40], y[:40]))
  one = Z.Context((x[:200], y[:200]), (x[600:], y[600:]))
  many = Z.Context((x[:200], y[:200]), (x[600:], y[600:]))
  a = np.stack([one.features(s, spec, 1000) for s in sets])
  monkeypatch.setattr(Z, "CHUNK", chunk)  # 60,000 numbers: several batches
  np.testing.assert_allclose(many.features_many(sets, spec, 1000), a, rtol=1e-5, atol=1e-6)
  # The batched stepped softmax fit is the per-set one, B's sample weighted to stand
  # for all of a B larger than LOGIT_POINTS.
  big = Z.Context((x[:600], y[:600]), (x[600:], y[600:]))
  assert len(big.lx1) < 600 and big.lw * len(big.lx1) == pytest.approx(600)
  xs1 = np.c_[big.transform(sets[3][0]), np.ones(len(sets[3][1]))]
  ys1h = S.onehot(big.labels(sets[3][1]), big.k)
  w = np.r_[np.full(len(big.lx1), big.lw), np.ones(len(xs1))]
  per_set = SM.fit(np.r_[big.lx1, xs1], np.r_[big.ly1h, ys1h], w, init=big.theta_b)
  alone = SM.fit_many(big.lx1, big.ly1h, [(xs1, ys1h)], big.theta_b, big.lw)[0]
  np.testing.assert_allclose(alone, per_set, rtol=1e-9, atol=1e-12)
  pair = [(xs1[:5], ys1h[:5]), (xs1, ys1h)]  # B's products shared by two supplements
  batched = SM.fit_many(big.lx1, big.ly1h, pair, big.theta_b, big.lw)[1]
  np.testing.assert_allclose(batched, per_set, rtol=1e-9, atol=1e-12)


def test_batches_on_threads_equal_batches_in_turn(monkeypatch):
  """Many supplements are valued in batches on ``THREADS`` threads: the rows are the
  same bit for bit as on one thread (each batch is computed alone), and the pool is
  really used."""
  rng = np.random.default_rng(2)
  x, y = rng.normal(size=(700, 9)), rng.integers(0, 3, 700)
  spec = {"family": "linear", "name": "linear"}
  sets = [(x[200 + 23 * i : 210 + 31 * i], y[200 + 23 * i : 210 + 31 * i]) for i in range(12)]
  ctx = Z.Context((x[:200], y[:200]), (x[500:], y[500:]))
  monkeypatch.setattr(Z, "CHUNK", 40_000)  # several batches
  monkeypatch.setattr(Z, "THREADS", 1)
  in_turn = ctx.features_many(sets, spec, 100)
  used = []
  real = Z.threads.pool
  monkeypatch.setattr(Z.threads, "pool", lambda *a: used.append(a) or real(*a))
  monkeypatch.setattr(Z, "THREADS", 2)
  np.testing.assert_array_equal(ctx.features_many(sets, spec, 100), in_turn)
  assert used  # the batches did go to the pool
  used.clear()
  np.testing.assert_array_equal(ctx.features_many(sets[:1], spec, 100), in_turn[:1])
  assert not used  # one query stays on its own thread (no wait for the GIL)


# -- wide inputs -------------------------------------------------------------------


def test_inputs_up_to_max_width_are_used_whole():
  rng = np.random.default_rng(0)
  xb, xe = rng.normal(size=(60, Z.MAX_WIDTH)) * 3.0 + 1.0, rng.normal(size=(50, Z.MAX_WIDTH))
  yb, ye = np.arange(60) % 3, np.arange(50) % 3
  ctx = Z.Context((xb, yb), (xe, ye))
  assert ctx.proj is None
  np.testing.assert_array_equal(ctx.xb, ctx._standardise(xb))


@pytest.mark.parametrize("seed", range(2))
def test_wider_inputs_are_projected_on_b_and_t_together_not_on_b_alone(seed):
  # 40 base points in MAX_WIDTH + 88 features: B spans 40 directions. The map is
  # fitted on B's and T's points (a map of B's alone dropped what B does not span);
  # it is the same for every supplement (query-free).
  rng = np.random.default_rng(seed)
  width = Z.MAX_WIDTH + 88
  xb, yb = rng.normal(size=(40, width)), np.arange(40) % 3
  xe, ye = rng.normal(size=(120, width)), np.arange(120) % 3
  ctx = Z.Context((xb, yb), (xe, ye))
  assert ctx.proj.shape == (width, 160)  # every direction of the 160 fitted rows
  np.testing.assert_allclose(ctx.proj.T @ ctx.proj, np.eye(160), atol=1e-10)
  z = ctx._standardise(xe)
  kept = np.linalg.norm(ctx.xe, axis=1) / np.linalg.norm(z, axis=1)
  assert kept.min() > 0.999  # T's points lose nothing
  b_only = np.linalg.svd(ctx._standardise(xb), full_matrices=False)[2]
  assert (np.linalg.norm(z @ b_only.T, axis=1) / np.linalg.norm(z, axis=1)).max() < 0.5
  p = metaval.load_predictor()
  s1, s2 = (rng.normal(size=(30, width)), np.arange(30) % 3), (xe[:30] * 0.5, ye[:30])
  alone = p.value(s1, base=(xb, yb), eval=(xe, ye)).targets[0].value
  p.value(s2, base=(xb, yb), eval=(xe, ye))
  assert p.value(s1, base=(xb, yb), eval=(xe, ye)).targets[0].value == alone


def test_the_cached_context_follows_b_and_t_changed_in_place():
  p = metaval.load_predictor()
  base, ev, draw, _ = _problem(3)
  xb, yb = np.array(base[0]), np.array(base[1])
  xe, ye = np.array(ev[0]), np.array(ev[1])
  s = draw(30)
  ctx, _ = p.context((xb, yb), (xe, ye))
  assert p.context((xb.copy(), yb.copy()), (xe, ye))[0] is ctx  # same contents: reused
  yb[:20] = (yb[:20] + 1) % 3  # labels of B changed in place
  assert p.context((xb, yb), (xe, ye))[0] is not ctx
  fresh = metaval.load_predictor().value(s, base=(xb, yb), eval=(xe, ye)).targets[0].value
  assert p.value(s, base=(xb, yb), eval=(xe, ye)).targets[0].value == fresh
  ctx = p.context((xb, yb), (xe, ye))[0]
  xe[0, 0] += 1e-9  # one evaluation input nudged
  assert p.context((xb, yb), (xe, ye))[0] is not ctx


class _Frame:
  """A stand-in for a pandas DataFrame (named columns, ``to_numpy``): the predictor
  duck-types frames, so these tests need no pandas."""

  def __init__(self, columns: dict):
    self.columns = list(columns)
    self._values = np.array(list(zip(*columns.values())), dtype=object)

  def to_numpy(self, dtype=None):
    return self._values.astype(dtype) if dtype is not None else self._values

  def take(self, rows, columns=None):
    names = columns or self.columns
    return _Frame({c: self._values[rows, self.columns.index(c)] for c in names})


def _frame_task(seed: int = 0):
  base, ev, draw, rng = _problem(seed, width=4)
  colour = {0: "red", 1: "green", 2: "blue"}

  def frame(x, y, holes=False):
    cols = {f"f{j}": list(x[:, j]) for j in range(x.shape[1])}
    cols["colour"] = [
      colour[int(v)] if rng.random() < 0.8 else colour[int(rng.integers(3))] for v in y
    ]
    if holes:
      cols["f1"] = [None if i % 5 == 0 else v for i, v in enumerate(cols["f1"])]
      cols["colour"] = [None if i % 7 == 0 else v for i, v in enumerate(cols["colour"])]
    return _Frame(cols)

  return frame(*base, holes=True), base[1], frame(*ev), ev[1], draw, frame


def test_dataframes_with_text_columns_are_encoded_by_the_base_frame():
  fb, yb, fe, ye, draw, frame = _frame_task()
  p = metaval.load_predictor()
  xs, ys = draw(40)
  fs = frame(xs, ys)
  facts = p.value((fs, ys), base=(fb, yb), eval=(fe, ye))
  assert facts.warnings == []
  # Columns are taken by name: the same supplement with its columns reversed.
  again = p.value((fs.take(slice(None), fs.columns[::-1]), ys), base=(fb, yb), eval=(fe, ye))
  assert again.targets[0].value == facts.targets[0].value
  # The colour column carries the class here: dropping its information changes the value.
  grey = _Frame({**{c: fs.to_numpy()[:, j] for j, c in enumerate(fs.columns[:-1])},
                 "colour": ["grey"] * len(ys)})  # fmt: skip
  odd = p.value((grey, ys), base=(fb, yb), eval=(fe, ye))
  assert odd.targets[0].value != facts.targets[0].value
  assert any("40 cell(s) of column 'colour' hold levels the base data does not have (e.g. 'grey')"
             in w for w in odd.warnings)  # fmt: skip
  # A plain array of the raw width once B was such a frame: refused in one line.
  with pytest.raises(MetavalError, match="B was a DataFrame with text columns") as e:
    p.value((xs, ys), base=(fb, yb), eval=(fe, ye))
  assert "\n" not in str(e.value)
  # A column of numbers and some text in B's frame is refused naming the cell.
  bad = _Frame({"a": [1.0, 2.0, "3 kg", 4.0, 5.0, 6.0], "b": [0.0, 1.0] * 3})
  with pytest.raises(MetavalError, match=r"base: column 'a' holds numbers and some text"):
    p.value((xs, ys), base=(bad, np.arange(6) % 2))


def test_a_frame_of_numbers_is_valued_as_its_array():
  base, ev, draw, _ = _problem(1)
  p = metaval.load_predictor()
  s = draw(30)

  def as_frame(x):
    return _Frame({f"c{j}": list(x[:, j]) for j in range(x.shape[1])})

  want = p.value(s, base=base, eval=ev).targets[0].value
  got = p.value((as_frame(s[0]), s[1]), base=(as_frame(base[0]), base[1]), eval=ev)
  assert got.targets[0].value == want


def test_pandas_frames_and_a_bunch_as_frame():
  pd = pytest.importorskip("pandas")
  from sklearn.datasets import load_wine

  bunch = load_wine(as_frame=True)
  p = metaval.load_predictor()
  plain = p.value((bunch.data.to_numpy()[:30], bunch.target.to_numpy()[:30]), base=load_wine())
  framed = p.value((bunch.data.iloc[:30], bunch.target.iloc[:30]), base=bunch)
  assert framed.targets[0].value == plain.targets[0].value
  df = bunch.data.copy()
  df["grade"] = pd.Series(np.where(df["alcohol"] > 13, "high", "low")).astype("category")
  df.loc[::9, "grade"] = None
  df.loc[::13, "ash"] = np.nan
  rows = np.random.default_rng(0).permutation(len(df))
  b, s, t = rows[:90], rows[90:130], rows[130:]
  y = bunch.target.to_numpy()
  facts = p.value((df.iloc[s], y[s]), base=(df.iloc[b], y[b]), eval=(df.iloc[t], y[t]))
  assert np.isfinite(facts.targets[0].value)


def test_base_and_eval_frames_are_encoded_once_and_again_when_they_change(monkeypatch):
  from metaval.zeroshot import inputs as zinputs
  from metaval.zeroshot import predictor as zpred

  fb, yb, fe, ye, draw, frame = _frame_task(2)
  # The stand-in frame's digest (pandas frames get pandas' row hashes).
  monkeypatch.setattr(
    zpred, "frame_digest", lambda f: f.to_numpy().tobytes() if isinstance(f, _Frame) else None
  )
  reads = []
  real = zinputs.frame_rows
  monkeypatch.setattr(zinputs, "frame_rows", lambda f, what: reads.append(what) or real(f, what))
  p = metaval.load_predictor()
  xs, ys = draw(30)
  fs = frame(xs, ys)
  first = p.value((fs, ys), base=(fb, yb), eval=(fe, ye))
  assert reads == ["base", "eval", "supplemental"]
  again = p.value((fs, ys), base=(fb, yb), eval=(fe, ye))
  assert reads[3:] == ["supplemental"] and again.targets[0].value == first.targets[0].value
  # The same inputs under other labels: the kept encoding, the new labels.
  flipped = p.value((fs, ys), base=(fb, (yb + 1) % 3), eval=(fe, ye))
  assert reads[4:] == ["supplemental"] and flipped.targets[0].value != first.targets[0].value
  # Another base frame: read again, and the evaluation frame with it (its table, fitted
  # on the new base, has other medians).
  other = fb.take(np.arange(len(yb) - 10))
  p.value((fs, ys), base=(other, yb[:-10]), eval=(fe, ye))
  assert reads[5:] == ["base", "eval", "supplemental"]
