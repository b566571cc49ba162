"""The Goodhart suite's tables and the ``metaval audit goodhart`` job."""

from __future__ import annotations

import os

import numpy as np

from metaval import protocol
from metaval.audit.goodhart.suite import GoodhartResult, goodhart_suite
from metaval.util import io as io_lib


def value_table(result: GoodhartResult) -> list[dict]:
  """Compact rows for the README: ``mean ± ci`` per estimator, ✗ marks a failure."""
  out = []
  for r in result.rows:
    row = {"supplement": r["supplement"] + (" (junk)" if r["junk"] else "")}
    for est in result.values:
      mean, half = r[est], r[f"{est}_ci"]
      digits = 4 if abs(mean) < 10 else 2  # data_oob sums are counts, not deltas
      cell = f"{mean:+.{digits}f}"
      if np.isfinite(half):
        cell += f" ± {half:.{digits}f}"
      if r[f"{est}_pass"] is False:
        cell += " ✗"
      row[est] = cell
    out.append(row)
  return out


def write_outputs(result: GoodhartResult, workdir: str, config) -> str:
  """Writes ``goodhart.{md,json}`` and ``goodhart_summary.{md,json}``; returns the markdown."""
  meta = {
    "task": config.task.name,
    "metric": config.metric,
    "replicates": int(config.num_bases),
    "seeds": int(config.num_seeds),
    "base_size": int(config.base_size) + int(config.contributor_size),
    "supp_size": int(config.supp_size),
    "seconds": {k: round(v, 1) for k, v in result.seconds.items()},
  }
  md = protocol.write_table(
    value_table(result),
    os.path.join(workdir, "goodhart"),
    title="Goodhart suite: value each estimator assigns (mean ± 95% CI over replicates; ✗ = fails)",
    meta=meta,
  )
  io_lib.write_json(
    os.path.join(workdir, "goodhart_full.json"),
    {
      "meta": meta,
      "rows": result.rows,
      "summary": result.summary,
      "acceptance": result.acceptance,
      "values": result.values,
      "extras": result.extras,
      "recipes": result.recipes,
    },
    indent=1,
  )
  md_sum = protocol.write_table(
    result.summary,
    os.path.join(workdir, "goodhart_summary"),
    title="Goodhart suite: per-estimator verdict",
    meta={"acceptance": result.acceptance},
  )
  return md + "\n\n" + md_sum


def run(config, workdir: str | None = None) -> GoodhartResult:
  """``metaval audit goodhart``: runs the suite, prints and writes the tables."""
  workdir = workdir or "runs/audit_goodhart"
  os.makedirs(workdir, exist_ok=True)
  result = goodhart_suite(config, workdir)
  print(write_outputs(result, workdir, config))
  verdict = ", ".join(f"{k}: {'PASS' if v else 'FAIL'}" for k, v in result.acceptance.items())
  print(f"[goodhart] acceptance ({verdict}); tables in {workdir}/goodhart*.md")
  return result
