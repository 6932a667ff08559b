"""Resolve an ``Import`` to files of the same repository.

Language rules first, where the language says how a name maps to a file:

* Python: relative imports from the importer's package (``__init__.py`` is its own package);
  absolute imports from the package roots (the repository root, the parent of every top-level
  package -- so ``src/`` layouts work -- and ``src``/``lib``/``python`` folders), and from the
  importer's own folder when that folder is not a package (a script importing a sibling, as
  ``sys.path[0]`` does). A regular package ``pkg/__init__.py`` wins over a module ``pkg.py``,
  which wins over a namespace folder ``pkg/``, as in CPython's path finder. ``from M import n``
  goes to ``M.n`` when that is a module, else to ``M`` (grimp and CPython agree); a missing
  tail (``import a.b.attr``) falls back to the longest existing prefix.
* JavaScript/TypeScript: relative specifiers with the extension list and ``index`` files (and
  ``./x.js`` meaning ``./x.ts``, the ESM convention); workspace packages by their
  ``package.json`` name; aliases (``@/``, ``~/``) and ``baseUrl`` paths by suffix match.
* Java: the package path (``a.b.C`` -> ``.../a/b/C.java``, ``a.b.*`` -> every file of the
  folder, static members -> their class).
* Go: the module path of the nearest ``go.mod`` (every non-test file of the package folder,
  each edge getting 1/n of the import's weight); ``vendor/`` and suffix match otherwise.
* Rust: ``mod x;`` -> ``x.rs`` / ``x/mod.rs`` (and ``#[path]``), ``crate::``, ``self::``,
  ``super::`` and bare paths through the module tree (the longest prefix that is a module
  file; the rest are items), workspace crates by their ``Cargo.toml`` name.
* C/C++: quoted includes relative to the including file, then include folders (``include``,
  ``inc``, ``src``, the root), then suffix match; ``<...>`` includes only through include
  folders (and suffix match when they name a folder: ``<mylib/x.h>``).

CodeGemma's rule, suffix match to the longest matching path, is the fallback: the import as a
path must end a repository path at a component boundary; with several candidates the one
closest to the importer (longest common folder prefix) wins, then the shorter, then the
lexicographically first. Bare single names (``import json``, ``lodash``, ``<stdio.h>``) never
go through suffix match: that would turn the standard library into false edges.

Anything left is third-party or standard library: ``resolve`` returns no hit and the caller
counts it as unresolved.
"""
from __future__ import annotations

import posixpath

from fimpack.packing.parsing import Import
from fimpack.packing.repo_index import _NAMESPACE, Hit, RepoIndex, _dirname
from fimpack.packing.resolve_langs import RESOLVERS


def resolve(index: RepoIndex, imp: Import, importer: str, language: str) -> list[Hit]:
    """The repository files IMP (written in IMPORTER) refers to; [] when unresolved."""
    fn = {"python": _resolve_python, **RESOLVERS}.get(language)
    if fn is None:
        return []
    return fn(index, imp, importer)


def _py_hits(idx: RepoIndex, module: str, names: tuple[str, ...]) -> list[Hit]:
    """Hits for ``from MODULE import NAMES`` (or ``import MODULE`` when NAMES is empty)."""
    is_pkg = module.startswith(_NAMESPACE) or posixpath.basename(module).startswith("__init__.")
    pkg_dir = module[len(_NAMESPACE):] if module.startswith(_NAMESPACE) else _dirname(module)
    hits: list[Hit] = []
    attrs: list[str] = []
    for n in names:
        sub = idx.py_module(pkg_dir, [n]) if is_pkg and n != "*" else None
        if sub is not None and not sub.startswith(_NAMESPACE):
            hits.append(Hit(sub, (n,)))
        else:
            attrs.append(n)
    if (attrs or not names) and not module.startswith(_NAMESPACE):
        hits.insert(0, Hit(module, tuple(attrs)))
    return hits


def _resolve_python(idx: RepoIndex, imp: Import, importer: str) -> list[Hit]:
    segs = imp.target.split(".") if imp.target else []
    if imp.level:
        base = _dirname(importer)
        for _ in range(imp.level - 1):
            if not base:
                return []  # beyond the top level
            base = _dirname(base)
        module = idx.py_module(base, segs) if segs else (
            idx.py_module(base, []) if base else
            next((p for p in ("__init__.py", "__init__.pyi") if p in idx.paths), None)
            or _NAMESPACE)
        if module is None:
            # `from .missing.tail import x`: the longest existing prefix
            for k in range(len(segs) - 1, 0, -1):
                module = idx.py_module(base, segs[:k])
                if module is not None:
                    break
        if module is None:
            return []
        return _py_hits(idx, module, imp.names)
    if not segs:
        return []
    found = idx._py_absolute(segs, importer)
    if found is None:
        return []
    module, matched = found
    if matched < len(segs) and imp.kind == "from":
        return [Hit(module, imp.names)] if not module.startswith(_NAMESPACE) else []
    return _py_hits(idx, module, imp.names)
