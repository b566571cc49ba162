"""Set encoders and the value model: permutation and padding invariance."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from metaval.predictor import encoders
from metaval.predictor.features import ELEM_DIM, LEARNER_DIM, SET_DIM
from metaval.predictor.model import ModelConfig, ValueModel


def _sets(b=3, n=12, d=8, seed=0):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(b, n, d)).astype(np.float32)
  mask = np.ones((b, n), np.float32)
  mask[0, 7:] = 0.0  # ragged sizes: 7, 12, 3
  mask[2, 3:] = 0.0
  return x, mask


def _permute(x, mask, seed=1):
  """Shuffles each row's real elements (padding stays padding)."""
  rng = np.random.default_rng(seed)
  xp = x.copy()
  for i in range(x.shape[0]):
    n = int(mask[i].sum())
    xp[i, :n] = x[i, rng.permutation(n)]
  return xp


def _pad(x, mask, extra=5, seed=2):
  rng = np.random.default_rng(seed)
  junk = rng.normal(size=(x.shape[0], extra, x.shape[2])).astype(np.float32) * 100
  xp = np.concatenate([x, junk], 1)
  mp = np.concatenate([mask, np.zeros((x.shape[0], extra), np.float32)], 1)
  # Junk also in the old padding slots: padded values must never matter.
  head = xp[:, : x.shape[1]]  # a view
  head[mask == 0] = 77.0
  return xp, mp


@nnx.jit
def _call(module, *args):
  return module(*args)


ENCODERS = {
  "deepsets": lambda d: encoders.DeepSets(d, 16, rngs=nnx.Rngs(0)),
  "set_transformer_isab": lambda d: encoders.SetTransformer(
    d, 16, heads=4, num_inducing=4, rngs=nnx.Rngs(0)
  ),
  "set_transformer_sab": lambda d: encoders.SetTransformer(
    d, 16, heads=4, num_inducing=0, rngs=nnx.Rngs(0)
  ),
}


@pytest.mark.parametrize("name", list(ENCODERS))
def test_encoder_is_permutation_invariant_and_ignores_padding(name):
  x, mask = _sets()
  enc = ENCODERS[name](x.shape[-1])
  _, pooled = _call(enc, jnp.asarray(x), jnp.asarray(mask))
  _, pooled_perm = _call(enc, jnp.asarray(_permute(x, mask)), jnp.asarray(mask))
  xp, mp = _pad(x, mask)
  _, pooled_pad = _call(enc, jnp.asarray(xp), jnp.asarray(mp))
  assert pooled.shape == (3, enc.out_dim)
  np.testing.assert_allclose(pooled_perm, pooled, atol=1e-5)
  np.testing.assert_allclose(pooled_pad, pooled, atol=1e-5)
  # And it is not trivially constant: a different set changes the output.
  _, other = _call(enc, jnp.asarray(x * 2.0 + 1.0), jnp.asarray(mask))
  assert np.abs(np.asarray(other) - np.asarray(pooled)).max() > 1e-3


@pytest.mark.parametrize("encoder", ["deepsets", "set_transformer"])
def test_value_model_invariant_to_order_and_padding_of_both_sets(encoder):
  cfg = ModelConfig(encoder=encoder, width=16, heads=2, num_inducing=4, num_targets=3)
  model = ValueModel(cfg, rngs=nnx.Rngs(1))
  s, sm = _sets(n=10, d=ELEM_DIM, seed=3)
  b, bm = _sets(n=14, d=ELEM_DIM, seed=4)
  rng = np.random.default_rng(5)
  sets = rng.normal(size=(3, SET_DIM)).astype(np.float32)
  lrn = rng.normal(size=(3, LEARNER_DIM)).astype(np.float32)
  mean, log_sigma = _call(model, s, sm, b, bm, sets, lrn)
  assert mean.shape == (3, 3) and log_sigma.shape == (3, 3)
  m2, _ = _call(model, _permute(s, sm), sm, _permute(b, bm, seed=9), bm, sets, lrn)
  np.testing.assert_allclose(m2, mean, atol=1e-4)
  sp, spm = _pad(s, sm)
  bp, bpm = _pad(b, bm, extra=9)
  m3, ls3 = _call(model, sp, spm, bp, bpm, sets, lrn)
  np.testing.assert_allclose(m3, mean, atol=1e-4)
  np.testing.assert_allclose(ls3, log_sigma, atol=1e-4)
  # B matters (cross-attention and B's pooled code feed the readout).
  m4, _ = _call(model, s, sm, b[::-1].copy(), bm[::-1].copy(), sets, lrn)
  assert np.abs(np.asarray(m4) - np.asarray(mean)).max() > 1e-4


def test_isab_cost_is_linear_in_set_size():
  # ISAB attends through m inducing points: the attention logits it builds are
  # [b, h, m, n] and [b, h, n, m], never [b, h, n, n].
  enc = encoders.ISAB(8, 2, 4, rngs=nnx.Rngs(0))
  x = jnp.ones((1, 300, 8))
  jaxpr = jax.make_jaxpr(lambda v: enc(v, jnp.ones((1, 300))))(x)
  shapes = [tuple(v.aval.shape) for eqn in jaxpr.jaxpr.eqns for v in eqn.outvars]
  assert not any(s[-2:] == (300, 300) for s in shapes if len(s) >= 2)
