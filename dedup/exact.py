"""Exact deduplication of files across the whole corpus.

Files are grouped by the SHA-256 of their content, taken byte-exact (no whitespace or newline
normalisation: two files that differ only in CRLF are different training text). The copy kept
is the one with the smallest (repo, path), so the choice never depends on arrival order or on
how many workers ran.
"""
from __future__ import annotations

from typing import Iterable

import apache_beam as beam

from fimpack.records import ClusterMember, Drop, SourceFile


def choose_keeper(copies: Iterable[SourceFile]) -> tuple[SourceFile, list[Drop]]:
    """The kept copy and a Drop for each other copy, naming the kept one."""
    ordered = sorted(copies, key=lambda f: (f.repo, f.path))
    keeper = ordered[0]
    detail = f"{keeper.repo}/{keeper.path}"
    return keeper, [Drop(f.repo, f.path, "exact_duplicate", detail) for f in ordered[1:]]


class _KeepOne(beam.DoFn):
    def __init__(self, drop_all: bool = False):
        self.drop_all = drop_all

    def process(self, item):
        sha, copies = item
        copies = list(copies)
        if self.drop_all and len(copies) > 1:  # --dedup-mode drop-all: no copy is kept
            ordered = sorted(copies, key=lambda f: (f.repo, f.path))
            cluster = f"file-exact:{ordered[0].repo}/{ordered[0].path}"
            for f in ordered:
                yield beam.pvalue.TaggedOutput("drops", Drop(
                    f.repo, f.path, "exact_duplicate", f"drop-all: {len(ordered)} copies"))
                yield beam.pvalue.TaggedOutput("clusters", ClusterMember(
                    "file", "exact", f.repo, f.path, cluster, False, "drop-all"))
            return
        keeper, drops = choose_keeper(copies)
        yield keeper
        if drops:
            cluster = f"file-exact:{sha[:16]}"
            yield beam.pvalue.TaggedOutput(
                "clusters", ClusterMember("file", "exact", keeper.repo, keeper.path, cluster, True))
        for drop in drops:
            yield beam.pvalue.TaggedOutput("drops", drop)
            yield beam.pvalue.TaggedOutput(
                "clusters", ClusterMember("file", "exact", drop.repo, drop.path, cluster, False))


class ExactDedup(beam.PTransform):
    """SourceFiles -> unique SourceFiles (``files``), Drops of the other copies (``drops``)
    and the members of every duplicate group (``clusters``). DROP_ALL: every copy of a
    duplicate group is dropped (``--dedup-mode drop-all``)."""

    def __init__(self, drop_all: bool = False):
        super().__init__()
        self.drop_all = drop_all

    def expand(self, files):
        return (files
                | "KeyByContent" >> beam.Map(lambda f: (f.sha256, f))
                | "GroupByContent" >> beam.GroupByKey()
                | "KeepOne" >> beam.ParDo(_KeepOne(self.drop_all)).with_outputs("drops", "clusters",
                                                                   main="files"))
