"""Experiment figures from saved results: read ``experiments/results/<name>/``, draw.

One function per experiment, ``<name>(workdir) -> list of PNG paths``, registered in
:data:`FIGURES`; each reads only what the experiment saved in its results folder
(JSON, npz) and hands the numbers to :mod:`metaval.report.plots`. The experiment
runner calls :func:`draw` after every run, and ``metaval experiment <name>
--figures-only`` calls it on a published folder without retraining anything.
"""

from __future__ import annotations

import json
import os

import numpy as np

from metaval.errors import MetavalError
from metaval.report import plots


def _json(workdir: str, name: str) -> dict:
  path = os.path.join(workdir, name)
  if not os.path.isfile(path):
    raise MetavalError(f"{path} is missing: run the experiment first (figures need its results)")
  with open(path) as f:
    return json.load(f)


def _npz(workdir: str, name: str) -> dict | None:
  path = os.path.join(workdir, name)
  if not os.path.isfile(path):
    return None
  with np.load(path) as z:
    return {k: z[k] for k in z.files}


def e1_throughput(workdir: str) -> list[str]:
  """Label throughput per implementation and per-point wall time per library."""
  labels = _json(workdir, "labels.json")
  base = _json(workdir, "baselines.json")
  # A failed or timed-out run has no comparable wall time.
  rows = [
    r if not str(r.get("note", "")).startswith("failed") else {**r, "wall_s": float("nan")}
    for r in base["rows"]
  ]
  return [plots.throughput(labels["labels_per_s"], rows, os.path.join(workdir, "throughput.png"))]


def e2_predictor(workdir: str) -> list[str]:
  """Predicted vs retraining value per split (``predictions.npz``), else Spearman per split.

  A zero-shot E2 run writes its scores as rows of ``table.json`` (split, estimator,
  Spearman, ceiling); a trained-predictor run writes ``eval.json``.
  """
  if not os.path.exists(os.path.join(workdir, "eval.json")):
    rows = _json(workdir, "table.json")["rows"]
    scores, ceiling = {}, {}
    for r in rows:
      scores.setdefault(r["split"], {})[r["estimator"]] = float(r["spearman"])
      ceiling[r["split"]] = float(r["ceiling (split-half Spearman)"])
    out = [plots.split_quality(scores, ceiling, os.path.join(workdir, "quality_per_split.png"))]
    preds = _npz(workdir, "predictions.npz")  # zero-shot runs: the chosen model per real task
    if preds is not None:
      names = sorted({k.rsplit("/", 1)[0] for k in preds})
      splits = {
        n: {
          "label": preds[f"{n}/label"],
          "predicted": preds[f"{n}/predicted"],
          "spearman": float(preds[f"{n}/spearman"]),
          "ceiling": float(preds[f"{n}/ceiling"]),
        }
        for n in names
      }
      out.append(plots.predicted_vs_label(splits, os.path.join(workdir, "predicted_vs_label.png")))
    return out
  ev = _json(workdir, "eval.json")
  target = ev["targets"][0]
  ceiling = {
    s: float(r["scores"][target]["ceiling"]["split_spearman"]) for s, r in ev["splits"].items()
  }
  preds = _npz(workdir, "predictions.npz")
  if preds is not None:
    t = 0  # the first target, the one the figure's Spearman and ceiling are of
    splits = {
      s: {
        "label": preds[f"{s}/label"][:, t],
        "predicted": preds[f"{s}/predictor"][:, t],
        "spearman": float(r["scores"][target]["predictor"]["spearman"]),
        "ceiling": ceiling[s],
      }
      for s, r in ev["splits"].items()
      if f"{s}/label" in preds
    }
    return [plots.predicted_vs_label(splits, os.path.join(workdir, "predicted_vs_label.png"))]
  scores = {
    s: {e: float(v["spearman"]) for e, v in r["scores"][target].items() if e != "ceiling"}
    for s, r in ev["splits"].items()
  }
  return [plots.split_quality(scores, ceiling, os.path.join(workdir, "quality_per_split.png"))]


def e3_strategies(workdir: str) -> list[str]:
  """Each estimator's Spearman against its cost in retrainings."""
  rows = [r for r in _json(workdir, "table.json")["rows"] if "x_retrain" in r]
  return [plots.quality_vs_cost(rows, os.path.join(workdir, "quality_vs_cost.png"))]


def e4_ladder(workdir: str) -> list[str]:
  """The size ladder: Spearman between sizes and the scaling of the label magnitude."""
  summary = _json(workdir, "ablation_summary.json")
  for fam, s in summary.items():
    # Summaries written before ``mean_abs`` was saved per family hold it in the
    # extrapolation (present whenever a family has >= 3 sizes).
    if "mean_abs" not in s:
      s["mean_abs"] = s.get("extrapolation", {}).get("mean_abs")
    if s["mean_abs"] is None:
      raise MetavalError(f"{workdir}/ablation_summary.json: family {fam!r} has no mean_abs")
  return [plots.ladder(summary, os.path.join(workdir, "ablation.png"))]


def e5_goodhart(workdir: str) -> list[str]:
  """Attacks x estimators: each attack's mean value relative to the genuine set."""
  full = _json(workdir, "goodhart_full.json")
  ests = list(full["values"])
  attacks = [r["supplement"] for r in full["rows"]]
  values = np.array([[r[e] for e in ests] for r in full["rows"]], float)
  return [
    plots.attack_heatmap(attacks, ests, values, "genuine", os.path.join(workdir, "attacks.png"))
  ]


def e6_membership(workdir: str) -> list[str]:
  """ROC curves of every membership score, per contributor and per prompt."""
  from metaval.audit import membership  # jax; imported only when E6 is drawn

  saved = _npz(workdir, "scores.npz")
  if saved is None:
    raise MetavalError(
      f"{workdir}/scores.npz is missing: rerun `metaval experiment e6_membership` to save "
      "the per-window scores the ROC curves need"
    )
  plan, owner = saved.pop("plan").astype(bool), saved.pop("owner")
  panels: dict[str, dict] = {}
  for name, level, v, member, _ in membership.samples(saved, plan, owner):
    panels.setdefault(f"per {level}", {})[name] = (v, member)
  return [plots.roc_curves(panels, os.path.join(workdir, "roc.png"))]


def e7_attribution(workdir: str) -> list[str]:
  """Contributor values per method and copy policy, and the royalty ledger's payments."""
  att = _json(workdir, "attribution.json")
  # Results name players and seed errors "players"/"seed_stderr" (the games engine);
  # results saved before it, "names"/"seed_se".
  policies = {
    pol: [
      {
        "method": m["method"],
        "names": m.get("players", m.get("names")),
        "values": m["values"],
        "seed_se": m.get("seed_stderr", m.get("seed_se")),
      }
      for m in methods
    ]
    for pol, methods in att["results"].items()
  }
  ledger = _json(workdir, "royalties.json")
  paid = {e["contributor"]: float(e["payment"]) for e in ledger["entries"]}
  # The ledger lists contributors alphabetically; draw them in the values' order.
  order = [n for m in next(iter(policies.values()), []) for n in m["names"]]
  payments = {n: paid[n] for n in dict.fromkeys([*order, *paid]) if n in paid}
  currency = ledger["inputs"]["currency"]
  return [plots.attribution(policies, payments, currency, os.path.join(workdir, "attribution.png"))]


FIGURES = {
  f.__name__: f
  for f in (
    e1_throughput,
    e2_predictor,
    e3_strategies,
    e4_ladder,
    e5_goodhart,
    e6_membership,
    e7_attribution,
  )
}


def draw(name: str, workdir: str) -> list[str]:
  """Draws experiment ``name``'s figures from its saved results in ``workdir``.

  Args:
    name: the experiment's module name (``e3_strategies``).
    workdir: its results folder.

  Returns:
    The PNG paths written.
  """
  if name not in FIGURES:
    raise MetavalError(f"experiment {name!r} has no figure function in metaval.report.figures")
  return FIGURES[name](workdir)
