"""Split a retraining gain among contributors (Shapley, Banzhaf) and pay royalties.

Command (default variant: 48 LMs, about 4 minutes on 2 idle CPU cores):
  metaval attribute --config attribution --workdir runs/attribute

Quick variant (about 20 s on 2 CPU cores, compile included):
  metaval attribute --config attribution:quick --workdir /tmp/metaval_attr

Default: the ``code`` task; contributors are three standard-library packages
(json, email, http) plus a fourth who submits a verbatim copy of json's files;
the base set is 300 windows of the other packages (small, so the LM is
data-limited and more data shows in the metric); tiny character LMs, 2 paired
seeds; exact Shapley and Banzhaf over all 2^n coalitions (one batch of masks).
``quick``: digits, four random contributors of 60 points plus a copy of the
first, an MLP, base 100 points. ``sampling`` (about 1 minute of CPU): the quick setup
with 8 random contributors, Monte-Carlo permutation Shapley (64 antithetic
permutations) and Banzhaf (MSR, 128 subsets), checked against the exact values
over all 256 coalitions.

Expected result: Shapley values sum to the gain u(all) - u(∅) exactly; without
the copy policy the copier receives exactly as much as the original (Shapley is
symmetric), with it (``deduped``) the copier receives exactly 0 and the original
its credit back; the ledger's payments sum exactly to the pool.
"""

import ml_collections

from metaval.config_defaults import learner_config, task_config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  cfg = ml_collections.ConfigDict()
  cfg.task = task_config("code")
  cfg.learner = learner_config(
    family="lm", width=32, depth=1, heads=2, steps=300, lr=3e-3, l2=0.0, batch_size=32
  )
  cfg.metric = "heldout/neg_loss"
  cfg.contributors = ml_collections.ConfigDict(
    {"by": "group", "groups": "json,email,http", "num": 3, "points": 0, "max_points": 0}
  )
  cfg.base_size = 300  # points of the non-contributed pool in B (0 = all of them)
  cfg.copy_of = "json"  # add a contributor who submits a copy of this one ('' = none)
  cfg.dedupe = True  # also value the game under the copy policy
  cfg.method = "auto"  # exact if n <= max_exact, else sampling
  cfg.max_exact = 10
  cfg.num_permutations = 64
  cfg.banzhaf_samples = 128
  cfg.compare_exact = False  # sampling only: also run exact methods to measure the error
  cfg.num_seeds = 2
  cfg.seed = 0
  cfg.chunk = 0
  cfg.royalties = ml_collections.ConfigDict(
    {
      "revenue_per_inference": "0.0015",
      "num_inferences": 1_000_000,
      "unit": "0.01",
      "negative_policy": "clip",
    }
  )
  if arg in ("quick", "sampling"):
    cfg.task = task_config("digits")
    cfg.learner = learner_config(family="mlp", width=32, depth=1, steps=150, lr=0.01, l2=1e-4)
    cfg.metric = "test/accuracy"
    cfg.contributors.by = "random"
    cfg.contributors.num = 4
    cfg.contributors.points = 60
    cfg.base_size = 100
    cfg.copy_of = "contributor_0"
    cfg.num_seeds = 4
    if arg == "sampling":
      cfg.contributors.num = 8
      cfg.copy_of = ""
      cfg.dedupe = False
      cfg.method = "sampling"
      cfg.compare_exact = True
  elif arg is not None:
    raise ValueError(f"unknown variant {arg!r}; use quick or sampling")
  return cfg
