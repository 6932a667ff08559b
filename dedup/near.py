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

from fimpack.config import KEEP_POLICIES, NearDedupConfig
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


# ---- the keeper of a near-duplicate cluster (``--keep-policy``) -----------------------------

DROP_ALL = "drop-all"  # --dedup-mode drop-all: no copy of a cluster is kept


def keeper_info(f) -> tuple:
    """What the keeper policies read of one file: (permissive, stars, forks, created_at).
    ``permissive``: a code file's licence is allowed by the permissive policy (documents
    carry none and count as allowed); the rest from a repository row's metadata (None when
    the input has none)."""
    from fimpack.dedup.licenses import PERMISSIVE, allowed
    from fimpack.records import CODE

    meta = dict(f.meta)
    return (f.source != CODE or allowed(f.license, PERMISSIVE), meta.get("stars"),
            meta.get("forks"), meta.get("created_at"))


def merge_info(a: tuple, b: tuple) -> tuple:
    """Two files' (or a repository's and a file's) keeper_info as one repository's: permissive
    when every file is, the most stars and forks seen, the earliest creation."""
    def pick(x, y, f):
        return y if x is None else x if y is None else f(x, y)

    return (a[0] and b[0], pick(a[1], b[1], max), pick(a[2], b[2], max),
            pick(a[3], b[3], min))


def keeper_rank(policy: str, key: str, info: tuple) -> tuple:
    """Sort key of a cluster member under POLICY (the smallest wins). ``smallest``: the key.
    ``permissive``: a member whose licence the permissive policy allows, then the key.
    ``stars`` (The Stack v3's rule): members with row metadata first, by most stars, then
    most forks, then a permissive licence, then the earliest creation, then the key; a
    cluster without metadata falls back to the smallest key."""
    permissive, stars, forks, created = info
    if policy == "permissive":
        return (not permissive, key)
    if policy == "stars":
        if stars is None:
            return (1, key)
        return (0, -stars, -(forks or 0), not permissive, created or "\uffff", key)
    return (key,)


def choose_cluster_keeper(policy: str, members: list[tuple[str, tuple]]) -> tuple[str, str]:
    """(keeper key, why) of a cluster's [(key, info)]: why is POLICY when it chose another
    member than the smallest key, else ``smallest``."""
    members = sorted(members)
    keeper = min(members, key=lambda m: keeper_rank(policy, m[0], m[1]))[0]
    return keeper, (policy if keeper != members[0][0] else "smallest")


class _MergeInfo(beam.CombineFn):
    def create_accumulator(self):
        return None

    def add_input(self, acc, info):
        return info if acc is None else merge_info(acc, info)

    def merge_accumulators(self, accs):
        out = None
        for a in accs:
            out = a if out is None else (out if a is None else merge_info(out, a))
        return out

    def extract_output(self, acc):
        return acc


class KeepPolicy(beam.PTransform):
    """(key, cluster, kept) from LSHClusters and (key, SourceFile) of every member ->
    (key, keeper, kept, why) with the keeper POLICY chooses; the cluster's id becomes its
    keeper's key (what a drop's detail names). ``smallest`` changes nothing; ``drop-all``
    (``--dedup-mode drop-all``) keeps no member (the id stays the smallest key)."""

    def __init__(self, policy: str):
        super().__init__()
        if policy not in KEEP_POLICIES + (DROP_ALL,):
            raise ValueError(f"unknown keep policy {policy!r}: one of {KEEP_POLICIES}")
        self.policy = policy

    def expand(self, pcolls):
        members, keyed = pcolls
        policy = self.policy
        if policy == DROP_ALL:
            return members | "DropAll" >> beam.MapTuple(
                lambda key, cluster, kept: (key, cluster, False, DROP_ALL))
        if policy == "smallest":
            return members | "Smallest" >> beam.MapTuple(
                lambda key, cluster, kept: (key, cluster, kept, "smallest"))
        info = (keyed
                | "KeeperInfo" >> beam.MapTuple(lambda k, f: (k, keeper_info(f)))
                | "RepoInfo" >> beam.CombinePerKey(_MergeInfo()))

        def by_cluster(item):
            key, grouped = item
            for cluster, _ in grouped["member"]:
                yield cluster, (key, next(iter(grouped["info"]), (True, None, None, None)))

        def choose(item):
            _, group = item
            group = list(group)
            keeper, why = choose_cluster_keeper(policy, group)
            for key, _ in group:
                yield key, keeper, key == keeper, why

        return ({"member": members | "ByKey" >> beam.MapTuple(lambda k, c, kept: (k, (c, kept))),
                 "info": info}
                | "JoinInfo" >> beam.CoGroupByKey()
                | "ByCluster" >> beam.FlatMap(by_cluster)
                | "GroupCluster" >> beam.GroupByKey()
                | "Choose" >> beam.FlatMap(choose))
