"""Value a supplemental set with a trained predictor and print its Nutrition Facts.

Commands (a few seconds on 2 CPU cores once the predictor is trained with
``metaval train --config predictor:quick --workdir runs/predictor_quick``):
  metaval value --config value:quick --workdir runs/value
  metaval report --config value:quick --workdir runs/report

``supplement.path`` values your own set: an ``.npz`` with ``x [n, d]`` and ``y [n]``;
otherwise a demo supplement of ``supplement.kind`` is drawn against the predictor's
default base with ``metaval.data.samplers.sample_supplement``.

Expected result: a clean demo supplement gets a positive test/accuracy value with
an interval; a ``label_noise`` one a negative value and a label-noise warning.
"""

import ml_collections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  cfg = ml_collections.ConfigDict()
  cfg.predictor = "runs/predictor"
  cfg.task = ""  # empty: the predictor's only task
  cfg.supplement = ml_collections.ConfigDict(
    {"path": "", "kind": "clean", "size": 100, "seed": 0, "params": ml_collections.ConfigDict()}
  )
  if arg == "quick":
    cfg.predictor = "runs/predictor_quick"
  elif arg is not None:
    raise ValueError(f"unknown variant {arg!r}; use quick")
  return cfg
