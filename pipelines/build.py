"""``fimpack build``: repositories in, examples, tokenizer and packed token shards out.

    sources -> Ingest -> Licenses -> Generated (compiled, vendored, minified, generated)
            -> Dedup -> Filters (quality, NL documents, decontamination, PII)
            -> TrainTokenizer (a sample, one worker; a side input from then on)
            -> PackExamples (per file: parse, then FIM and token ids; per repository: order
                             and grouping from the files' records; per example: its parts)
            -> Mixture (code / natural language by tokens; keyed by shard)
            -> WriteShards (best-fit-decreasing sequences; examples + token shards)
            -> Report (counters -> .build/stats.json); drops and clusters as sharded Parquet

Each stage is a composite transform in the module that owns its logic: ``pipelines/ingest``,
``dedup/stages``, ``packing/stages``, ``packing/mixture``, ``pipelines/outputs`` and
``pipelines/manifest``; each takes its own part of BuildConfig and returns a ``StageOut``.
The driver writes ``manifest.json`` last, after the pipeline has finished and the audit has
matched the data (``pipelines/manifest.py``), so a manifest always describes complete
outputs. Runner set-up: ``pipelines/runners.py``.
"""
from __future__ import annotations

import json
import logging
import time
import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from fimpack.config import BuildConfig
from fimpack.counting import drop_counter, kept_counter
from fimpack.dedup.generated import GeneratedFiles
from fimpack.dedup.stages import Dedup, Filters, Licenses
from fimpack.errors import BuildFailed
from fimpack.records import StageOut
from fimpack.packing.mixture import Mixture
from fimpack.packing.stages import PackExamples, TrainTokenizer
from fimpack.packing.tokenizer import Tokenizer
from fimpack.pipelines import outputs, runners
from fimpack.pipelines.ingest import Ingest, RepoSource
from fimpack.pipelines.manifest import (DataLost, Report, Unaudited, audit,  # noqa: F401
                                        audit_counters, make_manifest, stage_seconds)

log = logging.getLogger("fimpack.build")


def pipeline(p: beam.Pipeline, sources: list[RepoSource], cfg: BuildConfig):
    """Wire the build into P, top to bottom as the module's diagram. Returns nothing: every
    output is a file under cfg.out. Each stage returns a ``StageOut``; what the stages drop,
    count and record is gathered once, by ``account``, for the record tables and the report."""
    out, stages = cfg.out, []

    def step(result: StageOut):
        stages.append(result)
        return result.items

    files = step(p | "Sources" >> beam.Create(sources) | "Ingest" >> Ingest(cfg.limits))
    files = step(files | "Licenses" >> Licenses(cfg.licenses))
    if cfg.drop_generated:  # before dedup: a compiled copy must never be the one kept
        files = step(files | "Generated" >> GeneratedFiles(cfg.drop_generated))
    files = step(files | "Dedup" >> Dedup(cfg.dedup))
    shards = None
    if cfg.dedup_only:
        stages.append(StageOut(None, counts=(files | "KeptCounts" >> beam.Map(
            lambda f: kept_counter(f.source, f.language, f.encoding)),)))
    else:
        files = step(files | "Filters" >> Filters(cfg.filters))
        user = outputs.read_bytes(cfg.tokenizer.model) if cfg.tokenizer.model else None
        model = files | "TrainTokenizer" >> TrainTokenizer(cfg.tokenizer, cfg.seed, user)
        _ = model | "WriteTokenizer" >> beam.Map(
            lambda m: outputs.write_atomic(outputs.join(out, "tokenizer.model"), m) if m
            else None)
        model = beam.pvalue.AsSingleton(model)
        packed = files | "PackExamples" >> PackExamples(cfg.pack, cfg.seed, model)
        step(packed)
        keyed = step({"examples": packed.items, "stats": packed.side["stats"]}
                     | "Mixture" >> Mixture(cfg.mix, cfg.seed))
        shards = keyed | "WriteShards" >> outputs.WriteShards(out, cfg.pack.seq_len, model)
    tables, counts = account(stages)
    record_files = tables | "WriteRecords" >> outputs.WriteRecordTables(
        out, {name: outputs.RECORD_TABLES[name] for name in tables})
    _ = counts | "Report" >> Report(out, (record_files,), shards)


def account(stages: list[StageOut]) -> tuple[dict, tuple]:
    """The stages' record tables, with their drops as the ``drops`` table, and every counter
    PCollection, a drop counter for each drop PCollection among them. Each PCollection is
    mapped where it is made, never flattened first (a Flatten of Flattens is a copy stage
    each on FnApiRunner)."""
    tables, counts, drops = {}, [], []
    for stage in stages:
        tables.update(stage.tables)
        counts += stage.counts
        drops += stage.drops
    tables["drops"] = tuple(drops)
    counts += [d | f"DropCounts{i}" >> beam.Map(drop_counter) for i, d in enumerate(drops)]
    return tables, tuple(counts)


def clear_outputs(out: str) -> None:
    """Remove what an earlier build left, so no stale shard can sit beside new ones."""
    for pattern in ("examples/*", "tokens/*", "manifest.json", FAILURE_REPORT,
                    "tokenizer.model", "drops.parquet", "drops/*", "dedup/*", "dedup/clusters/*",
                    "dedup/signatures/*", "dedup/hashes/*",
                    "files/*", ".build/*"):
        matches = FileSystems.match([outputs.join(out, pattern)])[0].metadata_list
        if matches:
            FileSystems.delete([m.path for m in matches])


def run(cfg: BuildConfig, sources: list[RepoSource], beam_args: list[str]) -> dict:
    """Run the build pipeline, audit it and write the manifest; the manifest."""
    options = PipelineOptions(beam_args)
    runner = runners.runner_for(options, cfg.workers)
    dry_run = runners.is_dry_run(options)
    if not dry_run:  # a dry run touches no output: a bucket would need an account
        clear_outputs(cfg.out)
    started = time.time()
    log.info("building %d sources into %s on %s", len(sources), cfg.out,
             runners.engine_name(options))
    p = beam.Pipeline(runner=runner, options=options)
    pipeline(p, sources, cfg)
    result = p.run()
    result.wait_until_finish()
    if dry_run:  # translated and staged, nothing ran: what would run, instead of a manifest
        return runners.dry_run_report(result, options, cfg.input, cfg.out, len(sources))
    report = json.loads(outputs.read_bytes(outputs.join(cfg.out, ".build", "stats.json")))
    tok_path = outputs.join(cfg.out, "tokenizer.model")
    tok = Tokenizer(outputs.read_bytes(tok_path)) if FileSystems.exists(tok_path) else None
    manifest = make_manifest(cfg, report, tok, time.time() - started)
    manifest["timing"]["stages"] = stage_seconds(result)
    if not manifest["counts"]["input_files"]:
        path = write_failure(cfg.out, manifest, "no input files")
        raise BuildFailed(f"the {len(sources):,} sources hold no files to read (empty folders, "
                          f"archives or row files); nothing was built ({path})")
    try:
        manifest["audit"] = audit(audit_counters(result), manifest, cfg.allow_unaudited,
                                  flow=report["counts"])
    except Exception as err:
        write_failure(cfg.out, manifest, f"{type(err).__name__}: {err}")
        raise
    if not cfg.dedup_only and not manifest["counts"]["examples"]:
        c = manifest["counts"]
        reasons = ", ".join(f"{r} {n:,}" for r, n in sorted(
            c["dropped_by_reason"].items(), key=lambda kv: -kv[1])[:5])
        path = write_failure(cfg.out, manifest, "every input file was dropped")
        raise BuildFailed(f"every one of the {c['input_files']:,} input files was dropped "
                          f"({reasons or 'no files read'}), so nothing was packed; the drops "
                          f"are in {path} and {outputs.join(cfg.out, 'drops')}/")
    outputs.write_json(outputs.join(cfg.out, "manifest.json"), manifest)
    return manifest


FAILURE_REPORT = "failed-build.json"


def write_failure(out: str, manifest: dict, reason: str) -> str:
    """A failed build's counts, under a name no reader takes for a finished build's manifest
    (which is never written for it); the path."""
    path = outputs.join(out, FAILURE_REPORT)
    outputs.write_json(path, {"failed": reason, **manifest})
    return path


def fused_stages(cfg: BuildConfig) -> list[str]:
    """The names of the fused stages FnApiRunner runs for CFG's build, in its order: the
    pipeline after Beam's own fusion (``FnApiRunner.create_stages``), built with no sources
    (the graph's shape depends on the settings, not on the input). Nothing runs. Each stage
    is one pass of the runner over its input (FnApiRunner runs them one at a time), so their
    number is a floor on a build's fixed cost: bench_build reports it, a test bounds it."""
    from apache_beam.runners.portability.fn_api_runner import fn_runner

    p = beam.Pipeline(runner=fn_runner.FnApiRunner())
    pipeline(p, [], cfg)
    _, stages = fn_runner.FnApiRunner().create_stages(p.to_runner_api())
    return [s.name for s in stages]
