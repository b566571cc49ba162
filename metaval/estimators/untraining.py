"""Untraining: the drop when gradient ascent on S unlearns it from the B ∪ S model."""

from __future__ import annotations

import tempfile

from metaval import pairs as pairs_lib
from metaval.data.tasks import Task
from metaval.estimators.base import Estimate, Estimator, check_metric
from metaval.learners.models import LearnerSpec
from metaval.valuation import ascent as untrain


class Untraining(Estimator):
  """metric(B ∪ S) - metric(B ∪ S model after ascent on S), mean over K seeds.

  ``metaval.valuation.untrain.untrain_pairs`` also retrains B for its own label
  (``info["own_label"]``); that time is not the untraining's, so ``seconds`` is its
  steady-state per-pair cost times P: the B ∪ S training (amortised over pairs
  sharing it) plus restore, ascent and evaluation. ``info["x_retrain"]`` compares
  it with a steady-state retraining label in the same call.

  Args:
    ascent: ``untrain.AscentSpec``.
    num_seeds: K paired seeds (keys from ``metaval.pairs.keys`` with root ``seed``).
    seed: root seed.
    ckpt_dir: orbax checkpoints of the B ∪ S models (reused on rerun); None uses
      a temporary folder.
    name: row name (default ``untraining (<steps> ascent steps)``).
  """

  def __init__(
    self,
    ascent: untrain.AscentSpec,
    *,
    num_seeds: int = 2,
    seed: int = 0,
    ckpt_dir: str | None = None,
    name: str | None = None,
  ):
    self.ascent, self.num_seeds, self.seed, self.ckpt_dir = ascent, int(num_seeds), seed, ckpt_dir
    self.name = name or f"untraining ({ascent.steps} ascent steps)"

  def _run(self, task, pairs, spec, ckpt_dir):
    return untrain.untrain_pairs(
      task,
      pairs,
      spec,
      self.ascent,
      num_seeds=self.num_seeds,
      seed=int(self.seed),
      ckpt_dir=ckpt_dir,
      log=lambda *a: None,
    )

  def estimate(self, task: Task, pairs, spec: LearnerSpec, metric: str) -> Estimate:
    j = check_metric(task, metric)
    pairs = pairs_lib.as_pairs(pairs)
    if self.ckpt_dir:
      out = self._run(task, pairs, spec, self.ckpt_dir)
    else:
      with tempfile.TemporaryDirectory(prefix="metaval_untrain_") as ck:
        out = self._run(task, pairs, spec, ck)
    tm = out["timing"]
    cost = untrain.cost_summary(tm)
    per_pair = cost["untrain_total_x"] * tm["retrain_base_s"]
    per_seed = out["estimate"][:, :, j]
    return Estimate(
      self.name,
      per_seed.mean(1),
      per_pair * len(pairs),
      # Fits: the B ∪ S model (K seeds); the ascent is counted in example gradients.
      self.num_seeds / tm["models_per_full_training"],
      info={
        "own_label": out["label"][:, :, j].mean(1),
        "ascent_vs_train_example_grads": cost["ascent_vs_train_example_grads"],
        # Both sides steady state, same process: untraining over one retraining label.
        "x_retrain": cost["untrain_total_x"] / cost["retrain_label_x"],
      },
    )
