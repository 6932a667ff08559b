"""Benchmark the dependency-graph stage: Python edges vs grimp, throughput, test-link recall.

    .venv/bin/python benchmarks/bench_graph.py --data bench-data

Prints tables and writes ``<data>/results-graph.json``. Inputs: pure-Python sdists (``SDISTS``,
pinned) downloaded once with ``pip download --no-deps --no-binary :all:`` into
``<data>/graph-sdists`` and extracted there; each extracted sdist is one repository (package,
tests, docs, examples: everything ingest would keep).

1. **Edges vs grimp** (``pip install grimp``; skipped with a message without it). grimp builds
   module-level import graphs of the packages themselves; its modules are mapped to files
   (``pkg/__init__.py`` for a package). fimpack's file-level edges come from the whole
   repository and are restricted to files inside the same packages, so both sides count only
   intra-package imports. Definitions aligned:
   * both count imports anywhere in a file (inside functions, ``try``, ``if TYPE_CHECKING``);
   * grimp does not see ``importlib.import_module("x")``/``__import__``: fimpack's "aligned"
     numbers drop its ``dynamic`` imports (the "all" numbers keep them);
   * ``from pkg import name`` -> ``pkg.name`` if that is a module, else ``pkg`` (both);
   * ``import a.b.c`` -> ``a.b.c`` only (both);
   * self-imports are dropped on both sides;
   * grimp reads ``.py`` files only: edges from or to ``.pyi`` stubs are left out of the
     "aligned" numbers (fimpack resolves stub imports too; "all" keeps them).
   Precision and recall over the union of packages (micro), and per package, with the
   disagreements listed.
2. **Throughput**: parse + extract + resolve (``build_graph``: RepoIndex, tree-sitter parse,
   import query, resolution, edge importance) over every ``.py`` file of the repositories, in
   one process (= per core); parsers warmed first; best of ``--repeats``. Also the whole
   ``order_repository`` (graph + cycle breaking + linearisation + test links).
3. **Test-link recall** on repositories that follow the conventions: the truth is every test
   ``test_X.py``/``X_test.py`` for which exactly one non-test module of the package is named
   ``X`` (case-, ``_``-insensitive, leading ``_`` dropped). Reported for the full linker, and
   for its fallbacks alone (imports + lexical similarity, ``use_names=False``): how well the
   tests that do not follow a naming convention would be linked.
4. **Go and Rust**: three Debian source packages (go-cmp, cobra, anyhow; ``apt-get download``
   into ``<data>/graph-debian``, skipped without apt), edges of hand-checked sample files
   (``HAND_CHECKED``: read off the sources) and hand-checked test links.
5. **Scale**: ``order_repository`` on the synthetic 5,000-file repository of the tests, and
   the all-pairs reference (``linearise_apsp``) on its graph for comparison.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the synthetic repository generator

from fimpack.packing import graph as fgraph  # noqa: E402
from fimpack import graph_view  # noqa: E402
from fimpack.packing.graph import build_graph, extract_all, order_repository  # noqa: E402
from fimpack.packing.imports import parser_for  # noqa: E402
from fimpack.packing.repo_index import RepoIndex  # noqa: E402
from fimpack.packing.resolve import resolve  # noqa: E402
from fimpack.packing.testlinks import (_stem, is_test, link_tests,  # noqa: E402
                                       normalize, subject_of)
from fimpack.records import SourceFile  # noqa: E402

# name: (version, folder holding the packages inside the sdist, top-level packages)
SDISTS = {
    "requests": ("2.32.3", "src", ["requests"]),
    "rich": ("13.7.1", "", ["rich"]),
    "click": ("8.1.7", "src", ["click"]),
    "attrs": ("23.2.0", "src", ["attr", "attrs"]),
    "httpx": ("0.27.0", "", ["httpx"]),
    "pytest": ("8.2.2", "src", ["_pytest", "pytest"]),
}


def fetch(data: Path, download: bool) -> dict[str, Path]:
    """Extracted sdist folders by name (downloaded and extracted once)."""
    sd = data / "graph-sdists"
    ex = sd / "extracted"
    sd.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, (ver, _, _) in SDISTS.items():
        target = ex / f"{name}-{ver}"
        if not target.exists():
            archives = list(sd.glob(f"{name}-{ver}.tar.gz"))
            if not archives and download:
                subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                                "--no-binary", ":all:", "-d", str(sd), f"{name}=={ver}"],
                               check=True)
                archives = list(sd.glob(f"{name}-{ver}.tar.gz"))
            if not archives:
                print(f"  {name}=={ver}: no sdist (run without --no-download)")
                continue
            ex.mkdir(exist_ok=True)
            with tarfile.open(archives[0]) as tar:
                tar.extractall(ex, filter="data")
        out[name] = target
    return out


def read_repo(path: Path, name: str) -> list[SourceFile]:
    return graph_view.read_repo(str(path)) if path.exists() else []


# --------------------------------------------------------------------------------------------
# 1. Edges vs grimp.

def grimp_edges(repo_dir: Path, sub: str, packages: list[str]) -> set[tuple[str, str]] | None:
    try:
        import grimp
    except ImportError:
        return None
    base = repo_dir / sub if sub else repo_dir
    sys.path.insert(0, str(base))
    try:
        g = grimp.build_graph(*packages, cache_dir=None)
    finally:
        sys.path.remove(str(base))
        for m in list(sys.modules):  # let the next sdist's packages load from their own folder
            if m.split(".")[0] in packages:
                del sys.modules[m]

    def to_file(module: str) -> str:
        p = base.joinpath(*module.split("."))
        f = p / "__init__.py" if (p / "__init__.py").exists() else p.with_suffix(".py")
        return f.relative_to(repo_dir).as_posix()

    edges = set()
    for m in g.modules:
        for imported in g.find_modules_directly_imported_by(m):
            u, v = to_file(m), to_file(imported)
            if u != v:
                edges.add((u, v))
    return edges


def fimpack_edges(files: list[SourceFile], keep_dynamic: bool) -> set[tuple[str, str]]:
    index = RepoIndex(files)
    edges = set()
    for f in files:
        if f.language != "python":
            continue
        ex = extract_all([f])[f.path]
        for imp in ex.imports:
            if imp.kind == "dynamic" and not keep_dynamic:
                continue
            for hit in resolve(index, imp, f.path, f.language):
                if hit.path != f.path:
                    edges.add((f.path, hit.path))
    return edges


def pr(pred: set, truth: set) -> tuple[float, float, int, int, int]:
    tp = len(pred & truth)
    return (tp / len(pred) if pred else 1.0, tp / len(truth) if truth else 1.0,
            tp, len(pred), len(truth))


def bench_edges(repos: dict[str, Path]) -> dict:
    try:
        import grimp  # noqa: F401
    except ImportError:
        print("grimp is not installed: `.venv/bin/pip install grimp` to compare edges; skipped")
        return {"skipped": "grimp not installed"}
    rows = {}
    all_pred, all_pred_all, all_truth = set(), set(), set()
    print("\n== Python edges vs grimp (intra-package, file level) ==")
    print(f"{'package':10} {'grimp':>6} {'ours':>6} {'prec':>6} {'recall':>6}   "
          f"{'all':>6} {'prec':>6}")
    for name, path in repos.items():
        ver, sub, packages = SDISTS[name]
        truth = grimp_edges(path, sub, packages)
        files = read_repo(path, name)
        prefix = [(f"{sub}/" if sub else "") + p + "/" for p in packages]
        inside = lambda e: all(x.startswith(tuple(prefix)) for x in e)  # noqa: E731
        pred_all = {e for e in fimpack_edges(files, True) if inside(e)}
        pred = {e for e in fimpack_edges(files, False) if inside(e)
                and not (e[0].endswith(".pyi") or e[1].endswith(".pyi"))}
        p, r, tp, npred, ntruth = pr(pred, truth)
        pd, _, _, npd, _ = pr(pred_all, truth)
        print(f"{name:10} {ntruth:6} {npred:6} {p:6.3f} {r:6.3f}   {npd:6} {pd:6.3f}")
        for e in sorted(pred - truth)[:8]:
            print(f"     only fimpack: {e[0]} -> {e[1]}")
        for e in sorted(truth - pred)[:8]:
            print(f"     only grimp:   {e[0]} -> {e[1]}")
        rows[name] = {"version": ver, "grimp_edges": ntruth, "fimpack_edges": npred,
                      "precision": p, "recall": r, "fimpack_edges_all": npd,
                      "precision_all": pd,
                      "only_fimpack": sorted(map(list, pred - truth)),
                      "only_grimp": sorted(map(list, truth - pred))}
        all_pred |= {(name,) + e for e in pred}
        all_pred_all |= {(name,) + e for e in pred_all}
        all_truth |= {(name,) + e for e in truth}
    p, r, tp, npred, ntruth = pr(all_pred, all_truth)
    pd, rd, *_ = pr(all_pred_all, all_truth)
    print(f"{'all':10} {ntruth:6} {npred:6} {p:6.3f} {r:6.3f}   {len(all_pred_all):6} {pd:6.3f}")
    return {"packages": rows, "precision": p, "recall": r, "precision_all": pd,
            "recall_all": rd, "grimp_edges": ntruth, "fimpack_edges": npred}


# --------------------------------------------------------------------------------------------
# 2. Throughput.

def bench_throughput(repos: dict[str, Path], repeats: int) -> dict:
    corpora = [[f for f in read_repo(p, n) if f.language == "python"] for n, p in repos.items()]
    nbytes = sum(len(f.content.encode()) for c in corpora for f in c)
    nfiles = sum(len(c) for c in corpora)
    parser_for("python")
    best_graph = best_order = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for files in corpora:
            build_graph(files)
        best_graph = min(best_graph, time.perf_counter() - t0)
        t0 = time.perf_counter()
        for files in corpora:
            order_repository(files)
        best_order = min(best_order, time.perf_counter() - t0)
    mb = nbytes / 1e6
    print("\n== Throughput (one process, Python files of the sdists) ==")
    print(f"{nfiles} files, {mb:.2f} MB: parse+extract+resolve {mb / best_graph:.1f} MB/s "
          f"({best_graph:.2f} s); order_repository {mb / best_order:.1f} MB/s "
          f"({best_order:.2f} s)")
    return {"files": nfiles, "mb": mb, "graph_s": best_graph, "graph_mb_s": mb / best_graph,
            "order_s": best_order, "order_mb_s": mb / best_order}


# --------------------------------------------------------------------------------------------
# 3. Test-link recall.

def convention_truth(files: list[SourceFile]) -> set[tuple[str, str]]:
    impl_by_name: dict[str, list[str]] = {}
    for f in files:
        if f.language == "python" and not is_test(f.path, f.language):
            impl_by_name.setdefault(normalize(_stem(f.path)), []).append(f.path)
    truth = set()
    for f in files:
        base = os.path.basename(f.path)
        if f.language == "python" and (base.startswith("test_") or base.endswith("_test.py")):
            name = subject_of(f.path, f.language)
            if name and len(impl_by_name.get(name, [])) == 1:
                truth.add((f.path, impl_by_name[name][0]))
    return truth


def bench_links(repos: dict[str, Path]) -> dict:
    print("\n== Test-link recall (truth: test_X.py <-> the one module X) ==")
    print(f"{'package':10} {'truth':>6} {'full':>6} {'fallback':>9} {'fb prec':>8}")
    totals = [0, 0, 0, 0]
    rows = {}
    for name, path in repos.items():
        files = read_repo(path, name)
        truth = convention_truth(files)
        g, _, _ = build_graph(files)
        deps = {u: set(g.successors(u)) for u in g.nodes}
        full = set(link_tests(files, deps))
        fallback = set(link_tests(files, deps, use_names=False))
        fb_on_truth = {lk for lk in fallback if lk[0] in {t for t, _ in truth}}
        r_full = len(full & truth) / max(1, len(truth))
        r_fb = len(fallback & truth) / max(1, len(truth))
        p_fb = len(fb_on_truth & truth) / max(1, len(fb_on_truth))
        print(f"{name:10} {len(truth):6} {r_full:6.3f} {r_fb:9.3f} {p_fb:8.3f}")
        totals[0] += len(truth)
        totals[1] += len(full & truth)
        totals[2] += len(fallback & truth)
        totals[3] += len(fb_on_truth)
        rows[name] = {"truth": len(truth), "recall": r_full, "fallback_recall": r_fb,
                      "fallback_precision": p_fb,
                      "fallback_misses": sorted(map(list, truth - fallback))[:20]}
    n = max(1, totals[0])
    print(f"{'all':10} {totals[0]:6} {totals[1] / n:6.3f} {totals[2] / n:9.3f} "
          f"{totals[2] / max(1, totals[3]):8.3f}")
    return {"packages": rows, "recall": totals[1] / n, "fallback_recall": totals[2] / n,
            "fallback_precision": totals[2] / max(1, totals[3])}


# --------------------------------------------------------------------------------------------
# 4. Go and Rust: hand-checked samples.

# Debian package -> (version, repository folder inside the package)
DEBIAN = {
    "golang-github-google-go-cmp-dev": ("0.5.9-1", "usr/share/gocode/src/github.com/google/go-cmp"),
    "golang-github-spf13-cobra-dev": ("1.6.1-1", "usr/share/gocode/src/github.com/spf13/cobra"),
    "librust-anyhow-dev": ("1.0.69-1", "usr/share/cargo/registry/anyhow-1.0.69"),
}
# Read off the sources by hand. Go: the package folders a file imports (an import of a
# package is an edge to each of its non-test files); Rust: the files.
HAND_CHECKED = {
    "golang-github-google-go-cmp-dev": {
        "cmp/compare.go": {"cmp/internal/diff", "cmp/internal/function", "cmp/internal/value"},
        "cmp/report_reflect.go": {"cmp/internal/value"},
        "cmp/options.go": {"cmp/internal/function"},
        "cmp/cmpopts/equate.go": {"cmp"},
        "cmp/cmpopts/util_test.go": {"cmp"},
        "cmp/internal/value/name.go": set(),
        "cmp/compare_test.go": {"cmp", "cmp/cmpopts", "cmp/internal/flags",
                                "cmp/internal/testprotos", "cmp/internal/teststructs",
                                "cmp/internal/teststructs/foo1", "cmp/internal/teststructs/foo2"},
    },
    "golang-github-spf13-cobra-dev": {
        "doc/md_docs.go": {""}, "doc/man_docs.go": {""}, "doc/util.go": {""},
    },
    "librust-anyhow-dev": {
        "src/lib.rs": {f"src/{m}.rs" for m in ("backtrace", "chain", "context", "ensure", "error",
                                                "fmt", "kind", "macros", "ptr", "wrapper")},
        "src/context.rs": {"src/error.rs", "src/lib.rs"},   # crate::error::X, crate::{Context..}
        "src/chain.rs": {"src/lib.rs"},                      # self::ChainState::* is itself
        "src/error.rs": {"src/backtrace.rs", "src/chain.rs", "src/ptr.rs", "src/lib.rs",
                         "src/wrapper.rs"},                  # wrapper: inside functions
        "src/fmt.rs": {"src/chain.rs", "src/error.rs", "src/ptr.rs", "src/backtrace.rs"},
        "tests/test_context.rs": {"tests/drop/mod.rs", "src/lib.rs"},  # crate::drop, anyhow::
        "tests/test_downcast.rs": {"tests/common/mod.rs", "tests/drop/mod.rs", "src/lib.rs"},
    },
}
HAND_LINKS = {
    "golang-github-spf13-cobra-dev": {("doc/md_docs_test.go", "doc/md_docs.go"),
                                      ("doc/man_docs_test.go", "doc/man_docs.go")},
    "librust-anyhow-dev": {("tests/test_context.rs", "src/context.rs"),
                           ("tests/test_chain.rs", "src/chain.rs"),
                           ("tests/test_fmt.rs", "src/fmt.rs")},
}


def fetch_debian(data: Path, download: bool) -> dict[str, Path]:
    root = data / "graph-debian"
    root.mkdir(parents=True, exist_ok=True)
    out = {}
    for pkg, (ver, inner) in DEBIAN.items():
        target = root / "x" / pkg
        if not target.exists():
            debs = list(root.glob(f"{pkg}_*.deb"))
            if not debs and download:
                subprocess.run(["apt-get", "download", f"{pkg}={ver}"], cwd=root,
                               capture_output=True)
                debs = list(root.glob(f"{pkg}_*.deb"))
            if not debs:
                print(f"  {pkg}: no .deb (apt-get download {pkg}={ver} failed); skipped")
                continue
            target.mkdir(parents=True)
            subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(target)], check=True)
        out[pkg] = target / inner
    return out


def bench_other_languages(data: Path, download: bool) -> dict:
    repos = fetch_debian(data, download)
    print("\n== Go and Rust (Debian source packages), hand-checked samples ==")
    tp = npred = ntruth = 0
    rows = {}
    for pkg, path in repos.items():
        files = read_repo(path, pkg)
        r = order_repository(files)
        go = pkg.startswith("golang")
        got: dict[str, set[str]] = {}
        for u, v in r.edges:
            got.setdefault(u, set()).add(os.path.dirname(v) if go else v)
        misses = []
        for f, want in HAND_CHECKED[pkg].items():
            have = got.get(f, set())
            tp += len(have & want)
            npred += len(have)
            ntruth += len(want)
            if have != want:
                misses.append({"file": f, "extra": sorted(have - want),
                               "missing": sorted(want - have)})
        links = set(r.test_links)
        want_links = HAND_LINKS.get(pkg, set())
        rows[pkg] = {"files": len(files), "edges": len(r.edges), "unresolved": r.unresolved,
                     "parse_errors": len(r.parse_errors), "mismatches": misses,
                     "links_found": len(links & want_links), "links_checked": len(want_links)}
        print(f"{pkg:34} {len(files):4} files {len(r.edges):4} edges, {r.unresolved:4} unresolved, "
              f"{len(r.parse_errors)} parse errors; samples {'ok' if not misses else misses}; "
              f"test links {len(links & want_links)}/{len(want_links)}")
    p = tp / max(1, npred)
    rec = tp / max(1, ntruth)
    print(f"hand-checked edges: precision {p:.3f}, recall {rec:.3f} ({ntruth} edges)")
    return {"repos": rows, "precision": p, "recall": rec, "edges_checked": ntruth}


# --------------------------------------------------------------------------------------------
# 5. Scale.

def bench_scale(apsp: bool) -> dict:
    from test_graph import synthetic_repo

    import networkx as nx
    files = synthetic_repo(5000)
    t0 = time.perf_counter()
    r = order_repository(files)
    total = time.perf_counter() - t0
    g = nx.DiGraph(list(set(r.edges) - set(r.removed_edges)))
    t0 = time.perf_counter()
    fast = fgraph.linearise_codegemma(g)
    t_fast = time.perf_counter() - t0
    out = {"files": len(files), "edges": len(r.edges), "removed": len(r.removed_edges),
           "order_repository_s": total, "linearise_s": t_fast}
    print("\n== Scale: synthetic 5,000-file repository ==")
    print(f"order_repository {total:.2f} s ({len(r.edges)} edges, {len(r.removed_edges)} removed"
          f" to break cycles); linearisation alone {t_fast:.2f} s")
    if apsp:
        # The textbook way, at sizes where it still fits: networkx all-pairs shortest paths
        # (its time alone, then the reference linearisation that uses it) vs the fast order.
        out["apsp"] = []
        for n in (250, 500, 1000, 2000):
            rn = order_repository(synthetic_repo(n))
            gn = nx.DiGraph(list(set(rn.edges) - set(rn.removed_edges)))
            t0 = time.perf_counter()
            dict(nx.all_pairs_shortest_path_length(gn.to_undirected(as_view=True)))
            t_apsp = time.perf_counter() - t0
            t0 = time.perf_counter()
            ref = fgraph.linearise_apsp(gn) if n <= 1000 else None
            t_ref = time.perf_counter() - t0
            t0 = time.perf_counter()
            fast = fgraph.linearise_codegemma(gn)
            t_fast = time.perf_counter() - t0
            row = {"files": n, "nodes": gn.number_of_nodes(), "apsp_s": t_apsp,
                   "reference_s": t_ref if ref else None, "fast_s": t_fast,
                   "same_order": ref == fast if ref else None}
            out["apsp"].append(row)
            print(f"  {n:5} files: all-pairs {t_apsp:6.2f} s"
                  + (f", reference order {t_ref:6.2f} s (same: {ref == fast})" if ref else "")
                  + f"; fast order {t_fast:.3f} s")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="bench-data")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-download", action="store_true")
    ap.add_argument("--apsp", action="store_true",
                    help="also time networkx all-pairs shortest paths and the reference order "
                         "on 250-2,000 files (about a minute)")
    args = ap.parse_args(argv)
    data = Path(args.data)
    repos = fetch(data, not args.no_download)
    results = {"sdists": {n: SDISTS[n][0] for n in repos}, "cpu": os.cpu_count()}
    results["edges"] = bench_edges(repos)
    results["throughput"] = bench_throughput(repos, args.repeats)
    results["test_links"] = bench_links(repos)
    results["go_rust"] = bench_other_languages(data, not args.no_download)
    results["scale"] = bench_scale(args.apsp)
    out = data / "results-graph.json"
    out.write_text(json.dumps(results, indent=1))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
