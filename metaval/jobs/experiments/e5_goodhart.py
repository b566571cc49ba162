"""E5: the Goodhart suite across estimators.

quick: ``goodhart:quick``; full: ``goodhart`` (10 replicates,
TMC-Shapley included). The predictor is trained (once) inside the workdir.
"""

from metaval.audit import goodhart
from metaval.jobs.experiment import Result
from metaval.jobs.experiments._common import config

TITLE = "E5 Goodhart suite: what each estimator pays for gaming attacks"
CLAIM = (
  "Random bits, constant 'couch' inputs, flipped labels, copies of B or of another "
  "contributor, label noise, (adversarial) near-duplicates and a good core padded with "
  "junk are valued by every estimator next to a genuine clean set of the same size. "
  "Acceptance: retraining labels and the predictor value every attack below the genuine "
  "set and pure junk at or below zero within its interval."
)


def run(mode: str, workdir: str) -> Result:
  cfg = config("goodhart", "quick" if mode == "quick" else None)
  result = goodhart.run(cfg, workdir)
  notes = [
    f"acceptance — {est}: {'PASS' if ok else 'FAIL'}" for est, ok in result.acceptance.items()
  ]
  return Result(
    rows=goodhart.value_table(result),
    extra_tables={"Per-estimator verdict": result.summary},
    notes=notes,
  )
