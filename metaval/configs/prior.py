"""Labels from a prior of generated tasks (for a zero-shot value model).

Commands:
  metaval prior --config prior:quick --workdir /tmp/prior_quick
  metaval prior --config prior --workdir runs/prior            # the full prior
  metaval prior --config prior:medium --workdir runs/prior_medium

Each task is drawn by ``metaval.prior.sample_task`` (2-64 features, 2-10 classes,
pools of 60-2000 points, Gaussian clusters or random-network teachers, redundant,
irrelevant and warped features, imbalance, label noise). Every task gets
``pairs_per_task`` (B, S) pairs with every kind in ``kinds`` dealt to it, labelled by
each learner of the ladder with K paired seeds: Δ test accuracy and Δ test log-loss
of B ∪ S vs B. Output: resumable shards in ``<workdir>/shards`` (see
``metaval.prior.storage``); no built-in (real) task ever enters.

Expected result: clean, covariate-shift and feature-noise supplements raise test
accuracy on average; random bits, foreign-task data, out-of-domain inputs and
flipped labels lower it (``prior:quick`` measured: clean +0.018 / +0.022 for linear /
mlp16, random_bits -0.120 / -0.080, foreign_task -0.094 / -0.085). Expected runtime:
``quick`` 147 CPU s (2.5 min on 2 idle cores; 9.5 min wall at load 23-28); the full
prior ran in about 90 min here, partly shared with other jobs; after its shape buckets
are compiled it labels ~66 labels/s on 2 idle cores (docs/prior.md, "Cost").

Variants:
  default  1,100 tasks x 32 pairs x 3 learners (linear, mlp16, mlp64), K=2:
           105,600 labels.
  medium   400 tasks, the same ladder: 38,400 labels.
  quick    24 tasks of at most 16 features and 4 classes, 16 pairs, linear + mlp16,
           K=2: 768 labels in a few minutes.
  tiny     3 tasks, 4 pairs each, linear only (tests).
  beyond   24 tasks outside the default prior (80-128 features, 12-30 classes, bases
           of 300-800 points), the default ladder: 2,304 labels for E2's
           out-of-domain split (metaval prior --config prior:beyond
           --workdir runs/prior_beyond).
  wide     32 tasks of 160-1,200 features, 16 pairs each, the default ladder: 1,536
           labels (metaval prior --config prior:wide --workdir runs/prior_wide), scored
           by python scripts/eval_zeroshot_prior.py --labels runs/prior_wide.
  discrete 32 tasks of the default ranges with half to all features categorical (2-5
           levels), 16 pairs each: 1,536 labels (--workdir runs/prior_discrete).
"""

import ml_collections

from metaval.config_defaults import learner_config
from metaval.data.samplers import GENERIC_KINDS

LINEAR = dict(family="linear", steps=100, l2=1e-3, solver="lbfgs")
MLP = dict(family="mlp", depth=1, steps=150, lr=0.01, l2=1e-4)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  cfg = ml_collections.ConfigDict()
  cfg.seed = 0  # seeds the pairs and training keys
  cfg.first_task = 0  # task seeds first_task .. first_task + num_tasks - 1
  cfg.num_tasks = 1100
  # Overrides of the generator's ranges (metaval.prior.generator.DEFAULT_RANGES).
  # One evaluation-set size: it is part of every compiled program's shape.
  cfg.ranges = ml_collections.ConfigDict({"eval_size": (500, 500)})
  cfg.kinds = GENERIC_KINDS
  cfg.pairs_per_task = 32
  cfg.supps_per_base = 4
  cfg.base_size = (10, 256)
  cfg.supp_size = (5, 256)
  cfg.learners = ml_collections.ConfigDict(
    {
      "linear": learner_config(**LINEAR),
      "mlp16": learner_config(**MLP, width=16),
      "mlp64": learner_config(**MLP, width=64),
    }
  )
  cfg.num_seeds = 2
  cfg.chunk = 8
  cfg.gather = 512  # >= max base_size + max supp_size: every model gathers its points
  cfg.extra_capacity = 1024
  cfg.tasks_per_shard = 4
  cfg.local_workers = 2  # processes (single-threaded XLA); 0 = in this process
  cfg.progress = True
  cfg.jax_cache = True  # keep compiled programs in <workdir>/jax_cache (resumes load them)
  if arg is None or arg == "default":
    pass
  elif arg == "medium":
    cfg.num_tasks = 400
  elif arg == "quick":
    cfg.num_tasks = 24
    cfg.ranges = ml_collections.ConfigDict(
      {"eval_size": (500, 500), "dim": (2, 16), "num_classes": (2, 4), "pool_size": (60, 1000)}
    )
    cfg.pairs_per_task = 16
    cfg.learners = ml_collections.ConfigDict(
      {"linear": learner_config(**LINEAR), "mlp16": learner_config(**MLP, width=16)}
    )
  elif arg == "tiny":
    cfg.num_tasks = 3
    cfg.ranges = ml_collections.ConfigDict(
      {"eval_size": (200, 200), "dim": (2, 8), "num_classes": (2, 3), "pool_size": (60, 300)}
    )
    cfg.pairs_per_task = 4
    cfg.supps_per_base = 2
    cfg.supp_size = (5, 60)
    cfg.base_size = (10, 60)
    cfg.gather = 128
    cfg.extra_capacity = 256
    cfg.learners = ml_collections.ConfigDict({"linear": learner_config(**LINEAR)})
    cfg.tasks_per_shard = 2
    cfg.local_workers = 0
    cfg.progress = False
    cfg.jax_cache = False
  elif arg == "beyond":
    # Tasks larger than any of the default prior (E2's out-of-domain split): wider,
    # more classes, larger bases; other task seeds; the same kinds and learners.
    cfg.num_tasks = 24
    cfg.first_task = 500_000
    cfg.ranges = ml_collections.ConfigDict(
      {
        "eval_size": (500, 500),
        "dim": (80, 128),
        "num_classes": (12, 30),
        "pool_size": (1500, 3000),
      }
    )
    cfg.base_size = (300, 800)
    cfg.gather = 1100  # >= max base_size + max supp_size
  elif arg == "wide":
    # Tasks wider than the prior (160-1,200 features; wider than 512 the zero-shot
    # features project the inputs): how the shipped model transfers to wide inputs.
    cfg.num_tasks = 32
    cfg.first_task = 700_000
    cfg.ranges = ml_collections.ConfigDict(
      {"eval_size": (500, 500), "dim": (160, 1200), "pool_size": (600, 1500)}
    )
    cfg.pairs_per_task = 16
  elif arg == "discrete":
    # Tasks whose features are mostly categorical (half to all of them cut into 2-5
    # levels, as binary and categorical columns of real tables are): the default prior
    # has continuous and rounded features only.
    cfg.num_tasks = 32
    cfg.first_task = 800_000
    cfg.ranges = ml_collections.ConfigDict({"eval_size": (500, 500), "discrete": (0.5, 1.0)})
    cfg.pairs_per_task = 16
  else:
    raise ValueError(
      f"unknown variant {arg!r}; use default, medium, quick, tiny, beyond, wide or discrete"
    )
  return cfg
