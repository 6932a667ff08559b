import numpy as np
import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from fimpack.config import NearDedupConfig
from fimpack.dedup.minhash import jaccard, shingle_hashes, signature
from fimpack.dedup.near import (FileSignatures, LSHClusters, RepoSignatures, band_keys,
                                bucket_pairs)

from conftest import STDLIB

WORDS = [f"name{i}" for i in range(3000)]


def window(start, n=1000):
    return " ".join(WORDS[start:start + n])


def test_default_bands_are_the_optimum_for_0_7():
    bands, rows = NearDedupConfig().band_params()
    assert (bands, rows) == (25, 10)
    assert NearDedupConfig(bands=16, rows=16).band_params() == (16, 16)


def test_band_keys_agree_exactly_when_bands_agree():
    a = signature(window(0))
    b = a.copy()
    b[:10] += 1  # only band 0 differs
    ka, kb = band_keys(a, 25, 10), band_keys(b, 25, 10)
    assert ka[0] != kb[0] and ka[1:] == kb[1:]
    assert band_keys(signature(""), 25, 10) == []


def test_bucket_pairs_verify_and_cap():
    sigs = {k: signature(window(s)) for k, s in [("a", 0), ("b", 100), ("c", 2000)]}
    pairs = bucket_pairs(list(sigs.items()), 0.7, True, 100)
    assert pairs == [("a", "b")]
    assert len(bucket_pairs(list(sigs.items()), 0.7, False, 100)) == 3
    many = [(f"k{i:03d}", sigs["a"]) for i in range(100)]
    star = bucket_pairs(many, 0.7, True, max_pairs=10)
    assert len(star) == 99 and all(a == "k000" for a, _ in star)


def test_chain_only_transitivity_connects():
    texts = {"a": window(0), "b": window(100), "c": window(200), "z": window(1800)}
    sh = {k: shingle_hashes(t) for k, t in texts.items()}
    assert jaccard(sh["a"], sh["b"]) > 0.75 and jaccard(sh["b"], sh["c"]) > 0.75
    assert jaccard(sh["a"], sh["c"]) < 0.7  # a and c are not duplicates of each other
    cfg = NearDedupConfig()
    with TestPipeline(runner="FnApiRunner") as p:
        got = (p | beam.Create(sorted(texts.items()))
               | FileSignatures(cfg) | LSHClusters(cfg))
        assert_that(got, equal_to([("a", "a", True), ("b", "a", False), ("c", "a", False)]))


def test_real_near_duplicates_cluster_and_keeper_is_deterministic():
    """Real files with a few lines edited cluster with their originals; others do not."""
    docs = {}
    for name in ("textwrap.py", "heapq.py", "bisect.py", "colorsys.py"):
        text = (STDLIB / name).read_text()
        lines = text.splitlines(keepends=True)
        docs[f"orig/{name}"] = text
        docs[f"fork/{name}"] = "".join(lines[:5] + ["# patched\n"] + lines[5:-3])
    cfg = NearDedupConfig()
    expected = []
    for name in ("textwrap.py", "heapq.py", "bisect.py", "colorsys.py"):
        expected += [(f"fork/{name}", f"fork/{name}", True), (f"orig/{name}", f"fork/{name}", False)]
    for order in (sorted(docs.items()), sorted(docs.items(), reverse=True)):
        with TestPipeline(runner="FnApiRunner") as p:
            got = p | beam.Create(order) | FileSignatures(cfg) | LSHClusters(cfg)
            assert_that(got, equal_to(expected))


def test_repo_signature_is_union_of_files():
    files = [("r", (STDLIB / "json" / n).read_text()) for n in ("decoder.py", "encoder.py")]
    union = np.union1d(shingle_hashes(files[0][1]), shingle_hashes(files[1][1]))
    from fimpack.dedup.minhash import oph_signature
    expected = oph_signature(union)
    with TestPipeline(runner="FnApiRunner") as p:
        got = p | beam.Create(files) | RepoSignatures(NearDedupConfig())
        assert_that(got | beam.MapTuple(lambda r, s: (r, s.tolist())),
                    equal_to([("r", expected.tolist())]))
