"""Per-point valuation baselines on a training set with flipped labels.

Command (quick: about 1 minute on 2 CPU cores, compilation included):
  metaval baselines --config baselines:quick --workdir runs/baselines_quick
Full (digits, 500 training points, 10 % flipped; about 4 minutes):
  metaval baselines --config baselines --workdir runs/baselines

Variants: ``get_config()`` (the benchmark problem), ``quick`` (150 points, small
budgets), ``mlp`` (the same with a one-hidden-layer MLP learner).

Expected result (full, linear learner): flipped-label detection AUROC about 0.99
for KNN-Shapley and Data-OOB, 0.9-0.95 for TMC-Shapley, Beta Shapley and Banzhaf,
about 0.8 for leave-one-out; removing the lowest-valued points first raises holdout
accuracy while removing the highest-valued first lowers it.
"""

import ml_collections

from metaval.config_defaults import learner_config, task_config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  cfg = ml_collections.ConfigDict()
  cfg.task = task_config("digits")
  cfg.learner = learner_config(family="linear", steps=100, lr=0.05, l2=1e-3)
  cfg.n_train = 500
  cfg.noise_rate = 0.1
  cfg.seed = 0
  cfg.metric = "test/accuracy"
  cfg.batch_size = 256
  cfg.methods = ("knn_shapley", "loo", "data_oob", "banzhaf", "tmc_shapley", "beta_shapley")
  cfg.methods_options = ml_collections.ConfigDict(
    {
      "loo": {},
      "tmc_shapley": {"num_permutations": 64, "rtol": 0.05, "block": 16},
      "beta_shapley": {"num_permutations": 64, "alpha": 16.0, "beta": 1.0, "block": 16},
      "banzhaf": {"num_samples": 2048},
      "knn_shapley": {"k": 5},
      "data_oob": {"num_bags": 512},
    }
  )
  cfg.curves = True
  cfg.curve_fractions = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5)
  cfg.group_values = True
  if arg == "quick":
    cfg.n_train = 150
    cfg.batch_size = 128
    cfg.methods_options.tmc_shapley.num_permutations = 16
    cfg.methods_options.beta_shapley.num_permutations = 16
    cfg.methods_options.banzhaf.num_samples = 512
    cfg.methods_options.data_oob.num_bags = 128
  elif arg == "mlp":
    cfg.learner = learner_config(family="mlp", width=64, depth=1, steps=200, lr=0.01, l2=1e-4)
  elif arg is not None:
    raise ValueError(f"unknown variant {arg!r}; use quick or mlp")
  return cfg
