"""Import resolution for JavaScript/TypeScript, Java, Go, Rust and C/C++ (Python's and the
entry point ``resolve`` are in ``resolve.py``, where the rules are described; the repository
index all of them use is ``repo_index.py``)."""
from __future__ import annotations

import posixpath

from fimpack.packing.parsing import Import
from fimpack.packing.repo_index import (C_INCLUDE_DIRS, JS_ALIAS_PREFIXES, JS_EXTS, JS_RUNTIME,
                                        TS_EXTS, Hit, RepoIndex, _dirname, _join, closest)

# -- JavaScript / TypeScript -------------------------------------------------------------------

# TypeScript's rule for a runtime extension in a specifier (what the file compiles to): the
# source it compiles from wins ("./x.js" from a .ts file is x.ts, then x.tsx, then x.d.ts;
# ".mjs" is .mts/.d.mts, ".cjs" .cts/.d.cts), the runtime file only when there is none.
TS_SOURCES = {".js": (".ts", ".tsx", ".d.ts"), ".jsx": (".tsx", ".d.ts"),
              ".mjs": (".mts", ".d.mts"), ".cjs": (".cts", ".d.cts")}
TS_IMPORTERS = (".ts", ".tsx", ".mts", ".cts")  # .d.ts ends with .ts


def _js_file(idx: RepoIndex, base: str, exts: tuple[str, ...],
             typescript: bool = False) -> str | None:
    if typescript:
        stem, ext = posixpath.splitext(base)
        for e in TS_SOURCES.get(ext, ()):
            if stem + e in idx.paths:
                return stem + e
    if base in idx.paths:
        return base
    for e in exts:
        if base + e in idx.paths:
            return base + e
    stem, ext = posixpath.splitext(base)
    if ext in JS_RUNTIME:  # ESM TypeScript writes "./x.js" for ./x.ts
        for e in (".ts", ".tsx", ".mts", ".cts", ".d.ts"):
            if stem + e in idx.paths:
                return stem + e
    for e in exts:
        p = _join(base, "index" + e)
        if p in idx.paths:
            return p
    return None


def _js_package_entry(idx: RepoIndex, d: str, meta: dict, exts: tuple[str, ...]) -> str | None:
    for field in ("source", "module", "main", "types", "typings"):
        value = meta.get(field)
        if isinstance(value, str):
            p = _join(d, value)
            found = _js_file(idx, p, exts) if p is not None else None
            if found:
                return found
    return _js_file(idx, d, exts) or _js_file(idx, _join(d, "src") or "src", exts)


def _resolve_js(idx: RepoIndex, imp: Import, importer: str, exts: tuple[str, ...] = JS_EXTS
                ) -> list[Hit]:
    spec = imp.target.split("?", 1)[0].split("#", 1)[0] if not imp.target.startswith("#") \
        else imp.target
    if not spec:
        return []
    typescript = importer.endswith(TS_IMPORTERS)
    if spec.startswith(("./", "../")) or spec in (".", ".."):
        base = _join(_dirname(importer), spec)
        found = _js_file(idx, base, exts, typescript) if base is not None else None
        return [Hit(found, imp.names)] if found else []
    if spec.startswith("/"):
        base = _join(spec.lstrip("/"))
        found = _js_file(idx, base, exts, typescript) if base is not None else None
        return [Hit(found, imp.names)] if found else []
    # A workspace package by name ("@org/util", "@org/util/sub").
    for name, (d, meta) in idx.js_packages.items():
        if spec == name:
            found = _js_package_entry(idx, d, meta, exts)
            return [Hit(found, imp.names)] if found else []
        if spec.startswith(name + "/"):
            sub = spec[len(name) + 1:]
            for base in (_join(d, sub), _join(d, "src", sub)):
                found = _js_file(idx, base, exts) if base is not None else None
                if found:
                    return [Hit(found, imp.names)]
    # Aliases and baseUrl paths: suffix match on the trailing segments (two at least).
    for prefix in JS_ALIAS_PREFIXES:
        if spec.startswith(prefix):
            spec = spec[len(prefix):]
            break
    segs = [s for s in spec.split("/") if s and s != "."]
    if len(segs) < 2:
        return []  # a bare package name: third-party
    stem, ext = posixpath.splitext(segs[-1])
    keyed = segs[:-1] + [stem] if ext in JS_RUNTIME + (".ts", ".tsx", ".json") else segs
    for k in range(len(keyed), 1, -1):
        key = "/".join(keyed[-k:])
        cands = idx.suffix_noext(key, exts) or idx.suffix_noext(key + "/index", exts)
        if cands:
            return [Hit(closest(cands, importer), imp.names)]
    return []


def _resolve_ts(idx: RepoIndex, imp: Import, importer: str) -> list[Hit]:
    return _resolve_js(idx, imp, importer, TS_EXTS)


# -- Java ----------------------------------------------------------------------------------------

def _resolve_java(idx: RepoIndex, imp: Import, importer: str) -> list[Hit]:
    segs = imp.target.split(".")
    wildcard = "*" in imp.names
    if imp.kind == "static" and not wildcard:
        segs = segs[:-1]  # the member
    if wildcard and imp.kind != "static":
        dirs = idx.suffix_dirs("/".join(segs))
        dirs = [d for d in dirs if any(p.endswith(".java") for p in idx.dir_files.get(d, ()))]
        if dirs:
            d = closest([x + "/x" for x in dirs], importer)[:-2]
            files = [p for p in idx.dir_files[d] if p.endswith(".java")]
            return [Hit(p, (), 1.0 / len(files)) for p in files]
        return []
    for k in range(len(segs), 1 if len(segs) > 1 else 0, -1):
        cands = idx.suffix_noext("/".join(segs[:k]), (".java",))
        if cands:
            return [Hit(closest(cands, importer), imp.names)]
    return []


# -- Go ------------------------------------------------------------------------------------------

def _go_package(idx: RepoIndex, d: str | None) -> list[str]:
    if d is None:
        return []
    return [p for p in idx.dir_files.get(d, ()) if p.endswith(".go") and not p.endswith("_test.go")]


def _resolve_go(idx: RepoIndex, imp: Import, importer: str) -> list[Hit]:
    path = imp.target
    files: list[str] = []
    for module, d in idx.go_modules:
        if path == module or path.startswith(module + "/"):
            files = _go_package(idx, _join(d, path[len(module) + 1:]))
            break
    if not files:
        for _, d in idx.go_modules:
            files = _go_package(idx, _join(d, "vendor", path))
            if files:
                break
    segs = path.split("/")
    if not files and "." in segs[0]:  # not the standard library: suffix match on folders
        for k in range(len(segs), 1, -1):
            dirs = [d for d in idx.suffix_dirs("/".join(segs[-k:])) if _go_package(idx, d)]
            if dirs:
                files = _go_package(idx, closest([x + "/x" for x in dirs], importer)[:-2])
                break
    return [Hit(p, imp.names, 1.0 / len(files)) for p in files]


# -- Rust ----------------------------------------------------------------------------------------

def _rel(path: str, base: str) -> str:
    return path if not base else ("" if path == base else path[len(base) + 1:])


RUST_MULTI_ROOT = ("src/bin", "tests", "examples", "benches")  # each file there is a crate root


def _rust_crate(idx: RepoIndex, path: str) -> tuple[str, str | None, list[str]]:
    """(module-tree folder, crate root file, module path) of a Rust file."""
    cached = idx._rust_cache.get(path)
    if cached is not None:
        return cached
    d = _dirname(path)
    cargo = max((c for c in idx.cargo_dirs if c == "" or d == c or d.startswith(c + "/")),
                key=len, default=None)
    src: str | None = None
    multi = False
    if cargo is not None:
        rel = _rel(d, cargo)
        for top in RUST_MULTI_ROOT:
            if rel == top or rel.startswith(top + "/"):
                src, multi = _join(cargo, top), True
                sub = _rel(rel, top).split("/")[0]
                if sub and _join(src, sub, "main.rs") in idx.paths:
                    src, multi = _join(src, sub), False
                break
        else:
            if rel == "src" or rel.startswith("src/"):
                src = _join(cargo, "src")
    if src is None:
        probe = d
        while True:
            if any(_join(probe, r) in idx.paths for r in ("lib.rs", "main.rs")):
                src = probe
                break
            if not probe or probe == cargo:
                break
            probe = _dirname(probe)
    if src is None:
        src, multi = d, True  # a lone file: its own crate root
    root = next((r for r in (_join(src, "lib.rs"), _join(src, "main.rs")) if r in idx.paths), None)
    if path == root or (multi and d == src):
        root, modpath = path, []
    else:
        parts = _rel(path, src)[:-3].split("/")
        modpath = parts[:-1] if parts[-1] == "mod" else parts
    out = (src, root, modpath)
    idx._rust_cache[path] = out
    return out


def _rust_module_file(idx: RepoIndex, src: str, root: str | None, modpath: list[str]) -> str | None:
    if not modpath:
        return root
    declared = idx._rust_modules.get((src, tuple(modpath)))  # a #[path] declaration's file
    if declared is not None:
        return declared
    for cand in (_join(src, *modpath[:-1], modpath[-1] + ".rs"), _join(src, *modpath, "mod.rs")):
        if cand in idx.paths:
            return cand
    return None


def _rust_path_attribute(importer: str, root: str | None, imp: Import) -> str:
    """The file a ``#[path = "..."] mod m;`` names (the Rust Reference's rule): relative to
    the declaring file's folder; inside inline ``mod a { ... }`` blocks the blocks are folders
    too, under a folder named after the file when it is not a mod-rs file (lib.rs, main.rs,
    mod.rs)."""
    name = posixpath.basename(importer)
    inline = list(imp.scope)
    if inline and importer != root and name not in ("mod.rs", "lib.rs", "main.rs"):
        inline = [name[:-3]] + inline
    return posixpath.normpath(_join(_dirname(importer), *inline, imp.target))


def note_rust_modules(idx: RepoIndex, importer: str, imports) -> None:
    """Record the modules IMPORTER declares with ``#[path]``, so ``use`` paths through them
    find their files (the folder layout alone would not)."""
    for imp in imports:
        if imp.kind == "mod_path" and imp.names:
            src, root, modpath = _rust_crate(idx, importer)
            file = _rust_path_attribute(importer, root, imp)
            if file in idx.paths:
                idx._rust_modules[(src, tuple(modpath + list(imp.scope) + [imp.names[0]]))] = file


def _resolve_rust(idx: RepoIndex, imp: Import, importer: str) -> list[Hit]:
    src, root, modpath = _rust_crate(idx, importer)
    if imp.kind in ("mod", "mod_path"):
        name = posixpath.basename(importer)
        here = _dirname(importer)
        if imp.kind == "mod_path":
            cand = _rust_path_attribute(importer, root, imp)
            return [Hit(cand, ())] if cand in idx.paths else []
        child_dir = here if (importer == root or name == "mod.rs") else \
            _join(here, name[:-3])
        for cand in (_join(child_dir, *imp.scope, imp.target + ".rs"),
                     _join(child_dir, *imp.scope, imp.target, "mod.rs")):
            if cand in idx.paths:
                return [Hit(cand, ())]
        return []
    if imp.kind == "extern":
        crate = idx._rust_crates.get(imp.target)
        return [Hit(crate[1], ())] if crate and crate[1] else []
    segs = imp.target.split("::")
    here_mod = modpath + list(imp.scope)
    names = tuple(n for n in imp.names if n != "self")
    # (module-tree folder, crate root, base module path, rest of the path, fewest segments)
    bases: list[tuple[str, str | None, list[str], list[str], int]] = []
    if segs[0] == "crate":
        bases.append((src, root, [], segs[1:], 0))
    elif segs[0] == "self":
        bases.append((src, root, here_mod, segs[1:], 0))
    elif segs[0] == "super":
        n = 0
        while n < len(segs) and segs[n] == "super":
            n += 1
        if n > len(here_mod):
            return []
        bases.append((src, root, here_mod[:len(here_mod) - n], segs[n:], 0))
    else:
        bases.append((src, root, here_mod, segs, 1))
        if here_mod:
            bases.append((src, root, [], segs, 1))
        crate = idx._rust_crates.get(segs[0])
        if crate is not None:
            bases.append((crate[0], crate[1], [], segs[1:], 0))
    for csrc, croot, base, rest, min_k in bases:
        for k in range(len(rest), min_k - 1, -1):
            found = _rust_module_file(idx, csrc, croot, base + rest[:k])
            if found:
                return [Hit(found, names if k < len(rest) else ())]
    return []


# -- C / C++ -------------------------------------------------------------------------------------

def _include_dirs(idx: RepoIndex) -> list[str]:
    if idx._include_dirs is None:  # the build's own -I folders first, then the usual names
        usual = sorted(d for d in idx.dirs if posixpath.basename(d) in C_INCLUDE_DIRS)
        idx._include_dirs = list(dict.fromkeys(["", *idx.build_include_dirs, *usual]))
    return idx._include_dirs


def _resolve_c(idx: RepoIndex, imp: Import, importer: str) -> list[Hit]:
    spec = imp.target.strip()
    if not spec:
        return []
    if imp.kind == "include":
        cand = _join(_dirname(importer), spec)
        if cand in idx.paths:
            return [Hit(cand, ())]
    found = [c for c in (_join(d, spec) for d in _include_dirs(idx)) if c in idx.paths]
    if found:
        return [Hit(closest(found, importer), ())]
    segs = [s for s in spec.split("/") if s not in ("", ".", "..")]
    if imp.kind == "system_include" and len(segs) < 2:
        return []
    cands = idx.suffix_full("/".join(segs))
    return [Hit(closest(cands, importer), ())] if cands else []


RESOLVERS = {
    "javascript": _resolve_js, "typescript": _resolve_ts, "tsx": _resolve_ts,
    "java": _resolve_java, "go": _resolve_go, "rust": _resolve_rust, "c": _resolve_c,
    "cpp": _resolve_c,
}
