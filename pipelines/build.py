"""``fimpack build``: repositories in, examples, tokenizer and packed token shards out.

    sources -> Ingest -> Dedup -> Filters (quality, decontamination, PII)
            -> TrainTokenizer (a sample, one worker; a side input from then on)
            -> PackExamples (per repository: order -> FIM -> tokenised examples)
            -> Mixture (code / natural language by tokens; keyed by shard)
            -> WriteShards (best-fit-decreasing sequences; examples + token shards)
            -> Report (counters -> .build/stats.json); drops and clusters as sharded Parquet

Each stage is a composite transform in the module that owns its logic: ``pipelines/ingest``,
``dedup/stages``, ``packing/stages``, ``packing/mixture``, ``pipelines/outputs`` and
``pipelines/manifest``. The driver writes ``manifest.json`` last, after the pipeline has
finished and the audit has matched the data (``pipelines/manifest.py``), so a manifest always
describes complete outputs. Runner set-up: ``pipelines/runners.py``.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from fimpack.counting import cluster_counter, drop_counter, kept_counter
from fimpack.dedup.decontaminate import humaneval_path
from fimpack.dedup.quality import QualityConfig
from fimpack.dedup.stages import Dedup, DedupConfig, Filters
from fimpack.packing.fim import MIXED
from fimpack.packing.mixture import Mixture
from fimpack.packing.stages import ORDERS, PackExamples, TrainTokenizer  # noqa: F401
from fimpack.packing.tokenizer import Tokenizer
from fimpack.pipelines import outputs, runners
from fimpack.pipelines.ingest import Ingest, Limits, RepoSource
from fimpack.pipelines.manifest import (DataLost, Report, Unaudited, audit,  # noqa: F401
                                        audit_counters, make_manifest, stage_seconds)

log = logging.getLogger("fimpack.build")


@dataclass
class BuildConfig:
    out: str
    input: str | None = None          # None: the embedded default corpus
    seed: int = 0
    seq_len: int = 8192               # tokens per packed training sequence
    fim_rate: float = 0.8             # CodeGemma 7B / 2B v1.0
    fim_split: str = MIXED            # "uniform", "syntax" or "mixed" (50/50)
    order: str = "codegemma"          # file order in a repository: ORDERS
    code_fraction: float | None = 0.8  # code share of tokens; None keeps everything
    val_fraction: float = 0.05        # repositories held out for validation
    vocab_size: int = 32_000
    tokenizer: str | None = None      # a user-supplied sentencepiece model
    tokenizer_sample_docs: int = 4_000
    tokenizer_sample_chars: int = 20_000_000
    shard_tokens: int = 1 << 25       # 64 MB of uint16 tokens: the largest group a worker holds
    max_repos: int = 0                # embedded default only: cap the repositories
    workers: int = 1
    limits: Limits = field(default_factory=Limits)
    dedup: DedupConfig = field(default_factory=DedupConfig)
    quality: QualityConfig | None = field(default_factory=QualityConfig)  # None: no filter
    benchmarks: list[str] | None = None  # decontamination sets; None: HumanEval; []: off
    pii: bool = True                     # redact emails, IPs, keys
    dedup_only: bool = False             # `fimpack dedup`: stop after dedup
    allow_unaudited: bool = False        # accept a runner that reports no metrics



def pipeline(p: beam.Pipeline, sources: list[RepoSource], cfg: BuildConfig):
    """Wire the build into P. Returns nothing: every output is a file under cfg.out."""
    out = cfg.out
    files, read_drops = p | "Sources" >> beam.Create(sources) | "Ingest" >> Ingest(cfg.limits)
    clean, dedup_drops, clusters = files | "Dedup" >> Dedup(cfg.dedup)
    cluster_files = clusters | "WriteClusters" >> outputs.WriteRecords(
        out, "dedup/clusters", outputs.CLUSTERS_SCHEMA, outputs.cluster_row)
    drops, counts = [read_drops, dedup_drops], [
        clusters | "ClusterCounts" >> beam.Map(cluster_counter)]
    if cfg.dedup_only:
        counts.append(clean | "KeptCounts" >> beam.Map(
            lambda f: kept_counter(f.source, f.language)))
    else:
        benchmarks = [humaneval_path()] if cfg.benchmarks is None else cfg.benchmarks
        clean, filter_drops, pii_counts = clean | "Filters" >> Filters(cfg.quality, benchmarks,
                                                                       cfg.pii)
        user = outputs.read_bytes(cfg.tokenizer) if cfg.tokenizer else None
        model = clean | "TrainTokenizer" >> TrainTokenizer(
            cfg.seed, cfg.vocab_size, cfg.tokenizer_sample_docs, cfg.tokenizer_sample_chars,
            user)
        _ = model | "WriteTokenizer" >> beam.Map(
            lambda m: outputs.write_atomic(outputs.join(out, "tokenizer.model"), m) if m
            else None)
        model = beam.pvalue.AsSingleton(model)
        examples, stats, pack_drops = clean | "PackExamples" >> PackExamples(cfg, model)
        keyed, example_counts, kept_counts, mixture_drops = (
            (examples, stats) | "Mixture" >> Mixture(cfg.seed, cfg.code_fraction,
                                                     cfg.shard_tokens))
        shards = keyed | "WriteShards" >> outputs.WriteShards(out, cfg.seq_len, model)
        drops += [filter_drops, pack_drops, mixture_drops]
        counts += [pii_counts, example_counts, kept_counts]
    drops = tuple(drops) | "AllDrops" >> beam.Flatten()
    drop_files = drops | "WriteDrops" >> outputs.WriteRecords(
        out, "drops", outputs.DROPS_SCHEMA, outputs.drop_row)
    counts.append(drops | "DropCounts" >> beam.Map(drop_counter))
    _ = tuple(counts) | "Report" >> Report(out, (cluster_files, drop_files),
                                           None if cfg.dedup_only else shards)


def clear_outputs(out: str) -> None:
    """Remove what an earlier build left, so no stale shard can sit beside new ones."""
    for pattern in ("examples/*", "tokens/*", "manifest.json", "tokenizer.model",
                    "drops.parquet", "drops/*", "dedup/*", "dedup/clusters/*", ".build/*"):
        matches = FileSystems.match([outputs.join(out, pattern)])[0].metadata_list
        if matches:
            FileSystems.delete([m.path for m in matches])


def run(cfg: BuildConfig, sources: list[RepoSource], beam_args: list[str]) -> dict:
    """Run the build pipeline, audit it and write the manifest; the manifest."""
    options = PipelineOptions(beam_args)
    runner = runners.runner_for(options, cfg.workers)
    clear_outputs(cfg.out)
    started = time.time()
    log.info("building %d sources into %s on %s", len(sources), cfg.out,
             runners.engine_name(options))
    p = beam.Pipeline(runner=runner, options=options)
    pipeline(p, sources, cfg)
    result = p.run()
    result.wait_until_finish()
    report = json.loads(outputs.read_bytes(outputs.join(cfg.out, ".build", "stats.json")))
    tok_path = outputs.join(cfg.out, "tokenizer.model")
    tok = Tokenizer(outputs.read_bytes(tok_path)) if FileSystems.exists(tok_path) else None
    manifest = make_manifest(cfg, report, tok, time.time() - started)
    manifest["timing"]["stages"] = stage_seconds(result)
    manifest["audit"] = audit(audit_counters(result), manifest, cfg.allow_unaudited)
    outputs.write_json(outputs.join(cfg.out, "manifest.json"), manifest)
    return manifest
