"""What a trained predictor is on disk: orbax checkpoints and ``predictor.json``.

``checkpoints/best`` holds the best model so far, ``checkpoints/latest`` the latest
full training state (model, optimiser, epoch, early-stopping counters) so an
interrupted run resumes; ``predictor.json`` holds everything a prediction needs
besides the weights (targets, model shape, standardisation, calibration, each
task's default base and learner) and the SHA-256 of every file of the best
checkpoint. ``load_meta`` and ``restore_model`` check both before use, so a
damaged predictor is refused in one line that names the file and what to do.
"""

from __future__ import annotations

import collections
import glob
import json
import os

import numpy as np
import orbax.checkpoint as ocp
from flax import nnx

from metaval.errors import message_line
from metaval.predictor.data import PredictorError
from metaval.predictor.model import ModelConfig, ValueModel
from metaval.util import io

META_FILE = "predictor.json"
# Keys a prediction reads from ``predictor.json``.
_META_KEYS = ("targets", "model", "features", "normalizer", "calibration", "coverage", "tasks")


def _fix_hint(workdir: str) -> str:
  return (
    f"retrain it (`metaval train --workdir {workdir}` with its config) "
    "or restore the directory from a copy"
  )


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
    try:
      restored = self.latest.restore(
        step,
        args=ocp.args.Composite(
          model=ocp.args.StandardRestore(nnx.state(model)),
          opt=ocp.args.StandardRestore(nnx.state(optimizer)),
          meta=ocp.args.JsonRestore(),
        ),
      )
    except Exception as e:  # noqa: BLE001  (TensorStore raises bare Exception on damaged data)
      d = self.latest.directory
      raise PredictorError(
        f"cannot resume from the training checkpoint {d} ({type(e).__name__}: "
        f"{message_line(e)}); delete that directory to train from the start"
      ) from e
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


def _best_dir(workdir: str) -> str:
  return os.path.join(os.path.abspath(workdir), "checkpoints", "best")


def checkpoint_checksums(workdir: str) -> dict[str, str]:
  """Path relative to ``workdir`` -> SHA-256 of every file of the best checkpoint."""
  root = os.path.abspath(workdir)
  files = sorted(glob.glob(os.path.join(_best_dir(workdir), "**", "*"), recursive=True))
  return {os.path.relpath(p, root): io.file_sha256(p) for p in files if os.path.isfile(p)}


def verify_checkpoint(workdir: str, checksums: dict[str, str]) -> None:
  """Checks the best checkpoint's files against the checksums ``predictor.json`` records.

  Args:
    workdir: the predictor's directory.
    checksums: path relative to ``workdir`` -> SHA-256 (``checkpoint_checksums``).

  Raises:
    PredictorError: a file is missing or damaged (one line: the path and what to do).
  """
  for rel, expected in sorted(checksums.items()):
    path = os.path.join(os.path.abspath(workdir), rel)
    if not os.path.isfile(path):
      raise PredictorError(f"predictor checkpoint file {path} is missing; {_fix_hint(workdir)}")
    if io.file_sha256(path) != expected:
      raise PredictorError(
        f"predictor checkpoint file {path} is damaged (checksum mismatch); {_fix_hint(workdir)}"
      )


def restore_model(workdir: str, cfg: ModelConfig, checksums: dict | None = None) -> ValueModel:
  """The best checkpoint of ``workdir`` restored into a fresh ``ValueModel``.

  Args:
    workdir: the predictor's (or training run's) directory.
    cfg: the model's shape.
    checksums: if given, the checkpoint is verified against them first
      (``verify_checkpoint``; ``load_meta(workdir)["checkpoint"]``).

  Returns:
    The model.

  Raises:
    PredictorError: no checkpoint, or a damaged one (one line).
  """
  path = _best_dir(workdir)
  if not os.path.isdir(path):
    raise PredictorError(f"no trained predictor checkpoint under {path!r}")
  if checksums:
    verify_checkpoint(workdir, checksums)
  mngr = ocp.CheckpointManager(path)
  step = mngr.latest_step()
  if step is None:
    raise PredictorError(f"no trained predictor checkpoint under {path!r}")
  abstract = _abstract_model(cfg)
  graphdef, abstract_state = nnx.split(abstract)
  try:
    restored = mngr.restore(
      step, args=ocp.args.Composite(model=ocp.args.StandardRestore(abstract_state))
    )
  except Exception as e:  # noqa: BLE001  (TensorStore raises bare Exception on damaged data)
    # The cause keeps the full TensorStore report; the user sees one line.
    raise PredictorError(
      f"cannot restore the predictor checkpoint {path} ({type(e).__name__}: {message_line(e)}); "
      f"{_fix_hint(workdir)}"
    ) from e
  finally:
    mngr.close()
  return nnx.merge(graphdef, restored["model"])


def load_meta(workdir: str) -> dict:
  """Reads and checks ``predictor.json`` (everything a prediction needs but the weights).

  Args:
    workdir: the predictor's directory.

  Returns:
    The metadata dict; its ``"checkpoint"`` entry (absent in predictors saved
    before checksums were recorded) holds the checkpoint's file checksums.

  Raises:
    PredictorError: the file is unreadable, not JSON, or lacks a required key.
  """
  path = os.path.join(workdir, META_FILE)
  try:
    with open(path, encoding="utf-8") as fh:
      meta = json.load(fh)
  except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
    raise PredictorError(f"{path} is damaged ({message_line(e)}); {_fix_hint(workdir)}") from None
  missing = [k for k in _META_KEYS if not isinstance(meta, dict) or k not in meta]
  if missing:
    raise PredictorError(f"{path} is damaged (missing {', '.join(missing)}); {_fix_hint(workdir)}")
  return meta


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
    # The best checkpoint is final here (the managers are closed): record its files.
    "checkpoint": checkpoint_checksums(workdir),
  }
  io.write_text(os.path.join(workdir, META_FILE), json.dumps(meta, indent=1))
  return meta
