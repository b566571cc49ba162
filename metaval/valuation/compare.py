"""Strategies at equal compute: every estimator of a set's value on the same pairs.

Held-out (B, S) pairs are drawn like the label pipeline draws them (every
supplement kind), but from a seed the pipeline's training labels never use, and
labelled by retraining the target learner (the ground truth: the mean paired-seed
improvement). Each estimator of ``metaval.estimators`` (retraining, predictor,
ablation, untraining, per-point sums; each name has one meaning, documented
there) then values the same pairs, and ``score`` puts its agreement with the
label (``metaval.protocol.agreement``) next to its measured cost per pair (wall
seconds and model fits, same process, same machine).

The experiment script ``experiments/e3_strategies.py`` wires them together.
"""

from __future__ import annotations

import ml_collections
import numpy as np

from metaval.data import Task
from metaval.errors import MetavalError
from metaval.estimators import Estimate
from metaval.labeling import shards
from metaval.pairs import Pairs
from metaval.protocol import agreement


class CompareError(MetavalError):
  """Bad inputs to the strategy comparison."""


def heldout_pairs(label_config, task: Task, num_pairs: int, seed: int) -> Pairs:
  """Pairs drawn like ``label_config``'s shards, from a different root seed.

  Args:
    label_config: a ``labels`` config (its kinds, sizes and
      ``supps_per_base``).
    task: the base task.
    num_pairs: P.
    seed: root seed; must differ from ``label_config.seed`` so the pairs are not
      among the predictor's training labels.

  Returns:
    The ``Pairs`` (deterministic in ``seed``).
  """
  if num_pairs < 1:
    raise CompareError(f"num_pairs must be >= 1, got {num_pairs}")
  if int(seed) == int(label_config.seed):
    raise CompareError(f"held-out seed {seed} equals the training labels' seed; pick another")
  cfg = ml_collections.ConfigDict(label_config.to_dict())
  cfg.seed = int(seed)
  bases, supps, base_of = [], [], []
  shard = 0
  while len(supps) < num_pairs:
    b, s, bo = shards.sample_shard_pairs(cfg, task, shard)
    base_of.extend(int(i) + len(bases) for i in bo)
    bases.extend(b)
    supps.extend(s)
    shard += 1
  base_of = np.asarray(base_of[:num_pairs])
  return Pairs.from_supplements(bases, supps[:num_pairs], base_of)


def score(
  estimates: list[Estimate], label: np.ndarray, per_seed: np.ndarray, ref_seconds: float
) -> list[dict]:
  """One table row per estimate: agreement with the label next to cost.

  Args:
    estimates: the estimators' ``metaval.estimators.Estimate``s on the same P pairs.
    label: ``[P]`` retraining label.
    per_seed: ``[P, K]`` per-seed improvements (the ceiling row, K >= 2).
    ref_seconds: wall seconds of one retraining of all P pairs (the cost unit);
      an estimate whose ``info`` has ``x_retrain`` (measured against its own
      steady-state retraining, e.g. untraining) keeps that ratio.

  Returns:
    Rows with ``estimator``, ``spearman``, ``pearson``, ``mae`` (NaN when not on
    the label's scale), ``sign_acc``, ``top10_precision``, ``s_per_pair``,
    ``x_retrain`` (wall cost in retrainings) and ``fits_per_pair``.
  """
  label = np.asarray(label, np.float64)
  rows = []
  n = len(label)
  for e in estimates:
    if e.value.shape != label.shape:
      raise CompareError(f"{e.name}: {e.value.shape} values for {label.shape} labels")
    a = agreement(e.value, label)
    rows.append(
      {
        "estimator": e.name,
        "spearman": a["spearman"],
        "pearson": a["pearson"],
        "mae": a["mae"] if e.same_scale else float("nan"),
        "sign_acc": a["sign_acc"],
        "top10_precision": a["topk_precision"],
        "s_per_pair": e.seconds / n,
        "x_retrain": e.info.get("x_retrain", e.seconds / ref_seconds),
        "fits_per_pair": e.fits,
      }
    )
  k = per_seed.shape[1]
  if k >= 2:
    # Label repeatability: mean of one half of the seeds against the other half.
    a = agreement(per_seed[:, : k // 2].mean(1), per_seed[:, k // 2 :].mean(1))
    rows.append(
      {
        "estimator": f"ceiling: label half-seeds ({k // 2} vs {k - k // 2})",
        "spearman": a["spearman"],
        "pearson": a["pearson"],
        "mae": a["mae"],
        "sign_acc": a["sign_acc"],
        "top10_precision": a["topk_precision"],
        "s_per_pair": float("nan"),
        "x_retrain": float("nan"),
        "fits_per_pair": float("nan"),
      }
    )
  return rows
