"""Goodhart suite: gaming attacks valued by every estimator next to a genuine set.

Commands:
  metaval audit goodhart --config goodhart:quick --workdir runs/audit_goodhart
  metaval audit goodhart --config goodhart --workdir runs/audit_goodhart_full

The predictor is read from ``predictor.path`` or, if that is empty, trained into
``<workdir>/predictor`` with ``predictor.config`` (the quick labels are generated
first if ``runs/labels_quick`` does not hold them: about 1.5 min + 1.5 min on 2
CPU cores, once). Finished estimators are cached, so a rerun resumes.

Variants:
  quick    digits, linear learner (the quick labels' learner, deterministic: K=1),
           4 replicates (B0 = 80, contributor A = 40, |S| = 100), 10 attacks;
           estimators: retraining, predictor, ablation, untraining, KNN-Shapley,
           Data-OOB. About 1-2 min on 2 CPU cores once the predictor exists.
  default  as quick with 10 replicates and TMC-Shapley added (about 10 min).
  tiny     wine, toy predictor learner (MLP 16), 2 replicates, small sets: tests.

Expected result (measured, docs/goodhart.md): quick: retraining labels and the
predictor value every attack below the genuine set and every pure-junk attack at
or below zero within its interval. Default (R = 10): retraining still passes; the
predictor pays exact duplicates of B a small positive value (+0.003 ± 0.002).
KNN-Shapley, Data-OOB (a sum of non-negative point scores: size pays) and
untraining fail on several attacks.
"""

import ml_collections

from metaval.config_defaults import ascent_config, learner_config, task_config

ATTACKS = (
  "random_bits",
  "couch",
  "label_flip",
  "label_noise",
  "duplicates_of_base",
  "copy_of_contributor",
  "near_duplicates",
  "adversarial_near_duplicates",
  "padded_random_bits",
  "padded_near_duplicates",
)
ESTIMATORS = ("retraining", "predictor", "ablation", "untraining", "knn_shapley", "data_oob")

# The quick labels' learner (labels:quick, LINEAR): the predictor's default.
LINEAR = dict(family="linear", steps=100, lr=0.1, l2=1e-3)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  cfg = ml_collections.ConfigDict()
  cfg.task = task_config("digits")
  cfg.metric = "test/accuracy"
  cfg.learner = learner_config(**LINEAR)
  cfg.num_bases = 10  # replicates: fresh B0, contributor A, genuine set and attacks
  cfg.num_seeds = 1  # K paired seeds per pair (the linear learner ignores its seed)
  cfg.base_size = 80  # B0; the buyer's base is B0 ∪ A
  cfg.contributor_size = 40  # A: an earlier contributor's clean set, already in B
  cfg.supp_size = 100  # |S| of the genuine set and of every attack
  cfg.core_frac = 0.25  # clean share of the padded attacks (and genuine_core's size)
  cfg.attacks = ATTACKS
  cfg.estimators = ESTIMATORS + ("tmc_shapley",)
  cfg.seed = 0
  cfg.chunk = 64
  cfg.attack_params = ml_collections.ConfigDict(
    {
      "couch_jitter": 0.01,
      "label_noise_rate": 0.3,
      "near_dup_sigma": 0.05,
      # Distance of an adversarial near-duplicate from its source, in units of B's
      # median nearest-neighbour distance: just above the predictor's 0.25 rule.
      "adv_margin": 0.35,
    }
  )
  cfg.predictor = ml_collections.ConfigDict(
    {
      "path": "",
      "config": "predictor:quick",
      # e.g. ("--config.train.epochs=20",): applied to predictor.config when training.
      "overrides": (),
      "train_if_missing": True,
    }
  )
  # A smaller learner's retraining label: ``metaval.learners.models.ladder(learner,
  # (size,))`` (linear: 16 fixed random ReLU features instead of the 64 raw inputs).
  cfg.ablation = ml_collections.ConfigDict({"size": 16})
  cfg.untrain = ml_collections.ConfigDict({"ascent": ascent_config()})
  cfg.baselines = ml_collections.ConfigDict(
    {"knn_k": 5, "oob_bags": 64, "tmc_permutations": 8, "tmc_rtol": 0.05, "tmc_batch": 64}
  )
  if arg is None or arg == "default":
    pass
  elif arg == "quick":
    cfg.num_bases = 4
    cfg.estimators = ESTIMATORS
  elif arg == "tiny":
    cfg.task = task_config("wine")
    cfg.learner = learner_config(family="mlp", width=16, steps=100, lr=0.02, l2=1e-3)
    cfg.ablation.size = 4  # MLP width 4
    cfg.num_bases = 2
    cfg.num_seeds = 2
    cfg.base_size = 30
    cfg.contributor_size = 10
    cfg.supp_size = 20
    cfg.estimators = ESTIMATORS
    cfg.baselines.oob_bags = 16
    cfg.chunk = 16
    cfg.predictor.config = "predictor:toy"
  else:
    raise ValueError(f"unknown variant {arg!r}; use default, quick or tiny")
  return cfg
