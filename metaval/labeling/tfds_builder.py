"""The TFDS builder of the label dataset (``metaval_labels``, ``array_record``).

``prepare`` writes the dataset from a stream of ``(key, example)`` rows (the label
storage gives the rows of its finished shards, in order). Examples are serialized
with sorted proto map keys, so the same rows always give the same bytes.
"""

from __future__ import annotations

import contextlib

import numpy as np

BUILDER_NAME = "metaval_labels"
_BUILDER = None


def builder_class():
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

    def __init__(self, *, examples=None, **kwargs):
      self._examples = examples
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
      yield from self._examples()

  _BUILDER = MetavalLabels
  return _BUILDER


@contextlib.contextmanager
def deterministic_protos():
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


def prepare(data_dir: str, examples) -> None:
  """Builds the label dataset in ``data_dir``, byte-stable (``deterministic_protos``).

  Args:
    data_dir: the TFDS data dir (``<task dir>/tfds``).
    examples: a callable returning the ``(key, example)`` pairs, in order.
  """
  import tensorflow_datasets as tfds

  tfds.disable_progress_bar()  # the pipeline shows its own progress
  builder = builder_class()(examples=examples, data_dir=data_dir, file_format="array_record")
  with deterministic_protos():
    builder.download_and_prepare()
