"""Ingest: repositories (folders, tar/zip archives, explicit file lists) and row files
(The-Stack-like code rows, natural-language ``text`` rows) into ``SourceFile``s and ``Drop``s.

Every input file ends as exactly one ``SourceFile`` or one ``Drop`` with a reason, so the
manifest can account for all of them. Nothing is extracted to disk: archive members are read
into memory with a size bound, so ``../`` or absolute member paths cannot escape, and symlinks
are recorded, never followed.
"""
from __future__ import annotations

import logging
from typing import Iterator

import apache_beam as beam
from apache_beam.metrics import Metrics

from fimpack.config import Limits
from fimpack.pipelines.archives import read_rows, read_tar, read_zip, safe_member_path  # noqa
from fimpack.pipelines.sources import (RepoSource, classify, discover, list_dir,  # noqa: F401
                                       list_files, read_dir, read_files, read_listed)
# the names above are also ingest's API (tests, ``fimpack graph``): re-exported
from fimpack.records import AUDIT, Drop, SourceFile, StageOut, processing_error

log = logging.getLogger("fimpack.ingest")

READERS = {"dir": read_dir, "tar": read_tar, "zip": read_zip, "files": read_files,
           "rows": read_rows}


def read_source(src: RepoSource, limits: Limits) -> Iterator[SourceFile | Drop]:
    yield from READERS[src.kind](src, limits)


INPUT_FILES = Metrics.counter(AUDIT, "input_files")


LISTERS = {"dir": list_dir, "files": list_files}


class _ReadSource(beam.DoFn):
    DROPS = "drops"
    ENTRIES = "entries"

    def __init__(self, limits: Limits):
        self.limits = limits

    def process(self, src: RepoSource):
        if src.kind in LISTERS:  # loose files: listed here, read one element per file
            try:
                entries = list(LISTERS[src.kind](src, self.limits))
            except Exception as err:
                INPUT_FILES.inc()
                yield beam.pvalue.TaggedOutput(self.DROPS, processing_error(src.name, "", "read",
                                                                            err))
                return
            log.debug("read %s: %d files listed", src.name, len(entries))
            for entry in entries:
                yield beam.pvalue.TaggedOutput(self.ENTRIES, entry)
            return
        kept = dropped = 0
        try:
            for item in read_source(src, self.limits):
                if isinstance(item, Drop):
                    dropped += 1
                    yield beam.pvalue.TaggedOutput(self.DROPS, item)
                else:
                    kept += 1
                    yield item
        except Exception as err:  # files read so far stay; the rest is one counted drop
            dropped += 1
            yield beam.pvalue.TaggedOutput(self.DROPS, processing_error(src.name, "", "read",
                                                                        err))
        # Counted on the metrics channel too, apart from the data: the driver checks that
        # every file read is accounted for as kept or dropped (see pipelines/manifest.py).
        INPUT_FILES.inc(kept + dropped)
        log.debug("read %s: %d files kept, %d dropped", src.name, kept, dropped)


class _ReadEntry(beam.DoFn):
    """One listed file -> a SourceFile or a Drop."""

    def __init__(self, limits: Limits):
        self.limits = limits

    def process(self, entry):
        INPUT_FILES.inc()
        try:
            item = read_listed(entry, self.limits)
        except Exception as err:
            item = processing_error(entry.repo, entry.path, "read", err)
        if isinstance(item, Drop):
            yield beam.pvalue.TaggedOutput(_ReadSource.DROPS, item)
        else:
            yield item


class Ingest(beam.PTransform):
    """RepoSources -> ``StageOut``: SourceFiles, the Drops of files not read, and a
    ``files_read`` count of each."""

    def __init__(self, limits: Limits):
        super().__init__()
        self.limits = limits

    def expand(self, sources):
        read = (sources
                | "Spread" >> beam.Reshuffle()
                | "Read" >> beam.ParDo(_ReadSource(self.limits)).with_outputs(
                    _ReadSource.DROPS, _ReadSource.ENTRIES, main="files"))
        loose = (read[_ReadSource.ENTRIES]
                 | "SpreadFiles" >> beam.Reshuffle()
                 | "ReadFile" >> beam.ParDo(_ReadEntry(self.limits)).with_outputs(
                     _ReadSource.DROPS, main="files"))
        files = (read.files, loose.files) | "AllFiles" >> beam.Flatten()
        drops = (read[_ReadSource.DROPS], loose[_ReadSource.DROPS])
        # every file read, counted as data where Ingest emits it (the audit's flow checks:
        # pipelines/manifest.py)
        counts = (files | "ReadCounts" >> beam.Map(lambda _: {"files_read": 1}),
                  *(d | f"ReadDropCounts{i}" >> beam.Map(lambda _: {"files_read": 1})
                    for i, d in enumerate(drops)))
        return StageOut(files, drops, counts)
