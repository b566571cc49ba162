"""E7: fair attribution among standard-library packages and the royalty ledger.

quick: ``attribution:quick`` (digits contributors); full:
``attribution`` (contributors = standard-library packages, plus a copier).
"""

import os

from metaval.jobs import attribute as attribution_job
from metaval.jobs.experiment import Result
from metaval.jobs.experiments._common import config, read
from metaval.valuation import royalties

TITLE = "E7 fair attribution and royalties on the code corpus"
CLAIM = (
  "A retraining gain is split among contributors (standard-library packages) with exact "
  "Shapley and Banzhaf over all coalitions; a contributor who submits a copy of another's "
  "files is valued with and without the copy policy; the royalty ledger pays the pool "
  "exactly in proportion to the Shapley shares."
)


def run(mode: str, workdir: str) -> Result:
  cfg = config("attribution", "quick" if mode == "quick" else None)
  out = attribution_job.run(cfg, workdir)
  ledger = royalties.load_ledger(os.path.join(workdir, "royalties.json"))
  royalties.verify_ledger(ledger)  # raises if payments do not add up or the hash is off
  notes = [
    f"Ledger sha256 {ledger['sha256'][:16]}…: pool {ledger['pool']} "
    f"{ledger['inputs']['currency']}, distributed {ledger['distributed']}, "
    f"undistributed {ledger['undistributed']}.",
  ]
  for pol, t in out["timing"].items():
    notes.append(
      f"{pol}: {t['models_trained']} models for {t['coalitions']} coalitions in "
      f"{t['seconds']:.0f}s."
    )
  return Result(
    rows=[],
    notes=notes,
    markdown=read(os.path.join(workdir, "attribution.md"))
    + "\n```\n"
    + royalties.format_ledger(ledger)
    + "\n```\n",
  )
