"""Benchmark packing: sequence utilisation, files split, dependency locality, tokenisation.

    .venv/bin/python benchmarks/bench_pack.py --data bench-data

Builds the embedded default corpus (the stdlib + installed distributions, capped by
``--max-repos``/``--max-files-per-repo``; ``--code-fraction -1`` keeps every example) once per
``--seq-lens`` value into ``<data>/pack-build-<L>`` with the real CLI (``fimpack build``), then
reads the build output back. The 2048 build (every build after the first) reuses the first
build's ``tokenizer.model`` (``--tokenizer``): the same model the build would train (the
sample does not depend on seq_len), without training it again. ``--reuse`` skips a build whose
manifest exists with the same settings. Prints tables and writes ``<data>/results-pack.json``.

Other corpora (``benchmarks/fetch_pack_corpora.sh``): ``--input DIR --name NAME`` builds a
folder of repositories instead, into ``<data>/NAME-<L>`` (results ``<data>/results-NAME.json``);
``--locality-only`` keeps the partition methods and the bounds (section 2's partition table)
and ``--ceiling-tries N`` adds ``partition_ceiling.py``'s local-search ceiling (``ceiling``).

1. **Utilisation and files split**, per build, all shards together:
   * *fimpack*: non-padding tokens / (sequences x seq_len); files *cut* (``parts > 1``) and files
     whose parts land in more than one packed sequence (the same here: a file part is at most
     one sequence of tokens).
   * *concat-and-chunk*: each shard's examples concatenated in example-id order (the order
     the shard writer receives them: a repository's examples in sequence) and cut every
     seq_len tokens; utilisation counts the last chunk as full length; a file is split when
     its token span (first part's first token to last part's last token) crosses a cut.
   * *lower bound* on files split: files whose ``path\\n`` + content tokens + bos + eos are
     more than seq_len (content tokenised whole; such a file cannot sit in one sequence
     whatever the packer does). Also the lower bound on parts (each part pays path + bos + eos).
   * *first-fit-decreasing* on the same examples (reference); the bin-count lower bound
     max(ceil(tokens / L), examples > L/2) for the examples as built (the best utilisation any
     packer of *these* examples could reach: it separates "the bin packer" from "the example
     sizes" as the cause of lost utilisation); and best-fit-decreasing of whole file parts
     (repositories mixed, order ignored: what the same files allow without more splitting).
2. **Dependency locality**: each code repository's kept files are reconstructed from the
   examples (``fimpack.inspect.as_json``; parts joined), ``order_repository`` gives the resolved
   import edges (importer -> imported, before cycle breaking; both files kept by construction).
   An edge counts when a part of the imported file sits *earlier in the same packed sequence*
   as the importer's first part (the metric asked for), and, stricter, earlier in the same
   *example* (one document: the trainer masks attention across documents, so only this one is
   visible context). Orders compared, each packed by the same code path (``pack_repository`` +
   ``best_fit_decreasing`` over the shard's examples, natural-language examples unchanged):
   the build itself (codegemma), codegemma re-simulated (must equal the build: a check),
   DeepSeek-Coder's order (``strategy="deepseek"``), a random file order (seeded per
   repository) and a dependencies-first DFS post-order (a what-if). Reported over all edges
   and over edges whose two files fit in one sequence together (both single-part,
   tokens(u) + tokens(v) + bos + separator + eos <= L), with why the fit edges fail and two
   upper bounds for any packing with one copy of each file.
   A file part's tokens do not depend on the order, so a token-level replay of ``_Builder`` +
   ``best_fit_decreasing`` gives exactly what ``pack_repository`` would; at ``--code-path-sims``
   (8192) the orders are re-run through ``pack_repository`` itself and the replay is checked
   against it (and against the build) placement by placement; other seq_lens use the replay.
   **What-ifs** behind the suggestions (token-level, see ``replay``/``dep_clusters``):
   fill-split, fill-any, lookahead, lookahead+fill-split, dep-clusters.
3. **Tokenisation throughput** on the first build's examples (same texts both ways: every
   non-sentinel piece): fimpack's per-example ``Tokenizer.encode_pieces`` vs one
   ``sp.encode(list_of_texts)`` call (sentencepiece's default ``num_threads=-1``) and the same
   call with ``num_threads=1``. MB = 10^6 UTF-8 bytes; "per core" divides by the process's CPU
   time (all threads), wall time is shown too. Token ids are checked against the build's
   ``num_tokens``. Best of ``--repeats`` interleaved passes.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import random
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from fimpack.config import recorded_setting
from fimpack.inspect import as_json, pieces_of
from fimpack.packing.binpack import best_fit_decreasing
from fimpack.config import PARTITIONS
from fimpack.packing.partition import edge_weights, kept_weight, partition
from fimpack.packing.stages import pack_repository
from fimpack.packing.examples import OVERHEAD
from fimpack.packing.graph import order_repository, place_rest
from fimpack.packing.testlinks import is_test
from fimpack.packing.tokenizer import Tokenizer
from fimpack.records import CODE, SENTINEL, SourceFile

ROOT = Path(__file__).resolve().parents[1]
T0 = time.perf_counter()


def step(what: str) -> None:
    print(f"  [{time.perf_counter() - T0:6.1f} s] {what}", flush=True)


COLUMNS = ["id", "repo", "source", "split", "sequence", "text", "num_tokens", "files", "pieces"]


# ---------------------------------------------------------------------------------------------
# Build and load

def build(out: Path, seq_len: int, args, tokenizer: Path | None) -> dict:
    cmd = [sys.executable, "-m", "fimpack", "build", "--out", str(out),
           "--max-repos", str(args.max_repos), "--max-files-per-repo", str(args.max_files),
           "--vocab-size", str(args.vocab_size), "--code-fraction", "-1",
           "--seq-len", str(seq_len), "--workers", str(args.workers)]
    if tokenizer is not None:
        cmd += ["--tokenizer", str(tokenizer)]
    if args.input:
        cmd += ["--input", str(args.input)]
    manifest = out / "manifest.json"
    if args.reuse and manifest.exists():
        m = json.loads(manifest.read_text())
        c = m["config"]
        if (recorded_setting(c, "seq_len") == seq_len and c["max_repos"] == args.max_repos
                and c["limits"]["max_files_per_repo"] == args.max_files
                and (c.get("input") or None) == (str(args.input) if args.input else None)):
            print(f"  reusing {out} ({m['timing']['seconds']} s when built)")
            return {"command": " ".join(cmd), "seconds": m["timing"]["seconds"], "reused": True}
    print("  $ " + " ".join(cmd), flush=True)
    t = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return {"command": " ".join(cmd), "seconds": round(time.perf_counter() - t, 1),
            "reused": False}


def load_rows(out: Path) -> list[dict]:
    """Every example row; ``shard`` (file stem) and ``row`` (index in the shard, packed order)
    added."""
    rows = []
    for path in sorted(glob.glob(str(out / "examples" / "*.parquet"))):
        shard = Path(path).stem
        for k, r in enumerate(pq.read_table(path, columns=COLUMNS).to_pylist()):
            r["shard"], r["row"] = shard, k
            rows.append(r)
    return rows


def piece_texts(rows: list[dict]) -> tuple[list[list], list[str]]:
    """Per row its Piece list; and every non-sentinel, non-empty piece text in order."""
    pieces = [pieces_of(r) for r in rows]
    texts = [p.text for ps in pieces for p in ps if p.kind != SENTINEL and p.text]
    return pieces, texts


def file_tokens(rows, pieces, counts) -> None:
    """Per row: ``file_spans`` [(start, end)] token offsets (bos at 0) of each file entry and
    ``file_ntok`` (tokens of the file's pieces, sentinels included). Checks num_tokens."""
    it = iter(counts)
    for r, ps in zip(rows, pieces):
        pos = 1
        spans = [[None, None] for _ in r["files"]]
        for p in ps:
            n = 1 if p.kind == SENTINEL else (next(it) if p.text else 0)
            if p.file >= 0 and n:
                s = spans[p.file]
                s[0] = pos if s[0] is None else s[0]
                s[1] = pos + n
            pos += n
        if pos + 1 != r["num_tokens"]:
            raise AssertionError(f"{r['id']}: {pos + 1} tokens re-encoded, "
                                 f"{r['num_tokens']} in the build")
        r["file_spans"] = [(a or 0, b or 0) for a, b in spans]
        r["file_ntok"] = [(b or 0) - (a or 0) for a, b in spans]


# ---------------------------------------------------------------------------------------------
# 1. Utilisation and files split

def first_fit_decreasing(sizes: list[int], capacity: int) -> int:
    room = np.empty(0, dtype=np.int64)
    for s in sorted(sizes, reverse=True):
        fits = np.flatnonzero(room >= s)
        if len(fits):
            room[fits[0]] -= s
        else:
            room = np.append(room, capacity - s)
    return len(room)


def packing_metrics(rows, files, L: int) -> dict:
    by_shard = defaultdict(list)
    for r in rows:
        by_shard[r["shard"]].append(r)
    tokens = sum(r["num_tokens"] for r in rows)
    seqs = ffd_bins = lb_bins = chunks = file_bins = 0
    concat_split = set()
    for shard, rs in by_shard.items():
        seqs += max(r["sequence"] for r in rs) + 1
        sizes = [r["num_tokens"] for r in rs]
        ffd_bins += first_fit_decreasing(sizes, L)
        lb_bins += max(-(-sum(sizes) // L), sum(s > L // 2 for s in sizes))
        # whole file parts as the items (any repositories mixed, order ignored): each costs
        # its tokens + a separator, each sequence bos + eos - 1
        items = [r["num_tokens"] - 1 if r["source"] != CODE else n + 1
                 for r in rs for n in ([0] if r["source"] != CODE else r["file_ntok"])]
        file_bins += len(best_fit_decreasing(items, L - 1))
        # concatenate-and-chunk in example-id order
        off, span = 0, {}
        for r in sorted(rs, key=lambda r: r["id"]):
            for f, (a, b) in zip(r["files"], r["file_spans"]):
                key = (r["repo"], f["path"])
                lo, hi = span.get(key, (off + a, off + b))
                span[key] = (min(lo, off + a), max(hi, off + b))
            off += r["num_tokens"]
        chunks += -(-off // L)
        concat_split |= {k for k, (a, b) in span.items() if a // L != (b - 1) // L}
    cut = {k for k, f in files.items() if f["parts"] > 1}
    across = {k for k, f in files.items() if len(f["sequences"]) > 1}
    need = {k for k, f in files.items() if f["min_tokens"] > L}
    n = np.array([r["num_tokens"] for r in rows])
    return {
        "examples": len(rows), "tokens": int(tokens), "files": len(files),
        "fimpack": {"sequences": int(seqs), "utilisation": tokens / (seqs * L),
                    "files_cut": len(cut), "files_across_sequences": len(across),
                    "file_parts": sum(f["parts"] for f in files.values() if f["parts"] > 1)},
        "concat_chunk": {"sequences": int(chunks), "utilisation": tokens / (chunks * L),
                         "files_split": len(concat_split)},
        "first_fit_decreasing": {"sequences": int(ffd_bins),
                                 "utilisation": tokens / (ffd_bins * L)},
        "bin_lower_bound": {"sequences": int(lb_bins), "utilisation": tokens / (lb_bins * L)},
        "file_level_bfd": {"sequences": int(file_bins), "utilisation": tokens / (file_bins * L)},
        "lower_bound": {"files_split": len(need),
                        "file_parts": sum(-(-f["content_tokens"] // (L - f["path_tokens"] - 2))
                                          for f in files.values() if f["min_tokens"] > L)},
        "files_cut_not_needed": len(cut - need),
        "example_sizes": {
            "percentiles_0_10_25_50_75_90_100": [int(x) for x in np.percentile(
                n, [0, 10, 25, 50, 75, 90, 100])],
            "over_half": int((n > L // 2).sum()), "under_quarter": int((n <= L // 4).sum()),
            "with_a_file_part": sum(any(f["parts"] > 1 for f in r["files"]) for r in rows),
            "gap_after_example_median": int(np.median(L - n))},
    }


# ---------------------------------------------------------------------------------------------
# 2. Dependency locality

def reconstruct_files(rows) -> tuple[dict, dict]:
    """Code repositories' files {repo: [SourceFile]} (parts joined) and per repository the
    build's order of paths."""
    parts = defaultdict(dict)   # (repo, path) -> {part: content}
    meta = {}
    order = defaultdict(list)
    for r in sorted((r for r in rows if r["source"] == CODE), key=lambda r: r["id"]):
        j = as_json(r)
        for f in j["files"]:
            key = (r["repo"], f["path"])
            if key not in meta:
                meta[key] = (f["language"], f["redactions"])
                order[r["repo"]].append(f["path"])
            parts[key][f["part"]] = f["content"]
    repos = defaultdict(list)
    for (repo, path), ps in parts.items():
        lang, red = meta[(repo, path)]
        repos[repo].append(SourceFile(repo, path, lang, "".join(ps[k] for k in sorted(ps)),
                                      CODE, red))
    return repos, order


def placements_build(rows) -> dict:
    """(repo, path) -> [(shard, sequence, rank in sequence, file index, part)]."""
    rank, place = {}, defaultdict(list)
    for r in rows:  # rows are in packed order within a shard
        k = (r["shard"], r["sequence"])
        rk = rank.get(k, -1) + 1
        rank[k] = rk
        for i, f in enumerate(r["files"]):
            place[(r["repo"], f["path"])].append((r["shard"], r["sequence"], rk, i, f["part"]))
    return place


def simulate(rows, repos, orders: dict, tok: Tokenizer, cfg: dict, L: int,
             partition: str | None = None) -> dict:
    """Re-run pack_repository with ORDERS {repo: [paths]} and pack each shard with
    best_fit_decreasing (natural-language examples as built). Placements as above, plus the
    sequences and token totals."""
    shard_of = {r["repo"]: r["shard"] for r in rows}
    items = defaultdict(list)  # shard -> [(id, size, repo, [(path, part)])]
    for r in rows:
        if r["source"] != CODE:
            items[r["shard"]].append((r["id"], r["num_tokens"], r["repo"],
                                      [(f["path"], f["part"]) for f in r["files"]]))
    for repo, files in repos.items():
        by_path = {f.path: f for f in files}
        setting = lambda name, default=None: recorded_setting(cfg, name, default)  # noqa: E731
        examples, _ = pack_repository(repo, list(by_path.values()), tok, seed=cfg["seed"],
                                      fim_rate=setting("fim_rate"), seq_len=L,
                                      val_fraction=setting("val_fraction"),
                                      fim_split=setting("fim_split"), order=orders[repo],
                                      partition=partition or setting("partition", "greedy"))
        for ex, ids in examples:
            items[shard_of[repo]].append((ex.id, len(ids), repo,
                                          [(f.path, f.part) for f in ex.files]))
    return place_in_shards(items, L)


def file_sizes(rows, tok) -> dict:
    """{(repo, path): {"parts", "ntok"}}: each file's tokens summed over its parts, with
    ``file_ntok`` set on ROWS (``file_tokens``) on the way."""
    pieces, texts = piece_texts(rows)
    file_tokens(rows, pieces, [len(x) for x in tok.sp.encode(texts)])
    files = {}
    for r in rows:
        for f, n in zip(r["files"], r["file_ntok"]):
            d = files.setdefault((r["repo"], f["path"]), {"parts": f["parts"], "ntok": 0})
            d["ntok"] += n
    return files


def place_in_shards(items: dict, L: int) -> dict:
    """Examples ITEMS {shard: [(id, tokens, repo, [(path, part)])]} placed as the build
    places them (best-fit-decreasing per shard, in id order): where each file's parts land
    {(repo, path): [(shard, sequence, rank, file index, part)]}, sequences, utilisation,
    files split across sequences, sizes and tokens."""
    place, seqs, tokens, sizes_all = defaultdict(list), 0, 0, []
    for shard, its in items.items():
        its.sort(key=lambda it: it[0])
        sizes = [s for _, s, _, _ in its]
        bins = best_fit_decreasing(sizes, L)
        for s, b in enumerate(bins):
            for rk, i in enumerate(b):
                _, _, repo, fs = its[i]
                for fi, (path, part) in enumerate(fs):
                    place[(repo, path)].append((shard, s, rk, fi, part))
        seqs += len(bins)
        tokens += sum(sizes)
        sizes_all += sizes
    split = sum(len({p[:2] for p in ps}) > 1 for ps in place.values())
    return {"place": place, "sequences": seqs, "utilisation": tokens / (seqs * L),
            "files_split": split, "sizes": sorted(sizes_all), "tokens": tokens}


def weighted_locality(fits, place, weight: dict) -> float | None:
    """The share of the fit edges' importance whose dependency is earlier in the importer's
    sequence (what the weighted partitions maximise)."""
    total = hit = 0.0
    for e in fits:
        repo, u, v = e
        us = min(place[(repo, u)], key=lambda p: p[4])
        total += weight[e]
        hit += weight[e] * any(p[:2] == us[:2] and p[2:4] < us[2:4] for p in place[(repo, v)])
    return hit / total if total else None


def same_example(edges, place) -> float | None:
    """Fraction of EDGES (repo, u, v) with some part of v in the same example as a part of u
    (either order): the edges one document holds."""
    hit = 0
    for repo, u, v in edges:
        us = {p[:3] for p in place[(repo, u)]}
        hit += any(p[:3] in us for p in place[(repo, v)])
    return hit / len(edges) if edges else None


def partition_at_scale(tok: Tokenizer, n: int, L: int) -> dict:
    """Seconds to order and partition one N-file repository: the first N Python files of the
    installed distributions (sorted paths) as a single repository, sizes from the tokenizer."""
    import sysconfig
    site = Path(sysconfig.get_paths()["purelib"])
    fs = []
    for path in sorted(site.rglob("*.py")):
        try:
            fs.append(SourceFile("site", str(path.relative_to(site)), "python",
                                 path.read_text(encoding="utf-8")))
        except (UnicodeDecodeError, OSError):
            continue
        if len(fs) == n:
            break
    sizes = {f.path: n + 1 for f, n in zip(fs, map(len, tok.sp.encode([f.content for f in fs])))}
    t = time.perf_counter()
    graph = order_repository(fs)
    out = {"files": len(fs), "edges": len(graph.edges), "order_s": round(time.perf_counter() - t, 2)}
    for method in PARTITIONS:
        weights = edge_weights(graph.importance, graph.test_links, method)
        fitting = {p: k for p, k in sizes.items() if k < L}
        t = time.perf_counter()
        groups = partition(graph.order, fitting, weights, L - 1, method, graph.importance)
        out[method] = {"seconds": round(time.perf_counter() - t, 3), "groups": len(groups),
                       "kept_weight": round(kept_weight(groups, weights), 1)}
    return out


def partition_seconds(repos: dict, files: dict, L: int) -> dict:
    """Seconds each partition method takes per repository on the real graphs (sizes as
    built; files over a sequence left out, as the build leaves them)."""
    out = {}
    for method in PARTITIONS:
        worst, total = (0.0, ""), 0.0
        for repo, (fs, o) in repos.items():
            sizes = {f.path: files[(repo, f.path)]["ntok"] + 1 for f in fs
                     if (repo, f.path) in files and files[(repo, f.path)]["parts"] == 1}
            weights = edge_weights(o["importance"], o["test_links"], method)
            t = time.perf_counter()
            partition(o["codegemma"], sizes, weights, L - 1, method, o["importance"])
            dt = time.perf_counter() - t
            total += dt
            worst = max(worst, (dt, f"{repo} ({len(fs)} files)"))
        out[method] = {"total_s": round(total, 3), "max_s": round(worst[0], 3),
                       "max_repo": worst[1]}
    return out


def locality(edges, place, fits) -> dict:
    """Fractions of edges (repo, u, v) whose v precedes u's first part in the same sequence /
    the same example; over all edges and the edges in FITS."""
    out = {}
    for name, subset in (("all", edges), ("fit", [e for e in edges if e in fits])):
        seq = ex = 0
        for repo, u, v in subset:
            us = min(place[(repo, u)], key=lambda p: p[4])
            vs = place[(repo, v)]
            seq += any(p[:2] == us[:2] and p[2:4] < us[2:4] for p in vs)
            ex += any(p[:3] == us[:3] and p[3] < us[3] for p in vs)
        n = len(subset)
        out[name] = {"edges": n, "same_sequence_earlier": seq / n if n else None,
                     "same_example_earlier": ex / n if n else None}
    return out


def locality_bounds(fits, files, place, L: int) -> dict:
    """Why fit edges fail in PLACE, and two upper bounds for any packing that holds one copy
    of each file: per dependency v, at most the importers that fit beside it in one sequence
    (smallest first) can have it earlier in theirs; per importer u, at most the dependencies
    that fit beside it."""
    split = defaultdict(int)
    for repo, u, v in fits:
        us = min(place[(repo, u)], key=lambda p: p[4])
        same = [p for p in place[(repo, v)] if p[:2] == us[:2]]
        split["different sequence" if not same else "same sequence, dependency earlier"
              if any(p[2:4] < us[2:4] for p in same) else "same sequence, dependency later"] += 1
    bounds = {}
    for name, key, other in (("per_dependency", 2, 1), ("per_importer", 1, 2)):
        groups = defaultdict(list)
        for e in fits:
            groups[(e[0], e[key])].append(files[(e[0], e[other])]["ntok"])
        ok = 0
        for k, sizes in groups.items():
            room = L - 2 - files[k]["ntok"]
            for n in sorted(sizes):
                if n + 1 > room:
                    break
                room -= n + 1
                ok += 1
        bounds[name] = ok / len(fits) if fits else None
    return {"fit_split": dict(split), **bounds}


# ---------------------------------------------------------------------------------------------
# What-ifs behind the suggestions (not fimpack code paths)

def dfs_order(fs: list[SourceFile], ro) -> list[str]:
    """Dependencies-first DFS post-order on codegemma's acyclic graph: each file is emitted
    right after its not-yet-placed dependencies (the most important one last, so nearest),
    starting from files nothing imports; the other files as ``place_rest`` puts them."""
    dag = set(ro.edges) - set(ro.removed_edges)
    deps, imported = defaultdict(list), defaultdict(int)
    for u, v in dag:
        deps[u].append(v)
        imported[v] += 1
    for u in deps:
        deps[u].sort(key=lambda v: (ro.importance.get((u, v), 0.0), v))
    nodes = sorted({x for e in dag for x in e})
    order, seen = [], set()
    for root in [n for n in nodes if not imported[n]] + nodes:
        if root in seen:
            continue
        seen.add(root)
        stack = [(root, iter(deps[root]))]
        while stack:
            u, it = stack[-1]
            for v in it:
                if v not in seen:
                    seen.add(v)
                    stack.append((v, iter(deps[v])))
                    break
            else:
                stack.pop()
                order.append(u)
    by_path = {f.path: f for f in fs}
    return place_rest(order, sorted(by_path), ro.test_links,
                      {p for p, f in by_path.items() if is_test(p, f.language)})


def replay(rows, files, L: int, *, orders: dict | None = None, mode: str = "build",
           min_fill: int = 0, deps: dict | None = None, window: int = 64) -> dict:
    """Token-level replay of ``pack_repository`` (``_Builder``) over the build's file parts, then
    best-fit-decreasing per shard (items by example id, as the shard writer has them).

    A file part's token ids do not depend on the file order (its FIM mode and split come from
    (seed, repo, path, part), its parts from its own length), so with MODE "build" this is
    exactly what ``pack_repository`` + ``best_fit_decreasing`` give for any ORDERS {repo:
    [paths]} (default: the build's order); the benchmark checks it against both. The other
    modes are what-ifs for the suggestions, in tokens (line ends ignored; a new part costs its
    path line + 3 FIM sentinels):
    * "fill-split": a file that is split anyway starts with a part that fills the open
      example's room (when that is >= MIN_FILL body tokens); then full-budget parts;
    * "fill-any": any file that does not fit is cut there (room >= MIN_FILL): more files split;
    * "lookahead": before closing an example, pull forward the first of the next WINDOW files
      of the repository that fit the room whole and whose dependencies (DEPS, codegemma's
      acyclic graph) are already placed: no file is split and dependencies stay first;
    * "lookahead+fill-split": both.
    """
    by_shard = defaultdict(list)
    stream = defaultdict(list)  # repo -> [(path, [part sizes])] in build order
    for r in sorted(rows, key=lambda r: r["id"]):
        if r["source"] != CODE:
            by_shard[r["shard"]].append((r["id"], r["num_tokens"], r["repo"],
                                         [(f["path"], f["part"]) for f in r["files"]]))
            continue
        for f, n in zip(r["files"], r["file_ntok"]):
            if f["part"] == 0:
                stream[r["repo"]].append((f["path"], []))
            stream[r["repo"]][-1][1].append(n)
    shard_of = {r["repo"]: r["shard"] for r in rows}
    fill_split = mode in ("fill-split", "lookahead+fill-split")
    lookahead = mode.startswith("lookahead")
    for repo, fs in stream.items():
        if orders is not None:
            sizes_of = dict(fs)
            fs = [(p, sizes_of[p]) for p in orders[repo]]
        rdeps = (deps or {}).get(repo, {})
        done, entries, n_ids = [], [], 1
        placed, pulled = set(), set()

        def close():
            nonlocal entries, n_ids
            if entries:
                done.append((f"{repo}:{len(done):05d}", n_ids + 1, repo, entries))
            entries, n_ids = [], 1

        def add(path, part, size, i):
            nonlocal n_ids
            sep = 1 if entries else 0
            if entries and n_ids + sep + size + 1 > L:
                if lookahead:
                    fill(i)
                close()
                sep = 0
            entries.append((path, part))
            placed.add(path)
            n_ids += sep + size

        def fill(i):
            nonlocal n_ids
            for j in range(i + 1, min(len(fs), i + 1 + window)):
                path, sizes = fs[j]
                if (path in pulled or len(sizes) > 1 or n_ids + 1 + sizes[0] + 1 > L
                        or not rdeps.get(path, set()) <= placed):
                    continue
                entries.append((path, 0))
                placed.add(path)
                pulled.add(path)
                n_ids += 1 + sizes[0]

        for i, (path, sizes) in enumerate(fs):
            if path in pulled:
                continue
            ovh = files[(repo, path)]["path_tokens"] + 3
            budget = L - files[(repo, path)]["path_tokens"] - OVERHEAD
            room = L - (n_ids + 1 + 1) - ovh if entries else 0
            whole = sum(sizes) - ovh * (len(sizes) - 1)  # one part's worth of overhead
            wants = (fill_split and len(sizes) > 1) or (
                mode == "fill-any" and n_ids + 1 + sizes[0] + 1 > L)
            parts = sizes
            if wants and entries and room >= min_fill:
                body = whole - ovh
                first = min(room, body)
                parts, body = [ovh + first], body - first
                while body > 0:
                    take = min(budget, body)
                    parts.append(ovh + take)
                    body -= take
            for k, n in enumerate(parts):
                add(path, k, n, i)
        close()
        by_shard[shard_of[repo]].extend(done)
    return place_in_shards(by_shard, L)


def dep_clusters(rows, files, fits, L: int) -> dict:
    """What-if: per repository, capacity-bounded agglomerative clustering of files along
    import edges (fit edges, smallest pair first: union two clusters when the union still fits
    one example), clusters best-fit-decreasing into examples of that repository, files in
    codegemma order inside each; split files keep their parts as built, one example each;
    then best-fit-decreasing per shard as the build does. No file is split that the build
    does not split."""
    by_shard = defaultdict(list)
    stream = defaultdict(list)
    for r in sorted(rows, key=lambda r: r["id"]):
        if r["source"] != CODE:
            by_shard[r["shard"]].append((r["id"], r["num_tokens"], r["repo"],
                                         [(f["path"], f["part"]) for f in r["files"]]))
            continue
        for f, n in zip(r["files"], r["file_ntok"]):
            if f["part"] == 0:
                stream[r["repo"]].append((f["path"], []))
            stream[r["repo"]][-1][1].append(n)
    shard_of = {r["repo"]: r["shard"] for r in rows}
    fit_by_repo = defaultdict(list)
    for repo, u, v in fits:
        fit_by_repo[repo].append((u, v))
    for repo, fs in stream.items():
        pos = {p: i for i, (p, _) in enumerate(fs)}
        size = {p: s[0] + 1 for p, s in fs if len(s) == 1}  # + its separator
        parent = {p: p for p in size}
        used = dict(size)

        def find(x):
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        for u, v in sorted(fit_by_repo[repo], key=lambda e: (size[e[0]] + size[e[1]], e)):
            a, b = find(u), find(v)
            if a != b and used[a] + used[b] + 1 <= L:
                parent[b] = a
                used[a] += used[b]
        groups = defaultdict(list)
        for p in sorted(size, key=pos.get):
            groups[find(p)].append(p)
        groups = sorted(groups.values(), key=lambda g: pos[g[0]])
        bins = best_fit_decreasing([sum(size[p] for p in g) + 1 for g in groups], L)
        items = []
        for b in bins:
            members = sorted((p for j in b for p in groups[j]), key=pos.get)
            items.append((pos[members[0]], sum(size[p] for p in members) + 1,
                          [(p, 0) for p in members]))
        for p, sizes in fs:
            if len(sizes) > 1:
                items += [(pos[p], n + 2, [(p, k)]) for k, n in enumerate(sizes)]
        items.sort(key=lambda it: it[0])
        by_shard[shard_of[repo]] += [(f"{repo}:{i:05d}", n, repo, m)
                                     for i, (_, n, m) in enumerate(items)]
    place, seqs, tokens = defaultdict(list), 0, 0
    for shard, its in by_shard.items():
        its.sort(key=lambda it: it[0])
        sizes = [n for _, n, _, _ in its]
        for s, b in enumerate(best_fit_decreasing(sizes, L)):
            for rk, i in enumerate(b):
                _, _, repo, fs = its[i]
                for fi, (path, part) in enumerate(fs):
                    place[(repo, path)].append((shard, s, rk, fi, part))
            seqs += 1
        tokens += sum(sizes)
    split = sum(len({p[:2] for p in ps}) > 1 for ps in place.values())
    return {"place": place, "sequences": seqs, "utilisation": tokens / (seqs * L),
            "files_split": split, "tokens": tokens}


# ---------------------------------------------------------------------------------------------
# 3. Throughput

def throughput(rows, pieces, texts, tok: Tokenizer, repeats: int) -> dict:
    nbytes = sum(len(t.encode("utf-8")) for t in texts)
    sp = tok.sp

    def fimpack_pass():
        return [tok.encode_pieces(ps) for ps in pieces]

    def fimpack_1thread():
        saved = sp._num_threads
        sp._num_threads = 1
        try:
            return [tok.encode_pieces(ps) for ps in pieces]
        finally:
            sp._num_threads = saved

    methods = {"fimpack encode_pieces (per example)": fimpack_pass,
               "sentencepiece sp.encode(list), one call": lambda: sp.encode(texts),
               "sentencepiece sp.encode(list, num_threads=1)": lambda: sp.encode(
                   texts, num_threads=1),
               "fimpack encode_pieces, sp num_threads=1 (diagnostic)": fimpack_1thread}
    best = {m: None for m in methods}
    checked, counts = False, None
    for _ in range(repeats):
        for name, fn in methods.items():
            w, c = time.perf_counter(), time.process_time()
            res = fn()
            w, c = time.perf_counter() - w, time.process_time() - c
            if not checked and name.startswith("fimpack encode_pieces (per"):
                bad = sum(len(ids) + 2 != r["num_tokens"] for ids, r in zip(res, rows))
                if bad:
                    raise AssertionError(f"{bad} examples tokenise differently from the build")
                checked = True
            if counts is None and name.startswith("sentencepiece sp.encode(list), one"):
                counts = [len(x) for x in res]
            del res
            if best[name] is None or c < best[name][1]:
                best[name] = (w, c)
    return {"_counts": counts, "mb": nbytes / 1e6, "texts": len(texts), "examples": len(rows),
            "methods": {m: {"wall_s": w, "cpu_s": c, "mb_s_wall": nbytes / 1e6 / w,
                            "mb_s_per_core": nbytes / 1e6 / c}
                        for m, (w, c) in best.items()}}


# ---------------------------------------------------------------------------------------------

def partition_methods(rows, repos, plain, files, edges, fits, loc, tok, cfg, L) -> dict:
    """Each --partition method through the build's code path (pack_repository + BFD)."""
    step("partition methods (pack_repository + best_fit_decreasing)")
    links = [(repo, t, i) for repo, (_, o) in repos.items() for t, i in o["test_links"]
             if t != i and (repo, t) in files and (repo, i) in files]
    link_fits = {e for e in links if files[(e[0], e[1])]["parts"] == 1
                 and files[(e[0], e[2])]["parts"] == 1
                 and files[(e[0], e[1])]["ntok"] + files[(e[0], e[2])]["ntok"] + 3 <= L}
    cg_orders = {r: o["codegemma"] for r, (_, o) in repos.items()}
    importance = {(r, u, v): w for r, (_, o) in repos.items()
                  for (u, v), w in o["importance"].items()}
    methods = {"bound_fit": loc["bounds"]["per_dependency"], "test_links": len(links),
               "test_links_fit": len(link_fits),
               "seconds": partition_seconds(repos, files, L)}
    for method in PARTITIONS:
        t = time.perf_counter()
        sim = simulate(rows, plain, cg_orders, tok, cfg, L, partition=method)
        d = locality(edges, sim["place"], fits)
        d.update(utilisation=sim["utilisation"], sequences=sim["sequences"],
                 files_split=sim["files_split"],
                 same_example_all=same_example(edges, sim["place"]),
                 weighted_fit=weighted_locality(fits, sim["place"], importance),
                 test_links=locality(links, sim["place"], link_fits),
                 simulate_s=round(time.perf_counter() - t, 1))
        methods[method] = d
    return methods


def partitions_only(res, loc, rows, repos, plain, files, edges, fits, tok, cfg, L, args,
                    t1) -> dict:
    """--locality-only: the partition methods, the bounds and the local-search ceiling."""
    methods = partition_methods(rows, repos, plain, files, edges, fits, loc, tok, cfg, L)
    if args.ceiling_tries:
        step(f"local-search ceiling ({args.ceiling_restarts} x {args.ceiling_tries} tries)")
        methods["ceiling"] = ceiling(repos, files, L, args.ceiling_tries,
                                     args.ceiling_restarts, args.seed)
    res["partitions"] = methods
    res["locality"] = loc
    res["analysis_seconds_locality"] = round(time.perf_counter() - t1, 1)
    return res


def ceiling(repos, files, L: int, tries: int, restarts: int, seed: int) -> dict:
    """``partition_ceiling.py``'s measure on this build: the share of fit edges inside one
    group for each method (groups alone, before sequence packing), and the best a randomised
    local search (single-file moves and swaps, unit weights) reaches from refined's and
    greedy's groups: an estimate from below of what a one-copy packing can reach."""
    import partition_ceiling as pc

    cap, rng = L - 1, random.Random(seed)
    inside = dict.fromkeys(PARTITIONS, 0)
    best = total = 0
    for repo, (_, o) in sorted(repos.items()):
        sizes = {p: files[(repo, p)]["ntok"] + 1 for p in o["codegemma"]
                 if (repo, p) in files and files[(repo, p)]["parts"] == 1}
        fit = [(u, v) for u, v in o["edges"] if u in sizes and v in sizes
               and sizes[u] + sizes[v] + 1 <= L]
        if not fit:
            continue
        total += len(fit)
        found = []
        for m in PARTITIONS:
            groups = partition(o["codegemma"], sizes, edge_weights(o["importance"],
                                                                   o["test_links"], m), cap, m,
                               o["importance"])
            inside[m] += pc.inside(groups, fit)
            found.append(pc.inside(groups, fit))
        for start_method in ("refined", "greedy"):
            start = partition(o["codegemma"], sizes, dict.fromkeys(o["importance"], 1.0), cap,
                              start_method)
            found += [pc.inside(pc.local_search([list(x) for x in start], sizes, fit, cap,
                                                tries, rng), fit) for _ in range(restarts)]
        best += max(found)
    return {"fit_edges": total, "tries": tries, "restarts": restarts,
            "in_one_group": {m: inside[m] / total if total else None for m in PARTITIONS},
            "local_search": best / total if total else None}


def run_seq_len(L: int, args, data: Path, tokenizer: Path | None, orders_cache: dict,
                do_throughput: bool) -> dict:
    out = data / f"{args.name}-{L}"
    print(f"\n== seq_len {L}", flush=True)
    b = build(out, L, args, tokenizer)
    manifest = json.loads((out / "manifest.json").read_text())
    cfg = manifest["config"]
    tok = Tokenizer.load(str(out / "tokenizer.model"))
    t0 = time.perf_counter()
    rows = load_rows(out)
    pieces, texts = piece_texts(rows)
    res = {"build": b, "seq_len": L, "out": str(out),
           "manifest_counts": {k: manifest["counts"][k] for k in
                               ("examples", "sequences", "utilisation", "files_split",
                                "file_parts", "kept_files", "tokens")},
           "tokenizer_sha256": manifest["tokenizer"]["sha256"]}
    if do_throughput:
        step("throughput")
        res["throughput"] = throughput(rows, pieces, texts, tok, args.repeats)
    counts = res["throughput"].pop("_counts") if do_throughput else [
        len(x) for x in tok.sp.encode(texts)]
    file_tokens(rows, pieces, counts)
    del pieces, texts, counts

    # Per file: parts, sequences, tokens as packed, content tokens (whole), path tokens.
    files = {}
    for r in rows:
        for f, ntok in zip(r["files"], r["file_ntok"]):
            d = files.setdefault((r["repo"], f["path"]), {"parts": f["parts"], "sequences": set(),
                                                          "ntok": 0})
            d["sequences"].add((r["shard"], r["sequence"]))
            d["ntok"] += ntok
    repos, build_order = reconstruct_files(rows)
    contents = {(f.repo, f.path): f.content for fs in repos.values() for f in fs}
    for r in rows:  # natural-language documents: content is the text pieces
        if r["source"] != CODE:
            j = as_json(r)
            for f in j["files"]:
                contents[(r["repo"], f["path"])] = contents.get((r["repo"], f["path"]),
                                                                "") + f["content"]
    keys = list(files)
    path_tok = [len(x) for x in tok.sp.encode([k[1] + "\n" for k in keys])]
    for k, pt in zip(keys, path_tok):
        files[k]["path_tokens"] = pt
    # Only files that could be over L need a whole-content count (a token covers >= 1 byte).
    big = [k for k in keys if len(contents[k].encode("utf-8")) + files[k]["path_tokens"] + 2 > L]
    big_counts = dict(zip(big, (len(x) for x in tok.sp.encode([contents[k] for k in big]))))
    for k in keys:
        ct = big_counts.get(k, len(contents[k].encode("utf-8")) if k not in big else 0)
        if k not in big:  # small: an upper bound is enough (it is <= L anyway)
            ct = min(ct, L)
        files[k]["content_tokens"] = ct
        files[k]["min_tokens"] = files[k]["path_tokens"] + ct + 2
    step("packing metrics")
    res["packing"] = packing_metrics(rows, files, L)
    res["analysis_seconds_pack"] = round(time.perf_counter() - t0, 1)

    # 2. Dependency locality
    t1 = time.perf_counter()
    step("orders")
    for repo, fs in repos.items():
        key = (repo, tuple(sorted((f.path, hash(f.content)) for f in fs)))
        if key not in orders_cache:
            cg = order_repository(fs, "codegemma")
            ds = cg if args.locality_only else order_repository(fs, "deepseek")
            paths = sorted(f.path for f in fs)
            rnd = paths[:]
            random.Random(f"{args.seed}:{repo}").shuffle(rnd)
            dag = defaultdict(set)
            for u, v in set(cg.edges) - set(cg.removed_edges):
                dag[u].add(v)
            orders_cache[key] = {"edges": sorted(set(cg.edges)), "dag": dict(dag),
                                 "importance": cg.importance, "test_links": cg.test_links,
                                 "codegemma": cg.order, "deepseek": ds.order, "random": rnd,
                                 "dfs-postorder": [] if args.locality_only
                                 else dfs_order(fs, cg)}
        repos[repo] = (fs, orders_cache[key])
    order_match = sum(build_order[r] == o["codegemma"] for r, (_, o) in repos.items())
    edges = [(repo, u, v) for repo, (_, o) in repos.items() for u, v in o["edges"]
             if (repo, u) in files and (repo, v) in files]
    fits = {(repo, u, v) for repo, u, v in edges
            if files[(repo, u)]["parts"] == 1 and files[(repo, v)]["parts"] == 1
            and files[(repo, u)]["ntok"] + files[(repo, v)]["ntok"] + 3 <= L}
    loc = {"repositories": len(repos), "build_order_equals_codegemma": order_match,
           "edges": len(edges), "edges_fit": len(fits), "checks": {}}
    build_place = placements_build(rows)
    loc["build (codegemma)"] = locality(edges, build_place, fits)
    loc["build (codegemma)"]["utilisation"] = res["packing"]["fimpack"]["utilisation"]
    loc["build (codegemma)"]["sequences"] = res["packing"]["fimpack"]["sequences"]
    loc["build (codegemma)"]["via"] = "build output"
    loc["bounds"] = locality_bounds(fits, files, build_place, L)
    build_sizes = sorted(r["num_tokens"] for r in rows)
    plain = {repo: fs for repo, (fs, _) in repos.items()}
    code_path = L in {int(x) for x in args.code_path_sims.split(",") if x}
    for strategy in () if args.locality_only else ("codegemma", "deepseek", "random",
                                                   "dfs-postorder"):
        orders = {r: o[strategy] for r, (_, o) in repos.items()}
        rp = replay(rows, files, L, orders=orders)
        if strategy == "codegemma":
            loc["checks"]["replay_equals_build"] = (rp["place"] == build_place
                                                    and rp["sizes"] == build_sizes)
        via = "replay of pack_repository + best_fit_decreasing (token level)"
        if code_path and strategy != "dfs-postorder":
            step(f"simulate {strategy} (pack_repository + best_fit_decreasing)")
            sim = simulate(rows, plain, orders, tok, cfg, L)
            loc["checks"][f"code_path_equals_replay:{strategy}"] = (
                sim["place"] == rp["place"] and sim["sizes"] == rp["sizes"])
            if strategy == "codegemma":
                loc["checks"]["code_path_equals_build"] = (sim["place"] == build_place
                                                           and sim["sizes"] == build_sizes)
            rp, via = sim, "pack_repository + best_fit_decreasing"
        d = locality(edges, rp["place"], fits)
        d.update(utilisation=rp["utilisation"], sequences=rp["sequences"], via=via)
        loc[f"simulated {strategy}"] = d
    if args.locality_only:
        return partitions_only(res, loc, rows, repos, plain, files, edges, fits, tok, cfg, L,
                               args, t1)
    step("what-ifs")
    min_fill = args.min_fill * L // 8192
    deps = {r: o["dag"] for r, (_, o) in repos.items()}
    whatif = {"min_fill": min_fill, "window": args.window}
    for mode in ("fill-split", "fill-any", "lookahead", "lookahead+fill-split"):
        rp = replay(rows, files, L, mode=mode, min_fill=min_fill, deps=deps,
                    window=args.window)
        whatif[mode] = {"sequences": rp["sequences"], "utilisation": rp["utilisation"],
                        "files_split": rp["files_split"], "tokens": rp["tokens"],
                        "locality": locality(edges, rp["place"], fits)}
    rp = dep_clusters(rows, files, fits, L)
    whatif["dep-clusters"] = {"sequences": rp["sequences"], "utilisation": rp["utilisation"],
                              "files_split": rp["files_split"], "tokens": rp["tokens"],
                              "locality": locality(edges, rp["place"], fits)}
    res["whatif"] = whatif
    methods = partition_methods(rows, repos, plain, files, edges, fits, loc, tok, cfg, L)
    step("partition at scale (one 5,000-file repository)")
    methods["at_scale"] = partition_at_scale(tok, 5000, L)
    res["partitions"] = methods
    res["locality"] = loc
    res["analysis_seconds_locality"] = round(time.perf_counter() - t1, 1)
    return res


def pct(x):
    return "-" if x is None else f"{100 * x:6.2f}%"


def report(results: dict) -> None:
    for L, r in results["seq_lens"].items():
        p = r["packing"]
        lb = p["lower_bound"]["files_split"]
        print(f"\n== seq_len {L}: {p['examples']} examples, {p['tokens']:,} tokens, "
              f"{p['files']} files (build {r['build']['seconds']} s)")
        print(f"{'packing':34} {'sequences':>9} {'utilisation':>11} {'files split':>11} "
              f"{'x lower bound':>13}")
        rowsf = [("fimpack (build: BFD of examples)", p["fimpack"]["sequences"],
                  p["fimpack"]["utilisation"], p["fimpack"]["files_across_sequences"]),
                 ("concatenate-and-chunk", p["concat_chunk"]["sequences"],
                  p["concat_chunk"]["utilisation"], p["concat_chunk"]["files_split"]),
                 ("first-fit-decreasing (examples)", p["first_fit_decreasing"]["sequences"],
                  p["first_fit_decreasing"]["utilisation"], None),
                 ("bin lower bound for these examples", p["bin_lower_bound"]["sequences"],
                  p["bin_lower_bound"]["utilisation"], None),
                 ("BFD of whole file parts (no order)", p["file_level_bfd"]["sequences"],
                  p["file_level_bfd"]["utilisation"], p["fimpack"]["files_across_sequences"]),
                 ("lower bound (files > one sequence)", None, None, lb)]
        for name, s, u, f in rowsf:
            print(f"{name:34} {s if s is not None else '-':>9} {pct(u):>11} "
                  f"{f if f is not None else '-':>11} "
                  f"{(f'{f / lb:.3f}' if f is not None and lb else '-'):>13}")
        print(f"  fimpack files cut (parts > 1): {p['fimpack']['files_cut']}, of which not "
              f"strictly needed: {p['files_cut_not_needed']}; parts {p['fimpack']['file_parts']} "
              f"(lower bound {p['lower_bound']['file_parts']})")
        es = p["example_sizes"]
        print(f"  example sizes p0/10/25/50/75/90/100: {es['percentiles_0_10_25_50_75_90_100']}; "
              f"> L/2: {es['over_half']} of {p['examples']}; <= L/4: {es['under_quarter']}; "
              f"holding a file part: {es['with_a_file_part']}")
        loc = r["locality"]
        print(f"\n  dependency locality: {loc['edges']} resolved import edges in "
              f"{loc['repositories']} repositories ({loc['edges_fit']} where both fit in one "
              f"sequence); build order == codegemma order in {loc['build_order_equals_codegemma']}"
              f"/{loc['repositories']}; checks: {loc['checks']}")
        print(f"  {'order':26} {'seq, all':>9} {'seq, fit':>9} {'doc, all':>9} {'doc, fit':>9} "
              f"{'utilisation':>11}  via")
        for name in ("build (codegemma)", "simulated codegemma", "simulated deepseek",
                     "simulated random", "simulated dfs-postorder"):
            if name not in loc:
                continue
            d = loc[name]
            print(f"  {name:26} {pct(d['all']['same_sequence_earlier']):>9} "
                  f"{pct(d['fit']['same_sequence_earlier']):>9} "
                  f"{pct(d['all']['same_example_earlier']):>9} "
                  f"{pct(d['fit']['same_example_earlier']):>9} {pct(d['utilisation']):>11}  "
                  f"{d['via']}")
        b = loc["bounds"]
        print(f"  fit edges: {b['fit_split']}; upper bounds (one copy of each file, "
              f"ignoring competition): per dependency {pct(b['per_dependency'])}, "
              f"per importer {pct(b['per_importer'])}")
        w = r.get("whatif")
        if w:
            report_whatifs(w, lb)
        if "partitions" in r:
            report_partitions(r["partitions"], lb)
        if "throughput" in r:
            report_throughput(r["throughput"])


def report_whatifs(w, lb) -> None:
    print(f"\n  what-ifs (token-level replay, codegemma order, BFD; min fill {w['min_fill']}"
          f" tokens, lookahead {w['window']} files)")
    print(f"  {'model':22} {'sequences':>9} {'utilisation':>11} {'files split':>11} "
          f"{'x LB':>6} {'seq, fit':>9} {'doc, fit':>9}")
    for mode in ("fill-split", "fill-any", "lookahead", "lookahead+fill-split",
                 "dep-clusters"):
        d = w[mode]
        print(f"  {mode:22} {d['sequences']:>9} {pct(d['utilisation']):>11} "
              f"{d['files_split']:>11} {d['files_split'] / lb if lb else 0:6.3f} "
              f"{pct(d['locality']['fit']['same_sequence_earlier']):>9} "
              f"{pct(d['locality']['fit']['same_example_earlier']):>9}")


def report_partitions(pm, lb) -> None:
    bound = pm["bound_fit"]
    print(f"\n  partition methods (pack_repository + BFD; fit-edge bound {pct(bound)}; "
          f"{pm['test_links']} test links, {pm['test_links_fit']} fit)")
    print(f"  {'method':10} {'seq, fit':>9} {'of bound':>8} {'weighted':>8} {'doc, fit':>9} "
          f"{'one doc, all':>12} {'tests, fit':>10} {'utilisation':>11} "
          f"{'split':>6} {'x LB':>6} {'max s/repo':>10}")
    for m in PARTITIONS:
        d = pm[m]
        seq = d["fit"]["same_sequence_earlier"]
        print(f"  {m:10} {pct(seq):>9} {seq / bound if bound else 0:8.3f} "
              f"{pct(d['weighted_fit']):>8} "
              f"{pct(d['fit']['same_example_earlier']):>9} "
              f"{pct(d['same_example_all']):>12} "
              f"{pct(d['test_links']['fit']['same_sequence_earlier']):>10} "
              f"{pct(d['utilisation']):>11} {d['files_split']:>6} "
              f"{d['files_split'] / lb if lb else 0:6.3f} "
              f"{pm['seconds'][m]['max_s']:>10}")
    ce = pm.get("ceiling")
    if ce:
        print(f"  fit edges in one group (groups alone; {ce['fit_edges']} fit edges): "
              + ", ".join(f"{m} {pct(v)}" for m, v in ce["in_one_group"].items())
              + f"; local search {pct(ce['local_search'])} ({ce['restarts']} x "
              f"{ce['tries']} tries from refined and from greedy, unit weights)")
    sc = pm.get("at_scale")
    if sc:
        print(f"  one {sc['files']}-file repository ({sc['edges']} edges): order "
              f"{sc['order_s']} s; partition " + ", ".join(
                  f"{m} {sc[m]['seconds']} s" for m in PARTITIONS))


def report_throughput(t) -> None:
    print(f"\n  tokenisation: {t['mb']:.1f} MB in {t['texts']:,} texts, "
          f"{t['examples']} examples")
    print(f"  {'method':52} {'wall s':>7} {'cpu s':>7} {'MB/s wall':>9} "
          f"{'MB/s/core':>9}")
    for m, v in t["methods"].items():
        print(f"  {m:52} {v['wall_s']:7.2f} {v['cpu_s']:7.2f} {v['mb_s_wall']:9.2f} "
              f"{v['mb_s_per_core']:9.2f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="bench-data")
    ap.add_argument("--seq-lens", default="8192,2048")
    ap.add_argument("--max-repos", type=int, default=40)
    ap.add_argument("--max-files", type=int, default=300, help="--max-files-per-repo")
    ap.add_argument("--vocab-size", type=int, default=8192)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0, help="random-order baseline")
    ap.add_argument("--code-path-sims", default="8192",
                    help="seq_lens whose order comparisons re-run pack_repository (slow) and "
                         "check the token-level replay against it; others use the replay")
    ap.add_argument("--window", type=int, default=64, help="what-if lookahead window (files)")
    ap.add_argument("--min-fill", type=int, default=256,
                    help="what-ifs: smallest room (body tokens at L=8192, scaled) worth filling")
    ap.add_argument("--reuse", action="store_true", help="reuse builds already in --data")
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--input", help="build this folder of repositories (fimpack build "
                    "--input) instead of the embedded corpus")
    ap.add_argument("--name", default="pack-build",
                    help="builds go to <data>/<name>-<seq_len>, results to "
                         "<data>/results-<name>.json")
    ap.add_argument("--locality-only", action="store_true",
                    help="only the partition methods, the bounds and --ceiling-tries: no order "
                         "comparisons, what-ifs, throughput or 5,000-file timing")
    ap.add_argument("--ceiling-tries", type=int, default=0,
                    help="with --locality-only: local-search tries per repository and start "
                         "(partition_ceiling.py's ceiling); 0 skips it")
    ap.add_argument("--ceiling-restarts", type=int, default=3)
    args = ap.parse_args(argv)
    if args.locality_only:
        args.skip_throughput = True
    if args.input:
        args.input = Path(args.input).resolve()
    data = Path(args.data)
    if not data.is_absolute():
        data = ROOT / data
    data.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results = {"argv": sys.argv, "corpus": (f"--input {args.input}" if args.input else
                                            "embedded default (stdlib + installed "
                                            "distributions)") +
               f", --max-repos {args.max_repos} --max-files-per-repo "
               f"{args.max_files} --vocab-size {args.vocab_size} --code-fraction -1",
               "cpus": os.cpu_count(), "seq_lens": {}}
    orders_cache: dict = {}
    tokenizer = None
    for k, L in enumerate(int(x) for x in args.seq_lens.split(",")):
        results["seq_lens"][L] = run_seq_len(L, args, data, tokenizer, orders_cache,
                                            k == 0 and not args.skip_throughput)
        tokenizer = data / f"{args.name}-{L}" / "tokenizer.model"
    results["seconds"] = round(time.perf_counter() - started, 1)
    report(results)
    path = data / ("results-pack.json" if args.name == "pack-build"
                   else f"results-{args.name}.json")
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"\nwrote {path} ({results['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
