"""The order of a repository's files inside its examples.

For now alphabetical by path; the dependency-graph order (CodeGemma's linearisation) and the
unit-test links replace this in the graph stage.
"""
from __future__ import annotations

from fimpack.records import SourceFile


def order_files(files: list[SourceFile]) -> list[SourceFile]:
    return sorted(files, key=lambda f: f.path)
