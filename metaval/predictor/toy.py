"""The toy predictor (the packaged ``predictor:toy`` config) for tests and demos.

Trained in about 30 s on labels made on the fly (``testing.toy_labels`` on wine): no
label pipeline needed.
"""

from __future__ import annotations

import os

from metaval.configlib import load
from metaval.predictor.checkpoint import META_FILE
from metaval.predictor.train import train_and_evaluate


def toy_config(**train_overrides):
  """The packaged ``predictor:toy`` config with ``train`` fields overridden.

  Args:
    **train_overrides: values for ``config.train`` (e.g. ``epochs=2``).

  Returns:
    The (unlocked) config.
  """
  cfg = load("predictor:toy")
  for k, v in train_overrides.items():
    cfg.train[k] = v
  return cfg


def toy_predictor(workdir: str, **train_overrides) -> str:
  """Trains the toy predictor into ``workdir`` unless it is already there; returns ``workdir``."""
  if not os.path.isfile(os.path.join(workdir, META_FILE)):
    train_and_evaluate(toy_config(**train_overrides), workdir)
  return workdir
