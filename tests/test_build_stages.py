"""Regression guard on the build's shape: the number of fused stages FnApiRunner runs (each is
a pass of the runner over its input, one at a time, with a fixed cost per worker). Measured
2026-12-05 with ``build.fused_stages``: 159 before the connected components' rounds became a
union-find finish and the record tables and report were written by one set of stages each,
70 after (benchmarks/bench_build.py reports it with every run)."""
from __future__ import annotations

from fimpack.cli import _build_parser
from fimpack.config import build_config
from fimpack.pipelines import build

STAGE_LIMIT = 80  # 70 measured; a little room for a stage that earns its place


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
