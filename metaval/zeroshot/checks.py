"""What a query's supplements carry besides their value: copies of B, and warnings.

``SupplementChecks`` is the part of ``metaval.zeroshot.features.Context`` that reads
S's raw rows: the exact copies of B's points (dropped before valuing: they carry no
new data) and the warnings its value alone would hide (a label encoding or units that
do not match B's, evaluation points inside S). Every method takes many supplements
at once, their rows keyed and checked in one pass.
"""

from __future__ import annotations

import collections

import numpy as np

from metaval.zeroshot.inputs import FeatureError, as_arrays, input_keys, row_keys

FAR_RMS = 10.0  # S's typical point this many of B's SDs (RMS over features) out: warned
REPEATS_NOTED = 0.05  # B repeating this share of its own rows: copies of B may be genuine


class SupplementChecks:
  """Checks of raw supplements against a context's B and T.

  The context provides ``width``, ``k``, ``notes``, ``labels``, ``_standardise``, its
  raw B (``_raw_b``) and T inputs (``_raw_e``) and the key caches ``_base_keys`` and
  ``_eval_keys`` (``None`` until first used).
  """

  def new_points(self, supplemental) -> tuple[tuple[np.ndarray, np.ndarray], int]:
    """S without its exact copies of B's points: ``((x, y) kept, copies dropped)``.

    A row copies B when its raw inputs and its label equal those of a point of B
    (bit for bit, as float64). Such rows carry no new data: the predictor values
    only the rest (a set of copies alone is worth nothing).
    """
    return self.new_points_many([supplemental])[0]

  def new_points_many(self, supplements) -> list[tuple[tuple[np.ndarray, np.ndarray], int]]:
    """``new_points`` of several supplements, their rows keyed in one pass."""
    sets = []
    for supplemental in supplements:
      xs, ys = as_arrays(supplemental, "supplemental")
      if xs.shape[1] != self.width:
        raise FeatureError(f"supplemental has {xs.shape[1]} features but base has {self.width}")
      sets.append((xs, ys))
    if not sets:
      return []
    self._key_base()
    ids = np.concatenate([self.labels(y) for _, y in sets])
    keys = row_keys(np.concatenate([x for x, _ in sets]), ids)
    copy = np.fromiter(map(self._base_keys.__contains__, map(bytes, keys)), bool, len(ids))
    out, at = [], 0
    for xs, ys in sets:
      c = copy[at : at + len(ys)]
      at += len(ys)
      out.append(((xs[~c], ys[~c]), int(c.sum())))
    return out

  def _key_base(self) -> None:
    """B's (input, label) keys, and the share of B's rows that repeat another (once)."""
    if self._base_keys is None:
      xb, yb = self._raw_b
      self._base_keys = collections.Counter(map(bytes, row_keys(xb, yb)))  # key -> count
      repeated = sum(c for c in self._base_keys.values() if c > 1)
      self._base_repeats = repeated / max(len(xb), 1)

  def copies_note(self, copies: int, size: int) -> str:
    """The warning of a supplement ``copies`` of whose ``size`` points copy B's.

    Copies carry no new data and are not counted. Where B itself repeats rows (inputs
    with few distinct values: binary or categorical features), a fresh sample can
    equal a point of B by chance, so the note says the value may then be too low.
    """
    self._key_base()
    note = (
      f"all {copies} points copy base points: no new data, valued at zero"
      if copies == size
      else f"{copies} of {size} points copy base points and are not counted"
    )
    if self._base_repeats >= REPEATS_NOTED:
      note += (
        f"; B itself repeats {self._base_repeats:.0%} of its rows (inputs with few distinct "
        "values), so some copies may be genuine new samples and the value too low"
      )
    return note

  def checks(self, xs: np.ndarray, ys: np.ndarray) -> list[str]:
    """Warnings about S (raw, validated arrays) that its value alone would hide.

    * (B, T) itself: most evaluation labels are classes B never uses;
    * labels that B and the evaluation set never use (a mismatched label encoding
      makes every label of S one of these);
    * inputs far outside B (S in other units than B): the typical point of S lies
      more than ``FAR_RMS`` of B's standard deviations out, as the RMS over features;
    * points of S whose inputs are evaluation points (bit for bit): training on the
      evaluation set inflates the gain measured on it;
    * S repeating its own rows (same inputs and label) in a share of at least
      ``REPEATS_NOTED`` and well above B's own: copies weigh points, they are not new
      data (the value counts them as retraining would, as extra weight).
    """
    return self.checks_many([(xs, ys)])[0]

  def checks_many(self, sets) -> list[list[str]]:
    """``checks`` of several supplements (raw, validated, non-empty), their rows
    examined in one pass."""
    if not sets:
      return []
    if self._eval_keys is None:
      self._eval_keys = set(map(bytes, input_keys(self._raw_e)))
    sizes = np.array([len(y) for _, y in sets])
    xs = np.concatenate([x for x, _ in sets])
    leak = np.fromiter(map(self._eval_keys.__contains__, map(bytes, input_keys(xs))), bool, len(xs))
    ids = np.concatenate([self.labels(y) for _, y in sets])
    unknown = ids == self.k - 1
    keys = list(map(bytes, row_keys(xs, ids)))
    self._key_base()
    far = np.sqrt(np.mean(self._standardise(xs) ** 2, axis=1))  # RMS over features
    out, at = [], 0
    for (_, y), n in zip(sets, sizes):
      rows = slice(at, at + n)
      at += n
      notes = list(self.notes)
      if leak[rows].any():
        notes.append(
          f"{int(leak[rows].sum())} of {n} points of S are evaluation points (same inputs): "
          "the gain measured on that set rewards them; value S on an evaluation set it does "
          "not contain"
        )
      if unknown[rows].any():
        notes.append(
          f"{int(unknown[rows].sum())} of {n} labels (e.g. {str(y[unknown[rows]][0])!r}) are "
          "classes that B and the evaluation set never use: check the label encoding"
        )
      repeats = n - len(set(keys[rows]))
      if repeats >= REPEATS_NOTED * n and repeats / n > 2 * self._base_repeats:
        notes.append(
          f"{repeats} of {n} points of S repeat another point of S (same inputs and label): "
          "copies weigh points, they are not new data"
        )
      if (far[rows] > FAR_RMS).any() and np.median(far[rows]) > FAR_RMS:
        notes.append(
          f"S lies far from B: its typical point is {np.median(far[rows]):.3g} of B's standard "
          "deviations out (RMS over features): check that S is in B's units"
        )
      out.append(notes)
    return out


def coarse_eval_note(n_eval: int, half: float) -> str:
  """The warning of an evaluation set too small for the interval: accuracy on ``n_eval``
  points moves in steps of ``1 / n_eval``, and a step wider than the interval's half
  means a retrained model's measured gain lands on a grid coarser than the label."""
  return (
    f"the evaluation set has {n_eval} point(s): accuracy on it moves in steps of "
    f"{1.0 / n_eval:.3f}, coarser than this interval (±{half:.3f}); a retrained model's "
    "measured gain is a multiple of that step (value S on a larger evaluation set)"
  )
