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
about 3 rounds, and every node of a path stays active until the last of them (its records do
not shrink), so rounds enough for the longest chain would cost every build two stages a round
(see Finishing).

Retiring finished components (why converged rounds are cheap). A finished component is a star
{c} ∪ leaves with c its minimum. Each node checks its own side during large-star: a centre
(all neighbours larger) sends itself ``(CENTRE, degree)``, a leaf (exactly one neighbour,
smaller) sends that neighbour a ``LEAF`` note. In small-star a centre that got as many notes as
its degree knows its whole component is that star, and sends itself ``DONE``; at the next
large-star it emits the labels of its leaves and itself and drops out. Pairs and small
clusters leave after a round or two, so later rounds see only the long chains, and once
everything has converged the remaining unrolled rounds run on empty PCollections.

Finishing (why the graph has a fixed, small number of stages). Each round is two GroupByKeys,
i.e. two fused stages that FnApiRunner runs one after another whatever their size, and a
static Beam graph cannot stop unrolling when the data has converged. So only ``rounds``
(``DEFAULT_ROUNDS`` = 4) star rounds are unrolled, enough for the pairs, stars and small
clusters that make up near-duplicate graphs (a synthetic graph of 149k nodes in clusters of
2-8: 20% of its nodes still active after 3 rounds, 0.06% after 4, none after 5). What is left
after the last round, the records of the components that are not yet confirmed stars (long
chains; confirmed stars' ``DONE`` records too), goes to one union-find, a CombineFn
(``UnionFind``) under one key: each worker folds its share into a {node: parent} forest before
the shuffle (Beam lifts the combiner), one accumulator merges them, and every node is labelled
with its component's minimum. The union-find holds nodes, not edges, and only those of
unfinished components; it is the single-process step that BigCode and datatrove run over the
whole graph, here over the few components the rounds did not finish (the whole graph only
when ``rounds=0``). The labels do not depend on the number of rounds, the runner, the worker
count or the edge order (a component's label is its minimum, whoever computes it). This
replaces 32 unrolled rounds and a convergence check (66 fused stages of the build, most of
them running on empty PCollections) with 8 stages and the union-find's one.

Memory: one GroupByKey value list holds one node's neighbourhood. At the end a component's
minimum holds its whole component (that is the star), so per-key memory is bounded by the
largest cluster; the union-find's accumulator by the nodes of the components still unfinished
after ``rounds`` rounds (about 60 bytes a node in a dict).
"""
from __future__ import annotations

from typing import Any, Hashable, Iterable, Tuple

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.metrics.metric import MetricsFilter

NAMESPACE = "components"
DEFAULT_ROUNDS = 4

# Notes travel as the value of a (node, value) record next to neighbour ids; a neighbour is a
# node id (str), a note is a tuple, so the two never mix up.
LEAF = (0,)        # to my only neighbour, which is smaller than me
CENTRE = 1         # (CENTRE, degree): to myself, when all my neighbours are larger than me
DONE = (2,)        # to myself: my component is the star of me and my neighbours
SELF_LOOP = (3,)   # from an edge (u, u): u is a node even if no other edge names it

Node = Hashable
Record = tuple  # (key node, neighbour id or note) for the next GroupByKey
Label = tuple   # (node, component id)


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


def large_star(node: Node, values: Iterable) -> tuple[list[Record], list[Label]]:
    """One node's large-star step: (records keyed for small-star, labels of finished nodes).

    ``values`` are all neighbours of ``node`` (both directions) and its notes.
    """
    neighbours, notes = _split(values)
    neighbours.discard(node)
    if DONE in notes:  # confirmed last small-star: my neighbours are my leaves
        return [], [(node, node)] + [(leaf, node) for leaf in neighbours]
    if not neighbours:  # only self-loops name me: a component of one node
        return [], ([(node, node)] if SELF_LOOP in notes else [])
    smallest = min(neighbours)
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


class UnionFind(beam.CombineFn):
    """Records ``(node, neighbour or note)`` -> ({node: component minimum}, confirmed stars'
    centres). The accumulator is ``({node: parent}, {centres})`` with every parent smaller than
    its child, so each root is its component's minimum whatever the order of the unions."""

    def create_accumulator(self):
        return {}, set()

    @staticmethod
    def _root(parent: dict, node):
        root = node
        while parent[root] != root:
            root = parent[root]
        while parent[node] != root:  # path compression
            parent[node], node = root, parent[node]
        return root

    def _union(self, parent: dict, u, v) -> None:
        parent.setdefault(u, u)
        parent.setdefault(v, v)
        ru, rv = self._root(parent, u), self._root(parent, v)
        if ru != rv:
            if rv < ru:
                ru, rv = rv, ru
            parent[rv] = ru

    def add_input(self, acc, record):
        parent, done = acc
        node, value = record
        if type(value) is tuple:  # a note: the node exists (a self-loop, a confirmed centre)
            parent.setdefault(node, node)
            if value == DONE:
                done.add(node)
        elif value != node:
            self._union(parent, node, value)
        else:
            parent.setdefault(node, node)
        return acc

    def merge_accumulators(self, accs):
        accs = iter(accs)
        parent, done = next(accs)
        for other_parent, other_done in accs:
            for node, up in other_parent.items():
                self._union(parent, node, up)
            done |= other_done
        return parent, done

    def extract_output(self, acc):
        parent, done = acc
        return {node: self._root(parent, node) for node in parent}, done


def finish(records: Iterable[Record]) -> tuple[dict, set]:
    """The union-find over what is left after the rounds: ({node: component}, centres of the
    stars the last round confirmed)."""
    union_find = UnionFind()
    acc = union_find.create_accumulator()
    for record in records:
        union_find.add_input(acc, record)
    return union_find.extract_output(acc)


def label_in_memory(edges: Iterable[tuple[Node, Node]], rounds: int = DEFAULT_ROUNDS
                    ) -> tuple[dict, int]:
    """The same rounds and finish with a dict for GroupByKey: ({node: component}, rounds
    used: the last round that confirmed a component, ``rounds + 1`` if the union-find
    finished one that the rounds had not).

    For tests of the per-key logic and for measuring round counts without Beam (with
    ``rounds`` large, the star rounds a graph needs).
    """
    records = [r for edge in edges for r in edge_records(edge)]
    labels: dict = {}
    rounds_used = 0
    for round_index in range(1, rounds + 1):
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
    finished, done = finish(records)
    labels.update(finished)
    if set(finished.values()) - done:
        rounds_used = rounds + 1
    return labels, rounds_used


# Declared so Beam does not infer a narrower record type from one return statement.
_RECORD_TYPE = Tuple[Any, Any]


@beam.typehints.with_output_types(_RECORD_TYPE)
class _LargeStar(beam.DoFn):
    def __init__(self, round_index: int):
        self.round_index = round_index
        self.active = Metrics.counter(NAMESPACE, f"round_{round_index:02d}_nodes")
        self.labelled = Metrics.counter(NAMESPACE, "nodes_labelled")
        self.components = Metrics.counter(NAMESPACE, "components")
        self.converged_round = Metrics.distribution(NAMESPACE, "converged_round")

    def process(self, item):
        node, values = item
        self.active.inc()
        records, labels = large_star(node, values)
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


@beam.typehints.with_output_types(_RECORD_TYPE)
class _Labels(beam.DoFn):
    """The union-find's result -> one label per node (sorted: a deterministic order)."""

    def __init__(self, rounds: int):
        self.rounds = rounds
        self.nodes = Metrics.counter(NAMESPACE, "union_find_nodes")
        self.labelled = Metrics.counter(NAMESPACE, "nodes_labelled")
        self.components = Metrics.counter(NAMESPACE, "components")
        self.converged_round = Metrics.distribution(NAMESPACE, "converged_round")

    def process(self, item):
        _, (labels, done) = item
        self.nodes.inc(len(labels))
        self.labelled.inc(len(labels))
        for root in sorted(set(labels.values()) - done):  # stars confirmed last round counted
            self.components.inc()
            self.converged_round.update(self.rounds + 1)
        yield from sorted(labels.items())


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
    are fine. ``rounds`` large-star/small-star rounds are unrolled at construction time (two
    GroupByKeys each); the union-find ``UnionFind`` labels whatever they leave unfinished, so
    the labels are the same for every ``rounds`` >= 0, only the work is spread differently.
    """

    def __init__(self, rounds: int = DEFAULT_ROUNDS, label: str | None = None):
        super().__init__(label)
        if rounds < 0:
            raise ValueError(f"rounds must be at least 0, got {rounds}")
        self.rounds = rounds

    def expand(self, edges):
        records = edges | "BothDirections" >> beam.FlatMap(edge_records).with_output_types(
            _RECORD_TYPE)
        all_labels = []
        for round_index in range(1, self.rounds + 1):
            records, labels = records | f"Round{round_index:02d}" >> _Round(round_index)
            all_labels.append(labels)
        all_labels.append(
            records
            | "Finish/OneKey" >> beam.Map(lambda record: (0, record)).with_output_types(
                Tuple[int, Any])
            | "Finish/UnionFind" >> beam.CombinePerKey(UnionFind())
            | "Finish/Labels" >> beam.ParDo(_Labels(self.rounds)))
        return tuple(all_labels) | "AllLabels" >> beam.Flatten()

def rounds_used(result) -> int:
    """Rounds the graph needed, from a finished pipeline's metrics (0 for an empty graph)."""
    query = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE)
                                   .with_name("converged_round"))
    maxima = [d.committed.max for d in query["distributions"] if d.committed]
    return max(maxima, default=0)
