"""Label pipeline: (base, supplement) pairs -> improvement labels.

``generate(config, workdir)`` builds or resumes a TFDS ``array_record`` label
dataset and returns it as a ``LabelSet``; ``load_labels(workdir)`` reads it back.
``label_pairs`` labels explicit (B, S) pairs without storing anything (it wraps
``metaval.pairs.label``, the one label function). Modules: ``shards`` (one shard:
pairs, keys, labels), ``pipeline`` (the driver: workers, Ray, resume, healing), ``storage``
(shard files, checksums and the TFDS dataset), ``tfds_builder`` (the TFDS builder),
``schema`` (``LabelSet``), ``quality``.
"""

from metaval.labeling.schema import LabelError, LabelSet


def generate(config, workdir):
  """Builds/resumes the label dataset in ``workdir``; see ``pipeline.generate``."""
  from metaval.labeling import pipeline

  return pipeline.generate(config, workdir)


def load_labels(workdir, task=None):
  """Loads the label set in ``workdir`` via TFDS; see ``storage.load_labels``."""
  from metaval.labeling import storage

  return storage.load_labels(workdir, task)


def load_label_suite(workdir):
  """Every task's label set in ``workdir``; see ``storage.load_label_suite``."""
  from metaval.labeling import storage

  return storage.load_label_suite(workdir)


def label_pairs(*args, **kwargs):
  """Paired-seed metrics on B and B ∪ S; see ``shards.label_pairs``."""
  from metaval.labeling import shards

  return shards.label_pairs(*args, **kwargs)


__all__ = [
  "LabelError",
  "LabelSet",
  "generate",
  "label_pairs",
  "load_label_suite",
  "load_labels",
]
