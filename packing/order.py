"""The order of a repository's files inside its examples: CodeGemma's dependency-graph
linearisation with unit tests packed beside their implementations (``graph.py``,
``testlinks.py``); DeepSeek-Coder's min-in-degree order as the alternative."""
from __future__ import annotations

from fimpack.packing.graph import order_repository
from fimpack.records import SourceFile


def order_files(files: list[SourceFile], strategy: str = "codegemma") -> list[SourceFile]:
    if strategy == "alphabetical":
        return sorted(files, key=lambda f: f.path)
    by_path = {f.path: f for f in files}
    return [by_path[p] for p in order_repository(files, strategy).order]
