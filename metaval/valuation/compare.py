"""Strategies at equal compute: every estimator of a set's value on the same pairs.

Held-out (B, S) pairs are drawn like the label pipeline draws them (every
supplement kind), but from a seed the pipeline's training labels never use, and
labelled by retraining the target learner (the ground truth: the mean paired-seed
improvement). Each strategy then values the same pairs, and ``score`` puts its
agreement with the label (``metaval.protocol.agreement``) next to its measured
cost per pair (wall seconds and model fits, same process, same machine):

* ``retraining``: the label itself (its cost is the reference: one retraining of
  the pair = B and B ∪ S for K paired seeds);
* ``predictor``: a trained value predictor queried with ``api.load_predictor``;
* ``ablation``: the retraining label of a cheaper learner (smaller or shorter);
* ``untraining``: gradient ascent on S from the B ∪ S model
  (``metaval.valuation.untrain``);
* ``knn_shapley`` / ``banzhaf`` / ``tmc_shapley``: per-point values of S's points
  with B as background players (always in), summed over S.

With B as background and only S's points as players, Shapley values are
*efficient*: each permutation's marginal contributions telescope to
U(B ∪ S) - U(B), the label itself. TMC-Shapley's set sum therefore differs from the
label only through truncation; Banzhaf values are not efficient and their sum is a
genuinely different quantity.

All functions are pure apart from timing; the experiment script
``experiments/e3_strategies.py`` wires them together.
"""

from __future__ import annotations

import dataclasses
import math
import time

import jax
import ml_collections
import numpy as np

from metaval.data import Task
from metaval.data import samplers as samplers_lib
from metaval.errors import MetavalError
from metaval.labeling import pipeline
from metaval.learners.models import LearnerSpec
from metaval.learners.train import metric_names
from metaval.protocol import agreement
from metaval.valuation import pointwise as PW
from metaval.valuation import untrain as U


class CompareError(MetavalError):
  """Bad inputs to the strategy comparison."""


@dataclasses.dataclass
class HeldOut:
  """P held-out pairs: bases, supplements and which base each pair uses.

  Attributes:
    bases: base sets (pool index arrays), shared by several pairs.
    supps: ``[P]`` supplements.
    base_of: ``[P]`` index into ``bases``.
  """

  bases: list[np.ndarray]
  supps: list[samplers_lib.Supplement]
  base_of: np.ndarray

  def __len__(self) -> int:
    return len(self.supps)

  @property
  def kind(self) -> np.ndarray:
    return np.asarray([s.kind for s in self.supps])

  def base(self, p: int) -> np.ndarray:
    return np.asarray(self.bases[int(self.base_of[p])])

  def as_pairs(self) -> U.Pairs:
    """The pairs in ``metaval.valuation.untrain.Pairs`` form."""
    return U.Pairs(
      base_indices=[self.base(p) for p in range(len(self))],
      supp_indices=[s.pool_indices for s in self.supps],
      supp_x=[s.x for s in self.supps],
      supp_y=[s.y for s in self.supps],
      kind=self.kind,
    )


@dataclasses.dataclass
class Estimate:
  """One strategy's values of the P pairs and what they cost.

  Attributes:
    name: row name, e.g. ``"banzhaf (64 fits)"``.
    values: ``[P]`` estimated value per pair.
    seconds: wall seconds for all P pairs, compilation included.
    fits: model fits per pair (one fit = one training of one model).
    same_scale: whether the values are on the label's scale (MAE meaningful).
    info: extras (e.g. separately reported amortised costs).
  """

  name: str
  values: np.ndarray
  seconds: float
  fits: float
  same_scale: bool = True
  info: dict = dataclasses.field(default_factory=dict)


def heldout_pairs(label_config, task: Task, num_pairs: int, seed: int) -> HeldOut:
  """Pairs drawn like ``label_config``'s shards, from a different root seed.

  Args:
    label_config: a ``labels`` config (its kinds, sizes and
      ``supps_per_base``).
    task: the base task.
    num_pairs: P.
    seed: root seed; must differ from ``label_config.seed`` so the pairs are not
      among the predictor's training labels.

  Returns:
    The ``HeldOut`` pairs (deterministic in ``seed``).
  """
  if num_pairs < 1:
    raise CompareError(f"num_pairs must be >= 1, got {num_pairs}")
  if int(seed) == int(label_config.seed):
    raise CompareError(f"held-out seed {seed} equals the training labels' seed; pick another")
  cfg = ml_collections.ConfigDict(label_config.to_dict())
  cfg.seed = int(seed)
  bases, supps, base_of = [], [], []
  shard = 0
  while len(supps) < num_pairs:
    b, s, bo = pipeline.sample_shard_pairs(cfg, task, shard)
    base_of.extend(int(i) + len(bases) for i in bo)
    bases.extend(b)
    supps.extend(s)
    shard += 1
  base_of = np.asarray(base_of[:num_pairs])
  return HeldOut(bases=bases, supps=supps[:num_pairs], base_of=base_of)


def _timed(fn, *args, **kwargs):
  t0 = time.perf_counter()
  out = fn(*args, **kwargs)
  return out, time.perf_counter() - t0


def retraining(
  task: Task,
  pairs: HeldOut,
  spec: LearnerSpec,
  metric: str,
  *,
  num_seeds: int,
  key: jax.Array,
  chunk: int = 8,
  name: str = "retraining",
) -> tuple[Estimate, np.ndarray]:
  """The retraining label of ``spec`` (also the small-model ablation's estimator).

  B and B ∪ S models use the same keys on purpose (paired seeds, see
  ``metaval.labeling.label_pairs``).

  Returns:
    ``(estimate, per_seed)``: the mean improvement ``[P]`` with its cost, and the
    per-seed improvement ``[P, K]``.
  """
  (mb, mf), sec = _timed(
    pipeline.label_pairs,
    task,
    pairs.bases,
    pairs.supps,
    spec,
    base_of=pairs.base_of,
    num_seeds=num_seeds,
    key=key,
    chunk=chunk,
  )
  j = metric_names(task).index(metric)
  per_seed = (mf - mb)[:, :, j]  # [P, K]
  # Fits per pair: K B∪S models, plus K B models shared by the pairs of each base.
  fits = num_seeds * (1 + len(pairs.bases) / len(pairs))
  return Estimate(name, per_seed.mean(1), sec, fits), per_seed


def predictor_values(path: str, task: Task, pairs: HeldOut, metric: str) -> Estimate:
  """The predictor's value of every pair (query time only; loading timed apart)."""
  from metaval.api import load_predictor

  p, t_load = _timed(load_predictor, path)
  if metric not in p.targets:
    raise CompareError(f"the predictor at {path!r} does not predict {metric!r}; it has {p.targets}")
  vals = []
  t0 = time.perf_counter()
  for i, s in enumerate(pairs.supps):
    facts = p.value((s.x, s.y), base=pairs.base(i), task=task.name)
    vals.append(next(t.value for t in facts.targets if t.metric == metric))
  sec = time.perf_counter() - t0
  return Estimate("predictor", np.asarray(vals), sec, 0.0, info={"load_s": t_load})


def untraining_values(
  task: Task,
  pairs: HeldOut,
  spec: LearnerSpec,
  asc: U.AscentSpec,
  metric: str,
  *,
  num_seeds: int,
  ckpt_dir: str,
  seed: int = 0,
) -> Estimate:
  """Gradient-ascent drop from the B ∪ S model, mean over K seeds.

  ``untrain_pairs`` also retrains B for its own label; that time is not the
  untraining's, so the cost is its steady-state per-pair timing: the B ∪ S
  training (amortised over pairs sharing it) plus restore, ascent and evaluation.
  """
  out = U.untrain_pairs(
    task,
    pairs.as_pairs(),
    spec,
    asc,
    num_seeds=num_seeds,
    seed=seed,
    ckpt_dir=ckpt_dir,
    log=lambda *a: None,
  )
  j = out["metric_names"].index(metric)
  tm = out["timing"]
  cost = U.cost_summary(tm)
  per_pair = cost["untrain_total_x"] * tm["retrain_base_s"]
  # Fits: the B∪S model (K seeds); the ascent is counted in example gradients.
  fits = num_seeds / tm["models_per_full_training"]
  return Estimate(
    f"untraining ({asc.steps} ascent steps)",
    out["estimate"][:, :, j].mean(1),
    per_pair * len(pairs),
    fits,
    info={
      "ascent_vs_train_example_grads": cost["ascent_vs_train_example_grads"],
      # Both sides steady state, same process: untraining over one retraining label.
      "x_retrain": cost["untrain_total_x"] / cost["retrain_label_x"],
    },
  )


class _PairUtility(PW.Utility):
  """A ``Utility`` on a zero-padded B ∪ S pool: padding rows have weight 0.

  Padding to a fixed pool size lets one compiled program serve every pair.
  """

  def __init__(self, task: Task, spec: LearnerSpec, players, weights, **kwargs):
    super().__init__(task, spec, players=players, **kwargs)
    self._weights = np.asarray(weights, np.float32)

  def masks(self, coalitions) -> np.ndarray:
    return super().masks(coalitions) * self._weights[None]


def union_task(task: Task, base: np.ndarray, s: samplers_lib.Supplement, size: int):
  """B's points, then S's, then zero padding up to ``size`` rows.

  Returns:
    ``(task', players [size], weights [size])``: B and padding are background
    (player -1), S's i-th point is player i; padding weighs 0.
  """
  n_b, n_s = len(base), len(s)
  if n_b + n_s > size:
    raise CompareError(f"B ∪ S has {n_b + n_s} points, more than the padded size {size}")
  pad = size - n_b - n_s
  x = np.concatenate([task.x[base], s.x, np.zeros((pad, *task.x.shape[1:]), task.x.dtype)])
  y = np.concatenate([task.y[base], s.y, np.zeros(pad, np.int32)]).astype(np.int32)
  sub = dataclasses.replace(
    task, x=x.astype(task.x.dtype), y=y, groups=y.copy(), files=np.arange(size, dtype=np.int32)
  )
  players = np.concatenate([np.full(n_b, -1), np.arange(n_s), np.full(pad, -1)]).astype(np.int64)
  weights = np.concatenate([np.ones(n_b + n_s), np.zeros(pad)]).astype(np.float32)
  return sub, players, weights


def _padded_size(pairs: HeldOut, multiple: int = 256) -> int:
  n = max(len(pairs.base(p)) + len(pairs.supps[p]) for p in range(len(pairs)))
  return multiple * math.ceil(n / multiple)


def shapley_sums(
  task: Task,
  pairs: HeldOut,
  spec: LearnerSpec,
  metric: str,
  method: str,
  *,
  budget: int,
  seed: int = 0,
  tmc_rtol: float = 0.05,
) -> Estimate:
  """Sum over S of model-based per-point values (B always in), per pair.

  Args:
    method: ``"banzhaf"`` (``budget`` = sampled coalitions, i.e. fits) or
      ``"tmc_shapley"`` (``budget`` = permutations; fits depend on truncation).
    budget: see ``method``.
    seed: coalition / permutation seed (all fits of a pair share one PRNG key:
      common random numbers, see ``pointwise.Utility``).
    tmc_rtol: TMC truncation tolerance.
  """
  if budget < 1:
    raise CompareError(f"budget must be >= 1, got {budget}")
  size = _padded_size(pairs)
  vals, fits = [], 0
  t0 = time.perf_counter()
  for p in range(len(pairs)):
    sub, players, weights = union_task(task, pairs.base(p), pairs.supps[p], size)
    if method == "banzhaf":
      u = _PairUtility(sub, spec, players, weights, metric=metric, seed=seed, batch_size=budget)
      v = PW.banzhaf(u, num_samples=budget, seed=seed + p)
    elif method == "tmc_shapley":
      u = _PairUtility(sub, spec, players, weights, metric=metric, seed=seed, batch_size=16)
      v = PW.tmc_shapley(u, num_permutations=budget, rtol=tmc_rtol, block=16, seed=seed + p)
    else:
      raise CompareError(f"unknown per-point method {method!r}; use banzhaf or tmc_shapley")
    vals.append(float(v.values.sum()))
    fits += u.fits
  sec = time.perf_counter() - t0
  unit = "fits" if method == "banzhaf" else "permutations"
  same = method == "tmc_shapley"  # efficient: sums to U(B ∪ S) - U(B) up to truncation
  return Estimate(f"{method} ({budget} {unit})", np.asarray(vals), sec, fits / len(pairs), same)


def knn_shapley_sums(task: Task, pairs: HeldOut, metric: str, *, k: int = 5) -> Estimate:
  """Sum over S of exact KNN-Shapley values on B ∪ S against the metric's eval set."""
  ev = metric.split("/")[0]
  if ev not in task.evals:
    raise CompareError(f"no evaluation set {ev!r} for {metric!r}; task has {sorted(task.evals)}")
  ex, ey = task.evals[ev]
  vals = []
  t0 = time.perf_counter()
  for p in range(len(pairs)):
    base, s = pairs.base(p), pairs.supps[p]
    xtr = np.concatenate([task.x[base], s.x])
    ytr = np.concatenate([task.y[base], s.y])
    v = PW.knn_shapley(xtr, ytr, ex, ey, k=k).values
    vals.append(PW.set_value(v, np.arange(len(base), len(ytr))))
  sec = time.perf_counter() - t0
  return Estimate(f"knn_shapley (k={k})", np.asarray(vals), sec, 0.0, same_scale=False)


def score(
  estimates: list[Estimate], label: np.ndarray, per_seed: np.ndarray, ref_seconds: float
) -> list[dict]:
  """One table row per estimate: agreement with the label next to cost.

  Args:
    estimates: the strategies' ``Estimate``s on the same P pairs.
    label: ``[P]`` retraining label.
    per_seed: ``[P, K]`` per-seed improvements (the ceiling row, K >= 2).
    ref_seconds: wall seconds of one retraining of all P pairs (the cost unit);
      an estimate whose ``info`` has ``x_retrain`` (measured against its own
      steady-state retraining, e.g. untraining) keeps that ratio.

  Returns:
    Rows with ``estimator``, ``spearman``, ``pearson``, ``mae`` (NaN when not on
    the label's scale), ``sign_acc``, ``top10_precision``, ``s_per_pair``,
    ``x_retrain`` (wall cost in retrainings) and ``fits_per_pair``.
  """
  label = np.asarray(label, np.float64)
  rows = []
  n = len(label)
  for e in estimates:
    if e.values.shape != label.shape:
      raise CompareError(f"{e.name}: {e.values.shape} values for {label.shape} labels")
    a = agreement(e.values, label)
    rows.append(
      {
        "estimator": e.name,
        "spearman": a["spearman"],
        "pearson": a["pearson"],
        "mae": a["mae"] if e.same_scale else float("nan"),
        "sign_acc": a["sign_acc"],
        "top10_precision": a["topk_precision"],
        "s_per_pair": e.seconds / n,
        "x_retrain": e.info.get("x_retrain", e.seconds / ref_seconds),
        "fits_per_pair": e.fits,
      }
    )
  k = per_seed.shape[1]
  if k >= 2:
    # Label repeatability: mean of one half of the seeds against the other half.
    a = agreement(per_seed[:, : k // 2].mean(1), per_seed[:, k // 2 :].mean(1))
    rows.append(
      {
        "estimator": f"ceiling: label half-seeds ({k // 2} vs {k - k // 2})",
        "spearman": a["spearman"],
        "pearson": a["pearson"],
        "mae": a["mae"],
        "sign_acc": a["sign_acc"],
        "top10_precision": a["topk_precision"],
        "s_per_pair": float("nan"),
        "x_retrain": float("nan"),
        "fits_per_pair": float("nan"),
      }
    )
  return rows
