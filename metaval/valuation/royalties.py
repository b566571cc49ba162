"""Royalty ledger: turn contributors' values into payments that sum exactly to the pool.

The pool is ``revenue_per_inference × num_inferences`` in exact decimal
arithmetic (``decimal.Decimal``; floats never touch money). Payments are
proportional to each contributor's *weight*, rounded to the smallest currency
unit by the largest-remainder (Hamilton) method, so they sum exactly to the
pool:

1. every contributor gets ``floor(quota)`` units, where
   ``quota_i = pool_units · w_i / Σ w`` is computed as an exact fraction;
2. the units left over (fewer than the number of contributors) go one each to
   the largest fractional parts; ties go to the contributor name that sorts
   first, so the ledger is deterministic.

Negative values (a contributor whose data *hurt* the model) need a policy,
because a payment cannot be negative and proportional splitting of a signed
total is meaningless:

* ``"clip"`` (default): a negative value gets weight 0 (pays nothing, owes
  nothing) and the pool is split among the positive values in proportion
  (i.e. clipped to zero and renormalised);
* ``"error"``: any negative value is an error; the caller decides.

If no contributor has a positive value there is nothing to split in proportion
and ``build_ledger`` raises. If ``revenue × inferences`` is not a whole number
of currency units, the sub-unit remainder is recorded as ``undistributed``.

The ledger is a JSON object holding the inputs (values as decimal strings),
every contributor's weight, share, payment, the totals and a SHA-256 of the
canonical JSON of all of it; ``verify_ledger`` recomputes both the hash and the
payments from the inputs, so a ledger can be audited from the file alone.
"""

from __future__ import annotations

import decimal
import fractions
import hashlib
import json
import math
from decimal import Decimal

import numpy as np

from metaval.errors import MetavalError
from metaval.util import io as io_lib

LEDGER_VERSION = 1
POLICIES = ("clip", "error")


class LedgerError(MetavalError):
  """Royalty inputs or a ledger file are not valid."""


def to_decimal(x, what: str = "value") -> Decimal:
  """Exact decimal of a string, int, Decimal or float (floats via their shortest repr)."""
  if isinstance(x, bool):
    raise LedgerError(f"{what} must be a number, got a bool")
  if isinstance(x, np.integer):
    x = int(x)
  if isinstance(x, (float, np.floating)):
    x = float(x)  # numpy scalars too (their repr is not a plain number)
    if not math.isfinite(x):
      raise LedgerError(f"{what} must be finite, got {x}")
    x = repr(x)  # The shortest string that round-trips: what a reader sees.
  try:
    d = Decimal(str(x)) if not isinstance(x, Decimal) else x
  except decimal.InvalidOperation:
    raise LedgerError(f"{what} is not a number: {x!r}") from None
  if not d.is_finite():
    raise LedgerError(f"{what} must be finite, got {x!r}")
  return d


def largest_remainder(weights: list[Decimal], units: int, names: list[str]) -> list[int]:
  """Splits ``units`` whole units in proportion to non-negative ``weights``.

  Args:
    weights: non-negative decimals, not all zero.
    units: whole units to hand out (>= 0).
    names: tie-break key (ties go to the name that sorts first).

  Returns:
    Integer units per weight, summing exactly to ``units``.
  """
  total = sum((fractions.Fraction(w) for w in weights), fractions.Fraction(0))
  if total <= 0 or any(w < 0 for w in weights):
    raise LedgerError("weights must be non-negative with a positive sum")
  quotas = [units * fractions.Fraction(w) / total for w in weights]  # exact
  base = [math.floor(q) for q in quotas]
  left = units - sum(base)
  order = sorted(range(len(weights)), key=lambda i: (-(quotas[i] - base[i]), names[i]))
  for i in order[:left]:
    base[i] += 1
  return base


def _canonical(obj) -> bytes:
  return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _digest(ledger: dict) -> str:
  body = {k: v for k, v in ledger.items() if k != "sha256"}
  return hashlib.sha256(_canonical(body)).hexdigest()


def build_ledger(
  values: dict,
  *,
  revenue_per_inference,
  num_inferences: int,
  unit="0.01",
  currency: str = "USD",
  negative_policy: str = "clip",
  source: str = "",
) -> dict:
  """Builds an auditable royalty ledger.

  Args:
    values: contributor name -> value (e.g. Shapley value in metric units); any
      scale, only proportions matter. Floats are read through their shortest repr.
    revenue_per_inference: revenue attributable to the data per inference
      (string or Decimal preferred, e.g. ``"0.002"``).
    num_inferences: number of inferences served (integer >= 0).
    unit: smallest currency unit (e.g. ``"0.01"``).
    currency: currency code, recorded only.
    negative_policy: ``"clip"`` or ``"error"`` (see the module docstring).
    source: free text naming where the values came from.

  Returns:
    The ledger as a JSON-ready dict; payments are decimal strings summing exactly
    to ``distributed`` (= the pool, less any sub-unit remainder).

  Raises:
    LedgerError: bad amounts, unknown policy, negative values under ``"error"``,
      or no positive value to split in proportion.
  """
  if not values:
    raise LedgerError("no contributors: nothing to pay")
  if negative_policy not in POLICIES:
    raise LedgerError(f"negative_policy must be one of {POLICIES}, got {negative_policy!r}")
  if isinstance(num_inferences, bool) or int(num_inferences) != num_inferences:
    raise LedgerError(f"num_inferences must be a whole number, got {num_inferences!r}")
  num_inferences = int(num_inferences)
  if num_inferences < 0:
    raise LedgerError(f"num_inferences must be >= 0, got {num_inferences}")
  rate = to_decimal(revenue_per_inference, "revenue_per_inference")
  if rate < 0:
    raise LedgerError(f"revenue_per_inference must be >= 0, got {rate}")
  unit_d = to_decimal(unit, "unit")
  if unit_d <= 0:
    raise LedgerError(f"unit must be positive, got {unit_d}")
  if len({str(k) for k in values}) != len(values):
    raise LedgerError("contributor names must be unique")
  # Entries in name order: the ledger does not depend on the input's dict order
  # (a JSON file with sorted keys rebuilds to the same ledger and hash).
  keys = sorted(values, key=str)
  names = [str(k) for k in keys]
  vals = [to_decimal(values[k], f"value of {k!r}") for k in keys]
  negative = [n for n, v in zip(names, vals) if v < 0]
  if negative and negative_policy == "error":
    raise LedgerError(f"negative value(s) for {', '.join(negative)} under policy 'error'")
  weights = [max(v, Decimal(0)) for v in vals]
  if sum(weights) <= 0:
    raise LedgerError("no contributor has a positive value: nothing to split in proportion")
  # Exact: Decimal products of finite decimals need only enough precision.
  ctx = decimal.Context(prec=200, rounding=decimal.ROUND_FLOOR)
  pool = ctx.multiply(rate, Decimal(num_inferences))
  units = int(ctx.divide_int(pool, unit_d))
  distributed = ctx.multiply(Decimal(units), unit_d)
  paid_units = largest_remainder(weights, units, names)
  total_w = sum(weights)
  entries = []
  for n, v, w, k in zip(names, vals, weights, paid_units):
    entries.append(
      {
        "contributor": n,
        "value": str(v),
        "weight": str(w),
        "share": str(ctx.divide(w, total_w).quantize(Decimal("1e-12"), decimal.ROUND_HALF_EVEN)),
        "payment": str(ctx.multiply(Decimal(k), unit_d)),
        "units": k,
      }
    )
  ledger = {
    "version": LEDGER_VERSION,
    "inputs": {
      "values": {n: str(v) for n, v in zip(names, vals)},
      "revenue_per_inference": str(rate),
      "num_inferences": num_inferences,
      "unit": str(unit_d),
      "currency": currency,
      "negative_policy": negative_policy,
      "source": source,
    },
    "method": "largest_remainder",
    "pool": str(pool),
    "distributed": str(distributed),
    "undistributed": str(pool - distributed),
    "entries": entries,
  }
  ledger["sha256"] = _digest(ledger)
  return ledger


def verify_ledger(ledger: dict) -> None:
  """Checks a ledger's hash, totals and payments against its own inputs.

  Raises:
    LedgerError: naming the first thing that does not add up.
  """
  for key in ("inputs", "entries", "pool", "distributed", "sha256"):
    if key not in ledger:
      raise LedgerError(f"ledger has no {key!r} field")
  if _digest(ledger) != ledger["sha256"]:
    raise LedgerError("ledger hash does not match its contents (edited after it was written?)")
  paid = sum(Decimal(e["payment"]) for e in ledger["entries"])
  if paid != Decimal(ledger["distributed"]):
    raise LedgerError(f"payments sum to {paid}, not to distributed {ledger['distributed']}")
  if Decimal(ledger["distributed"]) + Decimal(ledger["undistributed"]) != Decimal(ledger["pool"]):
    raise LedgerError("distributed + undistributed != pool")
  inp = ledger["inputs"]
  again = build_ledger(
    inp["values"],
    revenue_per_inference=inp["revenue_per_inference"],
    num_inferences=inp["num_inferences"],
    unit=inp["unit"],
    currency=inp["currency"],
    negative_policy=inp["negative_policy"],
    source=inp["source"],
  )
  if again["sha256"] != ledger["sha256"]:
    raise LedgerError("payments do not follow from the ledger's inputs")


def write_ledger(ledger: dict, path: str) -> None:
  """Writes the ledger as JSON (sorted keys) atomically, after verifying it."""
  verify_ledger(ledger)
  io_lib.write_json(path, ledger, sort_keys=True)


def load_ledger(path: str) -> dict:
  """Reads and verifies a ledger file."""
  try:
    with open(path) as f:
      ledger = json.load(f)
  except (OSError, json.JSONDecodeError) as e:
    raise LedgerError(f"cannot read ledger {path!r}: {e}") from None
  verify_ledger(ledger)
  return ledger


def format_ledger(ledger: dict) -> str:
  """A markdown table of the ledger."""
  inp = ledger["inputs"]
  cur = inp["currency"]
  rows = [
    {
      "contributor": e["contributor"],
      "value": f"{float(e['value']):+.4g}",
      "share": f"{float(e['share']):.4f}",
      "payment": f"{e['payment']} {cur}",
    }
    for e in ledger["entries"]
  ]
  rows.append(
    {
      "contributor": "**total**",
      "value": "",
      "share": "",
      "payment": f"{ledger['distributed']} {cur}",
    }
  )
  return "\n".join(
    [
      f"royalty pool {ledger['pool']} {cur} = {inp['revenue_per_inference']} × "
      f"{inp['num_inferences']:,} inferences (policy {inp['negative_policy']}, unit {inp['unit']})",
      "",
      io_lib.markdown_table(rows),
      f"sha256 {ledger['sha256']}",
    ]
  )
