"""Loading configs by name or file and applying ``--config.a.b=value`` overrides.

A config module defines ``get_config(arg=None) -> ml_collections.ConfigDict``. The
configs that ship with metaval live in :mod:`metaval.configs` and are named by module
name, optionally with a variant: ``labels`` or ``labels:tiny``. Any other config is a
file named by its path: ``path/to/file.py`` or ``path/to/file.py:variant``. The
returned dict is locked, so an override of a key that does not exist is an error
that names the key and lists the valid ones.
"""

from __future__ import annotations

import ast
import importlib
import importlib.resources
import importlib.util
import os

import ml_collections

from metaval.errors import MetavalError

CONFIG_PACKAGE = "metaval.configs"


class ConfigError(MetavalError):
  """A config name, file, key or value is not valid."""


def available_configs() -> list[str]:
  """The names of the configs packaged in :mod:`metaval.configs`, sorted."""
  files = importlib.resources.files(CONFIG_PACKAGE).iterdir()
  return sorted(f.name[:-3] for f in files if f.name.endswith(".py") and f.name[0] != "_")


def _is_file_spec(name: str) -> bool:
  # A packaged config is a bare module name; anything with a suffix or a folder is a file.
  return name.endswith(".py") or "/" in name or os.sep in name


def _import_packaged(name: str):
  names = available_configs()
  if name not in names:
    raise ConfigError(
      f"unknown config {name!r}; packaged configs: {', '.join(names)} "
      "(or give a file: path/to/config.py[:variant])"
    )
  return importlib.import_module(f"{CONFIG_PACKAGE}.{name}")


def _import_file(path: str):
  if not os.path.isfile(path):
    raise ConfigError(
      f"config file not found: {path!r} (packaged configs are named without a path, "
      f"e.g. labels:quick; available: {', '.join(available_configs())})"
    )
  mod_spec = importlib.util.spec_from_file_location(f"_metaval_config_{abs(hash(path))}", path)
  module = importlib.util.module_from_spec(mod_spec)
  mod_spec.loader.exec_module(module)
  return module


def load_config_file(spec: str) -> ml_collections.ConfigDict:
  """Loads a config and returns it locked.

  Args:
    spec: a packaged config's name (``labels``, ``labels:tiny``) or a file's path
      (``path/to/x.py``, ``path/to/x.py:variant``).

  Returns:
    The locked config.
  """
  name, _, arg = spec.partition(":")
  module = _import_file(name) if _is_file_spec(name) else _import_packaged(name)
  if not hasattr(module, "get_config"):
    raise ConfigError(f"config {name!r} defines no get_config()")
  try:
    cfg = module.get_config(arg) if arg else module.get_config()
  except (ValueError, KeyError) as e:
    raise ConfigError(f"config {spec!r}: {e}") from None
  if not isinstance(cfg, ml_collections.ConfigDict):
    raise ConfigError(f"get_config() in {name!r} must return an ml_collections.ConfigDict")
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
  """Loads a config by name or file and applies overrides (programmatic twin of the CLI).

  Args:
    spec: as for :func:`load_config_file` (e.g. ``"labels:tiny"``).
    overrides: ``--config.a.b=value`` strings.

  Returns:
    The locked, overridden config.
  """
  cfg = load_config_file(spec)
  rest = parse_overrides(cfg, list(overrides or []))
  if rest:
    raise ConfigError(f"unexpected arguments: {' '.join(rest)}")
  return cfg
