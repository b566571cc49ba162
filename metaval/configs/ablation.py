"""Size-ladder ablation: label the same pairs with every learner size and compare.

Command (quick: about 1 minute on 2 CPU cores, compile included):
  metaval ablate --config ablation:quick --workdir /tmp/metaval_ablate

Variants:
  ``get_config()``: both families. MLP widths 16-256 on digits (256 is the held-out
    size for the extrapolation), 128 pairs of every supplement kind, K=2 paired
    seeds; tiny character LMs of width 8-64 on the standard-library code corpus, 32
    pairs, K=2. About 15 minutes on 2 CPU cores.
  ``quick``: MLP widths 8-64 on digits, 32 pairs, K=2, 100 steps; about 1 minute.
  ``code``: the LM family only (as in the default); about 8 minutes.

Expected result: labels of neighbouring sizes correlate strongly (Spearman > 0.8
for the MLPs), agreement with the largest size and decision accuracy grow with size;
measured figures are in docs/strategies.md.
"""

import ml_collections

from metaval.config_defaults import CLASSIFICATION_KINDS, learner_config, task_config

ALL_KINDS = CLASSIFICATION_KINDS


def _family(task, learner, sizes, labels_config, metric, **pipeline):
  return ml_collections.ConfigDict(
    {
      "task": task,
      "learner": learner,
      "sizes": sizes,
      # The label pipeline's config to start from; fields below override it.
      "labels_config": labels_config,
      "metric": metric,  # "" = the task's second metric (digits: test/neg_log_loss)
      "pipeline": ml_collections.ConfigDict(pipeline),
    }
  )


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  cfg = ml_collections.ConfigDict()
  cfg.families = ml_collections.ConfigDict(
    {
      "mlp": _family(
        task_config("digits"),
        learner_config(family="mlp", width=64, depth=1, steps=150, lr=0.01, l2=1e-4),
        (16, 32, 64, 128, 256),
        "labels:default",
        "test/neg_log_loss",
        kinds=ALL_KINDS,
        num_shards=8,
        pairs_per_shard=16,
        supps_per_base=4,
        num_seeds=2,
        base_size=(50, 400),
        supp_size=(10, 400),
        chunk=64,
        seed=0,
      ),
      "lm": _family(
        task_config("code"),
        learner_config(
          family="lm", width=32, depth=1, heads=2, steps=150, lr=3e-3, l2=0.0, batch_size=32
        ),
        (8, 16, 32, 64),
        "labels:code",
        "heldout/neg_loss",
        num_shards=2,
        pairs_per_shard=16,
        supps_per_base=4,
        num_seeds=2,
        chunk=32,
        seed=0,
      ),
    }
  )
  cfg.families_to_run = ("mlp", "lm")
  if arg == "quick":
    cfg.families.mlp.sizes = (8, 16, 32, 64)
    cfg.families.mlp.learner.steps = 100
    cfg.families.mlp.pipeline.num_shards = 2
    cfg.families.mlp.pipeline.chunk = 32
    cfg.families_to_run = ("mlp",)
  elif arg == "code":
    cfg.families_to_run = ("lm",)
  elif arg is not None:
    raise ValueError(f"unknown variant {arg!r}; use quick or code")
  return cfg
