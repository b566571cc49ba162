"""E6: memorization spot-check ROC AUC (members vs non-members) on the code corpus.

quick: ``membership:quick``; full: ``membership``.
"""

from metaval.jobs import audit_membership
from metaval.jobs.experiment import Result
from metaval.jobs.experiments._common import config

TITLE = "E6 memorization spot-check: ROC AUC of members vs non-members"
CLAIM = (
  "Tiny character LMs are trained with and without each contributor's standard-library "
  "files (complementary same-key pairs); prompts are prefixes of the files; the table "
  "gives ROC AUC (with a cluster-bootstrap interval) of each score for members vs non-members."
)


def run(mode: str, workdir: str) -> Result:
  cfg = config("membership", "quick" if mode == "quick" else None)
  out = audit_membership.run(cfg, workdir)
  return Result(
    rows=list(out["rows"]),
    notes=[
      f"{len(out['contributor_files'])} contributor files, base {out['base_windows']} windows, "
      f"{len(out['plan'])} LMs; training {out['seconds']['train']:.0f}s, "
      f"scoring {out['seconds']['score']:.0f}s."
    ],
  )
