"""How far above fimpack's partitions can a packing with one copy of each file go? A
randomised local search on top of ``--partition refined``, on the groups alone.

    .venv/bin/python benchmarks/partition_ceiling.py --build bench-data/pack-build-8192

Reads a ``bench_pack`` build back (files, token sizes as built, each repository's import
edges from ``order_repository``), partitions every repository with each method, then tries
random single-file moves to a neighbour's group and swaps with a member of it (kept when the
number of fit edges inside groups does not fall), ``--tries`` per repository, ``--restarts``
times from refined's groups. Prints the share of fit edges (both files fit one sequence)
inside one group: an estimate from below of what any one-copy packing reaches, to compare
with bench_pack's per-dependency upper bound.
"""
from __future__ import annotations

import argparse
import random
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import bench_pack as bp  # noqa: E402

from fimpack.config import PARTITIONS  # noqa: E402
from fimpack.packing.graph import order_repository  # noqa: E402
from fimpack.packing.partition import edge_weights, partition  # noqa: E402
from fimpack.packing.tokenizer import Tokenizer  # noqa: E402


def repositories(out: Path, L: int):
    """{repo: (graph, sizes of files that fit, fit edges)} of a build."""
    rows = bp.load_rows(out)
    tok = Tokenizer.load(str(out / "tokenizer.model"))
    files = bp.file_sizes(rows, tok)
    out_repos = {}
    for repo, fs in bp.reconstruct_files(rows)[0].items():
        g = order_repository(fs)
        sizes = {p: files[(repo, p)]["ntok"] + 1 for p in g.order
                 if files[(repo, p)]["parts"] == 1}
        fit = [(u, v) for u, v in sorted(set(g.edges)) if u in sizes and v in sizes
               and sizes[u] + sizes[v] + 1 <= L]
        out_repos[repo] = (g, sizes, fit)
    return out_repos


def inside(groups, fit) -> int:
    where = {p: i for i, g in enumerate(groups) for p in g}
    return sum(where[u] == where[v] for u, v in fit)


def local_search(groups, sizes, fit, cap: int, tries: int, rng: random.Random):
    where = {p: i for i, g in enumerate(groups) for p in g}
    used = defaultdict(int)
    for p, g in where.items():
        used[g] += sizes[p]
    nbr = defaultdict(list)
    for u, v in fit:
        nbr[u].append(v)
        nbr[v].append(u)
    nodes = sorted(p for p in where if nbr[p])
    here = lambda p: sum(where[q] == where[p] for q in nbr[p])  # noqa: E731
    for _ in range(tries if nodes else 0):
        p = rng.choice(nodes)
        g, h = where[rng.choice(nbr[p])], where[p]
        if g == h:
            continue
        if used[g] + sizes[p] <= cap:  # a move
            before = here(p)
            where[p] = g
            if here(p) < before:
                where[p] = h
            else:
                used[h] -= sizes[p]
                used[g] += sizes[p]
            continue
        members = sorted(r for r, x in where.items() if x == g)  # a swap
        r = rng.choice(members)
        if used[g] - sizes[r] + sizes[p] > cap or used[h] - sizes[p] + sizes[r] > cap:
            continue
        before = here(p) + here(r)
        where[p], where[r] = g, h
        if here(p) + here(r) < before:
            where[p], where[r] = h, g
        else:
            used[g] += sizes[p] - sizes[r]
            used[h] += sizes[r] - sizes[p]
    out = defaultdict(list)
    for p, g in where.items():
        out[g].append(p)
    return list(out.values())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="bench-data/pack-build-8192")
    ap.add_argument("--seq-len", type=int, default=8192)
    ap.add_argument("--tries", type=int, default=30_000)
    ap.add_argument("--restarts", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    cap = args.seq_len - 1
    repos = repositories(Path(args.build), args.seq_len)
    total = sum(len(fit) for _, _, fit in repos.values())
    print(f"{len(repos)} repositories, {total} fit edges")
    rng = random.Random(args.seed)
    for method in PARTITIONS:
        kept = sum(inside(partition(g.order, s, edge_weights(g.importance, g.test_links, method),
                                    cap, method, g.importance), fit)
                   for g, s, fit in repos.values())
        print(f"{method:12} {kept / total:.4f} of fit edges in one group")
    best = 0
    for g, s, fit in repos.values():
        start = partition(g.order, s, dict.fromkeys(g.importance, 1.0), cap, "refined")
        best += max([inside(start, fit)] + [
            inside(local_search([list(x) for x in start], s, fit, cap, args.tries, rng), fit)
            for _ in range(args.restarts)])
    print(f"local search {best / total:.4f} of fit edges in one group (refined, unit weights, "
          f"{args.restarts} x {args.tries} tries per repository)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
