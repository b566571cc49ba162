"""The package's shape: imports flow one way (no cycles) and no module is over 500 lines.

Every ``import`` counts, module-level or inside a function: a lazy import still ties
the two modules together.
"""

import ast
import os

import pytest

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "metaval")
MAX_LINES = 500


def _modules() -> dict[str, str]:
  """``{dotted module name: path}`` for every module of the package."""
  out = {}
  for d, _, files in os.walk(ROOT):
    for f in files:
      if f.endswith(".py"):
        rel = os.path.relpath(os.path.join(d, f), os.path.dirname(ROOT))[:-3]
        name = rel.replace(os.sep, ".")
        out[name.removesuffix(".__init__")] = os.path.join(d, f)
  return out


def _edges(name: str, path: str, modules: dict[str, str]) -> set[str]:
  """The package modules that ``name`` imports (a ``from pkg import mod`` counts as mod)."""
  is_pkg = path.endswith("__init__.py")
  out = set()
  for node in ast.walk(ast.parse(open(path).read())):
    if isinstance(node, ast.Import):
      cands = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ""
      if node.level:
        parts = name.split(".")
        parts = parts if is_pkg else parts[:-1]
        parts = parts[: len(parts) - (node.level - 1)]
        base = ".".join([*parts, base] if base else parts)
      cands = [f"{base}.{a.name}" for a in node.names] + [base]
    else:
      continue
    for c in cands:
      # The longest package module that the name refers to.
      while c and c not in modules:
        c = c.rpartition(".")[0]
      if c and c != name:
        out.add(c)
  return out


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
  """Strongly connected components with more than one module (Tarjan)."""
  index, low, stack, on, comps, counter = {}, {}, [], set(), [], [0]

  def visit(v):
    index[v] = low[v] = counter[0]
    counter[0] += 1
    stack.append(v)
    on.add(v)
    for w in graph[v]:
      if w not in index:
        visit(w)
        low[v] = min(low[v], low[w])
      elif w in on:
        low[v] = min(low[v], index[w])
    if low[v] == index[v]:
      comp = []
      while True:
        w = stack.pop()
        on.discard(w)
        comp.append(w)
        if w == v:
          break
      if len(comp) > 1:
        comps.append(sorted(comp))

  for v in sorted(graph):
    if v not in index:
      visit(v)
  return comps


def _graph() -> dict[str, set[str]]:
  modules = _modules()
  graph = {m: _edges(m, p, modules) for m, p in modules.items()}
  # A package's __init__ re-exporting its children is not a cycle with them.
  for m in graph:
    graph[m] = {t for t in graph[m] if not m.startswith(t + ".")}
  return graph


def test_no_import_cycles():
  assert _cycles(_graph()) == []


def test_cycle_finder_finds_a_cycle():
  assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("name", sorted(_modules()))
def test_module_is_at_most_500_lines(name):
  with open(_modules()[name]) as f:
    assert sum(1 for _ in f) <= MAX_LINES, name
