"""Per-language readers of import matches: one node that ``imports.py``'s tree-sitter query
matched -> zero or more ``Import``s (what it imports, how many names, where, type-only)."""
from __future__ import annotations

from tree_sitter import Node

from fimpack.packing.parsing import FUNCTION_TYPES, Import

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


def _literal_argument(call: Node, string_of) -> str | None:
    """The first argument of CALL when it is a string literal (``import_module("x")``,
    ``require("x")``, ``import("x")``), else None."""
    args = call.child_by_field_name("arguments")
    return string_of(args.named_children[0]) if args and args.named_children else None


def _py_imported_names(node: Node) -> list[str]:
    """The dotted names an import statement binds (``a.b`` of ``import a.b as c``)."""
    return [_dotted(n.child_by_field_name("name") if n.type == "aliased_import" else n)
            for n in node.children_by_field_name("name")]


def _read_python(node: Node, language: str) -> list[Import]:
    line = node.start_point[0]
    local = _is_local(node, language)
    if node.type == "call":
        value = _literal_argument(node, _py_string)
        if not value:
            return []
        level = len(value) - len(value.lstrip("."))
        return [Import(value[level:], "dynamic", (), level, line, local)]
    type_only = _py_type_checking(node)
    if node.type == "import_statement":
        return [Import(name, "import", (), 0, line, local, type_only)
                for name in _py_imported_names(node)]
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
    names = _py_imported_names(node)
    if any(c.type == "wildcard_import" for c in node.children):
        names.append("*")
    return [Import(target, "from", tuple(names), level, line, local, type_only)]


def _read_js(node: Node, language: str) -> list[Import]:
    line = node.start_point[0]
    local = _is_local(node, language)
    if node.type == "call_expression":
        value = _literal_argument(node, _js_string)
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


READERS = {
    "python": _read_python, "java": _read_java, "javascript": _read_js, "typescript": _read_js,
    "tsx": _read_js, "go": _read_go, "rust": _read_rust, "c": _read_c, "cpp": _read_c,
}
