"""The ``code`` task: the Python standard library's own sources as a tiny LM corpus.

Files are cut into character windows (``x [N, T + 1]``: input and shifted target in
one array), grouped by package; a "contributor" is a set of files, and evaluation is
on held-out files of the same packages. Needs no network: the corpus is whatever
standard library the interpreter ships.
"""

from __future__ import annotations

import os
import sysconfig

import numpy as np

from metaval.data.tasks import LANGUAGE_MODEL, Task, register_task
from metaval.data.transform import Transform
from metaval.data.validate import TaskError

# Printable ASCII plus newline and tab; everything else maps to UNK (id 0).
_VOCAB = "\n\t" + "".join(chr(c) for c in range(32, 127))
VOCAB_SIZE = len(_VOCAB) + 1
_CHAR_TO_ID = np.zeros(256, np.int32)
for _i, _c in enumerate(_VOCAB):
  _CHAR_TO_ID[ord(_c)] = _i + 1

DEFAULT_CODE_PACKAGES = (
  "json",
  "email",
  "http",
  "logging",
  "urllib",
  "xml",
  "unittest",
  "importlib",
  "concurrent",
  "asyncio",
  "collections",
  "sqlite3",
  "wsgiref",
  "html",
  "dbm",
  "xmlrpc",
)


def encode_text(text: str) -> np.ndarray:
  """Maps text to token ids (0 = unknown character)."""
  raw = np.frombuffer(text.encode("ascii", errors="replace"), np.uint8)
  return _CHAR_TO_ID[raw]


def decode_tokens(tokens) -> str:
  return "".join(_VOCAB[t - 1] if 0 < t <= len(_VOCAB) else "?" for t in np.asarray(tokens))


def stdlib_dir() -> str:
  return sysconfig.get_paths()["stdlib"]


@register_task("code")
def _code(
  seed: int = 0,
  packages: tuple[str, ...] | str = DEFAULT_CODE_PACKAGES,
  seq_len: int = 64,
  chars_per_group: int = 24_000,
  eval_chars_per_group: int = 6_000,
  root: str | None = None,
) -> Task:
  """Character windows from standard-library packages, one group per package.

  Within a package, files are shuffled with ``seed``; the first files fill the
  held-out budget (``eval_chars_per_group``, at least one file) and the rest fill
  the training budget (``chars_per_group``), so evaluation is on unseen files of
  the same package. Packages with fewer than two files are skipped.
  """
  if isinstance(packages, str):
    packages = tuple(p for p in packages.split(",") if p)
  root = root or stdlib_dir()
  rng = np.random.default_rng(seed)
  win = seq_len + 1
  xs, groups, files, file_names, names = [], [], [], [], []
  eval_x = {}
  for pkg in packages:
    pdir = os.path.join(root, pkg)
    if not os.path.isdir(pdir):
      continue
    paths = sorted(
      os.path.join(dp, f)
      for dp, dn, fs in os.walk(pdir)
      if "test" not in os.path.relpath(dp, root).split(os.sep)[1:]
      for f in fs
      if f.endswith(".py")
    )
    paths = [paths[i] for i in rng.permutation(len(paths))]
    windows = []
    for path in paths:
      with open(path, encoding="utf-8", errors="replace") as fh:
        toks = encode_text(fh.read())
      n_win = len(toks) // win
      if n_win > 0:
        windows.append((os.path.relpath(path, root), toks[: n_win * win].reshape(n_win, win)))
    if len(windows) < 2:
      continue  # A package needs one file for training and another held out.
    # Held-out files first (at least one), the rest fill the training budget.
    ev, budget = [], eval_chars_per_group
    while budget > 0 and len(windows) > 1 and (not ev or len(windows) > 2):
      _, w = windows.pop(0)
      ev.append(w[: max(1, budget // win)])
      budget -= ev[-1].size
    gid, budget = len(names), chars_per_group
    names.append(pkg)
    eval_x[pkg] = np.concatenate(ev).astype(np.int32)
    for rel, w in windows:
      if budget <= 0:
        break
      w = w[: max(1, budget // win)]
      budget -= w.size
      xs.append(w)
      groups.append(np.full(len(w), gid, np.int32))
      files.append(np.full(len(w), len(file_names), np.int32))
      file_names.append(rel)
  if len(names) < 2:
    raise TaskError(f"code task needs >= 2 usable packages under {root!r}; found {names}")
  x = np.concatenate(xs).astype(np.int32)
  g = np.concatenate(groups)
  f = np.concatenate(files)
  # One held-out set; its labels are group ids so the trainer can report the
  # overall held-out loss and each package's loss from one forward pass.
  evals = {
    "heldout": (
      np.concatenate(list(eval_x.values())),
      np.concatenate([np.full(len(v), i, np.int32) for i, v in enumerate(eval_x.values())]),
    )
  }
  return Task(
    name="code",
    kind=LANGUAGE_MODEL,
    x=x,
    y=g.copy(),
    num_classes=VOCAB_SIZE,
    evals=evals,
    groups=g,
    group_names=tuple(names),
    files=f,
    file_names=tuple(file_names),
    seed=seed,
    transform=Transform((win,), dtype="int32"),
  )
