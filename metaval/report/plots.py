"""Every experiment's figure in one style: pure drawing from measured numbers.

Each function takes the numbers an experiment saved (already read from its results
folder by :mod:`metaval.report.figures`) and writes one PNG through
:func:`metaval.util.io.save_figure` (atomic), under :data:`STYLE` and the Agg backend.
Nothing here computes a result; ROC curves and AUCs are computed from the saved
per-sample scores.
"""

from __future__ import annotations

import contextlib
import textwrap
from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from metaval.util import io as io_lib

# The colour cycle of every figure (matplotlib's tab10 order, red second for contrast).
COLOURS = (
  "#1f77b4",
  "#d62728",
  "#2ca02c",
  "#ff7f0e",
  "#9467bd",
  "#8c564b",
  "#e377c2",
  "#7f7f7f",
  "#bcbd22",
  "#17becf",
)

# One style for every figure metaval draws (``metaval.protocol`` re-exports it).
STYLE = {
  "figure.figsize": (6.4, 4.0),
  "figure.dpi": 120,
  "font.family": "DejaVu Sans",
  "font.size": 9,
  "axes.grid": True,
  "grid.alpha": 0.3,
  "axes.spines.top": False,
  "axes.spines.right": False,
  "axes.titlesize": 11,
  "axes.labelsize": 10,
  "xtick.labelsize": 8,
  "ytick.labelsize": 8,
  "legend.fontsize": 8,
  "legend.frameon": False,
  "lines.linewidth": 1.6,
  "lines.markersize": 4,
  "image.cmap": "RdBu_r",
  # rcParams parse this string into a cycler.
  "axes.prop_cycle": f"cycler('color', {list(COLOURS)!r})",
}


@contextlib.contextmanager
def figure(path: str, nrows: int = 1, ncols: int = 1, **kwargs) -> Iterator[tuple]:
  """A figure in :data:`STYLE`, laid out tight and saved atomically to ``path`` on exit.

  Args:
    path: the ``.png`` to write.
    nrows: subplot rows.
    ncols: subplot columns.
    **kwargs: passed to ``plt.subplots`` (``figsize``, ...).

  Yields:
    ``(fig, axes)`` with ``axes`` a 2-D array.
  """
  import matplotlib

  matplotlib.use("Agg", force=False)
  import matplotlib.pyplot as plt

  with plt.rc_context(STYLE):
    fig, axes = plt.subplots(nrows, ncols, squeeze=False, **kwargs)
    try:
      yield fig, axes
      fig.tight_layout()
      io_lib.save_figure(fig, path)
    finally:
      plt.close(fig)


def _grouped_bars(ax, groups: Sequence[str], series: Mapping[str, Sequence[float]], **kwargs):
  """Bars of several named series side by side for each group (NaN bars left out)."""
  width = 0.8 / max(1, len(series))
  x = np.arange(len(groups))
  for i, (name, vals) in enumerate(series.items()):
    ax.bar(x + (i - (len(series) - 1) / 2) * width, vals, width, label=name, **kwargs)
  ax.set_xticks(x, groups, rotation=20, ha="right")


def throughput(labels_per_s: Mapping[str, float], per_point: Sequence[dict], path: str) -> str:
  """E1: label throughput per implementation and per-point valuation wall time per peer.

  Args:
    labels_per_s: implementation -> labels/s of the label benchmark.
    per_point: rows with ``method``, ``library`` and ``wall_s`` (NaN or absent for a
      method a library does not run).
    path: the ``.png`` to write.

  Returns:
    ``path``.
  """
  methods = list(dict.fromkeys(r["method"] for r in per_point))
  libs = list(dict.fromkeys(r["library"] for r in per_point))
  wall = {(r["method"], r["library"]): r.get("wall_s") for r in per_point}
  series = {lib: [float(wall.get((m, lib)) or float("nan")) for m in methods] for lib in libs}
  with figure(path, 1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [1, 2]}) as (_, axes):
    ax = axes[0, 0]
    names = list(labels_per_s)
    ax.barh(names, [labels_per_s[n] for n in names], color=list(COLOURS)[: len(names)])
    ax.invert_yaxis()
    ax.set_xlabel("labels / s (higher is better)")
    ax.set_title("label throughput (same pairs)")
    ax = axes[0, 1]
    if methods:
      _grouped_bars(ax, methods, series)
      ax.set_yscale("log")
      ax.legend()
    ax.set_ylabel("wall seconds (log, lower is better)")
    ax.set_title("per-point valuation: wall time per method and library")
  return path


def predicted_vs_label(splits: Mapping[str, dict], path: str) -> str:
  """E2: predicted against retraining value, one panel per held-out split.

  Args:
    splits: split -> ``{"label": [n], "predicted": [n], "spearman": float,
      "ceiling": float}`` (the label's split-half Spearman; NaN when unknown).
    path: the ``.png`` to write.

  Returns:
    ``path``.
  """
  n = max(1, len(splits))
  with figure(path, 1, n, figsize=(3.4 * n, 3.6)) as (_, axes):
    for ax, (name, s) in zip(axes[0], splits.items()):
      y, p = np.asarray(s["label"], float), np.asarray(s["predicted"], float)
      ax.scatter(y, p, s=6, alpha=0.5, color=list(COLOURS)[0], lw=0)
      lo, hi = np.nanmin([y.min(), p.min()]), np.nanmax([y.max(), p.max()])
      ax.plot([lo, hi], [lo, hi], color="k", lw=0.8, ls="--")
      ax.set_xlabel("retraining value (label)")
      head = textwrap.fill(f"{name}:", 40)  # long split names wrap inside their panel
      ax.set_title(
        f"{head}\nSpearman {s['spearman']:.2f}, noise ceiling {s['ceiling']:.2f}", fontsize=9
      )
    axes[0, 0].set_ylabel("predicted value")
  return path


def split_quality(
  scores: Mapping[str, Mapping[str, float]], ceiling: Mapping[str, float], path: str
) -> str:
  """E2 without per-pair predictions: Spearman per split and estimator, with the ceiling.

  Args:
    scores: split -> estimator -> Spearman against the retraining label.
    ceiling: split -> the label's split-half Spearman (its repeatability).
    path: the ``.png`` to write.

  Returns:
    ``path``.
  """
  splits = list(scores)
  ests = list(dict.fromkeys(e for s in scores.values() for e in s))
  many = len(ests) > 6  # then the legend goes below the axes, and the figure widens
  size = (max(7, 0.12 * len(ests) * len(splits) + 2), 6) if many else (7, 4)
  with figure(path, figsize=size) as (_, axes):
    ax = axes[0, 0]
    names = [textwrap.fill(s, 30) for s in splits]  # long split names on a few lines
    _grouped_bars(ax, names, {e: [scores[s].get(e, np.nan) for s in splits] for e in ests})
    x = np.arange(len(splits))
    ax.hlines(
      [ceiling[s] for s in splits],
      x - 0.45,
      x + 0.45,
      color="k",
      lw=1.5,
      label="noise ceiling (split-half Spearman)",
    )
    ax.axhline(0, color="k", lw=0.6)
    ax.set_ylabel("Spearman vs retraining label")
    ax.set_title("value model vs baselines per held-out split")
    if many:
      ax.set_ylim(top=1.05)
      ax.legend(ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.45), fontsize=7)
    else:
      ax.set_ylim(top=1.3)  # room for the legend above the bars
      ax.legend(ncol=3, loc="upper center")
  return path


def quality_vs_cost(rows: Sequence[dict], path: str, *, cost: str = "x_retrain") -> str:
  """E3: each estimator's Spearman against its cost per pair (log x).

  Args:
    rows: one per estimator: ``estimator``, ``spearman`` and the ``cost`` column.
    path: the ``.png`` to write.
    cost: the column holding the cost (default: multiples of one retraining).

  Returns:
    ``path``.
  """
  with figure(path, figsize=(7.5, 4.5)) as (_, axes):
    ax = axes[0, 0]
    cyc = list(COLOURS)
    for i, r in enumerate(rows):
      x, y = r.get(cost), r.get("spearman")
      if x is None or y is None or not (np.isfinite(x) and np.isfinite(y)) or x <= 0:
        continue
      ax.scatter([x], [y], color=cyc[i % len(cyc)], s=30, zorder=3)
      ax.annotate(r["estimator"], (x, y), xytext=(4, 3), textcoords="offset points", fontsize=7)
    ax.set_xscale("log")
    ax.axvline(1.0, color="k", lw=0.8, ls="--")
    ax.set_xlabel("cost per pair (x one retraining, log)")
    ax.set_ylabel("Spearman vs retraining label")
    ax.set_title("agreement with retraining against cost")
  return path


def ladder(summary: Mapping[str, dict], path: str) -> str:
  """E4: per family, the Spearman matrix between sizes and the label-magnitude scaling.

  Args:
    summary: family -> ``names``, ``params``, ``spearman`` ([sizes, sizes]),
      ``metric``, ``mean_abs`` (mean |label| per size) and optionally
      ``extrapolation.power_law`` (``a``, ``b``, ``pred_mean_abs``).
    path: the ``.png`` to write.

  Returns:
    ``path``.
  """
  import matplotlib.ticker

  fams = list(summary)
  with figure(path, len(fams), 2, figsize=(10, 4 * len(fams))) as (fig, axes):
    for r, fam in enumerate(fams):
      res = summary[fam]
      ax = axes[r, 0]
      sp = np.asarray(res["spearman"], float)
      im = ax.imshow(sp, vmin=-1, vmax=1)
      ticks = [f"{n}\n{p:,}" for n, p in zip(res["names"], res["params"])]
      ax.set_xticks(range(len(ticks)), ticks, fontsize=7)
      ax.set_yticks(range(len(ticks)), [t.replace("\n", " ") for t in ticks], fontsize=7)
      ax.grid(False)
      for i in range(len(sp)):
        for j in range(len(sp)):
          ax.text(j, i, f"{sp[i, j]:.2f}", ha="center", va="center", fontsize=7)
      ax.set_title(f"{fam}: Spearman of labels between sizes ({res['metric']})")
      fig.colorbar(im, ax=ax, fraction=0.046)
      ax = axes[r, 1]
      p = np.asarray(res["params"], float)
      ax.loglog(p, res["mean_abs"], "o-", label="measured mean |improvement|")
      pl = res.get("extrapolation", {}).get("power_law")
      if pl:
        xs = np.geomspace(p[0], p[-1], 50)
        ax.loglog(
          xs, np.exp(pl["a"]) * xs ** pl["b"], "--", label=f"power law fit (b={pl['b']:.2f})"
        )
        ax.loglog([p[-1]], [pl["pred_mean_abs"]], "x", ms=9, label="predicted held-out size")
      # Minor-tick labels of a short log axis overlap; the major ones suffice.
      ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
      ax.set_xlabel("trained parameters")
      ax.set_ylabel("mean |improvement|")
      ax.set_title(f"{fam}: scaling of the label magnitude")
      ax.legend()
  return path


def attack_heatmap(
  attacks: Sequence[str],
  estimators: Sequence[str],
  values: np.ndarray,
  genuine: str,
  path: str,
) -> str:
  """E5: each attack's value relative to the genuine set, per estimator.

  Args:
    attacks: row names (supplements), ``genuine`` among them.
    estimators: column names.
    values: ``[attacks, estimators]`` mean value each estimator gives each supplement.
    genuine: the row every other row is divided by (so scales of estimators compare).
    path: the ``.png`` to write.

  Returns:
    ``path``.
  """
  values = np.asarray(values, float)
  rel = values / np.abs(values[list(attacks).index(genuine)])[None]
  with figure(path, figsize=(1.1 * len(estimators) + 3, 0.4 * len(attacks) + 1.8)) as (
    fig,
    axes,
  ):
    ax = axes[0, 0]
    im = ax.imshow(np.clip(rel, -2, 2), vmin=-2, vmax=2, aspect="auto")
    ax.set_xticks(range(len(estimators)), estimators, rotation=30, ha="right")
    ax.set_yticks(range(len(attacks)), attacks)
    ax.grid(False)
    for i in range(len(attacks)):
      for j in range(len(estimators)):
        # White on the darkest cells, where black text would vanish.
        ink = "w" if abs(rel[i, j]) > 1.4 else "k"
        ax.text(j, i, f"{rel[i, j]:+.2f}", ha="center", va="center", fontsize=7, color=ink)
    ax.set_title("value / |value of the genuine set| (attacks should stay below +1)")
    fig.colorbar(im, ax=ax, fraction=0.046, label="clipped to [-2, 2]")
  return path


def roc_curves(panels: Mapping[str, Mapping[str, tuple]], path: str) -> str:
  """E6: ROC curves of member vs non-member scores, one panel per group of curves.

  Args:
    panels: panel title -> curve name -> ``(scores, member)``, flat arrays of equal
      length (``member`` True for samples the model trained on).
    path: the ``.png`` to write.

  Returns:
    ``path``.
  """
  from sklearn import metrics

  n = max(1, len(panels))
  with figure(path, 1, n, figsize=(4.6 * n, 4.4)) as (_, axes):
    for ax, (title, curves) in zip(axes[0], panels.items()):
      cyc = list(COLOURS)
      for i, (name, (scores, member)) in enumerate(curves.items()):
        member = np.asarray(member, bool).reshape(-1)
        scores = np.asarray(scores, float).reshape(-1)
        fpr, tpr, _ = metrics.roc_curve(member, scores)
        auc = metrics.roc_auc_score(member, scores)
        ls = "--" if name.endswith("calibrated") else "-"
        ax.plot(fpr, tpr, ls, color=cyc[(i // 2) % len(cyc)], label=f"{name} (AUC {auc:.3f})")
      ax.plot([0, 1], [0, 1], color="k", lw=0.6)
      ax.set_xlabel("false positive rate")
      ax.set_title(title)
      ax.legend(loc="lower right")
    axes[0, 0].set_ylabel("true positive rate")
  return path


def attribution(
  policies: Mapping[str, Sequence[dict]],
  payments: Mapping[str, float],
  currency: str,
  path: str,
) -> str:
  """E7: contributor values per method and copy policy, and the royalty ledger.

  Args:
    policies: policy -> method rows with ``method``, ``names``, ``values`` and
      optionally ``seed_se`` (error bars).
    payments: contributor -> payment in the ledger.
    currency: the ledger's currency (axis label).
    path: the ``.png`` to write.

  Returns:
    ``path``.
  """
  n = len(policies)
  with figure(path, 1, n + 1, figsize=(4.6 * (n + 1), 4)) as (_, axes):
    for ax, (policy, methods) in zip(axes[0], policies.items()):
      names = list(methods[0]["names"]) if methods else []
      series = {m["method"]: m["values"] for m in methods}
      _grouped_bars(ax, names, series)
      width = 0.8 / max(1, len(methods))
      for i, m in enumerate(methods):
        if m.get("seed_se"):
          x = np.arange(len(names)) + (i - (len(methods) - 1) / 2) * width
          ax.errorbar(x, m["values"], m["seed_se"], fmt="none", color="k", lw=0.8)
      ax.axhline(0, color="k", lw=0.6)
      ax.set_ylabel("value (share of the gain)")
      ax.set_title(f"contributor values ({policy})")
      ax.legend()
    ax = axes[0, n]
    who = list(payments)
    ax.bar(who, [payments[w] for w in who], color=list(COLOURS)[: len(who)])
    ax.set_xticks(range(len(who)), who, rotation=20, ha="right")
    ax.set_ylabel(f"payment ({currency})")
    ax.set_title("royalty ledger")
  return path
