"""Helpers shared by the experiment scripts (not an experiment itself)."""

from __future__ import annotations

import os

from metaval.configlib import load

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def config(name: str, variant: str | None, overrides=()):
  """Loads ``configs/<name>.py[:variant]`` with ``--config.*`` style overrides."""
  spec = os.path.join(REPO, "configs", f"{name}.py") + (f":{variant}" if variant else "")
  return load(spec, list(overrides))


def read(path: str) -> str:
  with open(path) as f:
    return f.read()
