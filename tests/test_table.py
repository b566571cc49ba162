"""CSV columns as numbers (``metaval.data.table``): text levels, missing cells, one encoding."""

import csv
import warnings

import numpy as np
import pytest

from metaval.data import get_task, read_csv, read_set, read_table
from metaval.data.table import MAX_LEVELS
from metaval.errors import MetavalError


def _write(path, header, rows):
  with open(path, "w", newline="") as f:
    csv.writer(f).writerows([header, *rows])
  return str(path)


def _one_line(fn, *args, match, **kw):
  with pytest.raises(MetavalError, match=match) as e:
    fn(*args, **kw)
  assert "\n" not in str(e.value)
  return str(e.value)


def test_a_numeric_file_without_missing_cells_is_its_own_numbers(tmp_path):
  x = np.random.default_rng(0).normal(size=(20, 3)) * [1, 1e6, 1e-6]
  path = _write(
    tmp_path / "n.csv",
    ["f0", "f1", "f2", "label"],
    [[*(repr(float(v)) for v in r), i % 2] for i, r in enumerate(x)],
  )
  got, y, table, notes = read_table(path)
  np.testing.assert_array_equal(got, x)
  assert table.plain and table.names == ("f0", "f1", "f2") and notes == []
  np.testing.assert_array_equal(y, np.arange(20) % 2)


def test_text_columns_are_one_hot_by_the_base_levels_and_other_files_follow_them(tmp_path):
  header = ["size", "color", "target"]
  base = [[str(i), ["red", "blue", "green"][i % 3], "ab"[i % 2]] for i in range(12)]
  b = _write(tmp_path / "b.csv", header, base)
  xb, _, table, notes = read_table(b, "target")
  assert table.names == ("size", "color=blue", "color=green", "color=red") and notes == []
  np.testing.assert_array_equal(xb[:3, 1:], [[0, 0, 1], [1, 0, 0], [0, 1, 0]])
  # A supplement: its columns in another order, one level the base never has.
  rows = [["a", "blue", "4"], ["b", "violet", "5"], ["a", "red", "6"]]
  s = _write(tmp_path / "s.csv", ["target", "color", "size"], rows)
  xs, ys, _, notes = read_table(s, "target", table=table)
  np.testing.assert_array_equal(xs, [[4, 1, 0, 0], [5, 0, 0, 0], [6, 0, 0, 1]])
  assert ys.tolist() == ["a", "b", "a"]
  assert len(notes) == 1 and "1 cell(s) of column 'color'" in notes[0] and "'violet'" in notes[0]


def test_missing_cells_take_the_base_median_with_a_missing_column_where_the_base_has_them(tmp_path):
  rows = [["1", "10", "0"], ["", "20", "1"], ["3", "30", "0"], ["NA", "40", "1"], ["7", "?", "0"]]
  b = _write(tmp_path / "b.csv", ["a", "b", "label"], rows)
  xb, _, table, _ = read_table(b)
  assert table.names == ("a", "a (missing)", "b", "b (missing)")
  np.testing.assert_array_equal(xb[:, 0], [1, 3, 3, 3, 7])  # median of 1, 3, 7
  np.testing.assert_array_equal(xb[:, 1], [0, 1, 0, 1, 0])
  np.testing.assert_array_equal(xb[:, 2], [10, 20, 30, 40, 25])
  # Missing text is a level of its own.
  c = _write(
    tmp_path / "c.csv", ["k", "label"], [["x", 0], ["", 1], ["y", 0], ["null", 1], ["x", 0]]
  )
  xc, _, tc, _ = read_table(c)
  assert tc.names == ("k=(missing)", "k=x", "k=y")
  np.testing.assert_array_equal(xc[1], [1, 0, 0])
  # A column the base has full: a supplement's missing cells take its median, with a note.
  t = _write(
    tmp_path / "t.csv", ["a", "b", "label"], [["1", "1", "0"], ["3", "1", "1"], ["5", "1", "0"]]
  )
  _, _, full, _ = read_table(t)
  xs, _, _, notes = read_table(
    _write(tmp_path / "s.csv", ["a", "b", "label"], [["", "2", "0"]]), table=full
  )
  np.testing.assert_array_equal(xs, [[3, 2]])
  assert len(notes) == 1 and "column 'a'" in notes[0] and "median" in notes[0]


def test_numbers_with_some_text_are_refused_naming_the_cell(tmp_path):
  rows = [[str(v), "0"] for v in range(9)] + [["12 kg", "1"]]
  path = _write(tmp_path / "m.csv", ["w", "label"], rows)
  msg = _one_line(read_csv, path, match="column 'w' holds numbers and some text")
  assert "data row 10" in msg and "12 kg" in msg
  _one_line(get_task, f"csv:{path}", match="column 'w'")
  # A numeric column of the base holding text in another file.
  _, _, table, _ = read_table(_write(tmp_path / "b.csv", ["w", "label"], [["1", "0"], ["2", "1"]]))
  s = _write(tmp_path / "s.csv", ["w", "label"], [["3", "0"], ["heavy", "1"]])
  _one_line(read_table, s, table=table, match="column 'w' is not numeric.*data row 2.*heavy")
  inf = _write(tmp_path / "i.csv", ["w", "label"], [["1", "0"], ["inf", "1"]])
  _one_line(read_csv, inf, match="column 'w' has 'inf' in data row 2")


def test_only_the_most_frequent_levels_get_a_column(tmp_path):
  levels = [f"l{i:02d}" for i in range(MAX_LEVELS + 8)]
  # l00..: the first MAX_LEVELS levels appear 3 times, the rest once.
  cells = [v for v in levels[:MAX_LEVELS] for _ in range(3)] + levels[MAX_LEVELS:]
  path = _write(tmp_path / "l.csv", ["k", "label"], [[v, i % 2] for i, v in enumerate(cells)])
  x, _, table, notes = read_table(path)
  assert table.names == tuple(f"k={v}" for v in levels[:MAX_LEVELS])
  assert x.shape == (len(cells), MAX_LEVELS) and x[-8:].sum() == 0
  assert len(notes) == 1 and f"{MAX_LEVELS} most frequent" in notes[0]


def test_a_csv_task_with_text_columns_reads_its_other_files_through_its_own_table(tmp_path):
  rng = np.random.default_rng(0)
  colors = np.array(["red", "blue", "green"])
  n = 90
  c, v = rng.integers(0, 3, n), rng.normal(size=n)
  y = np.where(c == 0, "yes", "no")
  rows = [[f"{v[i]:.4f}", colors[c[i]], "" if i % 7 == 0 else f"{i}", y[i]] for i in range(n)]
  path = _write(tmp_path / "d.csv", ["v", "color", "n", "target"], rows)
  task = get_task(f"csv:{path}", label="target", test_size=30)
  table = task.transform.table
  assert table.names == ("v", "color=blue", "color=green", "color=red", "n", "n (missing)")
  assert task.x.shape == (60, 6) and task.transform.feature_names == ("v", "color", "n")
  # A supplement file, columns shuffled: read_set encodes it as the task's own rows.
  s = _write(tmp_path / "s.csv", ["target", "n", "color", "v"], [r[::-1] for r in rows[:10]])
  with warnings.catch_warnings():
    warnings.simplefilter("error")  # nothing to say: every level and column is known
    xs, ys = read_set(s, task)
  x_all, _, _ = read_csv(path, "target")
  np.testing.assert_array_equal(xs, x_all[:10])
  np.testing.assert_allclose(task.encode(xs), task.transform.standardise(x_all[:10]))
  assert list(ys) == list(y[:10])
  # An unknown level is said, not hidden.
  odd = _write(tmp_path / "o.csv", ["v", "color", "n", "target"], [["0.1", "mauve", "3", "no"]])
  with pytest.warns(UserWarning, match="column 'color'.*'mauve'"):
    read_set(odd, task)


def test_a_file_is_encoded_the_same_whether_fitted_on_or_not(tmp_path):
  """Fitting on a file keeps its parsed columns for its own encoding (one parse): the
  result equals encoding it again through the fitted table, cell for cell; numbers
  padded with spaces, missing tokens, a literal "nan" and a text column whose cells in
  another file all read as numbers are placed alike."""
  header = ["a", "b", "code", "label"]
  rows = [
    [" 1.5", "2", "x", "0"],
    ["NA", "3e2", "y", "1"],
    ["2", "nan", "7", "0"],
    ["4 ", "", "x", "1"],
    ["8", "1", "y", "0"],
  ]
  path = _write(tmp_path / "b.csv", header, rows)
  x, _, table, notes = read_table(path)
  again, _, _, notes_again = read_table(path, table=table)
  np.testing.assert_array_equal(x, again)
  assert notes == notes_again
  assert table.names == ("a", "a (missing)", "b", "b (missing)", "code=7", "code=x", "code=y")
  np.testing.assert_array_equal(x[:, :4], [[1.5, 0, 2, 0], [3, 1, 300, 0], [2, 0, 2, 1],
                                           [4, 0, 2, 1], [8, 0, 1, 0]])  # fmt: skip
  other = _write(tmp_path / "s.csv", header, [["1", "1", " 7", "0"], ["1", "1", "7 ", "1"]])
  xs, _, _, notes = read_table(other, table=table)
  np.testing.assert_array_equal(xs[:, 4:], [[1, 0, 0], [1, 0, 0]])
  assert notes == []


def test_numbers_written_for_people_are_read_as_numbers(tmp_path):
  """Percent and currency signs and digit grouping, one convention per column: a
  decimal comma column, a point-and-comma-groups column and percentages are numbers;
  so are dates."""
  rows = [
    ["12%", "$1,250.50", "1.250,5", "0"],
    ["3.5%", "$999", "3,7", "1"],
    ["-1%", "€12", "12", "0"],
    ["", "£0.5", ",5", "1"],
  ]
  path = _write(tmp_path / "w.csv", ["pct", "money", "eu", "label"], rows)
  x, _, table, _ = read_table(path)
  assert table.names == ("pct", "pct (missing)", "money", "eu")  # numeric, one column each
  np.testing.assert_allclose(x[:, 0], [12.0, 3.5, -1.0, 3.5])  # the missing cell: median
  np.testing.assert_allclose(x[:, 2], [1250.5, 999.0, 12.0, 0.5])
  np.testing.assert_allclose(x[:, 3], [1250.5, 3.7, 12.0, 0.5])
  # Dates, year first, are days since 1970 (a time of day a fraction of one).
  rows = [["2024-01-05", "0"], ["2024/01/06 12:00", "1"], ["", "0"], ["1970-01-01", "1"]]
  x, _, table, _ = read_table(_write(tmp_path / "d.csv", ["day", "label"], rows))
  assert table.names == ("day", "day (missing)")
  np.testing.assert_allclose(x[:, 0], [19727.0, 19728.5, 19727.0, 0.0])
  # Day first or month first, when a cell says which (a field above 12); the same days.
  days = [19727.0, 19750.0, 19727.5, 19806.0]  # 5 and 28 January, 5 January noon, 24 March
  for cells in (
    ["05/01/2024", "28/01/2024", "5/1/2024 12:00", "24.03.2024"],
    ["01/05/2024", "01/28/2024", "1/5/2024 12:00", "03-24-2024"],
    ["2024-1-5", "2024/01/28", "2024-01-05T12:00", "2024-03-24"],
    ["5 Jan 2024", "28-Jan-2024", "05 January, 2024 12:00", "24 Mar 2024"],
    ["Jan 5, 2024", "January 28 2024", "Jan. 5, 2024 12:00", "Mar 24, 2024"],
  ):
    rows = [[c, str(i % 2)] for i, c in enumerate(cells)]
    x, _, table, _ = read_table(_write(tmp_path / "dm.csv", ["day", "label"], rows))
    assert table.names == ("day",), cells
    np.testing.assert_allclose(x[:, 0], days, err_msg=str(cells))
  # Still text: units, lists of numbers, impossible dates, dates that read both ways
  # (every field 12 or less) or neither (a day above 12 both first and second).
  for cells in (
    ["12 kg", "13 kg"],
    ["1,2,3", "4,5,6"],
    ["2024-02-31", "2024-03-01"],
    ["05/01/2024", "06/01/2024"],
    ["25/01/2024", "01/25/2024"],
    ["31/02/2024", "15/01/2024"],
    ["5 Jab 2024", "6 Jan 2024"],
    ["2024-01-05 25:00", "2024-01-06"],
  ):
    p = _write(tmp_path / "t.csv", ["c", "label"], [[c, str(i)] for i, c in enumerate(cells * 3)])
    assert read_table(p)[2].columns[0].kind == "categorical", cells


@pytest.mark.parametrize("sep", [";", "\t", "|"])
def test_the_field_separator_is_found_from_the_file(tmp_path, sep):
  rng = np.random.default_rng(0)
  x = rng.normal(size=(12, 3)).round(3)
  lines = [sep.join(["a", "b", "c", "label"])] + [
    sep.join([*(str(v) for v in r), str(i % 2)]) for i, r in enumerate(x)
  ]
  path = tmp_path / "s.csv"
  path.write_text("\n".join(lines) + "\n")
  got, y, table, _ = read_table(str(path))
  np.testing.assert_array_equal(got, x)
  assert table.names == ("a", "b", "c")
  # Given explicitly, the separator is used as given (a comma here: one column).
  _one_line(read_table, str(path), delimiter=",", match="no label column 'label'")


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "cp1252", "latin-1"])
def test_a_file_in_a_spreadsheets_text_encoding_reads_the_same(tmp_path, encoding):
  # A European export: semicolons, decimal commas, accented levels, a euro sign.
  rows = [["größe;stadt;preis;label"]] + [
    [
      f"{i},5;{'Zürich' if i % 3 else 'Besançon'};{'€' if encoding != 'latin-1' else ''}{i}0;{i % 2}"
    ]
    for i in range(12)
  ]
  text = "\r\n".join(r[0] for r in rows) + "\r\n"
  path = tmp_path / "e.csv"
  path.write_bytes(text.encode(encoding))
  x, y, table, _ = read_table(str(path))
  assert table.names[:1] == ("größe",)
  assert "stadt=Besançon" in table.names and "stadt=Zürich" in table.names
  np.testing.assert_allclose(x[:, 0], np.arange(12) + 0.5)
  np.testing.assert_allclose(x[:, -1], [10 * i for i in range(12)])
  np.testing.assert_array_equal(y, np.arange(12) % 2)


def test_a_file_that_is_not_text_is_refused_in_one_line(tmp_path):
  for name, data, match in (
    ("nul", b"a,b,label\n1,\x002,0\n", "not text: it holds NUL bytes"),
    ("bad_utf16", b"\xff\xfea\x00,\x00b", "starts as UTF-16 text but is not"),
  ):
    path = tmp_path / f"{name}.csv"
    path.write_bytes(data)
    _one_line(read_table, str(path), match=match)


@pytest.mark.parametrize("first", ["", "Unnamed: 0"])
def test_a_nameless_first_column_numbering_the_rows_is_left_out(tmp_path, first):
  # What pandas' to_csv writes first: the row index, from 0, from a slice's start, or
  # shuffled. As a feature it would tell the learner the order the file was written in.
  rng = np.random.default_rng(0)
  x = rng.normal(size=(12, 2)).round(3)
  for ids in (range(12), range(100, 112), rng.permutation(12)):
    rows = [[str(i), *map(str, r), str(j % 2)] for j, (i, r) in enumerate(zip(ids, x))]
    got, y, table, notes = read_table(_write(tmp_path / "i.csv", [first, "a", "b", "label"], rows))
    assert table.names == ("a", "b")
    np.testing.assert_array_equal(got, x)
    assert notes == [
      f"the first column has no name and numbers the rows ({ids[0]}, {ids[1]}, ...): "
      "read as the file's row index and left out"
    ]
  # Nameless but not a row number (a repeat, a fraction): a feature named by position.
  for cells in (["1"] * 12, [f"{v}" for v in x[:, 0]]):
    rows = [[c, *map(str, r), str(j % 2)] for j, (c, r) in enumerate(zip(cells, x))]
    _, _, table, notes = read_table(_write(tmp_path / "n.csv", [first, "a", "b", "label"], rows))
    assert table.names == ("column 1", "a", "b") and notes == []
  # Two nameless columns are two features, not a repeated name.
  rows = [[str(i), "2", "3", str(i % 2)] for i in range(4)]
  _, _, table, _ = read_table(_write(tmp_path / "t.csv", ["a", "", "", "label"], rows))
  assert table.names == ("a", "column 2", "column 3")


def test_labels_that_differ_only_in_case_are_noted(tmp_path):
  rows = [[str(i), ["Yes", "No", "yes"][i % 3]] for i in range(9)]
  _, y, _, notes = read_table(_write(tmp_path / "c.csv", ["a", "label"], rows))
  assert sorted(set(y)) == ["No", "Yes", "yes"]
  assert notes == [
    "label column 'label' holds 'Yes' and 'yes', which differ only in case: "
    "they are read as different classes"
  ]
  with pytest.warns(UserWarning, match="differ only in case"):
    get_task(f"csv:{tmp_path / 'c.csv'}")
