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
  method, or a name of an imported package) and struct-literal keys (``T{Name: v}``; a map
  literal's keys are expressions and count), leaving out names declared inside the same
  top-level declaration (parameters, results, receivers, locals, type parameters): a rough
  scope rule, since Go allows shadowing. Java: type names (the first segment of ``A.B``),
  the objects of ``A.m()``/``A.F``/``A::m``, annotation names, and ``p.q.A`` written out in
  the file's own package; leaving out names the file imports by a single-type import (which
  shadows the package's own type), the file's type parameters and the types it declares
  itself at any depth.

``graph.build_graph`` turns these into edges: u -> v when u uses a name that v declares,
u and v in the same package (Go: same folder and package clause, so ``package foo_test``
is a package of its own; Java: the same ``package`` declaration, in any folder, as
``src/main/java`` and ``src/test/java`` share a package). Checked against the compilers'
own name resolution in ``benchmarks/bench_same_package.py`` (go/types ``Uses``; javac's
attributed trees).
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass

from tree_sitter import Node, Query, QueryCursor

from fimpack.packing.parsing import parser_for

LANGUAGES = ("go", "java")


@dataclass(frozen=True, slots=True)
class PackageNames:
    package: str                 # the package clause ("" when the file has none)
    declares: tuple[str, ...]    # package-level names the file declares, sorted
    uses: tuple[str, ...]        # names it refers to that are not its own, sorted


# One query per language finds every node the rules read (in C); plain Python then applies
# the rules to the captures. Walking the tree node by node in Python cost 1.5x as much.
_GO_QUERY = """
(package_clause (package_identifier) @package)
(identifier) @id
(type_identifier) @id
(function_declaration name: (identifier) @skip)
(qualified_type name: (type_identifier) @skip)
(keyed_element . (literal_element (identifier) @key))
(parameter_declaration (identifier) @bind)
(variadic_parameter_declaration (identifier) @bind)
(type_parameter_declaration (identifier) @bind)
(short_var_declaration left: (expression_list (identifier) @bind))
(range_clause left: (expression_list (identifier) @bind))
(var_spec (identifier) @bind)
(const_spec (identifier) @bind)
(type_spec name: (type_identifier) @bind)
(type_alias name: (type_identifier) @bind)
(receive_statement left: (expression_list (identifier) @recv))
(type_switch_statement alias: (expression_list (identifier) @bind))
"""
_JAVA_QUERY = """
(package_declaration [(scoped_identifier) (identifier)] @package)
(type_identifier) @t
(scoped_type_identifier) @scoped
(method_invocation object: (identifier) @o)
(field_access object: (identifier) @o)
(method_reference . (identifier) @o)
(marker_annotation name: (identifier) @o)
(annotation name: (identifier) @o)
(type_parameter . (type_identifier) @tp)
(class_declaration name: (identifier) @decl)
(interface_declaration name: (identifier) @decl)
(enum_declaration name: (identifier) @decl)
(record_declaration name: (identifier) @decl)
(annotation_type_declaration name: (identifier) @decl)
"""
_QUERIES: dict[str, Query] = {}


def _query(language: str) -> Query:
    if language not in _QUERIES:
        parser, _ = parser_for(language)
        _QUERIES[language] = Query(parser.language,
                                   _GO_QUERY if language == "go" else _JAVA_QUERY)
    return _QUERIES[language]


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
    caps = QueryCursor(_query("go")).captures(root)
    tops = root.named_children
    starts = [c.start_byte for c in tops]

    def top_of(n: Node) -> int:  # the top-level declaration holding N
        return bisect.bisect_right(starts, n.start_byte) - 1

    package = next((_text(n) for n in caps.get("package", [])), "")
    skip = {n.start_byte for n in caps.get("skip", [])}
    skip |= {n.start_byte for n in caps.get("key", []) if _go_struct_key(n.parent.parent)}
    local: dict[int, set[str]] = {}  # names bound inside each top-level declaration
    for n in caps.get("bind", []):
        local.setdefault(top_of(n), set()).add(_text(n))
    for n in caps.get("recv", []):  # v := <-ch binds v; v = <-ch does not
        if any(c.type == ":=" for c in n.parent.parent.children):
            local.setdefault(top_of(n), set()).add(_text(n))
    declares: set[str] = set()
    skip_tops = set()
    for i, top in enumerate(tops):
        t = top.type
        if t in ("package_clause", "import_declaration", "comment"):
            skip_tops.add(i)
        elif t == "function_declaration":
            declares.add(_text(top.child_by_field_name("name")))
        elif t in _GO_SPECS:
            for spec in _go_specs(top, _GO_SPECS[t]):
                declares.update(_go_spec_names(spec))
    uses: set[str] = set()
    for n in caps.get("id", []):
        if n.start_byte in skip:
            continue
        i = top_of(n)
        if i < 0 or i in skip_tops:
            continue
        name = _text(n)
        if name not in local.get(i, ()):
            uses.add(name)
    declares -= {"_", "init", ""}
    uses -= declares | {"_", ""}
    return PackageNames(package, tuple(sorted(declares)), tuple(sorted(uses)))


# ---------------------------------------------------------------------------------------------
# Java

def _java(root: Node) -> PackageNames:
    caps = QueryCursor(_query("java")).captures(root)
    package = next((_text(n).replace(" ", "") for n in caps.get("package", [])), "")
    declares: set[str] = set()
    shadowed: set[str] = set()   # single-type imports, nested types, type parameters
    uses: set[str] = set()
    qualified: set[str] = set()  # written as p.q.A: no import shadows it
    for top in root.named_children:
        if top.type == "import_declaration" and not any(
                c.type in ("asterisk", "static") for c in top.children):
            name = next((c for c in top.named_children
                         if c.type in ("scoped_identifier", "identifier")), None)
            if name is not None:
                shadowed.add(_text(name).rsplit(".", 1)[-1].strip())
    for n in caps.get("decl", []):  # top-level types are declared; nested ones shadow
        owner = n.parent.parent
        (declares if owner is not None and owner.type == "program" else shadowed).add(_text(n))
    shadowed.update(_text(n) for n in caps.get("tp", []))
    for n in caps.get("t", []):
        if n.parent.type != "scoped_type_identifier":  # A.B: the rule below
            uses.add(_text(n))
    for n in caps.get("scoped", []):
        if n.parent.type == "scoped_type_identifier":
            continue  # the outermost A.B.C only: A can be the package's own type
        first = n.named_children[0] if n.named_children else None
        while first is not None and first.type == "scoped_type_identifier":
            first = first.named_children[0] if first.named_children else None
        if first is not None and first.type == "type_identifier":
            uses.add(_text(first))
        dotted = "".join(_text(n).split())
        if package and dotted.startswith(package + "."):  # p.q.A written out in full
            qualified.add(dotted[len(package) + 1:].split(".", 1)[0].split("<", 1)[0])
    uses.update(_text(n) for n in caps.get("o", []))
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
