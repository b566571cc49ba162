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
* Convex solvers (``LearnerSpec.solver``, e.g. ``"lbfgs"``): the result does not
  depend on the seed, so one model per base and per pair stands for all K seeds.
  Every model trains on its own points; ``solve.solve_sets`` solves them a few
  at a time in slots padded to fixed size buckets (continuous batching: a slow
  model does not hold others back), and B ∪ S starts from B's solution: the
  optimum is unique, so the label is the same, reached sooner.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import numpy as np

from metaval.data.tasks import CLASSIFICATION, Task
from metaval.errors import MetavalError
from metaval.learners import solve, train
from metaval.learners.models import LearnerSpec
from metaval.learners.solve import CONVEX_SOLVERS
from metaval.learners.train import metric_name, metric_names, train_many
from metaval.pairs import keys as keys_lib
from metaval.pairs import pool as pool_lib
from metaval.pairs.pairs import Pairs
from metaval.util import aot


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


_EVAL_BLOCK = 64  # solved models evaluated per compiled block


def _pad_rows(a: np.ndarray, multiple: int) -> np.ndarray:
  pad = (-a.shape[0]) % multiple
  return np.concatenate([a, np.repeat(a[:1], pad, 0)]) if pad else a


def _train_fixed(
  keys, task: Task, masks, spec: LearnerSpec, chunk: int, gather=None, shared_rows=None, seeds=1
):
  """``train_many`` with the model count padded to a multiple of ``chunk``.

  An int ``gather`` is passed through as a fixed value, so every call compiles the
  same programs whatever its subset sizes. With ``gather=None``, full-batch Adam
  trains each run of ``seeds`` models (one training set's paired seeds) on the rows
  they share, padded to ``shared_rows`` (again one program for every call), or, without
  ``shared_rows``, on rows ``train_many`` picks per call ("auto"). ``chunk`` is the
  padded model count (``label`` passes less than its config's chunk for a label that
  fits in one chunk).

  Returns:
    ``[M, T]`` float64 metrics in ``metric_names(task)`` order.
  """
  m = masks.shape[0]
  max_active = int((masks > 0).sum(1).max())
  if gather and max_active > gather:
    gather = None  # a set larger than the config's bound (e.g. a whole package): dense
  union_rows = union_group = None
  if gather is None and spec.solver == "adam" and not spec.batch_size:
    # Full-batch Adam: each group of models (a base's or a pair's seeds, neighbours
    # in ``masks``) trains on the rows it shares (``train_many``'s "union"), padded
    # to ``shared_rows`` when given (one program for every call), else chosen per
    # call between those rows and the dense pool ("auto").
    if shared_rows is None:
      gather = "auto"
    elif shared_rows < task.pool_size:  # else the dense pool is no larger
      # Rows come in runs of ``seeds`` models with one training set each.
      gather, union_rows, union_group = "union", shared_rows, math.gcd(seeds, chunk)
  res = train_many(
    _pad_rows(keys, chunk),
    task,
    _pad_rows(masks, chunk),
    spec,
    chunk=chunk,
    gather=gather,
    union_rows=union_rows,
    union_group=union_group,
  )
  return np.stack([res.metrics[n][:m] for n in metric_names(task)], axis=1)


@functools.partial(jax.jit, static_argnames=("spec", "num_classes", "num_groups"))
def _evaluate(params, evals, *, spec, num_classes, num_groups):
  one = functools.partial(
    train.evaluate_one, spec=spec, num_classes=num_classes, num_groups=num_groups, lm=False
  )
  return jax.vmap(lambda p: one(p, evals))(params)


def _label_solved(task: Task, pairs: Pairs, spec: LearnerSpec, slots: int, warm_start: bool):
  """Metrics ``[n_bases, T]`` and ``[P, T]`` of the solved B and B ∪ S models.

  A convex solver's result does not depend on the seed, so one model per base and
  per pair stands for all K seeds. Every model trains on its own points only
  (pool points with their multiplicities, then S's appended points), solved by
  ``solve.solve_sets``; B ∪ S starts from B's solution.
  """
  if task.kind != CLASSIFICATION:
    raise MetavalError(f"solver {spec.solver!r} needs a classification task; {task.name!r} is not")
  base_w = pool_lib.base_weights(task, pairs)  # [n_bases, N]
  sets = []
  for w in base_w:
    nz = np.flatnonzero(w)
    sets.append((task.x[nz], task.y[nz], w[nz]))
  for i in range(len(pairs)):
    w, (ex, ey, counts) = pool_lib.split_supplement(task, pairs, i)
    w = w + base_w[pairs.base_of[i]]
    nz = np.flatnonzero(w)
    sets.append(
      (
        np.concatenate([task.x[nz], ex.astype(task.x.dtype)]),
        np.concatenate([task.y[nz], ey.astype(task.y.dtype)]),
        np.concatenate([w[nz], counts]),
      )
    )
  n_bases = len(pairs.bases)
  parents = np.full(len(sets), -1)
  if warm_start:
    parents[n_bases:] = pairs.base_of
  params = solve.solve_sets(sets, spec, task.num_classes, parents=parents, slots=slots)
  # The model count is padded to a multiple of _EVAL_BLOCK, so calls share programs.
  block = _EVAL_BLOCK * math.ceil(len(sets) / _EVAL_BLOCK)
  padded = {k: _pad_rows(v, block) for k, v in params.items()}
  evals = {k: (jax.device_put(a), jax.device_put(b)) for k, (a, b) in task.evals.items()}
  raw = jax.device_get(
    aot.call(
      _evaluate,
      padded,
      evals,
      spec=spec,
      num_classes=task.num_classes,
      num_groups=len(task.group_names),
    )
  )
  names = {metric_name(k, task): v for k, v in raw.items()}
  met = np.stack([names[n][: len(sets)] for n in metric_names(task)], 1).astype(np.float64)
  return met[:n_bases], met[n_bases:]


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
  key=None,
  chunk: int = 64,
  extra_capacity: int = 1024,
  gather: int | None = None,
  warm_start: bool = True,
  shared_rows: int | None = None,
) -> PairLabels:
  """Trains on B and on B ∪ S with paired seeds; returns both sides' metrics.

  Args:
    task: the base task.
    pairs: the P pairs.
    spec: the learner.
    num_seeds: K paired seeds per pair.
    key: root PRNG key (default ``key(0)``), typed or as raw key data (``shard_key``);
      model ``(base b, seed k)`` uses ``fold_in(fold_in(key, b), k)`` on *both* sides
      (``metaval.pairs.keys``).
    chunk: models per compiled batch (batches are padded to it); with a convex
      solver, the models solved at once.
    extra_capacity: appended (non-pool) points per training group; grown to the
      next multiple of 256 if one supplement alone needs more.
    gather: an int k makes every model gather its own (at most k) points (see
      ``train_many``), fixed, so calls share programs. ``None``: full-batch Adam
      trains each base's and each pair's K models on the rows they share (padded
      to a size bucket; a handful of programs) or on the dense pool where that is
      no larger; other learners train on the dense pool.
      Convex solvers always train on each model's own points.
    warm_start: with a convex solver, start each B ∪ S model from its B model's
      solution (same optimum, fewer iterations); ignored otherwise.
    shared_rows: with ``gather=None`` and full-batch Adam, the rows each group of
      models shares are padded to this many (at least max |B| + max |S|), so every
      call uses one program; ``None`` picks a size bucket per call.

  Returns:
    ``PairLabels``.
  """
  if num_seeds < 1:
    raise MetavalError(f"num_seeds must be >= 1, got {num_seeds}")
  key = keys_lib.root_key(0) if key is None else key
  p_count, n_bases, k_seeds = len(pairs), len(pairs.bases), num_seeds
  n = task.pool_size
  keys = keys_lib.pair_keys(key, n_bases, k_seeds)  # [n_bases, K, 2]

  if spec.solver in CONVEX_SOLVERS:
    met_b, met_f = _label_solved(task, pairs, spec, chunk, warm_start)
    return PairLabels(
      metric_names=metric_names(task),
      metric_base=np.repeat(met_b[pairs.base_of][:, None], k_seeds, 1),
      metric_full=np.repeat(met_f[:, None], k_seeds, 1),
      fits=(n_bases + p_count) * k_seeds,
    )

  # A label that fits in one chunk (e.g. one pair's 2K models) pads its calls to the
  # next power of two of its base models (n_bases * K), not to the chunk: with the
  # default chunk of 64 a K=4 label trained 64 models per call to use 4 (16x the
  # work). Bigger jobs keep the chunk, so their calls (shards) share one program.
  if (n_bases + p_count) * k_seeds <= chunk:
    chunk = 1 << max(0, n_bases * k_seeds - 1).bit_length()

  # B models: one per (base, seed), rows ordered (base, seed).
  base_w = pool_lib.base_weights(task, pairs)  # [n_bases, N]
  masks_b = np.repeat(base_w, k_seeds, 0)  # [n_bases * K, N]
  met_b = _train_fixed(
    keys.reshape(-1, 2), task, masks_b, spec, chunk, gather, shared_rows, k_seeds
  )
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
    met = _train_fixed(grp_keys, sub, masks, spec, chunk, gather, shared_rows, k_seeds)
    met_f[members] = met.reshape(len(members), k_seeds, -1)
  return PairLabels(
    metric_names=metric_names(task),
    metric_base=met_b[pairs.base_of],
    metric_full=met_f,
    fits=(n_bases + p_count) * k_seeds,
  )
