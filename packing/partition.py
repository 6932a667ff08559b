"""A repository's files grouped into examples along its dependency graph: capacity-bounded
graph partitioning.

Each group becomes one example (its files in the repository's dependency order), so an edge
inside a group is context the model sees: the imported file is earlier in the same document.
Groups hold at most ``capacity`` tokens; files longer than a sequence are not grouped (their
parts are examples of their own). A file with no edge is a group of its own: a small whole
document the sequence packer uses to fill gaps.

Methods (``--partition``), compared in BENCHMARKS.md ("Packing"):

* ``greedy``: import edges taken smallest pair first (the two files' sizes), joining two
  groups when the union fits: capacity-bounded single linkage. Unweighted.
* ``density``: agglomerative merging by weight per token: repeatedly join the two groups with
  the largest ``W(A, B) / (size(A) + size(B))``, W the summed importance of the import edges
  and test links between them, while the union fits (a heap of candidate pairs, re-scored
  after each merge).
* ``refined``: ``density``, then Fiduccia–Mattheyses-style passes that move single files to
  the neighbouring group holding more of their edge weight, when it has room.
* ``best``: per repository, ``greedy``'s or ``refined``'s groups, whichever holds more import
  edges with the dependency earlier in the same group (the locality measure of BENCHMARKS.md:
  an edge the model sees as context); ties go to the one holding more weight, then to
  ``refined``. By construction never below either on that count, repository by repository.
  Neither method wins everywhere: on the corpora of BENCHMARKS.md ("Packing judged where it
  was not tuned") ``refined`` beats ``greedy`` by up to 4 points of the fit edges, and on
  other repositories ``greedy``'s size-first single linkage keeps more edges (``refined``
  optimises importance and test links per token, which is not the same as edge count).
* ``repository``: ``refined``'s groups, then joined in dependency order (by their first file)
  while the next one fits: a whole repository per example when it fits (the long-context
  presets), else runs of whole groups; files without edges included.
"""
from __future__ import annotations

import heapq
from collections import defaultdict
from typing import Iterable

from fimpack.config import PARTITIONS

TEST_LINK_WEIGHT = 1.0  # a test beside the code it tests, weighed like a plain import
REFINE_PASSES = 4


def partition(paths: list[str], sizes: dict[str, int], weights: dict[tuple[str, str], float],
              capacity: int, method: str = "greedy",
              imports: Iterable[tuple[str, str]] | None = None) -> list[list[str]]:
    """PATHS (in dependency order) in groups of at most CAPACITY tokens (SIZES: each file's
    tokens with its separator; files in SIZES only), grouped along WEIGHTS ({(u, v):
    importance}, direction ignored) by METHOD. IMPORTS: the import edges (importer, imported)
    among WEIGHTS' keys (``best`` follows them as ``greedy`` would and counts them; default:
    every key). Each group keeps the order of PATHS; groups are in the order of their first
    file."""
    if method not in PARTITIONS:
        raise ValueError(f"unknown partition {method!r}; choose from {PARTITIONS}")
    pos = {p: i for i, p in enumerate(paths)}
    nodes = [p for p in paths if p in sizes]
    if method == "greedy":
        groups = _single_linkage(nodes, sizes, list(weights), capacity)
    elif method == "best":
        imports = sorted(weights if imports is None else imports)
        adj = _undirected(nodes, weights)
        refined = _refine(_agglomerate(nodes, sizes, adj, capacity, pos), sizes, adj, capacity,
                          pos)
        greedy = _single_linkage(nodes, sizes, imports, capacity)
        groups = max((refined, greedy), key=lambda g: (
            in_order(g, imports, pos), round(kept_weight(g, weights), 9), g is refined))
    elif method == "repository":
        adj = _undirected(nodes, weights)
        groups = _refine(_agglomerate(nodes, sizes, adj, capacity, pos), sizes, adj, capacity,
                         pos)
        groups = _consecutive(groups, sizes, capacity, pos)
    else:
        adj = _undirected(nodes, weights)
        groups = _agglomerate(nodes, sizes, adj, capacity, pos)
        if method == "refined":
            groups = _refine(groups, sizes, adj, capacity, pos)
    groups = [sorted(g, key=pos.get) for g in groups if g]
    return sorted(groups, key=lambda g: pos[g[0]])


def edge_weights(importance: dict[tuple[str, str], float], test_links: list[tuple[str, str]],
                 method: str) -> dict[tuple[str, str], float]:
    """What METHOD partitions along: import edges with their importance, plus test links for
    the weighted methods (``greedy`` is unweighted and follows imports only, as it always
    has)."""
    if method == "greedy":
        return dict(importance)
    weights = dict(importance)  # density, refined, best, repository
    for test, impl in test_links:
        if test != impl:
            weights[(test, impl)] = weights.get((test, impl), 0.0) + TEST_LINK_WEIGHT
    return weights


def in_order(groups: list[list[str]], edges: Iterable[tuple[str, str]],
             pos: dict[str, int]) -> int:
    """EDGES (importer, imported) inside one group with the imported file earlier (POS: the
    dependency order): the edges an example shows as context."""
    where = {p: i for i, g in enumerate(groups) for p in g}
    return sum(1 for u, v in set(edges) if u in where and v in where and where[u] == where[v]
               and pos[v] < pos[u])


def kept_weight(groups: list[list[str]], weights: dict[tuple[str, str], float]) -> float:
    """The edge weight inside groups: what a partition maximises."""
    where = {p: i for i, g in enumerate(groups) for p in g}
    return sum(w for (u, v), w in weights.items()
               if u in where and v in where and where[u] == where[v] and u != v)


def _undirected(nodes: list[str], weights: dict) -> dict[str, dict[str, float]]:
    adj: dict[str, dict[str, float]] = {p: {} for p in nodes}
    for (u, v), w in weights.items():
        if u != v and u in adj and v in adj and w > 0:
            adj[u][v] = adj[u].get(v, 0.0) + w
            adj[v][u] = adj[v].get(u, 0.0) + w
    return adj


def _single_linkage(nodes, sizes, edges, capacity) -> list[list[str]]:
    parent = {p: p for p in nodes}
    used = {p: sizes[p] for p in nodes}
    pos = {p: i for i, p in enumerate(nodes)}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    pairs = sorted({(u, v) for u, v in edges if u != v and u in parent and v in parent},
                   key=lambda e: (sizes[e[0]] + sizes[e[1]], e))
    for u, v in pairs:
        a, b = find(u), find(v)
        if a != b and used[a] + used[b] <= capacity:
            if pos[b] < pos[a]:
                a, b = b, a
            parent[b] = a
            used[a] += used[b]
    groups: dict[str, list[str]] = {}
    for p in nodes:
        groups.setdefault(find(p), []).append(p)
    return list(groups.values())


def _consecutive(groups, sizes, capacity, pos) -> list[list[str]]:
    """GROUPS (in the order of their first file) joined while the next one fits: whole
    repositories per example when they fit, and no group taken apart."""
    out: list[list[str]] = [[]]
    used = 0
    for g in sorted((sorted(g, key=pos.get) for g in groups if g), key=lambda g: pos[g[0]]):
        size = sum(sizes[p] for p in g)
        if out[-1] and used + size > capacity:
            out.append([])
            used = 0
        out[-1] += g
        used += size
    return out


def _agglomerate(nodes, sizes, adj, capacity, pos) -> list[list[str]]:
    """Merge the densest fitting pair of groups until none is left (groups named by their
    earliest file; a heap entry is stale once either group has changed)."""
    members = {p: [p] for p in nodes}
    used = {p: sizes[p] for p in nodes}
    links = {p: dict(adj[p]) for p in nodes}
    version = dict.fromkeys(nodes, 0)
    heap: list = []

    def push(a: str, b: str) -> None:
        if used[a] + used[b] <= capacity:
            a, b = (a, b) if pos[a] < pos[b] else (b, a)
            heapq.heappush(heap, (-links[a][b] / (used[a] + used[b]), pos[a], pos[b],
                                  version[a], version[b], a, b))

    for a in nodes:
        for b in links[a]:
            if pos[a] < pos[b]:
                push(a, b)
    while heap:
        _, _, _, va, vb, a, b = heapq.heappop(heap)
        if a not in members or b not in members or version[a] != va or version[b] != vb:
            continue
        members[a] += members.pop(b)
        used[a] += used.pop(b)
        version[a] += 1
        for c, w in links.pop(b).items():
            del links[c][b]
            if c != a:
                links[a][c] = links[c][a] = links[a].get(c, 0.0) + w
        for c in links[a]:
            push(a, c)
    return list(members.values())


def _refine(groups, sizes, adj, capacity, pos) -> list[list[str]]:
    """Move single files to the neighbouring group holding more of their weight when it has
    room; passes in path order until nothing moves (at most REFINE_PASSES)."""
    where = {p: i for i, g in enumerate(groups) for p in g}
    used = [sum(sizes[p] for p in g) for g in groups]
    for _ in range(REFINE_PASSES):
        moved = 0
        for p in sorted(where, key=pos.get):
            here = where[p]
            pull: dict[int, float] = defaultdict(float)
            for q, w in adj[p].items():
                pull[where[q]] += w
            stay = pull.pop(here, 0.0)
            best = max(((w - stay, -g) for g, w in pull.items()
                        if used[g] + sizes[p] <= capacity), default=None)
            if best is not None and best[0] > 1e-9:
                target = -best[1]
                where[p] = target
                used[here] -= sizes[p]
                used[target] += sizes[p]
                moved += 1
        if not moved:
            break
    out: dict[int, list[str]] = defaultdict(list)
    for p, g in where.items():
        out[g].append(p)
    return list(out.values())
