"""``metaval baselines``: value a noisy training set with every per-point method, score them.

The job around ``metaval.games.value_points``: for each configured method, wall
time, fits, fits/s, noisy-label detection (precision@k, F1, AUROC) and, if
``config.curves``, point removal curves on the holdout set. Finished methods are
saved under ``workdir/values`` and reused by a rerun with the same settings.
"""

from __future__ import annotations

import json
import os

import numpy as np

from metaval import games
from metaval.data import task_from_config, task_spec
from metaval.games import GameError, Valuation
from metaval.learners.models import LearnerSpec
from metaval.util import io as io_lib
from metaval.valuation.noisy import NoisyProblem, noisy_problem

# Bumped when the saved values' format changes, so older files are recomputed.
VALUES_FORMAT = 2


def _task_key(task_cfg) -> dict:
  name, seed, options = task_spec(task_cfg)
  return {"name": name, "seed": seed, **options}


def method_options(config, method: str) -> dict:
  """The config's options for one method, as keyword arguments."""
  opts = config.methods_options.get(method) if "methods_options" in config else None
  return dict(opts) if opts is not None else {}


def _values(config, prob: NoisyProblem, spec: LearnerSpec, method: str, vdir) -> Valuation:
  """One method's values: reused from ``vdir`` when the fingerprint matches, else computed."""
  opts = method_options(config, method)
  fp = io_lib.fingerprint(
    {
      "format": VALUES_FORMAT,
      "method": method,
      "opts": opts,
      "spec": spec.to_dict(),
      # name, seed and the options set: unset (None) options leave old caches valid
      "task": _task_key(config.task),
      "n": config.n_train,
      "noise": config.noise_rate,
      "seed": config.seed,
      "metric": config.metric,
    }
  )
  path = os.path.join(vdir, f"{method}.json") if vdir else None
  if path and os.path.exists(path):
    with open(path) as f:
      saved = json.load(f)
    if saved.get("fingerprint") == fp:
      print(f"  {method}: reusing {path}")
      return Valuation.from_dict(saved)
  v = games.value_points(
    method,
    prob.task,
    spec,
    metric=config.metric,
    seed=config.seed,
    batch_size=config.batch_size,
    **opts,
  )
  if path:
    io_lib.write_json(path, {**v.to_dict(), "fingerprint": fp})
  return v


def run(config, workdir: str | None = None) -> dict:
  """Values a noisy training set with every configured method and scores them.

  Writes ``baselines.{json,md}`` and ``removal_curves.png`` to ``workdir``.

  Returns:
    ``{"rows": [one dict per method (and group row)], "meta": {...}}``.
  """
  from metaval import protocol

  spec = LearnerSpec.from_config(config.learner)
  prob = noisy_problem(
    task_from_config(config.task),
    n_train=config.n_train,
    noise_rate=config.noise_rate,
    seed=config.seed,
  )
  methods = list(config.methods)
  bad = [m for m in methods if m not in games.METHODS]
  if bad:
    raise GameError(f"unknown method(s) {bad}; available: {', '.join(games.METHODS)}")
  print(prob.task.describe())
  print(
    f"{config.n_train} training points, {int(prob.is_noisy.sum())} flipped labels; learner {spec}"
  )
  vdir = os.path.join(workdir, "values") if workdir else None
  rows, curves = [], {}
  for method in methods:
    v = _values(config, prob, spec, method, vdir)
    det = protocol.noisy_label_detection(v.values, prob.is_noisy)
    row = {
      "method": method,
      "library": "metaval",
      "wall_s": v.seconds,
      "fits": v.fits,
      "fits_needed": v.fits_needed,
      "fits_per_s": v.fits / v.seconds if v.fits and v.seconds > 0 else float("nan"),
      "precision_at_k": det["precision_at_k"],
      "f1": det["f1"],
      "auroc": det["auroc"],
    }
    if config.curves:
      for order, key in (("high_first", "remove_high_auc"), ("low_first", "remove_low_auc")):
        c = protocol.removal_curve(
          prob.holdout,
          v.values,
          spec,
          metric="holdout/accuracy",
          order=order,
          fractions=tuple(config.curve_fractions),
        )
        row[key] = c["auc"]
        curves[f"{method} ({order.replace('_', ' ')})"] = (c["fractions"], c["metric"])
    rows.append(row)
    print(
      f"  {method:13s} {v.seconds:7.1f}s {v.fits:7d} fits  P@k {det['precision_at_k']:.3f}"
      f"  F1 {det['f1']:.3f}  AUROC {det['auroc']:.3f}"
    )
  if config.group_values:
    rows += _group_rows(config, prob, spec, vdir)
  meta = {
    "task": config.task.name,
    "n_train": config.n_train,
    "noise_rate": config.noise_rate,
    "learner": spec.to_dict(),
    "metric": config.metric,
  }
  print(protocol.format_table(rows))
  if workdir:
    protocol.write_table(
      rows, os.path.join(workdir, "baselines"), title="metaval baselines", meta=meta
    )
    if curves:
      protocol.plot_curves(
        curves,
        os.path.join(workdir, "removal_curves.png"),
        xlabel="fraction of training points removed",
        ylabel="holdout accuracy",
        title="point removal: highest- vs lowest-valued first",
      )
    print(f"wrote {os.path.join(workdir, 'baselines.md')}")
  return {"rows": rows, "meta": meta}


def _group_rows(config, prob: NoisyProblem, spec, vdir) -> list[dict]:
  """Flipped set vs an equal-size clean set: direct group values vs sums of points."""
  rng = np.random.default_rng(config.seed + 1)
  noisy = np.flatnonzero(prob.is_noisy)
  clean = rng.choice(np.flatnonzero(~prob.is_noisy), len(noisy), replace=False)
  rows = []
  for method in ("tmc_shapley", "banzhaf"):
    gv = games.group_values(
      prob.task,
      spec,
      [noisy, clean],
      method=method,
      metric=config.metric,
      seed=config.seed,
      batch_size=config.batch_size,
      **method_options(config, method),
    )
    saved = os.path.join(vdir, f"{method}.json") if vdir else None
    sums = [float("nan"), float("nan")]
    if saved and os.path.exists(saved):
      with open(saved) as f:
        vals = np.asarray(json.load(f)["values"])
      sums = [games.set_value(vals, noisy), games.set_value(vals, clean)]
    for name, direct, s in zip(("flipped set", "clean set"), gv.values, sums):
      rows.append(
        {
          "method": f"group {method}: {name}",
          "library": "metaval",
          "wall_s": gv.seconds,
          "fits": gv.fits,
          "group_value": float(direct),
          "sum_of_points": s,
        }
      )
  return rows
