"""Set encoders in Flax NNX: Deep Sets and Set Transformer.

Sets of different sizes are padded to a fixed length and carry a mask ``[batch, n]``
(1 = element, 0 = padding). Every pooling and attention step ignores padded
elements, so an encoder's pooled output is invariant to the order of the elements
and to how much padding follows them (``tests/test_encoders.py`` checks both).

Both encoders map ``(h [batch, n, width], mask [batch, n])`` to
``(elements [batch, n, width], pooled [batch, out_dim])``: the per-element
encodings feed cross-attention (S attends to B) and the pooled vector feeds the
readout.

References:
  Zaheer et al., "Deep Sets", NeurIPS 2017.
  Lee et al., "Set Transformer: A Framework for Attention-based
  Permutation-Invariant Neural Networks", ICML 2019 (MAB, SAB, ISAB, PMA).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

_NEG = -1e9


class MLP(nnx.Module):
  """``depth`` ReLU hidden layers of ``width`` then a linear output."""

  def __init__(self, din: int, width: int, dout: int, depth: int, *, rngs: nnx.Rngs):
    dims = [din] + [width] * depth + [dout]
    self.layers = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in zip(dims[:-1], dims[1:])])

  def __call__(self, x):
    for layer in self.layers[:-1]:
      x = jax.nn.relu(layer(x))
    return self.layers[-1](x)


def masked_mean(h, mask):
  """``h [b, n, w]``, ``mask [b, n]`` -> ``[b, w]`` mean over real elements."""
  m = mask[..., None]
  return (h * m).sum(-2) / jnp.maximum(m.sum(-2), 1.0)


def masked_sum(h, mask):
  return (h * mask[..., None]).sum(-2)


class MAB(nnx.Module):
  """Multihead attention block: ``H = LN(X + Att(X, Y)); out = LN(H + FF(H))``."""

  def __init__(self, width: int, heads: int, *, rngs: nnx.Rngs):
    if width % heads:
      raise ValueError(f"width {width} must be divisible by heads {heads}")
    self.heads = heads
    self.q = nnx.Linear(width, width, rngs=rngs)
    self.k = nnx.Linear(width, width, rngs=rngs)
    self.v = nnx.Linear(width, width, rngs=rngs)
    self.o = nnx.Linear(width, width, rngs=rngs)
    self.ff = MLP(width, width, width, 1, rngs=rngs)
    self.ln1 = nnx.LayerNorm(width, rngs=rngs)
    self.ln2 = nnx.LayerNorm(width, rngs=rngs)

  def __call__(self, x, y, y_mask=None):
    """``x [b, nq, w]`` attends to ``y [b, nk, w]`` (``y_mask [b, nk]``)."""
    b, nq, w = x.shape
    nk = y.shape[1]
    h, c = self.heads, w // self.heads
    q = self.q(x).reshape(b, nq, h, c)
    k = self.k(y).reshape(b, nk, h, c)
    v = self.v(y).reshape(b, nk, h, c)
    logits = jnp.einsum("bqhc,bkhc->bhqk", q, k) / math.sqrt(c)  # [b, h, nq, nk]
    if y_mask is not None:
      logits = jnp.where(y_mask[:, None, None, :] > 0, logits, _NEG)
    att = jax.nn.softmax(logits, axis=-1)
    out = jnp.einsum("bhqk,bkhc->bqhc", att, v).reshape(b, nq, w)
    hid = self.ln1(x + self.o(out))
    return self.ln2(hid + self.ff(hid))


class SAB(nnx.Module):
  """Set attention block: ``MAB(X, X)`` (quadratic in the set size)."""

  def __init__(self, width: int, heads: int, *, rngs: nnx.Rngs):
    self.mab = MAB(width, heads, rngs=rngs)

  def __call__(self, x, mask):
    return self.mab(x, x, mask)


class ISAB(nnx.Module):
  """Induced set attention: ``m`` learned inducing points make it linear in n."""

  def __init__(self, width: int, heads: int, num_inducing: int, *, rngs: nnx.Rngs):
    self.inducing = nnx.Param(jax.random.normal(rngs.params(), (1, num_inducing, width)) * 0.1)
    self.mab1 = MAB(width, heads, rngs=rngs)
    self.mab2 = MAB(width, heads, rngs=rngs)

  def __call__(self, x, mask):
    i = jnp.broadcast_to(self.inducing[...], (x.shape[0],) + self.inducing.shape[1:])
    hid = self.mab1(i, x, mask)  # [b, m, w]: inducing points summarise the real elements
    return self.mab2(x, hid)  # [b, n, w]


class PMA(nnx.Module):
  """Pooling by multihead attention with ``k`` learned seed vectors."""

  def __init__(self, width: int, heads: int, num_seeds: int = 1, *, rngs: nnx.Rngs):
    self.seeds = nnx.Param(jax.random.normal(rngs.params(), (1, num_seeds, width)) * 0.1)
    self.ff = MLP(width, width, width, 1, rngs=rngs)
    self.mab = MAB(width, heads, rngs=rngs)

  def __call__(self, x, mask):
    s = jnp.broadcast_to(self.seeds[...], (x.shape[0],) + self.seeds.shape[1:])
    return self.mab(s, jax.nn.relu(self.ff(x)), mask).reshape(x.shape[0], -1)


class DeepSets(nnx.Module):
  """Per-element network, masked mean and sum pooling with set-size features.

  ``pooled = [mean_i phi(x_i), sum_i phi(x_i) / sum_scale, log1p(n)]``; the readout
  (``rho``) lives in the value model so S and B summaries are read out together.
  """

  def __init__(self, din: int, width: int, depth: int = 2, *, sum_scale: float = 32.0, rngs):
    self.phi = MLP(din, width, width, depth, rngs=rngs)
    self.sum_scale = sum_scale
    self.out_dim = 2 * width + 1

  def __call__(self, x, mask):
    h = jax.nn.relu(self.phi(x))  # [b, n, w]
    n = mask.sum(-1, keepdims=True)
    pooled = jnp.concatenate(
      [masked_mean(h, mask), masked_sum(h, mask) / self.sum_scale, jnp.log1p(n)], -1
    )
    return h, pooled


class SetTransformer(nnx.Module):
  """Element embedding, ``layers`` ISAB (or SAB) blocks, PMA pooling."""

  def __init__(
    self,
    din: int,
    width: int,
    *,
    heads: int = 4,
    layers: int = 2,
    num_inducing: int = 16,
    num_seeds: int = 1,
    rngs: nnx.Rngs,
  ):
    self.embed = MLP(din, width, width, 1, rngs=rngs)
    if num_inducing > 0:
      blocks = [ISAB(width, heads, num_inducing, rngs=rngs) for _ in range(layers)]
    else:
      blocks = [SAB(width, heads, rngs=rngs) for _ in range(layers)]
    self.blocks = nnx.List(blocks)
    self.pma = PMA(width, heads, num_seeds, rngs=rngs)
    self.out_dim = width * num_seeds + 1

  def __call__(self, x, mask):
    h = self.embed(x)
    for blk in self.blocks:
      h = blk(h, mask)
    pooled = jnp.concatenate([self.pma(h, mask), jnp.log1p(mask.sum(-1, keepdims=True))], -1)
    return h, pooled


ENCODERS = ("deepsets", "set_transformer")


def make_encoder(name: str, din: int, width: int, *, heads=4, layers=2, num_inducing=16, rngs):
  """Builds an encoder by name (``ENCODERS``)."""
  if name == "deepsets":
    return DeepSets(din, width, depth=layers, rngs=rngs)
  if name == "set_transformer":
    return SetTransformer(
      din, width, heads=heads, layers=layers, num_inducing=num_inducing, rngs=rngs
    )
  raise ValueError(f"unknown encoder {name!r}; available: {', '.join(ENCODERS)}")
