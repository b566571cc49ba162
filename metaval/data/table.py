"""A CSV's columns as numbers: missing cells and categorical columns, encoded one way.

Real tables hold text columns (``color = red``) and empty cells. ``Table`` is fitted on
one file (a task's whole file, or the base set of a zero-shot query) and encodes that
file and every other file of the task the same way, so a supplement's columns mean
what the base's mean:

* a **numeric** column (every present cell a number) stays one column; its missing
  cells take the fitted file's median, and when the fitted file itself has missing
  cells in it a 0/1 column ``"<name> (missing)"`` follows, so "missing" can carry
  information of its own;
* a **categorical** column (more than half of its present cells text) becomes one 0/1
  column per level, ``"<name>=<level>"``: the fitted file's ``MAX_LEVELS`` most
  frequent levels, missing cells counting as the level ``(missing)``. A cell of any
  other level (rare, or unseen in the fitted file) is none of them: all zeros, and
  ``encode`` says how many there were;
* a column that mixes numbers with a few text cells (``12``, ``13``, ``12 kg``) is a
  typo more often than a category, and is refused naming the cell.

Missing cells are those that read (trimmed, any case) as one of ``MISSING``. A purely
numeric file with no missing cell is encoded to exactly its own numbers, column for
column.

A pandas ``DataFrame`` is a table too (``frame_rows``: its cells as a file's, missing
values as empty cells; pandas itself is not needed here), so the zero-shot model takes
frames with text columns as it takes csv files. ``path`` in ``Table``'s methods names
the source in messages (``"csv file b.csv"``, ``"base"``).
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import hashlib
import re
import sys

import numpy as np

from metaval.data.validate import TaskError

# Cells read as missing (compared trimmed and lower-cased); "?" is the UCI convention.
MISSING = frozenset({"", "na", "n/a", "#n/a", "nan", "-nan", "null", "none", "<na>", "nat", "?"})
# Levels kept per categorical column (the most frequent in the fitted file).
MAX_LEVELS = 32
MISSING_LEVEL = "(missing)"


@dataclasses.dataclass(frozen=True)
class Column:
  """How one source column is encoded.

  Attributes:
    name: the column's header.
    kind: ``"numeric"`` or ``"categorical"``.
    fill: a numeric column's value for missing cells (the fitted file's median).
    indicator: a numeric column is followed by a 0/1 "missing" column.
    levels: a categorical column's levels, one 0/1 column each.
    distinct: distinct levels in the fitted file (more than ``levels`` when capped).
  """

  name: str
  kind: str
  fill: float = 0.0
  indicator: bool = False
  levels: tuple[str, ...] = ()
  distinct: int = 0

  @property
  def names(self) -> tuple[str, ...]:
    if self.kind == "numeric":
      return (self.name, f"{self.name} (missing)") if self.indicator else (self.name,)
    return tuple(f"{self.name}={v}" for v in self.levels)


@dataclasses.dataclass(frozen=True)
class Table:
  """The encoding of a CSV's feature columns, fitted on one file (see the module doc)."""

  columns: tuple[Column, ...]

  @property
  def sources(self) -> tuple[str, ...]:
    """The source columns' headers, in order."""
    return tuple(c.name for c in self.columns)

  @property
  def names(self) -> tuple[str, ...]:
    """The encoded columns' names, in order."""
    return tuple(n for c in self.columns for n in c.names)

  @property
  def plain(self) -> bool:
    """Every column numeric and without a missing column: the encoding is the identity."""
    return all(c.kind == "numeric" and not c.indicator for c in self.columns)

  @classmethod
  def fit(cls, path: str, header: list[str], rows: list[list[str]], sources, parsed=None) -> Table:
    """Fits the encoding of columns ``sources`` on the rows of one file.

    ``parsed``: a dict that receives each column's parsed cells, for ``encode`` of the
    same rows (each file is then parsed once).

    Raises:
      TaskError: a column mixing numbers with some text, or a non-finite number.
    """
    columns = []
    for name in sources:
      cells, missing, numbers = _column(header, rows, name)
      if parsed is not None:
        parsed[name] = (cells, missing, numbers)
      present = int((~missing).sum())
      text = int((~missing & np.isnan(numbers)).sum())  # cells that are not numbers
      if text == 0:
        _finite(path, name, cells, numbers, missing)
        fill = float(np.median(numbers[~missing])) if present else 0.0
        columns.append(Column(name, "numeric", fill=fill, indicator=bool(missing.any())))
      elif 2 * text <= present:
        i = int(np.argmax(~missing & np.isnan(numbers)))
        raise TaskError(
          f"{path}: column {name!r} holds numbers and some text (data row {i + 1} "
          f"holds {cells[i][:20]!r}); fix the cell, or leave it empty if it is missing"
        )
      else:
        counts = collections.Counter(MISSING_LEVEL if m else c for c, m in zip(cells, missing))
        top = sorted(counts, key=lambda v: (-counts[v], v))[:MAX_LEVELS]
        columns.append(Column(name, "categorical", levels=tuple(sorted(top)), distinct=len(counts)))
    return cls(tuple(columns))

  def encode(
    self, path: str, header: list[str], rows: list[list[str]], parsed=None
  ) -> tuple[np.ndarray, list[str]]:
    """Encodes a file's rows (its columns taken by name; ``parsed``: the columns
    ``fit`` parsed from these same rows).

    Returns:
      ``x [n, len(names)]`` float64 and notes (missing cells filled, levels the fit
      did not keep), one line each.

    Raises:
      TaskError: a missing column, or a numeric column holding text or non-finite numbers.
    """
    absent = [c for c in self.sources if c not in header]
    if absent:
      raise TaskError(f"{path} lacks feature column(s): {', '.join(absent)}")
    blocks, notes = [], []
    for col in self.columns:
      cells, missing, numbers = (parsed or {}).get(col.name) or _column(header, rows, col.name)
      if col.kind == "numeric":
        numbers = numbers.copy()  # filled below; the parsed column stays as read
        text = ~missing & np.isnan(numbers)
        if text.any():
          i = int(np.argmax(text))
          raise TaskError(
            f"{path}: column {col.name!r} is not numeric (data row {i + 1} holds "
            f"{cells[i][:20]!r}); it is a numeric column of the data the encoding was fitted on"
          )
        _finite(path, col.name, cells, numbers, missing)
        numbers[missing] = col.fill
        blocks.append(numbers[:, None])
        if col.indicator:
          blocks.append(missing[:, None].astype(np.float64))
        elif missing.any():
          notes.append(
            f"{path}: {int(missing.sum())} missing cell(s) of column {col.name!r} "
            f"take the median of the fitted data ({col.fill:g})"
          )
        continue
      # (cells read as numbers come untrimmed: trimmed here, as a text column's are)
      level = np.array([MISSING_LEVEL if m else c.strip() for c, m in zip(cells, missing)], object)
      onehot = level[:, None] == np.array(col.levels, dtype=object)[None]
      blocks.append(onehot.astype(np.float64))
      other = ~onehot.any(1)
      if other.any():
        example = level[int(np.argmax(other))]
        why = (
          f"levels the base data does not have (e.g. {example!r})"
          if col.distinct <= len(col.levels)
          else f"levels outside the {len(col.levels)} most frequent of the base data's "
          f"{col.distinct} (e.g. {example!r})"
        )
        notes.append(
          f"{path}: {int(other.sum())} cell(s) of column {col.name!r} hold {why}, "
          "encoded as none of its levels"
        )
    return np.concatenate(blocks, 1) if blocks else np.empty((len(rows), 0)), notes


def _column(header: list[str], rows: list[list[str]], name: str):
  """A column's cells, which of them are missing (``MISSING``) and the cells as float64
  (NaN where missing or text).

  A column of numbers alone (the common case) is parsed by NumPy in one call; any
  other goes cell by cell (trimmed, missing tokens found, text left NaN)."""
  j = header.index(name)
  raw = [r[j] for r in rows]
  try:
    numbers = np.array(raw, dtype=np.float64)  # NumPy reads numbers as float() does
    if not np.isnan(numbers).any():  # a literal "nan" cell is a missing token: below
      return raw, np.zeros(len(raw), bool), numbers
  except ValueError:
    pass
  cells = [c.strip() for c in raw]
  missing = np.array([c.lower() in MISSING for c in cells], bool)
  return cells, missing, _parse(cells, missing)


def _parse(cells: list[str], missing: np.ndarray) -> np.ndarray:
  """Cells as float64; text cells are NaN (missing cells too: see ``missing``).

  A column whose every present cell is a number written for people (``12%``,
  ``$1,250.50``, ``1.250,5``, ``3,7``) is read as those numbers, in one of
  ``_WRITTEN``'s conventions for the whole column (a comma never means both); one whose
  every present cell is a date, year first (``2024-01-05``, ``2024/01/05 13:30``), as
  days since 1970-01-01; so is one of dates written day first (``25/01/2024``,
  ``25.01.2024``) or month first (``01/25/2024``) when some cell tells which (a field
  above 12): a column where every date reads both ways stays text."""
  out = np.full(len(cells), np.nan)
  for i, c in enumerate(cells):
    if not missing[i]:
      try:
        out[i] = float(c)
      except ValueError:
        pass
  if not (~missing & np.isnan(out)).any():
    return out
  for pattern, read, decides in _WRITTEN:
    written, decided = out.copy(), decides is None
    for i in np.flatnonzero(~missing):
      m = pattern.fullmatch(cells[i])
      value = None if m is None else read(m)
      if value is None:
        break
      written[i] = value
      decided = decided or decides(m)
    else:
      if decided:
        return written
  return out


def _number(group: str, point: str):
  """A number's reader: digit groups split by ``group``, decimals after ``point``."""
  return lambda m: float(m["num"].replace(group, "").replace(point, "."))


def _days(m, order: str = "ymd") -> float | None:
  """A date's days since 1970-01-01, its fields in ``order`` (None: not a calendar
  date, e.g. 2024-02-31 or, month first, 25/01/2024)."""
  parts = dict(zip(order, re.split(r"[-/.]", m["day"])))
  return _stamp(parts["y"], parts["m"], parts["d"], m["time"])


def _named(m) -> float | None:
  """A date with its month named (``5 Jan 2024``, ``January 5, 2024``), in days."""
  month = _MONTHS.get(m["mon"][:3].lower())
  if month is None or not _MONTH_NAMES[month - 1].startswith(m["mon"].lower()):
    return None
  return _stamp(m["y"], month, m["d"], m["time"])


def _stamp(year, month, day, time: str | None) -> float | None:
  """Days since 1970-01-01 of a calendar date and time of day (None: not one)."""
  clock = [int(v) for v in (time or "0:0").split(":")] + [0]
  try:
    stamp = np.datetime64(
      f"{int(year):04d}-{int(month):02d}-{int(day):02d}"
      f"T{clock[0]:02d}:{clock[1]:02d}:{clock[2]:02d}",
      "s",
    )
  except ValueError:
    return None
  return stamp.astype(np.int64) / 86_400.0


_MONTH_NAMES = (
  "january", "february", "march", "april", "may", "june", "july", "august", "september",
  "october", "november", "december",
)  # fmt: skip
_MONTHS = {name[:3]: i + 1 for i, name in enumerate(_MONTH_NAMES)}


def _first_above_12(m) -> bool:
  """The date's first field cannot be a month (so it is the day, or the reverse)."""
  return int(re.split(r"[-/.]", m["day"])[0]) > 12


def _second_above_12(m) -> bool:
  return int(re.split(r"[-/.]", m["day"])[1]) > 12


# How people write numbers, as (pattern, reader), in order: an optional currency sign
# before, a percent sign after, and digit grouping (a point with comma groups, 1,250.5,
# or a comma with point groups, 1.250,5, or none, 3,7); then a date, year first, with an
# optional time of day, read as a number of days; then a date, day or month first, read
# when some cell of the column decides which (each entry's third element: None, every
# reading decides); then dates with the month named in English (5 Jan 2024, Jan 5, 2024).
_WRAP = r"\s*[$€£¥]?\s*(?P<num>[+-]?(?:{}))\s*%?\s*"
_TIME = r"(?:[ T](?P<time>\d{1,2}:\d{2}(?::\d{2})?))?\s*"
_YEAR_LAST = re.compile(r"\s*(?P<day>\d{1,2}([-/.])\d{1,2}\2\d{4})" + _TIME)
_WRITTEN = (
  (re.compile(_WRAP.format(r"(\d{1,3}(,\d{3})+|\d+)(\.\d*)?|\.\d+")), _number(",", "."), None),
  (re.compile(_WRAP.format(r"(\d{1,3}(\.\d{3})+|\d+)(,\d*)?|,\d+")), _number(".", ","), None),
  (re.compile(r"\s*(?P<day>\d{4}([-/])\d{1,2}\2\d{1,2})" + _TIME), _days, None),
  (_YEAR_LAST, functools.partial(_days, order="dmy"), _first_above_12),
  (_YEAR_LAST, functools.partial(_days, order="mdy"), _second_above_12),
  (
    re.compile(r"\s*(?P<d>\d{1,2})[ -](?P<mon>[A-Za-z]{3,9})\.?(?:[ -]|, ?)(?P<y>\d{4})" + _TIME),
    _named,
    None,
  ),
  (re.compile(r"\s*(?P<mon>[A-Za-z]{3,9})\.? (?P<d>\d{1,2}),? (?P<y>\d{4})" + _TIME), _named, None),
)


def _finite(path: str, name: str, cells, numbers: np.ndarray, missing: np.ndarray) -> None:
  bad = ~missing & np.isinf(numbers)
  if bad.any():
    i = int(np.argmax(bad))
    raise TaskError(f"{path}: column {name!r} has {cells[i]!r} in data row {i + 1}")


def is_frame(x) -> bool:
  """A pandas ``DataFrame`` (duck-typed: named ``columns`` and ``to_numpy``), not an array."""
  return not isinstance(x, np.ndarray) and hasattr(x, "columns") and hasattr(x, "to_numpy")


def frame_rows(frame, what: str) -> tuple[list[str], list[list[str]]]:
  """A DataFrame as a csv file's header and rows of cells: numbers as their shortest
  exact text, missing values (None, NaN, ``pd.NA``, ``NaT``) as missing cells, anything
  else as its text.

  Raises:
    TaskError: two columns share a name.
  """
  header = [str(c) for c in frame.columns]
  if len(set(header)) < len(header):
    twice = next(h for h in header if header.count(h) > 1)
    raise TaskError(f"{what}: the DataFrame has two columns named {twice!r}")
  try:
    values = frame.to_numpy(dtype=object)
  except TypeError:  # a frame library whose to_numpy takes no dtype
    values = np.asarray(frame.to_numpy(), dtype=object)
  return header, [[_cell(v) for v in row] for row in values]


def _cell(v) -> str:
  if v is None:
    return ""
  if isinstance(v, (bool, np.bool_)):
    return str(bool(v))
  if isinstance(v, (float, np.floating)):
    return "" if v != v else repr(float(v))  # repr: the float's exact shortest text
  if isinstance(v, (int, np.integer)):
    return str(int(v))
  return str(v)


def frame_digest(frame) -> tuple | None:
  """A digest of a pandas DataFrame's contents (pandas' own row hashes, vectorised:
  about a millisecond for 1,000 rows), None for anything else, so that a caller can
  keep its encoding instead of reading every cell again."""
  pd = sys.modules.get("pandas")  # a DataFrame means pandas is imported already
  if pd is None or not isinstance(frame, pd.DataFrame):
    return None
  rows = pd.util.hash_pandas_object(frame, index=False).to_numpy()
  names = tuple(str(c) for c in frame.columns)
  return names, tuple(str(t) for t in frame.dtypes), hashlib.sha1(rows.tobytes()).hexdigest()
