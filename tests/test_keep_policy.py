"""--keep-policy: which copy of a near-duplicate cluster is kept (smallest key, a permissive
licence, or The Stack v3's stars > forks > permissive > earliest), shown in the clusters."""
import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from hypothesis import given, strategies as st

from fimpack.config import DedupConfig
from fimpack.dedup.near import choose_cluster_keeper, keeper_rank
from fimpack.dedup.stages import Dedup
from fimpack.records import SourceFile

from conftest import STDLIB

TEXT = (STDLIB / "colorsys.py").read_text()


def repo(name: str, license: str, **meta) -> list[SourceFile]:
    """A copy of the same two files (a fork)."""
    return [SourceFile(name, path, "python", TEXT + extra, license=license,
                       meta=tuple(sorted(meta.items())))
            for path, extra in (("colorsys.py", ""), ("util.py", "\nX = 1\n"))]


FORKS = (repo("a-fork", "GPL-3.0-only") + repo("b-fork", "MIT", stars=10, forks=3)
         + repo("c-fork", "GPL-3.0-only", stars=50, created_at="2019-01-01")
         + repo("d-fork", "MIT", stars=50, forks=1, created_at="2021-01-01"))


def check(policy: str, keeper: str, why: str):
    with TestPipeline() as p:
        out = p | beam.Create(FORKS) | Dedup(DedupConfig(file_exact=False, keep_policy=policy))
        kept, drops = out.items, out.drops | "Drops" >> beam.Flatten()
        clusters = out.tables["dedup/clusters"] | "Clusters" >> beam.Flatten()
        assert_that(kept | beam.Map(lambda f: f.repo) | beam.Distinct(), equal_to([keeper]),
                    label="kept")
        cluster = f"repo-near:{keeper}"
        assert_that(clusters | beam.Map(lambda m: (m.repo, m.cluster, m.kept, m.keep_policy)),
                    equal_to([(r, cluster, r == keeper, why)
                              for r in ("a-fork", "b-fork", "c-fork", "d-fork")]),
                    label="clusters")
        assert_that(drops | beam.Map(lambda d: (d.reason, d.detail)) | "D" >> beam.Distinct(),
                    equal_to([("near_duplicate_repo", keeper)]), label="drops")


def test_smallest_key_by_default():
    check("smallest", "a-fork", "smallest")


def test_permissive_keeps_a_copy_the_permissive_policy_allows():
    check("permissive", "b-fork", "permissive")


def test_stars_then_forks_then_permissive_then_earliest():
    check("stars", "d-fork", "stars")  # 50 stars each: d has more forks


def test_stars_without_metadata_falls_back_to_the_smallest_key():
    assert choose_cluster_keeper("stars", [("b", (True, None, None, None)),
                                           ("a", (False, None, None, None))]) == ("a", "smallest")
    # equal stars and forks: the permissive one, then the earliest
    assert choose_cluster_keeper("stars", [("a", (False, 5, 0, "2010")),
                                           ("b", (True, 5, 0, "2020")),
                                           ("c", (True, 5, 0, "2015"))]) == ("c", "stars")


@given(st.lists(st.tuples(st.text(min_size=1, max_size=4), st.booleans(),
                          st.none() | st.integers(0, 5), st.none() | st.integers(0, 3)),
                min_size=1, max_size=8, unique_by=lambda m: m[0]),
       st.sampled_from(["smallest", "permissive", "stars"]))
def test_one_keeper_whatever_the_order(members, policy):
    items = [(k, (p, s, f, None)) for k, p, s, f in members]
    keeper, _ = choose_cluster_keeper(policy, items)
    assert keeper in {k for k, _ in items}
    assert choose_cluster_keeper(policy, list(reversed(items)))[0] == keeper
    best = min(keeper_rank(policy, k, i) for k, i in items)
    assert keeper_rank(policy, keeper, dict(items)[keeper]) == best
    if policy == "permissive" and any(p for _, p, _, _ in members):
        assert dict(items)[keeper][0]
