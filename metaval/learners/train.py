"""Train many learners at once: ``jit(vmap(scan(step)))``.

Every model in a batch reads the *same* pool ``x [N, ...]`` and differs only by
its per-point weight vector (a row of ``masks [M, N]``: 0 = not in the training
set, 1 = in it, 2 = in it twice, ...). For the MLP and linear families the pool is
shared (``in_axes=None``), so JAX's batching rule turns the first layer of all M
models into one dense GEMM ``[N, d] x [d, M * width]`` (and likewise its weight
gradient), the shape the CPU runs fastest. Full-batch training computes only on
rows some model uses: the union of a chunk's training sets when models share
them (a label's paired seeds and its B / B ∪ S models do), or each model's own
rows gathered when they do not (``train_many``'s ``gather``). On CPU, MLPs are
vmapped in groups small enough for their activations to stay in cache.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax

from metaval.data.tasks import CLASSIFICATION, LANGUAGE_MODEL, Task
from metaval.errors import MetavalError
from metaval.learners import models, solve
from metaval.learners.models import LearnerSpec
from metaval.learners.rows import (  # noqa: F401  (gather_size is public here)
  _compact,
  _group_size,
  _plan_rows,
  gather_size,
)
from metaval.util import aot

# Number of times the batched trainer was traced, per (spec, kind). Python side
# effects run only while tracing, so this counts compilations, not calls.
TRACE_COUNTS: collections.Counter = collections.Counter()

_EVAL_CHUNK = 128  # LM held-out windows evaluated per step of a lax.map.


class TrainInputError(MetavalError):
  """Inputs to ``train_many`` have the wrong shape, type or values."""


@dataclasses.dataclass
class TrainResult:
  """Output of ``train_many``.

  Attributes:
    metrics: metric name -> ``[M]`` float array; every metric is higher-is-better
      (accuracy, negative log-loss, ...), named ``"<eval set>/<metric>"``.
    params: the trained parameters stacked over models (leading axis M), or None.
  """

  metrics: dict[str, np.ndarray]
  params: object = None


def metric_names(task: Task) -> list[str]:
  """Names of the metrics ``train_many`` reports for ``task``, in order."""
  names = []
  for ev in task.evals:
    if task.kind == CLASSIFICATION:
      names += [f"{ev}/accuracy", f"{ev}/neg_log_loss"]
      names += [f"{ev}/{g}/accuracy" for g in task.group_names]
    else:
      names += [f"{ev}/neg_loss"] + [f"{ev}/{g}/neg_loss" for g in task.group_names]
  return names


def _l2_penalty(params):
  # Penalise weight matrices only (not biases, norms or embeddings' scale vectors).
  leaves = [p for p in jax.tree.leaves(params) if p.ndim >= 2]
  return 0.5 * sum(jnp.sum(p * p) for p in leaves)


def _loss(params, key, weights, x, y, spec: LearnerSpec, lm: bool):
  """Weighted training loss of one model (pure)."""
  if spec.batch_size:
    # Sample a minibatch in proportion to the weights (duplicates count twice).
    idx = jax.random.categorical(
      key, jnp.log(jnp.maximum(weights, 1e-30)), shape=(spec.batch_size,)
    )
    xb = x[idx]
    if lm:
      logits = models.apply(params, xb[:, :-1], spec)  # [B, T, V]
      data_loss = optax.softmax_cross_entropy_with_integer_labels(logits, xb[:, 1:]).mean()
    else:
      logits = models.apply(params, xb, spec)
      data_loss = optax.softmax_cross_entropy_with_integer_labels(logits, y[idx]).mean()
  else:
    logits = models.apply(params, x, spec)  # [N, C]
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, y)
    data_loss = jnp.sum(weights * ce) / jnp.sum(weights)
  return data_loss + spec.l2 * _l2_penalty(params)


def train_one(key, weights, x, y, spec: LearnerSpec, num_classes: int, lm: bool):
  """Trains one learner on the points of ``x`` weighted by ``weights`` (pure).

  Args:
    key: PRNG key; split into an init key and a data-order key. Paired runs (B vs
      B∪S) pass the same key on purpose, so the improvement's seed noise cancels.
    weights: ``[N]`` non-negative weight (multiplicity) of each pool point.
    x: pool inputs ``[N, d]`` (or tokens ``[N, T + 1]``).
    y: pool labels ``[N]``.
    spec: static learner spec.
    num_classes: classes (vocabulary size for the LM).
    lm: whether ``x`` holds token windows.

  Returns:
    Trained parameters.
  """
  k_init, k_data = jax.random.split(key)
  in_dim = 0 if lm else x.shape[-1]
  params = models.init(k_init, spec, in_dim, num_classes)
  tx = optax.adam(spec.lr)
  opt_state = tx.init(params)

  def step(carry, k):
    params, opt_state = carry
    grads = jax.grad(_loss)(params, k, weights, x, y, spec, lm)
    updates, opt_state = tx.update(grads, opt_state, params)
    return (optax.apply_updates(params, updates), opt_state), None

  step_keys = jax.random.split(k_data, spec.steps)
  (params, _), _ = jax.lax.scan(step, (params, opt_state), step_keys)
  return params


def evaluate_one(params, evals, spec: LearnerSpec, num_classes: int, num_groups: int, lm: bool):
  """Higher-is-better metrics of one model on every evaluation set (pure)."""
  out = {}
  for name, (ex, ey) in evals.items():
    if lm:
      n = ex.shape[0]
      pad = (-n) % _EVAL_CHUNK
      chunks = jnp.pad(ex, ((0, pad), (0, 0))).reshape(-1, _EVAL_CHUNK, ex.shape[1])

      def chunk_nll(c):
        logits = models.apply(params, c[:, :-1], spec)
        return optax.softmax_cross_entropy_with_integer_labels(logits, c[:, 1:]).mean(-1)

      nll = jax.lax.map(chunk_nll, chunks).reshape(-1)[:n]  # [n] per-window nats/char
      out[f"{name}/neg_loss"] = -nll.mean()
      per_group = jax.ops.segment_sum(nll, ey, num_groups) / jnp.maximum(
        jax.ops.segment_sum(jnp.ones_like(nll), ey, num_groups), 1.0
      )
      for g in range(num_groups):
        out[f"{name}/{g}/neg_loss"] = -per_group[g]
    else:
      logits = models.apply(params, ex, spec)
      pred = jnp.argmax(logits, -1)
      hit = (pred == ey).astype(jnp.float32)
      out[f"{name}/accuracy"] = hit.mean()
      out[f"{name}/neg_log_loss"] = -optax.softmax_cross_entropy_with_integer_labels(
        logits, ey
      ).mean()
      counts = jnp.maximum(jax.ops.segment_sum(jnp.ones_like(hit), ey, num_classes), 1.0)
      per_class = jax.ops.segment_sum(hit, ey, num_classes) / counts
      for c in range(num_classes):
        out[f"{name}/{c}/class_accuracy"] = per_class[c]
  return out


@functools.partial(
  jax.jit,
  static_argnames=(
    "spec",
    "num_classes",
    "num_groups",
    "lm",
    "return_params",
    "group",
    "shared_rows",
  ),
)
def _train_batch(
  keys,
  masks,
  idx,
  x,
  y,
  evals,
  init,
  precond,
  *,
  spec,
  num_classes,
  num_groups,
  lm,
  return_params,
  group,
  shared_rows=False,
):
  TRACE_COUNTS[(spec, lm)] += 1

  def one(key, w, rows):
    # Dense: every model reads the whole shared pool (rows is None). Gathered: the
    # model's own points x[rows] [k, d], with weights w [k] (0 for padding).
    xx, yy = (x, y) if rows is None else (x[rows], y[rows])
    return train_one(key, w, xx, yy, spec, num_classes, lm)

  def evaluate(params):
    metrics = evaluate_one(params, evals, spec, num_classes, num_groups, lm)
    return metrics, (params if return_params else None)

  # keys [M]; masks [M, N] (dense) or [M, k] (gathered, with idx [M, k]) or [M, U]
  # (shared rows: idx [M / group, U], the rows each group of models shares);
  # x, y, evals are shared by all models (in_axes None).
  if shared_rows:
    # Each group of models reads its own shared rows (gathered here, once per group)
    # and trains on them together: the first layer stays one wide GEMM per group.
    def shared(a):
      k, w, rows = a
      xx, yy = x[rows], y[rows]
      return jax.vmap(lambda kk, ww: evaluate(train_one(kk, ww, xx, yy, spec, num_classes, lm)))(
        k, w
      )

    n_groups = idx.shape[0]
    split = lambda a: a.reshape(n_groups, group, *a.shape[1:])  # noqa: E731
    out = jax.lax.map(shared, (split(keys), split(masks), idx))
    return jax.tree.map(lambda a: a.reshape(n_groups * group, *a.shape[2:]), out)
  if spec.solver == "adam":
    fn = lambda key, w, rows: evaluate(one(key, w, rows))  # noqa: E731
    if group >= keys.shape[0]:
      return jax.vmap(fn)(keys, masks, idx)
    # Groups of `group` models vmapped together, one group after another: each
    # group's activations [group, rows, width] stay in the core's cache.
    return jax.lax.map(lambda a: fn(*a), (keys, masks, idx), batch_size=group)
  # A convex solver: x [M, k, d], y [M, k] are each model's own points, gathered
  # on the host (so the program does not depend on the pool's size); init holds
  # start parameters [M, ...]. All models run in lockstep.
  params = solve.fit_linear(masks, x, y, spec, num_classes, init_params=init, precond=precond)
  return jax.vmap(evaluate)(params)


def _check_inputs(keys, data: Task, masks) -> tuple[jax.Array, np.ndarray]:
  if not isinstance(data, Task):
    raise TrainInputError(f"data must be a metaval Task, got {type(data).__name__}")
  masks = np.asarray(masks)
  if masks.dtype == bool:
    masks = masks.astype(np.float32)
  if masks.ndim == 1:
    raise TrainInputError(
      f"masks must be [num_models, pool_size]; got a 1-D array of {masks.shape[0]} "
      "(wrap a single mask as masks[None])"
    )
  if masks.ndim != 2 or masks.shape[1] != data.pool_size:
    raise TrainInputError(
      f"masks must be [num_models, pool_size={data.pool_size}]; got shape {masks.shape}"
    )
  if not np.issubdtype(masks.dtype, np.number):
    raise TrainInputError(f"masks must be numeric or bool, got dtype {masks.dtype}")
  masks = masks.astype(np.float32)
  if not np.all(np.isfinite(masks)) or np.any(masks < 0):
    raise TrainInputError("masks must be finite and non-negative (point multiplicities)")
  empty = np.flatnonzero(masks.sum(1) <= 0)
  if empty.size:
    raise TrainInputError(
      f"{empty.size} mask(s) select no training points (first: model {empty[0]}); "
      "every model needs a non-empty training set"
    )
  if data.kind == CLASSIFICATION and not np.all(np.isfinite(data.x)):
    raise TrainInputError(f"task {data.name!r} features contain NaN or inf")
  keys = _put(keys)
  if jax.dtypes.issubdtype(keys.dtype, jax.dtypes.prng_key):
    keys = jax.random.key_data(keys)
  if keys.ndim != 2 or keys.shape[0] != masks.shape[0]:
    raise TrainInputError(
      f"keys must hold one PRNG key per model ({masks.shape[0]}); got shape {keys.shape}"
    )
  return keys, masks


def train_many(
  keys,
  data: Task,
  masks,
  spec: LearnerSpec,
  *,
  return_params: bool = False,
  chunk: int | None = None,
  gather: str | int | None = "auto",
  init_params=None,
  union_rows: int | None = None,
  union_group: int | None = None,
  precond=None,
) -> TrainResult:
  """Trains one model per mask row, all in one compiled program, and evaluates them.

  Args:
    keys: ``[M]`` PRNG keys (typed or raw ``[M, 2]``), one per model.
    data: the task whose pool the masks index (``Task.x``, ``Task.y``,
      ``Task.evals``). To train on points outside a task's pool, append them to a
      copy of the task (``dataclasses.replace``) and extend the masks.
    masks: ``[M, N]`` non-negative weights (bool or counts) over the pool.
    spec: learner spec (static: one compilation per spec and batch shape).
    return_params: also return the stacked trained parameters.
    chunk: if set, train at most ``chunk`` models per call; the last chunk is
      padded to full size so every chunk reuses one compiled program.
    gather: how a model reads its training set. ``None`` (or 0): dense, every
      model computes on the whole shared pool and multiplies by its mask. An int
      k: each model gathers its own (at most k) points once, before training,
      and trains on those alone. ``"union"``: consecutive models form groups (as
      many as keep their activations in cache) and each group shares the union
      of its models' training sets, padded to a size bucket (one wide GEMM per
      layer for the group; full-batch Adam only): put models that share points,
      e.g. paired seeds, next to each other. ``"auto"`` (default): for full-batch
      Adam, the groups' rows while they are at most twice the gathered rows (and
      fewer than the pool), else the dense pool or gathered rows, whichever is
      cheaper (``_plan_rows``); otherwise (minibatches, convex solvers) gather
      when the largest subset is at most a third of the pool. Results agree with
      the dense path to float round-off.
    init_params: convex solvers only (``spec.solver`` in
      ``solve.CONVEX_SOLVERS``): stacked parameters ``[M, ...]`` to start each
      model from (a warm start, e.g. B's solution for B ∪ S: same optimum, fewer
      iterations). ``None`` starts from ``models.init``.
    union_rows: with ``gather="union"``, every group's rows padded to this many
      (where they fit; else to their bucket), so calls share one program.
    union_group: with ``gather="union"``, groups of a divisor of this many
      consecutive models (e.g. the K paired seeds of one set), so the grouping, and
      the program, do not depend on the sets.
    precond: convex solvers only: a ``[P, P]`` preconditioner for every model
      (``solve.fit_linear``, e.g. ``precondition.hessian_inverse`` at a superset's optimum).

  Returns:
    ``TrainResult`` with ``[M]`` arrays of higher-is-better metrics.

  Raises:
    TrainInputError: shapes, NaNs or empty training sets, with the problem named.
  """
  keys, masks = _check_inputs(keys, data, masks)
  if data.kind == LANGUAGE_MODEL and spec.family != "lm":
    raise TrainInputError(f"task {data.name!r} is a language-model task; use family 'lm'")
  if data.kind == CLASSIFICATION and spec.family == "lm":
    raise TrainInputError(f"task {data.name!r} is a classification task; 'lm' does not apply")
  lm = data.kind == LANGUAGE_MODEL
  if init_params is not None and spec.solver not in solve.CONVEX_SOLVERS:
    raise TrainInputError(
      f"init_params needs a convex solver ({', '.join(solve.CONVEX_SOLVERS)}); "
      f"spec.solver is {spec.solver!r}"
    )
  if precond is not None and spec.solver not in solve.CONVEX_SOLVERS:
    raise TrainInputError(f"precond needs a convex solver; spec.solver is {spec.solver!r}")
  convex = spec.solver in solve.CONVEX_SOLVERS
  max_active = int((masks > 0).sum(1).max())
  m = masks.shape[0]
  chunk = m if not chunk or chunk >= m else int(chunk)
  n_chunks = math.ceil(m / chunk)
  pad = n_chunks * chunk - m
  if pad:
    keys = jnp.concatenate([keys, jnp.repeat(keys[-1:], pad, 0)])
    masks = np.concatenate([masks, np.repeat(masks[-1:], pad, 0)])
    if init_params is not None:
      init_params = jax.tree.map(
        lambda a: np.concatenate([a, np.repeat(a[-1:], pad, 0)]), init_params
      )
  shared = not (convex or spec.batch_size)  # full-batch Adam: rows may be shared
  union = None
  if gather == "union" and not shared:
    raise TrainInputError("gather='union' needs full-batch Adam (batch_size 0, solver 'adam')")
  if gather == "auto" and not shared:
    k = gather_size(max_active)
    gather = k if (not spec.batch_size and 3 * max_active <= data.pool_size) else None
  elif gather in ("auto", "union"):
    forced = gather == "union"
    gather, union, group = _plan_rows(
      masks, chunk, data.pool_size, forced, spec, union_rows, union_group
    )
  elif gather:
    if int(gather) < max_active:
      raise TrainInputError(
        f"gather={gather} is smaller than the largest training set ({max_active})"
      )
    gather = int(gather)
  x, y = _put(data.x), _put(data.y)
  evals = {k: (_put(a), _put(b)) for k, (a, b) in data.evals.items()}
  idx = None
  if gather:
    idx, masks = _compact(masks, gather)
  if union is None:
    rows = gather or data.pool_size
    group = _group_size(spec, rows, chunk) if shared else chunk
  convex = spec.solver in solve.CONVEX_SOLVERS
  if convex:
    # Solvers read each model's points gathered here ([M, k, d]; the whole pool
    # when dense) and always take start parameters: one program per (M, k).
    if idx is None:
      idx = np.broadcast_to(np.arange(data.pool_size), masks.shape)
    if init_params is None:
      in_dim = spec.features or data.x.shape[-1]
      init_params = {
        "w": np.zeros((len(masks), in_dim, data.num_classes), np.float32),
        "b": np.zeros((len(masks), data.num_classes), np.float32),
      }
  outs, params = [], []
  for i in range(n_chunks):
    sl = slice(i * chunk, (i + 1) * chunk)
    w, xc, yc = masks[sl], x, y
    if convex:
      xc, yc = _put(data.x[idx[sl]]), _put(data.y[idx[sl]])
    elif union is not None:
      # Each group's shared rows (padding: -1 -> row 0 with weight 0), its models'
      # weights read at those rows.
      per = chunk // group
      g_rows = union[i * per : (i + 1) * per]  # [groups, U]
      real = g_rows >= 0
      r = np.where(real, g_rows, 0)
      at = np.broadcast_to(r[:, None, :], (per, group, r.shape[1]))
      w = (np.take_along_axis(w.reshape(per, group, -1), at, 2) * real[:, None, :]).reshape(
        chunk, -1
      )
    met, par = aot.call(
      _train_batch,
      keys[sl],
      _put(w),
      _put(r) if union is not None else (None if idx is None or convex else _put(idx[sl])),
      xc,
      yc,
      evals,
      None if init_params is None else jax.tree.map(functools.partial(_rows, sl=sl), init_params),
      None if precond is None else _put(precond, np.float32),
      spec=spec,
      num_classes=data.num_classes,
      num_groups=len(data.group_names),
      lm=lm,
      return_params=return_params,
      group=group,
      shared_rows=union is not None,
    )
    outs.append(jax.device_get(met))
    if return_params:
      params.append(par)
  metrics = {}
  for raw in outs[0]:
    name = metric_name(raw, data)
    metrics[name] = np.concatenate([o[raw] for o in outs])[:m].astype(np.float64)
  stacked = None
  if return_params:
    stacked = jax.tree.map(lambda *a: jnp.concatenate(a)[:m], *params)
  order = {n: i for i, n in enumerate(metric_names(data))}
  metrics = dict(sorted(metrics.items(), key=lambda kv: order[kv[0]]))
  return TrainResult(metrics=metrics, params=stacked)


def _put(a, dtype=None):
  """An array on the device: NumPy through ``jax.device_put`` (``jnp.asarray`` of a
  NumPy array runs a compiled identity program, one per shape, that a fresh process
  traces and loads before its first use); JAX arrays (typed keys too) as they are."""
  if isinstance(a, jax.Array):
    return a if dtype is None else a.astype(dtype)
  return jax.device_put(np.asarray(a, dtype))


def metric_name(raw: str, task: Task) -> str:
  """Maps internal metric keys with group ids to names with group names."""
  parts = raw.split("/")
  if len(parts) == 3 and parts[1].isdigit():
    g = task.group_names[int(parts[1])]
    return f"{parts[0]}/{g}/{'accuracy' if parts[2] == 'class_accuracy' else parts[2]}"
  return raw


def _rows(a, sl):
  return a[sl]
