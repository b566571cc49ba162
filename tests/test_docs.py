"""The README stays short and its links hold; the docs site's sources are complete.

The site itself is built strictly by `scripts/build_docs.sh` (a step of
`scripts/test.sh`): these tests check what that build cannot see (the README is not a
site page) and fail fast, without the docs extra, on what it would reject.
"""

import os
import re

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(REPO, "docs")
README_MAX_LINES = 250
# Markdown links and images: [text](target) with a target that is not a URL or an anchor.
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s#]+)(?:#[^)]*)?\)")
INCLUDE = re.compile(r"^\s*<!--\s*include:\s*(\S+)\s*-->\s*$", re.M)


def _read(*parts):
  with open(os.path.join(REPO, *parts)) as f:
    return f.read()


def _relative_links(text):
  return [t for t in LINK.findall(text) if not re.match(r"^[a-z]+:", t)]


def _nav_pages():
  """The page files named in mkdocs.yml's nav (`- Title: page.md`)."""
  return re.findall(r"^\s*- [^:\n]+:\s*(\S+\.md)\s*$", _read("mkdocs.yml"), re.M)


def test_readme_is_short():
  lines = _read("README.md").splitlines()
  assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines"


def test_readme_gives_the_two_commands_that_ci_runs():
  readme = _read("README.md")
  assert "./scripts/quickstart.sh" in readme and "./scripts/test.sh" in readme
  assert "./scripts/test.sh" in _read(".ci", "run")
  for script in ("quickstart.sh", "test.sh"):
    assert os.access(os.path.join(REPO, "scripts", script), os.X_OK), script


def test_every_relative_link_in_the_readme_exists():
  links = _relative_links(_read("README.md"))
  assert any(t.startswith("docs/") for t in links), "the README must link the docs pages"
  missing = [t for t in links if not os.path.exists(os.path.join(REPO, t))]
  assert not missing, f"README.md links missing files: {missing}"


def test_every_docs_page_is_in_the_nav_and_every_nav_page_exists():
  pages = {f for f in os.listdir(DOCS) if f.endswith(".md")}
  nav = set(_nav_pages())
  assert nav, "mkdocs.yml has no nav pages"
  assert not nav - pages, f"nav names missing pages: {sorted(nav - pages)}"
  assert not pages - nav, f"pages left out of the nav: {sorted(pages - nav)}"


@pytest.mark.parametrize("page", sorted(f for f in os.listdir(DOCS) if f.endswith(".md")))
def test_every_include_and_link_of_a_page_exists(page):
  text = _read("docs", page)
  missing = [p for p in INCLUDE.findall(text) if not os.path.isfile(os.path.join(REPO, p))]
  # reference/ pages are generated at build time; the strict build checks links to them.
  links = [t for t in _relative_links(text) if not t.startswith("reference/")]
  missing += [t for t in links if not os.path.exists(os.path.join(DOCS, t))]
  assert not missing, f"docs/{page} names missing files: {missing}"
