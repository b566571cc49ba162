"""The zero-shot model on files: ``metaval value`` / ``metaval report`` with your own sets.

``metaval value --config value:zeroshot`` values a supplement file against a base
file (and an evaluation file, optional) with the zero-shot model shipped in the
package: nothing is trained, any tabular task, raw inputs. Each set is an ``.npz``
(arrays ``x [n, ...]`` and ``y [n]``; images are flattened) or a ``.csv`` with a header,
a label column (``task.label``, default ``label``) and feature columns: numbers, or
text levels (one-hot) and missing cells, encoded by a ``Table`` fitted on the base
file (``metaval.data.table``); the supplement's and the evaluation set's columns are
taken by the base's names, in any order, and encoded by the base's table. The
evaluation set is, in turn: ``eval.path``; the base archive's own ``x_test`` /
``y_test``; a stratified quarter of B held out (the model's default).
``task.name`` may name a built-in task (``wine``) instead of a base file. Several
supplement files, separated by commas, named by a pattern (``candidates/*.csv``) or by
a folder (its ``.csv`` and ``.npz`` files), are
ranked against each other (``rank()``): which of these sets would help this model most.
"""

from __future__ import annotations

import glob
import os

import numpy as np

from metaval.data.csvfile import read_table
from metaval.data.loaders import read_npz
from metaval.errors import MetavalError


class FileError(MetavalError):
  """A zero-shot query's files or config are unusable."""


def read_raw_set(
  path: str, what: str, label: str = "label", delimiter: str | None = None, table=None, notes=None
) -> tuple[np.ndarray, np.ndarray, object, tuple | None]:
  """One raw set from a file, checked as its loader checks it.

  Args:
    path: an ``.npz`` (``x``, ``y``) or a ``.csv`` (header, label column, features).
    what: the set's name in error messages.
    label: a csv's label column.
    delimiter: a csv's field separator.
    table: the base's ``Table`` for a csv (default: one fitted on this file).
    notes: a list that receives a csv's notes (missing cells filled, unkept levels).

  Returns:
    ``(x [n, d], y [n], the csv's Table or None, (x_test, y_test) or None)``; the
    last is an archive's own evaluation set when it holds one.

  Raises:
    FileError: a missing, damaged or malformed file, in one line.
  """
  try:
    if path.endswith(".csv"):
      x, y, table, said = read_table(path, label, delimiter, table=table)
      if notes is not None:
        notes += [f"{what} file {n}" for n in said]
      return x, y, table, None
    if path.endswith(".npz"):
      a = read_npz(path)
      x = np.asarray(a["x"])
      x = x.reshape(len(x), -1) if x.ndim > 2 else x  # images: one row of pixels each
      test = None
      if "x_test" in a and "y_test" in a:
        xt = np.asarray(a["x_test"])
        test = (xt.reshape(len(xt), -1) if xt.ndim > 2 else xt, a["y_test"])
      return x, a["y"], None, test
  except MetavalError as e:
    raise FileError(f"{what} file: {e}") from None
  raise FileError(f"{what} file {path!r} must be an .npz (x, y) or a .csv")


def supplement_paths(config) -> list[str]:
  """The supplement files a config names: ``supplement.path``, comma-separated; a
  pattern with ``*``, ``?`` or ``[`` names the files it matches, in sorted order; a
  folder names its ``.csv`` and ``.npz`` files, in sorted order, but the base's and
  the evaluation set's.

  Raises:
    FileError: a pattern that matches no file, a folder without such files.
  """
  paths = []
  for p in (p.strip() for p in str(config.supplement.path or "").split(",")):
    if p and any(c in p for c in "*?["):
      found = sorted(glob.glob(p))
      if not found:
        raise FileError(f"supplement pattern {p!r} matches no file")
      paths += found
    elif p and os.path.isdir(p):
      own = {os.path.realpath(str(q)) for q in (config.base.path, config.eval.path) if q}
      found = sorted(
        f
        for f in glob.glob(os.path.join(p, "*"))
        if f.endswith((".csv", ".npz")) and os.path.isfile(f) and os.path.realpath(f) not in own
      )
      if not found:
        raise FileError(f"supplement folder {p!r} holds no .csv or .npz file but the base's")
      paths += found
    elif p:
      paths.append(p)
  return paths


def facts_for_config(config, predictor):
  """Values the supplement file(s) of ``config.supplement.path`` with a zero-shot model.

  Args:
    config: a ``value`` config: ``supplement.path`` (required: one file, or several
      separated by commas), ``base.path`` or a built-in ``task.name``, optional
      ``eval.path`` and ``learner``; ``task.label`` and ``task.delimiter`` for csv
      files.
    predictor: a ``metaval.zeroshot.ZeroShotPredictor``.

  Returns:
    The supplement's Nutrition Facts; for several files, theirs in ``rank()`` order,
    best first (each ``facts.diagnostics["rank"]`` its place, from 1).

  Raises:
    FileError: no supplement or base given, or an unreadable file.
  """
  task = config.get("task") or {}
  label = str(task.get("label") or "label")
  delimiter = task.get("delimiter") or None  # None: found from each file
  paths = supplement_paths(config)
  if not paths:
    raise FileError(
      "the zero-shot model values a set you give: set --config.supplement.path (.npz or .csv)"
    )
  base_path = config.base.path if "base" in config else ""
  eval_path = config.eval.path if "eval" in config else ""
  table, evaluation, notes = None, None, []
  if base_path:
    xb, yb, table, evaluation = read_raw_set(base_path, "base", label, delimiter, notes=notes)
    base = (xb, yb)
  elif task.get("name"):
    base = str(task.get("name"))  # a built-in task: its pool and its test set
  else:
    raise FileError("no base set: set --config.base.path (.npz or .csv) or --config.task.name")
  said = [[] for _ in paths]  # each supplement's notes go on its own facts
  sets = [
    read_raw_set(p, "supplement", label, delimiter, table, n)[:2] for p, n in zip(paths, said)
  ]
  if eval_path:
    xe, ye, _, _ = read_raw_set(eval_path, "eval", label, delimiter, table, notes)
    evaluation = (xe, ye)
  learner = config.get("learner") or None
  names = [os.path.basename(p) for p in paths]
  if len(sets) == 1:
    facts = predictor.value(sets[0], base, evaluation, learner, name=names[0])
    facts.warnings += notes + said[0]
    return facts
  ranked = predictor.rank(sets, base, evaluation, learner, names=names)
  for place, (i, facts) in enumerate(ranked, 1):
    facts.diagnostics["rank"] = place
    facts.warnings += notes + said[i]
  return [facts for _, facts in ranked]


def ranking_text(ranked) -> str:
  """A table of ranked supplements: place, name, predicted gain and its interval."""
  rows = [f"{'rank':>4}  {'supplement':<32} {'gain':>8}  interval"]
  for f in ranked:
    t = f.targets[0]
    rows.append(
      f"{f.diagnostics['rank']:>4}  {f.name[:32]:<32} {t.value:+8.4f}  [{t.low:+.4f}, {t.high:+.4f}]"
    )
  return "\n".join(rows)
