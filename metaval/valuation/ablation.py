"""Small-model ablations across a size ladder: do small learners value data alike?

The label pipeline labels the *same* (B, S) pairs with every size of a learner
family (``metaval.learners.ladder``; one ``generate`` call with all sizes as its
learners, so pairs, bases and paired seeds are shared: ``metaval.pairs.label``).
A single cheaper learner as an estimator of one target's label is
``metaval.estimators.Ablation``. Per family this module
reports:

* the Spearman matrix of the labels between every pair of sizes;
* decision accuracy: for two supplements of the same base, how often a smaller
  size picks the same better one as the largest size (ties of the largest are
  skipped);
* a scaling extrapolation fitted on all sizes but the largest and checked on the
  held-out largest: (a) per pair, the label as a linear function of
  log(params), (b) a power law of the mean |improvement| against params.

Outputs under ``workdir``: ``ablation.{json,md}`` (one table for all families)
and ``ablation.png`` (Spearman heatmaps and the scaling fits).
"""

from __future__ import annotations

import collections
import json
import os
import time

import ml_collections
import numpy as np
from scipy import stats

from metaval.configlib import load_config_file
from metaval.errors import MetavalError
from metaval.labeling.schema import LabelSet
from metaval.learners.models import LearnerSpec, ladder
from metaval.protocol import write_table
from metaval.report import plots
from metaval.util import io as io_lib


class AblationError(MetavalError):
  """Bad ablation settings or label sets that cannot be compared."""


def _spearman(a, b) -> float:
  a, b = np.asarray(a, float), np.asarray(b, float)
  if len(a) < 3 or np.std(a) == 0 or np.std(b) == 0:
    return float("nan")
  return float(stats.spearmanr(a, b).statistic)


def ladder_labels(labels: LabelSet, metric: str) -> tuple[list[str], np.ndarray, np.ndarray, list]:
  """Aligns a multi-learner label set into a ``[P, L]`` matrix.

  Args:
    labels: a label set whose rows are (pair, learner), every pair labelled by
      every learner (what ``generate`` writes for several learners).
    metric: the metric whose mean improvement is the label.

  Returns:
    ``(learner names ordered by params, params [L], labels [P, L], bases)`` where
    ``bases[p]`` identifies pair p's base set (for same-base comparisons).
  """
  j = labels.metric_index(metric)
  imp = labels.improvement[:, j]
  names, params = [], {}
  for i in range(len(labels)):
    name = json.loads(labels.learner[i]).get("name") or labels.learner[i]
    if name not in params:
      names.append(name)
      params[name] = int(labels.learner_params[i])
  names.sort(key=lambda n: params[n])
  col = {n: c for c, n in enumerate(names)}
  pair_ids = sorted(set(labels.pair_id.tolist()))
  row = {p: r for r, p in enumerate(pair_ids)}
  mat = np.full((len(pair_ids), len(names)), np.nan)
  bases = [None] * len(pair_ids)
  for i in range(len(labels)):
    name = json.loads(labels.learner[i]).get("name") or labels.learner[i]
    r = row[int(labels.pair_id[i])]
    mat[r, col[name]] = imp[i]
    bases[r] = (int(labels.shard[i]), labels.base_indices[i].tobytes())
  if np.isnan(mat).any():
    raise AblationError("not every pair is labelled by every learner; cannot align the ladder")
  return names, np.array([params[n] for n in names], np.int64), mat, bases


def spearman_matrix(mat: np.ndarray) -> np.ndarray:
  """``[L, L]`` Spearman correlation between the label columns of ``mat [P, L]``."""
  n = mat.shape[1]
  out = np.eye(n)
  for a in range(n):
    for b in range(a + 1, n):
      out[a, b] = out[b, a] = _spearman(mat[:, a], mat[:, b])
  return out


def decision_accuracy(mat: np.ndarray, bases, *, tie: float = 1e-6) -> np.ndarray:
  """Share of same-base supplement pairs on which each size agrees with the largest.

  Args:
    mat: ``[P, L]`` labels, largest size last.
    bases: ``[P]`` hashable base identity; only supplements of one base are compared.
    tie: pairs whose largest-size labels differ by at most this are skipped.

  Returns:
    ``[L]`` decision accuracy of each size against the last (1.0 for the last).
  """
  groups = collections.defaultdict(list)
  for p, b in enumerate(bases):
    groups[b].append(p)
  i_idx, j_idx = [], []
  for members in groups.values():
    for a in range(len(members)):
      for b in range(a + 1, len(members)):
        i_idx.append(members[a])
        j_idx.append(members[b])
  i_idx, j_idx = np.array(i_idx, int), np.array(j_idx, int)
  ref = mat[i_idx, -1] - mat[j_idx, -1]
  keep = np.abs(ref) > tie
  if not keep.any():
    return np.full(mat.shape[1], np.nan)
  diff = mat[i_idx[keep]] - mat[j_idx[keep]]  # [pairs, L]
  return np.mean(np.sign(diff) == np.sign(ref[keep])[:, None], axis=0)


def extrapolate(mat: np.ndarray, params: np.ndarray) -> dict:
  """Fits the scaling trend on all sizes but the largest and predicts the largest.

  Returns:
    ``per_pair_pred [P]`` (linear in log params, per pair), ``power_law``
    (``a``, ``b`` of mean|imp| = exp(a) * params**b, its prediction and the
    measured value for the largest size) and agreement figures.
  """
  if mat.shape[1] < 3:
    raise AblationError("extrapolation needs at least 3 sizes (2 to fit, 1 held out)")
  x = np.log(params.astype(float))
  xf, x_out = x[:-1], x[-1]
  # Least squares per pair: label = c0 + c1 * log(params); one lstsq for all pairs.
  design = np.stack([np.ones_like(xf), xf], 1)  # [L-1, 2]
  coef, *_ = np.linalg.lstsq(design, mat[:, :-1].T, rcond=None)  # [2, P]
  pred = coef[0] + coef[1] * x_out
  actual = mat[:, -1]
  mean_abs = np.abs(mat).mean(0)
  b, a = np.polyfit(xf, np.log(mean_abs[:-1]), 1)
  pl_pred = float(np.exp(a + b * x_out))
  return {
    "per_pair_pred": pred,
    "per_pair_spearman": _spearman(pred, actual),
    "per_pair_mae": float(np.mean(np.abs(pred - actual))),
    "next_smaller_spearman": _spearman(mat[:, -2], actual),
    "next_smaller_mae": float(np.mean(np.abs(mat[:, -2] - actual))),
    "power_law": {
      "a": float(a),
      "b": float(b),
      "pred_mean_abs": pl_pred,
      "actual_mean_abs": float(mean_abs[-1]),
      "rel_error": float(pl_pred / mean_abs[-1] - 1.0),
    },
    "mean_abs": mean_abs,
  }


def analyse(labels: LabelSet, metric: str) -> dict:
  """All ladder figures for one family's multi-size label set."""
  names, params, mat, bases = ladder_labels(labels, metric)
  if len(names) < 2:
    raise AblationError(f"a ladder needs >= 2 sizes; the labels hold {names}")
  out = {
    "names": names,
    "params": params,
    "labels": mat,
    "spearman": spearman_matrix(mat),
    "decision_acc": decision_accuracy(mat, bases),
    "metric": metric,
  }
  if len(names) >= 3:
    out["extrapolation"] = extrapolate(mat, params)
  return out


def labels_config(fam, family_name: str) -> ml_collections.ConfigDict:
  """The ``labels`` config that labels one family's pairs with every size."""
  spec = LearnerSpec.from_config(fam.learner)
  specs = ladder(spec, tuple(fam.sizes))
  cfg = load_config_file(fam.labels_config)  # a packaged name (labels:quick) or a file
  cfg.unlock()
  cfg.task = ml_collections.ConfigDict(fam.task.to_dict())
  cfg.learners = ml_collections.ConfigDict(
    {f"{family_name}{s.width if s.family != 'linear' else s.features}": s.to_dict() for s in specs}
  )
  for key, value in fam.pipeline.items():
    if key not in cfg:
      raise AblationError(f"labels config has no field {key!r} (from {family_name}.pipeline)")
    cfg[key] = tuple(value) if isinstance(value, list) else value
  cfg.progress = False
  cfg.lock()
  return cfg


def _rows(fam: str, res: dict) -> list[dict]:
  rows = []
  last = len(res["names"]) - 1
  for i, (name, p) in enumerate(zip(res["names"], res["params"])):
    rows.append(
      {
        "family": fam,
        "size": name,
        "params": int(p),
        "mean abs improvement": float(np.abs(res["labels"][:, i]).mean()),
        "ρ vs largest": float(res["spearman"][i, last]),
        "ρ vs next size": float(res["spearman"][i, i + 1]) if i < last else float("nan"),
        "decision acc vs largest": float(res["decision_acc"][i]),
      }
    )
  if "extrapolation" in res:
    ex = res["extrapolation"]
    rows.append(
      {
        "family": fam,
        "size": f"{res['names'][-1]} extrapolated",
        "params": int(res["params"][-1]),
        "mean abs improvement": ex["power_law"]["pred_mean_abs"],
        "ρ vs largest": ex["per_pair_spearman"],
      }
    )
  return rows


def run(config, workdir: str | None = None) -> dict:
  """``metaval ablate``: label the same pairs with every ladder size, compare sizes.

  Labels are generated (or resumed) with the label pipeline under
  ``workdir/labels_<family>``; the table and plot go to ``workdir/ablation.*``.
  """
  workdir = workdir or os.path.join("runs", "ablate")
  os.makedirs(workdir, exist_ok=True)
  from metaval.labeling import generate  # the pipeline is imported only when used

  results, timings, rows = {}, {}, []
  for fam_name in config.families_to_run:
    if fam_name not in config.families:
      raise AblationError(
        f"unknown family {fam_name!r}; configured: {', '.join(config.families.keys())}"
      )
    fam = config.families[fam_name]
    lcfg = labels_config(fam, fam_name)
    print(f"{fam_name}: labelling the same pairs with sizes {tuple(fam.sizes)} on {fam.task.name}")
    t0 = time.perf_counter()
    labels = generate(lcfg, os.path.join(workdir, f"labels_{fam_name}"))
    timings[fam_name] = time.perf_counter() - t0
    metric = fam.metric or labels.metric_names[1 if len(labels.metric_names) > 1 else 0]
    res = analyse(labels, metric)
    results[fam_name] = res
    rows += _rows(fam_name, res)
  md = write_table(
    rows,
    os.path.join(workdir, "ablation"),
    title="Size-ladder ablation: the same pairs labelled by every size",
    meta={
      f: f"{len(results[f]['labels'])} pairs, metric {results[f]['metric']}, {timings[f]:.0f}s"
      for f in results
    },
  )
  print(md)
  for f, res in results.items():
    if "extrapolation" in res:
      ex = res["extrapolation"]
      pl = ex["power_law"]
      print(
        f"{f}: extrapolating to {res['names'][-1]} per pair: Spearman {ex['per_pair_spearman']:.3f}, "
        f"MAE {ex['per_pair_mae']:.4f} (next smaller size as is: {ex['next_smaller_spearman']:.3f}, "
        f"{ex['next_smaller_mae']:.4f}); power law b={pl['b']:.3f} predicts mean |imp| "
        f"{pl['pred_mean_abs']:.4f} vs measured {pl['actual_mean_abs']:.4f} "
        f"({pl['rel_error']:+.0%})"
      )
  summary = {
    f: {
      "names": r["names"],
      "params": r["params"].tolist(),
      "metric": r["metric"],
      "num_pairs": int(len(r["labels"])),
      "spearman": r["spearman"].tolist(),
      "decision_acc": r["decision_acc"].tolist(),
      "mean_abs": np.abs(r["labels"]).mean(0).tolist(),
      "extrapolation": {
        k: v for k, v in r.get("extrapolation", {}).items() if k not in ("per_pair_pred",)
      },
      "seconds": timings[f],
    }
    for f, r in results.items()
  }
  for s in summary.values():
    if "mean_abs" in s["extrapolation"]:
      s["extrapolation"]["mean_abs"] = np.asarray(s["extrapolation"]["mean_abs"]).tolist()
  io_lib.write_json(os.path.join(workdir, "ablation_summary.json"), summary)
  plots.ladder(summary, os.path.join(workdir, "ablation.png"))
  print(f"wrote {os.path.join(workdir, 'ablation.md')}, ablation.png, ablation_summary.json")
  return summary
