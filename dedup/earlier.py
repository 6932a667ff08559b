"""Builds that add to earlier builds: ``fimpack build --dedup-against PREV_OUT [PREV_OUT...]``.

Every build writes what its dedup kept to ``OUT/dedup/`` (sharded Parquet, listed in the
manifest's ``records``): ``dedup/signatures`` (each kept repository's MinHash signature, the
union of its code files' shingles, as repository-level near-dedup computes it) and
``dedup/hashes`` (the SHA-256 of each kept file's content, as exact dedup compares it). A later
build reads them back as PCollections (never into the driver) and drops, before its own
dedup, with reason ``duplicate_of_earlier_build``:

* every file of a repository whose signature meets an earlier build's kept repository in an
  LSH band and whose estimated Jaccard reaches the threshold (a near or exact copy of a
  repository already trained on); detail ``near duplicate of PREV_OUT:REPO``;
* every file whose content an earlier build kept; detail ``exact duplicate of
  PREV_OUT:REPO/PATH``.

The earlier build's copy is the keeper: what a build kept stays kept, so a new crawl adds only
what is new (datatrove #370). Several earlier builds: the first in the order given names the
keeper.
"""
from __future__ import annotations

import json
import os

import apache_beam as beam
import numpy as np
import pyarrow as pa

from fimpack.dedup import minhash
from fimpack.dedup.near import band_keys
from fimpack.filesystems import join, read_bytes
from fimpack.records import CODE, Drop

REASON = "duplicate_of_earlier_build"
SIGNATURES = "dedup/signatures"
HASHES = "dedup/hashes"
SIGNATURES_SCHEMA = pa.schema([("repo", pa.string()), ("signature", pa.binary())])
HASHES_SCHEMA = pa.schema([("sha256", pa.string()), ("repo", pa.string()),
                           ("path", pa.string())])


def earlier_record_paths(prev_out: str, name: str) -> list[str]:
    """The record shards NAME (``dedup/signatures``, ``dedup/hashes``) that PREV_OUT's
    manifest lists. A build without them (older than this feature) is an error, not a
    silent no-op."""
    manifest = json.loads(read_bytes(join(prev_out, "manifest.json")))
    entries = manifest.get("records", {}).get(name)
    if entries is None:
        raise ValueError(f"{prev_out}: its manifest lists no {name} records (built before "
                         "--dedup-against existed?); rebuild it")
    return [join(prev_out, *e["path"].split("/")) for e in entries]


def _read_rows(item):
    """(build, shard path) -> (build, row) for every row of the shard."""
    import io

    import pyarrow.parquet as pq

    build, path = item
    for row in pq.read_table(io.BytesIO(read_bytes(path))).to_pylist():
        yield build, row


def build_name(prev_out: str) -> str:
    return os.path.normpath(prev_out.rstrip("/"))


class ReadEarlier(beam.PTransform):
    """PREV_OUTS -> (signatures, hashes) of what those builds kept: (((order, build), repo),
    signature) and (sha256, (order, build, repo/path)) elements."""

    def __init__(self, prev_outs: tuple[str, ...]):
        super().__init__()
        self.prev_outs = tuple(prev_outs)

    def expand(self, pbegin):
        shards = {name: [(i, build_name(p), path) for i, p in enumerate(self.prev_outs)
                         for path in earlier_record_paths(p, name)]
                  for name in (SIGNATURES, HASHES)}
        sigs = (pbegin
                | "SignatureShards" >> beam.Create(
                    [((i, b), path) for i, b, path in shards[SIGNATURES]])
                | "ReadSignatures" >> beam.FlatMap(_read_rows)
                | "Signature" >> beam.MapTuple(
                    lambda build, row: ((build, row["repo"]),
                                        np.frombuffer(row["signature"], dtype=np.uint32))))
        hashes = (pbegin
                  | "HashShards" >> beam.Create(
                      [((i, b), path) for i, b, path in shards[HASHES]])
                  | "ReadHashes" >> beam.FlatMap(_read_rows)
                  | "Hash" >> beam.MapTuple(
                      lambda build, row: (row["sha256"],
                                          (build[0], build[1], f"{row['repo']}/{row['path']}"))))
        return sigs, hashes


def _earlier_pairs(item, threshold: float, verify: bool):
    """One LSH band: (current repo, (order, build, earlier repo)) for each current member
    that meets an earlier build's member (verified by estimated Jaccard)."""
    _, grouped = item
    earlier = list(grouped["earlier"])
    if not earlier:
        return
    for repo, sig in grouped["current"]:
        for (order, build, other), esig in earlier:
            if not verify or minhash.estimate_jaccard(sig, esig) >= threshold:
                yield repo, (order, build, other)


class AgainstEarlier(beam.PTransform):
    """(files, current repository signatures or None) -> (files that no earlier build kept a
    copy of, Drops ``duplicate_of_earlier_build``, the names of the repositories dropped as
    a whole). Repository level first (when signatures are given), then file level by content
    hash."""

    def __init__(self, prev_outs: tuple[str, ...], near):
        super().__init__()
        self.prev_outs, self.near = tuple(prev_outs), near

    def expand(self, inputs):
        files, repo_sigs = inputs
        cfg = self.near
        bands, rows = cfg.band_params()
        earlier_sigs, earlier_hashes = files.pipeline | "ReadEarlier" >> ReadEarlier(
            self.prev_outs)
        drops = []
        matched = files.pipeline | "NoRepoMatches" >> beam.Create([])
        if repo_sigs is not None:
            current = repo_sigs | "CurrentBands" >> beam.FlatMap(
                lambda ks: [(b, ks) for b in band_keys(ks[1], bands, rows)])
            earlier = earlier_sigs | "EarlierBands" >> beam.FlatMap(
                lambda ks: [(b, ((ks[0][0][0], ks[0][0][1], ks[0][1]), ks[1]))
                            for b in band_keys(ks[1], bands, rows)])
            matched = ({"current": current, "earlier": earlier}
                       | "JoinBands" >> beam.CoGroupByKey()
                       | "EarlierPairs" >> beam.FlatMap(_earlier_pairs, cfg.threshold,
                                                        cfg.verify)
                       | "FirstEarlier" >> beam.CombinePerKey(min))
            joined = ({"files": files | "ByRepo" >> beam.Map(lambda f: (f.repo, f)),
                       "earlier": matched}
                      | "JoinRepos" >> beam.CoGroupByKey()
                      | "ApplyRepos" >> beam.FlatMap(_apply_repo).with_outputs(
                          "drops", main="files"))
            files = joined.files
            drops.append(joined.drops)
        by_hash = ({"files": files | "ByHash" >> beam.Map(lambda f: (f.sha256, f)),
                    "earlier": earlier_hashes | "FirstHash" >> beam.CombinePerKey(min)}
                   | "JoinHashes" >> beam.CoGroupByKey()
                   | "ApplyHashes" >> beam.FlatMap(_apply_hash).with_outputs(
                       "drops", main="files"))
        drops.append(by_hash.drops)
        return (by_hash.files, tuple(drops) | "EarlierDrops" >> beam.Flatten(),
                matched | "MatchedRepos" >> beam.Keys())


def _apply_repo(item):
    repo, grouped = item
    earlier = list(grouped["earlier"])
    for f in grouped["files"]:
        if earlier and f.source == CODE:
            _, build, other = earlier[0]
            yield beam.pvalue.TaggedOutput("drops", Drop(
                f.repo, f.path, REASON, f"near duplicate of {build}:{other}"))
        else:
            yield f


def _apply_hash(item):
    _, grouped = item
    earlier = list(grouped["earlier"])
    for f in grouped["files"]:
        if earlier:
            _, build, other = earlier[0]
            yield beam.pvalue.TaggedOutput("drops", Drop(
                f.repo, f.path, REASON, f"exact duplicate of {build}:{other}"))
        else:
            yield f


def signature_row(item) -> tuple:
    repo, sig = item
    return (repo, np.asarray(sig, dtype=np.uint32).tobytes())


def hash_row(f) -> tuple:
    return (f.sha256, f.repo, f.path)
