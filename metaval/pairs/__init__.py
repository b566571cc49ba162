"""The pair engine: (B, S) pairs, the pool with appended points, paired seeds, labels.

* ``Pairs`` (``pairs.py``): base sets and supplements (pool indices or appended
  points), kind and recipe.
* ``pool.py``: the one way to append S's non-pool points to a training pool.
* ``keys.py``: the one paired-seed key scheme (B and B ∪ S share init keys).
* ``label`` (``labels.py``): train on B and B ∪ S for K paired seeds.
"""

from metaval.pairs.keys import pair_keys, root_key, shard_key
from metaval.pairs.labels import PairLabels, label
from metaval.pairs.pairs import Pairs, PairsError, as_pairs
from metaval.pairs.pool import extended_task, training_pool, union_pool

__all__ = [
  "PairLabels",
  "Pairs",
  "PairsError",
  "as_pairs",
  "extended_task",
  "label",
  "pair_keys",
  "root_key",
  "shard_key",
  "training_pool",
  "union_pool",
]
