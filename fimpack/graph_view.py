"""``fimpack graph``'s views of a repository's order: JSON, Graphviz DOT and PNG, and the
repository read from a folder as ingest reads it."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

from fimpack.config import Limits
from fimpack.packing.graph import RepoOrder, order_repository
from fimpack.pipelines.sources import RepoSource, read_dir
from fimpack.records import LICENSE_TEXT, SourceFile


def read_repo(repo_dir: str) -> list[SourceFile]:
    """The files of a folder as ingest keeps them (same language detection and limits), its
    licence files left out."""
    name = os.path.basename(os.path.abspath(repo_dir))
    return [f for f in read_dir(RepoSource(name, "dir", repo_dir), Limits())
            if isinstance(f, SourceFile) and f.language != LICENSE_TEXT]


def to_json(result: RepoOrder) -> dict:
    return {
        "nodes": sorted(result.order),
        "edges": [list(e) for e in result.edges],
        "order": list(result.order),
        "test_links": [list(link) for link in result.test_links],
        "unresolved": result.unresolved,
        "parse_errors": list(result.parse_errors),
    }


def graph_json(repo_dir: str, strategy: str = "codegemma") -> dict:
    """What ``fimpack graph REPO_DIR --json`` prints: paths relative to REPO_DIR, edges
    (importer, imported) before cycle breaking."""
    return to_json(order_repository(read_repo(repo_dir), strategy))


def _dot_id(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(result: RepoOrder) -> str:
    """Graphviz DOT: nodes labelled with their position in the order; import edges point
    from importer to imported (dashed red: removed to break a cycle); dotted blue lines tie a
    test to its implementation."""
    removed = set(result.removed_edges)
    lines = ["digraph repo {", "  rankdir=LR;",
             '  node [shape=box, fontsize=10, fontname="Helvetica"];']
    for i, p in enumerate(result.order):
        lines.append(f"  {_dot_id(p)} [label={_dot_id(f'{i}: {p}')}];")
    for u, v in result.edges:
        style = ' [style=dashed, color=red]' if (u, v) in removed else ""
        lines.append(f"  {_dot_id(u)} -> {_dot_id(v)}{style};")
    for t, impl in result.test_links:
        lines.append(f"  {_dot_id(t)} -> {_dot_id(impl)} "
                     "[style=dotted, color=blue, dir=none, constraint=false];")
    lines.append("}")
    return "\n".join(lines) + "\n"


class GraphvizMissing(RuntimeError):
    pass


def draw_png(result: RepoOrder, path: str) -> None:
    """Render the graph to PATH (PNG) with Graphviz ``dot``. Without ``dot`` on PATH, write the
    DOT text next to PATH (``.dot``) and raise GraphvizMissing."""
    text = to_dot(result)
    dot = shutil.which("dot")
    if dot is None:
        dot_path = os.path.splitext(path)[0] + ".dot"
        with open(dot_path, "w", encoding="utf-8") as f:
            f.write(text)
        raise GraphvizMissing(
            f"Graphviz `dot` is not on PATH, so no PNG was drawn; the DOT text is in {dot_path}."
            " `apt-get install graphviz` enables --png.")
    subprocess.run([dot, "-Tpng", "-o", path], input=text.encode("utf-8"), check=True)


def main(repo_dir: str, strategy: str, as_json: bool, png: str | None) -> int:
    """``fimpack graph``: the order (or JSON) on stdout, optionally a PNG drawing."""
    result = order_repository(read_repo(repo_dir), strategy)
    if as_json:
        print(json.dumps(to_json(result), indent=1))
    else:
        print(f"files {len(result.order)}  edges {len(result.edges)}  "
              f"removed to break cycles {len(result.removed_edges)}  "
              f"test links {len(result.test_links)}  unresolved imports {result.unresolved}  "
              f"parse errors {len(result.parse_errors)}")
        for path in result.parse_errors:  # which files tree-sitter had to recover in
            print(f"parse error: {path}")
        print("\n".join(result.order))
    if png:
        try:
            draw_png(result, png)
        except GraphvizMissing as err:
            print(err, file=sys.stderr)
            return 1
    return 0
