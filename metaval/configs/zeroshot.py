"""Train the zero-shot value model on a prior of generated tasks.

Commands:
  metaval zeroshot-train --config zeroshot:quick --workdir runs/zeroshot_quick
  metaval prior --config prior:medium --workdir runs/prior_medium   # generated-task labels
  metaval zeroshot-train --config zeroshot --workdir runs/zeroshot --config.ship=True

Labels: the ``metaval prior`` runs named in ``prior.from_prior`` (comma-separated
workdirs; their finished shards are read) plus ``num_tasks`` ``synthetic`` tasks
labelled here (``metaval.zeroshot.labels``; one file per task under ``labels_dir``,
resumed; ``num_tasks=0`` reads whatever is there): per task ``num_bases`` bases,
``per_kind`` supplements of every registered kind on each, MLPs of ``learners`` (and
``extra_learners`` on one task in ``learners_every``) on B and on B ∪ S with
``num_seeds`` paired seeds. The model is chosen between the network and gradient
boosting by the mean within-task Spearman on validation tasks (``val_share`` of the
tasks, held out whole) among the candidates that pass the Goodhart gate
(``gate``; ``metaval.zeroshot.gate``: on the validation tasks' clear pairs of genuine
data and junk, the junk must not be valued above the genuine set); if none passes,
the one that violates the fewest clear pairs. Its interval is split-conformal on the
validation tasks.

Expected: quick runs in minutes and writes a model whose validation Spearman is
printed and stored in ``zeroshot.json``; the default, on a finished ``prior`` run
(``metaval prior --config prior --workdir runs/prior``, ~90 min here), takes about
5-6 minutes: featurising in 2 worker processes (~1.5-2 min), fitting both models,
then fitting the chosen one again on every task (``refit``).

The shipped model (trained 2026-12-01, 2 cores): the prior's 1,100 tasks (105,600
labels, relabelled that day) + 28 synthetic task files (MLPs of width 32 and 128),
106,490 rows featurised in 61 s; 902 training and 226 validation tasks. Validation
Spearman: network 0.805, gradient boosting 0.798, best single proxy (the stepped
softmax regression's accuracy) 0.694, label ceiling 0.892. Neither candidate passes
the gate's 5% bound (violated clear pairs, worst junk kind / all kinds: network 6.7% /
5.1%, gradient boosting 5.5% / 4.1%), so gradient boosting, the fewer violations, is
chosen; its 90% interval, scaled per query, has mean half-width 0.056 on held-out
validation tasks (one constant half-width: 0.063; the shipped folder's interval was
calibrated afterwards by ``scripts/calibrate_zeroshot.py`` from the same table, as
this job now does). It is then refitted on all 1,128 tasks and shipped (E2 on the
real tasks: digits / breast_cancer / wine 0.924 / 0.563 / 0.631).
"""

import ml_collections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  cfg = ml_collections.ConfigDict()
  cfg.seed = 0
  cfg.prior = ml_collections.ConfigDict(
    {
      "first_task": 0,
      "num_tasks": 28,
      "labels_dir": "",  # empty: <workdir>/labels
      # Workdirs of ``metaval prior`` runs whose labels are added (comma-separated).
      "from_prior": "runs/prior",
      "learners": ("mlp32",),
      "extra_learners": ("mlp128",),
      "learners_every": 5,
      "steps": 100,
      "num_bases": 2,
      "per_kind": 1,
      "num_seeds": 2,
      "base_range": (40, 250),
      "supp_range": (10, 250),
    }
  )
  cfg.model = ml_collections.ConfigDict(
    {
      "hidden": 128,
      "depth": 2,
      "steps": 1500,
      "lr": 2e-3,
      "weight_decay": 1e-4,
      "groups_per_batch": 32,
      "rank_weight": 1.0,
    }
  )
  cfg.val_share = 0.2
  cfg.coverage = 0.9
  # Refuse candidates that value junk above genuine data on the validation tasks
  # (metaval.zeroshot.gate).
  cfg.gate = True
  # Fit the chosen kind again on every task, validation tasks included (the reported
  # validation figures and the interval stay those of the training-task fit).
  cfg.refit = True
  cfg.workers = 2  # processes featurising the labelled tasks (0: in this process)
  cfg.ship = False  # True: copy the trained model over the one shipped in the package
  if arg == "quick":
    cfg.prior.from_prior = ""
    cfg.workers = 0
    cfg.prior.num_tasks = 6
    cfg.prior.num_bases = 1
    cfg.model.steps = 200
    cfg.val_share = 0.34
  elif arg not in (None, ""):
    raise ValueError(f"unknown zeroshot config variant {arg!r}; use '' or 'quick'")
  cfg.lock()
  return cfg
