"""Label storage: deterministic shard files and the TFDS ``array_record`` dataset.

Layout of a label workdir (one sub-directory per base task, named by
``metaval.data.task_slug``: a built-in's name, or a file-safe form of ``csv:<path>``)::

  <workdir>/<task>/config.json             the generating config (fingerprint)
  <workdir>/<task>/shards/shard-00007.npz  one finished shard (written atomically)
  <workdir>/<task>/tfds/metaval_labels/1.0.0/...  the TFDS dataset built from shards

Shard files are zip archives of ``.npy`` arrays written with a fixed timestamp and
sorted member names, so the same shard content always gives the same bytes. The
TFDS dataset is built only from finished shards, in shard order, so a resumed run
writes the same dataset as an uninterrupted one.

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
import zipfile

import numpy as np

from metaval.data import LANGUAGE_MODEL, get_task, task_slug
from metaval.labeling.schema import LabelError, LabelSet
from metaval.util import io as io_lib

BUILDER_NAME = "metaval_labels"
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


# ----------------------------------------------------------------------------
# Shard files.


def shard_path(task_dir: str, shard: int) -> str:
  return os.path.join(task_dir, "shards", f"shard-{shard:05d}.npz")


def write_shard(path: str, arrays: dict[str, np.ndarray]) -> None:
  """Writes ``arrays`` to ``path`` atomically (temp file, fsync, rename), byte-stable."""
  with io_lib.atomic_write(path, "wb") as fh:
    with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED) as zf:
      for name in sorted(arrays):
        buf = io.BytesIO()
        np.lib.format.write_array(buf, np.asarray(arrays[name]), allow_pickle=False)
        zf.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_TIME), buf.getvalue())


def read_shard(path: str) -> dict[str, np.ndarray]:
  with np.load(path, allow_pickle=False) as z:
    return {k: z[k] for k in z.files}


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
# TFDS builder.


def _builder_class():
  """Defines (once) and returns the TFDS builder; TFDS is imported lazily."""
  global _BUILDER
  if _BUILDER is not None:
    return _BUILDER
  import tensorflow_datasets as tfds

  zlib = tfds.features.Encoding.ZLIB

  class MetavalLabels(tfds.core.GeneratorBasedBuilder):
    """(base, supplement, learner) -> per-seed metrics; one example per row."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial label format."}

    # TFDS locates a builder's source through importlib_resources, which this
    # environment may lack; the path is only used for checksum files, so give it
    # directly.
    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls):
      from etils import epath

      return epath.Path(__file__)

    def __init__(self, *, shard_dir: str | None = None, **kwargs):
      self._shard_dir = shard_dir
      super().__init__(**kwargs)

    def _info(self):
      f = tfds.features
      return tfds.core.DatasetInfo(
        builder=self,
        description="metaval improvement labels: metric(B ∪ S) - metric(B) per seed.",
        features=f.FeaturesDict(
          {
            "key": f.Scalar(dtype=np.int64),
            "pair_id": f.Scalar(dtype=np.int64),
            "shard": f.Scalar(dtype=np.int32),
            "task": f.Text(),
            "task_seed": f.Scalar(dtype=np.int32),
            "task_options": f.Text(),  # JSON of the task's build options
            "metric_names": f.Text(),
            "base_indices": f.Tensor(shape=(None,), dtype=np.int32),
            "supp_indices": f.Tensor(shape=(None,), dtype=np.int32),
            "supp_y": f.Tensor(shape=(None,), dtype=np.int32),
            "synthetic_x": f.Tensor(shape=(None, None), dtype=np.float32, encoding=zlib),
            "synthetic_tokens": f.Tensor(shape=(None, None), dtype=np.int32, encoding=zlib),
            "kind": f.Text(),
            "recipe": f.Text(),
            "learner": f.Text(),
            "learner_params": f.Scalar(dtype=np.int64),
            "metric_base": f.Tensor(shape=(None, None), dtype=np.float64, encoding=zlib),
            "metric_full": f.Tensor(shape=(None, None), dtype=np.float64, encoding=zlib),
            # The label and its standard error over the K seeds, per metric.
            "improvement": f.Tensor(shape=(None,), dtype=np.float64),
            "improvement_se": f.Tensor(shape=(None,), dtype=np.float64),
          }
        ),
      )

    def _split_generators(self, dl_manager):
      del dl_manager
      return {"train": self._generate_examples()}

    def _generate_examples(self):
      for p in shard_files(self._shard_dir):
        yield from shard_rows(read_shard(p))

  _BUILDER = MetavalLabels
  return _BUILDER


_BUILDER = None


def tfds_dir(task_dir: str) -> str:
  return os.path.join(task_dir, "tfds")


def build_dataset(task_dir: str, num_shards: int) -> None:
  """Builds the TFDS dataset from the ``num_shards`` finished shard files.

  Several processes may generate into one workdir (shards are atomic renames of
  identical content); the build itself runs under an exclusive file lock, and a
  process that finds the dataset built while it waited does nothing.
  """
  import fcntl

  with open(os.path.join(task_dir, "build.lock"), "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
      _build_locked(task_dir, num_shards)
    finally:
      fcntl.flock(lock, fcntl.LOCK_UN)


def _build_locked(task_dir: str, num_shards: int) -> None:
  marker = os.path.join(task_dir, "tfds_complete.json")
  if os.path.exists(marker):
    with open(marker) as fh:
      if json.load(fh).get("num_shards") == num_shards:
        return
  data_dir = tfds_dir(task_dir)
  # A previous build may have been interrupted; TFDS's own temp dirs are stale.
  shutil.rmtree(data_dir, ignore_errors=True)
  cls = _builder_class()
  with _deterministic_protos():
    _prepare(cls, task_dir, data_dir)
  io_lib.write_json(marker, {"num_shards": num_shards}, indent=None)


@contextlib.contextmanager
def _deterministic_protos():
  """Serializes TFDS examples with sorted proto map keys while building.

  TFDS stores each example as a ``tf.train.Example`` whose feature *map* is
  written in hash order, which differs between processes; the decoded data is
  the same, but the files would not be byte-identical across runs. Sorting the
  map keys (``deterministic=True``) makes a resumed run's files equal to an
  uninterrupted run's. The patch is undone when the build ends.
  """
  from tensorflow_datasets.core import example_serializer

  cls = example_serializer.ExampleSerializer
  original = cls.serialize_example

  def serialize_example(self, example):
    return self.get_tf_example(example).SerializeToString(deterministic=True)

  cls.serialize_example = serialize_example
  try:
    yield
  finally:
    cls.serialize_example = original


def _prepare(cls, task_dir: str, data_dir: str) -> None:
  import tensorflow_datasets as tfds

  tfds.disable_progress_bar()  # the pipeline shows its own progress
  builder = cls(
    shard_dir=os.path.join(task_dir, "shards"), data_dir=data_dir, file_format="array_record"
  )
  builder.download_and_prepare()


def task_dirs(workdir: str) -> dict[str, str]:
  """Task name -> task dir for every built label dataset under ``workdir``."""
  out = {}
  for marker in sorted(glob.glob(os.path.join(workdir, "*", "tfds_complete.json"))):
    d = os.path.dirname(marker)
    out[os.path.basename(d)] = d
  return out


def load_task_dir(task_dir: str) -> LabelSet:
  """Reads one task's TFDS dataset with ``as_data_source`` into a ``LabelSet``."""
  import tensorflow_datasets as tfds

  _builder_class()  # registers the builder name with TFDS
  builder = tfds.builder(BUILDER_NAME, data_dir=tfds_dir(task_dir))
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
