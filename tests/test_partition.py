"""Graph partitioning of a repository's files into examples: every method keeps every file
once, within capacity, in dependency order; the weighted methods keep more edge weight inside
examples than single linkage on real repositories."""
import pytest
from hypothesis import given, settings, strategies as st

from fimpack.config import PARTITIONS
from fimpack.packing.graph import order_repository
from fimpack.packing.partition import edge_weights, kept_weight, partition
from fimpack.packing.stages import pack_repository
from fimpack.records import SourceFile

from conftest import STDLIB


def stdlib_repo(package: str) -> list[SourceFile]:
    return [SourceFile(package, str(p.relative_to(STDLIB)), "python", p.read_text())
            for p in sorted((STDLIB / package).rglob("*.py")) if "test" not in p.parts]


@st.composite
def graphs(draw):
    n = draw(st.integers(1, 25))
    paths = [f"f{i:02d}.py" for i in range(n)]
    sizes = {p: draw(st.integers(1, 60)) for p in paths}
    pairs = draw(st.lists(st.tuples(st.sampled_from(paths), st.sampled_from(paths)),
                          max_size=60))
    weights = {pair: draw(st.floats(0.1, 5.0)) for pair in pairs}
    return paths, sizes, weights, draw(st.integers(60, 150))


@settings(max_examples=150, deadline=None)
@given(graphs(), st.sampled_from(PARTITIONS))
def test_every_file_once_within_capacity_in_order(graph, method):
    paths, sizes, weights, capacity = graph
    groups = partition(paths, sizes, weights, capacity, method)
    flat = [p for g in groups for p in g]
    assert sorted(flat) == sorted(paths)  # each file exactly once
    assert all(sum(sizes[p] for p in g) <= capacity for g in groups)
    order = {p: i for i, p in enumerate(paths)}
    assert all(g == sorted(g, key=order.get) for g in groups)
    assert [g[0] for g in groups] == sorted((g[0] for g in groups), key=order.get)
    assert groups == partition(paths, sizes, weights, capacity, method)  # deterministic


@settings(max_examples=100, deadline=None)
@given(graphs())
def test_refinement_and_joining_never_lose_weight(graph):
    paths, sizes, weights, capacity = graph
    density = kept_weight(partition(paths, sizes, weights, capacity, "density"), weights)
    refined = kept_weight(partition(paths, sizes, weights, capacity, "refined"), weights)
    assert refined >= density - 1e-9
    # the repository method joins refined's groups whole: it keeps at least as much
    whole = partition(paths, sizes, weights, capacity, "repository")
    assert kept_weight(whole, weights) >= refined - 1e-9


def test_density_keeps_a_hub_with_its_importers():
    # a hub imported by three files and a loosely linked pair of small files: single linkage
    # joins the small pair first and leaves an importer out; density keeps the heavier edges
    sizes = {"a.py": 10, "b.py": 10, "hub.py": 40, "x.py": 15, "y.py": 15, "z.py": 15}
    weights = {("a.py", "b.py"): 0.2, ("x.py", "hub.py"): 3.0, ("y.py", "hub.py"): 3.0,
               ("z.py", "hub.py"): 3.0, ("a.py", "hub.py"): 0.2, ("b.py", "hub.py"): 0.2}
    paths = ["hub.py", "a.py", "b.py", "x.py", "y.py", "z.py"]
    greedy = partition(paths, sizes, weights, 85, "greedy")
    density = partition(paths, sizes, weights, 85, "density")
    assert ["hub.py", "x.py", "y.py", "z.py"] in density
    assert kept_weight(density, weights) > kept_weight(greedy, weights)


@pytest.mark.parametrize("package", ["email", "asyncio"])
def test_weighted_methods_keep_more_weight_on_real_repositories(package, tokenizer):
    files = stdlib_repo(package)
    graph = order_repository(files)
    sizes = {f.path: len(tokenizer.encode_text(f.content)) + 8 for f in files}
    kept = {}
    for method in PARTITIONS:
        weights = edge_weights(graph.importance, graph.test_links, method)
        groups = partition(graph.order, {p: n for p, n in sizes.items() if n < 8191},
                           weights, 8191, method)
        kept[method] = kept_weight(groups, edge_weights(graph.importance, [], "density"))
    assert kept["density"] > kept["greedy"] and kept["refined"] >= kept["density"]


def test_a_repository_packs_with_every_method(tokenizer):
    files = stdlib_repo("json")
    by_method = {}
    for method in PARTITIONS:
        examples, drops = pack_repository("json", files, tokenizer, seed=0, fim_rate=0.0,
                                          seq_len=1024, val_fraction=0.0, partition=method)
        assert not drops and all(len(ids) <= 1024 for _, ids in examples)
        paths = sorted({(f.path, f.part) for ex, _ in examples for f in ex.files})
        by_method[method] = [[f.path for f in ex.files] for ex, _ in examples]
        assert {p for p, _ in paths} == {f.path for f in files}  # every file, once per part
        assert len(paths) == sum(len(ex.files) for ex, _ in examples)
    graph = order_repository(files)
    pos = {p: i for i, p in enumerate(graph.order)}
    for groups in by_method.values():  # inside an example, the dependency order holds
        assert all([pos[p] for p in g] == sorted(pos[p] for p in g) for g in groups)


@settings(max_examples=150, deadline=None)
@given(graphs(), st.lists(st.tuples(st.integers(0, 24), st.integers(0, 24)), max_size=10))
def test_best_never_holds_fewer_edges_in_order_than_greedy_or_refined(graph, links):
    """``best``: greedy's or refined's groups per repository, whichever holds more import
    edges with the dependency earlier in the group (test links weigh but do not count)."""
    from fimpack.packing.partition import in_order

    paths, sizes, importance, capacity = graph
    test_links = [(paths[a % len(paths)], paths[b % len(paths)]) for a, b in links]
    pos = {p: i for i, p in enumerate(paths)}
    kept = {m: in_order(partition(paths, sizes, edge_weights(importance, test_links, m),
                                  capacity, m, importance), importance, pos)
            for m in ("greedy", "refined", "best")}
    assert kept["best"] >= max(kept["greedy"], kept["refined"])
    best = partition(paths, sizes, edge_weights(importance, test_links, "best"), capacity,
                     "best", importance)
    greedy = partition(paths, sizes, importance, capacity, "greedy")
    refined = partition(paths, sizes, edge_weights(importance, test_links, "refined"),
                        capacity, "refined")
    assert best in (greedy, refined)


def test_best_takes_greedy_where_it_keeps_more_edges():
    # a hub imported by one large file heavily and by two small ones lightly: refined puts
    # the heavy pair together (more weight, one edge); greedy, smallest pairs first, the hub
    # with both small importers (two edges); best takes greedy's groups
    from fimpack.packing.partition import in_order

    sizes = {"hub.py": 20, "a.py": 20, "b.py": 20, "big.py": 30}
    importance = {("big.py", "hub.py"): 3.0, ("a.py", "hub.py"): 1.0, ("b.py", "hub.py"): 0.25}
    paths = ["hub.py", "a.py", "b.py", "big.py"]
    pos = {p: i for i, p in enumerate(paths)}
    got = {m: partition(paths, sizes, importance, 60, m, importance)
           for m in ("greedy", "refined", "best")}
    assert got["refined"] == [["hub.py", "big.py"], ["a.py"], ["b.py"]]
    assert got["greedy"] == [["hub.py", "a.py", "b.py"], ["big.py"]]
    assert in_order(got["greedy"], importance, pos) == 2
    assert in_order(got["refined"], importance, pos) == 1
    assert got["best"] == got["greedy"]
    assert kept_weight(got["refined"], importance) > kept_weight(got["best"], importance)
