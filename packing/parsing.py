"""tree-sitter grammars, parsers and import queries, and the ``Import`` record: what import
extraction (``imports.py``), its per-language readers (``import_readers.py``), the package
names of Go and Java files (``samepackage.py``) and syntax-aware FIM (``syntax.py``) share.
Parsers and compiled queries are built once per language, on first use."""
from __future__ import annotations

import importlib
from dataclasses import dataclass

from tree_sitter import Language, Parser, Query

# fimpack language name -> (grammar module, function returning the language pointer).
GRAMMARS = {
    "python": ("tree_sitter_python", "language"),
    "java": ("tree_sitter_java", "language"),
    "javascript": ("tree_sitter_javascript", "language"),
    "typescript": ("tree_sitter_typescript", "language_typescript"),
    "tsx": ("tree_sitter_typescript", "language_tsx"),
    "go": ("tree_sitter_go", "language"),
    "rust": ("tree_sitter_rust", "language"),
    "c": ("tree_sitter_c", "language"),
    "cpp": ("tree_sitter_cpp", "language"),
}

_PY_QUERY = """
(import_statement) @imp
(import_from_statement) @imp
(call function: (identifier) @fn arguments: (argument_list . (string) @arg)
  (#any-of? @fn "__import__" "import_module")) @dyn
(call function: (attribute object: (identifier) @obj attribute: (identifier) @fn)
  arguments: (argument_list . (string) @arg)
  (#eq? @obj "importlib") (#eq? @fn "import_module")) @dyn
"""
_JS_QUERY = """
(import_statement) @imp
(export_statement source: (_)) @imp
(call_expression function: (identifier) @fn
  arguments: (arguments . [(string) (template_string)] @arg) (#eq? @fn "require")) @dyn
(call_expression function: (import) arguments: (arguments . [(string) (template_string)] @arg)) @dyn
"""
QUERIES = {
    "python": _PY_QUERY,
    "java": "(import_declaration) @imp",
    "javascript": _JS_QUERY,
    "typescript": _JS_QUERY,
    "tsx": _JS_QUERY,
    "go": "(import_spec) @imp",
    "rust": """
(use_declaration) @imp
(mod_item !body) @imp
(extern_crate_declaration) @imp
""",
    "c": "(preproc_include) @imp",
    "cpp": "(preproc_include) @imp",
}

# Node types that open a function body: an import inside one runs late ("local").
FUNCTION_TYPES = {
    "python": {"function_definition", "lambda"},
    "javascript": {"function_declaration", "function_expression", "arrow_function",
                   "method_definition", "generator_function_declaration",
                   "generator_function", "function"},
    "rust": {"function_item", "closure_expression"},
}
FUNCTION_TYPES["typescript"] = FUNCTION_TYPES["tsx"] = FUNCTION_TYPES["javascript"]
# Top-level node types that start the body of a module (after its import block).
DEFINITION_TYPES = {
    "python": {"function_definition", "class_definition", "decorated_definition"},
    "javascript": {"function_declaration", "class_declaration", "generator_function_declaration"},
    "rust": {"function_item", "struct_item", "enum_item", "impl_item", "trait_item"},
}
DEFINITION_TYPES["typescript"] = DEFINITION_TYPES["tsx"] = DEFINITION_TYPES["javascript"] | {
    "interface_declaration", "type_alias_declaration", "abstract_class_declaration"}


@dataclass(frozen=True, slots=True)
class Import:
    """One dependency as the source writes it."""

    target: str            # as written: "a.b.c", "./x", "a/b.h", "crate::x::y", "example.com/m/u"
    kind: str              # import | from | include | system_include | use | mod | extern |
                           # reexport | require | dynamic | static
    names: tuple[str, ...] = ()  # names taken from the target ("*" for a wildcard)
    level: int = 0         # Python: leading dots of a relative import
    line: int = 0          # 0-based line of the statement
    local: bool = False    # inside a function/method body: runs late, often to dodge a cycle
    type_only: bool = False  # TS `import type`, Python `if TYPE_CHECKING:`
    scope: tuple[str, ...] = ()  # Rust: enclosing inline `mod name { ... }` blocks


_PARSERS: dict[str, tuple[Parser, Query]] = {}


def parser_for(language: str) -> tuple[Parser, Query] | None:
    """The (parser, import query) of a language, built on first use; None without a grammar."""
    if language in _PARSERS:
        return _PARSERS[language]
    if language not in GRAMMARS:
        return None
    module, func = GRAMMARS[language]
    lang = Language(getattr(importlib.import_module(module), func)())
    _PARSERS[language] = (Parser(lang), Query(lang, QUERIES[language]))
    return _PARSERS[language]


def has_parser(language: str) -> bool:
    return language in GRAMMARS


_LAST_TREE: list = [None, None, None]  # (language, content object, tree) of the last parse


def parse_tree(content: str | bytes, language: str):
    """CONTENT's tree-sitter tree. The last tree is reused when the same string object is
    parsed again in the same language: a file is parsed once for its imports and its
    syntax-aware FIM split (the cache holds a reference, so identity means equality)."""
    if _LAST_TREE[0] == language and _LAST_TREE[1] is content:
        return _LAST_TREE[2]
    parser, _ = parser_for(language)
    data = content if isinstance(content, bytes) else content.encode("utf-8", "surrogatepass")
    tree = parser.parse(data)
    _LAST_TREE[:] = [language, content, tree]
    return tree
