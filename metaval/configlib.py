"""Loading ``configs/*.py`` files and applying ``--config.a.b=value`` overrides.

A config file defines ``get_config(arg=None) -> ml_collections.ConfigDict``. It is
named on the command line as ``path/to/file.py`` or ``path/to/file.py:arg`` (e.g.
``configs/labels.py:quick``). The returned dict is locked, so an override of a key
that does not exist is an error that names the key and lists the valid ones.
"""

from __future__ import annotations

import ast
import importlib.util
import os

import ml_collections

from metaval.errors import MetavalError


class ConfigError(MetavalError):
  """A config file, key or value is not valid."""


def load_config_file(spec: str) -> ml_collections.ConfigDict:
  """Loads ``file.py`` or ``file.py:arg`` and returns its locked config."""
  path, _, arg = spec.partition(":")
  if not os.path.isfile(path):
    raise ConfigError(f"config file not found: {path!r}")
  mod_spec = importlib.util.spec_from_file_location(f"_metaval_config_{abs(hash(path))}", path)
  module = importlib.util.module_from_spec(mod_spec)
  mod_spec.loader.exec_module(module)
  if not hasattr(module, "get_config"):
    raise ConfigError(f"config file {path!r} defines no get_config()")
  try:
    cfg = module.get_config(arg) if arg else module.get_config()
  except (ValueError, KeyError) as e:
    raise ConfigError(f"config {spec!r}: {e}") from None
  if not isinstance(cfg, ml_collections.ConfigDict):
    raise ConfigError(f"get_config() in {path!r} must return an ml_collections.ConfigDict")
  cfg.lock()
  return cfg


def _flat_keys(cfg, prefix="") -> list[str]:
  out = []
  for k, v in cfg.items():
    if isinstance(v, ml_collections.ConfigDict):
      out += _flat_keys(v, f"{prefix}{k}.")
    else:
      out.append(f"{prefix}{k}")
  return out


def _parse_value(text: str, current):
  if isinstance(current, bool):
    low = text.lower()
    if low in ("true", "1", "yes"):
      return True
    if low in ("false", "0", "no"):
      return False
    raise ConfigError(f"expected a boolean, got {text!r}")
  if isinstance(current, str):
    return text
  try:
    value = ast.literal_eval(text)
  except (ValueError, SyntaxError):
    value = text
  if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
    value = float(value)
  if isinstance(current, tuple) and isinstance(value, list):
    value = tuple(value)
  if isinstance(current, tuple) and not isinstance(value, tuple):
    value = (value,)
  return value


def apply_override(cfg: ml_collections.ConfigDict, key: str, text: str) -> None:
  """Sets ``cfg.<key>`` from the string ``text``, keeping the field's type."""
  parts = key.split(".")
  node = cfg
  for p in parts[:-1]:
    if not isinstance(node, ml_collections.ConfigDict) or p not in node:
      raise ConfigError(f"unknown config key {key!r}; valid keys: {', '.join(_flat_keys(cfg))}")
    node = node[p]
  leaf = parts[-1]
  if not isinstance(node, ml_collections.ConfigDict) or leaf not in node:
    raise ConfigError(f"unknown config key {key!r}; valid keys: {', '.join(_flat_keys(cfg))}")
  current = node[leaf]
  if isinstance(current, ml_collections.ConfigDict):
    raise ConfigError(f"config key {key!r} is a group; set one of its fields instead")
  value = _parse_value(text, current)
  try:
    node[leaf] = value
  except (TypeError, ValueError) as e:
    raise ConfigError(
      f"bad value for config key {key!r}: {text!r} (expected {type(current).__name__}): {e}"
    ) from None


def parse_overrides(cfg: ml_collections.ConfigDict, args: list[str]) -> list[str]:
  """Applies every ``--config.a.b=value`` (or ``--config.a.b value``) in ``args``.

  Returns:
    The arguments that were not config overrides.
  """
  rest, i = [], 0
  while i < len(args):
    a = args[i]
    if a.startswith("--config."):
      body = a[len("--config.") :]
      if "=" in body:
        key, text = body.split("=", 1)
      elif i + 1 < len(args):
        key, text = body, args[i + 1]
        i += 1
      else:
        raise ConfigError(f"override {a!r} has no value")
      apply_override(cfg, key, text)
    else:
      rest.append(a)
    i += 1
  return rest


def load(spec: str, overrides: list[str] | None = None) -> ml_collections.ConfigDict:
  """Loads a config file and applies overrides (programmatic twin of the CLI)."""
  cfg = load_config_file(spec)
  rest = parse_overrides(cfg, list(overrides or []))
  if rest:
    raise ConfigError(f"unexpected arguments: {' '.join(rest)}")
  return cfg
