"""The files of one repository, indexed for import resolution: paths and folders, suffix
indexes, Python package roots, Go modules, Cargo crates, JavaScript workspace packages and the
include folders build files declare. Shared by ``resolve.py`` (the entry point and Python's
rules) and ``resolve_langs.py`` (the other languages' rules)."""
from __future__ import annotations

import json
import posixpath
import re
from dataclasses import dataclass
from typing import Iterable

from fimpack.records import SourceFile

PY_EXTS = (".py", ".pyi")
JS_EXTS = (".js", ".jsx", ".mjs", ".cjs", ".ts", ".tsx", ".mts", ".cts", ".d.ts")
TS_EXTS = (".ts", ".tsx", ".mts", ".cts", ".d.ts", ".js", ".jsx", ".mjs", ".cjs")
JS_RUNTIME = (".js", ".jsx", ".mjs", ".cjs")
C_INCLUDE_DIRS = {"include", "includes", "inc", "src", "source", "lib"}
PY_ROOT_DIRS = {"src", "lib", "python"}
JS_ALIAS_PREFIXES = ("@/", "~/", "#/", "~", "#")
_GO_MODULE = re.compile(r"^\s*module\s+\"?([^\s\"]+)", re.MULTILINE)
_CARGO_NAME = re.compile(r"^\[package\][^\[]*?^\s*name\s*=\s*[\"']([^\"']+)",
                         re.MULTILINE | re.DOTALL)
MAKEFILES = ("CMakeLists.txt", "Makefile", "makefile", "GNUmakefile")
# The only files whose content RepoIndex reads (module paths, crates, include folders,
# workspace packages); every other file it sees by path alone, so packing's plan carries no
# other content (packing/perfile.py).
BUILD_FILES = frozenset({"go.mod", "Cargo.toml", "package.json", *MAKEFILES})
_NAMESPACE = "<namespace>"  # a Python namespace package: in the repository, but no file


@dataclass(frozen=True, slots=True)
class Hit:
    path: str                  # the imported file
    names: tuple[str, ...]     # names taken from it ("*" for a wildcard; () for the whole file)
    share: float = 1.0         # 1/n when one import fans out to the n files of a package


def _dirname(path: str) -> str:
    return posixpath.dirname(path)


def _join(*parts: str) -> str | None:
    """Join and normalise; None when the result escapes the repository root."""
    joined = posixpath.normpath("/".join(p for p in parts if p))
    if joined == ".":
        return ""
    if joined.startswith("../") or joined == ".." or joined.startswith("/"):
        return None
    return joined


def _common_prefix(a: str, b: str) -> int:
    """Number of leading folder components shared by two paths' folders."""
    n = 0
    for x, y in zip(_dirname(a).split("/"), _dirname(b).split("/")):
        if x != y or not x:
            break
        n += 1
    return n


def closest(candidates: Iterable[str], importer: str) -> str:
    return min(candidates, key=lambda c: (-_common_prefix(c, importer), len(c), c))


_CMAKE_INCLUDES = re.compile(r"\b(target_include_directories|include_directories)\s*\(([^)]*)\)",
                             re.IGNORECASE)
_MAKE_INCLUDES = re.compile(r"(?<![\w-])-I\s*([^\s\\]+)")
_CMAKE_KEYWORDS = {"SYSTEM", "BEFORE", "AFTER", "PUBLIC", "PRIVATE", "INTERFACE"}
_ROOT_VARS = ("${PROJECT_SOURCE_DIR}/", "${CMAKE_SOURCE_DIR}/", "$(top_srcdir)/")
_HERE_VARS = ("${CMAKE_CURRENT_SOURCE_DIR}/", "$(srcdir)/", "$(CURDIR)/")


def build_include_dirs(path: str, content: str) -> list[str]:
    """The include folders a CMakeLists.txt (``include_directories``,
    ``target_include_directories``) or a Makefile (``-I``) at PATH declares, as repository
    paths; generator expressions and other variables are left out."""
    here, found = _dirname(path), []
    if posixpath.basename(path) == "CMakeLists.txt":
        for call, args in _CMAKE_INCLUDES.findall(content):
            words = [w.strip('"') for w in args.split()]
            words = words[1:] if call.lower().startswith("target_") else words
            found += [w for w in words if w.upper() not in _CMAKE_KEYWORDS]
    else:
        found = _MAKE_INCLUDES.findall(content)
    out = []
    for d in found:
        if d.startswith(_ROOT_VARS):
            d = _join(d.split("/", 1)[1])
        else:
            for var in _HERE_VARS:
                d = d[len(var):] if d.startswith(var) else d
            d = _join(here, d) if "$" not in d else None
        if d is not None and "$" not in d:
            out.append(d)
    return out


def _strip_ext(path: str) -> str:
    if path.endswith(".d.ts"):
        return path[:-5]
    stem, _ = posixpath.splitext(path)
    return stem


class RepoIndex:
    """The files of one repository, indexed for resolution (build once per repository)."""

    def __init__(self, files: Iterable[SourceFile]):
        files = list(files)
        self.paths: set[str] = {f.path for f in files}
        self.dir_files: dict[str, list[str]] = {}
        self.dirs: set[str] = {""}
        for p in sorted(self.paths):
            d = _dirname(p)
            self.dir_files.setdefault(d, []).append(p)
            while d and d not in self.dirs:
                self.dirs.add(d)
                d = _dirname(d)
        self._noext: dict[str, list[str]] | None = None
        self._full: dict[str, list[str]] | None = None
        self._dir_suffix: dict[str, list[str]] | None = None
        self._py_roots: list[str] | None = None
        self._include_dirs: list[str] | None = None
        self._rust_crates: dict[str, tuple[str, str | None]] = {}
        self._rust_cache: dict[str, tuple[str, str | None, list[str]]] = {}
        self._rust_modules: dict[tuple[str, tuple[str, ...]], str] = {}  # #[path] modules
        # A repository whose root is itself a Python package (its __init__.py at the root)
        # is imported by the repository's name: "email" for a copy of the stdlib's email/.
        repo = files[0].repo if files else ""
        self.root_package = re.sub(r"[-_.]v?\d.*$", "", repo).replace("-", "_") \
            if "__init__.py" in self.paths else ""
        # Go modules, Cargo workspace crates and JS workspace packages by name.
        self.go_modules: list[tuple[str, str]] = []   # (module path, folder), longest first
        self.cargo_dirs: set[str] = set()
        self.js_packages: dict[str, tuple[str, dict]] = {}
        self.build_include_dirs: list[str] = []  # C/C++: what the build files pass as -I
        for f in files:
            base = posixpath.basename(f.path)
            if base == "go.mod":
                m = _GO_MODULE.search(f.content)
                if m:
                    self.go_modules.append((m.group(1), _dirname(f.path)))
            elif base == "Cargo.toml":
                d = _dirname(f.path)
                self.cargo_dirs.add(d)
                m = _CARGO_NAME.search(f.content)
                if m:
                    src = _join(d, "src") or ""
                    root = next((r for r in (_join(src, "lib.rs"), _join(src, "main.rs"))
                                 if r in self.paths), None)
                    self._rust_crates[m.group(1).replace("-", "_")] = (src, root)
            elif base in MAKEFILES:
                self.build_include_dirs += [d for d in build_include_dirs(f.path, f.content)
                                            if d in self.dirs]
            elif base == "package.json" and "node_modules/" not in f.path:
                try:
                    meta = json.loads(f.content)
                except ValueError:
                    continue
                if isinstance(meta, dict) and isinstance(meta.get("name"), str):
                    self.js_packages.setdefault(meta["name"], (_dirname(f.path), meta))
        self.go_modules.sort(key=lambda m: (-len(m[0]), m[1]))

    # -- suffix indexes (built on first use) ------------------------------------------------
    def _build_suffixes(self) -> None:
        noext: dict[str, list[str]] = {}
        full: dict[str, list[str]] = {}
        for p in sorted(self.paths):
            parts = p.split("/")
            stem_parts = parts[:-1] + [posixpath.basename(_strip_ext(p))]
            for k in range(1, len(parts) + 1):
                full.setdefault("/".join(parts[-k:]), []).append(p)
                noext.setdefault("/".join(stem_parts[-k:]), []).append(p)
        self._noext, self._full = noext, full

    def suffix_noext(self, key: str, exts: tuple[str, ...]) -> list[str]:
        if self._noext is None:
            self._build_suffixes()
        return [p for p in self._noext.get(key, ()) if p.endswith(exts)]

    def suffix_full(self, key: str) -> list[str]:
        if self._full is None:
            self._build_suffixes()
        return self._full.get(key, [])

    def suffix_dirs(self, key: str) -> list[str]:
        if self._dir_suffix is None:
            idx: dict[str, list[str]] = {}
            for d in sorted(self.dirs):
                parts = d.split("/") if d else []
                for k in range(1, len(parts) + 1):
                    idx.setdefault("/".join(parts[-k:]), []).append(d)
            self._dir_suffix = idx
        return self._dir_suffix.get(key, [])

    # -- Python --------------------------------------------------------------------------------
    @property
    def py_roots(self) -> list[str]:
        if self._py_roots is None:
            pkgs = {_dirname(p) for p in self.paths
                    if posixpath.basename(p) in ("__init__.py", "__init__.pyi")}
            roots = {""}
            for d in pkgs:
                parent = _dirname(d) if d else None
                if parent is not None and parent not in pkgs:
                    roots.add(parent)
            roots |= {d for d in self.dirs if posixpath.basename(d) in PY_ROOT_DIRS
                      and d not in pkgs}
            self._py_roots = sorted(roots)
        return self._py_roots

    def is_py_package(self, d: str) -> bool:
        return any(_join(d, "__init__" + e) in self.paths for e in PY_EXTS)

    def py_module(self, base: str, segs: list[str]) -> str | None:
        """The file of module SEGS under folder BASE: package, then module, then namespace."""
        d = _join(base, *segs)
        if d is None:
            return None
        for e in PY_EXTS:
            init = _join(d, "__init__" + e)
            if init in self.paths:
                return init
        for e in PY_EXTS:
            if d + e in self.paths:
                return d + e
        if d and d in self.dirs:
            return _NAMESPACE + d
        return None

    def _py_absolute(self, segs: list[str], importer: str) -> tuple[str, int] | None:
        """(file, matched segments) of an absolute module name, longest match first."""
        here = _dirname(importer)
        roots = set(self.py_roots)
        script_dir = not self.is_py_package(here)
        if script_dir:
            roots.add(here)
        best: tuple | None = None
        if self.root_package and segs[0] == self.root_package:
            for k in range(len(segs) - 1, -1, -1):
                found = self.py_module("", segs[1:k + 1])
                if found is not None:
                    best = (-(k + 1), True, 0, found)
                    break
        for root in roots:
            if _join(root, segs[0]) not in self.dirs and not any(
                    _join(root, segs[0] + e) in self.paths for e in PY_EXTS):
                continue
            for k in range(len(segs), 0, -1):
                found = self.py_module(root, segs[:k])
                if found is not None:
                    # longest match; then the importer's own folder (sys.path[0] of a
                    # script); then the root closest to the importer; then by name
                    near = _common_prefix(_join(root, "x") or "x", importer)
                    key = (-k, not (script_dir and root == here), -near, found)
                    if best is None or key < best:
                        best = key
                    break
        if best is not None:
            return best[3], -best[0]
        # CodeGemma's fallback: suffix match, dotted names only (a bare name is stdlib-like).
        for k in range(len(segs), 1, -1):
            key = "/".join(segs[:k])
            cands = self.suffix_noext(key + "/__init__", PY_EXTS) or \
                self.suffix_noext(key, PY_EXTS)
            if cands:
                return closest(cands, importer), k
        return None
