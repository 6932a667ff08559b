"""Unit-test lexical links: which test file exercises which implementation file.

CodeGemma packs unit tests next to their implementations (``TestFoo.java`` beside
``Foo.java``). A test file is recognised by its language's conventions (``is_test``); its
implementation is found, in this order:

1. by name: the test's subject (``test_foo.py``, ``foo_test.py``, ``FooTest.java``,
   ``TestFoo.java``, ``foo_test.go``, ``foo.spec.ts``, ``foo.test.js``, ``tests/foo.rs``,
   ``foo_unittest.cc`` -> ``foo``) against implementation stems of the same language family,
   compared case-, ``_``- and ``-``-insensitively with leading underscores dropped
   (``test_funcs.py`` -> ``_funcs.py``). Go tests only match in their own folder. Among
   several, the one the test imports, then the one whose folders best mirror the test's
   (``tests/models/test_user.py`` -> ``app/models/user.py``), then the shortest path;
2. by imports: among the implementation files the test imports (resolved edges), the most
   lexically similar;
3. by lexical similarity of identifiers for the rest: the cosine of idf-weighted identifier
   sets (identifiers of >= 3 characters), over files of the same family, if it reaches
   ``MIN_SIMILARITY``.

Each test gets at most one implementation: the one it is packed after.
"""
from __future__ import annotations

import math
import posixpath
import re
from collections import defaultdict

from fimpack.records import SourceFile

TEST_DIRS = {"test", "tests", "__tests__", "testing", "spec", "specs", "unittest", "unittests",
             "unit_tests", "test_suite", "testsuite"}
FAMILY = {"python": "python", "java": "jvm", "kotlin": "jvm", "scala": "jvm",
          "javascript": "js", "typescript": "js", "tsx": "js", "go": "go", "rust": "rust",
          "c": "c", "cpp": "c", "csharp": "csharp", "ruby": "ruby", "php": "php"}
# Test infrastructure: recognised as test files but tests nothing in particular.
SUPPORT = {"__init__", "conftest", "setup", "index", "mod", "main", "lib", "helpers", "utils",
           "fixtures", "common", "support", "testutils", "testutil"}
FACADES = {"__init__", "index", "lib", "mod", "main"}
MIN_SIMILARITY = 0.15
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,}")
_JS_TEST = re.compile(r"\.(test|spec|tests|specs)$")


def _stem(path: str) -> str:
    name = posixpath.basename(path)
    if name.endswith(".d.ts"):
        return name[:-5]
    return posixpath.splitext(name)[0]


def normalize(name: str) -> str:
    return name.lstrip("_").replace("_", "").replace("-", "").replace(".", "").lower()


def _in_test_dir(path: str) -> bool:
    parts = path.split("/")[:-1]
    return any(p.lower() in TEST_DIRS for p in parts) or "src/test/" in path


def is_test(path: str, language: str) -> bool:
    """Whether PATH is a test file by the conventions of LANGUAGE."""
    stem = _stem(path)
    family = FAMILY.get(language)
    low = stem.lower()
    if family == "go":
        return stem.endswith("_test")
    if family == "python":
        return low.startswith("test_") or low.endswith("_test") or low in ("tests", "test",
                                                                           "conftest") \
            or _in_test_dir(path)
    if family == "jvm":
        return bool(re.search(r"(Tests?|IT|TestCase|Spec)$", stem)
                    or re.match(r"Test[A-Z_]", stem)) or _in_test_dir(path)
    if family == "js":
        return bool(_JS_TEST.search(stem)) or _in_test_dir(path)
    if family == "rust":
        return low.endswith("_test") or low.endswith("_tests") or low == "tests" \
            or _in_test_dir(path)
    if family == "c":
        return bool(re.match(r"(?i)test_", stem) or re.search(r"(?i)_(unit)?tests?$", stem)
                    or re.search(r"Tests?$", stem)) or _in_test_dir(path)
    if family is None:
        return False
    return low.startswith("test_") or low.endswith("_test") or _in_test_dir(path)


def subject_of(path: str, language: str) -> str | None:
    """The normalised name of what a test file tests (None for test infrastructure)."""
    stem = _stem(path)
    family = FAMILY.get(language)
    subject = stem
    if family == "js":
        subject = _JS_TEST.sub("", subject)
    if family == "jvm":
        subject = re.sub(r"(Tests?|IT|TestCase|Spec)$", "", subject)
        subject = re.sub(r"^Test(?=[A-Z_])", "", subject)
    subject = re.sub(r"(?i)^tests?_", "", subject)
    subject = re.sub(r"(?i)_(unit)?tests?$", "", subject)
    if family == "c":
        subject = re.sub(r"Tests?$", "", subject)
    name = normalize(subject)
    if not name or name in SUPPORT or name in ("test", "tests"):
        return None
    return name


def _filtered_dirs(path: str) -> list[str]:
    return [p for p in path.split("/")[:-1]
            if p.lower() not in TEST_DIRS and p not in ("src", "main", "java", "lib", "app")]


def _mirror_score(test: str, impl: str) -> int:
    """How well IMPL's folders mirror TEST's (common trailing then leading folders)."""
    a, b = _filtered_dirs(test), _filtered_dirs(impl)
    suffix = 0
    while suffix < min(len(a), len(b)) and a[-1 - suffix] == b[-1 - suffix]:
        suffix += 1
    prefix = 0
    for x, y in zip(test.split("/")[:-1], impl.split("/")[:-1]):
        if x != y:
            break
        prefix += 1
    return 2 * suffix + prefix


def identifiers(content: str) -> frozenset[str]:
    """The identifiers (of >= 3 characters) of CONTENT that lexical similarity compares: a
    file's test-link feature, computed once per file (the build's per-file stage) or here."""
    return frozenset(_IDENT.findall(content))


class _Lexicon:
    """idf-weighted identifier sets of one language family's implementation files (IDENTS:
    {path: identifiers}, each file's, when the caller has them)."""

    def __init__(self, impls: list[SourceFile], idents: dict | None = None):
        self.tokens = {f.path: set(idents[f.path]) if idents is not None
                       else set(_IDENT.findall(f.content)) for f in impls}
        df: dict[str, int] = defaultdict(int)
        for toks in self.tokens.values():
            for t in toks:
                df[t] += 1
        n = max(1, len(impls))
        self.idf = {t: math.log((1 + n) / (1 + c)) + 1e-3 for t, c in df.items()}
        cap = max(20, n // 10)  # tokens in more files than this only add noise and time
        self.postings: dict[str, list[str]] = defaultdict(list)
        for path, toks in self.tokens.items():
            for t in toks:
                if df[t] <= cap:
                    self.postings[t].append(path)
        self.norm = {p: math.sqrt(sum(self.idf[t] ** 2 for t in toks)) or 1.0
                     for p, toks in self.tokens.items()}

    def scores(self, content: str | set, restrict: set[str] | None = None
               ) -> dict[str, float]:
        toks = set(_IDENT.findall(content)) if isinstance(content, str) else content
        weights = {t: self.idf[t] for t in toks if t in self.idf}
        norm = math.sqrt(sum(w * w for w in weights.values())) or 1.0
        acc: dict[str, float] = defaultdict(float)
        for t, w in weights.items():
            if restrict is not None:
                for p in restrict:
                    if t in self.tokens.get(p, ()):
                        acc[p] += w * w
            else:
                for p in self.postings.get(t, ()):
                    acc[p] += w * w
        return {p: s / (norm * self.norm[p]) for p, s in acc.items()}


def link_tests(files: list[SourceFile], deps: dict[str, set[str]] | None = None,
               use_names: bool = True, idents: dict | None = None) -> list[tuple[str, str]]:
    """(test, implementation) pairs, sorted; DEPS maps a path to the files it imports.
    ``use_names=False`` skips the name rule (the benchmark measures the fallbacks with it).
    IDENTS: {path: ``identifiers(content)``} of every file of a FAMILY language, when the
    caller computed them per file (the build does; then no file's content is read here)."""
    deps = deps or {}
    tests = [f for f in files if is_test(f.path, f.language)]
    test_paths = {f.path for f in tests}
    impls = [f for f in files if f.path not in test_paths and f.language in FAMILY]
    by_family: dict[str, list[SourceFile]] = defaultdict(list)
    by_name: dict[tuple[str, str], list[str]] = defaultdict(list)
    for f in impls:
        fam = FAMILY[f.language]
        by_family[fam].append(f)
        by_name[(fam, normalize(_stem(f.path)))].append(f.path)
    impl_paths = {f.path for f in impls}
    family_of = {f.path: FAMILY[f.language] for f in impls}
    lexicons: dict[str, _Lexicon] = {}
    links = []
    for t in sorted(tests, key=lambda f: f.path):
        fam = FAMILY.get(t.language)
        if fam is None:
            continue
        imported = {p for p in deps.get(t.path, ()) if p in impl_paths and family_of[p] == fam}
        name = subject_of(t.path, t.language)
        if name is None and posixpath.basename(t.path).startswith(("__init__", "conftest")):
            continue
        cands = by_name.get((fam, name), []) if (name and use_names) else []
        if fam == "go":
            cands = [c for c in cands if posixpath.dirname(c) == posixpath.dirname(t.path)]
        if cands:
            best = min(cands, key=lambda c: (c not in imported, -_mirror_score(t.path, c),
                                             len(c), c))
            links.append((t.path, best))
            continue
        if fam not in lexicons:
            lexicons[fam] = _Lexicon(by_family.get(fam, []), idents)
        lex = lexicons[fam]
        if fam == "go":  # a Go test tests its own package
            restrict = {p for p in impl_paths if family_of[p] == "go"
                        and posixpath.dirname(p) == posixpath.dirname(t.path)}
        else:  # package facades (__init__.py, index.js, lib.rs) say little about the subject
            restrict = {p for p in imported if _stem(p) not in FACADES} or None
        # the test's identifiers and its subject's name (no identifier spans the newline)
        text = (t.content + "\n" + (name or "") if idents is None
                else set(idents[t.path]) | set(_IDENT.findall(name or "")))
        scores = lex.scores(text, restrict)
        if name:  # the subject's name inside an implementation's path counts too
            for p in restrict or ():
                if name in normalize(_stem(p)) or normalize(_stem(p)) in name:
                    scores[p] = scores.get(p, 0.0) + 0.5
        if not scores:
            if restrict and len(restrict) == 1:
                links.append((t.path, next(iter(restrict))))
            continue
        best = min(scores, key=lambda p: (-scores[p], p))
        if restrict is not None or scores[best] >= MIN_SIMILARITY:
            links.append((t.path, best))
    return sorted(links)
