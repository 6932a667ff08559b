"""``fimpack build``: repositories in, examples, tokenizer and packed token shards out.

    sources -> Ingest -> Dedup -> quality / decontamination / PII
            -> sample files -> train tokenizer (one worker, a side input from then on)
            -> per repository: order -> FIM -> tokenised examples of <= seq_len tokens
            -> code / natural-language mixture (token histogram, deterministic)
            -> shards by repository -> best-fit-decreasing packing into sequences -> write

The driver writes ``manifest.json`` last, after the pipeline has finished and the audit
ledger (Beam metrics counters along the pipeline) has matched the data, so a manifest always
describes complete outputs.
"""
from __future__ import annotations

import json
import logging
import math
import pickle
import time
from dataclasses import dataclass, field, replace

import apache_beam as beam
from apache_beam.metrics import Metrics
import numpy as np
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from fimpack.dedup.decontaminate import Decontaminate, humaneval_path
from fimpack.dedup.pii import RedactPII
from fimpack.dedup.quality import QualityConfig, QualityFilter
from fimpack.dedup.stages import Dedup, DedupConfig
from fimpack.packing import mixture
from fimpack.packing.examples import (assemble_repo, document_examples, file_segments,
                                      repo_split, split_rank, stable_hash)
from fimpack.packing.fim import MIXED
from fimpack.packing.graph import order_repository
from fimpack.packing.imports import extract_imports, has_parser
from fimpack.packing.shards import token_dtype
from fimpack.packing.tokenizer import Tokenizer, train_model_in_fresh_process
from fimpack.pipelines import outputs, runners
from fimpack.pipelines.manifest import (DataLost, Unaudited, audit, audit_counters,  # noqa: F401
                                        make_manifest, stage_seconds)
from fimpack.pipelines.ingest import AUDIT, Ingest, Limits, RepoSource
from fimpack.records import CODE, Drop, processing_error

log = logging.getLogger("fimpack.build")

SPLITS = ("train", "validation")
RANDOM = "random"
ORDERS = ("codegemma", "deepseek", RANDOM)  # CodeGemma's linearisation, DeepSeek's, seeded


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


class _WithTokenizer(beam.DoFn):
    """A DoFn that receives the tokenizer model as a side input and keeps it built."""

    def setup(self):
        self._tok = None

    def tokenizer(self, model: bytes) -> Tokenizer:
        if self._tok is None or self._tok.proto != model:
            self._tok = Tokenizer(model)
        return self._tok


# Audit counters: sent on the runner's metrics channel, independent of the data they count.
# A ledger along the pipeline (Ingest counts the files it read): where two of them disagree
# is where records went missing.
FILES_PACKED = Metrics.counter(AUDIT, "code_files_packed")
DOCS_PACKED = Metrics.counter(AUDIT, "documents_packed")
EXAMPLES_MADE = Metrics.counter(AUDIT, "examples_made")
EXAMPLES_MIXED = Metrics.counter(AUDIT, "examples_mixed")
EXAMPLES_KEPT = Metrics.counter(AUDIT, "examples_kept")
EXAMPLES_WRITTEN = Metrics.counter(AUDIT, "examples_written")


def packed(value) -> bytes:
    """VALUE as bytes for a GroupByKey. FnApiRunner groups in the driver, decoding and
    re-encoding every grouped value with its coder, one stage at a time while the workers
    wait: an object costs it an unpickle and a pickle, bytes a copy. Workers pickle either
    way (the coder's fallback for our dataclasses is pickle)."""
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def _counted(examples, seed: int, counter=EXAMPLES_MADE):
    """Each example, and its ``stats`` record (source, split, mixture bucket, tokens): the
    mixture plan and the shard counts are computed from these, so the examples themselves
    are read once more only, to be kept or dropped and keyed by shard."""
    for example, ids in examples:
        counter.inc()
        yield example, ids
        yield beam.pvalue.TaggedOutput("stats", (example.source, example.split,
                                                 mixture.bucket(seed, example.id), len(ids)))


class _PackRepo(_WithTokenizer):
    """A repository's files -> dependency order -> FIM -> tokenised examples, in one DoFn.
    Each file is parsed once, for its imports and its syntax-aware FIM split together
    (``parse_tree`` keeps the last tree), and formatted right after, so no tree outlives its
    file. Formatting files in a stage of their own spreads a large repository over workers,
    but its output (pieces and token ids, twice the content) then crosses a shuffle: on
    FnApiRunner, where every shuffle passes through the driver, that made a 105 MB two-worker
    build 22% slower (bench_build, 2026-12-01), so files travel once, grouped by repository."""

    def __init__(self, cfg: BuildConfig):
        self.cfg = cfg

    def process(self, item, model: bytes, held_out: str | None):
        repo, files = item
        files = sorted((pickle.loads(f) for f in files), key=lambda f: f.path)
        FILES_PACKED.inc(len(files))
        cfg, tok = self.cfg, self.tokenizer(model)
        segments, extractions, graph_error = {}, {}, None
        for f in files:
            if has_parser(f.language) and graph_error is None:
                try:
                    extractions[f.path] = extract_imports(f.content, f.language)
                except Exception as err:  # costs the order, not the file
                    graph_error = err
            try:
                segments[f.path] = file_segments(
                    replace(f, repo=repo), tok, seed=cfg.seed, fim_rate=cfg.fim_rate,
                    seq_len=cfg.seq_len, split=cfg.fim_split)
            except Exception as err:
                yield beam.pvalue.TaggedOutput("drops",
                                               processing_error(repo, f.path, "pack", err))
        files = [f for f in files if f.path in segments]
        try:
            if graph_error is not None:
                raise graph_error
            graph = order_repository(files, strategy=cfg.order if cfg.order != RANDOM
                                     else "codegemma", extractions=extractions)
            order, edges = graph.order, graph.edges
            if cfg.order == RANDOM:  # the ablation's baseline: same clusters, no order
                order = sorted(order, key=lambda p: stable_hash("order", str(cfg.seed), repo, p))
        except Exception as err:  # a graph failure costs the order, not the files
            log.warning("%s: dependency order failed (%s); alphabetical order", repo, err)
            order, edges = [f.path for f in files], []
        assemble = lambda paths, edges=(): assemble_repo(  # noqa: E731
            repo, [(p, segments[p]) for p in paths], tok, seq_len=cfg.seq_len,
            val_fraction=cfg.val_fraction, edges=list(edges), held_out=held_out)
        try:
            yield from _counted(assemble(order, edges), cfg.seed)
        except Exception:  # find the file that breaks packing; keep the rest, one by one
            for p in order:
                try:
                    yield from _counted(assemble([p]), cfg.seed)
                except Exception as err:
                    yield beam.pvalue.TaggedOutput("drops",
                                                   processing_error(repo, p, "pack", err))


class _PackDocument(_WithTokenizer):
    def __init__(self, cfg: BuildConfig):
        self.cfg = cfg

    def process(self, doc, model: bytes, held_out: str | None):
        DOCS_PACKED.inc()
        try:
            yield from _counted(document_examples(doc, self.tokenizer(model),
                                                  seq_len=self.cfg.seq_len,
                                                  val_fraction=self.cfg.val_fraction,
                                                  held_out=held_out),
                                self.cfg.seed)
        except Exception as err:
            yield beam.pvalue.TaggedOutput("drops",
                                           processing_error(doc.repo, doc.path, "pack", err))


class HoldOut(beam.CombineFn):
    """The repository to hold out for validation when the split hash holds out none: with
    ``val_fraction`` > 0 and two or more repositories, the validation split is never empty
    (an empty split breaks evaluation and the readers of the shards). The pick is the
    repository of least split rank, a code repository if there is one. Inputs are
    (repo, source) per kept file; the accumulator stays a few tuples."""

    def __init__(self, val_fraction: float):
        self.val_fraction = val_fraction

    def create_accumulator(self):
        return (False, None, None, ())  # any held out, least code, least nl, distinct (<= 2)

    def add_input(self, acc, item):
        repo, source = item
        held, code, nl, seen = acc
        if held:
            return acc
        if repo_split(repo, self.val_fraction) == "validation":
            return (True, None, None, ())
        rank = (split_rank(repo), repo)
        if source == CODE:
            code = rank if code is None else min(code, rank)
        else:
            nl = rank if nl is None else min(nl, rank)
        if repo not in seen and len(seen) < 2:
            seen = tuple(sorted(seen + (repo,)))
        return (held, code, nl, seen)

    def merge_accumulators(self, accs):
        held, code, nl, seen = self.create_accumulator()
        for a_held, a_code, a_nl, a_seen in accs:
            held = held or a_held
            code = min([x for x in (code, a_code) if x is not None], default=None)
            nl = min([x for x in (nl, a_nl) if x is not None], default=None)
            seen = tuple(sorted(set(seen) | set(a_seen)))[:2]
        return (True, None, None, ()) if held else (held, code, nl, seen)

    def extract_output(self, acc):
        held, code, nl, seen = acc
        if held or self.val_fraction <= 0 or len(seen) < 2:
            return None
        return (code or nl)[1]


class _Histogram(beam.CombineFn):
    def create_accumulator(self):
        return np.zeros(mixture.BUCKETS, dtype=np.int64)

    def add_input(self, acc, pair):
        acc[pair[0]] += pair[1]
        return acc

    def merge_accumulators(self, accs):
        return np.sum(list(accs), axis=0)

    def extract_output(self, acc):
        return acc


class _Mix(beam.DoFn):
    """Keep or drop each example by the mixture plan, keyed by its shard (split, index) when
    kept (and counted); report every file part's fate."""

    def __init__(self, seed: int):
        self.seed = seed

    def process(self, item, decision: dict, counts: dict):
        example, ids = item
        EXAMPLES_MIXED.inc()
        kept = mixture.keep(example.source, mixture.bucket(self.seed, example.id), decision)
        if kept:
            EXAMPLES_KEPT.inc()
            split = example.split
            yield ((split, stable_hash("shard", example.repo) % counts[f"shards_{split}"]),
                   packed(item))
            yield beam.pvalue.TaggedOutput("counts", example_counter(item))
        for f in example.files:
            yield beam.pvalue.TaggedOutput(
                "parts", ((example.repo, f.path), (kept, f.language, example.source)))


class _FileFate(beam.CombineFn):
    """A file is kept when any of its parts is."""

    def create_accumulator(self):
        return None

    def add_input(self, acc, value):
        return value if acc is None or (value[0] and not acc[0]) else acc

    def merge_accumulators(self, accs):
        out = None
        for acc in accs:
            if acc is not None:
                out = self.add_input(out, acc)
        return out

    def extract_output(self, acc):
        return acc


def _shard_dtype(model: bytes) -> np.dtype:
    return token_dtype(Tokenizer(model).vocab_size) if model else np.dtype(np.uint16)


class _WriteShard(beam.DoFn):
    def __init__(self, out: str, seq_len: int):
        self.out, self.seq_len = out, seq_len

    def process(self, item, names: dict, model: bytes):
        key, rows = item
        split = key[0]
        index, count = names[key]
        rows = sorted((pickle.loads(r) for r in rows), key=lambda r: r[0].id)
        entries = outputs.write_shard(self.out, split, index, count, rows,
                                      _shard_dtype(model), self.seq_len)
        EXAMPLES_WRITTEN.inc(len(rows))
        log.info("wrote %s shard %d: %d examples in %d sequences", split, index, len(rows),
                 entries[-1]["sequences"])
        yield from entries


def dense_shard_names(keys: list) -> dict:
    """{(split, bucket): (index, count)} over the buckets that received examples: a
    repository hashes to one of the split's buckets, and a bucket no repository hashed to
    gets no file (an empty shard breaks Hugging Face ``datasets`` and Megatron's readers), so
    the files are numbered k-of-n over the non-empty buckets, in bucket order."""
    names = {}
    for split in SPLITS:
        buckets = sorted(b for s, b in keys if s == split)
        names.update({(split, b): (i, len(buckets)) for i, b in enumerate(buckets)})
    return names


def shard_count(tokens: int, shard_tokens: int) -> int:
    """Buckets for a split's repositories: none for an empty split."""
    return math.ceil(tokens / shard_tokens)


class _SumCounters(beam.CombineFn):
    def create_accumulator(self):
        return {}

    def add_input(self, acc, counter):
        for k, v in counter.items():
            acc[k] = acc.get(k, 0) + v
        return acc

    def merge_accumulators(self, accs):
        out = {}
        for acc in accs:
            self.add_input(out, acc)
        return out

    def extract_output(self, acc):
        return dict(sorted(acc.items()))


def example_counter(item) -> dict:
    example, ids = item
    n = len(ids)
    c = {"examples": 1, f"examples_{example.split}": 1, f"examples_{example.source}": 1,
         f"tokens_{example.source}": n, f"tokens_{example.split}": n, "tokens": n}
    for f in example.files:
        if example.source == CODE:
            c[f"fim:{f.fim}"] = c.get(f"fim:{f.fim}", 0) + 1
        if f.parts > 1:
            c["file_parts"] = c.get("file_parts", 0) + 1
            c["files_split"] = c.get("files_split", 0) + int(f.part == 0)
    return c


def fate_counter(item) -> dict:
    (repo, path), (kept, language, source) = item
    if kept:
        return {"kept_files": 1, f"kept_{source}": 1, f"language:{language}": 1}
    return {}


def _counts(pcoll, label: str, fn):
    return pcoll | label >> beam.Map(fn)


def _sum_into_report(counts: list, out: str, record_files: tuple, shard_list=None):
    """OUT/.build/stats.json: the summed counters, the shards' and the record files' entries
    (small aggregates: one entry per file written)."""
    stats = (tuple(counts) | "AllCounts" >> beam.Flatten()
             | "SumCounts" >> beam.CombineGlobally(_SumCounters()))
    records = beam.pvalue.AsSingleton(
        record_files | "AllRecordFiles" >> beam.Flatten()
        | "RecordFileList" >> beam.combiners.ToList())
    if shard_list is None:
        shard_list = stats.pipeline | "NoShards" >> beam.Create([[]])
    path = outputs.join(out, ".build", "stats.json")
    return stats | "Report" >> beam.Map(
        lambda c, shards, records: outputs.write_json(path, {
            "counts": c, "shards": sorted(shards, key=lambda e: e["path"]),
            "records": sorted(records, key=lambda e: e["path"])}),
        beam.pvalue.AsSingleton(shard_list), records)


def pipeline(p: beam.Pipeline, sources: list[RepoSource], cfg: BuildConfig):
    """Wire the build into P. Returns nothing: every output is a file under cfg.out."""
    out = cfg.out
    files, read_drops = p | "Sources" >> beam.Create(sources) | "Ingest" >> Ingest(cfg.limits)
    clean, dedup_drops, clusters = files | "Dedup" >> Dedup(cfg.dedup)
    cluster_files = clusters | "WriteClusters" >> outputs.WriteRecords(
        out, "dedup/clusters", outputs.CLUSTERS_SCHEMA, outputs.cluster_row)
    drop_sets = [read_drops, dedup_drops]
    counts = [_counts(clusters, "ClusterCounts",
                      lambda c: {f"cluster_members:{c.level}-{c.kind}": 1,
                                 f"cluster_dropped:{c.level}-{c.kind}": int(not c.kept),
                                 f"clusters:{c.level}-{c.kind}": int(c.kept)})]
    if cfg.dedup_only:
        drops = tuple(drop_sets) | "AllDrops" >> beam.Flatten()
        counts += [_counts(drops, "DropCounts",
                           lambda d: {"dropped_files": 1, f"drop:{d.reason}": 1}),
                   _counts(clean, "KeptCounts",
                           lambda f: {"kept_files": 1, f"kept_{f.source}": 1,
                                      f"language:{f.language}": 1})]
        drop_files = drops | "WriteDrops" >> outputs.WriteRecords(
            out, "drops", outputs.DROPS_SCHEMA, outputs.drop_row)
        _sum_into_report(counts, out, (cluster_files, drop_files))
        return

    if cfg.quality is not None:
        clean, quality_drops = clean | "QualityFilter" >> QualityFilter(cfg.quality)
        drop_sets.append(quality_drops)
    benchmarks = [humaneval_path()] if cfg.benchmarks is None else cfg.benchmarks
    if benchmarks:
        clean, contaminated = clean | "Decontaminate" >> Decontaminate(benchmarks)
        drop_sets.append(contaminated)
    if cfg.pii:
        clean, pii_counts, pii_failed = clean | "RedactPII" >> RedactPII()
        counts.append(pii_counts)
        drop_sets.append(pii_failed)

    if cfg.tokenizer:
        model = p | "UserTokenizer" >> beam.Create([outputs.read_bytes(cfg.tokenizer)])
    else:
        seed = str(cfg.seed)
        model = (
            clean
            | "SampleKey" >> beam.Map(lambda f: (stable_hash("tokenizer", seed, f.repo, f.path),
                                                 f.content))
            | "Sample" >> beam.combiners.Top.Smallest(cfg.tokenizer_sample_docs)
            | "TrainTokenizer" >> beam.Map(
                lambda sample: train_model_in_fresh_process(
                    [t for _, t in sample], cfg.vocab_size, cfg.tokenizer_sample_chars)
                if sample else b""))
    _ = model | "WriteTokenizer" >> beam.Map(
        lambda m: outputs.write_atomic(outputs.join(out, "tokenizer.model"), m) if m else None)
    model_side = beam.pvalue.AsSingleton(model)
    held_out = beam.pvalue.AsSingleton(
        clean
        | "RepoSources" >> beam.Map(lambda f: (f.repo, f.source))
        | "HoldOut" >> beam.CombineGlobally(HoldOut(cfg.val_fraction)))

    code_examples = (
        clean
        | "Code" >> beam.Filter(lambda f: f.source == CODE)
        | "KeyByRepo" >> beam.Map(lambda f: (f.repo, packed(f)))
        | "GroupByRepo" >> beam.GroupByKey()
        | "PackRepo" >> beam.ParDo(_PackRepo(cfg), model_side, held_out).with_outputs(
            "drops", "stats", main="examples"))
    doc_examples = (clean
                    | "Docs" >> beam.Filter(lambda f: f.source != CODE)
                    | "PackDocument" >> beam.ParDo(_PackDocument(cfg), model_side, held_out)
                    .with_outputs("drops", "stats", main="examples"))
    drop_sets += [code_examples.drops, doc_examples.drops]
    stats = (code_examples.stats, doc_examples.stats) | "AllStats" >> beam.Flatten()
    examples = (code_examples.examples, doc_examples.examples) | "AllExamples" >> beam.Flatten()

    # The mixture: one token histogram per source, a plan, a keep/drop per example; the plan
    # and the shard counts come from the small stats records, so the examples are read once,
    # to be kept or dropped and keyed by shard.
    decision = beam.pvalue.AsSingleton(
        stats
        | "MixtureKey" >> beam.Map(lambda s: (s[0], (s[2], s[3])))
        | "Histograms" >> beam.CombinePerKey(_Histogram())
        | "HistogramDict" >> beam.combiners.ToDict()
        | "MixturePlan" >> beam.Map(lambda h: mixture.plan(
            h.get(CODE, np.zeros(1, np.int64)), h.get("nl", np.zeros(1, np.int64)),
            cfg.code_fraction)))
    # Shard counts come from the data (not the worker count), so outputs are identical
    # however the build is spread. A repository's examples share a shard, so they can share
    # sequences.
    shard_tokens = cfg.shard_tokens
    split_counts = (
        stats
        | "SplitTokens" >> beam.Map(lambda s, d: {s[1]: s[3] if mixture.keep(s[0], s[2], d)
                                                  else 0}, decision)
        | "CountSplits" >> beam.CombineGlobally(_SumCounters())
        | "ShardCounts" >> beam.Map(lambda c: {
            f"shards_{s}": shard_count(c.get(s, 0), shard_tokens) for s in SPLITS}))
    counts_side = beam.pvalue.AsSingleton(split_counts)
    keyed, parts, example_counts = examples | "Mixture" >> beam.ParDo(
        _Mix(cfg.seed), decision, counts_side).with_outputs("parts", "counts", main="kept")
    fates = parts | "FileFate" >> beam.CombinePerKey(_FileFate())
    drop_sets.append(fates
                     | "MixtureDrops" >> beam.Filter(lambda kv: not kv[1][0])
                     | "AsDrops" >> beam.Map(lambda kv: Drop(kv[0][0], kv[0][1],
                                                             "mixture_sampling")))
    counts.append(_counts(fates, "KeptCounts", fate_counter))

    drops = tuple(drop_sets) | "AllDrops" >> beam.Flatten()
    counts.append(_counts(drops, "DropCounts",
                          lambda d: {"dropped_files": 1, f"drop:{d.reason}": 1}))
    drop_files = drops | "WriteDrops" >> outputs.WriteRecords(
        out, "drops", outputs.DROPS_SCHEMA, outputs.drop_row)

    names = beam.pvalue.AsSingleton(
        keyed
        | "ShardKeys" >> beam.Keys()
        | "DistinctShards" >> beam.Distinct()
        | "ShardKeyList" >> beam.combiners.ToList()
        | "ShardNames" >> beam.Map(dense_shard_names))
    shard_entries = (
        keyed
        | "GroupByShard" >> beam.GroupByKey()
        | "WriteShards" >> beam.ParDo(_WriteShard(out, cfg.seq_len), names, model_side))
    counts.append(example_counts)
    shard_list = shard_entries | "ShardList" >> beam.combiners.ToList()
    _sum_into_report(counts, out, (cluster_files, drop_files), shard_list)


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
