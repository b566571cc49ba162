"""The value model: encodes S and B (and a learner descriptor) and predicts improvement.

S's worth depends on what B already holds, so after both sets are encoded each S
element cross-attends to B's elements (``MAB(S, B)``) before S is pooled; the
readout sees the pooled S, the pooled B, the pair's set statistics and the learner
descriptor, and outputs, per target metric, a mean and a log standard deviation
(a Gaussian NLL head). A linear skip from the set statistics to the mean gives the
network a ridge-like starting point that it refines.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx

from metaval.predictor import encoders
from metaval.predictor.features import ELEM_DIM, LEARNER_DIM, SET_DIM


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """Static shape of a value model (saved next to its checkpoint).

  Attributes:
    encoder: ``"deepsets"`` or ``"set_transformer"``.
    width: hidden width of encoders and readout.
    layers: per-element network depth (Deep Sets) or attention blocks (Set Transformer).
    heads: attention heads.
    num_inducing: ISAB inducing points (0 = plain SAB).
    cross_attention: S elements attend to B's before pooling.
    num_targets: number of predicted metrics.
    use_learner: feed the learner descriptor to the readout.
  """

  encoder: str = "deepsets"
  width: int = 64
  layers: int = 2
  heads: int = 4
  num_inducing: int = 16
  cross_attention: bool = True
  num_targets: int = 2
  use_learner: bool = True

  def to_dict(self):
    return dataclasses.asdict(self)


class ValueModel(nnx.Module):
  """Predicts ``(mean [batch, T], log_sigma [batch, T])`` in standardised units."""

  def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs):
    self.cfg = cfg
    w = cfg.width
    kw = dict(heads=cfg.heads, layers=cfg.layers, num_inducing=cfg.num_inducing, rngs=rngs)
    # One element encoder for both sets: the is_supplement feature tells them apart,
    # and sharing weights means B's elements are read on S's scale.
    self.enc = encoders.make_encoder(cfg.encoder, ELEM_DIM, w, **kw)
    self.proj = nnx.Linear(w, w, rngs=rngs)
    if cfg.cross_attention:
      self.cross = encoders.MAB(w, cfg.heads, rngs=rngs)
      self.cross_pool = nnx.Linear(w, w, rngs=rngs)
    pooled = self.enc.out_dim
    din = 2 * pooled + SET_DIM + (LEARNER_DIM if cfg.use_learner else 0)
    din += w if cfg.cross_attention else 0
    self.head = encoders.MLP(din, w, 2 * cfg.num_targets, 2, rngs=rngs)
    self.skip = nnx.Linear(SET_DIM, cfg.num_targets, rngs=rngs)

  def __call__(self, s, s_mask, b, b_mask, sets, learner):
    """Args are the ``PairFeatures`` arrays: ``s [n, n_s, E]``, ``b [n, n_b, E]``, ..."""
    hs, ps = self.enc(s, s_mask)  # [n, n_s, w], [n, pooled]
    hb, pb = self.enc(b, b_mask)
    parts = [ps, pb, sets]
    if self.cfg.cross_attention:
      # S attends to B: how much of each S element B already covers.
      xs = self.cross(self.proj(hs), self.proj(hb), b_mask)  # [n, n_s, w]
      parts.append(jax.nn.relu(self.cross_pool(encoders.masked_mean(xs, s_mask))))
    if self.cfg.use_learner:
      parts.append(learner)
    out = self.head(jnp.concatenate(parts, -1))
    t = self.cfg.num_targets
    mean = out[:, :t] + self.skip(sets)
    log_sigma = jnp.clip(out[:, t:], -6.0, 3.0)
    return mean, log_sigma


def gaussian_nll(mean, log_sigma, y, weight=None):
  """Mean Gaussian negative log-likelihood (constant dropped) over ``[n, T]``."""
  nll = log_sigma + 0.5 * jnp.square((y - mean) * jnp.exp(-log_sigma))
  if weight is not None:
    nll = nll * weight
  return nll.mean()
