"""Train the zero-shot value model on a prior of generated tasks.

Command (quick: a few minutes on 2 CPU cores; labels are generated first, resumably):
  metaval zeroshot-train --config zeroshot:quick --workdir runs/zeroshot_quick

Default (the shipped model; at most about 2 h on 2 idle CPU cores, most of it labels):
  metaval zeroshot-train --config zeroshot --workdir runs/zeroshot
  metaval zeroshot-train --config zeroshot --workdir runs/zeroshot --config.ship=True

Labels: the ``metaval prior`` runs named in ``prior.from_prior`` (the generated-task
prior of ``metaval.prior``) plus, per task of ``num_tasks`` generated here, ``num_bases`` base sets, ``per_kind`` supplements of
every registered kind each, every learner of ``learners`` (a name ``mlp<width>``
or ``linear``) on B and on B ∪ S with ``num_seeds`` paired seeds; ``learners_every``
gives the extra learners to one task in that many (the learner ladder). The model
is chosen between the network and gradient boosting by the mean within-task
Spearman on validation tasks (``val_share`` of the tasks, held out whole).

Expected result: validation Spearman of the chosen model above every single proxy;
see docs/zeroshot.md for measured figures.
"""

import ml_collections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  cfg = ml_collections.ConfigDict()
  cfg.seed = 0
  cfg.prior = ml_collections.ConfigDict(
    {
      "first_task": 0,
      "num_tasks": 400,
      "labels_dir": "",  # empty: <workdir>/labels
      # Workdirs of ``metaval prior`` runs whose labels are added (comma-separated).
      "from_prior": "",
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
      "steps": 3000,
      "lr": 2e-3,
      "weight_decay": 1e-4,
      "groups_per_batch": 32,
      "rank_weight": 1.0,
    }
  )
  cfg.val_share = 0.2
  cfg.coverage = 0.9
  cfg.ship = False  # True: copy the trained model over the one shipped in the package
  if arg == "quick":
    cfg.prior.num_tasks = 6
    cfg.prior.num_bases = 1
    cfg.model.steps = 200
    cfg.val_share = 0.34
  elif arg not in (None, ""):
    raise ValueError(f"unknown zeroshot config variant {arg!r}; use '' or 'quick'")
  cfg.lock()
  return cfg
