"""A task's input transform: raw inputs in the user's space -> the internal space.

Every classification task keeps its pool and evaluation sets standardised by
statistics of the pool only. The ``Transform`` stored on the task remembers those
statistics and any fixed preprocessing (image downsampling, flattening), so a user
holding raw inputs — digits pixels 0–16, a CSV's own columns, TFDS images — maps them
with ``task.encode(x_raw)`` and never has to know the internal space.

Constant columns: a pool column whose standard deviation is below ``MIN_SPREAD`` of its
largest magnitude (rounding, not spread) keeps scale 1 (it is centred, not divided), so
it is 0 on the pool and a raw value that differs from the pool's constant shows up as
that difference, not as a division by 0. The bound is relative: a column measured in
small units (1e-9 of something) is standardised like the same column in large ones.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from metaval.data.validate import TaskError, as_features, input_shape_error

# A column whose standard deviation is below this share of its largest magnitude counts
# as constant and is not scaled.
MIN_SPREAD = 1e-12
# Columns with magnitudes beyond this, or nonzero below its inverse, are summed in units
# of their largest entry (their squares would overflow or underflow float64).
HUGE = 1e150


def centre_scale(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """``(mean, scale)`` per column of ``x [n, d]`` (float64) for ``(x - mean) / scale``:
  the standard deviation, 1 for constant columns (``MIN_SPREAD``). Any finite inputs
  give finite statistics: huge and tiny columns (``HUGE``) are computed in units of
  their largest entry, so no square overflows or vanishes."""
  x = np.asarray(x, np.float64)
  big = np.abs(x).max(0) if len(x) else np.zeros(x.shape[1:])
  unit = np.where((big > HUGE) | ((big > 0) & (big < 1.0 / HUGE)), big, 1.0)
  z = x / unit
  mean, sd = z.mean(0) * unit, z.std(0) * unit
  return mean, np.where(sd > MIN_SPREAD * big, sd, 1.0)


@dataclasses.dataclass(frozen=True, eq=False)
class Transform:
  """Fixed preprocessing followed by standardisation with pool statistics.

  ``encode`` applies, in order: a check that each input has ``input_shape`` (a flat
  ``prod(input_shape)`` vector is accepted too), average pooling of images by
  ``downsample`` × ``downsample`` blocks (rows/columns that do not fill a block are
  cropped), flattening to one vector per input, and ``(x - mean) / scale`` in float64
  cast to ``dtype``. Without ``mean`` the inputs are only checked and cast (the code
  task's token windows).

  Attributes:
    input_shape: shape of one raw input, e.g. ``(64,)`` for digits, ``(28, 28, 1)``.
    mean: ``[d]`` float64 pool mean after preprocessing, or None (no standardising).
    scale: ``[d]`` float64 pool standard deviation (1 for constant columns), or None.
    downsample: average-pooling factor over the two image axes (1 = none).
    dtype: dtype of the internal inputs (``"float32"``, ``"int32"`` for tokens).
    feature_names: name of each raw feature column where the source has them (CSV).
    table: a CSV's column encoding (``metaval.data.table.Table``: text columns one-hot,
      missing cells filled) where the task comes from a CSV; ``encode`` takes its
      encoded columns, ``metaval.data.read_set`` applies it to another file.
  """

  input_shape: tuple[int, ...]
  mean: np.ndarray | None = None
  scale: np.ndarray | None = None
  downsample: int = 1
  dtype: str = "float32"
  feature_names: tuple[str, ...] = ()
  table: object = None

  @classmethod
  def fit(
    cls, x_pool: np.ndarray, input_shape, downsample: int = 1, feature_names=(), table=None
  ) -> Transform:
    """Fits standardisation on preprocessed pool inputs ``x_pool [N, d]`` (float64).

    Raises:
      TaskError: a column whose mean or spread overflows float64.
    """
    with np.errstate(over="ignore", invalid="ignore"):
      mean, scale = centre_scale(x_pool)
    if not (np.isfinite(mean).all() and np.isfinite(scale).all()):
      col = int(np.argmin(np.isfinite(mean) & np.isfinite(scale)))
      raise TaskError(f"feature column {col} has values too large to standardise")
    shape = tuple(int(s) for s in input_shape)
    return cls(shape, mean, scale, int(downsample), feature_names=tuple(feature_names), table=table)

  @property
  def feature_dim(self) -> int:
    """Width of the internal inputs."""
    return len(self.mean) if self.mean is not None else math.prod(self.input_shape)

  def preprocess(self, x, what: str = "x") -> np.ndarray:
    """Checks raw inputs and applies the fixed preprocessing; returns ``[n, d]`` float64.

    Raises:
      MetavalError: non-numeric, non-finite or wrongly shaped inputs.
    """
    x = as_features(x, what, min_ndim=1)
    if x.ndim == 1:
      x = x[None]  # one raw input
    shape = self.input_shape
    if x.shape[1:] != shape:
      if x.shape[1:] == (math.prod(shape),):
        x = x.reshape((len(x), *shape))
      else:
        raise input_shape_error(what, x.shape, shape)
    k = self.downsample
    if k > 1:
      h, w = shape[0] // k, shape[1] // k
      x = x[:, : h * k, : w * k].reshape(len(x), h, k, w, k, *shape[2:]).mean(axis=(2, 4))
    return x.reshape(len(x), -1)

  def encode(self, x_raw, what: str = "x") -> np.ndarray:
    """Maps raw inputs ``[n, *input_shape]`` (or one input) to internal ``[n, d]``.

    Raises:
      MetavalError: the inputs do not fit the task, or are too large to standardise.
    """
    x = self.preprocess(x_raw, what)
    if self.mean is None:
      if self.dtype.startswith("int") and not np.array_equal(x, np.round(x)):
        raise TaskError(f"{what} must hold integer token ids")
      return x.astype(self.dtype)
    out = self.standardise(x)
    if not np.isfinite(out).all():
      raise TaskError(f"{what} has values too large to standardise (|x| up to {np.abs(x).max():g})")
    return out

  def standardise(self, x: np.ndarray) -> np.ndarray:
    """``(x - mean) / scale`` on preprocessed float64 inputs ``[n, d]``, cast to ``dtype``."""
    with np.errstate(over="ignore", invalid="ignore"):
      return ((x - self.mean) / self.scale).astype(self.dtype)

  def decode(self, x: np.ndarray) -> np.ndarray:
    """Maps internal inputs back to the raw space (after any downsampling).

    Returns ``[n, *input_shape]`` when there is no downsampling, else the flat
    ``[n, d]`` downsampled raw inputs (pooling cannot be undone).
    """
    x = np.asarray(x, np.float64)
    if self.mean is not None:
      x = x * self.scale + self.mean
    if self.downsample == 1:
      x = x.reshape((len(x), *self.input_shape))
    return x
