"""``metaval value`` and ``metaval report``: the supplement, base and predictor a config names.

``facts_for_config`` loads the configured predictor and values the configured set:
a trained predictor (``metaval train``) values a raw file or a demo supplement
against its task; an empty ``predictor`` (or a ``metaval zeroshot-train`` folder)
hands the files to the zero-shot model (``metaval.zeroshot.files``).
"""

from __future__ import annotations

import json
import os

import numpy as np

from metaval.api import Predictor, load_predictor
from metaval.data import encode_set, read_set, samplers


def _config_task(config) -> str | None:
  """The task a ``value`` config names (``task.name``; a plain string in older configs)."""
  t = config.get("task")
  return (t if isinstance(t, str) or t is None else t.get("name")) or None


def demo_supplement(config, predictor: Predictor):
  """The supplement ``config.supplement`` describes, in the task's internal space.

  ``supplement.path`` names a raw set (``read_set``: ``.npz`` or ``.csv``), mapped
  with the task's transform; otherwise
  ``metaval.data.samplers.sample_supplement(kind, task, base_idx, rng, **params)``
  draws one of ``supplement.kind`` against the predictor's default base.

  Returns:
    ``((x, y), name)``: internal inputs and class ids, and a name for the report.
  """
  sc = config.supplement
  task, info = predictor._task(_config_task(config))
  if sc.path:
    x, y = read_set(sc.path, task)
    if y is None:  # code windows: package 0 unless given
      y = np.zeros(len(np.atleast_2d(x)), np.int64)
    return encode_set(task, x, y), os.path.basename(sc.path)
  base_idx = np.asarray(info["base_indices"], np.int64)
  rng = np.random.default_rng(sc.seed)
  params = dict(sc.params) if sc.params else {}
  if sc.size:
    params.setdefault("size", sc.size)
  supp = samplers.sample_supplement(sc.kind, task, base_idx, rng, **params)
  return (supp.x, supp.y), f"{sc.kind} ({json.dumps(params, sort_keys=True)})"


def facts_for_config(config):
  """Loads the predictor and values the configured supplement (and base, if a file)."""
  p = load_predictor(config.predictor or None)
  if not isinstance(p, Predictor):
    from metaval.zeroshot.files import facts_for_config as zero_shot

    return zero_shot(config, p)
  supp, name = demo_supplement(config, p)
  task_name = _config_task(config)
  base = None
  if "base" in config and config.base.path:
    task, _ = p._task(task_name)
    xb, yb = read_set(config.base.path, task, "base")
    base = encode_set(task, xb, np.zeros(len(xb), np.int64) if yb is None else yb, "base")
  facts = p.value(supp, base=base, task=task_name, inputs="internal")
  facts.name = name
  return facts
