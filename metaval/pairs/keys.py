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

import jax
import numpy as np


def root_key(seed: int) -> jax.Array:
  """The root PRNG key of a run seeded with ``seed``."""
  return jax.random.key(int(seed))


# JAX's default PRNG, threefry2x32, as NumPy on the host: key derivation is a few
# 32-bit hashes, and in JAX each of its operations (seeding, ``fold_in``, the dtype
# conversion) is a compiled program a fresh worker traces and loads before its first
# label. Bit for bit the same keys (tested against ``jax.random``).
_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))


def _threefry2x32(k1, k2, x0, x1):
  """The threefry2x32 hash of counts ``(x0, x1)`` under key ``(k1, k2)`` (uint32 arrays,
  broadcast), as ``jax._src.random.threefry2x32`` computes it."""
  with np.errstate(over="ignore"):
    k1, k2 = np.asarray(k1, np.uint32), np.asarray(k2, np.uint32)
    ks = (k1, k2, k1 ^ k2 ^ np.uint32(0x1BD11BDA))
    x0, x1 = np.asarray(x0, np.uint32) + ks[0], np.asarray(x1, np.uint32) + ks[1]
    for i in range(5):
      for r in _ROTATIONS[i % 2]:
        x0 = x0 + x1
        x1 = (x1 << np.uint32(r)) | (x1 >> np.uint32(32 - r))
        x1 = x0 ^ x1
      x0 = x0 + ks[(i + 1) % 3]
      x1 = x1 + ks[(i + 2) % 3] + np.uint32(i + 1)
  return x0, x1


def _fold_in(key: np.ndarray, data) -> np.ndarray:
  """``jax.random.fold_in`` on raw key data ``[..., 2]`` and 32-bit ``data`` (broadcast)."""
  data = np.asarray(data, np.int64).astype(np.uint32)
  y0, y1 = _threefry2x32(key[..., 0], key[..., 1], np.zeros_like(data), data)
  return np.stack(np.broadcast_arrays(y0, y1), -1)


def _key_data(key) -> np.ndarray:
  """``[2]`` uint32 data of a key: a typed key (``jax.random.key``) or raw key data."""
  if jax.dtypes.issubdtype(getattr(key, "dtype", None), jax.dtypes.prng_key):
    key = jax.random.key_data(key)
  return np.asarray(key, np.uint32).reshape(2)


def root_data(seed: int) -> np.ndarray:
  """``[2]`` uint32 data of ``root_key(seed)``: ``[0, seed]`` for a seed that fits 31
  bits (threefry's seeding), JAX's own seeding otherwise."""
  seed = int(seed)
  if 0 <= seed < 2**31:
    return np.array([0, seed], np.uint32)
  return np.asarray(jax.random.key_data(root_key(seed)), np.uint32)


def split_keys(seed: int, num: int) -> np.ndarray:
  """``[num, 2]`` raw key data of ``jax.random.split(jax.random.key(seed), num)``: with
  the partitionable threefry (JAX's default) key ``i`` of a split is ``fold_in(key, i)``;
  JAX itself splits when that mode is off."""
  if not jax.config.jax_threefry_partitionable:
    return np.asarray(jax.random.key_data(jax.random.split(root_key(seed), num)), np.uint32)
  return _fold_in(root_data(seed), np.arange(int(num)))


def shard_key(seed: int, task_id: int, shard: int, learner_index: int) -> np.ndarray:
  """The label pipeline's root key for one (task, shard, learner) call, as raw key data
  (``[2]`` uint32: what ``jax.random.key_data`` of the same JAX-derived key gives;
  ``pair_keys`` and ``metaval.pairs.label`` take it as a key)."""
  key = root_data(seed)
  for data in (task_id, shard, learner_index):
    key = _fold_in(key, int(data))
  return key


def pair_keys(key, n_bases: int, num_seeds: int) -> np.ndarray:
  """``[n_bases, K, 2]`` raw uint32 keys: ``fold_in(fold_in(key, base), seed)``.

  ``key``: a typed key (``root_key``) or raw key data (``shard_key``). Both sides of a
  pair (B and B ∪ S) use row ``base_of[pair]``: paired seeds.
  """
  per_base = _fold_in(_key_data(key), np.arange(int(n_bases)))  # [n_bases, 2]
  return _fold_in(per_base[:, None, :], np.arange(int(num_seeds))[None, :])
