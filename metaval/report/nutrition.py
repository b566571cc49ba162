"""``metaval report``: the Nutrition Facts of a supplement as JSON, HTML and PNG.

The data type lives in ``metaval.report.facts`` and the drawing in
``metaval.report.render``; this module writes all three files for a configured
supplement (the packaged ``value`` config). ``NutritionFacts`` and ``TargetValue`` are
re-exported here for existing imports.
"""

from __future__ import annotations

import os

from metaval.configured import facts_for_config
from metaval.report.facts import NutritionFacts, ReportError, TargetValue

__all__ = ["NutritionFacts", "ReportError", "TargetValue", "run", "write_all"]


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
  facts = facts_for_config(config)
  if isinstance(facts, list):
    raise ReportError(
      "metaval report draws one supplement's label; rank several with metaval value"
    )
  print(facts.text())
  paths = write_all(facts, workdir)
  for kind, p in paths.items():
    print(f"wrote {kind}: {p}")
  return facts
