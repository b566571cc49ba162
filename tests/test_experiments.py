"""The experiment runner and every experiment's quick mode."""

import json

import pytest

from metaval.errors import MetavalError
from metaval.jobs import experiment as experiments
from metaval.util import env


def test_seven_experiments_are_registered():
  names = experiments.list_experiments()
  assert [n.split("_")[0] for n in names] == [f"e{i}" for i in range(1, 8)], names


def test_unknown_experiment_and_mode_are_clear_errors():
  with pytest.raises(MetavalError, match="unknown experiment 'e9'; available: e1_"):
    experiments.run_experiment("e9")
  with pytest.raises(MetavalError, match="mode must be quick or full"):
    experiments.run_experiment("e1", mode="huge")


def test_results_table_formats_every_column():
  md = experiments.results_table([{"a": 1.23456, "b": "x"}, {"a": float("nan"), "c": 3}])
  lines = md.strip().splitlines()
  assert lines[0] == "| a | b | c |"
  assert "1.235" in lines[2] and "n/a" in lines[3]
  assert lines[2] == "| 1.235 | x |  |"  # a missing cell stays empty


def _record(name: str, machine: dict) -> dict:
  return {
    "name": name,
    "title": "E9 a title",
    "claim": "a claim",
    "mode": "full",
    "command": f"metaval experiment {name} --mode full",
    "date": "2026-11-30T00:00:00+00:00",
    "seconds": 3.0,
    "machine": machine,
    "rows": [{"x": 1.5}],
    "notes": [],
    "plots": [],
    "extra_tables": {},
    "markdown": "",
  }


def test_table_header_records_the_package_versions():
  machine = {"cpu": "cpu", "cores": 2, "accelerator": "cpu", "python": "3", "jax": "0"}
  old = experiments.render(_record("e9_x", machine))
  assert ", jax 0, 3 s." in old  # records made before versions were recorded
  versions = env.versions()
  assert list(versions) == ["python", *env.VERSIONED]
  assert all(v != "missing" for v in versions.values()), versions
  new = experiments.render(_record("e9_x", {**machine, "versions": versions}))
  for dist in ("python", "jax", "jaxlib", "flax", "optax", "numpy", "scipy", "scikit-learn"):
    assert f"{dist} {versions[dist]}" in new


def test_readme_is_rebuilt_in_the_given_results_folder(tmp_path):
  names = experiments.list_experiments()
  folder = tmp_path / "results" / names[0]
  folder.mkdir(parents=True)
  (folder / "table.json").write_text(json.dumps(_record(names[0], env.machine())))
  text = experiments.rebuild_readme(str(tmp_path))
  assert (tmp_path / "README.md").read_text() == text
  assert "## E9 a title" in text and "numpy " in text
  assert f"Not run yet: `metaval experiment {names[1]} --mode full`" in text


@pytest.mark.slow
@pytest.mark.parametrize("name", experiments.list_experiments())
def test_quick_mode_runs_and_writes_its_table(name, tmp_path):
  experiments.run_experiment(name, "quick", workdir=str(tmp_path))
  record = json.loads((tmp_path / "table.json").read_text())
  assert record["mode"] == "quick" and record["machine"]["cores"] >= 1
  assert record["machine"]["versions"]["numpy"] != "missing"
  assert record["rows"] or record["markdown"], "an experiment must produce a table"
  assert (tmp_path / "table.md").read_text().startswith("## E")
