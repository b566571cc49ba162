"""The experiment runner and every experiment's quick mode."""

import json

import pytest

from metaval import experiments
from metaval.errors import MetavalError


def test_seven_experiments_are_registered():
  names = experiments.list_experiments()
  assert [n.split("_")[0] for n in names] == [f"e{i}" for i in range(1, 8)], names


def test_unknown_experiment_and_mode_are_clear_errors():
  with pytest.raises(MetavalError, match="unknown experiment 'e9'; available: e1_"):
    experiments.run_experiment("e9")
  with pytest.raises(MetavalError, match="mode must be quick or full"):
    experiments.run_experiment("e1", mode="huge")


def test_markdown_table_formats_every_column():
  md = experiments.markdown_table([{"a": 1.23456, "b": "x"}, {"a": float("nan"), "c": 3}])
  lines = md.strip().splitlines()
  assert lines[0] == "| a | b | c |"
  assert "1.235" in lines[2] and "n/a" in lines[3]


@pytest.mark.slow
@pytest.mark.parametrize("name", experiments.list_experiments())
def test_quick_mode_runs_and_writes_its_table(name, tmp_path):
  experiments.run_experiment(name, "quick", workdir=str(tmp_path))
  record = json.loads((tmp_path / "table.json").read_text())
  assert record["mode"] == "quick" and record["machine"]["cores"] >= 1
  assert record["rows"] or record["markdown"], "an experiment must produce a table"
  assert (tmp_path / "table.md").read_text().startswith("## E")
