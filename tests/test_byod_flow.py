"""Bring your own data: a CSV goes through generate -> train -> evaluate -> value -> report.

Everything runs through the command line (``metaval.cli.main``), as a user would type
it, on a small CSV the test writes: string class names, a label column that is not
called ``label``, features on very different scales, and a supplement CSV whose
columns come in another order.
"""

import csv
import json
import os

import numpy as np
import pytest
from sklearn.datasets import make_classification

import metaval.api as api
from metaval import cli
from metaval.data import read_csv, task_slug
from metaval.labeling import load_labels

pytestmark = pytest.mark.slow

CLASSES = np.array(["low", "mid", "high"])
FEATURES = [f"f{i}" for i in range(6)]


def _write(path, header, rows):
  with open(path, "w", newline="") as fh:
    w = csv.writer(fh)
    w.writerow(header)
    w.writerows(rows)


def _write_data(folder):
  x, y = make_classification(
    n_samples=360, n_features=6, n_informative=4, n_redundant=0, n_classes=3, random_state=0
  )
  # Raw features far from standardised: the task's transform must do the mapping.
  x = x * np.array([1, 10, 100, 0.1, 5, 2]) + np.array([0, 50, -300, 1, 0, 7])
  cells = lambda xi: [f"{v:.6g}" for v in xi]  # noqa: E731
  _write(
    folder / "my.csv", [*FEATURES, "target"], [cells(x[i]) + [CLASSES[y[i]]] for i in range(300)]
  )
  # The supplement: same columns, label first and features reversed.
  _write(
    folder / "supp.csv",
    ["target", *FEATURES[::-1]],
    [[CLASSES[y[i]], *cells(x[i])[::-1]] for i in range(300, 360)],
  )


def _cli(*args):
  rc = cli.main(list(args))
  assert rc == 0, args
  return rc


def test_a_csv_goes_through_generate_train_evaluate_value_report(tmp_path, monkeypatch, capsys):
  monkeypatch.chdir(tmp_path)
  _write_data(tmp_path)
  task = ["--config.task.name=csv:my.csv", "--config.task.label=target"]
  _cli(
    "generate", "--config", "labels:tiny", *task, "--config.local_workers=0", "--workdir", "labels"
  )
  labels = load_labels("labels", "csv:my.csv")
  assert os.path.isdir(os.path.join("labels", task_slug("csv:my.csv")))
  assert labels.task == "csv:my.csv" and labels.task_options == {"label": "target"}
  assert len(labels) == 32

  predictor_args = [
    "--config",
    "predictor:quick",
    *task,
    "--config.labels.configs=('labels:tiny',)",
    "--config.labels.workdirs=('labels',)",
    "--config.features.cache_dir=",
    "--config.train.epochs=3",
    "--config.train.batch_size=8",
  ]
  _cli("train", *predictor_args, "--workdir", "predictor")
  with open(os.path.join("predictor", "predictor.json")) as fh:
    stored = json.load(fh)["tasks"]
  assert list(stored) == ["csv:my.csv"]
  assert stored["csv:my.csv"]["options"] == {"label": "target"}  # rebuilds the task

  _cli("evaluate", *predictor_args, "--config.eval.splits=('pairs',)", "--workdir", "evaluate")
  assert os.path.isfile(os.path.join("evaluate", "eval.md"))

  value_args = ["--config", "value:quick", "--config.predictor=predictor"]
  _cli("value", *value_args, "--config.supplement.path=supp.csv", "--workdir", "value")
  with open(os.path.join("value", "facts.json")) as fh:
    facts = json.load(fh)
  assert facts["task"] == "csv:my.csv" and facts["supplement_size"] == 60
  # The command read the CSV's raw columns by name (in another order) and its class
  # names: the Python API on the same raw rows gives the same value.
  p = api.load_predictor("predictor")
  x, y, _ = read_csv("supp.csv", label="target", columns=FEATURES)
  direct = p.value((x, y))
  for got, want in zip(facts["targets"], direct.targets, strict=True):
    assert got["value"] == pytest.approx(want.value, abs=1e-6)

  _cli("report", *value_args, "--config.supplement.path=supp.csv", "--workdir", "report")
  for ext in ("json", "html", "png"):
    assert os.path.getsize(os.path.join("report", f"nutrition_facts.{ext}")) > 0
  capsys.readouterr()
