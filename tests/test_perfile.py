"""The per-file packing records (``packing/perfile.py``): compact, and lossless.

A formatted file travels as its content once, its pieces as offsets and its ids as array bytes;
what comes back must be exactly what ``file_segments`` made. The split candidates read from
their array must give ``random.choice`` the same span as the list ``syntax.candidate_spans``
returns, draw for draw; and a repository planned from its files' records alone must hold every
file part once, in dependency order, within a sequence (the whole build's examples are checked
against ``pack_repository`` in one process by ``test_build_stages``)."""
from __future__ import annotations

import pickle
import random

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from fimpack.config import MIXED, SYNTAX, UNIFORM
from fimpack.packing.examples import file_segments
from fimpack.packing.perfile import (FileFacts, Spans, build_example, compact, file_facts,
                                     id_dtype, plan_repository)
from fimpack.packing.syntax import candidate_spans
from fimpack.records import SourceFile

PY = '''import os
from json import dumps, loads


class Box:
    """A box."""

    def __init__(self, x):
        self.x = [x, "<|fim_prefix|>", 'é']

    def dump(self):
        return dumps({"x": self.x}) if self.x else loads("{}")
'''

lines = st.lists(st.sampled_from([
    "import os\n", "x = 1\n", "def f(a):\n", "    return a + 1\n", "\n", "# é ü 𝔘\n",
    "class C:\n", "    pass\n", "s = '<|file_separator|>'\n", "\r\n", "y = [1,\n", "  2]\n"]),
    min_size=0, max_size=60)


@settings(max_examples=40, deadline=None)
@given(body=lines, seed=st.integers(0, 50), fim_rate=st.sampled_from([0.0, 0.5, 1.0]),
       split=st.sampled_from([UNIFORM, SYNTAX, MIXED]), seq_len=st.sampled_from([64, 256]))
def test_a_compact_body_gives_back_the_segments(tokenizer, body, seed, fim_rate, split,
                                                seq_len):
    f = SourceFile("r", "pkg/m.py", "python", "".join(body) + PY)
    facts = file_facts(f, seed=seed, fim_rate=fim_rate, split=split)
    segments = file_segments(f, tokenizer, seed=seed, fim_rate=fim_rate, seq_len=seq_len,
                             split=split, spans=facts.span_list())
    # the split candidates parsed before the tokenizer give the same segments as a parse here
    assert segments == file_segments(f, tokenizer, seed=seed, fim_rate=fim_rate,
                                     seq_len=seq_len, split=split)
    dtype = id_dtype(tokenizer.vocab_size)
    meta, body_record = compact(f, facts, segments, dtype)
    body_record = pickle.loads(pickle.dumps(body_record))
    assert meta.tokens == tuple(len(ids) for _, _, ids in segments)
    assert body_record.content == f.content and "".join(
        body_record.part(k)[1] for k in range(len(segments))) == f.content
    for k, (entry, pieces, ids) in enumerate(segments):
        example, got = build_example("r", 0, [body_record.part(k)], tokenizer,
                                     seq_len=seq_len, split="train")
        assert example.files == (entry,)
        assert [(p.kind, p.text) for p in example.pieces] == [(p.kind, p.text) for p in pieces]
        assert got.tolist() == [tokenizer.bos_id] + list(ids) + [tokenizer.eos_id]


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), text=lines)
def test_spans_from_their_array_choose_as_the_list_does(seed, text):
    content = "".join(text) + PY
    spans = candidate_spans(content, "python")
    data = np.asarray(spans, dtype=np.int32).reshape(-1, 2).tobytes()
    a, b = random.Random(seed), random.Random(seed)
    view = Spans(data)
    assert len(view) == len(spans) and bool(view) == bool(spans)
    for _ in range(5):
        assert a.choice(spans) == b.choice(view)
    assert FileFacts(b"", data).span_list()[len(spans) - 1] == spans[-1]


def test_a_plan_from_records_holds_every_file_once_within_a_sequence(tokenizer):
    """Planned from token counts alone, the examples hold every file exactly once, in
    dependency order (an imported file before its importer when they share an example),
    each at most a sequence, with the ids of its files' segments between bos, separators
    and eos."""
    files = [SourceFile("r", f"pkg/m{i}.py", "python",
                        (f"from pkg import m{i + 1}\n" if i < 5 else "") + PY * (i % 3 + 1))
             for i in range(8)] + [SourceFile("r", "pkg/__init__.py", "python", "")]
    dtype = id_dtype(tokenizer.vocab_size)
    segs, metas, bodies = {}, [], {}
    for f in files:
        facts = file_facts(f, seed=1, fim_rate=0.5, split=MIXED)
        segs[f.path] = file_segments(f, tokenizer, seed=1, fim_rate=0.5, seq_len=512,
                                     split=MIXED, spans=facts.span_list())
        meta, bodies[f.path] = compact(f, facts, segs[f.path], dtype)
        metas.append(meta)
    planned, drops = plan_repository("r", metas, seed=1, seq_len=512, partition="greedy")
    assert not drops and len(planned) > 1
    members = [m for p in planned for m in p.members]
    assert sorted(members) == sorted((f.path, k) for f in files
                                     for k in range(len(segs[f.path])))
    sep = tokenizer.control_ids["<|file_separator|>"]
    for p in planned:
        example, ids = build_example("r", p.index, [bodies[path].part(k)
                                                     for path, k in p.members], tokenizer,
                                     seq_len=512, split="train")
        assert example.id == f"r:{p.index:05d}" and len(ids) <= 512
        want = [tokenizer.bos_id]
        for n, (path, k) in enumerate(p.members):
            want += ([sep] if n else []) + list(segs[path][k][2])
        assert ids.tolist() == want + [tokenizer.eos_id]
        paths = [path for path, _ in p.members]
        for i in range(5):  # m{i} imports m{i+1}: the imported file comes first
            a, b = f"pkg/m{i}.py", f"pkg/m{i + 1}.py"
            if a in paths and b in paths:
                assert paths.index(b) < paths.index(a)


def test_a_plan_made_file_by_file_still_numbers_examples_once(tokenizer, monkeypatch):
    """When planning the repository as a whole fails, each file is planned alone; the
    examples are numbered on across files, so their ids (and the shard's sort by id) stay
    unique, and each routes its own parts."""
    from fimpack.packing import perfile

    real = perfile.plan_examples

    def whole_fails(repo, sizes, **kw):
        if len(sizes) > 1:
            raise ValueError("made to fail for the whole repository")
        return real(repo, sizes, **kw)

    monkeypatch.setattr(perfile, "plan_examples", whole_fails)
    files = [SourceFile("r", f"m{i}.py", "python", PY * (i + 1)) for i in range(4)]
    dtype = id_dtype(tokenizer.vocab_size)
    metas = []
    for f in files:
        facts = file_facts(f, seed=1, fim_rate=0.5, split=MIXED)
        segs = file_segments(f, tokenizer, seed=1, fim_rate=0.5, seq_len=128, split=MIXED,
                             spans=facts.span_list())
        metas.append(compact(f, facts, segs, dtype)[0])
    planned, drops = plan_repository("r", metas, seed=1, seq_len=128, partition="greedy")
    assert not drops and len(planned) > len(files)  # the longer files take several examples
    assert [p.index for p in planned] == list(range(len(planned)))
    where = perfile.routes("r", planned)
    assert sorted(i for places in where.values() for _, i, _ in places) == \
        sorted(p.index for p in planned for _ in p.members)


POLYGLOT = {  # every kind of build file RepoIndex reads, each one needed for an edge below
    "go/go.mod": "module example.com/m\n\ngo 1.22\n",
    "go/main.go": 'package main\nimport "example.com/m/util"\n',
    "go/util/a.go": "package util\n",
    "rust/Cargo.toml": '[package]\nname = "demo"\nversion = "0.1.0"\n',
    "rust/src/lib.rs": "pub mod net;\n",
    "rust/src/net.rs": "pub fn f() {}\n",
    "rust/tests/it.rs": "use demo::net::f;\n",
    "js/packages/shapes/package.json": '{"name": "@w/shapes", "main": "index.js"}\n',
    "js/packages/shapes/index.js": "export const square = 1;\n",
    "js/app.js": 'import { square } from "@w/shapes";\n',
    "Makefile": "CFLAGS = -Ic/include\n",
    "c/include/api.h": "int api(void);\n",
    "c/main.c": '#include "api.h"\nint main(void) { return api(); }\n',
    "py/shapes.py": "def area_of_square(side):\n    return side * side\n",
    "py/test_shapes.py": "from shapes import area_of_square\n\n"
                         "def test_area_of_square():\n    assert area_of_square(2) == 4\n",
}


def test_the_plan_orders_a_repository_from_records_as_from_its_files():
    """The repository's plan sees no content but its build files' (repo_index.BUILD_FILES):
    its order, edges and test links must be those of the full files, or a build file whose
    content it lacks (a go.mod, Cargo.toml, package.json, Makefile) loses its edges."""
    from fimpack.languages import detect_language
    from fimpack.packing.graph import order_repository
    from fimpack.packing.perfile import order_from_records

    files = [SourceFile("poly", path, detect_language(path) or "text", text)
             for path, text in sorted(POLYGLOT.items())]
    whole = order_repository(files)
    facts = {f.path: file_facts(f, seed=0, fim_rate=0.0, split=UNIFORM) for f in files}
    metas = [compact(f, facts[f.path], [], "uint16")[0] for f in files]
    assert sum(bool(m.index_content) for m in metas) == 4  # the build files only
    plan = order_from_records("poly", metas, {p: pickle.loads(x.graph) for p, x in facts.items()})
    for needs in [("go/main.go", "go/util/a.go"), ("rust/tests/it.rs", "rust/src/net.rs"),
                  ("js/app.js", "js/packages/shapes/index.js"), ("c/main.c", "c/include/api.h")]:
        assert needs in whole.edges, needs
    assert ("py/test_shapes.py", "py/shapes.py") in whole.test_links
    assert (plan.order, plan.edges, plan.test_links) == (whole.order, whole.edges,
                                                         whole.test_links)


def test_needs_spans_says_when_formatting_would_parse(tokenizer, monkeypatch):
    """The build parses a file for its FIM split candidates before the tokenizer exists,
    only when ``needs_spans`` says the first part takes a syntax split: it must say so
    exactly when formatting without them would parse (else formatting parses a second time,
    or the build parses for nothing)."""
    import fimpack.packing.syntax as syntax
    from fimpack.packing.perfile import needs_spans

    parsed = []
    real = syntax.candidate_spans
    monkeypatch.setattr(syntax, "candidate_spans",
                        lambda content, language: parsed.append(1) or real(content, language))
    seen = set()
    for k in range(120):
        split, fim_rate = (MIXED, SYNTAX, UNIFORM)[k % 3], (0.0, 0.5, 0.9, 1.0)[k % 4]
        f = SourceFile("r", f"m{k}.py", "python", PY)
        parsed.clear()
        file_segments(f, tokenizer, seed=k, fim_rate=fim_rate, seq_len=512, split=split)
        want = needs_spans(f, seed=k, fim_rate=fim_rate, split=split)
        assert bool(parsed) == want, (k, split, fim_rate)
        seen.add(want)
    assert seen == {True, False}
