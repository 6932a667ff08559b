"""MinHash-LSH near-deduplication as Beam stages, at file and repository level.

    (key, signature) -> band keys -> GroupByKey -> candidate pairs (verified) -> distinct
                     -> ConnectedComponents (distributed rounds) -> (key, cluster, kept)

Bands x rows come from datasketch's false-positive/false-negative optimum for the threshold
(25 x 10 for 0.7 and 256 permutations), unless given. A bucket of m members yields its pairs
whose estimated Jaccard (signature agreement) reaches the threshold; a bucket larger than
``max_bucket_pairs`` allows links each member to the bucket's smallest key only, so one
popular bucket cannot produce m^2 pairs. The keeper of a cluster is its smallest key, which
is also the component id: deterministic, whatever the runner.

Repository level: a repository's signature is the element-wise minimum of its files'
one-permutation bins (the signature of the union of their shingles), combined with
``CombinePerKey`` -- no worker ever holds a whole repository's text. This is DeepSeek-Coder's
"concatenate the repository and near-dedup it as one sample", minus the few shingles that
would straddle two files, and independent of file order.
"""
from __future__ import annotations

import itertools

import apache_beam as beam
import numpy as np
import xxhash

from fimpack.config import NearDedupConfig  # noqa: F401  (re-exported)
from fimpack.dedup import minhash
from fimpack.dedup.components import ConnectedComponents


def band_keys(sig: np.ndarray, bands: int, rows: int) -> list[bytes]:
    """One short key per band: the band's index and its rows, hashed to 16 bytes."""
    if (sig == minhash.EMPTY).all():
        return []  # a document without a single token joins no bucket
    return [xxhash.xxh128_digest(i.to_bytes(2, "little") + sig[i * rows:(i + 1) * rows].tobytes())
            for i in range(bands)]


def bucket_pairs(members: list[tuple[str, np.ndarray]], threshold: float, verify: bool,
                 max_pairs: int) -> list[tuple[str, str]]:
    """Candidate duplicate pairs (smaller key first) from one LSH bucket."""
    members = sorted({k: s for k, s in members}.items())
    if len(members) < 2:
        return []
    if len(members) * (len(members) - 1) // 2 <= max_pairs:
        candidates = itertools.combinations(members, 2)
    else:
        candidates = ((members[0], m) for m in members[1:])
    return [(a, b) for (a, sa), (b, sb) in candidates
            if not verify or minhash.estimate_jaccard(sa, sb) >= threshold]


class LSHClusters(beam.PTransform):
    """(key, signature) -> (key, cluster id, kept) for every key in a cluster of size >= 2."""

    def __init__(self, config: NearDedupConfig):
        super().__init__()
        self.config = config

    def expand(self, signatures):
        cfg = self.config
        bands, rows = cfg.band_params()
        pairs = (
            signatures
            | "Bands" >> beam.FlatMap(
                lambda ks: [(b, (ks[0], ks[1])) for b in band_keys(ks[1], bands, rows)])
            | "GroupByBand" >> beam.GroupByKey()
            | "Pairs" >> beam.FlatMap(
                lambda kv: bucket_pairs(list(kv[1]), cfg.threshold, cfg.verify,
                                        cfg.max_bucket_pairs))
            | "DistinctPairs" >> beam.Distinct())
        return (pairs
                | "Components" >> ConnectedComponents()
                | "Keeper" >> beam.Map(lambda nc: (nc[0], nc[1], nc[0] == nc[1])))


class FileSignatures(beam.PTransform):
    """(key, text) -> (key, signature)."""

    def __init__(self, config: NearDedupConfig):
        super().__init__()
        self.config = config

    def expand(self, texts):
        cfg = self.config
        return texts | "Signature" >> beam.Map(
            lambda kt: (kt[0], minhash.signature(kt[1], num_perm=cfg.num_perm, ngram=cfg.ngram,
                                                  seed=cfg.seed)))


class _MinBins(beam.CombineFn):
    def __init__(self, num_perm: int):
        self.num_perm = num_perm

    def create_accumulator(self):
        return np.full(self.num_perm, minhash.EMPTY, dtype=np.uint32)

    def add_input(self, acc, bins):
        return np.minimum(acc, bins)

    def merge_accumulators(self, accs):
        return np.minimum.reduce(list(accs))

    def extract_output(self, acc):
        return acc


class RepoSignatures(beam.PTransform):
    """(repo, text of one file) -> (repo, signature of the union of its files' shingles)."""

    def __init__(self, config: NearDedupConfig):
        super().__init__()
        self.config = config

    def expand(self, files):
        cfg = self.config
        return (files
                | "FileBins" >> beam.Map(
                    lambda rt: (rt[0], minhash.oph_bins(
                        minhash.shingle_hashes(rt[1], cfg.ngram, cfg.seed, unique=False),
                        cfg.num_perm,
                        cfg.seed)))
                | "UnionBins" >> beam.CombinePerKey(_MinBins(cfg.num_perm))
                | "Densify" >> beam.MapTuple(lambda repo, bins: (repo,
                                                                 minhash.densify(bins, cfg.seed))))
