"""The standard valuation benchmark problem: a task pool with some labels flipped."""

from __future__ import annotations

import dataclasses

import numpy as np

from metaval.data.tasks import CLASSIFICATION, Task
from metaval.games import GameError


@dataclasses.dataclass
class NoisyProblem:
  """A training set with some labels flipped, plus held-out sets.

  Attributes:
    task: the valuation task; its pool is the training set (noisy labels) and its
      ``evals`` the set the utility is measured on.
    holdout: a task with the same pool and a disjoint held-out set, used for the
      point removal/addition curves so they are not scored on the set that
      produced the values.
    is_noisy: ``[N]`` bool, True where the label was flipped.
    clean_y: ``[N]`` the labels before flipping.
  """

  task: Task
  holdout: Task
  is_noisy: np.ndarray
  clean_y: np.ndarray


def noisy_problem(
  task: str | Task = "digits",
  *,
  n_train: int = 500,
  noise_rate: float = 0.1,
  seed: int = 0,
  task_seed: int = 0,
) -> NoisyProblem:
  """Draws ``n_train`` pool points and flips the labels of ``noise_rate`` of them.

  The remaining pool points become the removal-curve holdout set. Each flipped
  label moves to a different class, chosen uniformly.

  Args:
    task: a task name (built with ``task_seed``) or a classification ``Task``.
    n_train: training points drawn from the pool.
    noise_rate: fraction of training labels to flip.
    seed: seed of the draw and of the flips.
    task_seed: seed of the task's own pool/test split.

  Returns:
    The ``NoisyProblem``.
  """
  from metaval.data import get_task

  base = get_task(task, seed=task_seed) if isinstance(task, str) else task
  if base.kind != CLASSIFICATION:
    raise GameError(f"noisy-label problems need a classification task, got {base.name!r}")
  n = base.pool_size
  if not 2 <= n_train < n:
    raise GameError(f"n_train must be in [2, {n - 1}] for task {base.name!r}, got {n_train}")
  if not 0.0 <= noise_rate < 1.0:
    raise GameError(f"noise_rate must be in [0, 1), got {noise_rate}")
  rng = np.random.default_rng(seed)
  order = rng.permutation(n)
  tr, ho = np.sort(order[:n_train]), np.sort(order[n_train:])
  clean = base.y[tr].copy()
  flip = np.zeros(n_train, bool)
  flip[rng.choice(n_train, int(round(noise_rate * n_train)), replace=False)] = True
  y = clean.copy()
  shift = rng.integers(1, base.num_classes, size=n_train)
  y[flip] = (clean[flip] + shift[flip]) % base.num_classes
  task_ = dataclasses.replace(
    base,
    x=base.x[tr],
    y=y.astype(np.int32),
    groups=y.astype(np.int32),
    files=np.arange(n_train, dtype=np.int32),
  )
  holdout = dataclasses.replace(task_, evals={"holdout": (base.x[ho], base.y[ho])})
  return NoisyProblem(task=task_, holdout=holdout, is_noisy=flip, clean_y=clean)
