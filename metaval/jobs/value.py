"""``metaval value``: value a supplemental set with a trained predictor.

A thin job: ``metaval.configured.facts_for_config`` values the configured supplement (a raw
file, or a demo supplement); this prints the Nutrition Facts and writes them as JSON.
"""

from __future__ import annotations

import os

from metaval.configured import facts_for_config
from metaval.util.io import write_json


def run(config, workdir: str):
  """Runs ``metaval value``.

  Args:
    config: a ``value`` config (default ``value:quick``).
    workdir: where ``facts.json`` goes (``ranking.json`` for several supplement files,
      best first); nothing is written if empty.

  Returns:
    The Nutrition Facts of the supplement (a list, best first, for several files).
  """
  facts = facts_for_config(config)
  ranked = isinstance(facts, list)  # several supplement files, ranked by the zero-shot model
  for f in facts if ranked else [facts]:
    print(f.text())
  if ranked:
    from metaval.zeroshot.files import ranking_text

    print(ranking_text(facts))
  if workdir:
    os.makedirs(workdir, exist_ok=True)
    if ranked:
      path = write_json(os.path.join(workdir, "ranking.json"), [f.to_dict() for f in facts])
    else:
      path = facts.write_json(os.path.join(workdir, "facts.json"))
    print(f"wrote {path}")
  return facts
