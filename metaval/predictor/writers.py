"""One metrics writer for every sink: stdout, a JSON-lines file and (optionally) wandb.

``MetricWriter.write(step, scalars)`` sends the same dict to every sink. wandb is
off unless ``config.wandb.enabled``; when on, it runs offline by default
(``mode="offline"``) and never prompts for a login (``WANDB_SILENT``, silent
settings, and offline mode when no API key is configured).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time


def _fmt(v) -> str:
  if isinstance(v, float):
    return f"{v:.4g}" if math.isfinite(v) else str(v)
  return str(v)


class MetricWriter:
  """Writes scalar dicts to stdout, ``<workdir>/metrics.jsonl`` and wandb.

  Args:
    workdir: directory for ``metrics.jsonl`` (None: no file).
    wandb_config: ``ConfigDict`` with ``enabled``, ``mode``, ``project`` (or None).
    run_config: the run's config, logged to wandb.
    stdout: print each write.
    name: prefix for stdout lines and the wandb run name.
  """

  def __init__(self, workdir=None, wandb_config=None, run_config=None, stdout=True, name="train"):
    self.name = name
    self.stdout = stdout
    self._file = None
    self._wandb = None
    if workdir:
      os.makedirs(workdir, exist_ok=True)
      self.path = os.path.join(workdir, "metrics.jsonl")
      # Appending keeps the history of an interrupted and resumed run.
      self._file = open(self.path, "a", buffering=1)
    if wandb_config is not None and wandb_config.get("enabled", False):
      self._wandb = _start_wandb(wandb_config, workdir, run_config, name)

  def write(self, step: int, scalars: dict) -> None:
    clean = {k: (float(v) if hasattr(v, "__float__") else v) for k, v in scalars.items()}
    if self.stdout:
      body = "  ".join(f"{k}={_fmt(v)}" for k, v in clean.items())
      print(f"[{self.name}] step {step}  {body}", file=sys.stdout, flush=True)
    if self._file:
      self._file.write(json.dumps({"step": int(step), "time": time.time(), **clean}) + "\n")
    if self._wandb is not None:
      self._wandb.log({k: v for k, v in clean.items() if isinstance(v, float)}, step=int(step))

  def close(self) -> None:
    if self._file:
      self._file.close()
      self._file = None
    if self._wandb is not None:
      self._wandb.finish()
      self._wandb = None

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()


def _start_wandb(cfg, workdir, run_config, name):
  os.environ.setdefault("WANDB_SILENT", "true")
  mode = cfg.get("mode", "offline")
  if mode == "online" and not os.environ.get("WANDB_API_KEY"):
    # Never prompt: without a key, online logging degrades to offline.
    mode = "offline"
  os.environ["WANDB_MODE"] = mode
  import wandb

  cfg_dict = run_config.to_dict() if hasattr(run_config, "to_dict") else (run_config or {})
  return wandb.init(
    project=cfg.get("project", "metaval"),
    mode=mode,
    dir=workdir,
    name=name,
    config=cfg_dict,
    settings=wandb.Settings(silent=True),
    reinit="finish_previous",
  )
