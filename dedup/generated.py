"""Vendored, generated, minified and compiled files: each its own drop reason.

The rules are the ones The Stack applied, through the same library: go-enry's ``IsVendor``
(linguist's ``vendor.yml``: ``node_modules/``, ``vendor/``, ``third_party/``, ``dist/``,
``.github/``, ``jquery*.js``, ...) and ``IsGenerated`` (linguist's ``generated.rb``: lockfiles,
source maps, protobuf and Cython output, ``// Code generated ... DO NOT EDIT.``, minified
files, ...), from the ``enry-python`` bindings (go-enry's own shared library, no network).
On top of them:

* ``compiled``: a JavaScript file or declaration file that a source of the same repository
  compiles to: ``src/x.ts`` -> ``dist/x.js``, ``dist/cjs/x.js``, ``dist/types/x.d.ts``,
  ``lib/x.js``, or ``x.js``/``x.d.ts`` beside ``x.ts``; ``src/x.js`` -> ``dist/x.js`` (Babel);
  ``x.pyx`` -> ``x.c`` (Cython); and a build folder's copy of a source, any language
  (setuptools' ``build/lib/pkg/x.py``, Maven's ``target/classes/x.properties``, IntelliJ's
  ``out/production/mod/x``: exact dedup would keep the copy, whose path sorts first). The
  source is kept, the output dropped; the detail names the source. Checked first, so the
  detail is the most specific one.
* ``minified``: linguist's ``minified_files?`` rule, JavaScript or CSS with a mean line length
  over 110 characters, and ``*.min.js``/``*.min.css``.
* ``generated``: go-enry's ``IsGenerated``, lockfiles by name, the generator markers in a
  file's first lines (``Code generated``, ``@generated``, ``auto-generated``, ``DO NOT EDIT``),
  and the folders build tools generate into (Maven's and Gradle's ``generated-sources``,
  Istanbul's ``coverage/lcov-report``).
* ``vendored``: go-enry's ``IsVendor``, except its rule that every ``*.d.ts`` is vendored: a
  hand-written declaration file is a package's typed API (a compiled one is dropped as
  ``compiled``, one in a vendored folder as ``vendored``); and installed third-party packages, which ``vendor.yml`` does
  not name (a committed virtualenv, ``site-packages/``, ``.tox/``, ``.eggs/``).

``--keep-generated`` keeps all four kinds, ``--keep-generated vendored,minified`` those named.
"""
from __future__ import annotations

import posixpath
import re

import apache_beam as beam

from fimpack.config import GENERATED_KINDS as KINDS
from fimpack.dedup.quality import GENERATED as GENERATOR_MARKER
from fimpack.dedup.filters import FileFilter, Filter
from fimpack.records import Drop, SourceFile, StageOut

MINIFIED_EXTS = (".js", ".mjs", ".cjs", ".css")
MINIFIED_MEAN_LINE = 110                    # linguist's generated.rb, minified_files?
MARKER_LINES = 5
LOCKFILES = frozenset((
    "package-lock.json", "npm-shrinkwrap.json", "yarn.lock", "pnpm-lock.yaml", "bun.lockb",
    "Cargo.lock", "go.sum", "go.work.sum", "poetry.lock", "Pipfile.lock", "pdm.lock", "uv.lock",
    "Gemfile.lock", "composer.lock", "Podfile.lock", "Package.resolved", "mix.lock",
    "pubspec.lock", "flake.lock", "packages.lock.json", "gradle.lockfile", "deno.lock"))

# What compiles to what: output suffix -> source suffixes, longest suffixes first.
OUTPUTS = ((".d.mts", (".mts",)), (".d.cts", (".cts",)), (".d.ts", (".ts", ".tsx")),
           (".mjs", (".mts", ".ts")), (".cjs", (".cts", ".ts")),
           (".js", (".ts", ".tsx", ".coffee", ".js", ".jsx")), (".jsx", (".tsx",)),
           (".c", (".pyx",)), (".cpp", (".pyx",)))
SOURCE_SUFFIXES = (".d.ts", ".d.mts", ".d.cts", ".tsx", ".mts", ".cts", ".ts", ".coffee",
                   ".jsx", ".js", ".pyx")
# Folders compilers and bundlers write to (tsc outDir, Babel, Rollup, esbuild, the
# "exports" layouts of npm packages: dist/cjs, dist/esm5, dist/types, esm-browser, ...).
OUTPUT_DIR = re.compile(r"(?:dist|build|out|lib|es|esm\d*|es\d{1,4}|cjs|commonjs|umd|amd|"
                        r"system|types|typings|module|modules|bundles?|compiled|browser|node|"
                        r"_esm|_cjs|_types|esm-\w+|cjs-\w+|commonjs-\w+|umd-\w+)")
# A build folder's copy of the repository's own files (setuptools, Maven, IntelliJ).
BUILD_COPY = re.compile(r"^(?P<base>(?:.*/)?)(?:build/lib(?:\.[^/]+)?|target/(?:test-)?classes|"
                        r"out/production/[^/]+)/(?P<rest>.+)$")
INSTALLED = re.compile(r"(?:^|/)(?:site-packages|dist-packages|__pypackages__|\.tox|\.nox|"
                       r"\.eggs|\.?venv|virtualenv)/")
GENERATED_DIR = re.compile(r"(?:^|/)(?:(?:target|build)/generated(?:-sources|-test-sources)?|"
                           r"coverage/lcov-report)/")
SOURCE_DIR = frozenset(("src", "source", "sources", "ts", "typescript"))
BESIDE = (".ts", ".tsx", ".mts", ".cts", ".coffee", ".pyx")  # compiled in place, x.js by x.ts


def _split_suffix(path: str, suffixes) -> tuple[str, str] | None:
    for suffix in suffixes:
        if path.endswith(suffix) and len(path) > len(suffix):
            return path[: -len(suffix)], suffix
    return None


def _output_key(stem: str) -> str | None:
    """dist/cjs/internal/Observable -> internal/Observable; None unless an output folder
    was stripped."""
    parts = stem.split("/")
    i = 0
    while i < len(parts) - 1 and OUTPUT_DIR.fullmatch(parts[i]):
        i += 1
    return "/".join(parts[i:]) if i else None


def _source_key(stem: str) -> tuple[str, bool]:
    """src/internal/Observable -> (internal/Observable, True: a source folder was stripped)."""
    parts = stem.split("/")
    i = 0
    while i < len(parts) - 1 and parts[i] in SOURCE_DIR:
        i += 1
    return "/".join(parts[i:]), i > 0


def compiled_outputs(paths) -> dict[str, str]:
    """{output path: its source path} among the PATHS of one repository."""
    paths = sorted(set(paths))
    present = set(paths)
    sources: dict[tuple[str, str], str] = {}  # (key, suffix) -> first source path
    for p in paths:
        split = _split_suffix(p, SOURCE_SUFFIXES)
        if split and not split[1].startswith(".d.") and _output_key(split[0]) is None:
            key, in_source_dir = _source_key(split[0])
            if in_source_dir or split[1] not in (".js", ".jsx"):  # JS compiles JS from src/
                sources.setdefault((key, split[1]), p)
    out = {}
    for p in paths:
        copy = BUILD_COPY.match(p)
        if copy:
            base, rest = copy.group("base"), copy.group("rest")
            source = next((s for s in (base + rest, base + "src/" + rest,
                                       base + "src/main/java/" + rest,
                                       base + "src/main/resources/" + rest) if s in present),
                          None)
            if source is not None:
                out[p] = source
                continue
        split = _split_suffix(p, [o for o, _ in OUTPUTS])
        if split is None:
            continue
        stem, suffix = split
        candidates = dict(OUTPUTS)[suffix]
        beside = next((stem + s for s in candidates if s in BESIDE and stem + s in present), None)
        if beside is not None:                       # x.ts beside x.js / x.d.ts
            out[p] = beside
            continue
        key = _output_key(stem)
        if key is None:
            continue
        for s in candidates:
            source = sources.get((key, s))
            if source is not None and source != p:
                out[p] = source
                break
    return out


def minified(path: str, text: str) -> str | None:
    name = posixpath.basename(path)
    if not name.endswith(MINIFIED_EXTS):
        return None
    if ".min." in name:
        return "minified name"
    lines = text.count("\n") + 1
    mean = len(text) / lines
    return f"mean line length {mean:.0f}" if mean > MINIFIED_MEAN_LINE else None


class Rules:
    """go-enry loaded on first use (a Go shared library: loaded in the worker, not pickled)."""

    _enry = None

    @classmethod
    def enry(cls):
        if cls._enry is None:
            import enry

            cls._enry = enry
        return cls._enry

    def reason(self, path: str, text: str, kinds) -> tuple[str, str] | None:
        """(kind, detail) for one file on its own (compiled needs the repository), or None."""
        enry = self.enry()
        if "vendored" in kinds:
            if INSTALLED.search(path):
                return "vendored", "installed third-party packages"
            # vendor.yml's rules on a declaration file's path as if it were a module: its
            # folder decides, not linguist's every-*.d.ts rule
            probe = re.sub(r"\.d\.([mc]?ts)$", r".\1", path)
            if enry.is_vendor(probe):
                return "vendored", "go-enry IsVendor (linguist vendor.yml)"
        if "minified" in kinds:
            detail = minified(path, text)
            if detail:
                return "minified", detail
        if "generated" in kinds:
            name = posixpath.basename(path)
            if name in LOCKFILES:
                return "generated", "lockfile"
            if GENERATED_DIR.search(path):
                return "generated", "generated-sources folder"
            head = "\n".join(text.split("\n", MARKER_LINES)[:MARKER_LINES])
            marker = GENERATOR_MARKER.search(head)
            if marker:
                return "generated", f"marker: {marker.group(0)}"
            if enry.is_generated(path, text.encode("utf-8", "surrogatepass")):
                return "generated", "go-enry IsGenerated (linguist generated.rb)"
        return None


class _PerFile(FileFilter):
    """Vendored, minified and generated files, each by its own path and content."""

    stage = "generated"

    def __init__(self, kinds):
        self.kinds = tuple(kinds)
        self.rules = Rules()

    def check(self, f: SourceFile) -> tuple[str, str] | None:
        return self.rules.reason(f.path, f.content, self.kinds)


def _is_output(path: str) -> bool:
    return _split_suffix(path, [o for o, _ in OUTPUTS]) is not None or \
        BUILD_COPY.match(path) is not None


def _verdicts(repo: str, paths) -> list:
    return [((repo, out), source) for out, source in compiled_outputs(paths).items()]


def _apply(item):
    (repo, path), grouped = item
    sources = list(grouped["source"])
    for f in grouped["files"]:
        if sources:
            yield beam.pvalue.TaggedOutput("drops", Drop(repo, path, "compiled",
                                                         f"from {sources[0]}"))
        else:
            yield f


class GeneratedFiles(beam.PTransform):
    """SourceFiles -> ``StageOut``: SourceFiles kept, Drops. Vendored, minified and generated files by
    their own path and content; compiled outputs by the repository's paths (only the paths
    are grouped per repository, and only possible outputs are joined back)."""

    def __init__(self, kinds=KINDS):
        super().__init__()
        self.kinds = tuple(k for k in KINDS if k in kinds)

    def expand(self, files):
        drops = []
        if "compiled" in self.kinds:  # first: its detail (the source) is the most specific
            verdicts = (files
                        | "Paths" >> beam.Map(lambda f: (f.repo, f.path))
                        | "PathsByRepo" >> beam.GroupByKey()
                        | "Compiled" >> beam.FlatMapTuple(_verdicts))
            outputs = files | "Outputs" >> beam.Filter(lambda f: _is_output(f.path))
            others = files | "NotOutputs" >> beam.Filter(lambda f: not _is_output(f.path))
            joined = ({"files": outputs | "KeyByFile" >> beam.Map(lambda f: ((f.repo, f.path),
                                                                              f)),
                       "source": verdicts}
                      | "JoinCompiled" >> beam.CoGroupByKey()
                      | "ApplyCompiled" >> beam.FlatMap(_apply).with_outputs("drops",
                                                                               main="files"))
            files = (others, joined.files) | "AllKept" >> beam.Flatten()
            drops.append(joined.drops)
        if set(self.kinds) - {"compiled"}:
            out = files | "PerFile" >> Filter(_PerFile(self.kinds))
            files = out.items
            drops += out.drops
        return StageOut(files, tuple(drops))
