"""The package's structure stays readable: no import cycles, and each layer imports only
the layers below it (see ARCHITECTURE.md).

Imports are read from the source (``ast``), at module level and inside functions alike
(a lazy import still ties two modules together); imports under ``if TYPE_CHECKING:``
are annotations only and are not counted.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "workbench"


def _modules(root: Path = PACKAGE) -> dict[str, Path]:
    out = {}
    for f in sorted(root.rglob("*.py")):
        parts = list(f.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


def _imports(modules: dict[str, Path]) -> dict[str, dict[str, int]]:
    """``{module: {imported module: first line}}`` for imports of the package's own modules."""

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    edges: dict[str, dict[str, int]] = {m: {} for m in modules}
    for mod, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        typing_only = {
            id(n) for node in ast.walk(tree)
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for n in ast.walk(node)
        }
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                # `from pkg import sub` imports the submodule; `from mod import name` the module
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            else:
                continue
            for target in targets:
                if target.split(".")[0] != "workbench":
                    continue
                dest = resolve(target)
                if dest is not None and dest != mod:
                    edges[mod].setdefault(dest, node.lineno)
    return edges


def _cycles(edges: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for start in edges:
        if start in index:
            continue
        work = [(start, iter(edges[start]))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    comp.append(m)
                    if m == node:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def _describe(cycle: list[str], edges: dict[str, dict[str, int]]) -> str:
    members = set(cycle)
    lines = [f"  {a} imports {b} (line {edges[a][b]})" for a in cycle for b in sorted(edges[a]) if b in members]
    return "\n".join(lines)


def test_the_cycle_finder_finds_a_cycle(tmp_path: Path) -> None:
    """The check itself: a planted a → b → c → a cycle (one import lazy) is found."""
    pkg = tmp_path / "workbench"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from workbench.sub import b\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "b.py").write_text("from . import c\n")
    (pkg / "sub" / "c.py").write_text("def f():\n    import workbench.a\n")
    (pkg / "d.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import workbench.a\nimport workbench.sub.b\n")
    edges = _imports(_modules(pkg))
    assert _cycles(edges) == [["workbench.a", "workbench.sub.b", "workbench.sub.c"]]
    assert edges["workbench.d"] == {"workbench.sub.b": 4}  # the TYPE_CHECKING import is not counted


def test_no_import_cycles_in_the_package() -> None:
    edges = _imports(_modules())
    assert len(edges) > 80  # the whole package was read
    cycles = _cycles(edges)
    assert not cycles, "import cycles:\n" + "\n\n".join(_describe(c, edges) for c in cycles)


# what each layer may not import (a lower layer never reaches up)
FORBIDDEN = {
    "workbench.model": ("workbench.",),
    "workbench.io": ("workbench.store", "workbench.zarr_io", "workbench.pieces", "workbench.parallel", "workbench.quality",
                     "workbench.metrics", "workbench.events", "workbench.comparison", "workbench.ui", "workbench.viz"),
    "workbench.zarr_io": ("workbench.store", "workbench.io", "workbench.quality", "workbench.metrics", "workbench.events"),
    "workbench.store": ("workbench.quality", "workbench.metrics", "workbench.comparison", "workbench.ui", "workbench.viz",
                        "workbench.reporting"),
    "workbench.pieces": ("workbench.quality", "workbench.metrics", "workbench.events", "workbench.comparison"),
    # grading names the metrics a stream feeds (their roles): metrics sit below quality
    "workbench.metrics": ("workbench.quality", "workbench.comparison", "workbench.ui", "workbench.viz", "workbench.reporting"),
    "workbench.quality": ("workbench.comparison", "workbench.ui", "workbench.viz", "workbench.reporting"),
    "workbench.stats": ("workbench.store", "workbench.comparison", "workbench.ui", "workbench.viz", "workbench.reporting"),
}
ALLOWED = {"workbench.model": ("workbench.model",)}


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layers_import_only_below_them(layer: str) -> None:
    edges = _imports(_modules())
    members = [m for m in edges if m == layer or m.startswith(layer + ".")]
    assert members, layer
    bad = [
        f"{m} imports {d} (line {line})"
        for m in members for d, line in sorted(edges[m].items())
        if any(d == f or d.startswith(f.rstrip(".") + ".") or (f.endswith(".") and d.startswith(f)) for f in FORBIDDEN[layer])
        and not any(d == a or d.startswith(a + ".") for a in ALLOWED.get(layer, ()))
    ]
    assert not bad, "\n".join(bad)


def test_modules_do_not_shadow_the_functions_of_the_same_name() -> None:
    import types

    import workbench as wb
    import workbench.comparison
    import workbench.reporting  # importing the modules must not rebind wb.report / wb.compare

    assert isinstance(wb.report, types.FunctionType) and isinstance(wb.compare, types.FunctionType)
    assert wb.compare is workbench.comparison.compare
    assert wb.reporting is workbench.reporting and not callable(workbench.reporting)


def test_architecture_page_names_every_module_and_its_layers_hold() -> None:
    """ARCHITECTURE.md lists each top-level module in one layer; no module imports a later layer."""
    import re

    text = (PACKAGE.parent / "ARCHITECTURE.md").read_text()
    table = [line for line in text.splitlines() if line.startswith("| ") and "`" in line.split("|")[2]]
    layers = [re.findall(r"`([a-z_.]+)`", line.split("|")[2]) for line in table]
    named = [m for layer in layers for m in layer]
    assert len(named) == len(set(named)), "a module is named in two layers"
    rank = {f"workbench.{m}": i for i, layer in enumerate(layers) for m in layer}
    modules = _modules()
    assert sorted(set(rank) - set(modules)) == [], "ARCHITECTURE.md names modules that do not exist"

    def layer_of(mod: str) -> int | None:
        while mod and mod not in rank:
            mod = mod.rpartition(".")[0]
        return rank.get(mod)

    unplaced = sorted(m for m in modules if m != "workbench" and layer_of(m) is None)
    assert unplaced == [], "modules missing from ARCHITECTURE.md"
    edges = _imports(modules)
    up = [
        f"{a} (row {layer_of(a)}) imports {b} (row {layer_of(b)}), line {line}"
        for a, out in edges.items() if a != "workbench"
        for b, line in out.items() if b != "workbench" and (layer_of(b) or 0) > (layer_of(a) or 0)
    ]
    assert not up, "\n".join(up)
