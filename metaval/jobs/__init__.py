"""The command-line jobs: one module per ``metaval`` command, each a ``run(config, workdir)``.

:data:`COMMANDS` maps a command to its job module (``metaval.jobs.<module>``), its
default config and its help line. ``metaval.cli`` only parses arguments and
dispatches here; a job module is imported only when its command runs, so
``metaval --help`` starts fast. ``metaval experiment`` (:mod:`metaval.jobs.experiment`)
takes an experiment name and a mode instead of a config.
"""

from __future__ import annotations

import dataclasses
import importlib


@dataclasses.dataclass(frozen=True)
class Job:
  """One command.

  Attributes:
    module: the job module's name inside ``metaval.jobs``.
    default_config: the packaged config used without ``--config``.
    help: one line for ``metaval --help``.
  """

  module: str
  default_config: str
  help: str

  def load(self):
    """Imports the job module; returns its ``run(config, workdir)``."""
    return importlib.import_module(f"{__name__}.{self.module}").run


# A command may have named sub-commands ("metaval audit goodhart"): then its value is a
# dict of those.
COMMANDS: dict[str, Job | dict[str, Job]] = {
  "fit": Job(
    "fit", "fit:quick", "train a batch of learners on random subsets and report their metrics"
  ),
  "generate": Job(
    "generate", "labels:quick", "generate (base, supplement) improvement labels as a TFDS dataset"
  ),
  "labels": Job(
    "labels", "labels:quick", "label quality: repeatability and improvement per supplement kind"
  ),
  "prior": Job(
    "prior", "prior:quick", "label a prior of generated tasks (for a zero-shot value model)"
  ),
  "train": Job(
    "train", "predictor:quick", "train the set-encoder value predictor on generated labels"
  ),
  "evaluate": Job(
    "evaluate", "predictor:quick", "score the predictor on held-out splits against baselines"
  ),
  "value": Job("value", "value:quick", "value a supplemental set with a trained predictor"),
  "zeroshot-train": Job(
    "zeroshot_train",
    "zeroshot:quick",
    "label a prior of generated tasks and train the zero-shot value model",
  ),
  "report": Job("report", "value:quick", "write a Nutrition Facts label (JSON, HTML, PNG)"),
  "baselines": Job(
    "baselines",
    "baselines:quick",
    "per-point valuation baselines (LOO, Shapley, Banzhaf, KNN, OOB)",
  ),
  "ablate": Job("ablate", "ablation:quick", "small-model ablations across a size ladder"),
  "untrain": Job("untrain", "untrain:quick", "value subsets by gradient-ascent untraining"),
  "attribute": Job(
    "attribute", "attribution:quick", "split a gain among contributors and write a royalty ledger"
  ),
  "audit": {
    "membership": Job(
      "audit_membership",
      "membership:quick",
      "memorization spot-check: members vs non-members ROC AUC",
    ),
    "goodhart": Job("audit_goodhart", "goodhart:quick", "gaming attacks valued by every estimator"),
  },
}

# ``metaval experiment <name>`` takes a name and a mode, not a config: its own entry.
EXPERIMENT_HELP = "regenerate one results table: metaval experiment <name>"
