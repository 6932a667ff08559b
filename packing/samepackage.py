"""Same-package dependencies: what a Java or Go file uses from the other files of its package
without importing them.

Files of one Java package see each other's top-level types with no import (``class B extends
A`` with ``A`` and ``B`` in package ``p``); files of one Go package (one folder, one ``package``
clause) share every package-level identifier. Neither shows up as an import, so without this
the files of a Go package or a Java package would have no edges between them.

Per file, from the tree-sitter tree the import extraction already built (``parse_tree``):

* ``package``: the package clause (Go: ``package foo``; Java: ``package a.b;``);
* ``declares``: the names the file declares at package level (Go: functions, types, vars and
  consts at the top level, not methods, ``init`` or ``_``; Java: top-level classes,
  interfaces, enums, records and annotation types);
* ``uses``: the names the file refers to that could be another file's declaration.
  Go: identifiers and type names outside selectors' right-hand sides (``x.F``: a field or
  method, or a name of an imported package), leaving out names declared inside the same
  top-level declaration (parameters, results, receivers, locals, type parameters): a rough
  scope rule, since Go allows shadowing. Java: type names (the first segment of ``A.B``),
  the objects of ``A.m()``/``A.F``/``A::m``, and annotation names; leaving out names the file
  imports by a single-type import (which shadows the package's own type), the file's type
  parameters and the types it declares itself at any depth.

``graph.build_graph`` turns these into edges: u -> v when u uses a name that v declares,
u and v in the same package (Go: same folder and package clause, so ``package foo_test``
is a package of its own; Java: the same ``package`` declaration, in any folder, as
``src/main/java`` and ``src/test/java`` share a package). Checked against the compilers'
own name resolution in ``benchmarks/bench_same_package.py`` (go/types ``Uses``; javac's
attributed trees).
"""
from __future__ import annotations

from dataclasses import dataclass

from tree_sitter import Node

LANGUAGES = ("go", "java")


@dataclass(frozen=True, slots=True)
class PackageNames:
    package: str                 # the package clause ("" when the file has none)
    declares: tuple[str, ...]    # package-level names the file declares, sorted
    uses: tuple[str, ...]        # names it refers to that are not its own, sorted


def _text(node: Node | None) -> str:
    return node.text.decode("utf-8", "replace") if node is not None else ""


def package_names(root: Node, language: str) -> PackageNames | None:
    """The package, declarations and uses of a parsed Go or Java file; None otherwise."""
    if language == "go":
        return _go(root)
    if language == "java":
        return _java(root)
    return None


# ---------------------------------------------------------------------------------------------
# Go

_GO_SPECS = {"var_declaration": "var_spec", "const_declaration": "const_spec",
             "type_declaration": ("type_spec", "type_alias")}
# Nodes that bind names inside a declaration, and the child types holding those names.
_GO_BINDERS = {"parameter_declaration", "variadic_parameter_declaration",
               "type_parameter_declaration", "short_var_declaration", "range_clause",
               "var_spec", "const_spec", "type_spec", "type_alias", "labeled_statement",
               "receive_statement", "type_switch_statement"}


def _go_spec_names(spec: Node) -> list[str]:
    if spec.type in ("type_spec", "type_alias"):
        return [_text(spec.child_by_field_name("name"))]
    return [_text(c) for c in spec.children_by_field_name("name")]


def _go_specs(decl: Node, kinds) -> list[Node]:
    """The specs of a var/const/type declaration, grouped ``( ... )`` or not."""
    kinds = (kinds,) if isinstance(kinds, str) else kinds
    out = []
    for c in decl.named_children:
        if c.type in kinds:
            out.append(c)
        elif c.type.endswith("_spec_list"):
            out += [s for s in c.named_children if s.type in kinds]
    return out


def _go_local_names(node: Node, out: set[str]) -> None:
    """Names bound anywhere inside NODE (a top-level declaration's parts)."""
    stack = [node]
    while stack:
        n = stack.pop()
        t = n.type
        if t in ("parameter_declaration", "variadic_parameter_declaration",
                 "type_parameter_declaration", "var_spec", "const_spec"):
            out.update(_text(c) for c in n.children_by_field_name("name"))
        elif t in ("type_spec", "type_alias"):
            out.add(_text(n.child_by_field_name("name")))
        elif t in ("short_var_declaration", "range_clause", "receive_statement"):
            left = n.child_by_field_name("left")
            if left is not None and (t != "receive_statement" or any(
                    c.type == ":=" for c in n.children)):
                out.update(_text(c) for c in left.named_children if c.type == "identifier")
        elif t == "type_switch_statement":
            alias = n.child_by_field_name("alias")
            if alias is not None:
                out.update(_text(c) for c in alias.named_children if c.type == "identifier")
        stack.extend(n.named_children)


def _go_uses(node: Node, out: set[str]) -> None:
    stack = [node]
    while stack:
        n = stack.pop()
        t = n.type
        if t in ("identifier", "type_identifier"):
            out.add(_text(n))
            continue
        if t == "selector_expression":  # x.F: only x can be a package-level name
            operand = n.child_by_field_name("operand")
            if operand is not None:
                stack.append(operand)
            continue
        if t == "keyed_element" and _go_struct_key(n):  # T{Name: v}: Name is a field
            stack.extend(n.named_children[1:])
            continue
        if t in ("qualified_type", "comment", "interpreted_string_literal",
                 "raw_string_literal", "field_identifier", "package_identifier",
                 "label_name"):
            continue
        stack.extend(n.named_children)


def _go_struct_key(keyed: Node) -> bool:
    """Whether KEYED (``k: v`` in a composite literal) names a struct field: a bare
    identifier key in a literal whose type is a named or struct type (a map or array literal's
    keys are expressions, often the package's constants). Nested literals without a type
    (``[]T{{Name: v}}``) follow their outer literal's element type."""
    key = keyed.named_children[0] if keyed.named_children else None
    if key is None or key.type != "literal_element" or not key.named_children \
            or key.named_children[0].type != "identifier":
        return False
    lit = keyed.parent.parent if keyed.parent is not None else None  # literal_value's owner
    while lit is not None and lit.type == "literal_element":  # an untyped nested literal
        lit = lit.parent.parent.parent if lit.parent is not None and lit.parent.type == \
            "keyed_element" else lit.parent.parent
        if lit is not None and lit.type == "composite_literal":
            typ = lit.child_by_field_name("type")
            return typ is not None and _go_element_is_struct(typ)
    if lit is None or lit.type != "composite_literal":
        return False
    typ = lit.child_by_field_name("type")
    return typ is not None and typ.type in ("type_identifier", "qualified_type", "generic_type",
                                            "struct_type")


def _go_element_is_struct(typ: Node) -> bool:
    """For ``[]T{{k: v}}`` and ``map[K]T{...}``: whether T looks like a struct."""
    elem = typ.child_by_field_name("value") if typ.type == "map_type" else \
        typ.child_by_field_name("element") if typ.type in (
            "slice_type", "array_type", "implicit_length_array_type") else None
    if elem is None:
        return False
    if elem.type == "pointer_type" and elem.named_children:
        elem = elem.named_children[0]
    return elem.type in ("type_identifier", "qualified_type", "generic_type", "struct_type")


def _go(root: Node) -> PackageNames:
    package = ""
    declares: set[str] = set()
    uses: set[str] = set()
    for top in root.named_children:
        t = top.type
        if t == "package_clause":
            package = next((_text(c) for c in top.named_children
                            if c.type == "package_identifier"), "")
            continue
        if t == "import_declaration" or t == "comment":
            continue
        own: set[str] = set()
        local: set[str] = set()
        if t == "function_declaration":
            own.add(_text(top.child_by_field_name("name")))
            for field in ("type_parameters", "parameters", "result", "body"):
                part = top.child_by_field_name(field)
                if part is not None:
                    _go_local_names(part, local)
        elif t == "method_declaration":
            for field in ("receiver", "parameters", "result", "body"):
                part = top.child_by_field_name(field)
                if part is not None:
                    _go_local_names(part, local)
        elif t in _GO_SPECS:
            specs = _go_specs(top, _GO_SPECS[t])
            for s in specs:
                own.update(_go_spec_names(s))
            # locals of function literals and type parameters inside the specs' values
            for s in specs:
                for field in ("value", "type", "type_parameters"):
                    part = s.child_by_field_name(field)
                    if part is not None:
                        _go_local_names(part, local)
        found: set[str] = set()
        if t == "method_declaration":  # the method's name is a field, not a package name
            for field in ("receiver", "type_parameters", "parameters", "result", "body"):
                part = top.child_by_field_name(field)
                if part is not None:
                    _go_uses(part, found)
        elif t == "function_declaration":
            for field in ("type_parameters", "parameters", "result", "body"):
                part = top.child_by_field_name(field)
                if part is not None:
                    _go_uses(part, found)
        elif t in _GO_SPECS:
            for s in _go_specs(top, _GO_SPECS[t]):
                for field in ("type", "value", "type_parameters"):
                    part = s.child_by_field_name(field)
                    if part is not None:
                        _go_uses(part, found)
                if s.type == "const_spec" and s.child_by_field_name("value") is None:
                    pass  # an implicit repetition of the previous spec's expression
        else:
            _go_uses(top, found)
        declares |= own
        uses |= found - local
    declares -= {"_", "init", ""}
    uses -= declares | {"_", ""}
    return PackageNames(package, tuple(sorted(declares)), tuple(sorted(uses)))


# ---------------------------------------------------------------------------------------------
# Java

_JAVA_TYPES = {"class_declaration", "interface_declaration", "enum_declaration",
               "record_declaration", "annotation_type_declaration"}
_JAVA_OBJECT_PARENTS = {"method_invocation": "object", "field_access": "object"}


def _java(root: Node) -> PackageNames:
    package = ""
    declares: set[str] = set()
    shadowed: set[str] = set()   # single-type imports, nested types, type parameters
    uses: set[str] = set()
    qualified: set[str] = set()  # written as p.q.A: no import shadows it
    for top in root.named_children:
        if top.type == "package_declaration":
            name = next((c for c in top.named_children
                         if c.type in ("scoped_identifier", "identifier")), None)
            package = _text(name).replace(" ", "")
        elif top.type == "import_declaration":
            if not any(c.type == "asterisk" for c in top.children) and not any(
                    c.type == "static" for c in top.children):
                name = next((c for c in top.named_children
                             if c.type in ("scoped_identifier", "identifier")), None)
                if name is not None:
                    shadowed.add(_text(name).rsplit(".", 1)[-1].strip())
        elif top.type in _JAVA_TYPES:
            declares.add(_text(top.child_by_field_name("name")))
    stack = [root]
    while stack:
        n = stack.pop()
        t = n.type
        if t in ("package_declaration", "import_declaration", "line_comment", "block_comment",
                 "string_literal"):
            continue
        if t in _JAVA_TYPES and n.parent is not None and n.parent.type != "program":
            shadowed.add(_text(n.child_by_field_name("name")))
        elif t == "type_parameter":
            first = next((c for c in n.named_children if c.type == "type_identifier"), None)
            if first is not None:
                shadowed.add(_text(first))
            stack.extend(c for c in n.named_children if c is not first)
            continue
        if t == "type_identifier":
            uses.add(_text(n))
            continue
        if t == "scoped_type_identifier":  # A.B: only A can be a package's own type
            first = n.named_children[0] if n.named_children else None
            while first is not None and first.type == "scoped_type_identifier":
                first = first.named_children[0] if first.named_children else None
            if first is not None and first.type == "type_identifier":
                uses.add(_text(first))
            dotted = "".join(_text(n).split())
            if package and dotted.startswith(package + "."):  # p.q.A written out in full
                qualified.add(dotted[len(package) + 1:].split(".", 1)[0].split("<", 1)[0])
            for c in n.named_children:  # type arguments and annotations inside
                if c.type not in ("type_identifier", "scoped_type_identifier"):
                    stack.append(c)
            continue
        if t == "identifier":
            p = n.parent
            field = _JAVA_OBJECT_PARENTS.get(p.type) if p is not None else None
            if (field is not None and p.child_by_field_name(field) == n) or (
                    p is not None and p.type == "method_reference" and p.named_children
                    and p.named_children[0] == n) or (
                    p is not None and p.type in ("marker_annotation", "annotation")
                    and p.child_by_field_name("name") == n):
                uses.add(_text(n))
            continue
        stack.extend(n.named_children)
    uses = (uses - declares - shadowed) | (qualified - declares)
    return PackageNames(package, tuple(sorted(declares - {""})), tuple(sorted(uses)))


# ---------------------------------------------------------------------------------------------
# Edges

def package_key(path: str, language: str, package: str) -> tuple[str, ...]:
    """Which files form one package: Go, one folder and one package clause; Java, one
    ``package`` declaration wherever the file is (main and test source roots share it)."""
    if language == "go":
        return ("go", path.rsplit("/", 1)[0] if "/" in path else "", package)
    return (language, package)


def same_package_edges(files: list[tuple[str, str, PackageNames]]
                       ) -> dict[tuple[str, str], tuple[str, ...]]:
    """{(user, declarer): names} over FILES [(path, language, names)] of one repository: the
    user refers to names the declarer declares, both in one package. A name declared in
    several files of the package (Go files for different build tags) links to each."""
    groups: dict[tuple[str, ...], list[tuple[str, PackageNames]]] = {}
    for path, language, names in files:
        if names is not None and language in LANGUAGES:
            groups.setdefault(package_key(path, language, names.package), []).append(
                (path, names))
    out: dict[tuple[str, str], tuple[str, ...]] = {}
    for key in sorted(groups):
        members = groups[key]
        if len(members) < 2:
            continue
        where: dict[str, list[str]] = {}
        for path, names in members:
            for n in names.declares:
                where.setdefault(n, []).append(path)
        for path, names in members:
            found: dict[str, list[str]] = {}
            for n in names.uses:
                for target in where.get(n, ()):
                    if target != path:
                        found.setdefault(target, []).append(n)
            for target, used in found.items():
                out[(path, target)] = tuple(sorted(used))
    return dict(sorted(out.items()))
