"""``metaval experiment <name> [--mode quick|full] [--figures-only]``: one results table.

Each experiment is a module ``metaval/jobs/experiments/<name>.py`` defining::

    TITLE = "E1 label throughput"
    CLAIM = "one sentence: what the table shows"
    def run(mode: str, workdir: str) -> Result

where ``Result`` holds table rows, optional notes and optional PNG paths. This
module runs it, then writes ``table.md``, ``table.json`` and the machine, date and
package-version record into the experiment's workdir, and rebuilds the results
README from every published results folder, so the published numbers are only ever
written by the experiments. Every run then draws the experiment's figures from what
it saved (:mod:`metaval.report.figures`); ``--figures-only`` redraws them from a
saved results folder without running anything.

Published tables live in a results folder (``--results``, default ``experiments``
relative to the current directory: run from a checkout's root, that is the
checkout's ``experiments/``): ``<results>/results/<name>/`` holds each table and
``<results>/README.md`` all of them. ``full`` runs write there by default; ``quick``
runs go to ``runs/experiments/<name>/`` unless ``--workdir`` says otherwise, so CI's
quick runs never overwrite the published tables.
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib
import json
import os
import pkgutil
import time

from metaval.errors import MetavalError
from metaval.report import figures
from metaval.util import env
from metaval.util import io as uio

EXPERIMENTS_PACKAGE = "metaval.jobs.experiments"
DEFAULT_RESULTS = "experiments"


@dataclasses.dataclass
class Result:
  """What an experiment returns.

  Attributes:
    rows: the table, one dict per row (same keys, in column order).
    notes: sentences printed under the table (measured, not typed: build them
      from the numbers in ``rows``).
    plots: paths of PNG files the experiment wrote inside its workdir (the runner
      adds the figures of :mod:`metaval.report.figures`).
    extra_tables: further named tables (title -> rows).
    markdown: tables already rendered by the module that ran (its own writer),
      shown under the rows.
  """

  rows: list[dict]
  notes: list[str] = dataclasses.field(default_factory=list)
  plots: list[str] = dataclasses.field(default_factory=list)
  extra_tables: dict[str, list[dict]] = dataclasses.field(default_factory=dict)
  markdown: str = ""


def list_experiments() -> list[str]:
  """The experiment modules' names (``e1_throughput``, ...), sorted."""
  package = importlib.import_module(EXPERIMENTS_PACKAGE)
  return sorted(
    m.name
    for m in pkgutil.iter_modules(package.__path__)
    if m.name[0] == "e" and m.name[1:2].isdigit()
  )


def _load(name: str):
  names = list_experiments()
  match = [n for n in names if n == name or n.split("_")[0] == name]
  if len(match) != 1:
    raise MetavalError(f"unknown experiment {name!r}; available: {', '.join(names)}")
  return match[0], importlib.import_module(f"{EXPERIMENTS_PACKAGE}.{match[0]}")


def _fmt(v) -> str:
  # Results tables' precision: 3 decimals, fewer for large values, "n/a" for NaN.
  if isinstance(v, float):
    if v != v:
      return "n/a"
    if abs(v) >= 1000:
      return f"{v:,.0f}"
    if abs(v) >= 100:
      return f"{v:.1f}"
    return f"{v:.3f}"
  return str(v)


def results_table(rows: list[dict]) -> str:
  """Rows of dicts -> a markdown table in the results tables' number format.

  Args:
    rows: one dict per row; columns in order of first appearance.

  Returns:
    The table (no trailing newline); ``"(no rows)"`` when ``rows`` is empty.
  """
  cols = list(dict.fromkeys(k for r in rows for k in r))
  # A row without a column leaves its cell empty (the published tables' convention).
  return uio.markdown_table([{c: _fmt(r.get(c, "")) for c in cols} for r in rows], cols)


def run_experiment(
  name: str,
  mode: str = "quick",
  workdir: str | None = None,
  results: str | None = None,
  config=None,
  overrides=(),
  figures_only: bool = False,
) -> Result:
  """Runs one experiment and writes its table; see the module docstring.

  Args:
    name: the experiment's module name or its prefix (``e2``).
    mode: ``quick`` (CI-sized) or ``full`` (the published table).
    workdir: where the experiment writes (default: see the module docstring).
    results: the results folder (default ``experiments``); its README is rebuilt when
      ``workdir`` lies inside ``<results>/results``.
    config: must be empty (experiments pick their own configs).
    overrides: must be empty.
    figures_only: redraw the figures from the results already saved in ``workdir``
      (default: the published folder) and record them in its ``table.json``; runs
      nothing.

  Returns:
    The experiment's ``Result`` (with ``figures_only``: the saved table's rows, notes
    and plots).
  """
  if config or overrides:
    raise MetavalError("experiments take no --config; use --mode quick|full")
  if mode not in ("quick", "full"):
    raise MetavalError(f"mode must be quick or full, got {mode!r}")
  full_name, mod = _load(name)
  results = results or DEFAULT_RESULTS
  results_dir = os.path.join(results, "results")
  if workdir is None:
    workdir = (
      os.path.join(results_dir, full_name)
      if mode == "full" or figures_only
      else os.path.join("runs", "experiments", full_name)
    )
  if figures_only:
    return redraw(full_name, workdir, results)
  os.makedirs(workdir, exist_ok=True)
  print(f"[experiment] {full_name} ({mode}) -> {workdir}")
  t0 = time.perf_counter()
  result = mod.run(mode, workdir)
  seconds = time.perf_counter() - t0
  record = {
    "name": full_name,
    "title": getattr(mod, "TITLE", full_name),
    "claim": getattr(mod, "CLAIM", ""),
    "mode": mode,
    "command": f"metaval experiment {full_name} --mode {mode}",
    "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    "seconds": seconds,
    "machine": env.machine(),
    "rows": result.rows,
    "notes": result.notes,
    "plots": [os.path.relpath(p, workdir) for p in result.plots],
    "extra_tables": result.extra_tables,
    "markdown": result.markdown,
  }
  # Figures read the saved results, table.json included (E3): write it first.
  _write_record(workdir, record)
  drawn = figures.draw(full_name, workdir)
  result.plots = list(dict.fromkeys([*result.plots, *drawn]))
  record["plots"] = [os.path.relpath(p, workdir) for p in result.plots]
  _write_record(workdir, record)
  print(render(record))
  _publish(workdir, results)
  return result


def redraw(name: str, workdir: str, results: str = DEFAULT_RESULTS) -> Result:
  """Draws experiment ``name``'s figures from its saved results; records them in the table.

  Args:
    name: the experiment's module name.
    workdir: its results folder (holding ``table.json`` and the saved results).
    results: the results folder whose README is rebuilt when ``workdir`` lies in it.

  Returns:
    A ``Result`` with the saved table's rows and notes and every figure's path.
  """
  path = os.path.join(workdir, "table.json")
  if not os.path.isfile(path):
    raise MetavalError(f"{path} is missing: run `metaval experiment {name}` before --figures-only")
  with open(path) as f:
    record = json.load(f)
  drawn = figures.draw(name, workdir)
  old = [
    os.path.join(workdir, p) for p in record["plots"] if os.path.isfile(os.path.join(workdir, p))
  ]
  plots = list(dict.fromkeys([*old, *drawn]))
  record["plots"] = [os.path.relpath(p, workdir) for p in plots]
  _write_record(workdir, record)
  for p in drawn:
    print(f"[experiment] {name}: wrote {p}")
  _publish(workdir, results)
  return Result(rows=record["rows"], notes=record["notes"], plots=plots)


def _write_record(workdir: str, record: dict) -> None:
  # Plain json.dumps (not uio.write_json): NaN cells stay NaN and render as "n/a".
  uio.write_text(os.path.join(workdir, "table.json"), json.dumps(record, indent=2, default=float))
  uio.write_text(os.path.join(workdir, "table.md"), render(record))


def _publish(workdir: str, results: str) -> None:
  """Rebuilds the results README when ``workdir`` is one of its published folders."""
  results_dir = os.path.join(results, "results")
  if os.path.abspath(workdir).startswith(os.path.abspath(results_dir) + os.sep):
    rebuild_readme(results)


def render(record: dict) -> str:
  """One experiment's record (``table.json``) as markdown: header, tables, notes, plots."""
  m = record["machine"]
  # Records made before versions were recorded name jax only.
  stack = env.format_versions(m["versions"]) if "versions" in m else f"jax {m['jax']}"
  lines = [
    f"## {record['title']}",
    "",
    record["claim"],
    "",
    f"Command: `{record['command']}` — {record['date']}, {m['cpu']} ({m['cores']} cores, "
    f"{m['accelerator']}), {stack}, {record['seconds']:.0f} s.",
    "",
  ]
  if record["rows"]:
    lines += [results_table(record["rows"]), ""]
  if record.get("markdown"):
    lines += [record["markdown"].strip(), ""]
  for title, rows in record.get("extra_tables", {}).items():
    lines += [f"**{title}**", "", results_table(rows), ""]
  lines += [f"- {n}" for n in record["notes"]]
  if record["notes"]:
    lines.append("")
  lines += [f"![{os.path.basename(p)}]({p})" for p in record["plots"]]
  return "\n".join(lines) + "\n"


def rebuild_readme(results: str = DEFAULT_RESULTS) -> str:
  """Writes ``<results>/README.md`` from every ``<results>/results/<name>/table.json``.

  Args:
    results: the results folder (``experiments`` in a checkout).

  Returns:
    The README's text.
  """
  parts = [
    "# metaval results",
    "",
    "Every table below is written by its command (`metaval experiment <name> --mode full`);",
    "nothing here is typed by hand. Quick modes of all experiments run in CI",
    "(`tests/test_experiments.py`) to keep the paths working.",
    "",
  ]
  for name in list_experiments():
    path = os.path.join(results, "results", name, "table.json")
    if not os.path.isfile(path):
      parts += [f"## {name}", "", f"Not run yet: `metaval experiment {name} --mode full`.", ""]
      continue
    with open(path) as f:
      record = json.load(f)
    body = render(record)
    # Plot links are relative to each table's folder; make them relative to the README's.
    for p in record["plots"]:
      body = body.replace(f"]({p})", f"](results/{name}/{p})")
    parts.append(body)
  text = "\n".join(parts)
  uio.write_text(os.path.join(results, "README.md"), text)
  return text
