"""scripts/eval_zeroshot_real.py: the shipped model on freshly labelled real tasks."""

from __future__ import annotations

import json

import numpy as np
from conftest import load_script

from metaval.zeroshot import features as Z


def test_scores_the_model_next_to_every_proxy_and_reuses_its_labels(tmp_path):
  script = load_script("eval_zeroshot_real")
  args = ["--quick", "--tasks", "breast_cancer", "--labels", str(tmp_path / "labels")]
  out = script.main(args + ["--out", str(tmp_path / "a")])
  (row,) = out["tasks"]
  assert row["task"] == "breast_cancer" and row["rows"] >= 8 and out["label_files_reused"] == 0
  assert set(row["proxies"]) == set(Z.PROXIES)
  assert row["best proxy"] == max(v for v in row["proxies"].values() if np.isfinite(v))
  for key in ("model", "best proxy", "KNN-Shapley sum", "ceiling", "gain Pearson"):
    assert -1.0 <= row[key] <= 1.0, (key, row[key])
  assert 0.0 <= row["interval coverage"] <= 1.0
  # A second run reads the labels the first one made and gives the same scores.
  again = script.main(args + ["--out", str(tmp_path / "b")])
  assert again["label_files_reused"] == 1 and again["tasks"] == out["tasks"]
  assert json.load(open(tmp_path / "b.json"))["tasks"][0]["model"] == row["model"]
  assert "| breast_cancer |" in (tmp_path / "b.md").read_text()
