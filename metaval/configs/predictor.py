"""Train the set-encoder value predictor on generated labels.

Command (quick: about 1-2 min on 2 CPU cores when the quick labels exist; the
labels are generated first if missing):
  metaval train --config predictor:quick --workdir runs/predictor_quick

Variants: ``get_config()`` (the default label config, Set Transformer), ``quick``
(quick labels, Deep Sets, short), ``toy`` (labels made on the fly with
``metaval.predictor.testing.toy_labels`` on wine: no label pipeline needed, ~30 s),
``suite`` (several tasks and learners, for the held-out splits).

``--config.task.name=csv:my.csv`` (and any other ``task`` field) replaces the task of
every label config (its labels go to a sub-directory of the label workdir named after
the task); empty, the label configs' own tasks are used.

Expected result: on unseen pairs of the quick labels, Spearman of the predicted
test/accuracy improvement against the retraining label ≈ 0.8-0.9; see
docs/predictor.md for measured tables.
"""

import ml_collections

from metaval.config_defaults import task_config, wandb_config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  cfg = ml_collections.ConfigDict()
  cfg.seed = 0
  cfg.task = task_config("")  # empty name: each label config's own task
  cfg.labels = ml_collections.ConfigDict(
    {
      "source": "pipeline",  # or "toy"
      "configs": ("labels",),
      "workdirs": ("runs/labels",),
      "overrides": (),
      "toy_tasks": ("wine",),
      "toy_pairs": 60,
      "toy_seeds": 2,
      "seed": 0,
    }
  )
  cfg.targets = ()  # empty: every metric common to all label sets
  cfg.features = ml_collections.ConfigDict(
    # proxies: the kNN-classifier proxy set features (features.knn_proxies).
    {"max_s": 64, "max_b": 64, "cache_dir": "runs/feature_cache", "proxies": True}
  )
  cfg.model = ml_collections.ConfigDict(
    {
      "encoder": "set_transformer",
      "width": 64,
      "layers": 2,
      "heads": 4,
      "num_inducing": 16,
      "cross_attention": True,
      "use_learner": True,
    }
  )
  cfg.train = ml_collections.ConfigDict(
    {
      "epochs": 120,
      "batch_size": 64,
      "lr": 2e-3,
      "weight_decay": 1e-4,
      "warmup_epochs": 3,
      "patience": 20,
      "val_frac": 0.15,
      "test_frac": 0.15,
      "mse_weight": 1.0,
      "rank_weight": 0.0,  # weight of the pairwise ranking loss (train.pairwise_rank_loss)
      "select": "mse",  # early stopping / best checkpoint on validation "mse" or "nll"
      "seed": 0,
      "log_every": 5,
    }
  )
  cfg.interval = 0.9  # nominal coverage of the reported intervals
  cfg.wandb = wandb_config()
  # Held-out evaluation (metaval evaluate): which splits to run.
  cfg.eval = ml_collections.ConfigDict(
    {
      "splits": ("pairs", "kind", "task", "learner"),
      "kinds": (),  # leave-one-kind-out for these kinds (empty: every kind)
      "knn_k": 10,
      "ridge_alpha": 1.0,
    }
  )
  if arg == "quick":
    cfg.labels.configs = ("labels:quick",)
    cfg.labels.workdirs = ("runs/labels_quick",)
    cfg.model.encoder = "deepsets"
    cfg.train.epochs = 40
    cfg.train.patience = 8
    cfg.eval.splits = ("pairs", "kind")
  elif arg == "toy":
    cfg.labels.source = "toy"
    cfg.features.cache_dir = ""
    # Measured: with ~50 training pairs the proxies overfit (toy test Pearson
    # 0.86 / 0.94 without them, 0.35 / -0.06 with them, train seeds 0 / 1).
    cfg.features.proxies = False
    cfg.model.encoder = "deepsets"
    cfg.model.width = 32
    cfg.train.epochs = 60
    cfg.train.patience = 15
    cfg.train.batch_size = 8
    cfg.train.lr = 3e-3
    cfg.eval.splits = ("pairs", "kind")
  elif arg == "suite":
    cfg.labels.configs = ("labels:suite",)
    cfg.labels.workdirs = ("runs/labels_suite",)
  elif arg is not None:
    raise ValueError(f"unknown variant {arg!r}; use quick, toy or suite")
  return cfg
