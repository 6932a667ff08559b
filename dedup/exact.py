"""Exact deduplication of files across the whole corpus.

Files are grouped by the SHA-256 of their content, taken byte-exact (no whitespace or newline
normalisation: two files that differ only in CRLF are different training text). The copy kept
is the one with the smallest (repo, path), so the choice never depends on arrival order or on
how many workers ran.
"""
from __future__ import annotations

from typing import Iterable

import apache_beam as beam

from fimpack.records import Drop, SourceFile


def choose_keeper(copies: Iterable[SourceFile]) -> tuple[SourceFile, list[Drop]]:
    """The kept copy and a Drop for each other copy, naming the kept one."""
    ordered = sorted(copies, key=lambda f: (f.repo, f.path))
    keeper = ordered[0]
    detail = f"{keeper.repo}/{keeper.path}"
    return keeper, [Drop(f.repo, f.path, "exact_duplicate", detail) for f in ordered[1:]]


class _KeepOne(beam.DoFn):
    def process(self, item):
        _, copies = item
        keeper, drops = choose_keeper(copies)
        yield keeper
        for drop in drops:
            yield beam.pvalue.TaggedOutput("drops", drop)


class ExactDedup(beam.PTransform):
    """SourceFiles -> unique SourceFiles (main) and Drops of the duplicates (``drops``)."""

    def expand(self, files):
        return (files
                | "KeyByContent" >> beam.Map(lambda f: (f.sha256, f))
                | "GroupByContent" >> beam.GroupByKey()
                | "KeepOne" >> beam.ParDo(_KeepOne()).with_outputs("drops", main="files"))
