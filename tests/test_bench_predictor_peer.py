"""The pyDVL peer benchmark's own parts (no torch): folds, exported sets and scoring."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import load_script

from metaval.errors import MetavalError
from metaval.learners.models import LearnerSpec
from metaval.zeroshot import train as T
from metaval.zeroshot.labels import TaskLabels

peer = load_script("bench_predictor_peer")


def _labels(seed: int, pairs: int = 24, width: int = 5, classes: int = 3) -> TaskLabels:
  """A small task's labels: raw inputs with offsets and scales, two bases, two learners."""
  rng = np.random.default_rng(seed)
  scale, offset = rng.uniform(0.5, 20.0, width), rng.normal(0, 50.0, width)

  def draw(n):
    return rng.normal(0, 1, (n, width)) * scale + offset, rng.integers(0, classes, n)

  specs = [LearnerSpec(family="mlp", width=32, steps=10), LearnerSpec(family="linear", steps=10)]
  return TaskLabels(
    task_id=3,
    name="toy",
    x_eval=draw(60)[0].astype(np.float32),
    y_eval=np.arange(60) % classes,
    bases=[draw(40), draw(50)],
    base_of=np.arange(pairs) % 2,
    supp=[draw(int(rng.integers(5, 30))) for _ in range(pairs)],
    kind=np.asarray(["clean", "label_noise"] * (pairs // 2)),
    learners=[{"name": n, **s.to_dict()} for n, s in zip(("mlp32", "linear"), specs)],
    learner_params=[100, 20],
    gain=rng.normal(0, 0.05, (pairs, 2)),
    spread=np.full((pairs, 2), 0.01),
    split_a=rng.normal(0, 0.05, (pairs, 2)),
    split_b=rng.normal(0, 0.05, (pairs, 2)),
  )


@pytest.mark.parametrize("n,k,seed", [(26, 5, 0), (54, 5, 1), (10, 2, 7), (9, 9, 3)])
def test_folds_partition_the_pairs_and_never_train_on_a_test_pair(n, k, seed):
  folds = peer.pair_folds(n, k, seed)
  assert len(folds) == k
  tests = np.concatenate([te for _, te in folds])
  assert np.array_equal(np.sort(tests), np.arange(n))  # every pair held out exactly once
  for tr, te in folds:
    assert np.intersect1d(tr, te).size == 0
    assert np.array_equal(np.union1d(tr, te), np.arange(n))
    assert n // k <= len(te) <= n // k + 1


def test_folds_refuse_bad_counts():
  with pytest.raises(MetavalError, match="folds"):
    peer.pair_folds(5, 1, 0)
  with pytest.raises(MetavalError, match="folds"):
    peer.pair_folds(5, 6, 0)


def test_export_keeps_test_labels_out_of_training_and_standardises_by_the_base():
  tl = _labels(0)
  arrays, folds = peer.export([tl, _labels(1, pairs=16)], k=4, seed=0)
  fits = [k[: -len("__train")] for k in arrays if k.endswith("__train")]
  assert len(fits) == 2 * 2 * 4  # tasks × learners × folds
  for fit in fits:
    t, j = int(fit[1]), int(fit.split("__l")[1][0])
    tr, te = arrays[fit + "__train"], arrays[fit + "__test"]
    assert np.intersect1d(tr, te).size == 0
    gains = [tl, _labels(1, pairs=16)][t].gain[:, j]
    np.testing.assert_array_equal(arrays[fit + "__target"], gains[tr])
  points, offsets = arrays["t0__points"], arrays["t0__offsets"]
  assert offsets[-1] == len(points) == sum(len(y) for _, y in tl.supp)
  for i in (0, 1, 5):
    xs, ys = tl.supp[i]
    xb = tl.bases[tl.base_of[i]][0]
    sd = np.where(xb.std(0) > 1e-8, xb.std(0), 1.0)
    el = points[offsets[i] : offsets[i + 1]]
    np.testing.assert_allclose(el[:, : xs.shape[1]], (xs - xb.mean(0)) / sd, rtol=1e-4, atol=1e-4)
    onehot = el[:, xs.shape[1] :]
    assert np.all(onehot.sum(1) == 1) and np.array_equal(onehot.argmax(1), ys)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scoring_a_perfect_peer_gives_spearman_one_and_a_reversed_one_minus_one(seed):
  tl = _labels(seed)
  arrays, folds = peer.export([tl], k=4, seed=seed)
  # Stage 2 replaced by a perfect predictor of each held-out pair's own label.
  preds = {k[: -len("__test")]: None for k in arrays if k.endswith("__test")}
  for fit in preds:
    j = int(fit.split("__l")[1][0])
    preds[fit] = tl.gain[arrays[fit + "__test"], j]
  oof = peer.out_of_fold(preds, 0, folds[0], len(tl.supp), len(tl.learners))
  np.testing.assert_array_equal(oof, tl.gain)
  rows = T.task_rows(tl)
  pair, learner = peer.row_index(tl)
  np.testing.assert_allclose(rows.gain, tl.gain[pair, learner], rtol=1e-6)
  noise = np.random.default_rng(seed).permutation(len(pair)).astype(float)
  sc = peer.scores(
    rows,
    pair,
    {"perfect": oof[pair, learner], "reversed": -oof[pair, learner], "noise": noise},
    folds[0],
  )
  assert sc["perfect"]["spearman"] > 0.999 and sc["perfect"]["fold_mean"] > 0.999
  assert sc["reversed"]["spearman"] < -0.999
  assert abs(sc["noise"]["spearman"]) < 0.8
  assert len(sc["perfect"]["per_fold"]) == 4


def test_e2_adds_the_peer_rows_only_for_the_label_files_it_was_scored_on(tmp_path, monkeypatch):
  from metaval.jobs.experiments import e2_predictor as E2
  from metaval.util import io

  real = tmp_path / "real_labels"
  real.mkdir()
  (real / "task_00000.pkl").write_bytes(b"wine labels")
  (real / "task_00001.pkl").write_bytes(b"digits labels, changed since")
  peer_json = tmp_path / "zeroshot_peer.json"
  monkeypatch.setattr(E2, "PEER", str(peer_json))
  assert E2._peer_rows(str(real)) == ([], [])  # no peer run: nothing added

  def task(file, sha, rho):
    return {
      "labels_file": file,
      "labels_sha256": sha,
      "rows": 52,
      "pydvl": {"spearman": rho},
      "ceiling": 0.6,
    }

  io.write_json(
    str(peer_json),
    {
      "note": "pyDVL utility learning: in-task K-fold.",
      "tasks": {
        "wine": task("task_00000.pkl", io.file_sha256(str(real / "task_00000.pkl")), 0.25),
        "digits": task("task_00001.pkl", "0" * 64, 0.5),
      },
    },
  )
  rows, notes = E2._peer_rows(str(real))
  assert [(r["split"], r["spearman"]) for r in rows] == [("zero-shot wine", 0.25)]
  assert rows[0]["estimator"] == "pyDVL utility learning (DeepSets, in-task K-fold)"
  assert rows[0]["ceiling (split-half Spearman)"] == 0.6 and rows[0]["test rows"] == 52
  assert len(notes) == 1 and E2.PEER_COMMAND in notes[0]
