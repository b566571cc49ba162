"""MkDocs hooks: bring the measured tables into the pages at build time.

A line `<!-- include: PATH -->` in a page (PATH relative to the repository root) is
replaced by that file, so the tables that the benchmarks and experiments write are shown
without being typed. Included headings are shifted to sit one level below the heading
that precedes the include line; relative links in the included file are rewritten to
point from the page to the same file, and the images under `experiments/results/` are
added to the site so those links resolve. A missing file fails the build (strict mode
turns the warning into an error).
"""

import logging
import os
import posixpath
import re

from mkdocs.structure.files import File

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = "experiments/results"
IMAGE_EXTENSIONS = (".png", ".svg", ".jpg")
INCLUDE = re.compile(r"^\s*<!--\s*include:\s*(\S+)\s*-->\s*$")
HEADING = re.compile(r"^(#{1,6})\s")
LINK = re.compile(r"(!?\[[^\]]*\]\()([^)\s]+)(\))")
log = logging.getLogger("mkdocs.hooks.metaval")


def _headings(lines):
  """Yields (index, level) of each markdown heading outside fenced code."""
  fenced = False
  for i, line in enumerate(lines):
    if line.lstrip().startswith("```"):
      fenced = not fenced
    m = None if fenced else HEADING.match(line)
    if m:
      yield i, len(m.group(1))


def _shift(text, base):
  """Shifts the headings of `text` so that its top heading gets level `base + 1`."""
  lines = text.splitlines()
  levels = dict(_headings(lines))
  if not levels:
    return text
  delta = base + 1 - min(levels.values())
  for i, level in levels.items():
    lines[i] = "#" * max(1, min(6, level + delta)) + lines[i][level:]
  return "\n".join(lines)


def _relink(text, source, page_dir):
  """Rewrites links relative to the included file `source` to be relative to the page."""

  def fix(m):
    target = m.group(2)
    if re.match(r"^[a-z]+:|^#|^/", target):
      return m.group(0)
    path = posixpath.normpath(posixpath.join(posixpath.dirname(source), target))
    return m.group(1) + posixpath.relpath(path, page_dir or ".") + m.group(3)

  return LINK.sub(fix, text)


def on_files(files, config):
  """Adds the result images so that the included tables' image links resolve."""
  for folder, _, names in os.walk(os.path.join(ROOT, RESULTS)):
    for name in sorted(names):
      if name.endswith(IMAGE_EXTENSIONS):
        abs_path = os.path.join(folder, name)
        src_uri = os.path.relpath(abs_path, ROOT).replace(os.sep, "/")
        files.append(File.generated(config, src_uri, abs_src_path=abs_path))
  return files


def on_page_markdown(markdown, page, config, files):
  """Replaces every include line of a page by the file it names."""
  lines = markdown.splitlines()
  heading_before = {}
  level = 0
  headings = dict(_headings(lines))
  for i in range(len(lines)):
    level = headings.get(i, level)
    heading_before[i] = level
  page_dir = posixpath.dirname(page.file.src_uri)
  out = []
  for i, line in enumerate(lines):
    m = INCLUDE.match(line)
    if not m:
      out.append(line)
      continue
    rel = m.group(1)
    path = os.path.join(ROOT, rel)
    if not os.path.isfile(path):
      log.warning("%s: included file %s does not exist", page.file.src_uri, rel)
      continue
    with open(path) as f:
      body = f.read().strip()
    out.append(_relink(_shift(body, heading_before[i]), rel, page_dir))
  return "\n".join(out) + "\n"
