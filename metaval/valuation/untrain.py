"""Gradient-ascent untraining: value a subset S by how much unlearning it hurts.

For every pair (B, S) the model trained on B ∪ S (K paired seeds, one batched
``train_many`` call) is saved with orbax. Then, subset by subset, the checkpoint is
restored, a few steps of gradient *ascent* on S's loss are taken (vmapped over the
K seeds), every evaluation metric is measured again, and

    estimate(S) = metric(B ∪ S) - metric(untrained model)

stands in for the retraining label metric(B ∪ S) - metric(B). Pairs that share the
same B ∪ S (the leave-one-group-out design: D is fixed and S_i is one of its
groups, e.g. one package's files for the code LM) share one trained model and one
checkpoint, which is the setting untraining is meant for: train once, restore,
untrain the next subset.

The ascent cannot diverge: the gradient's global norm is clipped, and only the
examples of S whose loss is still below ``loss_cap`` push (an example that has
been unlearned past the cap stops contributing), so the objective is bounded.

Cost is counted honestly and side by side in one process: per pair, the time of
one retraining of B (K seeds, batched like the label pipeline) against the time of
the untraining pass (restore + ascent + evaluation), plus the training of B ∪ S
that untraining needs, amortised over the subsets that share it.

References:
  Golatkar, Achille, Soatto. Eternal Sunshine of the Spotless Net: Selective
  Forgetting in Deep Networks. CVPR 2020.
  Jang et al. Knowledge Unlearning for Mitigating Privacy Risks in Language
  Models. ACL 2023 (gradient ascent on the forget set).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp

from metaval.data.tasks import LANGUAGE_MODEL, Task, get_task
from metaval.errors import MetavalError
from metaval.learners import models
from metaval.learners.models import LearnerSpec, num_params
from metaval.learners.train import evaluate_one, metric_names, train_many
from metaval.protocol import agreement


class UntrainError(MetavalError):
  """Bad untraining or pair-sampling settings."""


# ----------------------------------------------------------------------------
# Pairs. ``Pairs`` has the fields of ``metaval.labeling.LabelSet`` that describe a
# pair, so a LabelSet can be passed wherever Pairs is expected.


@dataclasses.dataclass
class Pairs:
  """P (base, supplement) pairs over a task pool.

  Attributes:
    base_indices: per pair, ``[n_B]`` pool indices of B.
    supp_indices: per pair, ``[n_S]`` pool index of each S point, -1 if synthetic.
    supp_x: per pair, S's inputs (pool points included).
    supp_y: per pair, S's labels as trained on.
    kind: ``[P]`` supplement kind.
  """

  base_indices: list[np.ndarray]
  supp_indices: list[np.ndarray]
  supp_x: list[np.ndarray]
  supp_y: list[np.ndarray]
  kind: np.ndarray

  def __len__(self) -> int:
    return len(self.kind)


CLASSIFICATION_KINDS = ("clean", "label_noise", "duplicate", "single_class", "random_inputs")
CODE_KINDS = ("package", "mixed", "duplicate")


def _classification_supplement(kind, task, base, size, rng, noise_rate):
  n = task.pool_size
  outside = np.setdiff1d(np.arange(n), base)
  if kind == "clean":
    idx = rng.choice(outside, min(size, len(outside)), replace=False)
    return idx, task.x[idx], task.y[idx]
  if kind == "label_noise":
    idx = rng.choice(outside, min(size, len(outside)), replace=False)
    y = task.y[idx].copy()
    flip = rng.random(len(idx)) < noise_rate
    y[flip] = (y[flip] + rng.integers(1, task.num_classes, flip.sum())) % task.num_classes
    pool_idx = np.where(flip, -1, idx)  # a flipped point is not the pool's point
    return pool_idx, task.x[idx], y.astype(np.int32)
  if kind == "duplicate":
    idx = rng.choice(base, min(size, len(base)), replace=False)
    return idx, task.x[idx], task.y[idx]
  if kind == "single_class":
    c = rng.integers(task.num_classes)
    cand = outside[task.y[outside] == c]
    idx = rng.choice(cand, min(size, len(cand)), replace=False)
    return idx, task.x[idx], task.y[idx]
  if kind == "random_inputs":
    x = rng.normal(size=(size, task.feature_dim)).astype(np.float32)
    y = rng.integers(0, task.num_classes, size).astype(np.int32)
    return np.full(size, -1, np.int32), x, y
  raise UntrainError(f"unknown supplement kind {kind!r}; available: {CLASSIFICATION_KINDS}")


def _code_supplement(kind, task, base, size, rng, exclude_group):
  outside = np.setdiff1d(np.arange(task.pool_size), base)
  if kind == "package":
    # S = whole files of one package (a contributor), up to ``size`` windows.
    cand = outside[task.groups[outside] == exclude_group]
    files = rng.permutation(np.unique(task.files[cand]))
    idx = []
    for f in files:
      if len(idx) >= size:
        break
      idx.extend(cand[task.files[cand] == f].tolist())
    idx = np.asarray(idx[:size], np.int64)
  elif kind == "mixed":
    idx = rng.choice(outside, min(size, len(outside)), replace=False)
  elif kind == "duplicate":
    idx = rng.choice(base, min(size, len(base)), replace=False)
  else:
    raise UntrainError(f"unknown code supplement kind {kind!r}; available: {CODE_KINDS}")
  return idx, task.x[idx], task.y[idx]


def sample_pairs(
  task: Task,
  num_pairs: int,
  base_size: int,
  supp_sizes,
  kinds,
  rng: np.random.Generator,
  *,
  supps_per_base: int = 1,
  noise_rate: float = 0.5,
) -> Pairs:
  """Random (B, S) pairs with supplements of several kinds and sizes.

  A small local sampler (the label pipeline's ``sample_supplement`` registry is
  richer); every ``supps_per_base`` consecutive pairs share one B, so supplements
  can be compared head to head on the same base. For the code task B excludes
  one package and a ``package`` supplement is whole files of that package.

  Args:
    task: the base task.
    num_pairs: number of pairs P.
    base_size: points in B.
    supp_sizes: sizes to draw S's size from.
    kinds: supplement kinds to cycle through.
    rng: numpy generator.
    supps_per_base: consecutive pairs sharing one B.
    noise_rate: label-flip rate of ``label_noise`` supplements.

  Returns:
    ``Pairs``.
  """
  if num_pairs < 1 or base_size < 1 or supps_per_base < 1:
    raise UntrainError("num_pairs, base_size and supps_per_base must be >= 1")
  if base_size >= task.pool_size:
    raise UntrainError(f"base_size must be < pool size {task.pool_size}, got {base_size}")
  allowed = CODE_KINDS if task.kind == LANGUAGE_MODEL else CLASSIFICATION_KINDS
  for k in kinds:
    if k not in allowed:
      raise UntrainError(f"unknown supplement kind {k!r} for task {task.name!r}; use {allowed}")
  out = Pairs([], [], [], [], np.empty(0, object))
  kinds_out = []
  base, group = None, 0
  for p in range(num_pairs):
    if p % supps_per_base == 0:
      if task.kind == LANGUAGE_MODEL:
        group = int(rng.integers(len(task.group_names)))
        cand = np.flatnonzero(task.groups != group)
      else:
        cand = np.arange(task.pool_size)
      base = np.sort(rng.choice(cand, min(base_size, len(cand)), replace=False))
    kind = kinds[p % len(kinds)]
    size = int(rng.choice(np.asarray(supp_sizes)))
    if task.kind == LANGUAGE_MODEL:
      idx, x, y = _code_supplement(kind, task, base, size, rng, group)
    else:
      idx, x, y = _classification_supplement(kind, task, base, size, rng, noise_rate)
    out.base_indices.append(base.astype(np.int32))
    out.supp_indices.append(np.asarray(idx, np.int32))
    out.supp_x.append(np.asarray(x))
    out.supp_y.append(np.asarray(y, np.int32))
    kinds_out.append(kind)
  out.kind = np.asarray(kinds_out)
  return out


def leave_group_out_pairs(task: Task, groups=None, pool_indices=None) -> Pairs:
  """Pairs (D \\ S_i, S_i) where D is fixed and S_i is D's points of group i.

  Every pair has the same B ∪ S = D, so one trained model serves all subsets. For
  the code task S_i is one package's files; for classification one class.
  """
  d = np.arange(task.pool_size) if pool_indices is None else np.asarray(pool_indices)
  names = list(task.group_names)
  gids = range(len(names)) if groups is None else [names.index(g) for g in groups]
  out = Pairs([], [], [], [], np.empty(0, object))
  kinds = []
  for g in gids:
    s = d[task.groups[d] == g]
    if len(s) == 0 or len(s) == len(d):
      continue
    kinds.append(f"group:{names[g]}")
    out.base_indices.append(np.setdiff1d(d, s).astype(np.int32))
    out.supp_indices.append(s.astype(np.int32))
    out.supp_x.append(task.x[s])
    out.supp_y.append(task.y[s].astype(np.int32))
  out.kind = np.asarray(kinds)
  return out


def training_set(task: Task, pairs) -> tuple[Task, np.ndarray, np.ndarray]:
  """Appends S's synthetic points to a copy of the pool and builds the masks.

  Returns:
    ``(extended_task, base_masks [P, N'], supp_masks [P, N'])``: multiplicities of
    B's and S's points over the extended pool (S may duplicate B's points, so the
    full training set of pair p is ``base_masks[p] + supp_masks[p]``).
  """
  n = task.pool_size
  extra_x, extra_y, extra_pos = [], [], []
  offset = n
  for idx, x, y in zip(pairs.supp_indices, pairs.supp_x, pairs.supp_y):
    syn = np.flatnonzero(np.asarray(idx) < 0)
    extra_x.append(np.asarray(x)[syn])
    extra_y.append(np.asarray(y)[syn])
    extra_pos.append(offset + np.arange(len(syn)))
    offset += len(syn)
  ext = task
  if offset > n:
    ext = dataclasses.replace(
      task,
      x=np.concatenate([task.x] + extra_x).astype(task.x.dtype),
      y=np.concatenate([task.y] + extra_y).astype(np.int32),
      groups=np.concatenate([task.groups, np.full(offset - n, -1, np.int32)]),
      files=np.concatenate([task.files, np.full(offset - n, -1, np.int32)]),
    )
  p = len(pairs)
  base = np.zeros((p, offset), np.float32)
  supp = np.zeros((p, offset), np.float32)
  for i in range(p):
    np.add.at(base[i], np.asarray(pairs.base_indices[i]), 1.0)
    idx = np.asarray(pairs.supp_indices[i])
    np.add.at(supp[i], idx[idx >= 0], 1.0)
    np.add.at(supp[i], extra_pos[i], 1.0)
  if np.any(supp.sum(1) == 0):
    raise UntrainError("a supplement is empty; every S needs at least one point")
  return ext, base, supp


def pair_keys(seed: int, num_pairs: int, num_seeds: int) -> jax.Array:
  """``[P, K]`` keys. B and B ∪ S of one pair use the *same* keys on purpose
  (paired seeds), so the improvement's init and data-order noise cancels."""
  root = jax.random.key(seed)
  return jax.vmap(lambda p: jax.random.split(jax.random.fold_in(root, p), num_seeds))(
    jnp.arange(num_pairs)
  )


# ----------------------------------------------------------------------------
# The untraining step (pure, vmapped over seeds).


@dataclasses.dataclass(frozen=True)
class AscentSpec:
  """Static settings of the gradient-ascent pass (hashable).

  Attributes:
    steps: ascent steps per subset.
    lr: step size of the (clipped) gradient ascent.
    max_grad_norm: global gradient norm clip, so one step moves at most ``lr``
      times this in parameter space.
    loss_cap: an example of S stops pushing once its loss exceeds this (nats),
      and the whole ascent stops once S's mean loss does, so the objective is
      bounded and the ascent cannot run away.
    batch_size: 0 ascends on all of S each step; > 0 samples this many S
      examples per step (the LM).
    fraction_scaled: multiply the step size by S's share of the B ∪ S training
      weight (its share of the training objective), so a small S is unlearned
      less than a large one.
    optimizer: ``"adam"`` (the trainer's optimizer: steps of about ``lr`` per
      parameter even where S is fitted and its gradient is tiny) or ``"sgd"``.
  """

  steps: int = 5
  lr: float = 0.01
  max_grad_norm: float = 1.0
  loss_cap: float = 5.0
  batch_size: int = 0
  fraction_scaled: bool = True
  optimizer: str = "adam"

  def __post_init__(self):
    if self.optimizer not in ("adam", "sgd"):
      raise UntrainError(f"ascent optimizer must be 'adam' or 'sgd', got {self.optimizer!r}")
    if self.steps < 0 or self.batch_size < 0:
      raise UntrainError("ascent steps and batch_size must be >= 0")
    for f in ("lr", "max_grad_norm", "loss_cap"):
      v = getattr(self, f)
      if not (v > 0 and np.isfinite(v)):
        raise UntrainError(f"ascent {f} must be positive and finite, got {v}")


def _per_example_loss(params, x, y, spec: LearnerSpec, lm: bool):
  if lm:
    logits = models.apply(params, x[:, :-1], spec)  # [n, T, V]
    return optax.softmax_cross_entropy_with_integer_labels(logits, x[:, 1:]).mean(-1)
  logits = models.apply(params, x, spec)  # [n, C]
  return optax.softmax_cross_entropy_with_integer_labels(logits, y)


def untrain_one(params, key, sx, sy, sw, share, spec: LearnerSpec, asc: AscentSpec, lm: bool):
  """Gradient ascent on S's loss for one model (pure).

  Args:
    params: trained parameters of the B ∪ S model.
    key: PRNG key for minibatch sampling (unused when ``asc.batch_size == 0``).
    sx: ``[n_max, ...]`` S's inputs, zero-padded.
    sy: ``[n_max]`` S's labels.
    sw: ``[n_max]`` S's multiplicities (0 = padding).
    share: S's share of the B ∪ S training weight (a scalar).
    spec: learner spec.
    asc: ascent settings.
    lm: whether ``sx`` holds token windows.

  Returns:
    ``(params, final_mean_loss)``: the untrained parameters and S's mean loss after.
  """
  lr = asc.lr * (share if asc.fraction_scaled else 1.0)
  base = optax.adam(1.0) if asc.optimizer == "adam" else optax.sgd(1.0)
  tx = optax.chain(optax.clip_by_global_norm(asc.max_grad_norm), base)

  def mean_loss(p):
    return jnp.sum(sw * _per_example_loss(p, sx, sy, spec, lm)) / jnp.sum(sw)

  def objective(p, k):
    if asc.batch_size:
      idx = jax.random.categorical(k, jnp.log(jnp.maximum(sw, 1e-30)), shape=(asc.batch_size,))
      loss = _per_example_loss(p, sx[idx], sy[idx], spec, lm)  # [b]
      w = jnp.ones_like(loss)
    else:
      loss = _per_example_loss(p, sx, sy, spec, lm)  # [n_max]
      w = sw
    # Examples already past the cap stop pushing: the ascent is bounded.
    active = jax.lax.stop_gradient(loss < asc.loss_cap)
    return jnp.sum(w * active * loss) / jnp.sum(w)

  def step(carry, k):
    p, state = carry
    g = jax.grad(objective)(p, k)
    # Ascent = descent on -objective; optax's update already carries the minus.
    neg = jax.tree.map(jnp.negative, g)
    u, state = tx.update(neg, state, p)
    # Global stop: once S's mean loss passes the cap the model is frozen.
    go = (mean_loss(p) < asc.loss_cap).astype(jnp.float32)
    return (jax.tree.map(lambda a, b: a + go * lr * b, p, u), state), None

  keys = jax.random.split(key, max(asc.steps, 1))[: asc.steps]
  (params, _), _ = jax.lax.scan(step, (params, tx.init(params)), keys)
  return params, mean_loss(params)


@functools.partial(
  jax.jit, static_argnames=("spec", "asc", "num_classes", "num_groups", "lm", "evaluate")
)
def _untrain_batch(
  params, keys, sx, sy, sw, share, evals, *, spec, asc, num_classes, num_groups, lm, evaluate
):
  def one(p, k):
    p, final = untrain_one(p, k, sx, sy, sw, share, spec, asc, lm)
    met = evaluate_one(p, evals, spec, num_classes, num_groups, lm) if evaluate else {}
    return met, final

  # params: [K, ...]; keys [K]; S and evals shared by the K seeds.
  return jax.vmap(one)(params, keys)


@functools.partial(jax.jit, static_argnames=("spec", "num_classes", "num_groups", "lm"))
def _evaluate_batch(params, evals, *, spec, num_classes, num_groups, lm):
  return jax.vmap(lambda p: evaluate_one(p, evals, spec, num_classes, num_groups, lm))(params)


def _public_names(raw: dict, task: Task) -> dict:
  """``evaluate_one`` keys -> the names ``train_many`` reports."""
  out = {}
  for k, v in raw.items():
    parts = k.split("/")
    if len(parts) == 3 and parts[1].isdigit():
      metric = "accuracy" if parts[2] == "class_accuracy" else parts[2]
      k = f"{parts[0]}/{task.group_names[int(parts[1])]}/{metric}"
    out[k] = np.asarray(v, np.float64)
  return out


# ----------------------------------------------------------------------------
# The run.


def _write_json(path: str, obj) -> None:
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    json.dump(obj, f, indent=2, default=float)
  os.replace(tmp, path)


def _block(tree):
  return jax.tree.map(
    lambda a: a.block_until_ready() if hasattr(a, "block_until_ready") else a, tree
  )


def _median_steady(times: list[float]) -> float:
  """Median call time without the first call, which compiles."""
  rest = times[1:] if len(times) > 1 else times
  return float(np.median(rest)) if rest else float("nan")


def untrain_pairs(
  task: Task,
  pairs,
  spec: LearnerSpec,
  asc: AscentSpec,
  *,
  num_seeds: int = 2,
  seed: int = 0,
  ckpt_dir: str,
  log=print,
) -> dict:
  """Labels the pairs by retraining and values them by untraining, side by side.

  Args:
    task: base task.
    pairs: ``Pairs`` (or a ``LabelSet``).
    spec: learner spec.
    asc: ascent settings.
    num_seeds: K paired seeds per pair.
    seed: root of the PRNG keys.
    ckpt_dir: orbax checkpoint directory for the trained B ∪ S models; models
      already there are restored instead of retrained (resume).
    log: progress printer.

  Returns:
    dict with ``metric_names``, ``label`` ``[P, K, T]`` (retraining improvement),
    ``estimate`` ``[P, K, T]`` (untraining drop), ``before`` ``[P, K, T]``,
    ``final_loss`` ``[P, K]`` (S's loss after ascent), ``kind`` and ``timing``.
  """
  lm = task.kind == LANGUAGE_MODEL
  p_count = len(pairs)
  ext, base_masks, supp_masks = training_set(task, pairs)
  full_masks = base_masks + supp_masks
  keys = pair_keys(seed, p_count, num_seeds)  # [P, K]
  names = metric_names(task)
  evals = {k: (jnp.asarray(a), jnp.asarray(b)) for k, (a, b) in task.evals.items()}
  statics = dict(spec=spec, num_classes=task.num_classes, num_groups=len(task.group_names), lm=lm)

  # Pairs with identical B ∪ S (and identical keys after dedupe: we key models by
  # the first pair that uses them) share one trained model and checkpoint.
  uniq, model_of = np.unique(full_masks, axis=0, return_inverse=True)
  model_of = np.asarray(model_of).reshape(-1)
  first_pair = [int(np.flatnonzero(model_of == u)[0]) for u in range(len(uniq))]
  mngr = ocp.CheckpointManager(
    os.path.abspath(ckpt_dir), options=ocp.CheckpointManagerOptions(max_to_keep=None)
  )
  have = set(mngr.all_steps())
  before_path = os.path.join(ckpt_dir, "before.npz")
  before_cache = dict(np.load(before_path)) if os.path.exists(before_path) else {}
  before = np.zeros((len(uniq), num_seeds, len(names)))
  t_full = []
  abstract = None
  for u, p0 in enumerate(first_pair):
    if u in have and f"m{u}" in before_cache:
      before[u] = before_cache[f"m{u}"]
      continue
    t0 = time.perf_counter()
    # Paired keys: the B ∪ S model of pair p0 uses keys[p0]; all pairs sharing it
    # use keys[p0] for their B models too (below), so every label stays paired.
    res = train_many(
      keys[p0], ext, np.repeat(uniq[u][None], num_seeds, 0), spec, return_params=True
    )
    _block(res.params)
    t_full.append(time.perf_counter() - t0)
    before[u] = np.stack([res.metrics[n] for n in names], -1)
    mngr.save(u, args=ocp.args.StandardSave(res.params))
    mngr.wait_until_finished()
    before_cache[f"m{u}"] = before[u]
    np.savez(before_path + ".tmp.npz", **before_cache)
    os.replace(before_path + ".tmp.npz", before_path)
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, res.params)
  if abstract is None:
    in_dim = 0 if lm else task.feature_dim
    one = jax.eval_shape(lambda k: models.init(k, spec, in_dim, task.num_classes), keys[0, 0])
    abstract = jax.tree.map(lambda s: jax.ShapeDtypeStruct((num_seeds,) + s.shape, s.dtype), one)
  log(f"trained {len(uniq) - len(have & set(range(len(uniq))))} B∪S model group(s) of {num_seeds}")

  # S padded to one size so one compiled ascent program serves every subset.
  n_max = int(max((supp_masks > 0).sum(1)))
  x_all, y_all = ext.x, ext.y
  label = np.zeros((p_count, num_seeds, len(names)))
  estimate = np.zeros_like(label)
  final_loss = np.zeros((p_count, num_seeds))
  t_base, t_restore, t_ascent = [], [], []
  for p in range(p_count):
    u = int(model_of[p])
    # (1) One retraining of B: K paired seeds, the keys the B ∪ S model used.
    t0 = time.perf_counter()
    res_b = train_many(keys[first_pair[u]], ext, np.repeat(base_masks[p][None], num_seeds, 0), spec)
    t_base.append(time.perf_counter() - t0)
    metric_b = np.stack([res_b.metrics[n] for n in names], -1)
    label[p] = before[u] - metric_b

    # (2) Untraining: restore, ascend on S, evaluate.
    t0 = time.perf_counter()
    params = mngr.restore(u, args=ocp.args.StandardRestore(abstract))
    _block(params)
    t1 = time.perf_counter()
    pos = np.flatnonzero(supp_masks[p] > 0)
    pad = n_max - len(pos)
    sx = np.concatenate([x_all[pos], np.zeros((pad,) + x_all.shape[1:], x_all.dtype)])
    sy = np.concatenate([y_all[pos], np.zeros(pad, np.int32)])
    sw = np.concatenate([supp_masks[p][pos], np.zeros(pad, np.float32)])
    share = float(supp_masks[p].sum() / full_masks[p].sum())
    akeys = jax.vmap(lambda k: jax.random.fold_in(k, 1))(keys[p])
    met, final = _untrain_batch(
      params,
      akeys,
      jnp.asarray(sx),
      jnp.asarray(sy),
      jnp.asarray(sw),
      share,
      evals,
      asc=asc,
      evaluate=True,
      **statics,
    )
    met = _public_names(jax.device_get(met), task)
    t2 = time.perf_counter()
    t_restore.append(t1 - t0)
    t_ascent.append(t2 - t1)
    after = np.stack([met[n] for n in names], -1)
    estimate[p] = before[u] - after
    final_loss[p] = np.asarray(final)
    if (p + 1) % max(1, p_count // 5) == 0 or p + 1 == p_count:
      log(f"  pair {p + 1}/{p_count}: retrain B {t_base[-1]:.2f}s, untrain {t2 - t0:.2f}s")

  # Example-gradient counts per model.
  n_base = base_masks.sum(1)
  n_supp = (supp_masks > 0).sum(1)
  train_grads = spec.steps * (spec.batch_size if spec.batch_size else n_base)
  ascent_grads = asc.steps * (asc.batch_size if asc.batch_size else n_supp)
  timing = {
    "retrain_base_s": _median_steady(t_base),
    # One B ∪ S call is all compile + run: too few to separate the two (NaN).
    "train_full_s": _median_steady(t_full) if len(t_full) > 1 else float("nan"),
    # Training-set size ratio B ∪ S / B, for estimating it when not timed.
    "full_over_base_size": float(np.mean(full_masks.sum(1) / base_masks.sum(1))),
    "restore_s": _median_steady(t_restore),
    "ascent_eval_s": _median_steady(t_ascent),
    "compile_base_s": (t_base[0] - _median_steady(t_base)) if len(t_base) > 1 else float("nan"),
    "compile_ascent_s": (t_ascent[0] - _median_steady(t_ascent))
    if len(t_ascent) > 1
    else float("nan"),
    "models_per_full_training": p_count / len(uniq),
    "train_example_grads": float(np.mean(train_grads)),
    "ascent_example_grads": float(np.mean(ascent_grads)),
    "num_calls": p_count,
    "minibatch_grads": float(spec.steps * spec.batch_size) if spec.batch_size else -1.0,
  }
  return {
    "metric_names": names,
    "label": label,
    "estimate": estimate,
    "before": before[model_of],
    "final_loss": final_loss,
    "kind": np.asarray(pairs.kind),
    "timing": timing,
  }


def cost_summary(timing: dict) -> dict:
  """Untraining cost in units of one retraining of B (same K, same process).

  ``untrain_marginal`` counts restore + ascent + evaluation only (the B ∪ S model
  exists already); ``untrain_total`` adds the B ∪ S training, amortised over the
  subsets that share it; ``retrain_label`` is what the label costs (B ∪ S and B).
  """
  tb = timing["retrain_base_s"]
  marginal = timing["restore_s"] + timing["ascent_eval_s"]
  tf = timing["train_full_s"]
  estimated = not np.isfinite(tf)
  if estimated:
    # Not timed in steady state (resumed, or a single shared model): estimate it
    # from B's time; a full-batch step costs in proportion to the set size, a
    # minibatch step does not.
    full_batch = timing["train_example_grads"] != timing.get("minibatch_grads", -1)
    tf = tb * (timing["full_over_base_size"] if full_batch else 1.0)
  amort = tf / timing["models_per_full_training"]
  return {
    "untrain_marginal_x": marginal / tb,
    "untrain_total_x": (amort + marginal) / tb,
    "retrain_label_x": (amort + tb) / tb,
    "ascent_vs_train_example_grads": timing["ascent_example_grads"] / timing["train_example_grads"],
    "train_full_estimated": estimated,
  }


def _score(out: dict, metrics) -> dict:
  names = out["metric_names"]
  rows = {}
  for m in metrics:
    if m not in names:
      raise UntrainError(f"unknown metric {m!r}; available: {', '.join(names)}")
    j = names.index(m)
    est = out["estimate"][:, :, j].mean(1)
    lab = out["label"][:, :, j].mean(1)
    rows[m] = agreement(est, lab)
    # Label repeatability ceiling: seed 0's label against the other seeds' mean.
    if out["label"].shape[1] >= 2:
      rows[m]["label_split_half_spearman"] = agreement(
        out["label"][:, 0, j], out["label"][:, 1:, j].mean(1)
      )["spearman"]
  return rows


def _markdown(rows: dict, cost: dict, timing: dict, header: str) -> str:
  lines = [
    header,
    "",
    "| metric | n | Spearman | Pearson | sign acc | top-10% | label split-half ρ |",
  ]
  lines.append("|---|---|---|---|---|---|---|")
  for m, r in rows.items():
    lines.append(
      f"| {m} | {int(r['n'])} | {r['spearman']:.3f} | {r['pearson']:.3f} | {r['sign_acc']:.2f} "
      f"| {r['topk_precision']:.2f} | {r.get('label_split_half_spearman', float('nan')):.3f} |"
    )
  lines += [
    "",
    "| cost (per subset, K seeds, steady state) | seconds | × one retraining of B |",
    "|---|---|---|",
    f"| retrain B | {timing['retrain_base_s']:.3f} | 1.00 |",
    f"| train B∪S (amortised over {timing['models_per_full_training']:.0f} subset(s))"
    f"{' (estimated from B, see notes)' if cost['train_full_estimated'] else ''} | "
    f"{timing['train_full_s'] / timing['models_per_full_training']:.3f} | "
    f"{cost['retrain_label_x'] - 1:.2f} |",
    f"| untrain: restore + ascent + eval | {timing['restore_s'] + timing['ascent_eval_s']:.3f} "
    f"| {cost['untrain_marginal_x']:.2f} |",
    f"| untrain total (B∪S training + untrain) | | {cost['untrain_total_x']:.2f} |",
    f"| retraining label (B∪S + B) | | {cost['retrain_label_x']:.2f} |",
    "",
    f"Example-gradients: ascent {timing['ascent_example_grads']:.0f} vs training "
    f"{timing['train_example_grads']:.0f} per model "
    f"({cost['ascent_vs_train_example_grads']:.3f}×).",
  ]
  return "\n".join(lines)


def config_hash(config) -> str:
  d = config.to_dict() if hasattr(config, "to_dict") else dict(config)
  return hashlib.sha1(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:10]


def build_pairs(config, task: Task) -> Pairs:
  """The pairs a config describes (``pairs.mode``: ``random`` or ``leave_group_out``)."""
  pc = config.pairs
  if pc.mode == "leave_group_out":
    d = None
    if pc.base_size and pc.base_size < task.pool_size:
      d = np.sort(
        np.random.default_rng(pc.seed).choice(task.pool_size, pc.base_size, replace=False)
      )
    groups = list(pc.groups) if pc.groups else None
    return leave_group_out_pairs(task, groups=groups, pool_indices=d)
  if pc.mode == "random":
    return sample_pairs(
      task,
      pc.num_pairs,
      pc.base_size,
      tuple(pc.supp_sizes),
      tuple(pc.kinds),
      np.random.default_rng(pc.seed),
      supps_per_base=pc.supps_per_base,
      noise_rate=pc.noise_rate,
    )
  raise UntrainError(f"unknown pairs.mode {pc.mode!r}; use random or leave_group_out")


def run(config, workdir: str | None = None) -> dict:
  """``metaval untrain``: untraining estimates vs retraining labels, and their cost.

  Writes ``untrain.json`` and ``untrain.md`` under ``workdir`` (orbax checkpoints
  under ``workdir/ckpt_<config hash>``, reused on rerun) and returns the summary.
  """
  task = get_task(config.task.name, seed=config.task.seed)
  spec = LearnerSpec.from_config(config.learner)
  asc = AscentSpec(**dict(config.ascent))
  pairs = build_pairs(config, task)
  if len(pairs) < 3:
    raise UntrainError(f"need at least 3 pairs to score untraining, got {len(pairs)}")
  workdir = workdir or os.path.join("runs", "untrain")
  os.makedirs(workdir, exist_ok=True)
  ckpt_dir = os.path.join(workdir, f"ckpt_{config_hash(config)}")
  in_dim = 0 if spec.family == "lm" else task.feature_dim
  print(task.describe())
  print(
    f"learner {spec.family} width {spec.width} ({num_params(spec, in_dim, task.num_classes):,} "
    f"params), {len(pairs)} pairs x {config.num_seeds} seeds, ascent {asc}"
  )
  t0 = time.perf_counter()
  out = untrain_pairs(
    task, pairs, spec, asc, num_seeds=config.num_seeds, seed=config.seed, ckpt_dir=ckpt_dir
  )
  metrics = list(config.metrics) or [n for n in out["metric_names"] if n.count("/") == 1]
  rows = _score(out, metrics)
  cost = cost_summary(out["timing"])
  kinds = {}
  j = out["metric_names"].index(metrics[0])
  for k in np.unique(out["kind"]):
    sel = out["kind"] == k
    kinds[str(k)] = {
      "n": int(sel.sum()),
      "label_mean": float(out["label"][sel, :, j].mean()),
      "estimate_mean": float(out["estimate"][sel, :, j].mean()),
    }
  md = _markdown(
    rows,
    cost,
    out["timing"],
    f"Untraining vs retraining on `{task.name}` ({spec.family} width {spec.width}, "
    f"{len(pairs)} pairs × {config.num_seeds} seeds, {asc.steps} ascent steps)",
  )
  print(md)
  summary = {
    "task": task.name,
    "learner": spec.to_dict(),
    "ascent": dataclasses.asdict(asc),
    "num_pairs": len(pairs),
    "num_seeds": int(config.num_seeds),
    "agreement": rows,
    "cost": cost,
    "timing": out["timing"],
    "by_kind": kinds,
    "seconds": time.perf_counter() - t0,
    "two_x_training_claim": {
      "untrain_total_x": cost["untrain_total_x"],
      "holds_within_25pct": bool(abs(cost["untrain_total_x"] - 2.0) <= 0.5),
    },
  }
  _write_json(os.path.join(workdir, "untrain.json"), summary)
  with open(os.path.join(workdir, "untrain.md.tmp"), "w") as f:
    f.write(md + "\n")
  os.replace(os.path.join(workdir, "untrain.md.tmp"), os.path.join(workdir, "untrain.md"))
  print(f"wrote {os.path.join(workdir, 'untrain.json')} ({summary['seconds']:.1f}s)")
  return summary
