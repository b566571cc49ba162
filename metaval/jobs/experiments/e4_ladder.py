"""E4: does a small model's ranking of supplements agree with a larger one's?

quick: ``ablation:quick``; full: ``ablation`` (MLP ladder on
digits and the tiny-LM ladder on the code corpus).
"""

import os

from metaval.jobs.experiment import Result
from metaval.jobs.experiments._common import config, read
from metaval.valuation import ablation

TITLE = "E4 scaling ladder: rank correlation and decision accuracy across sizes"
CLAIM = (
  "The same (B, S) pairs are labelled by every size of a learner family; the tables "
  "give Spearman correlation between sizes, how often a smaller size picks the same "
  "better supplement of a pair as the largest, and a scaling extrapolation."
)


def run(mode: str, workdir: str) -> Result:
  cfg = config("ablation", "quick" if mode == "quick" else None)
  summary = ablation.run(cfg, workdir)
  rows = []
  for fam, s in summary.items():
    largest = len(s["names"]) - 1
    for i, name in enumerate(s["names"]):
      rows.append(
        {
          "family": fam,
          "size": name,
          "params": s["params"][i],
          "spearman_vs_largest": s["spearman"][i][largest],
          "decision_acc_vs_largest": s["decision_acc"][i],
          "pairs": s["num_pairs"],
        }
      )
  notes = []
  for fam, s in summary.items():
    ex = s.get("extrapolation", {})
    if "per_pair_spearman" in ex:
      notes.append(
        f"{fam}: extrapolating smaller sizes to {s['names'][-1]} gives per-pair Spearman "
        f"{ex['per_pair_spearman']:.3f} vs {ex['next_smaller_spearman']:.3f} for the next "
        f"smaller size used as is."
      )
  md = read(os.path.join(workdir, "ablation.md"))
  return Result(rows=rows, notes=notes, plots=[os.path.join(workdir, "ablation.png")], markdown=md)
