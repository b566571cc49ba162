"""The one label function: train on B and on B ∪ S with K paired seeds.

Training layout (why it is fast):

* The B model of ``(base b, seed k)`` is trained once and shared by all of b's
  pairs, and every B ∪ S model of those pairs uses the *same* key (paired seeds,
  ``metaval.pairs.keys``).
* S's pool points become mask weights on the pool; its other points are appended
  to a copy of the pool padded to ``extra_capacity`` (``metaval.pairs.pool``);
  pairs are packed into groups that fit it.
* Model batches are padded to ``chunk`` models, so every call reuses one compiled
  program per (learner, pool shape): at most two shapes per learner.
* Convex solvers (``LearnerSpec.solver``, e.g. ``"lbfgs"``): every model gathers
  its own points (padded to a fixed size bucket), and B ∪ S starts from B's
  solution: the optimum is unique, so the label is the same, reached sooner.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import numpy as np

from metaval.data.tasks import Task
from metaval.errors import MetavalError
from metaval.learners.models import LearnerSpec
from metaval.learners.solve import CONVEX_SOLVERS
from metaval.learners.train import gather_size, metric_names, train_many
from metaval.pairs import keys as keys_lib
from metaval.pairs import pool as pool_lib
from metaval.pairs.pairs import Pairs


@dataclasses.dataclass
class PairLabels:
  """Both sides' metrics of P pairs, K paired seeds, T metrics.

  Attributes:
    metric_names: the T metric names (``metric_names(task)`` order).
    metric_base: ``[P, K, T]`` metric of the B model per seed (pairs sharing a
      base share rows).
    metric_full: ``[P, K, T]`` metric of the B ∪ S model, same keys.
    fits: models trained (B models once per base and seed, B ∪ S per pair and seed).
  """

  metric_names: list[str]
  metric_base: np.ndarray
  metric_full: np.ndarray
  fits: int

  @property
  def improvement_per_seed(self) -> np.ndarray:
    """``[P, K, T]`` metric(B ∪ S) - metric(B) per paired seed."""
    return self.metric_full - self.metric_base

  def improvement(self, metric: str) -> np.ndarray:
    """``[P, K]`` per-seed improvement of one metric."""
    if metric not in self.metric_names:
      raise MetavalError(f"unknown metric {metric!r}; available: {', '.join(self.metric_names)}")
    return self.improvement_per_seed[:, :, self.metric_names.index(metric)]


def _pad_rows(a: np.ndarray, multiple: int) -> np.ndarray:
  pad = (-a.shape[0]) % multiple
  return np.concatenate([a, np.repeat(a[:1], pad, 0)]) if pad else a


def _train_fixed(keys, task: Task, masks, spec: LearnerSpec, chunk: int, gather=None, init=None):
  """``train_many`` with the model count padded to a multiple of ``chunk``.

  ``gather`` is passed through as a fixed value (never "auto"), so every call
  compiles the same programs whatever its subset sizes. A convex solver always
  gathers (its cost is per row), to the size bucket of the largest set.

  Returns:
    ``[M, T]`` float64 metrics in ``metric_names(task)`` order, and the trained
    parameters ``[M, ...]`` for a convex solver (else None).
  """
  m = masks.shape[0]
  max_active = int((masks > 0).sum(1).max())
  if gather and max_active > gather:
    gather = None  # a set larger than the config's bound (e.g. a whole package): dense
  convex = spec.solver in CONVEX_SOLVERS
  if convex and not gather:
    gather = gather_size(max_active)  # label() passes one size for all its calls
  if init is not None:
    init = jax.tree.map(lambda a: _pad_rows(np.asarray(a), chunk), init)
  res = train_many(
    _pad_rows(keys, chunk),
    task,
    _pad_rows(masks, chunk),
    spec,
    chunk=chunk,
    gather=gather,
    init_params=init,
    return_params=convex,
  )
  params = jax.tree.map(lambda a: np.asarray(a)[:m], res.params) if convex else None
  return np.stack([res.metrics[n][:m] for n in metric_names(task)], axis=1), params


def _pack(extras, cap: int, max_pairs: int) -> list[tuple[list[int], int]]:
  """Groups pairs: those with no appended points together, others greedily up to ``cap``."""
  plain = [i for i, e in enumerate(extras) if len(e[2]) == 0]
  groups = [(plain[j : j + max_pairs], 0) for j in range(0, len(plain), max_pairs)]
  cur, used = [], 0
  for i, e in enumerate(extras):
    ne = len(e[2])
    if ne == 0:
      continue
    if cur and (used + ne > cap or len(cur) == max_pairs):
      groups.append((cur, used))
      cur, used = [], 0
    cur.append(i)
    used += ne
  if cur:
    groups.append((cur, used))
  return groups


def label(
  task: Task,
  pairs: Pairs,
  spec: LearnerSpec,
  *,
  num_seeds: int = 4,
  key: jax.Array | None = None,
  chunk: int = 64,
  extra_capacity: int = 1024,
  gather: int | None = None,
  warm_start: bool = True,
) -> PairLabels:
  """Trains on B and on B ∪ S with paired seeds; returns both sides' metrics.

  Args:
    task: the base task.
    pairs: the P pairs.
    spec: the learner.
    num_seeds: K paired seeds per pair.
    key: root PRNG key (default ``key(0)``); model ``(base b, seed k)`` uses
      ``fold_in(fold_in(key, b), k)`` on *both* sides (``metaval.pairs.keys``).
    chunk: models per compiled batch (batches are padded to it).
    extra_capacity: appended (non-pool) points per training group; grown to the
      next multiple of 256 if one supplement alone needs more.
    gather: ``None`` trains on the dense pool; an int k makes every model gather
      its own (at most k) points (see ``train_many``); fixed, so calls share programs.
    warm_start: with a convex solver, start each B ∪ S model from its B model's
      solution (same optimum, fewer iterations); ignored otherwise.

  Returns:
    ``PairLabels``.
  """
  if num_seeds < 1:
    raise MetavalError(f"num_seeds must be >= 1, got {num_seeds}")
  key = keys_lib.root_key(0) if key is None else key
  p_count, n_bases, k_seeds = len(pairs), len(pairs.bases), num_seeds
  n = task.pool_size
  keys = keys_lib.pair_keys(key, n_bases, k_seeds)  # [n_bases, K, 2]

  # B models: one per (base, seed), rows ordered (base, seed).
  base_w = pool_lib.base_weights(task, pairs)  # [n_bases, N]
  masks_b = np.repeat(base_w, k_seeds, 0)  # [n_bases * K, N]
  if spec.solver in CONVEX_SOLVERS and not gather:
    # A solver's cost is per row: gather every model's points, padded to one size
    # bucket (that of the largest B ∪ S) for B and B ∪ S alike: one program.
    sizes = [len(pairs.bases[pairs.base_of[i]]) + len(pairs.supp_x[i]) for i in range(p_count)]
    gather = gather_size(max(sizes + [1]))
  met_b, params_b = _train_fixed(keys.reshape(-1, 2), task, masks_b, spec, chunk, gather)
  met_b = met_b.reshape(n_bases, k_seeds, -1)

  # B ∪ S: pool weights plus de-duplicated appended points per pair.
  pool_w, extras = [], []
  for i in range(p_count):
    w, e = pool_lib.split_supplement(task, pairs, i)
    pool_w.append(base_w[pairs.base_of[i]] + w)
    extras.append(e)
  cap = max([extra_capacity] + [256 * math.ceil(len(e[2]) / 256) for e in extras])
  groups = _pack(extras, cap, max(1, chunk // k_seeds))
  met_f = np.zeros((p_count, k_seeds, met_b.shape[-1]))
  for members, n_extra in groups:
    if n_extra == 0:
      sub, width = task, n  # plain pool: shares the B models' compiled program
    else:
      sub, width = pool_lib.extended_task(task, [extras[i] for i in members], cap), n + cap
    masks, offset = np.zeros((len(members), width), np.float32), n
    for row, i in enumerate(members):
      masks[row, :n] = pool_w[i]
      cnt = extras[i][2]
      masks[row, offset : offset + len(cnt)] = cnt
      offset += len(cnt)
    masks = np.repeat(masks, k_seeds, 0)  # rows ordered (pair, seed)
    grp_keys = keys[pairs.base_of[members]].reshape(-1, 2)  # paired: B's keys
    init = None
    if warm_start and params_b is not None:  # rows (base, seed) of B's solutions
      rows = (pairs.base_of[members][:, None] * k_seeds + np.arange(k_seeds)).reshape(-1)
      init = {name: a[rows] for name, a in params_b.items()}
    met, _ = _train_fixed(grp_keys, sub, masks, spec, chunk, gather, init)
    met_f[members] = met.reshape(len(members), k_seeds, -1)
  return PairLabels(
    metric_names=metric_names(task),
    metric_base=met_b[pairs.base_of],
    metric_full=met_f,
    fits=(n_bases + p_count) * k_seeds,
  )
