"""Per-file filters as one family (datatrove's filters, in Beam): each states only its check.

A filter is a ``FileFilter`` with a ``stage`` name and one method, ``check(file, *side)``,
whose answer is one of:

- ``None``: keep the file as it came;
- ``"reason"`` or ``("reason", "detail")``: drop it, with that reason;
- ``Keep(file, counts)``: keep FILE (a rewritten one: PII redacted, a licence or language
  set; None: the file as it came) and add COUNTS ({``counter_key``: n}) to the build report.

The base does the rest, once for every filter: kept files go to the main output, a
``Drop`` for each dropped file to ``drops``, one counter dict per kept file that counts to
``counts``, and a check that raises drops its file as ``processing_error`` charged to the
filter's ``stage`` (one bad file never stops a build, and nothing is lost silently).
``Filter(check, *side_inputs)`` applies one and returns a ``StageOut``; side inputs
(``beam.pvalue.AsDict(...)``) reach ``check`` as its further arguments.
"""
from __future__ import annotations

from dataclasses import dataclass

import apache_beam as beam

from fimpack.records import Drop, SourceFile, StageOut, processing_error


@dataclass(frozen=True, slots=True)
class Keep:
    """A check's answer that keeps the file: FILE (None: the file as it came) and COUNTS for
    the build report (``records.counter_key`` keys; None or empty: nothing counted)."""

    file: SourceFile | None = None
    counts: dict | None = None


Verdict = None | str | tuple[str, str] | Keep


class FileFilter(beam.DoFn):
    """One per-file filter: subclasses set ``stage`` and write ``check``."""

    stage = "filter"  # the name a processing error is charged to, and the transform's label

    def check(self, f: SourceFile, *side) -> Verdict:
        raise NotImplementedError

    def process(self, f: SourceFile, *side):
        try:
            verdict = self.check(f, *side)
        except Exception as err:  # one bad file must not stop a build
            yield beam.pvalue.TaggedOutput("drops",
                                           processing_error(f.repo, f.path, self.stage, err))
            return
        if verdict is None:
            yield f
        elif isinstance(verdict, Keep):
            yield f if verdict.file is None else verdict.file
            if verdict.counts:
                yield beam.pvalue.TaggedOutput("counts", verdict.counts)
        else:
            reason, detail = (verdict, "") if isinstance(verdict, str) else verdict
            yield beam.pvalue.TaggedOutput("drops", Drop(f.repo, f.path, reason, detail))


class Filter(beam.PTransform):
    """SourceFiles -> ``StageOut``: the files CHECK keeps (``items``), its Drops (``drops``)
    and its counters (``counts``). SIDE_INPUTS (Beam side inputs) are passed to its check."""

    def __init__(self, check: FileFilter, *side_inputs):
        super().__init__()
        self.check, self.side_inputs = check, side_inputs

    def expand(self, files):
        out = files | check_label(self.check) >> beam.ParDo(
            self.check, *self.side_inputs).with_outputs("drops", "counts", main="files")
        return StageOut(out.files, (out.drops,), (out.counts,))


def check_label(check: FileFilter) -> str:
    return check.stage.capitalize()
