"""Memorization spot-check: members vs non-members ROC AUC for tiny character LMs.

Command (default variant: about 4 minutes on 2 CPU cores):
  metaval audit membership --config membership --workdir runs/membership

Quick variant (about 1 minute on 2 CPU cores, compile included):
  metaval audit membership --config membership:quick --workdir /tmp/metaval_mem

The ``code`` task; contributors are standard-library source files (up to
``max_windows`` 65-character windows each); models come in complementary
same-key pairs, each including a random half of the contributors on top of a
base set of other files. Prompts are the first ``prefix_len`` characters of a
contributor's windows; scores are the continuation's mean log-likelihood,
Min-K% probability and greedy exact-match length, raw and calibrated against
reference models (other pairs' non-member models).

Expected result: raw scores separate members from non-members only weakly (AUC
close to 0.5: files differ far more in how predictable they are than a few
passes of training changes them); calibrated scores do better. ``memorize``
(small base, many passes) shows how AUC rises when the LM sees each window often.
"""

import ml_collections

from metaval.config_defaults import learner_config, task_config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  cfg = ml_collections.ConfigDict()
  cfg.task = task_config("code")
  cfg.learner = learner_config(
    family="lm", width=32, depth=1, heads=2, steps=300, lr=3e-3, l2=0.0, batch_size=32
  )
  cfg.num_contributors = 12
  cfg.min_windows = 16
  cfg.max_windows = 32  # windows each contributor submits (0 = the whole file)
  cfg.contributor_weight = 1.0  # multiplicity of contributed windows
  cfg.base_size = 0  # windows of non-candidate files in B (0 = all)
  cfg.num_pairs = 6  # 2 * num_pairs models
  cfg.prompts_per_contributor = 16
  cfg.prefix_len = 32
  cfg.min_k_frac = 0.2
  cfg.num_boot = 1000
  cfg.seed = 0
  cfg.chunk = 0
  if arg == "quick":
    cfg.num_contributors = 8
    cfg.num_pairs = 3
    cfg.learner.steps = 200
    cfg.base_size = 800
    cfg.num_boot = 300
  elif arg == "memorize":
    cfg.base_size = 200
    cfg.learner.steps = 600
  elif arg is not None:
    raise ValueError(f"unknown variant {arg!r}; use quick or memorize")
  return cfg
