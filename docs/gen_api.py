"""Generates the API reference pages, one per module of the `metaval` package.

Run by the mkdocs-gen-files plugin during `mkdocs build`. The module list is read from
the package tree at build time (never hard-coded), so a module that moves or appears is
documented without touching this file. Each page holds one mkdocstrings directive
(`::: metaval.x.y`); `reference/SUMMARY.md` is the nav that mkdocs-literate-nav reads.
"""

from pathlib import Path

import mkdocs_gen_files

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "metaval"

nav = mkdocs_gen_files.Nav()
for path in sorted(PACKAGE.rglob("*.py")):
  module = path.relative_to(ROOT).with_suffix("")
  parts = tuple(module.parts)
  # Private modules and the `python -m metaval` shim are not API; packages document
  # themselves through their __init__.
  if parts[-1] == "__main__" or (parts[-1].startswith("_") and parts[-1] != "__init__"):
    continue
  if parts[-1] == "__init__":
    parts = parts[:-1]
    doc_path = Path(*parts, "index.md")
  else:
    doc_path = Path(*parts).with_suffix(".md")
  nav[parts] = doc_path.as_posix()
  with mkdocs_gen_files.open(Path("reference", doc_path), "w") as f:
    f.write(f"# `{'.'.join(parts)}`\n\n::: {'.'.join(parts)}\n")
  mkdocs_gen_files.set_edit_path(Path("reference", doc_path), path.relative_to(ROOT))

with mkdocs_gen_files.open("reference/SUMMARY.md", "w") as f:
  f.writelines(nav.build_literate_nav())
