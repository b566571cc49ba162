"""Nutrition Facts: a food-label view of a supplemental set's predicted value.

``NutritionFacts`` holds, per evaluation metric, the predicted improvement with its
interval and its share of the base model's own score, plus warnings (duplicates,
label noise, constant inputs, out of domain, extrapolation). It is written as JSON
for machines and as a self-contained HTML page and a PNG label for people.
``metaval report`` values a demo supplement (``value``) and writes all
three.
"""

from __future__ import annotations

import dataclasses
import html
import json
import os

from metaval.errors import MetavalError


class ReportError(MetavalError):
  """Facts cannot be written (bad path or content)."""


@dataclasses.dataclass
class TargetValue:
  """One metric's line on the label.

  Attributes:
    metric: metric name (higher is better), e.g. ``"test/accuracy"``.
    value: predicted improvement metric(B ∪ S) - metric(B).
    low, high: calibrated interval (nominal ``coverage`` of the facts).
    base_metric: the base model's own score on this metric (None if unknown).
    share_of_base: ``value / base_metric`` for accuracy metrics (None otherwise).
  """

  metric: str
  value: float
  low: float
  high: float
  base_metric: float | None = None
  share_of_base: float | None = None


@dataclasses.dataclass
class NutritionFacts:
  """The predicted value of one supplemental set S for a base B and learner."""

  task: str
  supplement_size: int
  base_size: int
  learner: dict
  learner_params: int
  coverage: float
  targets: list[TargetValue]
  warnings: list[str]
  diagnostics: dict = dataclasses.field(default_factory=dict)
  predictor: str = ""
  name: str = "supplemental set"

  # -- JSON --------------------------------------------------------------------

  def to_dict(self) -> dict:
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, d: dict) -> NutritionFacts:
    d = dict(d)
    d["targets"] = [TargetValue(**t) for t in d["targets"]]
    return cls(**d)

  def write_json(self, path: str) -> str:
    _atomic_write(path, json.dumps(self.to_dict(), indent=2))
    return path

  # -- text --------------------------------------------------------------------

  def text(self) -> str:
    """A plain-text label for the terminal."""
    lines = [
      "Nutrition Facts",
      f"  {self.name}",
      f"  task {self.task}  |S| = {self.supplement_size}  |B| = {self.base_size}",
      f"  learner {self.learner.get('family', '?')} ({self.learner_params:,} params)",
      f"  predicted improvement (interval: {self.coverage:.0%})",
    ]
    for t in self.targets:
      share = f"  ({t.share_of_base:+.1%} of base)" if t.share_of_base is not None else ""
      lines.append(f"    {t.metric:28s} {t.value:+.4f}  [{t.low:+.4f}, {t.high:+.4f}]{share}")
    if self.warnings:
      lines.append("  warnings:")
      lines += [f"    ! {w}" for w in self.warnings]
    else:
      lines.append("  warnings: none")
    return "\n".join(lines)

  # -- HTML --------------------------------------------------------------------

  def to_html(self) -> str:
    """A self-contained HTML page (inline CSS, no scripts, no external files)."""
    e = html.escape
    rows = []
    for t in self.targets:
      share = f"{t.share_of_base:+.1%}" if t.share_of_base is not None else "&ndash;"
      base = f"{t.base_metric:.4f}" if t.base_metric is not None else "&ndash;"
      rows.append(
        "<tr>"
        f'<td class="m">{e(t.metric)}</td>'
        f'<td class="v" data-value="{t.value!r}">{t.value:+.4f}</td>'
        f'<td data-low="{t.low!r}" data-high="{t.high!r}">[{t.low:+.4f}, {t.high:+.4f}]</td>'
        f"<td>{base}</td><td>{share}</td>"
        "</tr>"
      )
    warn = (
      "".join(f'<li class="warning">{e(w)}</li>' for w in self.warnings)
      or '<li class="none">none</li>'
    )
    diag = "".join(f"<tr><td>{e(k)}</td><td>{v:.4g}</td></tr>" for k, v in self.diagnostics.items())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Nutrition Facts: {e(self.name)}</title>
<style>
body {{ font-family: Helvetica, Arial, sans-serif; margin: 2em; }}
.label {{ border: 2px solid #000; padding: 0.4em 0.8em; width: 40em; }}
h1 {{ font-size: 2.2em; margin: 0; border-bottom: 10px solid #000; }}
.thin {{ border-bottom: 1px solid #000; padding: 0.2em 0; }}
table {{ border-collapse: collapse; width: 100%; }}
td, th {{ border-bottom: 1px solid #000; padding: 0.2em 0.3em; text-align: right; }}
td.m, th.m {{ text-align: left; }}
.v {{ font-weight: bold; }}
li.warning {{ color: #a00; }}
details {{ margin-top: 0.6em; font-size: 0.85em; }}
</style></head><body>
<div class="label" id="nutrition-facts">
<h1>Nutrition Facts</h1>
<div class="thin" id="name">{e(self.name)}</div>
<div class="thin">task <b id="task">{e(self.task)}</b> &middot;
 |S| = <b id="supplement-size">{self.supplement_size}</b> &middot;
 |B| = <b id="base-size">{self.base_size}</b></div>
<div class="thin">learner {e(str(self.learner.get("family", "?")))}
 ({self.learner_params:,} params)</div>
<table id="targets">
<tr><th class="m">predicted improvement</th><th>value</th>
<th>{self.coverage:.0%} interval</th><th>base score</th><th>share of base</th></tr>
{"".join(rows)}
</table>
<div class="thin"><b>Warnings</b><ul id="warnings">{warn}</ul></div>
<details><summary>diagnostics</summary><table>{diag}</table></details>
<div style="font-size:0.75em">predictor: {e(self.predictor)}</div>
</div></body></html>
"""

  def write_html(self, path: str) -> str:
    _atomic_write(path, self.to_html())
    return path

  # -- PNG ---------------------------------------------------------------------

  def write_png(self, path: str, max_rows: int = 8) -> str:
    """A PNG label laid out like a food label (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = self.targets[:max_rows]
    n_warn = max(1, len(self.warnings))
    height = 3.0 + 0.32 * len(rows) + 0.3 * n_warn
    fig = plt.figure(figsize=(4.6, height), dpi=120)
    ax = fig.add_axes([0, 0, 1, 1])
    ax.set_axis_off()
    ax.set_xlim(0, 1)
    ax.set_ylim(0, height)
    ax.add_patch(plt.Rectangle((0.03, 0.05), 0.94, height - 0.1, fill=False, lw=2))
    y = height - 0.5
    ax.text(0.06, y, "Nutrition Facts", fontsize=20, fontweight="bold", va="center")
    y -= 0.38
    ax.text(0.06, y, self.name[:52], fontsize=8, va="center")
    y -= 0.12
    ax.plot([0.05, 0.95], [y, y], color="k", lw=6)
    y -= 0.28
    ax.text(
      0.06,
      y,
      f"task {self.task}   |S| = {self.supplement_size}   |B| = {self.base_size}",
      fontsize=8,
      va="center",
    )
    y -= 0.25
    ax.text(
      0.06,
      y,
      f"learner {self.learner.get('family', '?')} ({self.learner_params:,} params)",
      fontsize=8,
      va="center",
    )
    y -= 0.15
    ax.plot([0.05, 0.95], [y, y], color="k", lw=3)
    y -= 0.25
    ax.text(0.06, y, "Predicted improvement", fontsize=9, fontweight="bold", va="center")
    ax.text(0.61, y, "of base", fontsize=6.5, va="center")
    ax.text(0.94, y, f"{self.coverage:.0%} interval", fontsize=6.5, ha="right", va="center")
    for t in rows:
      y -= 0.32
      ax.plot([0.05, 0.95], [y + 0.16, y + 0.16], color="k", lw=0.5)
      ax.text(0.06, y, t.metric[:26], fontsize=7.5, va="center")
      ax.text(0.47, y, f"{t.value:+.4f}", fontsize=8, fontweight="bold", va="center")
      if t.share_of_base is not None:
        ax.text(0.61, y, f"{t.share_of_base:+.1%}", fontsize=6.5, va="center")
      ax.text(0.94, y, f"[{t.low:+.3f}, {t.high:+.3f}]", fontsize=6.5, ha="right", va="center")
    y -= 0.22
    ax.plot([0.05, 0.95], [y, y], color="k", lw=3)
    y -= 0.25
    ax.text(0.06, y, "Warnings", fontsize=9, fontweight="bold", va="center")
    for w in self.warnings or ["none"]:
      y -= 0.3
      ax.text(0.06, y, ("! " if self.warnings else "") + w[:70], fontsize=6.5, va="center")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp.png"
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, path)
    return path


def _atomic_write(path: str, text: str) -> None:
  d = os.path.dirname(os.path.abspath(path))
  try:
    os.makedirs(d, exist_ok=True)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
      f.write(text)
    os.replace(path + ".tmp", path)
  except OSError as e:
    raise ReportError(f"cannot write {path!r}: {e.strerror}") from None


def write_all(facts: NutritionFacts, workdir: str, stem: str = "nutrition_facts") -> dict:
  """Writes ``<stem>.json``, ``<stem>.html`` and ``<stem>.png`` under ``workdir``."""
  base = os.path.join(workdir, stem)
  return {
    "json": facts.write_json(base + ".json"),
    "html": facts.write_html(base + ".html"),
    "png": facts.write_png(base + ".png"),
  }


def run(config, workdir: str) -> NutritionFacts:
  """``metaval report``: values the configured supplement and writes JSON, HTML, PNG."""
  from metaval.api import facts_for_config

  facts = facts_for_config(config)
  print(facts.text())
  paths = write_all(facts, workdir)
  for kind, p in paths.items():
    print(f"wrote {kind}: {p}")
  return facts
