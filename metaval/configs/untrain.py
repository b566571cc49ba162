"""Value subsets by gradient-ascent untraining and score against retraining labels.

Command (quick: about 1 minute on 2 CPU cores, compile included):
  metaval untrain --config untrain:quick --workdir /tmp/metaval_untrain

Variants:
  ``get_config()``: 48 random (B, S) pairs on digits (MLP width 64), 3 paired seeds,
    supplements of five registry kinds (clean, label noise, duplicates, one class,
    random bits) and sizes 25-200; about 4 minutes.
  ``quick``: 12 pairs x 2 seeds, 100 training steps; about 1 minute.
  ``code``: tiny character LM on the standard-library code corpus, leave-one-
    package-out: one model trained on all packages, each package untrained in turn
    (restore the checkpoint, next package); about 6 minutes.

Expected result: on digits the untraining drop ranks supplements with Spearman
≈ 0.6-0.8 against the retraining label on test/neg_log_loss (see docs/strategies.md
for measured figures); the untraining pass costs a fraction of one retraining of B,
and the whole method (B ∪ S training + untraining) about 1× training per subset
when B ∪ S must be trained for each subset, well under 1× when one model serves
many subsets.
"""

import ml_collections

from metaval.config_defaults import ascent_config, learner_config, task_config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  cfg = ml_collections.ConfigDict()
  cfg.task = task_config("digits")
  cfg.learner = learner_config(family="mlp", width=64, depth=1, steps=200, lr=0.01, l2=1e-4)
  cfg.pairs = ml_collections.ConfigDict(
    {
      "mode": "random",  # or "leave_group_out"
      "num_pairs": 48,
      "base_size": 300,
      "supp_sizes": (25, 50, 100, 200),
      "kinds": ("clean", "label_noise", "duplicates", "single_class", "random_bits"),  # registry
      "supps_per_base": 4,
      "noise_rate": 0.5,
      "groups": (),  # leave_group_out: group names to untrain (empty = all)
      "seed": 0,
    }
  )
  cfg.ascent = ascent_config()  # AscentSpec defaults (tuned on the quick pairs)
  cfg.num_seeds = 3
  cfg.seed = 0
  cfg.metrics = ()  # empty = every top-level metric
  if arg == "quick":
    cfg.learner.steps = 100
    cfg.pairs.num_pairs = 12
    cfg.num_seeds = 2
  elif arg == "code":
    cfg.task = task_config("code")
    cfg.learner = learner_config(
      family="lm", width=32, depth=1, heads=2, steps=300, lr=3e-3, l2=0.0, batch_size=32
    )
    cfg.pairs.mode = "leave_group_out"
    cfg.pairs.base_size = 0  # D = the whole pool
    cfg.ascent.batch_size = 32
    cfg.num_seeds = 2
  elif arg is not None:
    raise ValueError(f"unknown variant {arg!r}; use quick or code")
  return cfg
