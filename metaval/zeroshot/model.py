"""The zero-shot value model: a small Flax NNX network over the query features.

Two heads share one trunk: a **score** head trained with a pairwise ranking loss
inside each task (what orders supplements; the target is the within-task rank of
the gain), and a **gain** head trained on the raw gain (Huber), whose interval is
a split-conformal quantile of its absolute error on validation tasks. The weights
are a flat dict of arrays (``to_arrays`` / ``from_arrays``), saved as one ``.npz``.
Gradient boosting on the same features (``fit_gbm``) is the comparison model.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import threadpoolctl
from flax import nnx
from scipy import stats


@dataclasses.dataclass(frozen=True)
class NetConfig:
  """Shape and schedule of the network.

  Attributes:
    hidden: width of each hidden layer.
    depth: hidden layers.
    steps: optimiser steps.
    lr: peak Adam learning rate (cosine decay).
    weight_decay: AdamW decay.
    groups_per_batch: tasks per step (each task's pairs are one ranking group).
    rank_weight: weight of the ranking loss against the gain head's Huber loss.
    seed: initialisation and batching seed.
  """

  hidden: int = 128
  depth: int = 2
  steps: int = 1500
  lr: float = 2e-3
  weight_decay: float = 1e-4
  groups_per_batch: int = 32
  rank_weight: float = 1.0
  seed: int = 0


class ValueNet(nnx.Module):
  """MLP trunk with a ranking score head and a raw-gain head."""

  def __init__(self, in_dim: int, cfg: NetConfig, rngs: nnx.Rngs):
    dims = [in_dim] + [cfg.hidden] * cfg.depth
    self.layers = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in zip(dims[:-1], dims[1:])])
    self.score = nnx.Linear(cfg.hidden, 1, rngs=rngs)
    self.gain = nnx.Linear(cfg.hidden, 1, rngs=rngs)

  def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    h = x
    for layer in self.layers:
      h = nnx.gelu(layer(h))
    return self.score(h)[..., 0], self.gain(h)[..., 0]


CLIP = 10.0  # standardised features are clipped here, in training and at query time


def feature_scale(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """The mean and standard deviation (plus 1e-6: constant columns) of training rows,
  by which every model standardises its features (``standardise``)."""
  return x.mean(0), x.std(0) + 1e-6


def standardise(x: np.ndarray, mean, sd, dtype=np.float32) -> np.ndarray:
  """Feature rows as a model reads them: in its training rows' standard deviations from
  their mean (``feature_scale``), clipped at ``CLIP``."""
  return np.clip((x - mean) / sd, -CLIP, CLIP).astype(dtype, copy=False)


def within_rank(gain: np.ndarray, group: np.ndarray) -> np.ndarray:
  """Each gain's rank inside its group, scaled to [0, 1] (ties share the mean rank)."""
  out = np.zeros(len(gain), np.float32)
  for g in np.unique(group):
    m = group == g
    r = stats.rankdata(gain[m])
    out[m] = (r - 1) / max(m.sum() - 1, 1)
  return out


def _pad_groups(x, gain, rank, group):
  """``[G, M, F]`` features, ``[G, M]`` gains, ranks and mask: one row per group."""
  ids = np.unique(group)
  rows = [np.flatnonzero(group == g) for g in ids]
  m = max(len(r) for r in rows)
  xs = np.zeros((len(ids), m, x.shape[1]), np.float32)
  gs = np.zeros((len(ids), m), np.float32)
  rs = np.zeros((len(ids), m), np.float32)
  mask = np.zeros((len(ids), m), np.float32)
  for i, r in enumerate(rows):
    xs[i, : len(r)], gs[i, : len(r)], rs[i, : len(r)], mask[i, : len(r)] = x[r], gain[r], rank[r], 1
  return xs, gs, rs, mask


def _loss(model, x, gain, rank, mask, rank_weight):
  score, pred = model(x)  # [B, M] each
  # Pairwise logistic (RankNet) loss inside each group, weighted by the rank gap so
  # that near-ties (label noise) count little.
  diff = score[:, :, None] - score[:, None, :]
  gap = rank[:, :, None] - rank[:, None, :]
  pair = mask[:, :, None] * mask[:, None, :] * (gap > 0)
  rank_loss = (jax.nn.softplus(-diff) * pair * gap).sum() / jnp.maximum((pair * gap).sum(), 1.0)
  huber = optax.huber_loss(pred * 0.1, gain * 10.0 * 0.1, delta=0.5)  # gain in 10s of points
  gain_loss = (huber * mask).sum() / mask.sum()
  return rank_weight * rank_loss + gain_loss


def fit_net(x, gain, group, cfg: NetConfig) -> ValueNet:
  """Trains the network on standardised features ``x [P, F]``.

  Args:
    x: standardised features.
    gain: ``[P]`` raw gains (accuracy points).
    group: ``[P]`` ranking group of each pair (task and learner).
    cfg: network and schedule.

  Returns:
    The trained ``ValueNet`` (its gain head predicts ``10 * gain``).
  """
  rank = within_rank(gain, group)
  xs, gs, rs, mask = _pad_groups(x, gain, rank, group)
  model = ValueNet(x.shape[1], cfg, nnx.Rngs(cfg.seed))
  sched = optax.cosine_decay_schedule(cfg.lr, cfg.steps)
  opt = nnx.Optimizer(model, optax.adamw(sched, weight_decay=cfg.weight_decay), wrt=nnx.Param)

  @nnx.jit
  def step(model, opt, bx, bg, br, bm):
    loss, grads = nnx.value_and_grad(_loss)(model, bx, bg, br, bm, cfg.rank_weight)
    opt.update(model, grads)
    return loss

  rng = np.random.default_rng(cfg.seed)
  b = min(cfg.groups_per_batch, len(xs))
  for _ in range(cfg.steps):
    i = rng.choice(len(xs), b, replace=False)
    step(model, opt, xs[i], gs[i], rs[i], mask[i])
  return model


def to_arrays(model: ValueNet) -> dict[str, np.ndarray]:
  """The network's parameters as a flat ``{path: array}`` dict."""
  state = nnx.state(model, nnx.Param)
  flat = nnx.to_flat_state(state)
  return {"/".join(str(k) for k in path): np.asarray(v.value) for path, v in flat}


def from_arrays(arrays: dict, in_dim: int, cfg: NetConfig) -> ValueNet:
  """Rebuilds a ``ValueNet`` from ``to_arrays`` output."""
  model = ValueNet(in_dim, cfg, nnx.Rngs(0))
  state = nnx.state(model, nnx.Param)
  flat = nnx.to_flat_state(state)
  for path, v in flat:
    v.value = jnp.asarray(arrays["/".join(str(k) for k in path)])
  nnx.update(model, nnx.from_flat_state(flat))
  return model


def net_predict(model: ValueNet, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """``(score, gain)`` for standardised features ``[P, F]``."""
  score, gain = model(jnp.asarray(x, jnp.float32))
  return np.asarray(score), np.asarray(gain) / 10.0


def fit_gbm(x, gain, group, seed: int = 0, max_iter: int = 300, gain_head: bool = True):
  """Gradient boosting on the same features: ``(rank model, gain model or None)``."""
  from sklearn.ensemble import HistGradientBoostingRegressor

  rank = within_rank(gain, group)
  kw = {"max_iter": max_iter, "learning_rate": 0.05, "max_leaf_nodes": 31, "random_state": seed}
  # One thread: on a shared 2-core machine OpenMP's threads mostly wait for each other.
  with threadpoolctl.threadpool_limits(1):
    return (
      HistGradientBoostingRegressor(**kw).fit(x, rank),
      HistGradientBoostingRegressor(loss="absolute_error", **kw).fit(x, gain)
      if gain_head
      else None,
    )
