"""Regression guard on the build's shape: the number of fused stages FnApiRunner runs (each is
a pass of the runner over its input, one at a time, with a fixed cost per worker). Measured
2026-12-05 with ``build.fused_stages``: 159 before the connected components' rounds became a
union-find finish and the record tables and report were written by one set of stages each,
70 after (benchmarks/bench_build.py reports it with every run); 61 when the per-file packing
stage was built (issue 24, 2026-12-05, after the stage contract's changes), 63 with it, 61
with the token ratios as a dict side input instead of a global combine.

And on the per-file packing stage (``packing/perfile.py``): its elements are files, not
repositories. A repository of many files, packed by a two-worker FnApiRunner, is encoded by
both worker processes (a per-process counter, ``stages.worker_counter``), and gives the
examples ``pack_repository`` gives in one process."""
from __future__ import annotations

import apache_beam as beam
import numpy as np
from apache_beam.options.pipeline_options import PipelineOptions

from fimpack.cli import _build_parser
from fimpack.config import build_config
from fimpack.packing.stages import WORKERS, PackExamples, pack_repository
from fimpack.pipelines import build, runners
from fimpack.records import SourceFile

STAGE_LIMIT = 66  # 62 measured; a little room for a stage that earns its place


def stages(*flags, dedup_only=False) -> list[str]:
    args = _build_parser().parse_args(["dedup" if dedup_only else "build", "--out", "OUT",
                                       *flags])
    return build.fused_stages(build_config(args, dedup_only))


def test_the_default_build_runs_fewer_than_the_limit_of_fused_stages():
    names = stages()
    assert len(names) <= STAGE_LIMIT, len(names)
    # no unrolled components rounds beyond the default, no per-table record writers
    assert not any("Round05" in n for n in names)
    assert not any("WriteClusters" in n or "WriteDrops" in n for n in names)


def test_file_near_dedup_and_dedup_only_stay_bounded_too():
    # file-level near dedup adds its own components (4 rounds + the union-find)
    assert len(stages("--file-near-dedup")) <= STAGE_LIMIT + 25
    assert len(stages(dedup_only=True)) <= STAGE_LIMIT


def test_one_repository_is_encoded_by_every_worker(tokenizer, tmp_path):
    """The per-file stage's elements are files: the 24 files of one repository reach both
    workers of a two-worker build (each worker process counts the files it encodes), and
    the examples are those of ``pack_repository`` in one process."""
    files = [SourceFile("one", f"pkg/mod{i:02d}.py", "python",
                        f"from pkg import mod{(i + 1) % 24:02d}\n\n\ndef f{i}(x):\n"
                        f"    return x * {i} + len('{'y' * (i * 7)}')\n")
             for i in range(24)]
    cfg = build_config(_build_parser().parse_args(
        ["build", "--out", str(tmp_path), "--seq-len", "256", "--val-fraction", "0"]), False)
    options = PipelineOptions([])
    p = beam.Pipeline(runner=runners.runner_for(options, 2), options=options)
    model = beam.pvalue.AsSingleton(p | "Model" >> beam.Create([tokenizer.proto]))
    packed = p | "Files" >> beam.Create(files) | PackExamples(cfg.pack, cfg.seed, model)
    _ = (packed.items
         | beam.Map(lambda t: (t.example.id, t.ids.tobytes()))
         | beam.io.WriteToText(str(tmp_path / "examples"), shard_name_template=""))
    result = p.run()
    result.wait_until_finish()
    counts = {c.key.metric.name: c.committed for c in
              result.metrics().query(beam.metrics.MetricsFilter().with_namespace(WORKERS))
              ["counters"]}
    assert sum(counts.values()) == len(files)
    assert len([n for n in counts.values() if n]) >= 2, counts  # both workers encoded files
    assert max(counts.values()) < len(files)
    # the same examples as one process packing the repository whole
    pack = cfg.pack
    want, drops = pack_repository("one", files, tokenizer, seed=cfg.seed,
                                  fim_rate=pack.fim_rate, seq_len=pack.seq_len,
                                  val_fraction=pack.val_fraction, fim_split=pack.fim_split,
                                  order=pack.order, partition=pack.partition)
    assert not drops and len(want) > 1
    got = sorted((tmp_path / "examples").read_text().splitlines())
    assert got == sorted(str((t.example.id, np.asarray(t.ids).tobytes())) for t in want)
