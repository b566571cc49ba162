"""Label quality: how repeatable labels are, and what each supplement kind is worth.

``metaval labels --config labels:quick --workdir runs/labels_quick``
prints, per task and learner:

* **Repeatability**: the K paired seeds are split into two disjoint halves (even
  and odd seeds); each half gives a label per pair, and the correlation of the
  two across pairs is the split-half reliability. Spearman-Brown
  (``2r / (1 + r)``) extrapolates it to the full K seeds: the noise ceiling, i.e.
  the best correlation any predictor of the K-seed label can expect. A
  deterministic learner (e.g. the zero-init, full-batch linear one) has no seed
  noise; with K = 1 the ceiling is reported as not measurable.
* **Improvement per supplement kind**: count, mean, standard deviation, median,
  share of positive labels and mean standard error, as a markdown table, JSON and
  a box plot (PNG).
"""

from __future__ import annotations

import json
import os

import numpy as np
from scipy import stats

from metaval.data import task_slug
from metaval.labeling.schema import LabelSet
from metaval.util import io as io_lib


def _learner_name(ls: LabelSet, i: int) -> str:
  return ls.learner_spec(i).get("name") or ls.learner_spec(i)["family"]


def learner_names(ls: LabelSet) -> list[str]:
  """Learner names in first-appearance order."""
  seen = {}
  for i in range(len(ls)):
    seen.setdefault(_learner_name(ls, i), None)
  return list(seen)


def by_learner(ls: LabelSet, name: str) -> LabelSet:
  return ls.subset(np.array([_learner_name(ls, i) == name for i in range(len(ls))]))


def repeatability(ls: LabelSet, metric: str) -> dict[str, float]:
  """Split-half seed repeatability of the labels for one metric.

  Args:
    ls: labels of one learner.
    metric: a metric name.

  Returns:
    ``split_spearman``, ``split_pearson`` (half vs half), ``ceiling_pearson``
    (Spearman-Brown to K seeds), ``noise_share`` (mean squared standard error of
    the label over the label variance across pairs), ``num_seeds``. NaN where
    K < 2 or the labels do not vary.
  """
  t = ls.metric_index(metric)
  per_seed = ls.improvement_per_seed[:, :, t]  # [P, K]
  k = per_seed.shape[1]
  out = {"num_seeds": float(k)}
  nan = float("nan")
  if k < 2 or len(ls) < 3:
    return {**out, "split_spearman": nan, "split_pearson": nan, "ceiling_pearson": nan,
            "noise_share": nan}  # fmt: skip
  a, b = per_seed[:, 0::2].mean(1), per_seed[:, 1::2].mean(1)
  if np.std(a) == 0 or np.std(b) == 0:
    rs = rp = nan
  else:
    rs = float(stats.spearmanr(a, b).statistic)
    rp = float(stats.pearsonr(a, b).statistic)
  ceiling = 2 * rp / (1 + rp) if np.isfinite(rp) and rp > -1 else nan
  var = float(np.var(ls.improvement[:, t]))
  noise = float(np.mean(ls.improvement_se[:, t] ** 2) / var) if var > 0 else nan
  return {**out, "split_spearman": rs, "split_pearson": rp, "ceiling_pearson": ceiling,
          "noise_share": noise}  # fmt: skip


def per_kind(ls: LabelSet, metric: str) -> list[dict]:
  """Distribution of the label per supplement kind (sorted by mean, best first)."""
  t = ls.metric_index(metric)
  imp, se = ls.improvement[:, t], ls.improvement_se[:, t]
  rows = []
  for kind in sorted(set(ls.kind.tolist())):
    m = ls.kind == kind
    v = imp[m]
    rows.append(
      {
        "kind": kind,
        "n": int(m.sum()),
        "mean": float(v.mean()),
        "std": float(v.std(ddof=1)) if v.size > 1 else 0.0,
        "median": float(np.median(v)),
        "positive": float(np.mean(v > 0)),
        "mean_se": float(se[m].mean()),
      }
    )
  return sorted(rows, key=lambda r: -r["mean"])


def kind_table(rows: list[dict], metric: str) -> str:
  return io_lib.markdown_table(
    [
      {
        "kind": r["kind"],
        "n": str(r["n"]),
        f"mean Δ {metric}": f"{r['mean']:+.4f}",
        "std": f"{r['std']:.4f}",
        "median": f"{r['median']:+.4f}",
        "share > 0": f"{r['positive']:.0%}",
        "mean SE": f"{r['mean_se']:.4f}",
      }
      for r in rows
    ]
  )


def plot_kinds(ls: LabelSet, metric: str, path: str, title: str = "") -> None:
  """Box plot of the label per supplement kind, written to ``path`` (PNG)."""
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  t = ls.metric_index(metric)
  rows = per_kind(ls, metric)
  data = [ls.improvement[ls.kind == r["kind"], t] for r in rows]
  fig, ax = plt.subplots(figsize=(8, 0.45 * len(rows) + 1.5))
  ax.boxplot(data, vert=False, showfliers=True, flierprops={"markersize": 2})
  ax.set_yticks(range(1, len(rows) + 1), [f"{r['kind']} (n={r['n']})" for r in rows])
  ax.axvline(0.0, color="grey", lw=0.8, ls="--")
  ax.invert_yaxis()
  ax.set_xlabel(f"improvement in {metric} (B ∪ S minus B, mean over seeds)")
  ax.set_title(title or f"{ls.task}: label per supplement kind")
  fig.tight_layout()
  io_lib.save_figure(fig, path, dpi=110)
  plt.close(fig)


def main_metrics(ls: LabelSet) -> list[str]:
  """The headline metrics: overall accuracy and log-loss, or the LM's held-out loss."""
  heads = [m for m in ls.metric_names if m.count("/") == 1]
  return heads[:2]


def _deterministic(spec: dict) -> bool:
  # The linear family starts from zeros and full-batch training draws no
  # minibatches: its PRNG key is unused, so every seed gives the same model.
  return spec.get("family") == "linear" and not spec.get("batch_size")


def summarize(ls: LabelSet, out_dir: str) -> dict:
  """Writes ``quality.json``, ``quality.md`` and one PNG per (learner, metric)."""
  os.makedirs(out_dir, exist_ok=True)
  report, md = {"task": ls.task, "learners": {}}, [f"## Label quality: {ls.task}"]
  for name in learner_names(ls):
    sub = by_learner(ls, name)
    entry = {"labels": len(sub), "num_seeds": sub.num_seeds, "metrics": {}}
    md.append(f"\n### learner `{name}` ({len(sub)} labels, K={sub.num_seeds} paired seeds)")
    for metric in main_metrics(sub):
      rep = repeatability(sub, metric)
      rows = per_kind(sub, metric)
      png = os.path.join(out_dir, f"kinds_{name}_{metric.replace('/', '_')}.png")
      plot_kinds(sub, metric, png, title=f"{ls.task}, {name}: Δ {metric}")
      entry["metrics"][metric] = {"repeatability": rep, "per_kind": rows, "plot": png}
      if sub.num_seeds >= 2:
        md.append(
          f"\n{metric}: split-half Spearman {rep['split_spearman']:.3f}, Pearson "
          f"{rep['split_pearson']:.3f}, noise ceiling (K seeds) {rep['ceiling_pearson']:.3f}, "
          f"seed-noise share {rep['noise_share']:.3f}\n"
        )
      else:
        note = (
          "the learner is deterministic (zero init, full batch), so its seed noise is 0 "
          "and the ceiling is 1"
          if _deterministic(sub.learner_spec(0))
          else "generate with num_seeds >= 2 to measure it"
        )
        md.append(f"\n{metric}: K = 1, seed repeatability not measurable: {note}.\n")
      md.append(kind_table(rows, metric))
    report["learners"][name] = entry
  text = "\n".join(md) + "\n"
  io_lib.write_text(os.path.join(out_dir, "quality.json"), json.dumps(report, indent=1))
  io_lib.write_text(os.path.join(out_dir, "quality.md"), text)
  report["markdown"] = text
  return report


def run(config, workdir: str) -> dict:
  """``metaval labels``: label quality for the dataset in ``workdir``.

  Generates (or resumes) the dataset first if it is not complete.
  """
  from metaval.labeling import pipeline

  out = pipeline.generate(config, workdir)
  sets = out if isinstance(out, dict) else {out.task: out}
  reports = {}
  for task, ls in sets.items():
    out_dir = os.path.join(workdir, task_slug(task), "quality")
    rep = summarize(ls, out_dir)
    print(rep["markdown"])
    print(f"wrote {out_dir}/quality.{{json,md}} and PNGs")
    reports[task] = rep
  return reports
