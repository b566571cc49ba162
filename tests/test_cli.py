"""Configs and the command line."""

import importlib
import json
import os
import subprocess
import sys

import ml_collections
import pytest

from metaval import cli
from metaval.configlib import ConfigError, available_configs, load, load_config_file

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS_DIR = os.path.join(REPO, "metaval", "configs")


def test_packaged_configs_are_every_config_module():
  on_disk = sorted(f[:-3] for f in os.listdir(CONFIGS_DIR) if f.endswith(".py") and f[0] != "_")
  assert available_configs() == on_disk
  assert {"labels", "predictor", "value", "fit"} <= set(on_disk)


@pytest.mark.parametrize("name", available_configs())
def test_every_config_loads_locked_with_a_documented_command(name):
  cfg = load_config_file(name)
  assert isinstance(cfg, ml_collections.ConfigDict)
  with pytest.raises(AttributeError):
    cfg.no_such_field_anywhere = 1  # locked: typos cannot add keys
  mod = importlib.import_module(f"metaval.configs.{name}")
  doc = mod.__doc__ or ""
  assert "metaval " in doc, f"{name}: docstring must give the command"
  assert "xpected" in doc, f"{name}: docstring must give the expected runtime/result"
  assert "configs/" not in doc, f"{name}: name packaged configs as {name}:variant, not by path"
  load_config_file(name + ":quick")  # every config has a quick variant


def test_a_config_file_path_loads_like_its_packaged_name():
  path = os.path.join(CONFIGS_DIR, "fit.py")
  assert load(path + ":quick").to_dict() == load("fit:quick").to_dict()
  assert load(path).to_dict() == load("fit").to_dict()


def test_unknown_config_name_lists_the_packaged_ones():
  with pytest.raises(ConfigError, match="unknown config 'nope'; packaged configs: ablation, "):
    load("nope:quick")
  with pytest.raises(ConfigError, match="not found.*available: ablation"):
    load("configs/labels.py:quick")  # the old repo path is not a file any more


def test_overrides_keep_types_and_reject_unknown_keys():
  cfg = load("fit", ["--config.learner.width=32", "--config.learner.lr=1e-3"])
  assert cfg.learner.width == 32 and cfg.learner.lr == 1e-3
  with pytest.raises(ConfigError, match="unknown config key 'learner.widht'.*learner.width"):
    load("fit", ["--config.learner.widht=3"])
  with pytest.raises(ConfigError, match="expected int"):
    load("fit", ["--config.num_models=many"])
  with pytest.raises(ConfigError, match="not found"):
    load("nope/nope.py")
  with pytest.raises(ConfigError, match="unknown variant"):
    load("fit:huge")


def _run_cli(*args):
  return subprocess.run(
    [sys.executable, "-m", "metaval", *args], cwd=REPO, capture_output=True, text=True, timeout=300
  )


def test_cli_errors_are_one_line_without_traceback():
  for args, needle in [
    (["fit", "--config.learner.widht=3"], "unknown config key"),
    (["fit", "--config.task.name=mnist"], "unknown task 'mnist'; available tasks"),
    (["fit", "--config.learner.family=cnn"], "unknown learner family"),
    (["fit", "--config.subset_size=0"], "subset_size"),
  ]:
    r = _run_cli(*args)
    assert r.returncode == 2, r.stderr
    assert needle in r.stderr
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_cli_fit_runs_and_writes_metrics(tmp_path):
  rc = cli.main(
    [
      "fit",
      "--config",
      "fit:quick",
      "--config.num_models",
      "3",
      "--config.learner.steps=50",
      "--workdir",
      str(tmp_path),
    ]
  )
  assert rc == 0
  out = json.loads((tmp_path / "fit_metrics.json").read_text())
  assert out["learner"]["steps"] == 50
  assert out["metrics"]["test/accuracy"]["mean"] > 0.8


def test_every_command_runs_a_job_with_a_packaged_default_config():
  from metaval.jobs import COMMANDS

  jobs = [j for e in COMMANDS.values() for j in (e.values() if isinstance(e, dict) else [e])]
  assert len(jobs) == 15
  for job in jobs:
    assert callable(job.load()), job
    load_config_file(job.default_config)  # the default is a packaged name, not a repo path
