"""Import extraction with tree-sitter: what each source file says it depends on.

One query per language finds the import-like statements (imports, includes, ``use``/``mod``,
re-exports, ``require``/``import()``/``importlib.import_module`` with a literal argument);
plain Python then reads each match into an ``Import``. Parsers and compiled queries are built
once per process (``parser_for``) and reused: a Beam worker pays for them once.

tree-sitter always returns a tree: on a syntax error it recovers, so the imports of the valid
parts still come out, and ``Extraction.parse_error`` records that the file did not parse
cleanly (garbage bytes, a Python 2 file, a newer syntax than the grammar knows).

What an ``Import`` records is what resolution (``resolve.py``) and edge importance
(``graph.py``) need: the target as written, how many names come from it, where it sits
(module level or inside a function) and whether it is type-only.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass

from tree_sitter import Language, Node, Parser, Query, QueryCursor

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


@dataclass(frozen=True, slots=True)
class Extraction:
    imports: tuple[Import, ...]
    parse_error: bool      # tree-sitter had to recover from a syntax error somewhere
    body_line: int         # line of the first top-level definition (-1: none); imports after
                           # it are "late" module-level imports


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


def extract_imports(content: str | bytes, language: str) -> Extraction:
    """Parse CONTENT as LANGUAGE and return its imports (empty for a language without parser)."""
    built = parser_for(language)
    if built is None:
        return Extraction((), False, -1)
    _, query = built
    root = parse_tree(content, language).root_node
    captures = QueryCursor(query).captures(root)
    read = _READERS[language]
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
    return Extraction(tuple(imports), root.has_error, body_line)


# ---------------------------------------------------------------------------------------------
# Helpers shared by the readers.

def _text(node: Node | None) -> str:
    return node.text.decode("utf-8", "replace") if node is not None else ""


def _is_local(node: Node, language: str) -> bool:
    funcs = FUNCTION_TYPES.get(language)
    if not funcs:
        return False
    p = node.parent
    while p is not None:
        if p.type in funcs:
            return True
        p = p.parent
    return False


def _js_string(node: Node) -> str | None:
    """The value of a JS/TS string or a template string without substitutions."""
    if node.type == "template_string":
        if any(c.type == "template_substitution" for c in node.children):
            return None
    text = _text(node)
    return text[1:-1] if len(text) >= 2 else None


def _py_string(node: Node) -> str | None:
    """The value of a plain Python string literal (None for f-strings with fields)."""
    if node.type != "string" or any(c.type == "interpolation" for c in node.children):
        return None
    return "".join(_text(c) for c in node.children if c.type == "string_content")


def _dotted(node: Node) -> str:
    return "".join(_text(c) for c in node.children if c.type in ("identifier", "."))


# ---------------------------------------------------------------------------------------------
# Per-language readers: one matched node -> zero or more Imports.

def _py_type_checking(node: Node) -> bool:
    p = node.parent
    while p is not None:
        if p.type == "if_statement":
            cond = _text(p.child_by_field_name("condition"))
            if cond.endswith("TYPE_CHECKING"):
                return True
        p = p.parent
    return False


def _read_python(node: Node, language: str) -> list[Import]:
    line = node.start_point[0]
    local = _is_local(node, language)
    if node.type == "call":
        args = node.child_by_field_name("arguments")
        value = _py_string(args.named_children[0]) if args and args.named_children else None
        if not value:
            return []
        level = len(value) - len(value.lstrip("."))
        return [Import(value[level:], "dynamic", (), level, line, local)]
    type_only = _py_type_checking(node)
    if node.type == "import_statement":
        out = []
        for name in node.children_by_field_name("name"):
            if name.type == "aliased_import":
                name = name.child_by_field_name("name")
            out.append(Import(_dotted(name), "import", (), 0, line, local, type_only))
        return out
    # import_from_statement
    module = node.child_by_field_name("module_name")
    level, target = 0, ""
    if module is not None and module.type == "relative_import":
        for c in module.children:
            if c.type == "import_prefix":
                level = sum(1 for t in c.children if t.type == ".")
            elif c.type == "dotted_name":
                target = _dotted(c)
    elif module is not None:
        target = _dotted(module)
    names = []
    for name in node.children_by_field_name("name"):
        if name.type == "aliased_import":
            name = name.child_by_field_name("name")
        names.append(_dotted(name))
    if any(c.type == "wildcard_import" for c in node.children):
        names.append("*")
    return [Import(target, "from", tuple(names), level, line, local, type_only)]


def _read_js(node: Node, language: str) -> list[Import]:
    line = node.start_point[0]
    local = _is_local(node, language)
    if node.type == "call_expression":
        args = node.child_by_field_name("arguments")
        value = _js_string(args.named_children[0]) if args and args.named_children else None
        if not value:
            return []
        fn = node.child_by_field_name("function")
        kind = "dynamic" if fn is not None and fn.type == "import" else "require"
        return [Import(value, kind, (), 0, line, local)]
    source = node.child_by_field_name("source")
    names: list[str] = []
    type_only = any(c.type == "type" for c in node.children)
    specifiers = 0
    typed_specifiers = 0
    for c in node.named_children:
        if c.type == "import_clause":
            for part in c.named_children:
                if part.type == "identifier":
                    names.append(_text(part))
                elif part.type == "namespace_import":
                    names.append("*")
                elif part.type == "named_imports":
                    for spec in part.named_children:
                        if spec.type == "import_specifier":
                            specifiers += 1
                            typed_specifiers += any(t.type == "type" for t in spec.children)
                            names.append(_text(spec.child_by_field_name("name")))
        elif c.type == "import_require_clause":
            source = c.child_by_field_name("source")
            names.append(_text(c.named_children[0]))
        elif c.type == "export_clause":
            for spec in c.named_children:
                if spec.type == "export_specifier":
                    names.append(_text(spec.child_by_field_name("name")))
        elif c.type == "namespace_export":
            names.append("*")
    if node.type == "export_statement" and not names:
        names.append("*")  # export * from "x"
    if specifiers and typed_specifiers == specifiers and len(names) == specifiers:
        type_only = True  # import { type A, type B } from "x"
    value = _js_string(source) if source is not None else None
    if not value:
        return []
    kind = "reexport" if node.type == "export_statement" else "import"
    return [Import(value, kind, tuple(names), 0, line, local, type_only)]


def _read_java(node: Node, language: str) -> list[Import]:
    static = any(c.type == "static" for c in node.children)
    wildcard = any(c.type == "asterisk" for c in node.children)
    name = next((c for c in node.named_children if c.type in ("scoped_identifier", "identifier")),
                None)
    if name is None:
        return []
    target = _text(name).replace(" ", "")
    return [Import(target, "static" if static else "import", ("*",) if wildcard else (),
                   0, node.start_point[0])]


def _read_go(node: Node, language: str) -> list[Import]:
    path = node.child_by_field_name("path")
    name = node.child_by_field_name("name")
    value = _text(path)[1:-1] if path is not None else ""
    if not value:
        return []
    names = (_text(name),) if name is not None and name.type != "package_identifier" else ()
    return [Import(value, "import", names, 0, node.start_point[0])]


def _rust_scope(node: Node) -> tuple[str, ...]:
    scope = []
    p = node.parent
    while p is not None:
        if p.type == "mod_item" and p.child_by_field_name("body") is not None:
            scope.append(_text(p.child_by_field_name("name")))
        p = p.parent
    return tuple(reversed(scope))


def _rust_use_paths(node: Node, prefix: list[str], out: list[tuple[list[str], str]]) -> None:
    """Expand a use tree into (path segments, imported name) pairs."""
    t = node.type
    if t in ("identifier", "crate", "self", "super", "metavariable"):
        seg = _text(node)
        if t == "self" and prefix:
            out.append((prefix, "self"))
        else:
            out.append((prefix + [seg], seg))
    elif t == "scoped_identifier":
        out.append((prefix + _rust_segments(node), _text(node.child_by_field_name("name"))))
    elif t == "use_as_clause":
        _rust_use_paths(node.child_by_field_name("path"), prefix, out)
    elif t == "use_wildcard":
        inner = node.named_children[0] if node.named_children else None
        out.append((prefix + (_rust_segments(inner) if inner is not None else []), "*"))
    elif t == "scoped_use_list":
        path = node.child_by_field_name("path")
        base = prefix + (_rust_segments(path) if path is not None else [])
        lst = node.child_by_field_name("list")
        if lst is not None:
            for c in lst.named_children:
                _rust_use_paths(c, base, out)
    elif t == "use_list":
        for c in node.named_children:
            _rust_use_paths(c, prefix, out)


def _rust_segments(node: Node) -> list[str]:
    if node.type == "scoped_identifier":
        path = node.child_by_field_name("path")
        name = node.child_by_field_name("name")
        return (_rust_segments(path) if path is not None else []) + [_text(name)]
    return [_text(node)]


def _read_rust(node: Node, language: str) -> list[Import]:
    line = node.start_point[0]
    scope = _rust_scope(node)
    if node.type == "mod_item":
        name = _text(node.child_by_field_name("name"))
        prev = node.prev_named_sibling
        while prev is not None and prev.type == "attribute_item":
            attr = prev.named_children[0] if prev.named_children else None
            if attr is not None and attr.named_children and _text(attr.named_children[0]) == "path":
                value = attr.child_by_field_name("value")
                if value is not None:
                    return [Import(_text(value).strip('"'), "mod_path", (name,), 0, line,
                                   False, False, scope)]
            prev = prev.prev_named_sibling
        return [Import(name, "mod", (), 0, line, False, False, scope)]
    if node.type == "extern_crate_declaration":
        return [Import(_text(node.child_by_field_name("name")), "extern", (), 0, line,
                       False, False, scope)]
    arg = node.child_by_field_name("argument")
    if arg is None:
        return []
    reexport = any(c.type == "visibility_modifier" for c in node.children)
    local = _is_local(node, language)
    paths: list[tuple[list[str], str]] = []
    _rust_use_paths(arg, [], paths)
    kind = "reexport" if reexport else "use"
    return [Import("::".join(segs), kind, (name,), 0, line, local, False, scope)
            for segs, name in paths if segs]


def _read_c(node: Node, language: str) -> list[Import]:
    path = node.child_by_field_name("path")
    if path is None:
        return []
    text = _text(path)
    if path.type == "system_lib_string":
        return [Import(text[1:-1], "system_include", (), 0, node.start_point[0])]
    if path.type == "string_literal":
        return [Import(text[1:-1], "include", (), 0, node.start_point[0])]
    return []  # #include MACRO


_READERS = {
    "python": _read_python, "java": _read_java, "javascript": _read_js, "typescript": _read_js,
    "tsx": _read_js, "go": _read_go, "rust": _read_rust, "c": _read_c, "cpp": _read_c,
}
