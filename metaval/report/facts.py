"""Nutrition Facts, the data: a supplemental set's predicted value, per metric.

``NutritionFacts`` holds, per evaluation metric, the predicted improvement with its
interval and its share of the base model's own score, plus warnings (duplicates,
label noise, constant inputs, out of domain, extrapolation). The value API
(``metaval.api``) returns it; ``metaval.report.render`` draws it as HTML and PNG.
"""

from __future__ import annotations

import dataclasses
import json

from metaval.errors import MetavalError
from metaval.report import render
from metaval.util import io


class ReportError(MetavalError):
  """Facts cannot be written (bad path or content)."""


@dataclasses.dataclass
class TargetValue:
  """One metric's line on the label.

  Attributes:
    metric: metric name (higher is better), e.g. ``"test/accuracy"``.
    value: predicted improvement metric(B ∪ S) - metric(B).
    low, high: calibrated interval (nominal ``coverage`` of the facts).
    base_metric: the base model's own score on this metric (None if unknown).
    share_of_base: ``value / base_metric`` for accuracy metrics (None otherwise).
  """

  metric: str
  value: float
  low: float
  high: float
  base_metric: float | None = None
  share_of_base: float | None = None


@dataclasses.dataclass
class NutritionFacts:
  """The predicted value of one supplemental set S for a base B and learner."""

  task: str
  supplement_size: int
  base_size: int
  learner: dict
  learner_params: int
  coverage: float
  targets: list[TargetValue]
  warnings: list[str]
  diagnostics: dict = dataclasses.field(default_factory=dict)
  predictor: str = ""
  name: str = "supplemental set"

  # -- JSON --------------------------------------------------------------------

  def to_dict(self) -> dict:
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, d: dict) -> NutritionFacts:
    d = dict(d)
    d["targets"] = [TargetValue(**t) for t in d["targets"]]
    return cls(**d)

  def write_json(self, path: str) -> str:
    _write_text(path, json.dumps(self.to_dict(), indent=2))
    return path

  # -- text --------------------------------------------------------------------

  def text(self) -> str:
    """A plain-text label for the terminal."""
    lines = [
      "Nutrition Facts",
      f"  {self.name}",
      f"  task {self.task}  |S| = {self.supplement_size}  |B| = {self.base_size}",
      f"  learner {self.learner.get('family', '?')} ({self.learner_params:,} params)",
      f"  predicted improvement (interval: {self.coverage:.0%})",
    ]
    for t in self.targets:
      share = f"  ({t.share_of_base:+.1%} of base)" if t.share_of_base is not None else ""
      lines.append(f"    {t.metric:28s} {t.value:+.4f}  [{t.low:+.4f}, {t.high:+.4f}]{share}")
    if self.warnings:
      lines.append("  warnings:")
      lines += [f"    ! {w}" for w in self.warnings]
    else:
      lines.append("  warnings: none")
    return "\n".join(lines)

  # -- HTML --------------------------------------------------------------------

  # -- HTML and PNG (``render``) -----------------------------------------------

  def to_html(self) -> str:
    """A self-contained HTML page (inline CSS, no scripts, no external files)."""
    return render.to_html(self)

  def write_html(self, path: str) -> str:
    _write_text(path, self.to_html())
    return path

  def write_png(self, path: str, max_rows: int | None = None) -> str:
    """A PNG label laid out like a food label; every metric row unless ``max_rows`` cuts."""
    return render.write_png(self, path, max_rows)


def _write_text(path: str, text: str) -> None:
  try:
    io.write_text(path, text)
  except OSError as e:
    raise ReportError(f"cannot write {path!r}: {e.strerror}") from None
