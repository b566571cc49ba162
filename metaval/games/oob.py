"""Data-OOB: each point's accuracy under the bootstrap models that left it out.

Not a game (bags are multiplicity masks, each with its own key, as bagging does),
but it values the same players (pool points) and returns the same ``Valuation``.

References:
  Kwon & Zou, "Data-OOB: Out-of-bag Estimate as a Simple and Efficient Data
  Value", ICML 2023.
"""

from __future__ import annotations

import time

import jax
import numpy as np

from metaval.data.tasks import CLASSIFICATION, Task
from metaval.games.game import GameError
from metaval.games.result import Valuation
from metaval.games.utility import RetrainingUtility
from metaval.learners import models
from metaval.learners.models import LearnerSpec
from metaval.learners.solve import CONVEX_SOLVERS
from metaval.learners.train import train_many
from metaval.pairs import keys as keys_lib


def data_oob(
  task: Task, spec: LearnerSpec, *, num_bags: int = 256, seed: int = 0, batch_size: int = 256
) -> Valuation:
  """Data-OOB values of every pool point.

  Bags are multinomial draws of N points from N (``[B, N]`` multiplicities, so a
  point drawn twice weighs twice). Points never out of bag get the mean value.

  Args:
    task: a classification task; its pool points are valued.
    spec: the learner.
    num_bags: bootstrap models.
    seed: seeds the bags and the models' keys.
    batch_size: models per compiled batch (bags are padded to a multiple).

  Returns:
    A ``Valuation``; ``stderr`` is the binomial standard error of each point's
    out-of-bag accuracy (NaN for points never out of bag).
  """
  t0 = time.perf_counter()
  if task.kind != CLASSIFICATION:
    raise GameError("data_oob needs a classification task")
  n = task.pool_size
  rng = np.random.default_rng(seed)
  bags = rng.multinomial(n, np.full(n, 1.0 / n), size=num_bags).astype(np.float32)  # [B, N]
  pad = (-num_bags) % batch_size
  masks = np.concatenate([bags, np.repeat(bags[-1:], pad, 0)]) if pad else bags
  if spec.solver in CONVEX_SOLVERS:
    # Solved bags do not depend on their keys: each bag is a player of a retraining
    # game and a coalition of one, solved like any coalition (size buckets, warm
    # starts, two chunks at a time).
    game = RetrainingUtility(task, spec, players=bags, seed=seed, batch_size=batch_size)
    one = np.eye(num_bags, dtype=bool)
    game(one)
    params = {f: a[:, 0] for f, a in game.solutions(one).items()}  # seed 0 of K = 1
    computed = game.fits_computed
  else:
    keys = keys_lib.split_keys(seed, masks.shape[0])
    params = train_many(keys, task, masks, spec, return_params=True, chunk=batch_size).params
    computed = int(masks.shape[0])
  x = jax.numpy.asarray(task.x)
  predict = jax.jit(jax.vmap(lambda prm: models.apply(prm, x, spec).argmax(-1)))
  pred = np.asarray(predict(params))[:num_bags]  # [B, N]
  correct = pred == task.y[None]
  oob = bags == 0
  cnt = oob.sum(0)
  values = (correct & oob).sum(0) / np.maximum(cnt, 1)
  with np.errstate(invalid="ignore", divide="ignore"):
    se = np.where(cnt > 0, np.sqrt(values * (1 - values) / cnt), np.nan)
  values = np.where(cnt > 0, values, values[cnt > 0].mean() if (cnt > 0).any() else 0.0)
  return Valuation(
    method="data_oob",
    players=list(range(n)),
    values=values,
    stderr=se,
    fits=num_bags,
    fits_computed=computed,
    fits_needed=num_bags,
    seconds=time.perf_counter() - t0,
    samples=num_bags,
    info={"num_bags": num_bags, "min_oob": int(cnt.min())},
  )
