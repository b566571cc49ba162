"""The packed tree ensemble predicts exactly what scikit-learn's model predicts."""

from __future__ import annotations

import numpy as np
import pytest
import threadpoolctl
from sklearn.ensemble import HistGradientBoostingRegressor

import metaval
from metaval.errors import MetavalError
from metaval.zeroshot import model as M
from metaval.zeroshot import train as T
from metaval.zeroshot.trees import Forest, Stacked


def _fitted(seed: int, loss: str):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(600, 7)).astype(np.float32)
  y = np.sin(2 * x[:, 0]) + x[:, 1] * x[:, 2] + 0.1 * rng.normal(size=600)
  # One OpenMP thread: on a loaded machine its threads mostly wait for each other.
  with threadpoolctl.threadpool_limits(1):
    model = HistGradientBoostingRegressor(loss=loss, max_iter=60, random_state=seed).fit(x, y)
  return model, rng


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("loss", ["squared_error", "absolute_error"])
def test_packed_forest_matches_sklearn(seed, loss):
  model, rng = _fitted(seed, loss)
  forest = Forest.from_sklearn(model)
  x = (3 * rng.normal(size=(300, 7))).astype(np.float32)
  # Inputs exactly on split thresholds must take the same (left) branch.
  thresholds = forest.threshold[np.isfinite(forest.threshold)]
  x[:50, 0] = rng.choice(thresholds, 50).astype(np.float32)
  np.testing.assert_allclose(forest.predict(x), model.predict(x), rtol=0, atol=1e-9)
  np.testing.assert_allclose(forest.predict(x[:1]), model.predict(x[:1]), rtol=0, atol=1e-9)


def test_stacked_forests_predict_what_each_forest_predicts():
  # Forests of different sizes and depths walked as one; NaN inputs go right in both.
  a = Forest.from_sklearn(_fitted(0, "squared_error")[0])
  rng = np.random.default_rng(1)
  x = rng.normal(size=(600, 7))
  with threadpoolctl.threadpool_limits(1):
    small = HistGradientBoostingRegressor(max_iter=20, max_leaf_nodes=5, random_state=0)
    b = Forest.from_sklearn(small.fit(x, x[:, 3] ** 2))
  assert a.feature.shape != b.feature.shape and a.depth != b.depth
  stacked = Stacked([a, b])
  q = 2 * rng.normal(size=(400, 7))
  q[::7, 2] = np.nan
  for rows in (q[:1], q[:5], q):  # few rows test every node at once; many walk
    for forest, got in zip((a, b), stacked.predict(rows)):
      np.testing.assert_array_equal(got, forest.predict(rows))


def test_forest_arrays_round_trip_and_damage_is_refused(tmp_path):
  model, rng = _fitted(0, "squared_error")
  forest = Forest.from_sklearn(model)
  path = tmp_path / "f.npz"
  np.savez(path, **forest.to_arrays("m/"))
  with np.load(path) as z:
    again = Forest.from_arrays(z, "m/")
  x = rng.normal(size=(40, 7))
  np.testing.assert_array_equal(again.predict(x), forest.predict(x))
  arrays = forest.to_arrays()
  for child in ("left", "right"):
    for shift in (10_000, -10_000):
      with pytest.raises(MetavalError, match="child ids"):
        Forest.from_arrays(dict(arrays, **{child: arrays[child] + shift}))
  with pytest.raises(MetavalError, match="lack 'value'"):
    Forest.from_arrays({k: v for k, v in arrays.items() if k != "value"})


def test_saved_gbm_model_predicts_like_the_fitted_one(tmp_path):
  rng = np.random.default_rng(0)
  n, f = 240, 6
  x = rng.normal(size=(n, f)).astype(np.float32)
  task = np.repeat(np.arange(12), n // 12)
  gain = (x[:, 0] + 0.1 * rng.normal(size=n)).astype(np.float32)
  table = T.Table(
    x=np.pad(x, ((0, 0), (0, len(T.Z.FEATURE_NAMES) - f))),
    gain=gain,
    split_a=gain,
    split_b=gain,
    task=task,
    group=task * 16,
    kind=np.asarray(["k"] * n),
    learner=np.asarray(["mlp32"] * n),
    source=np.asarray(["toy"] * n),
  )
  fitted = T.fit(table, "gbm", M.NetConfig())
  report = {"interval_half_width": 0.01, "coverage": 0.9}
  out = T.save(fitted, report, str(tmp_path / "model"))
  p = metaval.load_predictor(out)
  rows = table.x[:30]
  for got, want in zip(p.predict(rows), fitted.predict(rows)):
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)


def _synthetic_labels(task_id: int, seed: int):
  """A hand-made ``TaskLabels`` (random gains): featurising it needs no training."""
  from metaval.zeroshot.labels import TaskLabels

  rng = np.random.default_rng(seed)
  x, y = rng.normal(size=(300, 5)), rng.integers(0, 3, 300)
  bases = [(x[:60], y[:60]), (x[60:120], y[60:120])]
  supp = [(x[120 + 20 * i : 140 + 20 * i], y[120 + 20 * i : 140 + 20 * i]) for i in range(6)]
  gain = rng.normal(size=(6, 1))
  return TaskLabels(
    task_id=task_id,
    name="toy",
    x_eval=x[240:],
    y_eval=y[240:],
    bases=bases,
    base_of=np.array([0, 0, 0, 1, 1, 1]),
    supp=supp,
    kind=np.array(["clean"] * 6),
    learners=[{"name": "mlp32", "family": "mlp", "width": 32, "depth": 1, "steps": 100}],
    learner_params=[307],
    gain=gain,
    spread=np.zeros_like(gain),
    split_a=gain,
    split_b=gain,
  )


def test_parallel_featurisation_gives_the_same_table():
  labels = [_synthetic_labels(i, seed=i) for i in range(3)]
  one, two = T.table(labels), T.table(labels, workers=2)
  np.testing.assert_array_equal(one.task, two.task)
  np.testing.assert_array_equal(one.gain, two.gain)
  np.testing.assert_allclose(one.x, two.x, rtol=1e-5, atol=1e-6)
