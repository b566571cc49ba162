"""The one paired-seed key scheme.

Model ``(base b, seed k)`` of a call with root key ``key`` is initialised (and its
data order drawn) with ``fold_in(fold_in(key, b), k)``. The B model and every
B ∪ S model of the pairs that share base b use that *same* key on purpose (paired
seeds): init and data-order noise is common to both sides, so it cancels in the
improvement metric(B ∪ S) - metric(B) as far as it can.

The label pipeline derives each call's root key from its config:
``fold_in(fold_in(fold_in(key(seed), task id), shard), learner index)``
(``shard_key``); other callers pass ``root_key(seed)`` or a ``fold_in`` of it.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np


def root_key(seed: int) -> jax.Array:
  """The root PRNG key of a run seeded with ``seed``."""
  return jax.random.key(int(seed))


def shard_key(seed: int, task_id: int, shard: int, learner_index: int) -> jax.Array:
  """The label pipeline's root key for one (task, shard, learner) call."""
  key = jax.random.fold_in(jax.random.fold_in(root_key(seed), int(task_id)), int(shard))
  return jax.random.fold_in(key, int(learner_index))


def pair_keys(key: jax.Array, n_bases: int, num_seeds: int) -> np.ndarray:
  """``[n_bases, K, 2]`` raw uint32 keys: ``fold_in(fold_in(key, base), seed)``.

  Both sides of a pair (B and B ∪ S) use row ``base_of[pair]``: paired seeds.
  """
  return np.asarray(_pair_keys(key, int(n_bases), int(num_seeds)), np.uint32)


@functools.partial(jax.jit, static_argnums=(1, 2))
def _pair_keys(key, n_bases: int, num_seeds: int):  # one program, not a call per key
  def base(b):
    kb = jax.random.fold_in(key, b)
    return jax.vmap(lambda k: jax.random.key_data(jax.random.fold_in(kb, k)))(jnp.arange(num_seeds))

  return jax.vmap(base)(jnp.arange(n_bases))
