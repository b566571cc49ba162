"""Generate (base, supplement) improvement labels as a TFDS dataset.

Commands:
  metaval generate --config labels:quick --workdir runs/labels_quick
  metaval labels   --config labels:quick --workdir runs/labels_quick

Variants:
  default  digits, linear + MLP(32) learners, K=4 paired seeds, 1,024 pairs
           (17 s per 32-pair shard under load: about 10 min on 2 CPU cores).
  quick    digits, linear learner (deterministic: K=1), 2,048 pairs, every
           supplement kind (measured 49-55 s on 2 shared CPU cores; target < 5 min).
  quick_solved  quick with the linear learner solved to its optimum by L-BFGS
           (``solver="lbfgs"``, at most ``steps`` iterations; B ∪ S warm-started
           from B; ``chunk`` models at a time by continuous batching, see
           ``metaval.learners.solve.solve_sets``): the labels
           ``scripts/bench_labels.py`` times.
  tiny     digits, linear learner, 4 shards x 8 pairs, K=2 (seconds; tests).
  code     standard-library code corpus, tiny character LM, S = whole packages
           or junk windows, K=2, 128 labels (a warm 16-pair shard took 207 s on a
           heavily shared machine, load average 15; estimated 5-10 min idle).
  suite    digits, breast_cancer, wine and synthetic, each with a linear and two
           MLP sizes (16, 64), K=2, 8 shards x 32 pairs per task: for the "unseen
           base task" and "larger learner" splits (first shards took 137 s (digits)
           and ~50 s (others) with compilation on a shared machine; 20-40 min).

Expected result (quick): clean supplements raise digits test accuracy on
average; fully label-flipped and random-bit supplements do not (see
docs/labels.md for the measured table).

Backends: ``--config.backend=ray`` runs shards as Ray tasks, one CPU each (a local
Ray with ``ray_num_cpus`` CPUs, or a running cluster joined with
``--config.ray_address=<head-ip>:6379``); see "Scaling to a cluster" in docs/labels.md.
"""

import ml_collections

from metaval.config_defaults import (
  CLASSIFICATION_KINDS,
  LANGUAGE_MODEL_KINDS,
  learner_config,
  task_config,
)

ALL_KINDS = CLASSIFICATION_KINDS
CODE_KINDS = LANGUAGE_MODEL_KINDS

LINEAR = dict(family="linear", steps=100, lr=0.1, l2=1e-3)
MLP = dict(family="mlp", width=32, depth=1, steps=150, lr=0.01, l2=1e-4)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  cfg = ml_collections.ConfigDict()
  cfg.task = task_config("digits")  # comma-separated names for several tasks
  cfg.learners = ml_collections.ConfigDict(
    {"linear": learner_config(**LINEAR), "mlp32": learner_config(**MLP)}
  )
  cfg.kinds = ALL_KINDS
  cfg.kind_weights = ml_collections.ConfigDict({"clean": 2.0})  # others weigh 1
  cfg.num_shards = 32
  cfg.pairs_per_shard = 32
  cfg.supps_per_base = 4  # supplements sharing one base set (and its B models)
  cfg.num_seeds = 4  # K paired seeds per pair
  cfg.base_size = (50, 400)
  cfg.supp_size = (10, 400)
  cfg.seed = 0
  cfg.chunk = 8  # models per compiled batch (small batches stay in cache: fastest)
  cfg.extra_capacity = 1024  # appended synthetic points per training group
  cfg.backend = "local"  # or "ray"
  cfg.local_workers = 2  # shard processes (single-threaded XLA); 0 = in this process
  # Local workers keep compiled programs in JAX's persistent cache
  # (metaval.util.jaxcache: $METAVAL_CACHE/jax or ~/.cache/metaval/jax), so a later run
  # loads them instead of compiling.
  cfg.jax_cache = True
  cfg.ray_address = ""  # "": start a local Ray; "host:6379", "auto", "ray://host:10001": join
  cfg.ray_num_cpus = 2
  cfg.progress = True
  if arg is None or arg == "default":
    pass
  elif arg in ("quick", "quick_solved"):
    solver = "lbfgs" if arg == "quick_solved" else "adam"
    cfg.learners = ml_collections.ConfigDict({"linear": learner_config(**LINEAR, solver=solver)})
    cfg.num_seeds = 1  # zero init + full batch: the linear learner ignores its seed
    cfg.num_shards = 64
  elif arg == "tiny":
    cfg.learners = ml_collections.ConfigDict({"linear": learner_config(**{**LINEAR, "steps": 40})})
    cfg.num_shards = 4
    cfg.pairs_per_shard = 8
    cfg.num_seeds = 2
    cfg.supp_size = (10, 100)
    cfg.extra_capacity = 256
    cfg.progress = False
  elif arg == "code":
    cfg.task = task_config("code")
    cfg.learners = ml_collections.ConfigDict(
      {
        "lm32": learner_config(
          family="lm", width=32, depth=1, heads=2, steps=150, lr=3e-3, l2=0.0, batch_size=32
        )
      }
    )
    cfg.kinds = CODE_KINDS
    cfg.kind_weights = ml_collections.ConfigDict({"groups": 3.0})
    cfg.num_shards = 8
    cfg.pairs_per_shard = 16
    cfg.num_seeds = 2
    cfg.base_size = (100, 600)
    cfg.supp_size = (20, 400)
  elif arg == "suite":
    cfg.task = task_config("digits,breast_cancer,wine,synthetic")
    cfg.learners = ml_collections.ConfigDict(
      {
        "linear": learner_config(**LINEAR),
        "mlp16": learner_config(**{**MLP, "width": 16}),
        "mlp64": learner_config(**{**MLP, "width": 64}),
      }
    )
    cfg.num_shards = 8
    cfg.num_seeds = 2
    cfg.base_size = (30, 300)
  else:
    raise ValueError(
      f"unknown variant {arg!r}; use default, quick, quick_solved, tiny, code or suite"
    )
  return cfg
