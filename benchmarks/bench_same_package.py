"""Same-package dependencies (``packing/samepackage.py``) against the compilers' own name
resolution, on real Go modules and Maven sources jars.

    bash benchmarks/fetch_same_package.sh bench-data/same-package   # once: 3 Go, 2 Java
    .venv/bin/python benchmarks/bench_same_package.py /work/real-packages bench-data/same-package

Every ``go-*``/``java-*`` folder under the given roots is one repository. The reference:

* Go: ``benchmarks/same_package/goref.go`` (``go run``): the files go/build's default context
  selects (this GOOS/GOARCH, no tags; test files included), grouped by folder and package
  clause, type-checked with go/types; an edge user -> declarer for each identifier whose
  ``Info.Uses`` object is package-level (parent = the package scope) and declared in another
  file. fimpack's edges are computed on the same files (it cannot know build tags; a name
  declared in both ``x_linux.go`` and ``x_windows.go`` links to both in a build).
* Java: ``benchmarks/same_package/JavaRef.java`` (``java``, single-file source launch): javac
  parses and attributes every file of the repository in one task; an edge for each name in
  code that javac resolves to a type of the same package declared in another file.

Also per repository: the whole graph's edges and the files without any edge, before (imports
only) and after same-package edges.

Edges are file pairs (user, declarer). Precision = our pairs the reference has / our pairs;
recall = reference pairs we have / reference pairs. Prints per repository and overall, and
the pairs that differ (``--show N``); writes ``<--out>`` JSON.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from fimpack.config import recorded_setting
from fimpack.packing.imports import extract_imports
from fimpack.packing.graph import build_graph
from fimpack.packing.samepackage import package_key, same_package_edges
from fimpack.records import SourceFile

HERE = Path(__file__).resolve().parent / "same_package"


def go_reference(repo: Path) -> tuple[list[str], set[tuple[str, str]], dict]:
    out = subprocess.run(["go", "run", str(HERE / "goref.go"), str(repo)], check=True,
                         capture_output=True, text=True, cwd=HERE).stdout
    files, edges, names = [], set(), {}
    for line in out.splitlines():
        d = json.loads(line)
        files += d["files"]
        for u, v, n in d["edges"]:
            edges.add((u, v))
            names.setdefault((u, v), []).append(n)
    return sorted(files), edges, names


def java_reference(repo: Path, classpath: str = "") -> tuple[list[str], set[tuple[str, str]], dict]:
    out = subprocess.run(["java", str(HERE / "JavaRef.java"), str(repo), classpath], check=True,
                         capture_output=True, text=True, cwd=HERE).stdout
    files, edges, names = [], set(), {}
    for line in out.splitlines():
        d = json.loads(line)
        if "files" in d:
            files = d["files"]
        else:
            edges.add((d["user"], d["decl"]))
            names.setdefault((d["user"], d["decl"]), []).append(d["name"])
    return sorted(files), edges, names


def ours(repo: Path, files: list[str], language: str) -> tuple[dict, set, float, int]:
    """(same-package edges {(u, v): names}, the whole graph's edges between files of one
    package (imports too: ``import p.A.Nested`` is an import edge), seconds, bytes)."""
    t = time.perf_counter()
    nbytes = 0
    rows, sources, extractions = [], [], {}
    for p in files:
        data = (repo / p).read_bytes()
        nbytes += len(data)
        text = data.decode("utf-8", "replace")
        ex = extract_imports(text, language)
        rows.append((p, language, ex.package))
        extractions[p] = ex
        sources.append(SourceFile(repo.name, p, language, text))
    edges = same_package_edges(rows)
    seconds = time.perf_counter() - t
    # go.mod files too: Go imports resolve through the module path
    sources += [SourceFile(repo.name, str(m.relative_to(repo)), "text", m.read_text())
                for m in sorted(repo.rglob("go.mod"))]
    graph, _, _ = build_graph(sources, extractions=extractions)
    key = {p: package_key(p, language, ex.package.package) for p, ex in extractions.items()}
    within = {(u, v) for u, v in graph.edges if key.get(u) is not None and key[u] == key.get(v)}
    # the graph as it was before same-package edges: imports only
    before, _, _ = build_graph(sources, extractions={p: replace(ex, package=None)
                                                     for p, ex in extractions.items()})
    lonely = lambda g: sum(1 for p in files if g.degree(p) == 0)  # noqa: E731
    counts = {"edges_before": before.number_of_edges(), "edges_after": graph.number_of_edges(),
              "no_edge_before": lonely(before), "no_edge_after": lonely(graph)}
    return edges, within, seconds, nbytes, counts


def cost(files: list[tuple[Path, str, str]], repeats: int) -> dict:
    """CPU seconds of ``extract_imports`` over FILES with and without the same-package pass
    (``package_names``), interleaved, best of REPEATS: the pass's cost as a ratio."""
    import fimpack.packing.imports as imports_module

    texts = [((repo / p).read_text("utf-8", "replace"), lang) for repo, p, lang in files]
    real = imports_module.package_names
    best = {"with": float("inf"), "without": float("inf")}
    for _ in range(repeats):
        for mode in ("without", "with"):
            imports_module.package_names = real if mode == "with" else (lambda root, lang: None)
            t = time.process_time()
            for text, lang in texts:
                extract_imports(text, lang)
            best[mode] = min(best[mode], time.process_time() - t)
    imports_module.package_names = real
    return {"with_s": round(best["with"], 3), "without_s": round(best["without"], 3),
            "ratio": round(best["with"] / best["without"], 3), "files": len(texts)}


def locality_before_after(build: Path, method: str) -> dict:
    """What the edges change in a build: the Go and Java repositories of BUILD (a bench_pack
    build) packed again through ``pack_repository`` (partition METHOD, best-fit decreasing per
    shard) with the graph as it was (imports only) and as it is; measured on the dependencies
    between Go/Java files that the graph now has (imports and same-package): the share whose
    dependency is earlier in the same example (context the model sees)."""
    sys.path.insert(0, str(Path(__file__).parent))
    import bench_pack as bp

    import fimpack.packing.graph as graph_module
    from fimpack.packing.graph import order_repository
    from fimpack.packing.tokenizer import Tokenizer

    cfg = json.loads((build / "manifest.json").read_text())["config"]
    L = recorded_setting(cfg, "seq_len")
    tok = Tokenizer.load(str(build / "tokenizer.model"))
    rows = bp.load_rows(build)
    files = bp.file_sizes(rows, tok)
    repos = {r: fs for r, fs in bp.reconstruct_files(rows)[0].items()
             if any(f.language in ("go", "java") for f in fs)}
    edges = []
    for repo, fs in sorted(repos.items()):
        lang = {f.path: f.language for f in fs}
        edges += [(repo, u, v) for u, v in order_repository(fs).edges
                  if lang[u] in ("go", "java") and lang[v] in ("go", "java")]
    fits = {(r, u, v) for r, u, v in edges
            if files[(r, u)]["parts"] == 1 and files[(r, v)]["parts"] == 1
            and files[(r, u)]["ntok"] + files[(r, v)]["ntok"] + 3 <= L}
    out = {"repositories": len(repos), "edges": len(edges), "edges_fit": len(fits),
           "method": method}
    real = graph_module.same_package_edges
    for label in ("imports only", "imports + same package"):
        if label == "imports only":
            graph_module.same_package_edges = lambda rows: {}
        try:
            orders = {r: order_repository(fs).order for r, fs in repos.items()}
            sim = bp.simulate(rows, repos, orders, tok, cfg, L, partition=method)
        finally:
            graph_module.same_package_edges = real
        out[label] = bp.locality(edges, sim["place"], fits)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("roots", nargs="+", help="folders holding go-*/java-* repositories")
    ap.add_argument("--show", type=int, default=8, help="differing pairs shown per repository")
    ap.add_argument("--classpath", default="",
                    help="jars javac resolves third-party imports from (JUnit 4's hamcrest)")
    ap.add_argument("--repeats", type=int, default=3, help="cost measurement: best of")
    ap.add_argument("--build", help="a bench_pack build (bench-data/pack-real-8192): its Go and "
                    "Java repositories packed with and without same-package edges")
    ap.add_argument("--partition", default="best", help="with --build: the partition method")
    ap.add_argument("--out", default="bench-data/results-same-package.json")
    args = ap.parse_args(argv)
    repos = sorted(p for r in args.roots for p in Path(r).iterdir()
                   if p.is_dir() and p.name.startswith(("go-", "java-")))
    results = {}
    total = {(lang, kind): [0, 0, 0] for lang in ("go", "java") for kind in ("same", "graph")}
    seconds = nbytes_all = 0.0
    print(f"{'repository':30} {'files':>5} {'ref':>4} | same-package edges: {'ours':>4} "
          f"{'prec':>5} {'rec':>5} | whole graph: {'ours':>4} {'prec':>5} {'rec':>5}")
    for repo in repos:
        language = "go" if repo.name.startswith("go-") else "java"
        files, ref, ref_names = (go_reference(repo.resolve()) if language == "go"
                                 else java_reference(repo.resolve(), args.classpath))
        got, within, s, nb, counts = ours(repo, files, language)
        seconds += s
        nbytes_all += nb
        row = {"language": language, "files": len(files), "reference": len(ref), **counts}
        line = f"{repo.name:30} {len(files):5} {len(ref):4}"
        for kind, mine in (("same", set(got)), ("graph", within)):
            tp = len(mine & ref)
            t = total[(language, kind)]
            t[0] += tp
            t[1] += len(mine)
            t[2] += len(ref)
            prec = tp / len(mine) if mine else 1.0
            rec = tp / len(ref) if ref else 1.0
            line += (" | same-package edges:" if kind == "same" else " | whole graph:") + \
                f" {len(mine):4} {prec:5.3f} {rec:5.3f}"
            row[kind] = {"ours": len(mine), "true": tp, "precision": prec, "recall": rec,
                         "extra": sorted(mine - ref), "missed": sorted(ref - mine)}
        print(line)
        print(f"    graph edges {counts['edges_before']} -> {counts['edges_after']}; files "
              f"without an edge {counts['no_edge_before']} -> {counts['no_edge_after']}")
        for u, v in row["graph"]["extra"][:args.show]:
            print(f"    extra  {u} -> {v} {list(got.get((u, v), ['(import)']))[:4]}")
        for u, v in row["graph"]["missed"][:args.show]:
            print(f"    missed {u} -> {v} {ref_names[(u, v)][:4]}")
        row["paths"] = files
        results[repo.name] = row
    summary = {}
    for (language, kind), (tp, n, r) in total.items():
        summary[f"{language}:{kind}"] = {"precision": tp / n if n else None,
                                         "recall": tp / r if r else None,
                                         "ours": n, "reference": r, "true": tp}
        print(f"{language} {'same-package edges' if kind == 'same' else 'whole graph'}: "
              f"precision {tp}/{n} = {tp / max(n, 1):.3f}, recall {tp}/{r} = {tp / max(r, 1):.3f}")
    print(f"extraction + same-package edges: {nbytes_all / 1e6:.2f} MB in {seconds:.2f} s "
          f"({nbytes_all / 1e6 / max(seconds, 1e-9):.1f} MB/s)")
    summary["cost"] = cost([(repo, p, results[repo.name]["language"]) for repo in repos
                            for p in results[repo.name]["paths"]], args.repeats)
    for row in results.values():
        del row["paths"]
    print(f"cost of the same-package names: extract_imports {summary['cost']['without_s']} s "
          f"without, {summary['cost']['with_s']} s with (x{summary['cost']['ratio']}), CPU "
          f"time, best of {args.repeats}, same files")
    if args.build:
        loc = summary["locality"] = locality_before_after(Path(args.build), args.partition)
        print(f"{args.build}: {loc['repositories']} Go/Java repositories, {loc['edges']} "
              f"dependencies between their files ({loc['edges_fit']} fit one sequence), "
              f"--partition {args.partition}; dependency earlier in the same example:")
        for label in ("imports only", "imports + same package"):
            d = loc[label]
            print(f"  graph of {label:24} all {d['all']['same_example_earlier']:.3f}, "
                  f"fit {d['fit']['same_example_earlier']:.3f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"argv": sys.argv, "summary": summary, "repositories": results},
                              indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
