"""What a trained predictor is on disk: orbax checkpoints and ``predictor.json``.

``checkpoints/best`` holds the best model so far, ``checkpoints/latest`` the latest
full training state (model, optimiser, epoch, early-stopping counters) so an
interrupted run resumes; ``predictor.json`` holds everything a prediction needs
besides the weights (targets, model shape, standardisation, calibration, each
task's default base and learner).
"""

from __future__ import annotations

import collections
import json
import os

import numpy as np
import orbax.checkpoint as ocp
from flax import nnx

from metaval.predictor.data import PredictorError
from metaval.predictor.model import ModelConfig, ValueModel
from metaval.util import io

META_FILE = "predictor.json"


def model_config(config, num_targets: int) -> ModelConfig:
  """The ``ModelConfig`` of a predictor config's ``model`` block."""
  m = config.model
  return ModelConfig(
    encoder=m.encoder,
    width=m.width,
    layers=m.layers,
    heads=m.heads,
    num_inducing=m.num_inducing,
    cross_attention=m.cross_attention,
    num_targets=num_targets,
    use_learner=m.use_learner,
  )


def _abstract_model(cfg: ModelConfig):
  return nnx.eval_shape(lambda: ValueModel(cfg, rngs=nnx.Rngs(0)))


class TrainingCheckpoints:
  """The two orbax managers of a training run: ``latest`` (full state) and ``best`` (model)."""

  def __init__(self, workdir: str):
    ck = os.path.join(os.path.abspath(workdir), "checkpoints")
    opts = ocp.CheckpointManagerOptions(max_to_keep=1)
    self.latest = ocp.CheckpointManager(os.path.join(ck, "latest"), options=opts)
    self.best = ocp.CheckpointManager(os.path.join(ck, "best"), options=opts)

  def restore_latest(self, model, optimizer) -> dict | None:
    """Loads the latest state into ``model`` and ``optimizer``; returns its meta (None: none)."""
    step = self.latest.latest_step()
    if step is None:
      return None
    restored = self.latest.restore(
      step,
      args=ocp.args.Composite(
        model=ocp.args.StandardRestore(nnx.state(model)),
        opt=ocp.args.StandardRestore(nnx.state(optimizer)),
        meta=ocp.args.JsonRestore(),
      ),
    )
    nnx.update(model, restored["model"])
    nnx.update(optimizer, restored["opt"])
    return dict(restored["meta"])

  def save_latest(self, step: int, model, optimizer, meta: dict) -> None:
    self.latest.save(
      step,
      args=ocp.args.Composite(
        model=ocp.args.StandardSave(nnx.state(model)),
        opt=ocp.args.StandardSave(nnx.state(optimizer)),
        meta=ocp.args.JsonSave(meta),
      ),
      force=True,
    )

  def save_best(self, step: int, model) -> None:
    self.best.save(
      step, args=ocp.args.Composite(model=ocp.args.StandardSave(nnx.state(model))), force=True
    )

  def close(self) -> None:
    """Waits for pending (asynchronous) saves and closes both managers."""
    for m in (self.latest, self.best):
      m.wait_until_finished()
    for m in (self.latest, self.best):
      m.close()


def restore_model(workdir: str, cfg: ModelConfig) -> ValueModel:
  """The best checkpoint of ``workdir`` restored into a fresh ``ValueModel``."""
  path = os.path.join(os.path.abspath(workdir), "checkpoints", "best")
  if not os.path.isdir(path):
    raise PredictorError(f"no trained predictor checkpoint under {path!r}")
  mngr = ocp.CheckpointManager(path)
  step = mngr.latest_step()
  if step is None:
    raise PredictorError(f"no trained predictor checkpoint under {path!r}")
  abstract = _abstract_model(cfg)
  graphdef, abstract_state = nnx.split(abstract)
  restored = mngr.restore(
    step, args=ocp.args.Composite(model=ocp.args.StandardRestore(abstract_state))
  )
  mngr.close()
  return nnx.merge(graphdef, restored["model"])


def task_defaults(label_sets, targets) -> dict:
  """Per task: a default base (the most common B), learner and mean base metric."""
  out = {}
  for ls in label_sets:
    entry = out.setdefault(
      ls.task,
      # options: what rebuilds a csv:/npz:/tfds: task (``api`` calls get_task with them).
      {"seed": ls.task_seed, "options": dict(ls.task_options), "learners": collections.Counter()},
    )
    entry["learners"].update(str(x) for x in ls.learner)
    if "base_indices" not in entry:
      counts = collections.Counter(tuple(np.asarray(b).tolist()) for b in ls.base_indices)
      entry["base_indices"] = list(counts.most_common(1)[0][0])
    ti = [ls.metric_index(m) for m in targets]
    entry.setdefault("base_metric", []).append(ls.metric_base.mean((0, 1))[ti])
    entry.setdefault("params", {}).update(
      {str(lj): int(p) for lj, p in zip(ls.learner, ls.learner_params)}
    )
    # Every learner seen in training, by name: ``api`` accepts ``learner="name"``.
    for lj in set(map(str, ls.learner)):
      spec = json.loads(lj)
      if spec.get("name"):
        entry.setdefault("named_learners", {})[str(spec["name"])] = spec
  for entry in out.values():
    lj = entry.pop("learners").most_common(1)[0][0]
    entry["learner"] = json.loads(lj)
    entry["learner_params"] = entry["params"][lj]
    entry["max_learner_params"] = max(entry.pop("params").values())
    entry["base_metric"] = np.mean(entry["base_metric"], 0).tolist()
  return out


def save_meta(workdir, config, targets, norm, calib, defaults, extra=None):
  meta = {
    "version": 1,
    "targets": list(targets),
    "model": model_config(config, len(targets)).to_dict(),
    "features": {
      "max_s": config.features.max_s,
      "max_b": config.features.max_b,
      "proxies": bool(config.features.get("proxies", True)),
    },
    "normalizer": norm.to_dict(),
    "calibration": np.asarray(calib).tolist(),
    "coverage": float(config.interval),
    "tasks": defaults,
    "extra": extra or {},
  }
  io.write_text(os.path.join(workdir, META_FILE), json.dumps(meta, indent=1))
  return meta
