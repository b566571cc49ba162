"""One evaluation protocol for every estimator of data value.

Whatever produced an estimate (the learned predictor, small-model ablations,
untraining, per-point Shapley sums), it is scored against the retraining labels
on the same pairs by ``agreement``. Extensions (noisy-label detection, removal
curves, the shared table format and plot style) live beside it here.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from metaval.errors import MetavalError
from metaval.report import plots
from metaval.util import io as io_lib


def agreement(estimate, label, *, top_frac: float = 0.1) -> dict[str, float]:
  """Agreement of value estimates with retraining labels on the same pairs.

  Args:
    estimate: ``[P]`` estimated value per pair (any scale for the rank metrics).
    label: ``[P]`` retraining label (mean improvement) per pair.
    top_frac: fraction of pairs counted as "top" for top-k precision.

  Returns:
    ``spearman``, ``pearson``, ``mae`` (same-scale estimators only are meaningful),
    ``sign_acc`` (share of pairs whose sign matches; zero labels count as
    non-positive), ``topk_precision`` (share of the estimate's top ``top_frac``
    that is in the label's top ``top_frac``) and ``n``.
  """
  e = np.asarray(estimate, np.float64).reshape(-1)
  y = np.asarray(label, np.float64).reshape(-1)
  if e.shape != y.shape:
    raise ValueError(f"estimate and label differ in shape: {e.shape} vs {y.shape}")
  ok = np.isfinite(e) & np.isfinite(y)
  e, y = e[ok], y[ok]
  n = len(y)
  out = {"n": float(n)}
  if n < 3 or np.std(e) == 0 or np.std(y) == 0:
    out.update(spearman=float("nan"), pearson=float("nan"))
  else:
    out["spearman"] = float(stats.spearmanr(e, y).statistic)
    out["pearson"] = float(stats.pearsonr(e, y).statistic)
  out["mae"] = float(np.mean(np.abs(e - y))) if n else float("nan")
  out["sign_acc"] = float(np.mean((e > 0) == (y > 0))) if n else float("nan")
  k = max(1, int(round(top_frac * n)))
  if n >= 2:
    top_e = set(np.argsort(-e, kind="stable")[:k])
    top_y = set(np.argsort(-y, kind="stable")[:k])
    out["topk_precision"] = len(top_e & top_y) / k
  else:
    out["topk_precision"] = float("nan")
  return out


class ProtocolError(MetavalError):
  """Inputs to an evaluation-protocol function are not valid."""


def _as_values(values, name="values") -> np.ndarray:
  v = np.asarray(values, np.float64).reshape(-1)
  if v.size == 0:
    raise ProtocolError(f"{name} is empty")
  if not np.all(np.isfinite(v)):
    raise ProtocolError(f"{name} contains NaN or inf ({int((~np.isfinite(v)).sum())} entries)")
  return v


def agreement_with_labels(estimate, labels, metric: str, *, top_frac: float = 0.1) -> dict:
  """``agreement`` against a ``LabelSet``'s mean improvement on one metric.

  Also reports the labels' own repeatability as a ceiling (``ceiling_spearman``):
  the Spearman correlation between the mean improvements of two disjoint halves of
  the seeds (NaN with fewer than two seeds). No estimator can be expected to agree
  with noisy labels better than the labels agree with themselves.

  Args:
    estimate: ``[P]`` estimated value per pair (NaN where an estimator abstains).
    labels: a ``metaval.labeling.schema.LabelSet`` with the same P pairs.
    metric: a name from ``labels.metric_names``.
    top_frac: as in ``agreement``.
  """
  t = labels.metric_index(metric)
  out = agreement(estimate, labels.improvement[:, t], top_frac=top_frac)
  per_seed = labels.improvement_per_seed[:, :, t]  # [P, K]
  k = per_seed.shape[1]
  if k >= 2 and per_seed.shape[0] >= 3:
    a, b = per_seed[:, : k // 2].mean(1), per_seed[:, k // 2 :].mean(1)
    ok = np.isfinite(a) & np.isfinite(b)
    out["ceiling_spearman"] = float(stats.spearmanr(a[ok], b[ok]).statistic)
  else:
    out["ceiling_spearman"] = float("nan")
  return out


def _two_means_split(v: np.ndarray) -> float:
  """Threshold of the optimal 1-D two-cluster (k-means) split of ``v``."""
  s = np.sort(v)
  n = len(s)
  if n < 2 or s[0] == s[-1]:
    return float(s[-1])
  c1, c2 = np.cumsum(s), np.cumsum(s**2)
  i = np.arange(1, n)  # left cluster s[:i]
  left = c2[i - 1] - c1[i - 1] ** 2 / i
  right = (c2[-1] - c2[i - 1]) - (c1[-1] - c1[i - 1]) ** 2 / (n - i)
  best = int(np.argmin(left + right)) + 1
  return float(0.5 * (s[best - 1] + s[best]))


def noisy_label_detection(values, is_noisy, *, k: int | None = None) -> dict[str, float]:
  """How well low values single out the points whose labels were flipped.

  Args:
    values: ``[N]`` data values (higher = more useful).
    is_noisy: ``[N]`` bool, True for flipped labels.
    k: how many lowest-valued points to flag for precision@k (default: the
      number of noisy points, so precision@k equals recall@k).

  Returns:
    ``precision_at_k``, ``recall_at_k``, ``k``; ``f1`` of the points in the
    lower cluster of an optimal two-cluster split of the values (as OpenDataVal
    scores noisy-label detection, here solved exactly in 1-D rather than by
    k-means restarts); ``auroc`` of ``-values`` as a noise score; ``chance``,
    the precision of a random ranking.
  """
  v = _as_values(values)
  y = np.asarray(is_noisy, bool).reshape(-1)
  if y.shape != v.shape:
    raise ProtocolError(f"values and is_noisy differ in shape: {v.shape} vs {y.shape}")
  n_noisy = int(y.sum())
  if n_noisy == 0 or n_noisy == len(y):
    raise ProtocolError("is_noisy must mark some but not all points")
  k = n_noisy if k is None else int(k)
  if not 1 <= k <= len(v):
    raise ProtocolError(f"k must be in [1, {len(v)}], got {k}")
  low = np.argsort(v, kind="stable")[:k]
  hits = int(y[low].sum())
  flagged = v < _two_means_split(v)
  tp = int((flagged & y).sum())
  prec = tp / max(int(flagged.sum()), 1)
  rec = tp / n_noisy
  f1 = 2 * prec * rec / (prec + rec) if prec + rec > 0 else 0.0
  ranks = stats.rankdata(-v)  # high rank = low value = "noisy"
  auroc = (ranks[y].sum() - n_noisy * (n_noisy + 1) / 2) / (n_noisy * (len(v) - n_noisy))
  return {
    "precision_at_k": hits / k,
    "recall_at_k": hits / n_noisy,
    "k": float(k),
    "f1": float(f1),
    "auroc": float(auroc),
    "chance": n_noisy / len(v),
  }


def removal_curve(
  task,
  values,
  spec,
  *,
  metric: str,
  order: str = "high_first",
  mode: str = "remove",
  fractions: tuple[float, ...] = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5),
  seed: int = 0,
) -> dict:
  """Point removal or addition curve: the metric as valued points go first.

  ``mode="remove"`` trains on the pool without the first ``f`` of the points in
  the chosen order; ``mode="add"`` trains on only those points. ``order`` is
  ``"high_first"`` (most valuable first) or ``"low_first"``. Every fraction is one
  model in a single ``train_many`` batch; all share one key (paired on purpose,
  so differences between fractions are the data's, not the seed's).

  Args:
    task: a task whose pool the values index and whose evals hold ``metric``.
    values: ``[N]`` value per pool point.
    spec: the learner (``LearnerSpec``).
    metric: ``"<eval set>/<metric>"``.
    order: ``"high_first"`` or ``"low_first"``.
    mode: ``"remove"`` or ``"add"``.
    fractions: fractions of the pool in ``[0, 1]``; ``"add"`` needs them > 0.
    seed: the shared training key.

  Returns:
    ``fractions`` and ``metric`` (lists), and ``auc``: the mean metric over the
    fractions (for removal of the highest-valued points, lower is better).
  """
  from metaval.learners.train import train_many
  from metaval.pairs.keys import root_data

  v = _as_values(values)
  n = task.pool_size
  if v.shape != (n,):
    raise ProtocolError(f"values must be [{n}] (one per pool point), got {v.shape}")
  if order not in ("high_first", "low_first"):
    raise ProtocolError(f"order must be 'high_first' or 'low_first', got {order!r}")
  if mode not in ("remove", "add"):
    raise ProtocolError(f"mode must be 'remove' or 'add', got {mode!r}")
  fr = np.asarray(fractions, np.float64)
  if fr.size == 0 or fr.min() < 0 or fr.max() > 1:
    raise ProtocolError(f"fractions must lie in [0, 1], got {list(fr)}")
  ranked = np.argsort(-v if order == "high_first" else v, kind="stable")
  masks = np.zeros((len(fr), n), np.float32)
  for i, f in enumerate(fr):
    m = int(round(f * n))
    if mode == "remove":
      if m >= n:
        raise ProtocolError("removing every point leaves nothing to train on")
      masks[i] = 1.0
      masks[i, ranked[:m]] = 0.0
    else:
      if m == 0:
        raise ProtocolError("'add' curves need fractions that select at least one point")
      masks[i, ranked[:m]] = 1.0
  keys = np.repeat(root_data(seed)[None], len(fr), 0)  # paired: one key, on the host
  res = train_many(keys, task, masks, spec)
  if metric not in res.metrics:
    raise ProtocolError(f"unknown metric {metric!r}; available: {', '.join(res.metrics)}")
  y = res.metrics[metric]
  return {
    "fractions": fr.tolist(),
    "metric": y.tolist(),
    "auc": float(np.mean(y)),
    "order": order,
    "mode": mode,
  }


# ----------------------------------------------------------------------------
# One table format: rows of dicts -> markdown and JSON.


def format_table(rows: list[dict], columns: list[str] | None = None, floatfmt: str = ".3f") -> str:
  """Markdown table of ``rows`` (missing cells print as "–"); see ``util.io.markdown_table``."""
  return io_lib.markdown_table(rows, columns, floatfmt)


def write_table(
  rows: list[dict],
  path: str,
  *,
  title: str | None = None,
  columns: list[str] | None = None,
  meta: dict | None = None,
  floatfmt: str = ".3f",
) -> str:
  """Writes ``path.json`` (rows + meta) and ``path.md`` atomically; returns the markdown.

  Non-finite floats become ``null`` in JSON and "–" in markdown.
  """
  md = format_table(rows, columns, floatfmt)
  if title:
    md = f"## {title}\n\n{md}"
  if meta:
    md += "\n\n" + "; ".join(f"{k}: {v}" for k, v in meta.items())
  io_lib.write_text(path + ".md", md + "\n")
  io_lib.write_json(path + ".json", {"title": title, "meta": meta or {}, "rows": rows})
  return md


STYLE = plots.STYLE  # the one style, defined with the figures in metaval.report.plots


def plot_curves(
  series: dict,
  path: str,
  *,
  xlabel: str,
  ylabel: str,
  title: str | None = None,
) -> str:
  """Line plot of named curves in the project's style, saved atomically as PNG.

  Args:
    series: label -> ``(x, y)``; labels ending in "(low first)" or starting with
      the same method share a colour, with solid vs dashed lines for the pair.
    path: output ``.png`` path.
    xlabel: x-axis label.
    ylabel: y-axis label.
    title: plot title (none if None).

  Returns:
    The path written.
  """

  import matplotlib

  matplotlib.use("Agg", force=False)
  import matplotlib.pyplot as plt

  with plt.rc_context(STYLE):
    fig, ax = plt.subplots()
    colours = {}
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for label, (x, y) in series.items():
      base = label.split(" (")[0]
      colour = colours.setdefault(base, cycle[len(colours) % len(cycle)])
      dashed = "low first" in label or "(add" in label
      ax.plot(x, y, "--" if dashed else "-", marker="o", color=colour, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
      ax.set_title(title)
    ax.legend(loc="best", ncol=2 if len(series) > 6 else 1)
    fig.tight_layout()
    io_lib.save_figure(fig, path)
    plt.close(fig)
  return path
