"""CSV files as numbers: text decoding, field separators, header and labels checked.

``read_table`` / ``read_csv`` read a file with a header row and a label column; its
feature columns are encoded by a ``metaval.data.table.Table`` (fitted on the file, or
given: another file of the same task). The file's text may be UTF-8, UTF-16 with its
byte-order mark or Windows-1252 (``_text``); its separator is found when not given
(``SEPARATORS``); pandas' row index is left out (``_without_row_index``). Every
problem is one ``TaskError`` line naming the file, column and row.
"""

from __future__ import annotations

import csv
import io
import os
import re

import numpy as np

from metaval.data.table import Table
from metaval.data.validate import TaskError, as_labels
from metaval.errors import message_line


def existing_file(spec: str, kind: str) -> str:
  """``spec`` with ``~`` expanded, if it is a file that is not empty (else one line)."""
  path = os.path.expanduser(spec)
  if not os.path.exists(path):
    raise TaskError(f"{kind} file not found: {path}")
  if not os.path.isfile(path):
    raise TaskError(f"{kind} path is not a file: {path}")
  if os.path.getsize(path) == 0:
    raise TaskError(f"{kind} file is empty: {path}")
  return path


def read_csv(
  path: str, label: str = "label", delimiter: str | None = None, columns=None, table=None
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
  """Reads a CSV's feature columns as numbers and its label column, checked.

  Use it for a supplement or a base set in the same format as a ``csv:`` task, then
  ``task.encode(x)`` and ``task.encode_labels(y)``; pass
  ``table=task.transform.table`` to take the task's columns by name and encode them as
  the task does (``read_set`` does both).

  Args:
    path: a CSV with a header row.
    label: the label column.
    delimiter: the one-character field separator (``"\\t"`` or ``"tab"`` for a tab);
      default: found from the file's first lines (``SEPARATORS``, a comma first).
    columns: feature columns to take, in this order; default every column but ``label``.
    table: a ``Table`` fitted on another file (then ``columns`` is its own); default
      one fitted on this file (numeric columns as they are, text columns one-hot,
      missing cells filled: ``metaval.data.table``).

  Returns:
    ``x [N, d]`` float64, checked labels ``[N]`` (int64, or strings when any label is
    not a number) and the encoded columns' names.

  Raises:
    TaskError: a missing/empty/unparsable file, a missing label or feature column, a
      column mixing numbers and text, a non-finite number, an empty or non-integral label.
  """
  x, y, table, _ = read_table(path, label, delimiter, columns, table)
  return x, y, table.names


def read_table(
  path: str, label: str = "label", delimiter: str | None = None, columns=None, table=None
):
  """``read_csv`` that also returns the ``Table`` used and its notes (one line each:
  the row index left out, missing cells filled, levels the table does not keep, text
  labels that differ only in case)."""
  path = existing_file(path, "csv")
  label = str(label)  # a config override may have parsed a numeric column name
  if delimiter in ("\\t", "tab"):  # a tab is hard to type on a command line
    delimiter = "\t"
  header, rows, index_note = _read_csv(path, delimiter)
  parsed = None  # the columns as parsed when the table is fitted on this file
  if label not in header:
    raise TaskError(
      f"csv file {path} has no label column {label!r}; columns: {', '.join(header)} "
      "(name the label column with the label option)"
    )
  if table is None:
    names = tuple(h for h in header if h != label) if columns is None else tuple(columns)
    absent = [c for c in names if c not in header or c == label]
    if absent:
      raise TaskError(f"csv file {path} lacks feature column(s): {', '.join(absent)}")
    if not names:
      raise TaskError(f"csv file {path} has no feature columns besides {label!r}")
    parsed = {}
    table = Table.fit(f"csv file {path}", header, rows, names, parsed)
  x, notes = table.encode(f"csv file {path}", header, rows, parsed)
  raw = [r[header.index(label)].strip() for r in rows]
  if "" in raw:
    raise TaskError(
      f"csv file {path}: label column {label!r} is empty in data row {raw.index('') + 1}"
    )
  try:
    y = np.array([float(v) for v in raw])
  except ValueError:
    y = np.array(raw)  # string classes
    notes = notes + _case_note(label, raw)
  return x, as_labels(y, f"label column {label!r}"), table, index_note + notes


# pandas' name for a column it read without one.
_UNNAMED = re.compile(r"Unnamed: \d+")


def _without_row_index(header: list[str], rows: list[list[str]], nameless: bool):
  """``(header, rows, notes)`` without the file's row index: a first column without a
  name (``nameless``) whose cells are distinct integers (what pandas' ``to_csv`` writes first, from 0
  or from where a slice began, or shuffled). It numbers rows; as a feature it would
  teach the learner the order the file was written in."""
  if not nameless or len(rows) < 2:
    return header, rows, []
  try:
    ids = [int(r[0].strip()) for r in rows]
  except ValueError:
    return header, rows, []
  if len(set(ids)) < len(ids):
    return header, rows, []
  note = (
    f"the first column has no name and numbers the rows ({ids[0]}, {ids[1]}, ...): "
    "read as the file's row index and left out"
  )
  return header[1:], [r[1:] for r in rows], [note]


def _case_note(label: str, raw: list[str]) -> list[str]:
  """A note when two label levels differ only in case (``Yes`` and ``yes``): they
  are different classes, which is seldom what the file meant."""
  seen = {}
  for level in sorted(set(raw)):
    other = seen.setdefault(level.casefold(), level)
    if other != level:
      return [
        f"label column {label!r} holds {other!r} and {level!r}, which differ only in case: "
        "they are read as different classes"
      ]
  return []


# Field separators a csv file is read with when none is given, in order of preference.
SEPARATORS = (",", ";", "\t", "|")


def _separator(fh) -> str:
  """The first of ``SEPARATORS`` that splits the file's header into several fields and
  its first data lines into as many (a comma when none does)."""
  lines = []
  for line in fh:
    if line.strip():
      lines.append(line)
    if len(lines) == 6:
      break
  fh.seek(0)
  for sep in SEPARATORS:
    counts = {len(r) for r in csv.reader(lines, delimiter=sep)}
    if len(counts) == 1 and counts.pop() > 1:
      return sep
  return ","


def _text(path: str) -> str:
  """The file's text: UTF-8 (a byte-order mark dropped), UTF-16 when it starts with its
  byte-order mark (spreadsheets' "Unicode text"), else Windows-1252, the 8-bit encoding
  spreadsheets in Western European locales save (every byte of Latin-1 but five)."""
  with open(path, "rb") as fh:
    data = fh.read()
  if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
    try:
      return data.decode("utf-16")
    except UnicodeDecodeError as e:
      raise TaskError(
        f"csv file {path} starts as UTF-16 text but is not: {message_line(e, with_type=True)}"
      ) from None
  if b"\x00" in data:
    raise TaskError(f"csv file {path} is not text: it holds NUL bytes")
  for encoding in ("utf-8-sig", "cp1252"):
    try:
      return data.decode(encoding)
    except UnicodeDecodeError:
      pass
  return data.decode("latin-1")  # the five bytes cp1252 leaves undefined: control codes


def _read_csv(path: str, delimiter: str | None) -> tuple[list[str], list[list[str]], list[str]]:
  """The file's header and data rows, checked, and its notes (the row index left out)."""
  try:
    with io.StringIO(_text(path), newline="") as fh:
      delimiter = delimiter or _separator(fh)
      rows = [r for r in csv.reader(fh, delimiter=delimiter) if any(c.strip() for c in r)]
  except (csv.Error, TypeError) as e:  # TypeError: a delimiter that is not one character
    raise TaskError(f"cannot parse csv file {path}: {message_line(e, with_type=True)}") from None
  if not rows:
    raise TaskError(f"csv file {path} has no rows")
  header = [h.strip() for h in rows[0]]
  # A column without a name (or pandas' name for one, "Unnamed: 3") is "column <j>".
  nameless = [not h or bool(_UNNAMED.fullmatch(h)) for h in header]
  header = [f"column {j + 1}" if no else h for j, (h, no) in enumerate(zip(header, nameless))]
  dup = sorted({h for h in header if header.count(h) > 1})
  if dup:
    raise TaskError(f"csv file {path} repeats column name(s): {', '.join(dup)}")
  body = rows[1:]
  if not body:
    raise TaskError(f"csv file {path} has a header but no data rows")
  for i, r in enumerate(body):
    if len(r) != len(header):
      raise TaskError(
        f"csv file {path}: data row {i + 1} has {len(r)} fields, the header has {len(header)}"
      )
  return _without_row_index(header, body, nameless[0])
