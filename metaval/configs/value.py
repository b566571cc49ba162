"""Value a supplemental set with a trained predictor and print its Nutrition Facts.

Commands (a few seconds on 2 CPU cores once the predictor is trained with
``metaval train --config predictor:quick --workdir runs/predictor_quick``):
  metaval value --config value:quick --workdir runs/value
  metaval report --config value:quick --workdir runs/report

``supplement.path`` values your own set, in the task's raw input space (as in the
task's own data; ``docs/data.md``): an ``.npz`` with ``x [n, ...]`` and ``y [n]``, or
for a ``csv:`` task a ``.csv`` with the task's columns. Otherwise a demo supplement
of ``supplement.kind`` is drawn against the predictor's default base with
``metaval.data.samplers.sample_supplement``. ``base.path`` (same formats) replaces
the predictor's default base. ``task.name`` chooses among the predictor's tasks
(empty: its only one); the task is rebuilt with the options stored at training.

Expected result: a clean demo supplement gets a positive test/accuracy value with
an interval; a ``label_noise`` one a negative value and a label-noise warning.

``value:zeroshot`` needs no trained predictor: the zero-shot model shipped in the
package values ``supplement.path`` against ``base.path`` (or a built-in
``task.name``), measured on ``eval.path`` when given (``metaval.zeroshot.files``;
``.npz`` with ``x``, ``y`` or ``.csv`` with a ``task.label`` column), in about a
second::

  metaval value --config value:zeroshot --config.base.path=b.csv \\
    --config.supplement.path=s.csv --config.eval.path=t.csv --config.task.label=target

Several supplement files separated by commas (``supplement.path=a.csv,b.csv``) or
named by a pattern (``'candidates/*.csv'``) are ranked against each other;
``metaval value`` then writes ``ranking.json``.
"""

import ml_collections

from metaval.config_defaults import task_config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  cfg = ml_collections.ConfigDict()
  cfg.predictor = "runs/predictor"
  cfg.task = task_config("")  # empty name: the predictor's only task
  cfg.supplement = ml_collections.ConfigDict(
    {"path": "", "kind": "clean", "size": 100, "seed": 0, "params": ml_collections.ConfigDict()}
  )
  cfg.base = ml_collections.ConfigDict({"path": ""})  # empty: the predictor's default base
  if arg == "quick":
    cfg.predictor = "runs/predictor_quick"
  elif arg == "zeroshot":
    cfg.predictor = ""  # the zero-shot model shipped in the package (or its folder)
    cfg.eval = ml_collections.ConfigDict({"path": ""})  # empty: x_test in B's .npz, or 1/4 of B
    cfg.learner = ""  # "linear", "mlp<width>[x<depth>]"; empty: mlp32
  elif arg is not None:
    raise ValueError(f"unknown variant {arg!r}; use quick or zeroshot")
  return cfg
