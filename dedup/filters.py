"""Per-file filters as one small family (datatrove's filters, in Beam).

A filter says only what it checks: ``reason(file) -> str | (str, detail) | None``. ``FileFilter`` turns that
into kept files (main output) and counted drops (``drops``): a reason drops the file with it,
an exception drops it as ``processing_error`` naming the filter, so one bad file never stops
a build and nothing is lost silently.
"""
from __future__ import annotations

import apache_beam as beam

from fimpack.records import Drop, SourceFile, processing_error


class FileFilter(beam.DoFn):
    stage = "filter"  # the name a processing error is charged to

    def reason(self, f: SourceFile) -> str | tuple[str, str] | None:
        raise NotImplementedError

    def process(self, f: SourceFile):
        try:
            reason = self.reason(f)
        except Exception as err:  # one bad file must not stop a build
            yield beam.pvalue.TaggedOutput("drops",
                                           processing_error(f.repo, f.path, self.stage, err))
            return
        if reason is None:
            yield f
        else:
            reason, detail = (reason, "") if isinstance(reason, str) else reason
            yield beam.pvalue.TaggedOutput("drops", Drop(f.repo, f.path, reason, detail))


class Filter(beam.PTransform):
    """SourceFiles -> kept SourceFiles (main) and Drops (``drops``), by a ``FileFilter``."""

    def __init__(self, check: FileFilter):
        super().__init__()
        self.check = check

    def expand(self, files):
        return files | check_label(self.check) >> beam.ParDo(self.check).with_outputs(
            "drops", main="files")


def check_label(check: FileFilter) -> str:
    return check.stage.capitalize()
