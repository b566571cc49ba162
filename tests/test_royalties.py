"""Royalty ledger: exact decimal payments, negative-value policy, auditability."""

import json
from decimal import Decimal

import numpy as np
import pytest

from metaval.valuation import royalties
from metaval.valuation.royalties import LedgerError, build_ledger, verify_ledger


def _paid(ledger):
  return {e["contributor"]: Decimal(e["payment"]) for e in ledger["entries"]}


def test_three_equal_shares_of_100_sum_exactly_with_deterministic_tie_break():
  led = build_ledger(
    {"b": 1.0, "a": 1.0, "c": 1.0}, revenue_per_inference="0.01", num_inferences=10_000
  )
  paid = _paid(led)
  assert sum(paid.values()) == Decimal("100.00") == Decimal(led["pool"])
  # 10000 cents / 3 = 3333 r 1: the extra cent goes to the name that sorts first.
  assert paid == {"a": Decimal("33.34"), "b": Decimal("33.33"), "c": Decimal("33.33")}


@pytest.mark.parametrize("seed", range(5))
def test_random_values_pay_exactly_the_pool_and_within_one_unit_of_the_quota(seed):
  rng = np.random.default_rng(seed)
  n = int(rng.integers(2, 40))
  vals = {f"c{i}": float(v) for i, v in enumerate(rng.exponential(size=n) * 1e-3)}
  rate, count = "0.0037", int(rng.integers(1, 10**7))
  led = build_ledger(vals, revenue_per_inference=rate, num_inferences=count, unit="0.01")
  paid = _paid(led)
  pool = Decimal(rate) * count
  assert Decimal(led["pool"]) == pool
  assert sum(paid.values()) + Decimal(led["undistributed"]) == pool
  assert Decimal(led["undistributed"]) < Decimal("0.01")
  total_w = sum(Decimal(repr(v)) for v in vals.values())
  units = int(Decimal(led["distributed"]) / Decimal("0.01"))
  for k, v in vals.items():
    quota = units * Decimal(repr(v)) / total_w  # in cents
    assert abs(paid[k] * 100 - quota) < 1, (k, paid[k], quota)
  verify_ledger(led)


def test_negative_values_are_clipped_to_zero_and_the_rest_renormalised():
  led = build_ledger(
    {"good": 0.03, "bad": -0.02, "ok": 0.01}, revenue_per_inference="1", num_inferences=1000
  )
  paid = _paid(led)
  assert paid == {"good": Decimal("750.00"), "bad": Decimal("0.00"), "ok": Decimal("250.00")}
  with pytest.raises(LedgerError, match="negative value.*bad"):
    build_ledger(
      {"good": 0.03, "bad": -0.02},
      revenue_per_inference="1",
      num_inferences=10,
      negative_policy="error",
    )
  with pytest.raises(LedgerError, match="no contributor has a positive value"):
    build_ledger({"a": -1.0, "b": 0.0}, revenue_per_inference="1", num_inferences=10)


def test_numpy_scalars_are_read_as_plain_numbers():
  led = build_ledger(
    {"a": np.float64(0.25), "b": np.float32(0.75), "c": np.int64(0)},
    revenue_per_inference="1",
    num_inferences=100,
  )
  assert led["inputs"]["values"] == {"a": "0.25", "b": "0.75", "c": "0"}
  assert _paid(led) == {"a": Decimal("25.00"), "b": Decimal("75.00"), "c": Decimal("0.00")}


def test_sub_unit_remainder_is_recorded_not_lost():
  led = build_ledger({"a": 1, "b": 2}, revenue_per_inference="0.001", num_inferences=7)
  assert led["pool"] == "0.007" and led["distributed"] == "0.00"
  assert Decimal(led["undistributed"]) == Decimal("0.007")
  assert sum(_paid(led).values()) == 0


def test_tampering_is_detected_and_a_clean_file_round_trips(tmp_path):
  # Names out of sorted order: the file (sorted keys) must rebuild to the same hash.
  led = build_ledger({"zed": 0.2, "amy": 0.1}, revenue_per_inference="0.5", num_inferences=99)
  assert [e["contributor"] for e in led["entries"]] == ["amy", "zed"]
  path = str(tmp_path / "ledger.json")
  royalties.write_ledger(led, path)
  assert royalties.load_ledger(path)["sha256"] == led["sha256"]
  raw = json.loads(open(path).read())
  raw["entries"][0]["payment"] = str(Decimal(raw["entries"][0]["payment"]) + 1)
  with pytest.raises(LedgerError, match="hash"):
    verify_ledger(raw)
  # Re-hashing a tampered ledger still fails: payments must follow from the inputs.
  raw["entries"][1]["payment"] = str(Decimal(raw["entries"][1]["payment"]) - 1)
  raw["sha256"] = royalties._digest(raw)
  with pytest.raises(LedgerError, match="do not follow from the ledger's inputs"):
    verify_ledger(raw)


@pytest.mark.parametrize(
  "kwargs, needle",
  [
    ({"revenue_per_inference": "abc", "num_inferences": 1}, "not a number"),
    ({"revenue_per_inference": "-1", "num_inferences": 1}, ">= 0"),
    ({"revenue_per_inference": "1", "num_inferences": 1.5}, "whole number"),
    ({"revenue_per_inference": "1", "num_inferences": 1, "unit": "0"}, "unit must be positive"),
    ({"revenue_per_inference": "1", "num_inferences": 1, "negative_policy": "x"}, "policy"),
  ],
)
def test_bad_inputs_name_the_problem(kwargs, needle):
  with pytest.raises(LedgerError, match=needle):
    build_ledger({"a": 1.0}, **kwargs)
  with pytest.raises(LedgerError, match="finite"):
    build_ledger({"a": float("nan")}, revenue_per_inference="1", num_inferences=1)
