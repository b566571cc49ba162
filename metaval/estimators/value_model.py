"""The value model: a trained predictor queried through ``metaval.api``."""

from __future__ import annotations

import numpy as np

from metaval import pairs as pairs_lib
from metaval.data.tasks import Task
from metaval.estimators.base import Estimate, Estimator, EstimatorError, Timer
from metaval.learners.models import LearnerSpec


class ValueModel(Estimator):
  """The predictor's value of S given B, with its own interval.

  Loaded with ``metaval.api.load_predictor(path)`` (load time reported apart in
  ``info["load_s"]``; ``seconds`` is query time). The learner is passed as a
  descriptor only when it differs from the learner the predictor's labels used
  for the task (``info["learner_matches_training"]``).

  Args:
    path: the trained predictor's folder.
    name: row name.
  """

  def __init__(self, path: str, *, name: str = "predictor"):
    self.path, self.name = str(path), name

  def estimate(self, task: Task, pairs, spec: LearnerSpec, metric: str) -> Estimate:
    from metaval.api import load_predictor  # inference stack, loaded only when used

    pairs = pairs_lib.as_pairs(pairs)
    with Timer() as t_load:
      p = load_predictor(self.path)
    if metric not in p.targets:
      raise EstimatorError(
        f"the predictor at {self.path!r} does not predict {metric!r}; it has {p.targets}"
      )
    info = p.tasks.get(task.name)
    if info is None:
      raise EstimatorError(f"the predictor at {self.path!r} does not know task {task.name!r}")
    # Label JSON may carry extra keys ("name", "params"): compare the spec's own fields.
    fields = set(spec.to_dict())
    default = {k: v for k, v in dict(info.get("learner", {})).items() if k in fields}
    matches = default == spec.to_dict()
    learner = None if matches else spec.to_dict()
    vals, lows, highs = [], [], []
    with Timer() as t:
      for i in range(len(pairs)):
        s = pairs.supplement(i)
        facts = p.value(
          (s.x, s.y), base=pairs.base(i), learner=learner, task=task.name, inputs="internal"
        )
        target = next(x for x in facts.targets if x.metric == metric)
        vals.append(target.value)
        lows.append(target.low)
        highs.append(target.high)
    return Estimate(
      self.name,
      np.asarray(vals),
      t.seconds,
      0.0,
      low=np.asarray(lows),
      high=np.asarray(highs),
      info={"load_s": t_load.seconds, "learner_matches_training": bool(matches)},
    )
