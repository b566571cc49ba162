"""The Goodhart suite's market and attacks: what a gamer submits against a buyer's B.

See ``metaval.audit.goodhart`` for the suite. ``build_pairs(config)`` draws every
replicate's market (B = B0 ∪ A, contributor A, the padded attacks' clean core)
and its genuine set, core and attacks (the registry ``ATTACKS``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import ml_collections
import numpy as np

from metaval.data import samplers as S
from metaval.data.tasks import CLASSIFICATION, Task, task_from_config
from metaval.errors import MetavalError

GENUINE = "genuine"
GENUINE_CORE = "genuine_core"
# The predictor's near-duplicate feature fires below this many B-scales (see
# ``metaval.predictor.features.relational``); adversarial near-duplicates sit above it.
NEAR_DUP_THRESHOLD = 0.25


class GoodhartError(MetavalError):
  """The Goodhart suite's config or inputs are not valid."""


# ----------------------------------------------------------------------------
# The market of one replicate and the attacks.


@dataclasses.dataclass(frozen=True, eq=False)
class Market:
  """One replicate: the buyer's base set and what the attacks may draw on.

  Attributes:
    task: the base task.
    base: ``[n_B]`` sorted pool indices of B = B0 ∪ A.
    contributor: ``[n_A]`` pool indices of contributor A's set (inside ``base``).
    core: ``[n_core]`` pool indices of the clean core the padded attacks share
      (outside ``base``).
    scale: median leave-one-out nearest-neighbour distance within B.
    targets: ``[n_B]`` B's points ordered by how many evaluation inputs they are
      the nearest B point of (most first): the gamer's "most valuable" points.
  """

  task: Task
  base: np.ndarray
  contributor: np.ndarray
  core: np.ndarray
  scale: float
  targets: np.ndarray


AttackFn = Callable[[Market, np.random.Generator, int, ml_collections.ConfigDict], S.Supplement]


@dataclasses.dataclass(frozen=True)
class Attack:
  """A registry entry: builder, whether the set is pure junk, a one-line summary."""

  name: str
  fn: AttackFn
  junk: bool
  description: str


ATTACKS: dict[str, Attack] = {}


def register_attack(name: str, junk: bool):
  """Decorator adding ``fn(market, rng, size, params) -> Supplement`` to ``ATTACKS``."""

  def wrap(fn):
    if name in ATTACKS:
      raise GoodhartError(f"attack {name!r} is already registered")
    ATTACKS[name] = Attack(name, fn, junk, (fn.__doc__ or "").strip().splitlines()[0])
    return fn

  return wrap


def _supp(x, y, idx, kind: str, recipe: dict) -> S.Supplement:
  return S.Supplement(
    x=np.ascontiguousarray(x, np.float32),
    y=np.asarray(y, np.int32),
    pool_indices=np.asarray(idx, np.int32),
    kind=kind,
    recipe={"size": int(len(y)), **recipe},
  )


def _concat(parts: list[S.Supplement], kind: str, recipe: dict) -> S.Supplement:
  return _supp(
    np.concatenate([p.x for p in parts]),
    np.concatenate([p.y for p in parts]),
    np.concatenate([p.pool_indices for p in parts]),
    kind,
    {**recipe, "components": [{"kind": p.kind, **p.recipe} for p in parts]},
  )


def manufactured(x: np.ndarray, y: np.ndarray, n: int, rng, neighbours: int = 5):
  """``n`` points made from ``(x, y)`` alone (SMOTE's recipe): each on the segment from
  a random point to one of its ``neighbours`` nearest same-class points, with that
  class (a point with no same-class neighbour stays itself). Data that looks genuine
  and carries nothing ``(x, y)`` lacks."""
  a = rng.integers(0, len(y), n)
  d = ((x[:, None] - x[None]) ** 2).sum(-1)
  d[y[:, None] != y[None]] = np.inf
  np.fill_diagonal(d, np.inf)
  near = np.argsort(d, 1)[:, :neighbours]
  b = near[a, rng.integers(0, neighbours, n)]
  b = np.where(np.isfinite(d[a, b]), b, a)
  return x[a] + rng.random((n, 1)) * (x[b] - x[a]), y[a].copy()


def nn_scale(x: np.ndarray) -> float:
  """Median leave-one-out nearest-neighbour distance within ``x`` (as the predictor)."""
  if len(x) < 2:
    return 1.0
  a = x.astype(np.float64)
  d = (a * a).sum(1)[:, None] + (a * a).sum(1)[None] - 2.0 * a @ a.T
  np.fill_diagonal(d, np.inf)
  nn = np.sqrt(np.maximum(d.min(1), 0.0))
  nn = nn[np.isfinite(nn) & (nn > 0)]
  return float(np.median(nn)) if nn.size else 1.0


def nearest_base_distance(x: np.ndarray, xb: np.ndarray) -> np.ndarray:
  """``[n]`` Euclidean distance of each row of ``x`` to its nearest row of ``xb``."""
  a, b = x.astype(np.float64), xb.astype(np.float64)
  d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None] - 2.0 * a @ b.T
  return np.sqrt(np.maximum(d.min(1), 0.0))


@register_attack("random_bits", junk=True)
def _random_bits(m, rng, size, p):
  """Random extreme-value bits as inputs, random labels."""
  del p
  return S.sample_supplement("random_bits", m.task, m.base, rng, size=size, mode="bits")


@register_attack("couch", junk=True)
def _couch(m, rng, size, p):
  """Near-constant inputs (a motionless couch), jittered so rows stay distinct."""
  return S.sample_supplement(
    "constant", m.task, m.base, rng, size=size, jitter=float(p.couch_jitter), label_mode="random"
  )


@register_attack("label_flip", junk=True)
def _label_flip(m, rng, size, p):
  """Clean inputs outside B with every label flipped."""
  del p
  return S.sample_supplement("label_noise", m.task, m.base, rng, size=size, rate=1.0)


@register_attack("label_noise", junk=False)
def _label_noise(m, rng, size, p):
  """Clean inputs outside B with a fraction ``label_noise_rate`` of labels flipped."""
  rate = float(p.label_noise_rate)
  return S.sample_supplement("label_noise", m.task, m.base, rng, size=size, rate=rate)


@register_attack("duplicates_of_base", junk=True)
def _duplicates_of_base(m, rng, size, p):
  """Exact copies of B's points."""
  del p
  return S.sample_supplement("duplicates", m.task, m.base, rng, size=size)


@register_attack("copy_of_contributor", junk=True)
def _copy_of_contributor(m, rng, size, p):
  """A verbatim copy of contributor A's set (already in B), repeated to size n."""
  del p
  a = m.contributor
  idx = np.concatenate([rng.permutation(a) for _ in range(math.ceil(size / len(a)))])[:size]
  idx = np.sort(idx)
  return _supp(m.task.x[idx], m.task.y[idx], idx, "copy_of_contributor", {"source_size": len(a)})


@register_attack("near_duplicates", junk=False)
def _near_duplicates(m, rng, size, p):
  """B's points plus Gaussian noise of standard deviation ``near_dup_sigma``."""
  sigma = float(p.near_dup_sigma)
  return S.sample_supplement("near_duplicates", m.task, m.base, rng, size=size, sigma=sigma)


def _adversarial_near_dups(m: Market, rng, size: int, margin: float) -> S.Supplement:
  src = np.resize(m.targets, size)  # cycle through the most valuable B points
  d = m.task.x.shape[1]
  u = rng.standard_normal((size, d))
  u /= np.linalg.norm(u, axis=1, keepdims=True)
  x = m.task.x[src] + margin * m.scale * u
  ratio = nearest_base_distance(x, m.task.x[m.base]) / m.scale
  recipe = {
    "margin": margin,
    "distinct_sources": int(np.unique(src).size),
    # Share of points a near-duplicate rule at the predictor's threshold would flag.
    "flagged_near_dup": float(np.mean(ratio < NEAR_DUP_THRESHOLD)),
    "min_ratio": float(ratio.min()),
  }
  return _supp(x, m.task.y[src], np.full(size, -1), "adversarial_near_duplicates", recipe)


@register_attack("adversarial_near_duplicates", junk=False)
def _adversarial(m, rng, size, p):
  """B's points nearest the evaluation inputs, moved just past the near-dup threshold."""
  return _adversarial_near_dups(m, rng, size, float(p.adv_margin))


def _core(m: Market, size: int) -> S.Supplement:
  idx = m.core[:size]
  return _supp(m.task.x[idx], m.task.y[idx], idx, "clean", {"class_mix": "natural"})


@register_attack("padded_random_bits", junk=False)
def _padded_random(m, rng, size, p):
  """The clean core padded to size n with random bits."""
  del p
  core = _core(m, len(m.core))
  pad = S.sample_supplement("random_bits", m.task, m.base, rng, size=size - len(core), mode="bits")
  return _concat([core, pad], "padded_random_bits", {"core": len(core)})


@register_attack("padded_near_duplicates", junk=False)
def _padded_near_dups(m, rng, size, p):
  """The clean core padded to size n with adversarial near-duplicates of B."""
  core = _core(m, len(m.core))
  pad = _adversarial_near_dups(m, rng, size - len(core), float(p.adv_margin))
  return _concat([core, pad], "padded_near_duplicates", {"core": len(core)})


def make_market(task: Task, rng: np.random.Generator, cfg) -> Market:
  """Draws B0, contributor A (clean, outside B0), and the padded attacks' clean core."""
  n_s = int(cfg.supp_size)
  n_core = max(1, int(round(float(cfg.core_frac) * n_s)))
  if not 1 <= n_core < n_s:
    raise GoodhartError(f"core_frac * supp_size must be in [1, supp_size), got {n_core}")
  need = int(cfg.base_size) + int(cfg.contributor_size) + 2 * n_s
  if need > task.pool_size:
    raise GoodhartError(
      f"base_size + contributor_size + 2 * supp_size = {need} exceeds the pool of "
      f"{task.name!r} ({task.pool_size} points)"
    )
  b0 = S.sample_base(task, rng, int(cfg.base_size))
  a = S.sample_supplement(
    "clean", task, b0, rng, size=int(cfg.contributor_size), class_mix="natural"
  ).pool_indices
  base = np.sort(np.concatenate([b0, a])).astype(np.int32)
  core = S.sample_supplement("clean", task, base, rng, size=n_core, class_mix="natural")
  xb = task.x[base].astype(np.float64)
  ex = task.evals["test"][0] if "test" in task.evals else next(iter(task.evals.values()))[0]
  ex = np.asarray(ex, np.float64)
  d = (ex * ex).sum(1)[:, None] + (xb * xb).sum(1)[None] - 2.0 * ex @ xb.T
  hits = np.bincount(d.argmin(1), minlength=len(base))
  order = np.argsort(-hits, kind="stable")
  targets = base[order[hits[order] > 0]]
  return Market(
    task=task,
    base=base,
    contributor=np.sort(a).astype(np.int32),
    core=core.pool_indices,
    scale=nn_scale(task.x[base]),
    targets=targets if targets.size else base,
  )


def _rng(seed: int, replicate: int, row: int) -> np.random.Generator:
  return np.random.default_rng([int(seed), 7919, int(replicate), int(row)])


def build_pairs(config) -> tuple[Task, list[Market], list[str], list[S.Supplement], np.ndarray]:
  """Every replicate's market, and its genuine set, core and attacks.

  Returns:
    ``(task, markets, row_names, supplements, replicate_of)``: supplements are
    ordered replicate-major, ``row_names[i]`` names the row of supplement ``i``
    and ``replicate_of[i]`` its replicate (= index into ``markets``).
  """
  task = task_from_config(config.task)
  if task.kind != CLASSIFICATION:
    raise GoodhartError(f"the Goodhart suite supports classification tasks; {task.name!r} is not")
  unknown = [a for a in config.attacks if a not in ATTACKS]
  if unknown:
    raise GoodhartError(f"unknown attack(s) {unknown}; available: {', '.join(ATTACKS)}")
  if int(config.num_bases) < 1:
    raise GoodhartError(f"num_bases must be >= 1, got {config.num_bases}")
  n_s = int(config.supp_size)
  rows = [GENUINE, GENUINE_CORE] + list(config.attacks)
  markets, supps, names, rep = [], [], [], []
  for r in range(int(config.num_bases)):
    m = make_market(task, _rng(config.seed, r, 0), config)
    markets.append(m)
    for j, name in enumerate(rows):
      rng = _rng(config.seed, r, j + 1)
      if name == GENUINE:
        s = S.sample_supplement("clean", task, m.base, rng, size=n_s, class_mix="natural")
      elif name == GENUINE_CORE:
        s = _core(m, len(m.core))
      else:
        s = ATTACKS[name].fn(m, rng, n_s, config.attack_params)
      supps.append(s)
      names.append(name)
      rep.append(r)
  return task, markets, names, supps, np.asarray(rep)
