"""Building blocks shared by the packaged configs (``metaval/configs/*.py``) so each stays short."""

from __future__ import annotations

import ml_collections

from metaval.learners.models import LearnerSpec

# Every classification supplement kind, in the order the label configs sample them.
CLASSIFICATION_KINDS = (
  "clean",
  "label_noise",
  "duplicates",
  "near_duplicates",
  "random_bits",
  "constant",
  "single_class",
  "out_of_domain",
  "mixture",
)


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


def wandb_config(project: str = "metaval") -> ml_collections.ConfigDict:
  """wandb logging: offline unless ``mode='online'`` is set explicitly."""
  return ml_collections.ConfigDict({"mode": "offline", "project": project, "enabled": False})
