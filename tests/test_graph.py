"""Dependency graph: import extraction per language, resolution, cycle breaking, CodeGemma's
linearisation, unit-test links, the CLI views, real code and a 5,000-file repository."""
from __future__ import annotations

import json
import random
import shutil
import sysconfig
import time
from pathlib import Path

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fimpack.packing import graph as fgraph
from fimpack import graph_view
from fimpack.packing.graph import (break_cycles, build_graph, linearise_apsp,
                                   linearise_codegemma, linearise_deepseek, order_repository,
                                   place_rest)
from fimpack.graph_view import draw_png, graph_json, to_dot
from fimpack.packing.imports import extract_imports
from fimpack.packing.parsing import GRAMMARS, parser_for
from fimpack.packing.testlinks import is_test, link_tests, subject_of
from fimpack.languages import detect_language
from fimpack.records import SourceFile

STDLIB = Path(sysconfig.get_paths()["stdlib"])


def repo(files: dict[str, str], name: str = "repo") -> list[SourceFile]:
    return [SourceFile(name, p, detect_language(p) or "text", c) for p, c in files.items()]


def edges_of(files: dict[str, str], name: str = "repo") -> set[tuple[str, str]]:
    g, _, _ = build_graph(repo(files, name))
    return set(g.edges)


def targets(src: str, language: str) -> list[tuple]:
    return [(i.target, i.kind, i.names, i.level, i.local, i.type_only)
            for i in extract_imports(src, language).imports]


# --------------------------------------------------------------------------------------------
# Extraction, one language at a time.

def test_python_extraction():
    src = """\
import a.b.c as d, e
from ..x.y import (p, q as r)
from . import z
from m import *
from __future__ import annotations
if TYPE_CHECKING:
    import t
def f():
    import loc
    importlib.import_module("dyn.mod")
    __import__('dd')
    import_module(f"x{y}")
"""
    assert targets(src, "python") == [
        ("a.b.c", "import", (), 0, False, False),
        ("e", "import", (), 0, False, False),
        ("x.y", "from", ("p", "q"), 2, False, False),
        ("", "from", ("z",), 1, False, False),
        ("m", "from", ("*",), 0, False, False),
        ("t", "import", (), 0, False, True),
        ("loc", "import", (), 0, True, False),
        ("dyn.mod", "dynamic", (), 0, True, False),
        ("dd", "dynamic", (), 0, True, False),
    ]
    ex = extract_imports(src, "python")
    assert not ex.parse_error and ex.body_line == 7


@pytest.mark.parametrize("language", ["javascript", "typescript", "tsx"])
def test_js_ts_extraction(language):
    src = """\
import D, { a, b as c } from "./x";
import * as ns from '../y/z';
import "./side";
export { q } from "./q";
export * from "./all";
export const k = 1;
const m = require("./m");
const t = require(`./tpl`);
const no = require(`./t${x}`);
async function f() { const k = await import("./lazy"); }
"""
    assert targets(src, language) == [
        ("./x", "import", ("D", "a", "b"), 0, False, False),
        ("../y/z", "import", ("*",), 0, False, False),
        ("./side", "import", (), 0, False, False),
        ("./q", "reexport", ("q",), 0, False, False),
        ("./all", "reexport", ("*",), 0, False, False),
        ("./m", "require", (), 0, False, False),
        ("./tpl", "require", (), 0, False, False),
        ("./lazy", "dynamic", (), 0, True, False),
    ]


def test_typescript_only_constructs():
    src = """\
import type { T } from "./types";
import { type U, type V } from "./u";
import { type W, X } from "./w";
import fs = require("./fs");
export type { Y } from "./y";
"""
    assert targets(src, "typescript") == [
        ("./types", "import", ("T",), 0, False, True),
        ("./u", "import", ("U", "V"), 0, False, True),
        ("./w", "import", ("W", "X"), 0, False, False),
        ("./fs", "import", ("fs",), 0, False, False),
        ("./y", "reexport", ("Y",), 0, False, True),
    ]
    tsx = 'import { Button } from "./Button";\nexport const App = () => <Button label="x" />;\n'
    ex = extract_imports(tsx, "tsx")
    assert [i.target for i in ex.imports] == ["./Button"] and not ex.parse_error


def test_java_go_c_extraction():
    java = ("package com.ex;\nimport com.ex.util.Helper;\nimport static com.ex.util.Helper.run;\n"
            "import com.ex.model.*;\nclass A {}\n")
    assert targets(java, "java") == [
        ("com.ex.util.Helper", "import", (), 0, False, False),
        ("com.ex.util.Helper.run", "static", (), 0, False, False),
        ("com.ex.model", "import", ("*",), 0, False, False),
    ]
    go = ('package main\nimport "fmt"\nimport (\n\tu "example.com/m/util"\n'
          '\t_ "example.com/m/side"\n\t. "example.com/m/dot"\n)\n')
    assert targets(go, "go") == [
        ("fmt", "import", (), 0, False, False),
        ("example.com/m/util", "import", (), 0, False, False),
        ("example.com/m/side", "import", ("_",), 0, False, False),
        ("example.com/m/dot", "import", (".",), 0, False, False),
    ]
    c = '#include "a/b.h"\n#include <stdio.h>\n#define H "x.h"\n#include H\nint main(){}\n'
    for lang in ("c", "cpp"):
        assert targets(c, lang) == [("a/b.h", "include", (), 0, False, False),
                                    ("stdio.h", "system_include", (), 0, False, False)]


def test_rust_extraction():
    src = """\
mod a;
pub mod b { use super::c; mod inner; }
use crate::x::{y, z::{w as ww, self}, *};
pub use self::q::R;
use super::s;
extern crate serde;
#[path = "other.rs"] mod o;
fn f() { use crate::lazy::L; }
"""
    imps = extract_imports(src, "rust").imports
    assert [(i.target, i.kind, i.names, i.local, i.scope) for i in imps] == [
        ("a", "mod", (), False, ()),
        ("super::c", "use", ("c",), False, ("b",)),
        ("inner", "mod", (), False, ("b",)),
        ("crate::x::y", "use", ("y",), False, ()),
        ("crate::x::z::w", "use", ("w",), False, ()),
        ("crate::x::z", "use", ("self",), False, ()),
        ("crate::x", "use", ("*",), False, ()),
        ("self::q::R", "reexport", ("R",), False, ()),
        ("super::s", "use", ("s",), False, ()),
        ("serde", "extern", (), False, ()),
        ("other.rs", "mod_path", ("o",), False, ()),
        ("crate::lazy::L", "use", ("L",), True, ()),
    ]


@pytest.mark.parametrize("language", sorted(GRAMMARS))
def test_garbage_is_recorded_not_fatal(language):
    garbage = b"\xff\xfe\x00\x01 import (( { #include \x80\x81 use ;;; \xc3"
    ex = extract_imports(garbage, language)
    assert ex.parse_error
    assert parser_for(language) is parser_for(language)  # built once, reused


def test_unparsable_file_in_a_repository():
    files = repo({"a.py": "import b\n", "b.py": "x = 1\n", "broken.py": "def (:\n\x00\x01 import b",
                  "notes.md": "# notes\n"})
    r = order_repository(files)
    assert r.parse_errors == ["broken.py"]
    assert ("a.py", "b.py") in r.edges
    assert sorted(r.order) == sorted(f.path for f in files)


# --------------------------------------------------------------------------------------------
# Resolution.

def test_python_cycles_self_and_missing():
    files = {
        "pkg/__init__.py": "from . import a\nfrom .a import thing\n",
        "pkg/a.py": "from pkg import b\nimport pkg.a\nimport numpy\nimport pkg.missing_mod\n",
        "pkg/b.py": "def f():\n    from pkg.a import g\n",
    }
    r = order_repository(repo(files))
    assert set(r.edges) == {("pkg/__init__.py", "pkg/a.py"), ("pkg/a.py", "pkg/b.py"),
                            ("pkg/b.py", "pkg/a.py"), ("pkg/a.py", "pkg/__init__.py")}
    # numpy is third-party; pkg.missing_mod falls back to pkg/__init__.py (longest prefix)
    assert r.unresolved == 1
    # the cycle a <-> b is broken at the function-level import
    assert ("pkg/b.py", "pkg/a.py") in r.removed_edges


def test_python_package_beats_module_and_src_layout():
    files = {
        "src/pkg/__init__.py": "",
        "src/pkg/core.py": "from pkg.util import x\nfrom pkg import helpers\n",
        "src/pkg/util/__init__.py": "x = 1\n",
        "src/pkg/util.py": "x = 2\n",          # shadowed by the package util/
        "src/pkg/helpers.py": "",
        "src/nsp/mod.py": "",                  # a namespace package (no __init__.py)
        "tests/test_core.py": "import pkg.core\nfrom nsp import mod\nimport helper\n",
        "tests/helper.py": "",                 # a sibling of a script-style test
        "setup.py": "import setuptools\n",
    }
    e = edges_of(files)
    assert ("src/pkg/core.py", "src/pkg/util/__init__.py") in e
    assert ("src/pkg/core.py", "src/pkg/util.py") not in e
    assert ("src/pkg/core.py", "src/pkg/helpers.py") in e
    assert ("tests/test_core.py", "src/pkg/core.py") in e
    assert ("tests/test_core.py", "src/nsp/mod.py") in e
    assert ("tests/test_core.py", "tests/helper.py") in e


def test_python_module_when_no_package():
    e = edges_of({"app/__init__.py": "", "app/main.py": "from app import util\n",
                  "app/util.py": "", "app/util/data.txt": ""})
    assert e == {("app/main.py", "app/util.py")}


def test_python_relative_beyond_top_level_is_unresolved():
    files = repo({"a/__init__.py": "", "a/m.py": "from ... import x\nfrom .. import y\n"
                  "from .nothere import z\n"})
    g, unresolved, _ = build_graph(files)
    assert g.number_of_edges() == 0 and unresolved == 3


def test_python_root_package_by_repo_name():
    e = edges_of({"__init__.py": "", "parser.py": "from email.feedparser import F\n",
                  "feedparser.py": ""}, name="email")
    assert e == {("parser.py", "feedparser.py")}


def test_js_index_extensions_and_aliases():
    files = {
        "src/app.ts": 'import { a } from "./lib";\nimport b from "./b.js";\n'
                      'import c from "@/components/Button";\nimport React from "react";\n'
                      'import d from "./data.json";\nimport w from "@acme/widgets";\n',
        "src/lib/index.ts": "export const a = 1;\n",
        "src/b.ts": "export default 1;\n",
        "src/components/Button.tsx": "export default () => null;\n",
        "src/data.json": "{}",
        "packages/widgets/package.json": '{"name": "@acme/widgets", "main": "dist/index.js",'
                                         ' "source": "src/main.ts"}',
        "packages/widgets/src/main.ts": "export const w = 1;\n",
        "web/main.js": 'const x = require("../src/b");\nimport("./missing");\n',
    }
    r = order_repository(repo(files))
    assert set(r.edges) == {
        ("src/app.ts", "src/lib/index.ts"), ("src/app.ts", "src/b.ts"),
        ("src/app.ts", "src/components/Button.tsx"), ("src/app.ts", "src/data.json"),
        ("src/app.ts", "packages/widgets/src/main.ts"), ("web/main.js", "src/b.ts")}
    assert r.unresolved == 2  # react, ./missing


def test_typescript_runtime_specifiers_name_their_sources():
    """TypeScript resolves "./x.js" written in a .ts file to x.ts (then x.tsx, x.d.ts) even
    when the compiled x.js sits beside it; ".mjs"/".cjs" to .mts/.d.mts and .cts/.d.cts; a
    JavaScript importer keeps the runtime file."""
    files = {
        "src/a.ts": 'import { b } from "./b.js";\nimport m from "./m.mjs";\n'
                    'import c from "./c.cjs";\nimport v from "./view.jsx";\n',
        "src/b.ts": "export const b = 1;\n", "src/b.js": "exports.b = 1;\n",
        "src/m.mts": "export default 1;\n", "src/m.mjs": "export default 1;\n",
        "src/c.d.cts": "declare const c: number;\nexport = c;\n",
        "src/c.cjs": "module.exports = 1;\n",
        "src/view.tsx": "export default () => null;\n", "src/view.jsx": "export default 1;\n",
        "web/main.js": 'const b = require("../src/b.js");\n',
    }
    assert edges_of(files) == {("src/a.ts", "src/b.ts"), ("src/a.ts", "src/m.mts"),
                               ("src/a.ts", "src/c.d.cts"), ("src/a.ts", "src/view.tsx"),
                               ("web/main.js", "src/b.js")}


def test_c_angle_includes_follow_the_builds_include_folders():
    """<fmt.h> and <zlib.h> are the repository's own headers, found through the folders its
    CMakeLists.txt and Makefile pass as -I (not through a same-named header elsewhere)."""
    files = {
        "CMakeLists.txt": "add_executable(app src/main.c)\ntarget_include_directories(app "
                          "PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/third_party/fmt/public)\n",
        "src/main.c": "#include <fmt.h>\n#include <stdio.h>\nint main(void) { return 0; }\n",
        "third_party/fmt/public/fmt.h": "int fmt(void);\n",
        "tools/old/fmt.h": "int old_fmt(void);\n",
        "sub/Makefile": "CFLAGS += -I../extern/zlib -Wall\n",
        "sub/x.c": "#include <zlib.h>\n",
        "extern/zlib/zlib.h": "int inflate(void);\n",
    }
    assert edges_of(files) == {("src/main.c", "third_party/fmt/public/fmt.h"),
                               ("sub/x.c", "extern/zlib/zlib.h")}


def test_java_package_paths():
    files = {
        "src/main/java/com/ex/App.java": "package com.ex;\nimport com.ex.util.Helper;\n"
                                         "import static com.ex.util.Strings.pad;\n"
                                         "import com.ex.model.*;\nimport java.util.List;\n",
        "src/main/java/com/ex/util/Helper.java": "package com.ex.util;\n",
        "src/main/java/com/ex/util/Strings.java": "package com.ex.util;\n",
        "src/main/java/com/ex/model/User.java": "package com.ex.model;\n",
        "src/main/java/com/ex/model/Group.java": "package com.ex.model;\n",
    }
    r = order_repository(repo(files))
    app = "src/main/java/com/ex/App.java"
    assert set(r.edges) == {(app, "src/main/java/com/ex/util/Helper.java"),
                            (app, "src/main/java/com/ex/util/Strings.java"),
                            (app, "src/main/java/com/ex/model/User.java"),
                            (app, "src/main/java/com/ex/model/Group.java")}
    assert r.unresolved == 1
    assert r.importance[(app, "src/main/java/com/ex/model/User.java")] < \
        r.importance[(app, "src/main/java/com/ex/util/Helper.java")]


def test_go_module_path():
    files = {
        "go.mod": "module example.com/m\n\ngo 1.22\n",
        "main.go": 'package main\nimport (\n\t"fmt"\n\t"example.com/m/util"\n'
                   '\t"github.com/other/lib"\n)\n',
        "util/a.go": "package util\n",
        "util/b.go": "package util\n",
        "util/a_test.go": 'package util_test\nimport "example.com/m/util"\n',
        "tools/go.mod": "module example.com/m/tools\n",
        "tools/t.go": 'package tools\nimport "example.com/m/tools/x"\n',
        "tools/x/x.go": "package x\n",
    }
    r = order_repository(repo(files))
    assert set(r.edges) == {("main.go", "util/a.go"), ("main.go", "util/b.go"),
                            ("util/a_test.go", "util/a.go"), ("util/a_test.go", "util/b.go"),
                            ("tools/t.go", "tools/x/x.go")}
    assert r.unresolved == 2
    assert r.importance[("main.go", "util/a.go")] == pytest.approx(0.5)


def test_rust_crate_super_self_mod():
    files = {
        "Cargo.toml": '[package]\nname = "demo"\nversion = "0.1.0"\n',
        "src/lib.rs": "pub mod net;\nmod util;\npub use crate::net::Client;\nuse std::io;\n",
        "src/net/mod.rs": "pub mod client;\npub use self::client::Client;\n",
        "src/net/client.rs": "use super::super::util::helper;\nuse crate::util;\n"
                             "#[cfg(test)]\nmod tests { use super::*; }\n",
        "src/util.rs": "pub fn helper() {}\n",
        "tests/it.rs": "use demo::net::Client;\nmod common;\n",
        "tests/common/mod.rs": "",
        "examples/ex.rs": "extern crate demo;\n",
    }
    r = order_repository(repo(files))
    assert set(r.edges) == {
        ("src/lib.rs", "src/net/mod.rs"), ("src/lib.rs", "src/util.rs"),
        ("src/net/mod.rs", "src/net/client.rs"), ("src/net/client.rs", "src/util.rs"),
        ("tests/it.rs", "src/net/mod.rs"), ("tests/it.rs", "tests/common/mod.rs"),
        ("examples/ex.rs", "src/lib.rs")}
    assert r.unresolved == 1  # std::io


def test_rust_path_attributes_and_inline_modules():
    # the Rust Reference's rules: #[path] is relative to the declaring file's folder; inside
    # inline `mod a { ... }` blocks the blocks are folders, under a folder named after the
    # file when it is not a mod-rs file; `use` goes through modules declared with #[path]
    files = {
        "Cargo.toml": '[package]\nname = "codecs"\nedition = "2021"\n',
        "src/lib.rs": '#[cfg(unix)]\n#[path = "platform/unix_impl.rs"]\nmod sys;\n'
                      'mod outer {\n    pub mod inner;\n    #[path = "shim.rs"]\n'
                      '    pub mod shim;\n}\npub mod codec;\nuse outer::inner::thing;\n',
        "src/platform/unix_impl.rs": "pub fn raw() {}\n",
        "src/outer/inner.rs": "use crate::sys::raw;\npub fn thing() { raw() }\n",
        "src/outer/shim.rs": "",
        "src/codec.rs": 'mod frames {\n    #[path = "wire.rs"]\n    mod wire;\n}\n'
                        '#[path = "helpers/h.rs"]\nmod h;\nuse super::outer::shim;\n',
        "src/codec/frames/wire.rs": "use crate::codec;\n",
        "src/helpers/h.rs": "",
    }
    r = order_repository(repo(files))
    assert set(r.edges) == {
        ("src/lib.rs", "src/platform/unix_impl.rs"), ("src/lib.rs", "src/outer/inner.rs"),
        ("src/lib.rs", "src/outer/shim.rs"), ("src/lib.rs", "src/codec.rs"),
        ("src/outer/inner.rs", "src/platform/unix_impl.rs"),  # crate::sys, a #[path] module
        ("src/codec.rs", "src/codec/frames/wire.rs"), ("src/codec.rs", "src/helpers/h.rs"),
        ("src/codec.rs", "src/outer/shim.rs"), ("src/codec/frames/wire.rs", "src/codec.rs")}
    assert r.unresolved == 0


def test_c_includes():
    files = {
        "include/mylib/api.h": "#include <stddef.h>\n",
        "src/impl.c": '#include "mylib/api.h"\n#include "impl.h"\n#include <mylib/api.h>\n'
                      '#include "../third/missing.h"\n',
        "src/impl.h": "",
        "tests/t.cpp": '#include "api.h"\n#include <vector>\n',
    }
    r = order_repository(repo(files))
    assert set(r.edges) == {("src/impl.c", "include/mylib/api.h"),
                            ("src/impl.c", "src/impl.h"), ("tests/t.cpp", "include/mylib/api.h")}
    assert r.unresolved == 3  # stddef.h, missing.h, vector


# --------------------------------------------------------------------------------------------
# Cycle breaking and linearisation.

def test_cycle_breaking_removes_the_least_important_edge():
    g = nx.DiGraph()
    g.add_edge("a", "b", importance=3.0)
    g.add_edge("b", "c", importance=2.0)
    g.add_edge("c", "a", importance=1.0)
    g.add_edge("c", "d", importance=0.1)   # not on a cycle: kept however unimportant
    assert break_cycles(g) == [("c", "a")]
    assert nx.is_directed_acyclic_graph(g)

    files = {"a.py": "from b import x, y, z\n", "b.py": "def f():\n    import a\n"}
    r = order_repository(repo(files))
    assert r.removed_edges == [("b.py", "a.py")]
    assert r.order == ["b.py", "a.py"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 11), st.integers(0, 11), st.integers(1, 5)),
                max_size=40))
def test_cycle_breaking_properties(triples):
    g = nx.DiGraph()
    for u, v, w in triples:
        if u != v:
            g.add_edge(f"n{u:02d}", f"n{v:02d}", importance=float(w))
    original = g.copy()
    removed = break_cycles(g)
    assert nx.is_directed_acyclic_graph(g)
    assert set(g.edges) | set(removed) == set(original.edges)
    for u, v in removed:  # each closes a cycle of kept edges at least as important
        w = original.edges[u, v]["importance"]
        strong = nx.DiGraph([e for e in g.edges if g.edges[e]["importance"] >= w])
        assert strong.has_node(v) and strong.has_node(u) and nx.has_path(strong, v, u)


def test_codegemma_linearisation_hand_checked():
    # Edges point from importer to imported. Component 1: c_near and z_near import a_core;
    # hub imports z_near and b_far. Component 2: y imports x.
    g = nx.DiGraph([("c_near", "a_core"), ("z_near", "a_core"), ("hub", "z_near"),
                    ("hub", "b_far"), ("y", "x")])
    # Start: unparented {a_core, b_far, x}, all at infinite distance: a_core (lexicographic).
    # Then c_near (1 hop), z_near (1 hop) and b_far (3 hops: a_core-z_near-hub-b_far):
    # c_near wins the tie with z_near; then z_near (1) before b_far (3), although "b_far" is
    # alphabetically first; then b_far, hub, and the second component from its root x.
    expected = ["a_core", "c_near", "z_near", "b_far", "hub", "x", "y"]
    assert linearise_codegemma(g) == expected
    assert linearise_apsp(g) == expected
    # Plain lexicographic Kahn would have given a_core, b_far, c_near, x, y, z_near, hub.

    # A deeper one: app imports db and ui; db imports models and config; ui imports widgets;
    # models and widgets import config; cli imports app.
    g = nx.DiGraph([("app", "db"), ("app", "ui"), ("db", "models"), ("db", "config"),
                    ("ui", "widgets"), ("models", "config"), ("widgets", "config"),
                    ("cli", "app")])
    # config; then models and widgets (1 hop each): models; then db (1 from models) and
    # widgets (1 from config): db; app still waits for ui: widgets, ui, app, cli.
    expected = ["config", "models", "db", "widgets", "ui", "app", "cli"]
    assert linearise_codegemma(g) == expected == linearise_apsp(g)


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 14), st.lists(st.tuples(st.integers(0, 13), st.integers(0, 13)),
                                    max_size=30))
def test_fast_linearisation_equals_all_pairs_reference(n, pairs):
    g = nx.DiGraph()
    g.add_nodes_from(f"f{i:02d}" for i in range(n))
    for u, v in pairs:
        if u < n and v < n and u > v:  # acyclic: only from higher to lower index
            g.add_edge(f"f{u:02d}", f"f{v:02d}")
    order = linearise_codegemma(g)
    assert order == linearise_apsp(g)
    position = {p: i for i, p in enumerate(order)}
    assert all(position[v] < position[u] for u, v in g.edges)  # dependencies first


def test_deepseek_min_in_degree_order():
    g = nx.DiGraph([("a", "b"), ("b", "c"), ("c", "a"), ("d", "a"), ("x", "y")])
    # component {a, b, c, d}: every file has one unplaced dependency (a: b, b: c, c: a, d: a),
    # so a (lexicographic); that frees c and d (0 left): c, which frees b: b, then d. Then the
    # second component: y first (x still waits for y).
    assert linearise_deepseek(g) == ["a", "c", "b", "d", "y", "x"]
    r = order_repository(repo({"a.py": "import b\n", "b.py": "import a\n"}), strategy="deepseek")
    assert r.removed_edges == [] and r.order == ["a.py", "b.py"]
    with pytest.raises(ValueError):
        order_repository([], strategy="bogus")


# --------------------------------------------------------------------------------------------
# Unit-test links and placement.

@pytest.mark.parametrize("path,language,subject", [
    ("tests/test_parser.py", "python", "parser"),
    ("pkg/parser_test.py", "python", "parser"),
    ("src/test/java/com/ex/FooTest.java", "java", "foo"),
    ("src/test/java/com/ex/FooTests.java", "java", "foo"),
    ("src/test/java/com/ex/TestFoo.java", "java", "foo"),
    ("net/http/server_test.go", "go", "server"),
    ("src/util.spec.ts", "typescript", "util"),
    ("lib/util.test.js", "javascript", "util"),
    ("src/__tests__/Button.test.tsx", "tsx", "button"),
    ("tests/integration.rs", "rust", "integration"),
    ("tests/parser_unittest.cc", "cpp", "parser"),
])
def test_test_file_conventions(path, language, subject):
    assert is_test(path, language)
    assert subject_of(path, language) == subject


@pytest.mark.parametrize("path,language", [
    ("src/parser.py", "python"), ("src/main/java/com/ex/Foo.java", "java"),
    ("net/http/server.go", "go"), ("src/util.ts", "typescript"), ("src/lib.rs", "rust"),
    ("contest.py", "python"), ("attestation.go", "go")])
def test_not_test_files(path, language):
    assert not is_test(path, language)


def test_links_per_language():
    files = repo({
        "src/attr/_funcs.py": "def asdict(): pass\n",
        "src/attr/validators.py": "def instance_of(): pass\n",
        "tests/test_funcs.py": "from attr import asdict\n",
        "tests/test_validator_misc.py": "from attr.validators import instance_of\n"
                                        "def test_instance_of(): instance_of()\n",
        "tests/conftest.py": "",
        "src/main/java/com/ex/Foo.java": "class Foo {}\n",
        "src/test/java/com/ex/FooTest.java": "class FooTest {}\n",
        "web/util.ts": "export const u = 1;\n",
        "web/util.spec.ts": 'import { u } from "./util";\n',
        "server.go": "package srv\nfunc Serve() {}\n",
        "export_test.go": "package srv\nvar ServeForTest = Serve\n",
        "server_test.go": "package srv\n",
        "Cargo.toml": '[package]\nname = "c"\n',
        "src/lib.rs": "pub fn tokenize() {}\n",
        "tests/tokenize.rs": "use c::tokenize;\n",
    })
    r = order_repository(files)
    assert set(r.test_links) == {
        ("tests/test_funcs.py", "src/attr/_funcs.py"),
        ("tests/test_validator_misc.py", "src/attr/validators.py"),
        ("src/test/java/com/ex/FooTest.java", "src/main/java/com/ex/Foo.java"),
        ("web/util.spec.ts", "web/util.ts"),
        ("server_test.go", "server.go"),
        ("export_test.go", "server.go"),
        ("tests/tokenize.rs", "src/lib.rs"),
    }


def test_lexical_similarity_links_the_rest():
    files = repo({
        "lib/geometry.py": "class Polygon:\n    def triangulate(self): ...\n"
                           "def convex_hull(points): ...\n",
        "lib/strings.py": "def slugify(text): ...\ndef camel_case(text): ...\n",
        "tests/test_shapes.py": "def test_hull():\n    assert convex_hull([]) == []\n"
                                "    Polygon().triangulate()\n",
    })
    assert link_tests(files) == [("tests/test_shapes.py", "lib/geometry.py")]


def test_placement_tests_after_implementations():
    files = repo({
        "b.py": "import a\n", "a.py": "", "z.py": "", "test_z.py": "def test(): pass\n",
        "README.md": "# hi\n", "c/Foo.java": "class Foo {}", "c/FooTest.java": "class FooTest {}",
        "test_a.py": "def test(): pass\n",
    })
    r = order_repository(files)
    assert r.order == ["a.py", "test_a.py", "b.py", "README.md", "c/Foo.java", "c/FooTest.java",
                       "z.py", "test_z.py"]
    assert place_rest([], ["x", "y"], [], set()) == ["x", "y"]


# --------------------------------------------------------------------------------------------
# Real code: the interpreter's own json and email packages.

def test_stdlib_json_and_email(tmp_path):
    for name in ("json", "email"):
        shutil.copytree(STDLIB / name, tmp_path / name,
                        ignore=shutil.ignore_patterns("__pycache__"))
    files = [SourceFile("std", p.relative_to(tmp_path).as_posix(), "python", p.read_text())
             for p in sorted(tmp_path.rglob("*.py"))]
    r = order_repository(files)
    e = set(r.edges)
    for edge in [("email/parser.py", "email/feedparser.py"),     # from email.feedparser import
                 ("email/parser.py", "email/_policybase.py"),    # from email._policybase import
                 ("email/feedparser.py", "email/errors.py"),     # from email import errors
                 ("email/mime/text.py", "email/mime/nonmultipart.py"),
                 ("email/message.py", "email/generator.py"),     # inside a method
                 ("json/__init__.py", "json/decoder.py"),        # from .decoder import
                 ("json/decoder.py", "json/scanner.py"),         # from json import scanner
                 ("json/tool.py", "json/__init__.py")]:          # import json
        assert edge in e, edge
    assert ("email/parser.py", "email/__init__.py") not in e  # only submodules imported
    pos = {p: i for i, p in enumerate(r.order)}
    kept = set(r.edges) - set(r.removed_edges)
    assert all(pos[v] < pos[u] for u, v in kept)
    assert sorted(r.order) == sorted(f.path for f in files)
    assert r.parse_errors == []


# --------------------------------------------------------------------------------------------
# The CLI's views.

def test_graph_json_and_dot(tmp_path, monkeypatch):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("from .core import run\n")
    (tmp_path / "pkg" / "core.py").write_text("import os\nfrom . import util\n")
    (tmp_path / "pkg" / "util.py").write_text("def f():\n    from . import core\n")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_core.py").write_text("def test(): pass\n")
    (tmp_path / "README.md").write_text("# readme\n")
    (tmp_path / "LICENSE").write_text("MIT License\n")  # read for licences, not a graph node
    out = graph_json(str(tmp_path))
    assert set(out) == {"nodes", "edges", "order", "test_links", "unresolved",
                        "parse_errors"}
    assert out["nodes"] == sorted(["README.md", "pkg/__init__.py", "pkg/core.py", "pkg/util.py",
                                   "tests/test_core.py"])
    assert ["pkg/core.py", "pkg/util.py"] in out["edges"]
    assert ["pkg/util.py", "pkg/core.py"] in out["edges"]  # before cycle breaking
    assert out["test_links"] == [["tests/test_core.py", "pkg/core.py"]]
    assert out["unresolved"] == 1
    assert out["order"].index("tests/test_core.py") == out["order"].index("pkg/core.py") + 1 \
        or out["order"][-1] == "tests/test_core.py"
    json.dumps(out)

    r = order_repository(graph_view.read_repo(str(tmp_path)))
    dot = to_dot(r)
    assert dot.startswith("digraph") and '"pkg/core.py" -> "pkg/util.py"' in dot
    assert "style=dashed" in dot  # the removed edge
    monkeypatch.setattr(graph_view.shutil, "which", lambda name: None)
    with pytest.raises(graph_view.GraphvizMissing, match="apt-get install graphviz"):
        draw_png(r, str(tmp_path / "g.png"))
    assert (tmp_path / "g.dot").read_text() == dot


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz not installed")
def test_draw_png_with_graphviz(tmp_path):
    r = order_repository(repo({"a.py": "import b\n", "b.py": ""}))
    draw_png(r, str(tmp_path / "g.png"))
    assert (tmp_path / "g.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------------------------
# Scale: a synthetic 5,000-file repository.

def synthetic_repo(n_files: int = 5000, seed: int = 0) -> list[SourceFile]:
    """Python packages of 50 modules, an ``__init__.py`` and 5 tests each, until N_FILES.
    Each module imports 3 earlier modules of its package (one relative, one inside a
    function), 1 module of an earlier package, sometimes the next module (making cycles)
    and 2 third-party modules; each test imports the module it tests."""
    rng = random.Random(seed)
    per_pkg = 50
    out: list[SourceFile] = []
    i = 0
    while len(out) < n_files:
        pkg, m = divmod(i, per_pkg)
        name = f"proj/p{pkg:03d}/m{m:02d}"
        dotted = name.replace("/", ".")
        if m == 0:
            out.append(SourceFile("big", f"proj/p{pkg:03d}/__init__.py", "python", ""))
        lines = ["import os", "import numpy as np"]
        for k, j in enumerate(rng.sample(range(m), min(3, m))):
            other = f"proj.p{pkg:03d}.m{j:02d}"
            if k == 0:
                lines.append(f"from . import m{j:02d}")
            elif k == 1:
                lines.append(f"def lazy():\n    from {other} import f")
            else:
                lines.append(f"from {other} import f, g")
        if pkg:
            lines.append(f"import proj.p{rng.randrange(pkg):03d}.m{rng.randrange(per_pkg):02d}")
        if m + 1 < per_pkg and rng.random() < 0.3:
            lines.append(f"from proj.p{pkg:03d}.m{m + 1:02d} import f")
        lines.append("def f(x):\n    return x + 1\n\ndef g():\n    pass\n")
        out.append(SourceFile("big", name + ".py", "python", "\n".join(lines) + "\n"))
        if m % 10 == 0:
            out.append(SourceFile("big", f"tests/p{pkg:03d}/test_m{m:02d}.py", "python",
                                  f"from {dotted} import f\n\ndef test():\n"
                                  "    assert f(1) == 2\n"))
        i += 1
    return out[:n_files]


def test_synthetic_5000_file_repository():
    files = synthetic_repo(5000)
    assert len(files) == 5000
    t0 = time.perf_counter()
    r = order_repository(files)
    elapsed = time.perf_counter() - t0
    print(f"\n5,000 files: {elapsed:.2f} s, {len(r.edges)} edges, "
          f"{len(r.removed_edges)} removed, {len(r.test_links)} test links")
    assert sorted(r.order) == sorted(f.path for f in files)
    assert len(r.edges) > 15_000 and r.removed_edges
    kept = nx.DiGraph(list(set(r.edges) - set(r.removed_edges)))
    assert nx.is_directed_acyclic_graph(kept)
    pos = {p: i for i, p in enumerate(r.order)}
    assert all(pos[v] < pos[u] for u, v in kept.edges)  # time: bench_graph, not a test
