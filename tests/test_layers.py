"""The import layers of the README's "Layout": a module imports only from its own layer or the
layers below it, and no modules import each other, directly or around a longer circle. Imports
inside functions count as much as those at the top of a module: that is where circles hide."""
from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[1]
# The top-level folders that install as fimpack.<folder> (fimpack/ itself is the root package).
FOLDERS = ("fimpack", "dedup", "packing", "pipelines", "model", "train")

# Bottom first. A subpackage stands for every module in its folder; fimpack/ holds modules of
# the bottom layer and of the top one, so each of its modules is named.
LAYERS = (
    ("records and config", {"fimpack", "fimpack.records", "fimpack.config", "fimpack.options",
                            "fimpack.errors", "fimpack.counting", "fimpack.filesystems",
                            "fimpack.languages"}),
    ("dedup and packing", {"fimpack.dedup", "fimpack.packing"}),
    ("pipelines", {"fimpack.pipelines"}),
    ("model and train", {"fimpack.model", "fimpack.train"}),
    ("commands", {"fimpack.cli", "fimpack.__main__", "fimpack.inspect", "fimpack.report",
                  "fimpack.provenance", "fimpack.preflight", "fimpack.graph_view",
                  "fimpack.ablate"}),
)

def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts if parts[0] == "fimpack" else ["fimpack", *parts])


def package_modules(root: Path, folders=FOLDERS) -> dict[str, Path]:
    """fimpack's module names -> their files (one level deep, as the folders are)."""
    return {module_name(p, root): p for folder in folders
            for p in sorted((root / folder).glob("*.py"))}


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> list[tuple[str, int]]:
    """(imported fimpack module, line) for every import statement of a module, at any depth
    (inside functions, ``if TYPE_CHECKING:`` and ``try:`` blocks too). ``from P import m``
    imports module P.m when there is one, else P."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                       for a in node.names]
        else:
            continue
        found += [(t, node.lineno) for t in targets if t in modules and t != name]
    return found


def import_graph(modules: dict[str, Path]) -> nx.DiGraph:
    graph = nx.DiGraph()
    graph.add_nodes_from(modules)
    for name, path in modules.items():
        for target, line in imports_of(name, path, modules):
            graph.add_edge(name, target, line=line)
    return graph


def layer_of(module: str, layers=LAYERS) -> int | None:
    for i, (_, members) in enumerate(layers):
        if module in members or any(module.startswith(m + ".") for m in members
                                    if m != "fimpack"):
            return i
    return None


def upward(graph: nx.DiGraph, layers=LAYERS) -> set[tuple[str, str]]:
    return {(a, b) for a, b in graph.edges if layer_of(a, layers) < layer_of(b, layers)}


def circles(graph: nx.DiGraph) -> list[list[str]]:
    return [sorted(c) for c in nx.strongly_connected_components(graph) if len(c) > 1]


@pytest.fixture(scope="module")
def graph() -> nx.DiGraph:
    return import_graph(package_modules(ROOT))


def test_every_module_has_a_layer(graph):
    assert [m for m in graph if layer_of(m) is None] == []


def test_no_import_points_up(graph):
    assert sorted(f"{a} (line {graph.edges[a, b]['line']}) imports {b}"
                  for a, b in upward(graph)) == []


def test_no_circles(graph):
    assert circles(graph) == []


def test_the_walker_sees_imports_inside_functions_and_relative_ones(tmp_path):
    """The checks above on a made-up package: a circle closed by an import inside a function,
    a relative import and an upward one."""
    for folder, files in {
        "fimpack": {"__init__.py": "", "records.py": "import json\n",
                    "cli.py": "from fimpack.packing import low\n"},
        "packing": {"__init__.py": "",
                    "low.py": "from .high import f\n",
                    "high.py": "def f():\n    from fimpack.packing.low import g\n",
                    "up.py": "from fimpack import cli\nfrom fimpack.records import X\n"},
    }.items():
        (tmp_path / folder).mkdir()
        for name, text in files.items():
            (tmp_path / folder / name).write_text(text)
    modules = package_modules(tmp_path, ("fimpack", "packing"))
    g = import_graph(modules)
    assert set(g.edges) == {("fimpack.cli", "fimpack.packing.low"),
                            ("fimpack.packing.low", "fimpack.packing.high"),
                            ("fimpack.packing.high", "fimpack.packing.low"),
                            ("fimpack.packing.up", "fimpack.cli"),
                            ("fimpack.packing.up", "fimpack.records")}
    assert g.edges["fimpack.packing.high", "fimpack.packing.low"]["line"] == 2
    assert circles(g) == [["fimpack.packing.high", "fimpack.packing.low"]]
    assert upward(g) == {("fimpack.packing.up", "fimpack.cli")}
