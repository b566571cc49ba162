"""The built-in tabular tasks: scikit-learn's bundled datasets and a seeded generator.

``digits``, ``breast_cancer`` and ``wine`` read scikit-learn's bundled copies (no
network); ``synthetic`` is ``make_classification``. Each holds out a seeded stratified
test set and standardises on the pool (``metaval.data.tasks.classification_task``).
Registered on import of ``metaval.data``.
"""

from __future__ import annotations

from metaval.data.tasks import Task, TaskError, classification_task, register_task


def _split_standardise(name, x, y, seed, test_size, group_names=None) -> Task:
  return classification_task(name, x, y, seed, test_size, group_names=group_names)


@register_task("digits")
def _digits(seed: int = 0, test_size: int = 500) -> Task:
  from sklearn.datasets import load_digits

  d = load_digits()
  return _split_standardise("digits", d.data, d.target, seed, test_size)


@register_task("breast_cancer")
def _breast_cancer(seed: int = 0, test_size: int = 169) -> Task:
  from sklearn.datasets import load_breast_cancer

  d = load_breast_cancer()
  return _split_standardise(
    "breast_cancer", d.data, d.target, seed, test_size, group_names=tuple(d.target_names)
  )


@register_task("wine")
def _wine(seed: int = 0, test_size: int = 58) -> Task:
  from sklearn.datasets import load_wine

  d = load_wine()
  return _split_standardise(
    "wine", d.data, d.target, seed, test_size, group_names=tuple(d.target_names)
  )


@register_task("synthetic")
def _synthetic(
  seed: int = 0,
  n: int = 2000,
  dim: int = 32,
  num_classes: int = 4,
  class_sep: float = 1.0,
  informative: int = 8,
  flip_y: float = 0.01,
  test_size: int = 500,
) -> Task:
  """``make_classification``; lower ``class_sep`` / higher ``flip_y`` make it harder."""
  from sklearn.datasets import make_classification

  if informative > dim:
    raise TaskError(f"informative ({informative}) must be <= dim ({dim})")
  x, y = make_classification(
    n_samples=n,
    n_features=dim,
    n_informative=informative,
    n_redundant=min(4, dim - informative),
    n_classes=num_classes,
    n_clusters_per_class=2,
    class_sep=class_sep,
    flip_y=flip_y,
    random_state=seed,
  )
  return _split_standardise("synthetic", x, y, seed, test_size)
