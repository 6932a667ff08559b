"""Import extraction with tree-sitter: what each source file says it depends on.

One query per language finds the import-like statements (imports, includes, ``use``/``mod``,
re-exports, ``require``/``import()``/``importlib.import_module`` with a literal argument);
plain Python then reads each match into an ``Import``. Parsers and compiled queries are built
once per process (``parser_for``, in ``parsing.py`` with the grammars, the queries and the
``Import`` record) and reused: a Beam worker pays for them once.

tree-sitter always returns a tree: on a syntax error it recovers, so the imports of the valid
parts still come out, and ``Extraction.parse_error`` records that the file did not parse
cleanly (garbage bytes, a Python 2 file, a newer syntax than the grammar knows).

What an ``Import`` records is what resolution (``resolve.py``) and edge importance
(``graph.py``) need: the target as written, how many names come from it, where it sits
(module level or inside a function) and whether it is type-only.
"""
from __future__ import annotations

from dataclasses import dataclass

from tree_sitter import QueryCursor

from fimpack.packing.import_readers import READERS
from fimpack.packing.parsing import DEFINITION_TYPES, Import, has_parser, parse_tree, parser_for
from fimpack.packing.samepackage import PackageNames, package_names

@dataclass(frozen=True, slots=True)
class Extraction:
    imports: tuple[Import, ...]
    parse_error: bool      # tree-sitter had to recover from a syntax error somewhere
    body_line: int         # line of the first top-level definition (-1: none); imports after
                           # it are "late" module-level imports
    package: PackageNames | None = None  # Go/Java: package, declared and used names
                                         # (``samepackage.py``): edges without imports


def extract_imports(content: str | bytes, language: str) -> Extraction:
    """Parse CONTENT as LANGUAGE and return its imports (empty for a language without parser)."""
    if not has_parser(language):
        return Extraction((), False, -1)
    _, query = parser_for(language)
    root = parse_tree(content, language).root_node
    captures = QueryCursor(query).captures(root)
    read = READERS[language]  # per language: node -> Imports
    imports: list[Import] = []
    for node in sorted(captures.get("imp", []) + captures.get("dyn", []),
                       key=lambda n: n.start_byte):
        imports.extend(read(node, language))
    body_line = -1
    defs = DEFINITION_TYPES.get(language)
    if defs:
        for child in root.children:
            if child.type in defs:
                body_line = child.start_point[0]
                break
    return Extraction(tuple(imports), root.has_error, body_line,
                      package_names(root, language))
