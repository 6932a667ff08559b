"""Connected components of the duplicate graph: per-key large-star/small-star logic on its own,
the same rounds in memory against networkx (hypothesis), and the Beam transform on FnApiRunner."""
from __future__ import annotations

import random

import apache_beam as beam
import networkx as nx
import pytest
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.testing.util import assert_that, equal_to
from hypothesis import given, settings
from hypothesis import strategies as st

from fimpack.dedup.components import (CENTRE, DEFAULT_ROUNDS, DONE, LEAF, SELF_LOOP,
                                      ConnectedComponents, UnionFind, edge_records, finish,
                                      label_in_memory, large_star, rounds_used, small_star)


def expected_labels(edges) -> dict:
    """networkx's components, each labelled by its smallest node id."""
    graph = nx.Graph()
    graph.add_edges_from(edges)  # self-loops add their node
    return {node: min(c) for c in nx.connected_components(graph) for node in c}


def run_components(edges, expected, rounds=None) -> int:
    """Run ConnectedComponents on FnApiRunner, assert its output equals EXPECTED (a dict, so
    each node must come out exactly once); the rounds it used."""
    kwargs = {} if rounds is None else {"rounds": rounds}
    p = beam.Pipeline(runner=FnApiRunner())
    labels = p | beam.Create(edges) | ConnectedComponents(**kwargs)
    assert_that(labels, equal_to(sorted(expected.items())))
    result = p.run()
    result.wait_until_finish()
    return rounds_used(result)


def path(ids):
    return list(zip(ids, ids[1:]))


def shuffled(items, seed):
    items = list(items)
    random.Random(seed).shuffle(items)
    return items


# -- per-key logic -------------------------------------------------------------------------

def test_edge_records_both_directions_and_self_loop_note():
    assert edge_records(("a", "b")) == [("a", "b"), ("b", "a")]
    assert edge_records(("a", "a")) == [("a", SELF_LOOP)]


def test_large_star_links_larger_neighbours_to_the_minimum():
    records, labels = large_star("c", ["e", "a", "d", "a", "b"])
    assert labels == []
    assert sorted(records) == [("d", "a"), ("e", "a")]  # smaller neighbours are left alone


def test_large_star_centre_counts_its_degree_and_leaf_notes_its_neighbour():
    records, _ = large_star("a", ["c", "b", "c"])
    assert sorted(records, key=repr) == sorted([("b", "a"), ("c", "a"), ("a", (CENTRE, 2))],
                                                key=repr)
    records, _ = large_star("c", ["a", "a"])  # duplicate edge: still one neighbour
    assert records == [("a", LEAF)]


def test_small_star_links_smaller_neighbours_and_itself_to_the_minimum():
    records = small_star("d", ["b", "c", "a"])
    assert sorted(records) == sorted([("b", "a"), ("a", "b"), ("c", "a"), ("a", "c"),
                                      ("d", "a"), ("a", "d")])


def test_star_is_confirmed_only_when_every_neighbour_is_a_leaf():
    assert small_star("a", [(CENTRE, 2), LEAF, LEAF]) == [("a", DONE)]
    assert small_star("a", [(CENTRE, 3), LEAF, LEAF]) == []  # one neighbour has others
    assert small_star("a", [LEAF]) == []  # leaf notes to a node that is not a centre


def test_done_centre_labels_its_star_and_leaves():
    records, labels = large_star("a", ["b", "c", DONE])
    assert records == [] and sorted(labels) == [("a", "a"), ("b", "a"), ("c", "a")]


def test_self_loop_alone_is_a_singleton_and_ignored_next_to_edges():
    assert large_star("s", [SELF_LOOP, SELF_LOOP]) == ([], [("s", "s")])
    records, labels = large_star("s", [SELF_LOOP, "t"])
    assert labels == [] and (("t", "s") in records)


def test_union_find_labels_by_minimum_whatever_the_order_and_merge():
    records = [("c", "d"), ("d", "c"), ("b", "c"), ("x", SELF_LOOP), ("e", DONE), ("f", "e"),
               ("e", "f")]
    expected = {"b": "b", "c": "b", "d": "b", "x": "x", "e": "e", "f": "e"}
    assert finish(records) == (expected, {"e"})
    assert finish(reversed(records)) == (expected, {"e"})
    # split over three partial accumulators (a worker's share each), merged in either order
    fn = UnionFind()
    for order in ([0, 1, 2], [2, 0, 1]):
        accs = [fn.create_accumulator() for _ in range(3)]
        for i, record in enumerate(records):
            fn.add_input(accs[i % 3], record)
        assert fn.extract_output(fn.merge_accumulators([accs[i] for i in order])) == (
            expected, {"e"})


# -- the rounds in memory, against networkx ------------------------------------------------

node_ids = st.integers(0, 40).map(lambda i: f"n{i:02d}")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(node_ids, node_ids), max_size=80))
def test_rounds_in_memory_match_networkx(edges):
    labels, used = label_in_memory(edges)
    assert labels == expected_labels(edges)
    # Every number of rounds gives the same labels: the union-find finishes what they leave.
    for rounds in (0, 1, 2, 64):
        assert label_in_memory(edges, rounds=rounds)[0] == labels
    # With rounds enough, the union-find has nothing to finish.
    assert label_in_memory(edges, rounds=64)[1] <= 64


@pytest.mark.parametrize("n, sorted_ids_rounds, shuffled_ids_rounds", [(1000, 11, 9)])
def test_rounds_on_paths(n, sorted_ids_rounds, shuffled_ids_rounds):
    """Round counts quoted in the module docstring (log-like growth with path length)."""
    ids = [f"{i:05d}" for i in range(n)]
    assert label_in_memory(path(ids), rounds=64)[1] == sorted_ids_rounds
    assert label_in_memory(path(shuffled(ids, 0)), rounds=64)[1] == shuffled_ids_rounds
    # with the default rounds, the union-find finishes the path
    assert label_in_memory(path(ids))[1] == DEFAULT_ROUNDS + 1


# -- the Beam transform --------------------------------------------------------------------

def mixed_graph(seed=0) -> list[tuple[str, str]]:
    """Isolated pairs, stars, a long path, a cycle, a random sparse graph, duplicate and
    reversed edges, self-loops alone and on connected nodes; ids shuffled, edges shuffled."""
    rng = random.Random(seed)
    edges = []
    edges += [(f"pair{i:03d}a", f"pair{i:03d}b") for i in range(40)]
    for s in range(5):
        centre, leaves = f"star{s}z", [f"star{s}leaf{j:02d}" for j in range(3 + 7 * s)]
        edges += [(centre, leaf) for leaf in leaves]  # centre is the largest id
    edges += path(shuffled([f"path{i:03d}" for i in range(300)], seed))
    cycle = shuffled([f"cyc{i:02d}" for i in range(60)], seed + 1)
    edges += path(cycle) + [(cycle[-1], cycle[0])]
    edges += [(f"rnd{rng.randrange(150):03d}", f"rnd{rng.randrange(150):03d}")
              for _ in range(120)]
    edges += [(v, u) for u, v in rng.sample(edges, 50)] + rng.sample(edges, 50)
    edges += [("solo", "solo"), ("solo", "solo"), ("pair000a", "pair000a")]
    rng.shuffle(edges)
    return edges


def test_beam_components_match_networkx_and_in_memory_rounds():
    edges = mixed_graph()
    expected = expected_labels(edges)
    assert expected["solo"] == "solo"  # a self-loop alone is a node of its own
    used = run_components(edges, expected)
    assert used == label_in_memory(edges)[1]


def test_chain_ends_join_only_through_transitivity():
    # "a-end" and "z-end" share no edge; only the chain between them joins them.
    middle = shuffled([f"m{i:03d}" for i in range(200)], 3)
    edges = shuffled(path(["z-end"] + middle + ["a-end"]), 4) + [("q", "r")]
    expected = {node: "a-end" for node in ["z-end", "a-end"] + middle}
    expected.update(q="q", r="q")
    used = run_components(edges, expected, rounds=12)
    assert used == label_in_memory(edges, rounds=12)[1]


@pytest.mark.parametrize("rounds", [0, 1, DEFAULT_ROUNDS, 20])
def test_long_chain_is_finished_by_the_union_find_with_any_rounds(rounds):
    """A 2,000-node path with sorted ids needs 12 star rounds; fewer leave it to the
    union-find, which labels it the same; the pairs beside it finish in the rounds."""
    ids = [f"{i:04d}" for i in range(2000)]
    pairs = [(f"p{i:03d}a", f"p{i:03d}b") for i in range(50)]
    edges = shuffled(path(ids) + pairs, 7)
    expected = {i: "0000" for i in ids}
    expected.update({node: a for a, b in pairs for node in (a, b)})
    needed = label_in_memory(edges, rounds=64)[1]
    assert needed == 12
    used = run_components(edges, expected, rounds=rounds)
    assert used == (needed if rounds >= needed else rounds + 1)


def test_fixed_stage_count_whatever_the_graph():
    """The unrolled rounds are the only stages: 2 GroupByKeys a round and the union-find's."""
    from apache_beam.runners.portability.fn_api_runner import fn_runner

    def stages(rounds):
        p = beam.Pipeline(runner=FnApiRunner())
        _ = p | beam.Create([("a", "b")]) | ConnectedComponents(rounds=rounds)
        return len(fn_runner.FnApiRunner().create_stages(p.to_runner_api())[1])

    assert stages(DEFAULT_ROUNDS + 1) - stages(DEFAULT_ROUNDS) == 2
    assert stages(DEFAULT_ROUNDS) <= 2 * DEFAULT_ROUNDS + 3


def test_empty_graph_and_bad_rounds():
    assert run_components([], {}, rounds=2) == 0
    assert run_components([], {}, rounds=0) == 0
    with pytest.raises(ValueError):
        ConnectedComponents(rounds=-1)


def test_same_labels_with_two_worker_processes():
    edges = mixed_graph(seed=5)
    options = beam.options.pipeline_options.PipelineOptions(
        direct_num_workers=2, direct_running_mode="multi_processing")
    with beam.Pipeline(runner=FnApiRunner(), options=options) as p:
        labels = p | beam.Create(edges) | ConnectedComponents(rounds=2)
        assert_that(labels, equal_to(sorted(expected_labels(edges).items())))
