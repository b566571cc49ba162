import os

import pytest

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
# The test process never uses a persistent JAX cache from the environment: tests that
# count traces (``TRACE_COUNTS``) would otherwise see programs loaded whole
# (``metaval.util.aot``). Tests of the cache set their own folder.
os.environ.pop("JAX_COMPILATION_CACHE_DIR", None)


def load_script(name: str):
  """Import `scripts/<name>.py` as a module (scripts are not a package)."""
  import importlib.util

  path = os.path.join(os.path.dirname(__file__), "..", "scripts", f"{name}.py")
  spec = importlib.util.spec_from_file_location(name, path)
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod


@pytest.fixture(scope="module")
def wine_heldout():
  """The tiny label config on wine and six held-out pairs: ``(cfg, task, pairs)``."""
  from metaval.configlib import load
  from metaval.data import get_task
  from metaval.valuation import compare

  cfg = load("labels:tiny", ["--config.task.name=wine"])
  task = get_task("wine", seed=int(cfg.task.seed))
  return cfg, task, compare.heldout_pairs(cfg, task, 6, seed=11)
