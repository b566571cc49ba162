"""Label storage: deterministic shard files and the TFDS ``array_record`` dataset.

Layout of a label workdir (one sub-directory per base task, named by
``metaval.data.task_slug``: a built-in's name, or a file-safe form of ``csv:<path>``)::

  <workdir>/<task>/config.json             the generating config (fingerprint)
  <workdir>/<task>/shards/shard-00007.npz  one finished shard (written atomically)
  <workdir>/<task>/shards/shard-00007.npz.sha256  its checksum (``sha256sum`` format)
  <workdir>/<task>/tfds/metaval_labels/1.0.0/...  the TFDS dataset built from shards
  <workdir>/<task>/tfds_complete.json      the dataset's manifest: shard and file checksums

Shard files are zip archives of ``.npy`` arrays written with a fixed timestamp and
sorted member names, so the same shard content always gives the same bytes. The
TFDS dataset is built only from finished shards, in shard order, so a resumed run
writes the same dataset as an uninterrupted one.

Every file is verified before it is reused (``verify_shard``, ``verify_dataset``):
a damaged one is named in a one-line ``LabelError``; ``pipeline.generate``
deletes and relabels a damaged shard and rebuilds a damaged dataset.

One TFDS example is one (pair, learner) row. Pool points of S are stored as pool
indices only; synthetic S inputs (pool index -1) are stored in full.
"""

from __future__ import annotations

import contextlib
import glob
import io
import json
import os
import re
import shutil
import sys
import zipfile

import numpy as np

from metaval.data import LANGUAGE_MODEL, get_task, task_slug
from metaval.errors import message_line
from metaval.labeling import tfds_builder
from metaval.labeling.schema import LabelError, LabelSet
from metaval.util import io as io_lib

_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


# ----------------------------------------------------------------------------
# Shard files.


def shard_path(task_dir: str, shard: int) -> str:
  return os.path.join(task_dir, "shards", f"shard-{shard:05d}.npz")


def checksum_path(path: str) -> str:
  """The checksum file of a shard: ``<shard>.sha256``, one ``sha256sum`` line."""
  return f"{path}.sha256"


def write_shard(path: str, arrays: dict[str, np.ndarray]) -> None:
  """Writes ``arrays`` to ``path`` atomically (temp file, fsync, rename), byte-stable,
  then its checksum file."""
  with io_lib.atomic_write(path, "wb") as fh:
    with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED) as zf:
      for name in sorted(arrays):
        buf = io.BytesIO()
        np.lib.format.write_array(buf, np.asarray(arrays[name]), allow_pickle=False)
        zf.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_TIME), buf.getvalue())
  _write_checksum(path)


def _write_checksum(path: str) -> str:
  digest = io_lib.file_sha256(path)
  io_lib.write_text(checksum_path(path), f"{digest}  {os.path.basename(path)}\n")
  return digest


def _stored_checksum(path: str) -> str | None:
  """The checksum recorded for ``path``; None when there is none (or it is unreadable)."""
  try:
    with open(checksum_path(path)) as fh:
      digest = fh.read().split()[0]
  except (OSError, UnicodeDecodeError, IndexError):
    return None
  return digest if re.fullmatch(r"[0-9a-f]{64}", digest) else None


def verify_shard(path: str) -> str:
  """Checks a finished shard against its checksum; returns the checksum.

  A shard without a (readable) checksum file, e.g. one written just before a
  crash, is checked by its zip CRCs instead and its checksum is recorded.

  Raises:
    LabelError: the shard is damaged (one line naming the file).
  """
  expected = _stored_checksum(path)
  if expected is None:
    try:
      with zipfile.ZipFile(path) as zf:
        bad = zf.testzip()
    except (OSError, zipfile.BadZipFile, EOFError, ValueError) as e:
      raise LabelError(f"label shard {path} is damaged ({message_line(e)})") from None
    if bad is not None:
      raise LabelError(f"label shard {path} is damaged (member {bad} fails its CRC check)")
    return _write_checksum(path)
  actual = io_lib.file_sha256(path)
  if actual != expected:
    raise LabelError(
      f"label shard {path} is damaged (SHA-256 {actual[:12]}... differs from its "
      f"checksum {expected[:12]}...)"
    )
  return actual


def remove_shard(path: str) -> None:
  """Deletes a shard file and its checksum file."""
  for p in (path, checksum_path(path)):
    with contextlib.suppress(FileNotFoundError):
      os.remove(p)


def read_shard(path: str) -> dict[str, np.ndarray]:
  """The arrays of a shard file.

  Raises:
    LabelError: the file cannot be read as a shard (one line naming it).
  """
  try:
    with np.load(path, allow_pickle=False) as z:
      return {k: z[k] for k in z.files}
  except (OSError, zipfile.BadZipFile, EOFError, ValueError, KeyError) as e:
    raise LabelError(f"label shard {path} is damaged ({message_line(e)})") from None


# A finished shard file; temporary files in flight ("shard-00007.tmp-<pid>.npz") do not match.
_SHARD_FILE = re.compile(r"shard-(\d{5})\.npz")


def shard_files(shard_dir: str) -> list[str]:
  """The finished shard files in ``shard_dir``, in shard order."""
  names = [n for n in os.listdir(shard_dir) if _SHARD_FILE.fullmatch(n)]
  return [os.path.join(shard_dir, n) for n in sorted(names)]


def finished_shards(task_dir: str) -> set[int]:
  d = os.path.join(task_dir, "shards")
  if not os.path.isdir(d):
    return set()
  return {int(_SHARD_FILE.fullmatch(os.path.basename(p)).group(1)) for p in shard_files(d)}


def _split(flat: np.ndarray, offsets: np.ndarray) -> list[np.ndarray]:
  return [flat[offsets[i] : offsets[i + 1]] for i in range(len(offsets) - 1)]


def shard_rows(rec: dict[str, np.ndarray]):
  """Yields ``(key, example)`` for every (pair, learner) row of one shard record."""
  bases = _split(rec["base_flat"], rec["base_off"])
  supp_idx = _split(rec["supp_idx_flat"], rec["supp_off"])
  supp_y = _split(rec["supp_y_flat"], rec["supp_off"])
  synth = _split(rec["synth_x_flat"], rec["synth_off"])
  lm = str(rec["task_kind"]) == LANGUAGE_MODEL
  n_learners = len(rec["learner"])
  width = rec["synth_x_flat"].shape[1]
  imp = (rec["metric_full"] - rec["metric_base"]).astype(np.float64)  # [P, L, K, T]
  k = imp.shape[2]
  se = imp.std(2, ddof=1) / np.sqrt(k) if k > 1 else np.zeros_like(imp[:, :, 0])
  for p in range(len(rec["pair_id"])):
    sx = synth[p]
    empty_f = np.zeros((0, 0 if lm else width), np.float32)
    empty_i = np.zeros((0, width if lm else 0), np.int32)
    for li in range(n_learners):
      key = int(rec["pair_id"][p]) * n_learners + li
      yield (
        key,
        {
          "key": key,
          "pair_id": int(rec["pair_id"][p]),
          "shard": int(rec["shard"]),
          "task": str(rec["task"]),
          "task_seed": int(rec["task_seed"]),
          "task_options": str(rec.get("task_options", "{}")),  # absent in older shards
          "metric_names": json.dumps([str(m) for m in rec["metric_names"]]),
          "base_indices": bases[p].astype(np.int32),
          "supp_indices": supp_idx[p].astype(np.int32),
          "supp_y": supp_y[p].astype(np.int32),
          "synthetic_x": empty_f if lm else sx.astype(np.float32),
          "synthetic_tokens": sx.astype(np.int32) if lm else empty_i,
          "kind": str(rec["kind"][p]),
          "recipe": str(rec["recipe"][p]),
          "learner": str(rec["learner"][li]),
          "learner_params": int(rec["learner_params"][li]),
          "metric_base": rec["metric_base"][p, li].astype(np.float64),
          "metric_full": rec["metric_full"][p, li].astype(np.float64),
          "improvement": imp[p, li].mean(0),
          "improvement_se": se[p, li],
        },
      )


# ----------------------------------------------------------------------------
# The TFDS dataset.


def tfds_dir(task_dir: str) -> str:
  return os.path.join(task_dir, "tfds")


def build_dataset(task_dir: str, num_shards: int) -> None:
  """Builds the TFDS dataset from the ``num_shards`` finished shard files.

  A built dataset is reused only when its manifest lists the same shard
  checksums and every dataset file still has its recorded checksum; otherwise
  it is rebuilt (a damaged file is named on stderr). Several processes may
  generate into one workdir (shards are atomic renames of identical content);
  the build itself runs under an exclusive file lock, and a process that finds
  the dataset built while it waited does nothing.

  Raises:
    LabelError: a shard is damaged (``pipeline.generate`` heals shards first).
  """
  import fcntl

  with open(os.path.join(task_dir, "build.lock"), "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
      _build_locked(task_dir, num_shards)
    finally:
      fcntl.flock(lock, fcntl.LOCK_UN)


def _marker_path(task_dir: str) -> str:
  return os.path.join(task_dir, "tfds_complete.json")


def _read_manifest(task_dir: str) -> dict:
  """The dataset manifest (``tfds_complete.json``).

  Raises:
    LabelError: it is missing or damaged.
  """
  path = _marker_path(task_dir)
  try:
    with open(path) as fh:
      manifest = json.load(fh)
  except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
    raise LabelError(f"label dataset manifest {path} is damaged ({message_line(e)})") from None
  if not isinstance(manifest, dict):
    raise LabelError(f"label dataset manifest {path} is damaged (not a JSON object)")
  return manifest


def _dataset_files(task_dir: str) -> dict[str, str]:
  """Relative path -> SHA-256 of every file of the built TFDS dataset."""
  root = tfds_dir(task_dir)
  out = {}
  for p in sorted(glob.glob(os.path.join(root, "**", "*"), recursive=True)):
    if os.path.isfile(p):
      out[os.path.relpath(p, task_dir)] = io_lib.file_sha256(p)
  return out


def verify_dataset(task_dir: str) -> None:
  """Checks every file of a built label dataset against its manifest.

  Datasets built before manifests carried checksums are not checked.

  Raises:
    LabelError: the manifest or a dataset file is damaged or missing (one line
      naming the file and what to do).
  """
  manifest = _read_manifest(task_dir)
  redo = "rerun `metaval generate` with the same config and --workdir to rebuild it"
  for rel, expected in sorted(manifest.get("files", {}).items()):
    path = os.path.join(task_dir, rel)
    if not os.path.isfile(path):
      raise LabelError(f"label dataset file {path} is missing; {redo}")
    if io_lib.file_sha256(path) != expected:
      raise LabelError(f"label dataset file {path} is damaged (checksum mismatch); {redo}")


def _build_locked(task_dir: str, num_shards: int) -> None:
  shards = {
    os.path.basename(p): verify_shard(p) for p in shard_files(os.path.join(task_dir, "shards"))
  }
  if os.path.exists(_marker_path(task_dir)):
    try:
      manifest = _read_manifest(task_dir)
      if (
        manifest.get("num_shards") == num_shards
        and manifest.get("shards") == shards
        and manifest.get("files")
      ):
        verify_dataset(task_dir)
        return
    except LabelError as e:
      print(f"warning: {e}; rebuilding the dataset from its shards", file=sys.stderr)
  data_dir = tfds_dir(task_dir)
  # A previous build may have been interrupted; TFDS's own temp dirs are stale.
  shutil.rmtree(data_dir, ignore_errors=True)
  shard_dir = os.path.join(task_dir, "shards")
  tfds_builder.prepare(
    data_dir, lambda: (row for p in shard_files(shard_dir) for row in shard_rows(read_shard(p)))
  )
  io_lib.write_json(
    _marker_path(task_dir),
    {"num_shards": num_shards, "shards": shards, "files": _dataset_files(task_dir)},
    indent=1,
  )


def task_dirs(workdir: str) -> dict[str, str]:
  """Task name -> task dir for every built label dataset under ``workdir``."""
  out = {}
  for marker in sorted(glob.glob(os.path.join(workdir, "*", "tfds_complete.json"))):
    d = os.path.dirname(marker)
    out[os.path.basename(d)] = d
  return out


def load_task_dir(task_dir: str) -> LabelSet:
  """Reads one task's TFDS dataset with ``as_data_source`` into a ``LabelSet``.

  Raises:
    LabelError: a dataset file is damaged (``verify_dataset``) or the set is empty.
  """
  import tensorflow_datasets as tfds

  verify_dataset(task_dir)
  tfds_builder.builder_class()  # registers the builder name with TFDS
  builder = tfds.builder(tfds_builder.BUILDER_NAME, data_dir=tfds_dir(task_dir))
  src = builder.as_data_source()["train"]
  rows = sorted((src[i] for i in range(len(src))), key=lambda r: int(r["key"]))
  if not rows:
    raise LabelError(f"label dataset in {task_dir!r} is empty")
  dec = lambda v: v.decode() if isinstance(v, bytes) else str(v)  # noqa: E731
  task_name, task_seed = dec(rows[0]["task"]), int(rows[0]["task_seed"])
  # Datasets built before task options were stored decode them as None (built-in tasks).
  stored = rows[0].get("task_options")
  options = json.loads(dec(stored)) if stored else {}
  task = get_task(task_name, seed=task_seed, **options)
  lm = task.kind == LANGUAGE_MODEL
  supp_x = []
  for r in rows:
    idx = np.asarray(r["supp_indices"], np.int32)
    synth = np.asarray(r["synthetic_tokens"] if lm else r["synthetic_x"])
    x = np.zeros((idx.size, *task.x.shape[1:]), task.x.dtype)
    x[idx >= 0] = task.x[idx[idx >= 0]]
    x[idx < 0] = synth.reshape(-1, *task.x.shape[1:])
    supp_x.append(x)
  return LabelSet(
    task=task_name,
    task_seed=task_seed,
    metric_names=json.loads(dec(rows[0]["metric_names"])),
    base_indices=[np.asarray(r["base_indices"], np.int32) for r in rows],
    supp_indices=[np.asarray(r["supp_indices"], np.int32) for r in rows],
    supp_x=supp_x,
    supp_y=[np.asarray(r["supp_y"], np.int32) for r in rows],
    kind=np.array([dec(r["kind"]) for r in rows]),
    recipe=np.array([dec(r["recipe"]) for r in rows]),
    learner=np.array([dec(r["learner"]) for r in rows]),
    learner_params=np.array([int(r["learner_params"]) for r in rows], np.int64),
    metric_base=np.stack([np.asarray(r["metric_base"], np.float64) for r in rows]),
    metric_full=np.stack([np.asarray(r["metric_full"], np.float64) for r in rows]),
    pair_id=np.array([int(r["pair_id"]) for r in rows], np.int64),
    shard=np.array([int(r["shard"]) for r in rows], np.int32),
    task_options=options,
  )


def load_labels(workdir: str, task: str | None = None) -> LabelSet:
  """Loads the label set generated in ``workdir`` (via TFDS ``as_data_source``).

  Args:
    workdir: the directory given to ``metaval generate`` / ``generate``.
    task: which base task, needed only when the workdir holds several.

  Returns:
    The ``LabelSet`` (rows sorted by pair id, then learner).

  Raises:
    LabelError: no finished dataset, or several tasks and none chosen.
  """
  dirs = task_dirs(workdir)
  if not dirs:
    raise LabelError(f"no finished label dataset under {workdir!r}; run `metaval generate`")
  if task is None:
    if len(dirs) > 1:
      raise LabelError(
        f"{workdir!r} holds labels for several tasks ({', '.join(dirs)}); pass task=..."
      )
    task = next(iter(dirs))
  task = task if task in dirs else task_slug(task)  # a task's directory is its slug
  if task not in dirs:
    raise LabelError(f"no labels for task {task!r} in {workdir!r}; found {', '.join(dirs)}")
  return load_task_dir(dirs[task])


def load_label_suite(workdir: str) -> dict[str, LabelSet]:
  """Every task's label set in ``workdir`` (multi-task configs such as ``suite``)."""
  dirs = task_dirs(workdir)
  if not dirs:
    raise LabelError(f"no finished label dataset under {workdir!r}; run `metaval generate`")
  return {t: load_task_dir(d) for t, d in dirs.items()}
