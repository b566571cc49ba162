"""The (B, S) pairs of one prior task: drawn from seeds, so they can be redrawn exactly.

Pair ``i`` of the task with seed ``t`` under a config seed ``s`` has its supplement
drawn by a generator seeded ``[s, t, 2, i]``, so ``draw_supplement`` rebuilds it from
``(task, base, config, i)`` alone: label shards store the task spec and indices, and
readers redraw the arrays (``metaval.prior.storage.PriorLabels.pair_arrays``).

Every task sees every kind: the kinds are dealt in shuffled rounds, so a task with
``pairs_per_task >= len(kinds)`` has each kind at least once (per-task rank targets
compare kinds within a task).

Real tasks never enter: kinds whose draws could reach a built-in task (an
``out_of_domain`` supplement of mode ``other_task``, a ``mixture`` padded with one)
get parameters that keep them on the generated task (``SAFE_PARAMS``).
"""

from __future__ import annotations

import math

import numpy as np

from metaval.data import samplers
from metaval.data.tasks import Task
from metaval.errors import MetavalError
from metaval.pairs.pairs import Pairs

# Junk a prior mixture may be padded with (no kind that reads another built-in task).
MIXTURE_JUNK = ("label_noise", "random_bits", "constant", "near_duplicates", "feature_noise")
OOD_MODES = ("invert", "shift")


def safe_params(kind: str, rng: np.random.Generator) -> dict:
  """Parameters that keep ``kind``'s draw on the generated task itself."""
  if kind == "out_of_domain":
    return {"mode": str(rng.choice(OOD_MODES))}
  if kind == "mixture":
    return {"junk_kind": str(rng.choice(MIXTURE_JUNK))}
  return {}


def _log_uniform_int(rng, lo: int, hi: int) -> int:
  return int(min(hi, max(lo, math.floor(math.exp(rng.uniform(math.log(lo), math.log(hi + 1)))))))


def deal_kinds(kinds, n: int, rng: np.random.Generator) -> list[str]:
  """``n`` kinds dealt in shuffled rounds over ``kinds`` (each round has every kind)."""
  out = []
  while len(out) < n:
    out += [kinds[j] for j in rng.permutation(len(kinds))]
  return out[:n]


def draw_supplement(task: Task, base, cfg, i: int, kind: str) -> samplers.Supplement:
  """Pair ``i``'s supplement (deterministic in ``(cfg.seed, task seed, i)``).

  Args:
    task: the generated task.
    base: ``[n_B]`` pool indices of the pair's B.
    cfg: the prior config (``seed``, ``supp_size``, ``kinds``).
    i: the pair's index within its task.
    kind: the kind dealt to the pair; if it cannot be drawn for this base (e.g. a
      class with no points outside B), further kinds are drawn from the same generator.

  Returns:
    The ``Supplement``.
  """
  rng = np.random.default_rng([int(cfg.seed), int(task.seed), 2, int(i)])
  lo, hi = (int(v) for v in cfg.supp_size)
  for _ in range(20):
    size = _log_uniform_int(rng, lo, hi)
    try:
      return samplers.sample_supplement(kind, task, base, rng, size=size, **safe_params(kind, rng))
    except samplers.SamplerError:
      kind = str(rng.choice(list(cfg.kinds)))
  raise MetavalError(f"could not draw a supplement for {task.name} pair {i} in 20 tries")


def task_pairs(task: Task, cfg) -> tuple[Pairs, list[samplers.Supplement]]:
  """The task's ``cfg.pairs_per_task`` pairs: bases of varied size, every kind dealt.

  Args:
    task: the generated task.
    cfg: the prior config.

  Returns:
    ``(pairs, supplements)``.
  """
  rng = np.random.default_rng([int(cfg.seed), int(task.seed), 1])
  n_pairs, per_base = int(cfg.pairs_per_task), int(cfg.supps_per_base)
  kinds = deal_kinds(list(cfg.kinds), n_pairs, rng)
  lo_b, hi_b = (int(v) for v in cfg.base_size)
  # At most half the pool in B, so every kind can still draw points outside it.
  hi_b = max(1, min(hi_b, task.pool_size // 2))
  bases, supps, base_of = [], [], []
  for i in range(n_pairs):
    if i % per_base == 0:
      n_b = _log_uniform_int(rng, min(lo_b, hi_b), hi_b)
      bases.append(samplers.sample_base(task, rng, n_b))
    supps.append(draw_supplement(task, bases[-1], cfg, i, kinds[i]))
    base_of.append(len(bases) - 1)
  return Pairs.from_supplements(bases, supps, base_of), supps
