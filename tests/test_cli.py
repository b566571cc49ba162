"""Configs and the command line."""

import glob
import json
import os
import subprocess
import sys

import ml_collections
import pytest

from metaval import cli
from metaval.configlib import ConfigError, load, load_config_file

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(REPO, "configs", "*.py"))))
def test_every_config_loads_locked_with_a_documented_command(path):
  cfg = load_config_file(path)
  assert isinstance(cfg, ml_collections.ConfigDict)
  with pytest.raises(AttributeError):
    cfg.no_such_field_anywhere = 1  # locked: typos cannot add keys
  import importlib.util

  spec = importlib.util.spec_from_file_location("cfgmod", path)
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  doc = mod.__doc__ or ""
  assert "metaval " in doc, f"{path}: docstring must give the command"
  assert "xpected" in doc, f"{path}: docstring must give the expected runtime/result"
  load_config_file(path + ":quick")  # every config has a quick variant


def test_overrides_keep_types_and_reject_unknown_keys():
  cfg = load(
    os.path.join(REPO, "configs/fit.py"), ["--config.learner.width=32", "--config.learner.lr=1e-3"]
  )
  assert cfg.learner.width == 32 and cfg.learner.lr == 1e-3
  with pytest.raises(ConfigError, match="unknown config key 'learner.widht'.*learner.width"):
    load(os.path.join(REPO, "configs/fit.py"), ["--config.learner.widht=3"])
  with pytest.raises(ConfigError, match="expected int"):
    load(os.path.join(REPO, "configs/fit.py"), ["--config.num_models=many"])
  with pytest.raises(ConfigError, match="not found"):
    load("configs/nope.py")
  with pytest.raises(ConfigError, match="unknown variant"):
    load(os.path.join(REPO, "configs/fit.py:huge"))


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
      os.path.join(REPO, "configs/fit.py:quick"),
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
