"""Building blocks shared by the packaged configs (``metaval/configs/*.py``) so each stays short."""

from __future__ import annotations

import dataclasses

import ml_collections

from metaval.data import samplers
from metaval.learners.models import LearnerSpec

# The supplement kinds come from the one registry (``metaval.data.samplers``).
CLASSIFICATION_KINDS = samplers.CLASSIFICATION_KINDS
LANGUAGE_MODEL_KINDS = samplers.LANGUAGE_MODEL_KINDS


# The options of user-data tasks (``metaval.data.loaders``): None leaves an option at the
# loader's default, and a built-in task never sees it. Order as in ``docs/data.md``.
TASK_OPTIONS = (
  "label",  # csv: the label column (default "label"); tfds: the label feature
  "test_size",  # held-out share in (0, 1) or row count when the data brings no test set
  "delimiter",  # csv: the field separator (default: found from the file)
  "feature",  # tfds: the input feature (default "image" or the only one)
  "split",  # tfds: the pool split (default "train")
  "test_split",  # tfds: the evaluation split (default "test")
  "downsample",  # images: average-pool by this factor per side
  "max_examples",  # tfds: read at most this many examples per split
  "data_dir",  # tfds: the data directory
  "download",  # tfds: whether TFDS may download and prepare the dataset
)


def task_config(name: str = "digits", seed: int = 0, **options) -> ml_collections.ConfigDict:
  """Which base task to use: ``metaval.data.task_from_config(config.task)`` builds it.

  ``name`` is a built-in (``metaval.data.list_tasks()``) or user data
  (``csv:<path>``, ``npz:<path>``, ``tfds:<name>``); every field of ``TASK_OPTIONS``
  is present (so ``--config.task.label=target`` overrides it) and None unless given.

  Args:
    name: the task name.
    seed: the task's seed (its held-out split).
    **options: values for fields of ``TASK_OPTIONS``.

  Returns:
    The ``task`` ConfigDict.
  """
  unknown = set(options) - set(TASK_OPTIONS)
  if unknown:
    raise KeyError(f"unknown task option(s): {sorted(unknown)}; options: {', '.join(TASK_OPTIONS)}")
  return ml_collections.ConfigDict(
    {"name": name, "seed": seed, **{k: options.get(k) for k in TASK_OPTIONS}}
  )


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
