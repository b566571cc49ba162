"""``metaval experiment <name> [--mode quick|full]``: regenerate one results table.

Each experiment is a script ``experiments/<name>.py`` defining::

    TITLE = "E1 label throughput"
    CLAIM = "one sentence: what the table shows"
    def run(mode: str, workdir: str) -> Result

where ``Result`` holds table rows, optional notes and optional PNG paths. This
module runs it, then writes ``table.md``, ``table.json`` and the machine/date
record into the experiment's results folder and rebuilds ``experiments/README.md``
from every results folder, so the published numbers are only ever written by the
scripts. ``full`` results go to ``experiments/results/<name>/`` (committed);
``quick`` results go to ``runs/experiments/<name>/`` unless ``--workdir`` says
otherwise, so CI's quick runs never overwrite the published tables.
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib.util
import json
import os
import platform
import sys
import time

from metaval.errors import MetavalError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPERIMENTS_DIR = os.path.join(REPO, "experiments")
RESULTS_DIR = os.path.join(EXPERIMENTS_DIR, "results")


@dataclasses.dataclass
class Result:
  """What an experiment returns.

  Attributes:
    rows: the table, one dict per row (same keys, in column order).
    notes: sentences printed under the table (measured, not typed: build them
      from the numbers in ``rows``).
    plots: paths of PNG files the experiment wrote inside its workdir.
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
  if not os.path.isdir(EXPERIMENTS_DIR):
    return []
  return sorted(
    f[:-3]
    for f in os.listdir(EXPERIMENTS_DIR)
    if f.endswith(".py") and f[0] == "e" and f[1].isdigit()
  )


def _load(name: str):
  names = list_experiments()
  match = [n for n in names if n == name or n.split("_")[0] == name]
  if len(match) != 1:
    raise MetavalError(f"unknown experiment {name!r}; available: {', '.join(names)}")
  path = os.path.join(EXPERIMENTS_DIR, match[0] + ".py")
  if EXPERIMENTS_DIR not in sys.path:
    sys.path.insert(0, EXPERIMENTS_DIR)  # experiments share experiments/_common.py
  spec = importlib.util.spec_from_file_location(f"metaval_experiment_{match[0]}", path)
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return match[0], mod


def _fmt(v) -> str:
  if isinstance(v, float):
    if v != v:
      return "n/a"
    if abs(v) >= 1000:
      return f"{v:,.0f}"
    if abs(v) >= 100:
      return f"{v:.1f}"
    return f"{v:.3f}"
  return str(v)


def markdown_table(rows: list[dict]) -> str:
  """Rows of dicts -> a markdown table (columns in the first row's key order)."""
  if not rows:
    return "(no rows)\n"
  cols = list(rows[0])
  for r in rows[1:]:
    cols += [c for c in r if c not in cols]
  out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
  for r in rows:
    out.append("| " + " | ".join(_fmt(r.get(c, "")) for c in cols) + " |")
  return "\n".join(out) + "\n"


def cpu_model() -> str:
  """The CPU's model name (from /proc/cpuinfo), for benchmark and result records."""
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or "unknown"


def machine() -> dict:
  cpu = cpu_model()
  import jax

  devices = jax.devices()
  return {
    "cpu": cpu,
    "cores": os.cpu_count(),
    "accelerator": ", ".join(sorted({d.device_kind for d in devices})),
    "python": platform.python_version(),
    "jax": jax.__version__,
  }


def run_experiment(name, mode="quick", workdir=None, config=None, overrides=()) -> Result:
  """Runs one experiment and writes its table; see the module docstring."""
  if config or overrides:
    raise MetavalError("experiments take no --config; use --mode quick|full")
  if mode not in ("quick", "full"):
    raise MetavalError(f"mode must be quick or full, got {mode!r}")
  full_name, mod = _load(name)
  if workdir is None:
    workdir = (
      os.path.join(RESULTS_DIR, full_name)
      if mode == "full"
      else os.path.join("runs", "experiments", full_name)
    )
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
    "machine": machine(),
    "rows": result.rows,
    "notes": result.notes,
    "plots": [os.path.relpath(p, workdir) for p in result.plots],
    "extra_tables": result.extra_tables,
    "markdown": result.markdown,
  }
  _write_atomic(os.path.join(workdir, "table.json"), json.dumps(record, indent=2, default=float))
  _write_atomic(os.path.join(workdir, "table.md"), render(record))
  print(render(record))
  if os.path.abspath(workdir).startswith(os.path.abspath(RESULTS_DIR)):
    rebuild_readme()
  return result


def render(record: dict) -> str:
  m = record["machine"]
  lines = [
    f"## {record['title']}",
    "",
    record["claim"],
    "",
    f"Command: `{record['command']}` — {record['date']}, {m['cpu']} ({m['cores']} cores, "
    f"{m['accelerator']}), jax {m['jax']}, {record['seconds']:.0f} s.",
    "",
  ]
  if record["rows"]:
    lines.append(markdown_table(record["rows"]))
  if record.get("markdown"):
    lines += [record["markdown"].strip(), ""]
  for title, rows in record.get("extra_tables", {}).items():
    lines += [f"**{title}**", "", markdown_table(rows)]
  lines += [f"- {n}" for n in record["notes"]]
  if record["notes"]:
    lines.append("")
  lines += [f"![{os.path.basename(p)}]({p})" for p in record["plots"]]
  return "\n".join(lines) + "\n"


def rebuild_readme() -> str:
  """Writes ``experiments/README.md`` from every ``results/<name>/table.json``."""
  parts = [
    "# metaval results",
    "",
    "Every table below is written by its command (`metaval experiment <name> --mode full`);",
    "nothing here is typed by hand. Quick modes of all experiments run in CI",
    "(`tests/test_experiments.py`) to keep the paths working.",
    "",
  ]
  for name in list_experiments():
    path = os.path.join(RESULTS_DIR, name, "table.json")
    if not os.path.isfile(path):
      parts += [f"## {name}", "", f"Not run yet: `metaval experiment {name} --mode full`.", ""]
      continue
    with open(path) as f:
      record = json.load(f)
    body = render(record)
    # Plot links are relative to the results folder; make them relative to experiments/.
    for p in record["plots"]:
      body = body.replace(f"]({p})", f"](results/{name}/{p})")
    parts.append(body)
  text = "\n".join(parts)
  _write_atomic(os.path.join(EXPERIMENTS_DIR, "README.md"), text)
  return text


def _write_atomic(path: str, text: str) -> None:
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    f.write(text)
  os.replace(tmp, path)
