"""``metaval value``: value a supplemental set with a trained predictor.

A thin job: ``metaval.configured.facts_for_config`` values the configured supplement (a raw
file, or a demo supplement); this prints the Nutrition Facts and writes them as JSON.
"""

from __future__ import annotations

import os

from metaval.configured import facts_for_config


def run(config, workdir: str):
  """Runs ``metaval value``.

  Args:
    config: a ``value`` config (default ``value:quick``).
    workdir: where ``facts.json`` goes (nothing is written if empty).

  Returns:
    The Nutrition Facts of the supplement.
  """
  facts = facts_for_config(config)
  print(facts.text())
  if workdir:
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, "facts.json")
    facts.write_json(path)
    print(f"wrote {path}")
  return facts
