"""Nutrition Facts drawn for people: a facts-contained HTML page and a PNG food label.

Both take a ``metaval.report.facts.NutritionFacts`` and read only its fields.
"""

from __future__ import annotations

import dataclasses
import html

from metaval.errors import MetavalError
from metaval.util import io


def to_html(facts) -> str:
  """A facts-contained HTML page (inline CSS, no scripts, no external files).

  Args:
    facts: the ``NutritionFacts`` to draw.

  Returns:
    The page.
  """
  e = html.escape
  rows = []
  for t in facts.targets:
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
    "".join(f'<li class="warning">{e(w)}</li>' for w in facts.warnings)
    or '<li class="none">none</li>'
  )
  diag = "".join(
    f"<tr><td>{e(k)}</td><td>{_cell(v)}</td></tr>" for k, v in _flat(facts.diagnostics)
  )
  return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Nutrition Facts: {e(facts.name)}</title>
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
<div class="thin" id="name">{e(facts.name)}</div>
<div class="thin">task <b id="task">{e(facts.task)}</b> &middot;
 |S| = <b id="supplement-size">{facts.supplement_size}</b> &middot;
 |B| = <b id="base-size">{facts.base_size}</b></div>
<div class="thin">learner {e(str(facts.learner.get("family", "?")))}
 ({facts.learner_params:,} params)</div>
<table id="targets">
<tr><th class="m">predicted improvement</th><th>value</th>
<th>{facts.coverage:.0%} interval</th><th>base score</th><th>share of base</th></tr>
{"".join(rows)}
</table>
<div class="thin"><b>Warnings</b><ul id="warnings">{warn}</ul></div>
<details><summary>diagnostics</summary><table>{diag}</table></details>
<div style="font-size:0.75em">predictor: {e(facts.predictor)}</div>
</div></body></html>
"""


@dataclasses.dataclass
class PngLayout:
  """What the PNG label draws: the metric rows and a note for any row left out.

  Attributes:
    rows: the ``TargetValue`` rows drawn, in the facts' order.
    omitted: how many of the facts' rows are not drawn.
    note: the line drawn under the rows when some are left out (else None).
  """

  rows: list
  omitted: int
  note: str | None


def png_layout(facts, max_rows: int | None = None) -> PngLayout:
  """Which metric rows the PNG label draws.

  Args:
    facts: the ``NutritionFacts`` to draw.
    max_rows: metric rows drawn at most (None: all, as the JSON and text have them).

  Returns:
    The rows drawn and, when some are left out, the note that says how many.
  """
  if max_rows is not None and max_rows < 1:
    raise MetavalError(f"max_rows must be >= 1 or None, got {max_rows}")
  rows = list(facts.targets if max_rows is None else facts.targets[:max_rows])
  omitted = len(facts.targets) - len(rows)
  note = f"{omitted} more rows not drawn: see the JSON or HTML report" if omitted else None
  return PngLayout(rows=rows, omitted=omitted, note=note)


def write_png(facts, path: str, max_rows: int | None = None) -> str:
  """A PNG label laid out like a food label (matplotlib, Agg backend).

  Args:
    facts: the ``NutritionFacts`` to draw.
    path: the ``.png`` to write (atomically).
    max_rows: metric rows drawn at most (None: all); a note says how many were left out.

  Returns:
    ``path``.
  """
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  layout = png_layout(facts, max_rows)
  rows = layout.rows
  n_warn = max(1, len(facts.warnings))
  height = 3.0 + 0.32 * (len(rows) + (layout.note is not None)) + 0.3 * n_warn
  fig = plt.figure(figsize=(4.6, height), dpi=120)
  ax = fig.add_axes([0, 0, 1, 1])
  ax.set_axis_off()
  ax.set_xlim(0, 1)
  ax.set_ylim(0, height)
  ax.add_patch(plt.Rectangle((0.03, 0.05), 0.94, height - 0.1, fill=False, lw=2))
  y = height - 0.5
  ax.text(0.06, y, "Nutrition Facts", fontsize=20, fontweight="bold", va="center")
  y -= 0.38
  ax.text(0.06, y, facts.name[:52], fontsize=8, va="center")
  y -= 0.12
  ax.plot([0.05, 0.95], [y, y], color="k", lw=6)
  y -= 0.28
  ax.text(
    0.06,
    y,
    f"task {facts.task}   |S| = {facts.supplement_size}   |B| = {facts.base_size}",
    fontsize=8,
    va="center",
  )
  y -= 0.25
  ax.text(
    0.06,
    y,
    f"learner {facts.learner.get('family', '?')} ({facts.learner_params:,} params)",
    fontsize=8,
    va="center",
  )
  y -= 0.15
  ax.plot([0.05, 0.95], [y, y], color="k", lw=3)
  y -= 0.25
  ax.text(0.06, y, "Predicted improvement", fontsize=9, fontweight="bold", va="center")
  ax.text(0.61, y, "of base", fontsize=6.5, va="center")
  ax.text(0.94, y, f"{facts.coverage:.0%} interval", fontsize=6.5, ha="right", va="center")
  for t in rows:
    y -= 0.32
    ax.plot([0.05, 0.95], [y + 0.16, y + 0.16], color="k", lw=0.5)
    ax.text(0.06, y, t.metric[:26], fontsize=7.5, va="center")
    ax.text(0.47, y, f"{t.value:+.4f}", fontsize=8, fontweight="bold", va="center")
    if t.share_of_base is not None:
      ax.text(0.61, y, f"{t.share_of_base:+.1%}", fontsize=6.5, va="center")
    ax.text(0.94, y, f"[{t.low:+.3f}, {t.high:+.3f}]", fontsize=6.5, ha="right", va="center")
  if layout.note:
    y -= 0.32
    ax.text(0.06, y, layout.note, fontsize=6.5, style="italic", va="center")
  y -= 0.22
  ax.plot([0.05, 0.95], [y, y], color="k", lw=3)
  y -= 0.25
  ax.text(0.06, y, "Warnings", fontsize=9, fontweight="bold", va="center")
  for w in facts.warnings or ["none"]:
    y -= 0.3
    ax.text(0.06, y, ("! " if facts.warnings else "") + w[:70], fontsize=6.5, va="center")
  try:
    io.save_figure(fig, path, dpi=120)
  finally:
    plt.close(fig)
  return path


def _flat(d: dict, prefix: str = ""):
  """``(key, value)`` of a diagnostics dict, nested dicts as ``outer.inner`` keys."""
  for k, v in d.items():
    if isinstance(v, dict):
      yield from _flat(v, f"{prefix}{k}.")
    else:
      yield f"{prefix}{k}", v


def _cell(v) -> str:
  """A diagnostic's value: numbers to four significant digits, anything else as text."""
  if isinstance(v, (int, float)) and not isinstance(v, bool):
    return f"{v:.4g}"
  return html.escape(str(v))
