"""Gradient-ascent untraining (the library): value S by how much unlearning it hurts.

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

The ``metaval untrain`` job (pairs from a config, scores, tables) is
``metaval.valuation.untrain``; the estimator is ``metaval.estimators.Untraining``.

References:
  Golatkar, Achille, Soatto. Eternal Sunshine of the Spotless Net: Selective
  Forgetting in Deep Networks. CVPR 2020.
  Jang et al. Knowledge Unlearning for Mitigating Privacy Risks in Language
  Models. ACL 2023 (gradient ascent on the forget set).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp

from metaval import pairs as pairs_lib
from metaval.data.tasks import LANGUAGE_MODEL, Task
from metaval.errors import MetavalError
from metaval.learners import models
from metaval.learners.models import LearnerSpec
from metaval.learners.train import evaluate_one, metric_names, train_many
from metaval.util import io as io_lib


class UntrainError(MetavalError):
  """Bad untraining or pair-sampling settings."""


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
    pairs: ``metaval.pairs.Pairs`` (or a ``LabelSet``).
    spec: learner spec.
    asc: ascent settings.
    num_seeds: K paired seeds per pair.
    seed: root of the PRNG keys (``metaval.pairs.keys``: model (base b, seed k)
      uses ``fold_in(fold_in(key(seed), b), k)``).
    ckpt_dir: orbax checkpoint directory for the trained B ∪ S models; models
      already there are restored instead of retrained (resume).
    log: progress printer.

  Returns:
    dict with ``metric_names``, ``label`` ``[P, K, T]`` (retraining improvement),
    ``estimate`` ``[P, K, T]`` (untraining drop), ``before`` ``[P, K, T]``,
    ``final_loss`` ``[P, K]`` (S's loss after ascent), ``kind`` and ``timing``.
  """
  lm = task.kind == LANGUAGE_MODEL
  pairs = pairs_lib.as_pairs(pairs)
  p_count = len(pairs)
  try:
    ext, base_masks, supp_masks = pairs_lib.training_pool(task, pairs)
  except pairs_lib.PairsError as e:
    raise UntrainError(str(e)) from None
  full_masks = base_masks + supp_masks
  # [P, K, 2] raw keys: the paired-seed scheme, one row per pair's base.
  keys = pairs_lib.pair_keys(pairs_lib.root_key(seed), len(pairs.bases), num_seeds)
  keys = keys[pairs.base_of]
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
  # What the checkpoints were trained on (pairs, appended points, keys, learner):
  # resuming from a folder written for other pairs or keys would mix models.
  fp = io_lib.fingerprint(
    {
      "task": [task.name, task.seed],
      "masks": full_masks,
      "appended": ext.x[task.pool_size :],
      "keys": keys,
      "spec": spec.to_dict(),
    }
  )
  before_cache = dict(np.load(before_path)) if os.path.exists(before_path) else {}
  if (have or before_cache) and str(before_cache.get("fingerprint", "")) != fp:
    raise UntrainError(
      f"{ckpt_dir!r} holds models of other pairs, keys or learner; use a new ckpt_dir "
      "(or delete it)"
    )
  before_cache["fingerprint"] = np.array(fp)
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
    io_lib.save_npz(before_path, **before_cache)
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
    # The ascent's minibatch keys: derived from the pair's model keys.
    akeys = jax.vmap(lambda k: jax.random.fold_in(k, 1))(jnp.asarray(keys[p]))
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
