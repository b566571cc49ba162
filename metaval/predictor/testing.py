"""Small label sets made with the pair engine, for tests and demos.

The label pipeline (``metaval.labeling``) is the real source of labels; this module
builds a few dozen (B, S) pairs of several registry supplement kinds on a small
task in seconds, so the predictor's tests do not depend on a generated dataset.
Labels are real retraining improvements from ``metaval.pairs.label`` (the label
pipeline's function: paired seeds, B and B ∪ S share each init key).
"""

from __future__ import annotations

import json

import numpy as np

from metaval import pairs as pairs_lib
from metaval.data import get_task, samplers
from metaval.labeling.schema import LabelSet
from metaval.learners.models import LearnerSpec, num_params

# Registry kinds (``metaval.data.samplers``) the toy labels cycle through.
TOY_KINDS = ("clean", "label_noise", "duplicates", "constant", "random_bits")


def _supplement(kind, task, base, rng) -> samplers.Supplement:
  """One supplement of registry ``kind``, sized relative to B (4 to 1.5 |B| points)."""
  outside = task.pool_size - len(base)
  size = int(rng.integers(4, max(5, min(outside, 3 * len(base) // 2))))
  params = {"size": size}
  if kind == "label_noise":
    params["rate"] = float(rng.uniform(0.3, 1.0))
  return samplers.sample_supplement(kind, task, base, rng, **params)


def toy_labels(
  task_name: str = "wine",
  num_pairs: int = 40,
  num_seeds: int = 2,
  kinds=TOY_KINDS,
  spec: LearnerSpec | None = None,
  learner_name: str = "toy_mlp",
  base_size: tuple[int, int] = (20, 60),
  seed: int = 0,
) -> LabelSet:
  """A ``LabelSet`` of ``num_pairs`` real retraining labels on a small task.

  Args:
    task_name: a classification task (``wine``, ``breast_cancer``, ``digits``, ...).
    num_pairs: pairs; kinds cycle through ``kinds``.
    num_seeds: paired seeds per pair.
    kinds: registry supplement kinds (``TOY_KINDS``).
    spec: learner (default: a small MLP).
    learner_name: the learner's name in the label JSON (as the pipeline writes it).
    base_size: range of |B|.
    seed: controls every random choice (and the paired-seed root key).

  Returns:
    The label set.
  """
  task = get_task(task_name)
  spec = spec or LearnerSpec("mlp", width=16, steps=100, lr=0.02, l2=1e-3)
  rng = np.random.default_rng(seed)
  bases, supps = [], []
  for p in range(num_pairs):
    kind = kinds[p % len(kinds)]
    bases.append(np.sort(rng.choice(task.pool_size, int(rng.integers(*base_size)), replace=False)))
    supps.append(_supplement(kind, task, bases[-1], rng))
  pairs = pairs_lib.Pairs.from_supplements(bases, supps)
  out = pairs_lib.label(
    task, pairs, spec, num_seeds=num_seeds, key=pairs_lib.root_key(seed), chunk=16
  )
  # The label pipeline's learner JSON: the spec plus its name and parameter count.
  n_params = num_params(spec, task.feature_dim, task.num_classes)
  spec_json = json.dumps(
    {"name": learner_name, **spec.to_dict(), "params": n_params}, sort_keys=True
  )
  return LabelSet(
    task=task.name,
    task_seed=task.seed,
    metric_names=out.metric_names,
    base_indices=[b.astype(np.int32) for b in bases],
    supp_indices=[s.pool_indices for s in supps],
    supp_x=[s.x for s in supps],
    supp_y=[s.y for s in supps],
    kind=np.array([s.kind for s in supps]),
    recipe=np.array([json.dumps({"kind": s.kind, **s.recipe}, sort_keys=True) for s in supps]),
    learner=np.array([spec_json] * num_pairs),
    learner_params=np.full(num_pairs, n_params),
    metric_base=out.metric_base,
    metric_full=out.metric_full,
    pair_id=np.arange(num_pairs, dtype=np.int64) + seed * 1_000_000,
    shard=np.zeros(num_pairs, np.int32),
  )
