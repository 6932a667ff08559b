"""Benchmark ConnectedComponents on a synthetic near-duplicate graph; prints one JSON line.

    .venv/bin/python benchmarks/bench_components.py --edges 1000000 --workers 1
    .venv/bin/python benchmarks/bench_components.py --edges 100000 --chain-length 1000 --workers 2

The graph: ``--chains`` paths of ``--chain-length`` nodes (half with ids rising along the path,
the slowest order for large-star/small-star; half shuffled), then small clusters of 2-8 files
until ``--edges`` edges, each cluster a path plus ~half of its other pairs (LSH reports most
pairs of a near-duplicate cluster, some more than once: ~5% duplicate and reversed edges).
Node ids are zero-padded numbers assigned at random, so string order = numeric order.

The edges go through a TSV file (ReadFromText -> ConnectedComponents -> WriteToText), so the
wall time includes reading and writing; ``--rounds`` star rounds run before the union-find
labels what they left (``union_find_nodes`` in the report); the labels are checked against
scipy.sparse.csgraph.connected_components (networkx when scipy is missing).
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import tempfile
import time

import apache_beam as beam
import numpy as np
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions

from fimpack.pipelines.runners import runner_for
from fimpack.dedup.components import (DEFAULT_ROUNDS, NAMESPACE, ConnectedComponents,
                                      rounds_used)

ID_WIDTH = 8  # f"{i:08d}": lexicographic order is numeric order


def make_graph(edges: int, chains: int, chain_length: int, seed: int) -> np.ndarray:
    """(E, 2) int64 array of node numbers."""
    rng = np.random.default_rng(seed)
    parts, node_count = [], 0
    for c in range(chains):
        nodes = np.arange(node_count, node_count + chain_length)
        node_count += chain_length
        if c % 2:
            nodes = rng.permutation(nodes)
        parts.append(np.stack([nodes[:-1], nodes[1:]], axis=1))
    have = sum(len(p) for p in parts)
    target = int(edges / 1.05)  # before duplicates
    while have < target:  # small clusters, in batches of one size
        size = int(rng.integers(2, 9))
        per_cluster = (size - 1) + 0.5 * (size - 1) * (size - 2) / 2
        count = max(1, min(20_000, int((target - have) / per_cluster)))
        base = node_count + np.arange(count)[:, None] * size
        node_count += count * size
        i, j = np.triu_indices(size, k=1)
        keep = (j == i + 1) | (rng.random((count, len(i))) < 0.5)  # a path plus half the rest
        pairs = np.stack([base + i, base + j], axis=2)[keep]
        parts.append(pairs)
        have += len(pairs)
    graph = np.concatenate(parts)[:max(target, chains * (chain_length - 1))]
    extra = graph[rng.integers(0, len(graph), size=max(0, edges - len(graph)))]
    flip = rng.random(len(extra)) < 0.5
    extra[flip] = extra[flip][:, ::-1]
    graph = np.concatenate([graph, extra])
    # Random ids, so that clusters and odd chains are in no id order by construction; the
    # even chains (nodes 0..L-1 of the chain in path order) get their ids sorted along the path.
    ids = rng.permutation(node_count)
    for c in range(0, chains, 2):
        block = slice(c * chain_length, (c + 1) * chain_length)
        ids[block] = np.sort(ids[block])
    graph = ids[graph]
    return graph[rng.permutation(len(graph))]


def expected_labels(graph: np.ndarray) -> dict[int, int]:
    """{node: smallest node of its component} computed in one process."""
    nodes, inverse = np.unique(graph, return_inverse=True)
    inverse = inverse.reshape(graph.shape)
    try:
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components
        n = len(nodes)
        matrix = coo_matrix((np.ones(len(graph), np.int8), (inverse[:, 0], inverse[:, 1])),
                            shape=(n, n))
        _, component = connected_components(matrix, directed=False)
        smallest = np.full(component.max() + 1, np.iinfo(np.int64).max)
        np.minimum.at(smallest, component, nodes)
        return dict(zip(nodes.tolist(), smallest[component].tolist()))
    except ImportError:
        import networkx as nx
        g = nx.Graph()
        g.add_edges_from(graph.tolist())
        return {v: min(c) for c in nx.connected_components(g) for v in c}


def parse_edge(line: str) -> tuple[str, str]:
    u, v = line.split("\t")
    return u, v


def format_label(label: tuple[str, str]) -> str:
    return f"{label[0]}\t{label[1]}"


def run(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--edges", type=int, default=1_000_000)
    parser.add_argument("--chains", type=int, default=10)
    parser.add_argument("--chain-length", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS,
                        help="star rounds before the union-find finishes the rest")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", default=None, help="default: a temporary folder")
    args, beam_args = parser.parse_known_args(argv)

    started = time.time()
    graph = make_graph(args.edges, args.chains, args.chain_length, args.seed)
    workdir = args.workdir or tempfile.mkdtemp(prefix="bench_components_")
    edges_path = os.path.join(workdir, "edges.tsv")
    with open(edges_path, "w") as f:
        f.writelines(f"{u:0{ID_WIDTH}d}\t{v:0{ID_WIDTH}d}\n" for u, v in graph.tolist())
    generate_s = time.time() - started

    options = PipelineOptions(beam_args)
    # FnApiRunner with --workers processes (its data-plane race fixed), or --runner prism.
    runner = runner_for(options, args.workers)
    out_prefix = os.path.join(workdir, "labels")
    started = time.time()
    p = beam.Pipeline(runner=runner, options=options)
    (p
     | "ReadEdges" >> beam.io.ReadFromText(edges_path)
     | "ParseEdges" >> beam.Map(parse_edge)
     | "Components" >> ConnectedComponents(rounds=args.rounds)
     | "Format" >> beam.Map(format_label)
     | "WriteLabels" >> beam.io.WriteToText(out_prefix, file_name_suffix=".tsv"))
    result = p.run()
    result.wait_until_finish()
    wall_s = time.time() - started

    counters = {c.key.metric.name: c.committed for c in result.metrics().query(
        MetricsFilter().with_namespace(NAMESPACE))["counters"]}
    active = [counters.get(f"round_{r:02d}_nodes", 0) for r in range(1, args.rounds + 1)]

    started = time.time()
    expected = expected_labels(graph)
    found = {}
    duplicates = 0
    for path in glob.glob(out_prefix + "*.tsv"):
        with open(path) as f:
            for line in f:
                node, component = line.rstrip("\n").split("\t")
                duplicates += int(node) in found
                found[int(node)] = int(component)
    correct = found == expected and duplicates == 0
    check_s = time.time() - started

    report = {
        "edges": len(graph), "nodes": len(expected),
        "components": len(set(expected.values())),
        "chains": args.chains, "chain_length": args.chain_length,
        "workers": args.workers, "rounds": args.rounds,
        "union_find_nodes": counters.get("union_find_nodes", 0),
        "rounds_used": rounds_used(result),
        "active_nodes_per_round": active[:max(1, rounds_used(result) + 1)],
        "wall_s": round(wall_s, 1), "edges_per_s": round(len(graph) / wall_s),
        "generate_s": round(generate_s, 1), "check_s": round(check_s, 1),
        "correct": correct,
    }
    print(json.dumps(report))
    if not correct:
        sys.exit("labels differ from the single-process reference")
    return report


if __name__ == "__main__":
    run()
