import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from fimpack.dedup import ExactDedup, choose_keeper
from fimpack.records import SourceFile

from conftest import STDLIB

DECODER = (STDLIB / "json" / "decoder.py").read_text()
SCANNER = (STDLIB / "json" / "scanner.py").read_text()


def test_keeper_is_smallest_repo_path_whatever_the_order():
    copies = [SourceFile("zeta", "a.py", "python", DECODER),
              SourceFile("alpha", "z.py", "python", DECODER),
              SourceFile("alpha", "b.py", "python", DECODER)]
    for order in (copies, copies[::-1]):
        keeper, drops = choose_keeper(order)
        assert (keeper.repo, keeper.path) == ("alpha", "b.py")
        assert sorted((d.repo, d.path, d.reason, d.detail) for d in drops) == [
            ("alpha", "z.py", "exact_duplicate", "alpha/b.py"),
            ("zeta", "a.py", "exact_duplicate", "alpha/b.py")]


def test_exact_dedup_stage():
    files = [SourceFile("r1", "decoder.py", "python", DECODER),
             SourceFile("r2", "vendored/decoder.py", "python", DECODER),
             SourceFile("r2", "scanner.py", "python", SCANNER),
             # CRLF makes different training text: not a duplicate.
             SourceFile("r3", "decoder.py", "python", DECODER.replace("\n", "\r\n"))]
    with TestPipeline(runner="FnApiRunner") as p:
        result = p | beam.Create(files) | ExactDedup()
        kept, drops, clusters = result.files, result.drops, result.clusters
        assert_that(clusters | "c" >> beam.Map(lambda c: (c.repo, c.path, c.kept)),
                    equal_to([("r1", "decoder.py", True), ("r2", "vendored/decoder.py", False)]),
                    label="clusters")
        assert_that(kept | "k" >> beam.Map(lambda f: (f.repo, f.path)),
                    equal_to([("r1", "decoder.py"), ("r2", "scanner.py"), ("r3", "decoder.py")]),
                    label="kept")
        assert_that(drops | "d" >> beam.Map(lambda d: (d.repo, d.path, d.reason)),
                    equal_to([("r2", "vendored/decoder.py", "exact_duplicate")]), label="drops")
