"""The Goodhart suite: gaming attacks that must not pay, valued by every estimator.

``metaval audit goodhart --config goodhart:quick`` builds a small data
market per replicate: a buyer's base set B = B0 ∪ A, where A is an earlier
contributor's (clean) set that the buyer already accepted. Against that B it offers
a *genuine* clean supplement of size n and a list of attacks of the same size, each
designed as a gamer would to maximise what an estimator pays for worthless data:

* ``random_bits``: inputs of random extreme bits, random labels (pure junk).
* ``couch``: near-constant inputs (one pool point plus 1 % jitter, so no two rows
  are identical and an exact-duplicate filter keeps them all), random labels.
* ``label_flip``: clean inputs outside B with every label flipped (pure junk).
* ``label_noise``: clean inputs outside B with 30 % of labels flipped.
* ``duplicates_of_base``: exact copies of B's points (pure junk: no new content).
* ``copy_of_contributor``: a verbatim copy of contributor A's set, resubmitted
  (pure junk: A is already in B).
* ``near_duplicates``: B's points plus small Gaussian noise (the sampler's kind).
* ``adversarial_near_duplicates``: copies of the B points that are nearest to the
  evaluation distribution (the most "valuable" points by a nearest-neighbour
  argument), each moved by exactly ``adv_margin`` times B's median nearest-neighbour
  distance: just above the predictor's near-duplicate threshold (0.25) and far above
  any exact-hash check, so neither flags them.
* ``padded_random_bits`` / ``padded_near_duplicates``: a clean core of
  ``core_frac * n`` points padded to size n with random bits or with adversarial
  near-duplicates, to inflate size-driven estimates. The row ``genuine_core`` (the
  core alone) tells whether padding pays: it does if the padded set is valued
  above its own core.

Estimators, each on its own scale (the first four in units of ``metric``):

* ``retraining``: the ground-truth label metric(B ∪ S) - metric(B), K paired seeds
  (``metaval.labeling.pipeline.label_pairs``).
* ``predictor``: ``metaval.api.load_predictor(path).value(S, base=B, learner=...)``;
  the predictor is loaded from ``predictor.path`` or trained into
  ``<workdir>/predictor`` on the quick labels. None of the attacks, bases or
  genuine sets here is a pair it was trained on.
* ``ablation``: the retraining label of a smaller learner (the learner at rung
  ``ablation.size`` of its size ladder, as ``metaval ablate`` builds them).
* ``untraining``: gradient-ascent drop (``metaval.valuation.untrain``).
* ``knn_shapley``, ``data_oob``, ``tmc_shapley``: per-point baselines computed on
  B ∪ S; a set's value is the sum of its points' values
  (``metaval.valuation.pointwise``).

Every (row, estimator) cell is the mean over R replicates (fresh B0, A, genuine set
and attacks each) with a 95 % t-interval. An attack *passes* an estimator when its
mean is below the genuine set's mean and, for pure junk, when the interval's lower
end is at or below zero. Failures are reported in the summary, never dropped.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import tempfile
import time
from collections.abc import Callable

import jax
import ml_collections
import numpy as np
from scipy import stats as sstats

from metaval import protocol
from metaval.data import samplers as S
from metaval.data.tasks import CLASSIFICATION, Task, get_task
from metaval.errors import MetavalError
from metaval.learners.models import LearnerSpec
from metaval.learners.train import metric_names

GENUINE = "genuine"
GENUINE_CORE = "genuine_core"
ESTIMATORS = (
  "retraining",
  "predictor",
  "ablation",
  "untraining",
  "knn_shapley",
  "data_oob",
  "tmc_shapley",
)
# Estimators the acceptance criterion is asserted on (the others are reported).
ACCEPTANCE_ESTIMATORS = ("retraining", "predictor")
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
  task = get_task(config.task.name, seed=int(config.task.seed))
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


# ----------------------------------------------------------------------------
# Estimators: each returns ``[P]`` values (and optional extras) for the pairs.


def _metric_index(task: Task, metric: str) -> int:
  names = metric_names(task)
  if metric not in names:
    raise GoodhartError(f"unknown metric {metric!r}; available: {', '.join(names)}")
  return names.index(metric)


def retraining_values(task, markets, supps, rep, spec: LearnerSpec, cfg, *, seed_offset=0):
  """Paired-seed retraining labels ``[P]`` (mean over K) and their ``[P]`` seed SE."""
  from metaval.labeling.pipeline import label_pairs

  k = int(cfg.num_seeds)
  mb, mf = label_pairs(
    task,
    [m.base for m in markets],
    supps,
    spec,
    base_of=rep,
    num_seeds=k,
    # B and B ∪ S of a pair share their keys inside label_pairs (paired seeds).
    key=jax.random.fold_in(jax.random.key(int(cfg.seed)), seed_offset),
    chunk=int(cfg.chunk),
  )
  imp = (mf - mb)[:, :, _metric_index(task, cfg.metric)]  # [P, K]
  se = imp.std(1, ddof=1) / math.sqrt(k) if k > 1 else np.zeros(len(imp))
  return imp.mean(1), {"seed_se": se}


def predictor_path(config, workdir: str | None) -> str:
  """Where the predictor is (``predictor.path``) or will be trained (``<workdir>/predictor``)."""
  if config.predictor.path:
    return str(config.predictor.path)
  if not workdir:
    raise GoodhartError("the predictor estimator needs predictor.path or a workdir to train into")
  return os.path.join(workdir, "predictor")


def ensure_predictor(config, workdir: str | None, log=print) -> str:
  """Loads the predictor's path, training it on ``predictor.config`` if absent."""
  from metaval.configlib import load as load_config
  from metaval.predictor.train import META_FILE, train_and_evaluate

  path = predictor_path(config, workdir)
  if not os.path.isfile(os.path.join(path, META_FILE)):
    if config.predictor.path and not config.predictor.train_if_missing:
      raise GoodhartError(f"no trained predictor at {path!r}")
    log(f"[goodhart] training predictor ({config.predictor.config}) into {path}")
    pcfg = load_config(str(config.predictor.config), list(config.predictor.overrides))
    train_and_evaluate(pcfg, path)
  return path


def predictor_values(task, markets, supps, rep, spec: LearnerSpec, cfg, path: str):
  """The predictor's value ``[P]`` of each pair, with its own interval bounds."""
  from metaval.api import load_predictor

  p = load_predictor(path)
  if cfg.metric not in p.targets:
    raise GoodhartError(f"the predictor does not predict {cfg.metric!r}; it has {p.targets}")
  info = p.tasks.get(task.name)
  if info is None:
    raise GoodhartError(f"the predictor at {path!r} does not know task {task.name!r}")
  # The predictor's default learner (its labels' learner); label JSON may carry
  # extra keys ("name", "params"), so compare on the spec's own fields.
  fields = set(spec.to_dict())
  default = {k: v for k, v in dict(info.get("learner", {})).items() if k in fields}
  matches = default == spec.to_dict()
  # Query with learner=None when the spec is the default: same learner, and it
  # avoids re-validating the label JSON's extra keys as spec fields.
  learner = None if matches else spec.to_dict()
  vals, lows, highs = [], [], []
  for s, r in zip(supps, rep):
    facts = p.value((s.x, s.y), base=markets[r].base, learner=learner, task=task.name)
    t = next(t for t in facts.targets if t.metric == cfg.metric)
    vals.append(t.value)
    lows.append(t.low)
    highs.append(t.high)
  extras = {
    "low": np.asarray(lows),
    "high": np.asarray(highs),
    "learner_matches_training": bool(matches),
  }
  return np.asarray(vals), extras


def untraining_values(task, markets, supps, rep, spec: LearnerSpec, cfg):
  """Gradient-ascent drop metric(B ∪ S) - metric(untrained) ``[P]`` (mean over K)."""
  from metaval.valuation import untrain as U

  pairs = U.Pairs(
    base_indices=[markets[r].base for r in rep],
    supp_indices=[s.pool_indices for s in supps],
    supp_x=[s.x for s in supps],
    supp_y=[s.y for s in supps],
    kind=np.asarray([s.kind for s in supps]),
  )
  asc = U.AscentSpec(**dict(cfg.untrain.ascent))
  with tempfile.TemporaryDirectory(prefix="goodhart_untrain_") as ck:
    out = U.untrain_pairs(
      task,
      pairs,
      spec,
      asc,
      num_seeds=int(cfg.num_seeds),
      seed=int(cfg.seed),
      ckpt_dir=ck,
      log=lambda *a: None,
    )
  j = out["metric_names"].index(cfg.metric)
  return out["estimate"][:, :, j].mean(1), {"own_label": out["label"][:, :, j].mean(1)}


def _union_task(task: Task, base: np.ndarray, s: S.Supplement) -> Task:
  """A task whose pool is B's points followed by S's (S last)."""
  x = np.concatenate([task.x[base], s.x]).astype(np.float32)
  y = np.concatenate([task.y[base], s.y]).astype(np.int32)
  return dataclasses.replace(
    task, x=x, y=y, groups=y.copy(), files=np.arange(len(y), dtype=np.int32)
  )


def pointwise_values(task, markets, supps, rep, spec: LearnerSpec, cfg, method: str):
  """Sum over S of per-point values computed on B ∪ S ``[P]``."""
  from metaval.valuation import pointwise as PW

  bc = cfg.baselines
  ev = cfg.metric.split("/")[0]
  out = []
  for s, r in zip(supps, rep):
    sub = _union_task(task, markets[r].base, s)
    n = len(s)
    if method == "knn_shapley":
      ex, ey = task.evals[ev]
      v = PW.knn_shapley(sub.x, sub.y, ex, ey, k=int(bc.knn_k)).values
    elif method == "data_oob":
      v = PW.data_oob(
        sub, spec, num_bags=int(bc.oob_bags), seed=int(cfg.seed), batch_size=int(bc.oob_bags)
      ).values
    elif method == "tmc_shapley":
      v = PW.value_points(
        "tmc_shapley",
        sub,
        spec,
        metric=cfg.metric,
        seed=int(cfg.seed),
        batch_size=int(bc.tmc_batch),
        num_permutations=int(bc.tmc_permutations),
        rtol=float(bc.tmc_rtol),
      ).values
    else:
      raise GoodhartError(f"unknown pointwise method {method!r}")
    out.append(PW.set_value(v, np.arange(len(sub.y) - n, len(sub.y))))
  return np.asarray(out), {}


# ----------------------------------------------------------------------------
# The suite.


@dataclasses.dataclass
class GoodhartResult:
  """What ``goodhart_suite`` measured.

  Attributes:
    rows: one dict per supplement row (genuine, genuine_core, attacks): for each
      estimator ``<est>`` the mean ``<est>``, 95 % half-width ``<est>_ci`` and
      ``<est>_pass`` (None for the reference rows).
    summary: one dict per estimator: attacks below genuine, junk at/below zero,
      failures by name.
    acceptance: estimator -> whether every attack passed (for
      ``ACCEPTANCE_ESTIMATORS`` present in the run).
    values: estimator -> ``[R, rows]`` per-replicate values.
    extras: estimator -> extra per-pair arrays (seed SE, predictor intervals, ...).
    recipes: row -> the first replicate's recipe (JSON-able).
    seconds: estimator -> wall time.
  """

  rows: list[dict]
  summary: list[dict]
  acceptance: dict[str, bool]
  values: dict[str, np.ndarray]
  extras: dict
  recipes: dict
  seconds: dict


def _fingerprint(config) -> str:
  d = config.to_dict()
  for k in ("estimators", "predictor"):
    d.pop(k, None)
  return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _interval(v: np.ndarray, level: float = 0.95) -> tuple[float, float]:
  """Mean and t-interval half-width over replicates (nan half-width for R = 1)."""
  v = np.asarray(v, np.float64)
  if len(v) < 2:
    return float(v.mean()), float("nan")
  t = float(sstats.t.ppf(0.5 + level / 2, len(v) - 1))
  return float(v.mean()), t * float(v.std(ddof=1)) / math.sqrt(len(v))


def judge(values: dict[str, np.ndarray], row_names: list[str]) -> tuple[list[dict], list[dict]]:
  """Rows (mean, interval, pass flag per estimator) and the per-estimator summary.

  Args:
    values: estimator -> ``[R, len(row_names)]`` per-replicate values.
    row_names: the rows; must include ``GENUINE``.

  Returns:
    ``(rows, summary)`` as described in ``GoodhartResult``.
  """
  g = row_names.index(GENUINE)
  rows = []
  for j, name in enumerate(row_names):
    ref = name in (GENUINE, GENUINE_CORE)
    junk = (not ref) and ATTACKS[name].junk
    row = {"supplement": name, "junk": junk}
    for est, v in values.items():
      mean, half = _interval(v[:, j])
      gmean = float(v[:, g].mean())
      row[est] = mean
      row[f"{est}_ci"] = half
      if ref:
        row[f"{est}_pass"] = None
        continue
      below = mean < gmean
      low = mean - (half if np.isfinite(half) else 0.0)
      row[f"{est}_below_genuine"] = bool(below)
      row[f"{est}_junk_ok"] = bool(low <= 0.0) if junk else None
      row[f"{est}_pass"] = bool(below and (low <= 0.0 if junk else True))
    rows.append(row)
  summary = []
  attacks = [r for r in rows if r["supplement"] not in (GENUINE, GENUINE_CORE)]
  for est in values:
    below = [r for r in attacks if r[f"{est}_below_genuine"]]
    junk = [r for r in attacks if r["junk"]]
    junk_ok = [r for r in junk if r[f"{est}_junk_ok"]]
    fails = [r["supplement"] for r in attacks if not r[f"{est}_pass"]]
    core = next((r for r in rows if r["supplement"] == GENUINE_CORE), None)
    padding_pays = [
      r["supplement"]
      for r in attacks
      if core is not None and r["supplement"].startswith("padded") and r[est] > core[est]
    ]
    summary.append(
      {
        "estimator": est,
        "below_genuine": f"{len(below)}/{len(attacks)}",
        "junk_at_or_below_zero": f"{len(junk_ok)}/{len(junk)}",
        "all_pass": not fails,
        "failures": ", ".join(fails) or "none",
        "padding_pays": ", ".join(padding_pays) or "none",
      }
    )
  return rows, summary


def ablation_learner(spec: LearnerSpec, config) -> LearnerSpec:
  """The smaller learner of the ablation: ``spec`` at rung ``ablation.size`` of its ladder."""
  from metaval.learners.models import ladder

  (small,) = ladder(spec, (int(config.ablation.size),))
  return small


def _run_estimator(est, task, markets, supps, rep, spec, config, workdir, log):
  if est == "retraining":
    return retraining_values(task, markets, supps, rep, spec, config)
  if est == "predictor":
    path = ensure_predictor(config, workdir, log)
    return predictor_values(task, markets, supps, rep, spec, config, path)
  if est == "ablation":
    small = ablation_learner(spec, config)
    return retraining_values(task, markets, supps, rep, small, config, seed_offset=1)
  if est == "untraining":
    return untraining_values(task, markets, supps, rep, spec, config)
  if est in ("knn_shapley", "data_oob", "tmc_shapley"):
    return pointwise_values(task, markets, supps, rep, spec, config, est)
  raise GoodhartError(f"unknown estimator {est!r}; available: {', '.join(ESTIMATORS)}")


def _cache_path(workdir, config, est) -> str | None:
  if not workdir:
    return None
  return os.path.join(workdir, "cache", _fingerprint(config), f"{est}.npz")


def goodhart_suite(config, workdir: str | None = None, log=print) -> GoodhartResult:
  """Values the genuine set and every attack with every configured estimator.

  Finished estimators are cached under ``<workdir>/cache/<config hash>/`` (written
  atomically), so an interrupted run resumes with the next estimator.

  Args:
    config: a ``goodhart`` config.
    workdir: outputs, cache and (if ``predictor.path`` is empty) the predictor;
      None keeps nothing on disk and needs ``predictor.path`` for the predictor.
    log: progress printer.

  Returns:
    A ``GoodhartResult``.
  """
  unknown = [e for e in config.estimators if e not in ESTIMATORS]
  if unknown:
    raise GoodhartError(f"unknown estimator(s) {unknown}; available: {', '.join(ESTIMATORS)}")
  if not len(config.estimators):
    raise GoodhartError("config.estimators is empty")
  task, markets, names, supps, rep = build_pairs(config)
  _metric_index(task, config.metric)
  spec = LearnerSpec.from_config(config.learner)
  n_rows = len(names) // len(markets)
  row_names = names[:n_rows]
  log(
    f"[goodhart] {task.name}: {len(markets)} replicate(s) x {n_rows} rows "
    f"(|B| = {len(markets[0].base)}, |S| = {config.supp_size}), "
    f"estimators: {', '.join(config.estimators)}"
  )
  values, extras, seconds = {}, {}, {}
  for est in config.estimators:
    path = _cache_path(workdir, config, est)
    t0 = time.perf_counter()
    if path and os.path.isfile(path):
      with np.load(path) as z:
        v = z["values"]
        ex = {k[6:]: z[k] for k in z.files if k.startswith("extra_")}
        seconds[est] = float(json.loads(str(z["meta"]))["seconds"])
      log(f"[goodhart] {est}: cached")
    else:
      v, ex = _run_estimator(est, task, markets, supps, rep, spec, config, workdir, log)
      seconds[est] = time.perf_counter() - t0
      if path:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        arrays = {f"extra_{k}": np.asarray(a) for k, a in ex.items()}
        meta = json.dumps({"seconds": seconds[est]})
        np.savez(path + ".tmp.npz", values=np.asarray(v), meta=np.array(meta), **arrays)
        os.replace(path + ".tmp.npz", path)
      log(f"[goodhart] {est}: {seconds[est]:.1f}s")
    if not np.all(np.isfinite(v)):
      raise GoodhartError(f"estimator {est!r} produced non-finite values")
    values[est] = np.asarray(v, np.float64).reshape(len(markets), n_rows)
    extras[est] = {k: np.asarray(a).tolist() for k, a in ex.items()}
  rows, summary = judge(values, row_names)
  acceptance = {
    s["estimator"]: bool(s["all_pass"]) for s in summary if s["estimator"] in ACCEPTANCE_ESTIMATORS
  }
  recipes = {row_names[j]: supps[j].recipe for j in range(n_rows)}
  return GoodhartResult(rows, summary, acceptance, values, extras, recipes, seconds)


# ----------------------------------------------------------------------------
# Tables and the CLI.


def value_table(result: GoodhartResult) -> list[dict]:
  """Compact rows for the README: ``mean ± ci`` per estimator, ✗ marks a failure."""
  out = []
  for r in result.rows:
    row = {"supplement": r["supplement"] + (" (junk)" if r["junk"] else "")}
    for est in result.values:
      mean, half = r[est], r[f"{est}_ci"]
      digits = 4 if abs(mean) < 10 else 2  # data_oob sums are counts, not deltas
      cell = f"{mean:+.{digits}f}"
      if np.isfinite(half):
        cell += f" ± {half:.{digits}f}"
      if r[f"{est}_pass"] is False:
        cell += " ✗"
      row[est] = cell
    out.append(row)
  return out


def write_outputs(result: GoodhartResult, workdir: str, config) -> str:
  """Writes ``goodhart.{md,json}`` and ``goodhart_summary.{md,json}``; returns the markdown."""
  meta = {
    "task": config.task.name,
    "metric": config.metric,
    "replicates": int(config.num_bases),
    "seeds": int(config.num_seeds),
    "base_size": int(config.base_size) + int(config.contributor_size),
    "supp_size": int(config.supp_size),
    "seconds": {k: round(v, 1) for k, v in result.seconds.items()},
  }
  md = protocol.write_table(
    value_table(result),
    os.path.join(workdir, "goodhart"),
    title="Goodhart suite: value each estimator assigns (mean ± 95% CI over replicates; ✗ = fails)",
    meta=meta,
  )
  with open(os.path.join(workdir, "goodhart_full.json.tmp"), "w") as f:
    json.dump(
      protocol._jsonable(
        {
          "meta": meta,
          "rows": result.rows,
          "summary": result.summary,
          "acceptance": result.acceptance,
          "values": result.values,
          "extras": result.extras,
          "recipes": result.recipes,
        }
      ),
      f,
      indent=1,
    )
  os.replace(
    os.path.join(workdir, "goodhart_full.json.tmp"), os.path.join(workdir, "goodhart_full.json")
  )
  md_sum = protocol.write_table(
    result.summary,
    os.path.join(workdir, "goodhart_summary"),
    title="Goodhart suite: per-estimator verdict",
    meta={"acceptance": result.acceptance},
  )
  return md + "\n\n" + md_sum


def run(config, workdir: str | None = None) -> GoodhartResult:
  """``metaval audit goodhart``: runs the suite, prints and writes the tables."""
  workdir = workdir or "runs/audit_goodhart"
  os.makedirs(workdir, exist_ok=True)
  result = goodhart_suite(config, workdir)
  print(write_outputs(result, workdir, config))
  verdict = ", ".join(f"{k}: {'PASS' if v else 'FAIL'}" for k, v in result.acceptance.items())
  print(f"[goodhart] acceptance ({verdict}); tables in {workdir}/goodhart*.md")
  return result
