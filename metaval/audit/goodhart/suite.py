"""The Goodhart suite's run: every configured estimator values every row, then the judge.

Estimators come from ``metaval.estimators`` (one meaning per name, the same as in
the E3 table); ``make_estimators`` builds them from a ``goodhart``
config. Finished estimators are cached, so an interrupted run resumes.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time

import jax
import numpy as np
from scipy import stats as sstats

from metaval import estimators as E
from metaval import pairs as pairs_lib
from metaval.audit.goodhart.attacks import (
  ATTACKS,
  GENUINE,
  GENUINE_CORE,
  GoodhartError,
  build_pairs,
)
from metaval.learners.models import LearnerSpec
from metaval.util import io as io_lib
from metaval.valuation.ascent import AscentSpec

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


def make_estimator(name: str, config, workdir: str | None = None, log=print) -> E.Estimator:
  """The ``metaval.estimators`` estimator a Goodhart config means by ``name``.

  Retraining and the ablation use the paired-seed keys rooted at
  ``fold_in(key(seed), 0)`` and ``fold_in(key(seed), 1)``: the ablation is an
  independent label.
  """
  k, seed, bc = int(config.num_seeds), int(config.seed), config.baselines
  root = pairs_lib.root_key(seed)
  if name == "retraining":
    return E.Retraining(
      num_seeds=k, key=jax.random.fold_in(root, 0), chunk=int(config.chunk), name=name
    )
  if name == "predictor":
    return E.ValueModel(ensure_predictor(config, workdir, log), name=name)
  if name == "ablation":
    return E.Ablation(
      size=int(config.ablation.size),
      num_seeds=k,
      key=jax.random.fold_in(root, 1),
      chunk=int(config.chunk),
      name=name,
    )
  if name == "untraining":
    return E.Untraining(
      AscentSpec(**dict(config.untrain.ascent)), num_seeds=k, seed=seed, name=name
    )
  if name == "knn_shapley":
    return E.KnnShapleySum(k=int(bc.knn_k), name=name)
  if name == "data_oob":
    return E.DataOobSum(num_bags=int(bc.oob_bags), seed=seed, name=name)
  if name == "tmc_shapley":
    return E.TmcShapleySum(
      num_permutations=int(bc.tmc_permutations),
      rtol=float(bc.tmc_rtol),
      batch_size=int(bc.tmc_batch),
      seed=seed,
      name=name,
    )
  raise GoodhartError(f"unknown estimator {name!r}; available: {', '.join(ESTIMATORS)}")


def _extras(e: E.Estimate) -> dict:
  """Per-pair extras kept in the outputs: the interval, seed SE and array infos."""
  out = {}
  if np.isfinite(e.stderr).any():
    out["seed_se"] = np.nan_to_num(e.stderr)
  if np.isfinite(e.low).any() and not np.isfinite(e.stderr).any():
    out["low"], out["high"] = e.low, e.high
  for k, v in e.info.items():
    if isinstance(v, bool) or (isinstance(v, np.ndarray) and v.shape == e.value.shape):
      out[k] = np.asarray(v)
  return out


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


def interval(v: np.ndarray, level: float = 0.95) -> tuple[float, float]:
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
      mean, half = interval(v[:, j])
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


def _cache_path(workdir, config, est) -> str | None:
  if not workdir:
    return None
  d = config.to_dict()
  for k in ("estimators", "predictor"):
    d.pop(k, None)
  return os.path.join(workdir, "cache", io_lib.fingerprint(d, 12), f"{est}.npz")


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
  E.base.check_metric(task, config.metric)
  pairs = pairs_lib.Pairs.from_supplements([m.base for m in markets], supps, rep)
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
      e = make_estimator(est, config, workdir, log).estimate(task, pairs, spec, config.metric)
      v, ex = e.value, _extras(e)
      seconds[est] = time.perf_counter() - t0
      if path:
        arrays = {f"extra_{k}": np.asarray(a) for k, a in ex.items()}
        meta = json.dumps({"seconds": seconds[est]})
        io_lib.save_npz(path, values=np.asarray(v), meta=np.array(meta), **arrays)
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
