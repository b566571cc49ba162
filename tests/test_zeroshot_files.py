"""``metaval value`` / ``metaval report`` with the zero-shot model on a user's own files."""

import csv
import json
import os

import numpy as np
import pytest
from sklearn.datasets import load_wine

import metaval
from metaval import cli
from metaval.configlib import load
from metaval.configured import facts_for_config
from metaval.errors import MetavalError
from metaval.zeroshot.files import supplement_paths


def _wine(seed: int):
  d = load_wine()
  i = np.random.default_rng(seed).permutation(len(d.target))
  return d, i[:60], i[60:100], i[100:]


def _write_csv(path, d, rows, columns):
  names = np.array(d.target_names)
  with open(path, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow([*columns, "target"])
    for j in rows:
      w.writerow(
        [*(repr(float(d.data[j, d.feature_names.index(c)])) for c in columns), names[d.target[j]]]
      )


def _config(**paths):
  cfg = load("value:zeroshot")
  for what, path in paths.items():
    cfg[what].path = str(path)
  return cfg


@pytest.mark.parametrize("seed", range(2))
def test_csv_files_are_valued_as_their_arrays_are_whatever_the_column_order(tmp_path, seed):
  d, b, s, t = _wine(seed)
  cols = list(d.feature_names)
  _write_csv(tmp_path / "b.csv", d, b, cols)
  _write_csv(tmp_path / "s.csv", d, s, cols[::-1])  # the supplement's columns reversed
  _write_csv(tmp_path / "t.csv", d, t, cols[3:] + cols[:3])
  cfg = _config(base=tmp_path / "b.csv", supplement=tmp_path / "s.csv", eval=tmp_path / "t.csv")
  cfg.task.label = "target"
  cfg.learner = "linear"
  facts = facts_for_config(cfg)
  names = np.array(d.target_names)
  expect = metaval.load_predictor().value(
    (d.data[s], names[d.target[s]]),
    base=(d.data[b], names[d.target[b]]),
    eval=(d.data[t], names[d.target[t]]),
    learner="linear",
  )
  assert facts.targets[0].value == expect.targets[0].value
  assert facts.learner["family"] == "linear" and facts.name == "s.csv"
  assert facts.supplement_size == len(s) and facts.base_size == len(b)


def test_a_base_archive_brings_its_own_evaluation_set(tmp_path):
  d, b, s, t = _wine(0)
  np.savez(tmp_path / "b.npz", x=d.data[b], y=d.target[b], x_test=d.data[t], y_test=d.target[t])
  np.savez(tmp_path / "b_only.npz", x=d.data[b], y=d.target[b])
  np.savez(tmp_path / "t.npz", x=d.data[t], y=d.target[t])
  np.savez(tmp_path / "s.npz", x=d.data[s], y=d.target[s])
  own = facts_for_config(_config(base=tmp_path / "b.npz", supplement=tmp_path / "s.npz"))
  given = facts_for_config(
    _config(base=tmp_path / "b_only.npz", supplement=tmp_path / "s.npz", eval=tmp_path / "t.npz")
  )
  held_out = facts_for_config(_config(base=tmp_path / "b_only.npz", supplement=tmp_path / "s.npz"))
  assert own.targets[0].value == given.targets[0].value
  assert own.base_size == len(b) and held_out.base_size < len(b)  # a quarter of B held out


def test_the_command_writes_facts_and_a_report_with_the_proxies(tmp_path):
  d, b, s, _ = _wine(0)
  np.savez(tmp_path / "b.npz", x=d.data[b], y=d.target[b])
  np.savez(tmp_path / "s.npz", x=d.data[s], y=d.target[s])
  args = [
    "--config",
    "value:zeroshot",
    f"--config.base.path={tmp_path / 'b.npz'}",
    f"--config.supplement.path={tmp_path / 's.npz'}",
  ]
  assert cli.main(["value", *args, "--workdir", str(tmp_path / "v")]) == 0
  facts = json.loads((tmp_path / "v" / "facts.json").read_text())
  assert facts["supplement_size"] == len(s)
  assert cli.main(["report", *args, "--workdir", str(tmp_path / "r")]) == 0
  page = (tmp_path / "r" / "nutrition_facts.html").read_text()
  assert "proxies.ridge_acc" in page  # nested diagnostics drawn as rows
  assert (tmp_path / "r" / "nutrition_facts.png").stat().st_size > 0


def test_missing_or_unreadable_files_are_one_line_errors(tmp_path):
  d, b, s, _ = _wine(0)
  np.savez(tmp_path / "b.npz", x=d.data[b], y=d.target[b])
  _write_csv(tmp_path / "b.csv", d, b, list(d.feature_names))
  (tmp_path / "bad.npz").write_bytes(b"not an archive")
  for cfg, match in [
    (_config(base=tmp_path / "b.npz"), "supplement.path"),
    (_config(supplement=tmp_path / "b.npz"), "no base set"),
    (_config(base=tmp_path / "b.npz", supplement=tmp_path / "bad.npz"), "supplement file"),
    (_config(base=tmp_path / "b.csv", supplement=tmp_path / "b.npz"), "no label column 'label'"),
    (_config(base=tmp_path / "b.npz", supplement=tmp_path / "s.txt"), r"\.npz \(x, y\) or a \.csv"),
  ]:
    with pytest.raises(MetavalError, match=match) as e:
      facts_for_config(cfg)
    assert "\n" not in str(e.value)


def test_several_supplement_files_are_ranked_as_rank_ranks_their_arrays(tmp_path):
  d, b, s, t = _wine(1)
  sets = {
    "clean.npz": (d.data[s], d.target[s]),
    "flipped.npz": (d.data[s], (d.target[s] + 1) % 3),
    "half.npz": (d.data[s[:20]], d.target[s[:20]]),
  }
  for name, (x, y) in sets.items():
    np.savez(tmp_path / name, x=x, y=y)
  np.savez(tmp_path / "b.npz", x=d.data[b], y=d.target[b], x_test=d.data[t], y_test=d.target[t])
  paths = ",".join(str(tmp_path / n) for n in sets)
  args = ["--config", "value:zeroshot", f"--config.base.path={tmp_path / 'b.npz'}"]
  assert (
    cli.main(
      ["value", *args, f"--config.supplement.path={paths}", "--workdir", str(tmp_path / "v")]
    )
    == 0
  )
  ranking = json.loads((tmp_path / "v" / "ranking.json").read_text())
  expect = metaval.load_predictor().rank(
    list(sets.values()),
    base=(d.data[b], d.target[b]),
    eval=(d.data[t], d.target[t]),
    names=list(sets),
  )
  assert [r["name"] for r in ranking] == [f.name for _, f in expect]
  assert [r["diagnostics"]["rank"] for r in ranking] == [1, 2, 3]
  assert ranking[-1]["name"] == "flipped.npz"
  assert [r["targets"][0]["value"] for r in ranking] == [f.targets[0].value for _, f in expect]
  # A pattern names the files it matches (sorted); one that matches none is an error.
  cfg = load("value:zeroshot")
  cfg.base.path, cfg.supplement.path = str(tmp_path / "b.npz"), str(tmp_path / "[cfh]*.npz")
  assert [f.name for f in facts_for_config(cfg)] == [r["name"] for r in ranking]
  cfg.supplement.path = str(tmp_path / "none_*.npz")
  with pytest.raises(MetavalError, match="matches no file"):
    facts_for_config(cfg)
  # A folder names its files, sorted, but the base's (b.npz lies beside them).
  cfg.supplement.path = str(tmp_path)
  folder = [f for f in sorted(os.listdir(tmp_path)) if f.endswith((".csv", ".npz"))]
  assert [os.path.basename(p) for p in supplement_paths(cfg)] == [f for f in folder if f != "b.npz"]
  empty = tmp_path / "empty"
  empty.mkdir()
  cfg.supplement.path = str(empty)
  with pytest.raises(MetavalError, match="holds no .csv or .npz file"):
    facts_for_config(cfg)
  with pytest.raises(MetavalError, match="draws one supplement"):
    cli_report = load("value:zeroshot")
    cli_report.base.path, cli_report.supplement.path = str(tmp_path / "b.npz"), paths
    from metaval.report.nutrition import run as report

    report(cli_report, str(tmp_path / "r"))


def test_text_columns_and_missing_cells_are_encoded_by_the_base_file(tmp_path):
  """A csv with a text column and empty cells: valued as the arrays the base's table
  makes of it (one-hot of the base's levels, the base's medians), and a level the base
  never has is said on the facts of the supplement that holds it."""
  rng = np.random.default_rng(0)
  kinds = np.array(["oak", "pine", "elm"])

  def rows(n, levels=3, odd=None):
    k = rng.integers(0, levels, n)
    v = rng.normal(size=n) + k
    cells = [[kinds[j] if odd is None or i % 4 else odd, "" if i % 5 == 0 else f"{v[i]:.3f}", f"c{j}"]
             for i, j in enumerate(k)]  # fmt: skip
    return cells, k, v

  header = ["kind", "v", "label"]
  b_rows, kb, vb = rows(80)
  s_rows, ks, vs = rows(30, odd="ash")
  t_rows, kt, vt = rows(60)
  for name, r in (("b", b_rows), ("s", s_rows), ("t", t_rows)):
    with open(tmp_path / f"{name}.csv", "w", newline="") as f:
      csv.writer(f).writerows([header, *r])
  cfg = _config(base=tmp_path / "b.csv", supplement=tmp_path / "s.csv", eval=tmp_path / "t.csv")
  facts = facts_for_config(cfg)

  median = float(np.median(vb[np.arange(80) % 5 != 0].round(3)))

  def encode(cells, k, v):
    idx = np.arange(len(k))
    level = np.array([c[0] for c in cells])
    onehot = (level[:, None] == np.array(["elm", "oak", "pine"])[None]).astype(float)
    miss = idx % 5 == 0
    return np.c_[onehot, np.where(miss, median, v.round(3)), miss], np.array([f"c{j}" for j in k])

  expect = metaval.load_predictor().value(
    encode(s_rows, ks, vs), base=encode(b_rows, kb, vb), eval=encode(t_rows, kt, vt)
  )
  assert facts.targets[0].value == expect.targets[0].value
  said = [w for w in facts.warnings if "supplement file" in w]
  assert len(said) == 1 and "column 'kind'" in said[0] and "'ash'" in said[0]
