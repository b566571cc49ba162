"""Atomic writes, config fingerprints, JSON conversion and markdown tables: written once.

Every file metaval writes for later reuse (label shards, tables, caches, checkpoints'
side files) goes through :func:`atomic_write`, so a crash leaves either the old file or
the new one, never a torn one; every resume check goes through :func:`fingerprint`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import IO, Any

import numpy as np


@contextlib.contextmanager
def atomic_write(path: str, mode: str = "w") -> Iterator[IO]:
  """Opens a temporary file next to ``path``; renames it over ``path`` on success.

  The temporary name carries the process id, so concurrent writers never share one;
  the data is flushed and fsynced before the rename. On an exception the temporary
  file is removed and ``path`` is left untouched.

  Args:
    path: the destination.
    mode: ``"w"`` (text) or ``"wb"`` (bytes).
  """
  if mode not in ("w", "wb"):
    raise ValueError(f"atomic_write mode must be 'w' or 'wb', got {mode!r}")
  parent = os.path.dirname(path)
  if parent:
    os.makedirs(parent, exist_ok=True)
  # Keep the destination's extension last: numpy and matplotlib pick formats by it.
  root, ext = os.path.splitext(path)
  tmp = f"{root}.tmp-{os.getpid()}{ext}"
  try:
    with open(tmp, mode) as fh:
      yield fh
      fh.flush()
      os.fsync(fh.fileno())
    os.replace(tmp, path)
  except BaseException:
    with contextlib.suppress(FileNotFoundError):
      os.remove(tmp)
    raise


def write_text(path: str, text: str) -> str:
  """Writes ``text`` to ``path`` atomically; returns ``path``."""
  with atomic_write(path) as fh:
    fh.write(text)
  return path


def write_bytes(path: str, data: bytes) -> str:
  """Writes ``data`` to ``path`` atomically; returns ``path``."""
  with atomic_write(path, "wb") as fh:
    fh.write(data)
  return path


def write_json(path: str, obj: Any, *, indent: int | None = 2, sort_keys: bool = False) -> str:
  """Writes ``jsonable(obj)`` to ``path`` atomically; returns ``path``."""
  return write_text(path, json.dumps(jsonable(obj), indent=indent, sort_keys=sort_keys) + "\n")


def save_npz(path: str, **arrays: Any) -> str:
  """``np.savez`` to ``path`` atomically (``path`` should end in ``.npz``)."""
  with atomic_write(path, "wb") as fh:
    np.savez(fh, **arrays)
  return path


def save_figure(fig, path: str, **kwargs) -> str:
  """Saves a matplotlib figure atomically (format from the extension of ``path``)."""
  fmt = os.path.splitext(path)[1].lstrip(".") or "png"
  with atomic_write(path, "wb") as fh:
    fig.savefig(fh, format=fmt, **kwargs)
  return path


def jsonable(x: Any) -> Any:
  """Converts numpy scalars/arrays and tuples to plain JSON types; non-finite -> None."""
  if isinstance(x, Mapping):
    return {str(k): jsonable(v) for k, v in x.items()}
  if isinstance(x, list | tuple):
    return [jsonable(v) for v in x]
  if isinstance(x, np.ndarray):
    return jsonable(x.tolist())
  if isinstance(x, bool | np.bool_):
    return bool(x)
  if isinstance(x, int | np.integer):
    return int(x)
  if isinstance(x, float | np.floating):
    return float(x) if np.isfinite(x) else None
  return x


def fingerprint(obj: Any, length: int = 16) -> str:
  """A stable short hash of a JSON-able description (config dict, recipe, arrays' meta).

  Two objects get the same fingerprint exactly when their canonical JSON (sorted keys,
  numpy converted, anything else through ``str``) is equal. Resume checks compare these.
  """
  text = json.dumps(jsonable(obj), sort_keys=True, default=str)
  return hashlib.sha256(text.encode()).hexdigest()[:length]


def file_sha256(path: str, chunk: int = 1 << 20) -> str:
  """The SHA-256 of a file's bytes (manifests, checksums)."""
  h = hashlib.sha256()
  with open(path, "rb") as fh:
    for block in iter(lambda: fh.read(chunk), b""):
      h.update(block)
  return h.hexdigest()


def format_cell(x: Any, floatfmt: str = ".3f") -> str:
  """One markdown cell: ints with separators, floats by ``floatfmt`` (3 significant digits
  outside [1e-3, 1e5)), non-finite as "–", ``|`` escaped."""
  if x is None:
    return "–"
  if isinstance(x, bool | np.bool_):
    return str(bool(x))
  if isinstance(x, int | np.integer):
    return f"{int(x):,}"
  if isinstance(x, float | np.floating):
    if not np.isfinite(x):
      return "–"
    if x != 0 and (abs(x) >= 1e5 or abs(x) < 1e-3):
      return f"{x:.3g}"
    return format(float(x), floatfmt)
  return str(x).replace("|", "\\|")


def markdown_table(
  rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None, floatfmt: str = ".3f"
) -> str:
  """A markdown table of ``rows`` (one dict per row; missing cells print as "–").

  Args:
    rows: the rows.
    columns: column order (default: keys in order of first appearance).
    floatfmt: format of floats between 1e-3 and 1e5.

  Returns:
    The table without a trailing newline; ``"(no rows)"`` when ``rows`` is empty.
  """
  if not rows:
    return "(no rows)"
  if columns is None:
    columns = []
    for r in rows:
      columns += [k for k in r if k not in columns]
  head = "| " + " | ".join(str(c).replace("|", "\\|") for c in columns) + " |"
  rule = "|" + "|".join("---" for _ in columns) + "|"
  body = [
    "| " + " | ".join(format_cell(r[c], floatfmt) if c in r else "–" for c in columns) + " |"
    for r in rows
  ]
  return "\n".join([head, rule, *body])
