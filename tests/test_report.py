"""Nutrition Facts: JSON round trip, HTML that parses and holds the numbers, PNG."""

import html.parser
import json

import numpy as np
import pytest

import metaval.api as api
from metaval.configlib import load
from metaval.data import get_task
from metaval.predictor import toy
from metaval.report import nutrition


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
