"""Building blocks shared by the packaged configs (``metaval/configs/*.py``) so each stays short."""

from __future__ import annotations

import dataclasses

import ml_collections

from metaval.data import samplers
from metaval.learners.models import LearnerSpec

# The supplement kinds come from the one registry (``metaval.data.samplers``).
CLASSIFICATION_KINDS = samplers.CLASSIFICATION_KINDS
LANGUAGE_MODEL_KINDS = samplers.LANGUAGE_MODEL_KINDS


def task_config(name: str = "digits", seed: int = 0) -> ml_collections.ConfigDict:
  """Which base task to use (see ``metaval.data.list_tasks()``)."""
  return ml_collections.ConfigDict({"name": name, "seed": seed})


def learner_config(**overrides) -> ml_collections.ConfigDict:
  """All ``LearnerSpec`` fields with their defaults, updated by ``overrides``."""
  cfg = LearnerSpec().to_dict()
  unknown = set(overrides) - set(cfg)
  if unknown:
    raise KeyError(f"unknown learner field(s): {sorted(unknown)}")
  cfg.update(overrides)
  return ml_collections.ConfigDict(cfg)


def ascent_config(**overrides) -> ml_collections.ConfigDict:
  """All ``AscentSpec`` fields (untraining's gradient ascent) with their defaults.

  The defaults were tuned on digits pairs of ``pairs.seed=0`` (the untrain quick
  pairs); score on others.
  """
  from metaval.valuation.ascent import AscentSpec  # optax/orbax: only when a config needs it

  cfg = dataclasses.asdict(AscentSpec())
  unknown = set(overrides) - set(cfg)
  if unknown:
    raise KeyError(f"unknown ascent field(s): {sorted(unknown)}")
  cfg.update(overrides)
  return ml_collections.ConfigDict(cfg)


def wandb_config(project: str = "metaval") -> ml_collections.ConfigDict:
  """wandb logging: offline unless ``mode='online'`` is set explicitly."""
  return ml_collections.ConfigDict({"mode": "offline", "project": project, "enabled": False})
