"""Nutrition Facts: JSON round trip, HTML that parses and holds the numbers, PNG."""

import html.parser
import json

import numpy as np
import pytest

import metaval.api as api
from metaval.configlib import load
from metaval.data import get_task
from metaval.errors import MetavalError
from metaval.predictor import toy
from metaval.report import nutrition, render


@pytest.fixture(scope="session")
def predictor_dir(tmp_path_factory):
  return toy.toy_predictor(str(tmp_path_factory.getbasetemp() / "toy_predictor"))


@pytest.fixture(scope="session")
def facts(predictor_dir):
  task = get_task("wine")
  y = (task.y[-25:] + 1) % 3  # label-flipped: a warning is expected
  f = api.load_predictor(predictor_dir).value((task.x[-25:], y))
  f.name = "flipped <wine> sample"  # escaped in HTML
  return f


class _Collect(html.parser.HTMLParser):
  def __init__(self):
    super().__init__()
    self.attrs, self.text, self.stack = [], [], []

  def handle_starttag(self, tag, attrs):
    if tag not in ("meta", "br"):  # void elements have no end tag
      self.stack.append(tag)
    self.attrs.append(dict(attrs))

  def handle_endtag(self, tag):
    assert self.stack and self.stack[-1] == tag, (self.stack, tag)
    self.stack.pop()

  def handle_data(self, data):
    self.text.append(data)


def test_json_round_trip(facts, tmp_path):
  path = facts.write_json(str(tmp_path / "f.json"))
  back = nutrition.NutritionFacts.from_dict(json.load(open(path)))
  assert back == facts


def test_html_parses_and_holds_the_numbers(facts, tmp_path):
  page = open(facts.write_html(str(tmp_path / "f.html"))).read()
  p = _Collect()
  p.feed(page)
  p.close()
  assert p.stack == []  # every tag closed
  values = [float(a["data-value"]) for a in p.attrs if "data-value" in a]
  assert values == [t.value for t in facts.targets]
  lows = [float(a["data-low"]) for a in p.attrs if "data-low" in a]
  assert np.allclose(lows, [t.low for t in facts.targets])
  text = "".join(p.text)
  assert f"{facts.targets[0].value:+.4f}" in text
  assert "flipped <wine> sample" in text and "<wine>" not in page
  for w in facts.warnings:
    assert w in text
  assert "http" not in page  # self-contained: no external resources


def test_png_is_written(facts, tmp_path):
  path = facts.write_png(str(tmp_path / "label.png"))
  data = open(path, "rb").read()
  assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_report_command_writes_all_three(predictor_dir, tmp_path):
  task = get_task("wine")
  npz = tmp_path / "supp.npz"
  np.savez(npz, x=task.x[:20], y=task.y[:20])
  cfg = load(
    "value:quick",
    [f"--config.predictor={predictor_dir}", f"--config.supplement.path={npz}"],
  )
  facts = nutrition.run(cfg, str(tmp_path / "out"))
  for ext in ("json", "html", "png"):
    assert (tmp_path / "out" / f"nutrition_facts.{ext}").stat().st_size > 0
  assert facts.name == "supp.npz"
  assert json.load(open(tmp_path / "out" / "nutrition_facts.json"))["supplement_size"] == 20


def _ten_class_facts():
  targets = [nutrition.TargetValue("test/accuracy", 0.02, 0.01, 0.03, 0.9, 0.022)]
  targets += [
    nutrition.TargetValue(f"test/class_{c}_accuracy", 0.001 * c, -0.01, 0.02) for c in range(10)
  ]
  return nutrition.NutritionFacts(
    task="digits",
    supplement_size=50,
    base_size=300,
    learner={"family": "linear"},
    learner_params=650,
    coverage=0.9,
    targets=targets,
    warnings=[],
  )


def test_png_draws_every_row_the_json_has(tmp_path):
  facts = _ten_class_facts()
  layout = render.png_layout(facts)
  in_json = [
    t["metric"] for t in json.load(open(facts.write_json(str(tmp_path / "f.json"))))["targets"]
  ]
  assert [t.metric for t in layout.rows] == in_json and len(in_json) == 11
  assert layout.omitted == 0 and layout.note is None
  data = open(facts.write_png(str(tmp_path / "all.png")), "rb").read()
  assert data[:8] == b"\x89PNG\r\n\x1a\n"


def test_png_says_how_many_rows_it_left_out(tmp_path):
  facts = _ten_class_facts()
  layout = render.png_layout(facts, max_rows=4)
  assert [t.metric for t in layout.rows] == [t.metric for t in facts.targets[:4]]
  assert layout.omitted == 7 and layout.note.startswith("7 more rows")
  assert open(facts.write_png(str(tmp_path / "cut.png"), max_rows=4), "rb").read()[:4] == b"\x89PNG"
  with pytest.raises(MetavalError, match="max_rows"):
    render.png_layout(facts, max_rows=0)
