"""Connected components of the near-duplicate graph, computed in Beam rounds.

MinHash-LSH gives candidate pairs ``(u, v)``; a duplicate cluster is a connected component of
that graph. BigCode and datatrove run union-find in one process, their stated bottleneck. Here
every round is a GroupByKey keyed by node, so no worker ever holds the graph.

Output: ``(node, component)`` once for every node named by an edge, where ``component`` is the
smallest node id of the component (Python ordering: code points for ``str``). The labelling is
a function of the graph alone, whatever the runner, the worker count or the edge order.

Algorithm: large-star / small-star alternation (Kiveris, Lattanzi, Mirrokni, Rastogi,
Vassilvitskii, "Connected Components in MapReduce and Beyond", SoCC 2014), the one Spark's
GraphFrames uses. With Γ(u) the neighbours of u and m = the minimum of a node set:

* large-star at u: m = min(Γ(u) ∪ {u}); every neighbour v > u is relinked to m.
* small-star at u: N = the neighbours ≤ u; every node of N ∪ {u} is relinked to min(N ∪ {u}).

Both keep the components; the fixed point is one star per component centred on its minimum.
The paper proves O(log² n) rounds (one round = large-star then small-star) and observes about
log n. Measured with ``label_in_memory`` (the same per-key code, a dict for GroupByKey), rounds
until the last component is confirmed, for a path with ids sorted along it (the slowest order
found, also among bit-reversed, zigzag, block-reversed and locally shuffled orders) and with
shuffled ids: 1k nodes 11 / 9, 10k 15 / 12, 100k 18 / 14, 1M 21 / 17. Pairs, stars and small
clusters take 1-2; a 32x32 grid 7, a random 1k-node tree 8. Each ×10 in path length costs
about 3 rounds, so ``DEFAULT_MAX_ROUNDS`` = 32 covers the 21 of a sorted 1M-node path with 11
rounds to spare; an unneeded round costs ~45 ms on FnApiRunner (two GroupByKeys of nothing).

Retiring finished components (why converged rounds are cheap). A finished component is a star
{c} ∪ leaves with c its minimum. Each node checks its own side during large-star: a centre
(all neighbours larger) sends itself ``(CENTRE, degree)``, a leaf (exactly one neighbour,
smaller) sends that neighbour a ``LEAF`` note. In small-star a centre that got as many notes as
its degree knows its whole component is that star, and sends itself ``DONE``; at the next
large-star it emits the labels of its leaves and itself and drops out. Pairs and small
clusters leave after a round or two, so later rounds see only the long chains, and once
everything has converged the remaining unrolled rounds run on empty PCollections.

Convergence is checked inside the pipeline: after ``max_rounds`` rounds a last GroupByKey
emits the labels of stars confirmed in the last round and raises ``ComponentsNotConverged``
(naming ``max_rounds``) at the minimum of any component that is not yet a confirmed star.
Wrong components are never returned.

Counters (namespace ``components``): ``round_NN_nodes`` (nodes still active in round NN),
``components`` and ``nodes_labelled``; the distribution ``converged_round`` (the round in which
each component was confirmed) has as its max the number of rounds the graph needed.
``rounds_used(result)`` reads it from a finished pipeline.

Memory: one GroupByKey value list holds one node's neighbourhood. At the end a component's
minimum holds its whole component (that is the star), so per-key memory is bounded by the
largest cluster, never by the graph.
"""
from __future__ import annotations

from typing import Any, Hashable, Iterable, Tuple

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.metrics.metric import MetricsFilter

NAMESPACE = "components"
DEFAULT_MAX_ROUNDS = 32

# Notes travel as the value of a (node, value) record next to neighbour ids; a neighbour is a
# node id (str), a note is a tuple, so the two never mix up.
LEAF = (0,)        # to my only neighbour, which is smaller than me
CENTRE = 1         # (CENTRE, degree): to myself, when all my neighbours are larger than me
DONE = (2,)        # to myself: my component is the star of me and my neighbours
SELF_LOOP = (3,)   # from an edge (u, u): u is a node even if no other edge names it

Node = Hashable
Record = tuple  # (key node, neighbour id or note) for the next GroupByKey
Label = tuple   # (node, component id)


class ComponentsNotConverged(RuntimeError):
    """Some component was not a confirmed star after ``max_rounds`` rounds."""


def edge_records(edge: tuple[Node, Node]) -> list[Record]:
    """The first large-star's input for one edge: both directions, or a note for a self-loop."""
    u, v = edge
    if u == v:
        return [(u, SELF_LOOP)]
    return [(u, v), (v, u)]


def _split(values: Iterable) -> tuple[set, list[tuple]]:
    """Distinct neighbour ids and the notes in one node's grouped values."""
    neighbours, notes = set(), []
    for value in values:
        if type(value) is tuple:
            notes.append(value)
        else:
            neighbours.add(value)
    return neighbours, notes


def large_star(node: Node, values: Iterable, final_round: int | None = None
               ) -> tuple[list[Record], list[Label]]:
    """One node's large-star step: (records keyed for small-star, labels of finished nodes).

    ``values`` are all neighbours of ``node`` (both directions) and its notes. With
    ``final_round`` set (the check after the last round) nothing is relinked: confirmed stars
    are labelled and the minimum of any other component raises ComponentsNotConverged.
    """
    neighbours, notes = _split(values)
    neighbours.discard(node)
    if DONE in notes:  # confirmed last small-star: my neighbours are my leaves
        return [], [(node, node)] + [(leaf, node) for leaf in neighbours]
    if not neighbours:  # only self-loops name me: a component of one node
        return [], ([(node, node)] if SELF_LOOP in notes else [])
    smallest = min(neighbours)
    if final_round is not None:
        if node < smallest:
            raise ComponentsNotConverged(
                f"connected components did not converge in max_rounds={final_round}: the "
                f"component of {node!r} is not yet a star; raise max_rounds")
        return [], []
    if node < smallest:  # a centre: link all neighbours to me, and count my leaves
        records = [(v, node) for v in neighbours]
        records.append((node, (CENTRE, len(neighbours))))
        return records, []
    records = [(v, smallest) for v in neighbours if v > node]
    if len(neighbours) == 1:  # a leaf of `smallest`
        records.append((smallest, LEAF))
    return records, []


def small_star(node: Node, values: Iterable) -> list[Record]:
    """One node's small-star step: records keyed for the next large-star (both directions).

    ``values`` are the neighbours smaller than ``node`` (large-star keys each edge by its
    larger end) and the notes sent during large-star.
    """
    neighbours, notes = _split(values)
    degree = next((note[1] for note in notes if note[0] == CENTRE), None)
    if degree is not None and sum(note == LEAF for note in notes) == degree:
        return [(node, DONE)]  # every neighbour is a leaf of mine alone: a finished star
    if not neighbours:
        return []
    neighbours.add(node)
    smallest = min(neighbours)
    records = []
    for v in neighbours:
        if v != smallest:
            records.append((v, smallest))
            records.append((smallest, v))
    return records


def _group(records: Iterable[Record]) -> dict:
    groups: dict = {}
    for key, value in records:
        groups.setdefault(key, []).append(value)
    return groups


def label_in_memory(edges: Iterable[tuple[Node, Node]], max_rounds: int = DEFAULT_MAX_ROUNDS
                    ) -> tuple[dict, int]:
    """The same rounds with a dict for GroupByKey: ({node: component}, rounds used).

    For tests of the per-key logic and for measuring round counts without Beam.
    """
    records = [r for edge in edges for r in edge_records(edge)]
    labels: dict = {}
    rounds_used = 0  # the last round that confirmed a component, as the Beam metric
    for round_index in range(1, max_rounds + 1):
        after_large = []
        for node, values in _group(records).items():
            out, done = large_star(node, values)
            after_large.extend(out)
            labels.update(done)
            if done and round_index == 1:
                rounds_used = 1
        records = []
        for node, values in _group(after_large).items():
            out = small_star(node, values)
            records.extend(out)
            if out and out[0][1] == DONE:
                rounds_used = round_index
    for node, values in _group(records).items():
        labels.update(large_star(node, values, final_round=max_rounds)[1])
    return labels, rounds_used


# Declared so Beam does not infer a narrower record type from one return statement.
_RECORD_TYPE = Tuple[Any, Any]


@beam.typehints.with_output_types(_RECORD_TYPE)
class _LargeStar(beam.DoFn):
    def __init__(self, round_index: int | None, final_round: int | None = None):
        self.round_index = round_index
        self.final_round = final_round
        name = "final_nodes" if round_index is None else f"round_{round_index:02d}_nodes"
        self.active = Metrics.counter(NAMESPACE, name)
        self.labelled = Metrics.counter(NAMESPACE, "nodes_labelled")
        self.components = Metrics.counter(NAMESPACE, "components")
        self.converged_round = Metrics.distribution(NAMESPACE, "converged_round")

    def process(self, item):
        node, values = item
        self.active.inc()
        records, labels = large_star(node, values, self.final_round)
        yield from records
        if labels:
            self.labelled.inc(len(labels))
            if self.round_index == 1:  # only self-loop singletons finish in round 1
                self.components.inc()
                self.converged_round.update(1)
            for label in labels:
                yield beam.pvalue.TaggedOutput("labels", label)


@beam.typehints.with_output_types(_RECORD_TYPE)
class _SmallStar(beam.DoFn):
    def __init__(self, round_index: int):
        self.round_index = round_index
        self.components = Metrics.counter(NAMESPACE, "components")
        self.converged_round = Metrics.distribution(NAMESPACE, "converged_round")

    def process(self, item):
        node, values = item
        records = small_star(node, values)
        if records and records[0][1] == DONE:
            self.components.inc()
            self.converged_round.update(self.round_index)
        return records


class _Round(beam.PTransform):
    """One large-star + small-star round: records -> (records for the next round, labels)."""

    def __init__(self, round_index: int):
        super().__init__()
        self.round_index = round_index

    def expand(self, records):
        relinked, labels = (
            records
            | "GroupNeighbours" >> beam.GroupByKey()
            | "LargeStar" >> beam.ParDo(_LargeStar(self.round_index)).with_outputs(
                "labels", main="records"))
        return (relinked
                | "GroupSmaller" >> beam.GroupByKey()
                | "SmallStar" >> beam.ParDo(_SmallStar(self.round_index))), labels


class ConnectedComponents(beam.PTransform):
    """Edges ``(u, v)`` -> ``(node, component)``, component = the smallest node id in it.

    Nodes are str (bytes or int work too, but do not mix types). Self-loops and duplicate edges
    are fine. Raises ComponentsNotConverged while the pipeline runs if ``max_rounds`` rounds
    were not enough; ``max_rounds`` GroupByKey pairs are unrolled at construction time.
    """

    def __init__(self, max_rounds: int = DEFAULT_MAX_ROUNDS, label: str | None = None):
        super().__init__(label)
        if max_rounds < 1:
            raise ValueError(f"max_rounds must be at least 1, got {max_rounds}")
        self.max_rounds = max_rounds

    def expand(self, edges):
        records = edges | "BothDirections" >> beam.FlatMap(edge_records).with_output_types(
            _RECORD_TYPE)
        all_labels = []
        for round_index in range(1, self.max_rounds + 1):
            records, labels = records | f"Round{round_index:02d}" >> _Round(round_index)
            all_labels.append(labels)
        final_labels = (
            records
            | "CheckConverged/Group" >> beam.GroupByKey()
            | "CheckConverged/Label" >> beam.ParDo(
                _LargeStar(None, final_round=self.max_rounds)).with_outputs(
                    "labels", main="relinked"))["labels"]  # the check relinks nothing
        all_labels.append(final_labels)
        return tuple(all_labels) | "AllLabels" >> beam.Flatten()


def rounds_used(result) -> int:
    """Rounds the graph needed, from a finished pipeline's metrics (0 for an empty graph)."""
    query = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE)
                                   .with_name("converged_round"))
    maxima = [d.committed.max for d in query["distributions"] if d.committed]
    return max(maxima, default=0)
