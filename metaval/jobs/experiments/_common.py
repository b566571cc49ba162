"""Helpers shared by the experiment modules (not an experiment itself)."""

from __future__ import annotations

from metaval.configlib import load


def config(name: str, variant: str | None, overrides=()):
  """Loads the packaged config ``<name>[:variant]`` with ``--config.*`` style overrides."""
  return load(name + (f":{variant}" if variant else ""), list(overrides))


def read(path: str) -> str:
  """A text file's contents."""
  with open(path) as f:
    return f.read()
