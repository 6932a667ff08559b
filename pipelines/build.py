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

import hashlib
import json
import logging
import math
import pickle
import platform
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from importlib import metadata

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.metrics.metric import MetricsFilter
import numpy as np
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions
from apache_beam.runners.portability.fn_api_runner import FnApiRunner, worker_handlers
from apache_beam.transforms.environments import SubprocessSDKEnvironment

import fimpack
from fimpack.dedup.decontaminate import Decontaminate, humaneval_path
from fimpack.dedup.pii import RedactPII
from fimpack.dedup.quality import QualityConfig, QualityFilter
from fimpack.dedup.stages import Dedup, DedupConfig
from fimpack.packing import mixture
from fimpack.packing.examples import (assemble_repo, document_examples, file_segments,
                                      stable_hash)
from fimpack.packing.fim import MIXED
from fimpack.packing.graph import order_repository
from fimpack.packing.imports import extract_imports, has_parser
from fimpack.packing.shards import token_dtype
from fimpack.packing.tokenizer import Tokenizer, train_model_in_fresh_process
from fimpack.pipelines import outputs
from fimpack.pipelines.ingest import AUDIT, Ingest, Limits, RepoSource
from fimpack.records import CODE, Drop, processing_error

log = logging.getLogger("fimpack.build")

MANIFEST_VERSION = 2
SPLITS = ("train", "validation")


@dataclass
class BuildConfig:
    out: str
    input: str | None = None          # None: the embedded default corpus
    seed: int = 0
    seq_len: int = 8192               # tokens per packed training sequence
    fim_rate: float = 0.8             # CodeGemma 7B / 2B v1.0
    fim_split: str = MIXED            # "uniform", "syntax" or "mixed" (50/50)
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

    def process(self, item, model: bytes):
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
            graph = order_repository(files, extractions=extractions)
            order, edges = graph.order, graph.edges
        except Exception as err:  # a graph failure costs the order, not the files
            log.warning("%s: dependency order failed (%s); alphabetical order", repo, err)
            order, edges = [f.path for f in files], []
        assemble = lambda paths, edges=(): assemble_repo(  # noqa: E731
            repo, [(p, segments[p]) for p in paths], tok, seq_len=cfg.seq_len,
            val_fraction=cfg.val_fraction, edges=list(edges))
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

    def process(self, doc, model: bytes):
        DOCS_PACKED.inc()
        try:
            yield from _counted(document_examples(doc, self.tokenizer(model),
                                                  seq_len=self.cfg.seq_len,
                                                  val_fraction=self.cfg.val_fraction),
                                self.cfg.seed)
        except Exception as err:
            yield beam.pvalue.TaggedOutput("drops",
                                           processing_error(doc.repo, doc.path, "pack", err))


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

    def process(self, item, counts: dict, model: bytes):
        (split, index), rows = item
        rows = sorted((pickle.loads(r) for r in rows), key=lambda r: r[0].id)
        entries = outputs.write_shard(self.out, split, index, counts[f"shards_{split}"], rows,
                                      _shard_dtype(model), self.seq_len)
        EXAMPLES_WRITTEN.inc(len(rows))
        log.info("wrote %s shard %d: %d examples in %d sequences", split, index, len(rows),
                 entries[-1]["sequences"])
        yield from entries


def _with_empty_shards(entries: list[dict], counts: dict, model: bytes, out: str,
                       seq_len: int) -> list[dict]:
    """ENTRIES of the shards written, and those of the empty shards, written now."""
    dtype = _shard_dtype(model)
    have = {e["path"] for e in entries}
    for split in SPLITS:
        n = counts[f"shards_{split}"]
        for index in range(n):
            if f"examples/{outputs.shard_name(split, index, n)}.parquet" not in have:
                entries = entries + outputs.write_shard(out, split, index, n, [], dtype, seq_len)
    return entries


def shard_count(tokens: int, shard_tokens: int) -> int:
    return max(1, math.ceil(tokens / shard_tokens))


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


def _sum_into_report(counts: list, out: str, shard_list=None):
    stats = (tuple(counts) | "AllCounts" >> beam.Flatten()
             | "SumCounts" >> beam.CombineGlobally(_SumCounters()))
    path = outputs.join(out, ".build", "stats.json")
    if shard_list is None:
        return stats | "Report" >> beam.Map(
            lambda c: outputs.write_json(path, {"counts": c, "shards": []}))
    return stats | "Report" >> beam.Map(
        lambda c, shards: outputs.write_json(
            path, {"counts": c, "shards": sorted(shards, key=lambda e: e["path"])}),
        beam.pvalue.AsSingleton(shard_list))


def pipeline(p: beam.Pipeline, sources: list[RepoSource], cfg: BuildConfig):
    """Wire the build into P. Returns nothing: every output is a file under cfg.out."""
    out = cfg.out
    files, read_drops = p | "Sources" >> beam.Create(sources) | "Ingest" >> Ingest(cfg.limits)
    clean, dedup_drops, clusters = files | "Dedup" >> Dedup(cfg.dedup)
    _ = (clusters
         | "ClusterList" >> beam.combiners.ToList()
         | "WriteClusters" >> beam.Map(lambda rows: outputs.write_clusters(out, rows)))
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
        _ = (drops | "DropList" >> beam.combiners.ToList()
             | "WriteDrops" >> beam.Map(lambda ds: outputs.write_drops(out, ds)))
        _sum_into_report(counts, out)
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

    code_examples = (
        clean
        | "Code" >> beam.Filter(lambda f: f.source == CODE)
        | "KeyByRepo" >> beam.Map(lambda f: (f.repo, packed(f)))
        | "GroupByRepo" >> beam.GroupByKey()
        | "PackRepo" >> beam.ParDo(_PackRepo(cfg), model_side).with_outputs(
            "drops", "stats", main="examples"))
    doc_examples = (clean
                    | "Docs" >> beam.Filter(lambda f: f.source != CODE)
                    | "PackDocument" >> beam.ParDo(_PackDocument(cfg), model_side).with_outputs(
                        "drops", "stats", main="examples"))
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
    _ = (drops
         | "DropList" >> beam.combiners.ToList()
         | "WriteDrops" >> beam.Map(lambda ds: outputs.write_drops(out, ds)))

    shard_entries = (
        keyed
        | "GroupByShard" >> beam.GroupByKey()
        | "WriteShards" >> beam.ParDo(_WriteShard(out, cfg.seq_len), counts_side, model_side))
    counts.append(example_counts)
    # Every shard of "k-of-n" exists, even one that no repository hashed to: those are
    # written empty once the others are done (a Flatten of empty-shard markers into the
    # GroupByKey would cost FnApiRunner a stage that copies every kept example).
    shard_list = (shard_entries
                  | "ShardList" >> beam.combiners.ToList()
                  | "WithEmptyShards" >> beam.Map(_with_empty_shards, counts_side, model_side,
                                                  out, cfg.seq_len))
    _sum_into_report(counts, out, shard_list)


def versions() -> dict:
    names = ["apache-beam", "pyarrow", "sentencepiece", "datasketch", "networkx",
             "tree-sitter", "xxhash", "numpy"]
    out = {"fimpack": fimpack.__version__, "python": platform.python_version()}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def clear_outputs(out: str) -> None:
    """Remove what an earlier build left, so no stale shard can sit beside new ones."""
    for pattern in ("examples/*", "tokens/*", "manifest.json", "tokenizer.model",
                    "drops.parquet", "dedup/*", ".build/*"):
        matches = FileSystems.match([outputs.join(out, pattern)])[0].metadata_list
        if matches:
            FileSystems.delete([m.path for m in matches])


def utilisation(shards: list[dict]) -> float | None:
    """Non-padding tokens / all tokens of the packed sequences."""
    bins = [e for e in shards if e["path"].endswith(".bin")]
    slots = sum(e["sequences"] * e["seq_len"] for e in bins)
    return round(sum(e["tokens"] for e in bins) / slots, 6) if slots else None


def make_manifest(cfg: BuildConfig, report: dict, tok: Tokenizer | None, seconds: float) -> dict:
    c = report["counts"]
    dropped = {k.split(":", 1)[1]: v for k, v in c.items() if k.startswith("drop:")}
    kept, n_dropped = c.get("kept_files", 0), c.get("dropped_files", 0)
    tokens = {"code": c.get("tokens_code", 0), "nl": c.get("tokens_nl", 0)}
    total_tokens = sum(tokens.values())
    config = asdict(cfg)
    return {
        "format": "fimpack-build", "manifest_version": MANIFEST_VERSION,
        "config": config, "seed": cfg.seed, "versions": versions(),
        "counts": {
            "input_files": kept + n_dropped, "kept_files": kept, "dropped_files": n_dropped,
            "dropped_by_reason": dict(sorted(dropped.items())),
            "kept_by_source": {"code": c.get("kept_code", 0), "nl": c.get("kept_nl", 0)},
            "kept_by_language": {k.split(":", 1)[1]: v for k, v in c.items()
                                 if k.startswith("language:")},
            "fim_files": {k.split(":", 1)[1]: v for k, v in c.items() if k.startswith("fim:")},
            "examples": c.get("examples", 0),
            "examples_by_split": {s: c.get(f"examples_{s}", 0) for s in ("train", "validation")},
            "examples_by_source": {s: c.get(f"examples_{s}", 0) for s in ("code", "nl")},
            "tokens": total_tokens, "tokens_by_source": tokens,
            "tokens_by_split": {s: c.get(f"tokens_{s}", 0) for s in ("train", "validation")},
            "code_fraction": round(tokens["code"] / total_tokens, 6) if total_tokens else None,
            "code_fraction_target": cfg.code_fraction,
            "files_split": c.get("files_split", 0), "file_parts": c.get("file_parts", 0),
            "sequences": sum(e["sequences"] for e in report["shards"]
                             if e["path"].endswith(".bin")),
            "utilisation": utilisation(report["shards"]),
            "pii_redactions": {k.split(":", 1)[1]: v for k, v in c.items()
                               if k.startswith("pii:")},
            "pii_files": c.get("pii_files", 0),
        },
        "dedup": {
            level: {"clusters": c.get(f"clusters:{level}", 0),
                    "members": c.get(f"cluster_members:{level}", 0),
                    "dropped": c.get(f"cluster_dropped:{level}", 0)}
            for level in ("repo-near", "file-exact", "file-near")},
        "tokenizer": None if tok is None else {
            "path": "tokenizer.model", "vocab_size": tok.vocab_size, "bos_id": tok.bos_id,
            "eos_id": tok.eos_id, "pad_id": tok.pad_id, "control_ids": tok.control_ids,
            "trained": cfg.tokenizer is None,
            "sha256": hashlib.sha256(tok.proto).hexdigest()},
        "tokens_dtype": None if tok is None else token_dtype(tok.vocab_size).name,
        "shards": report["shards"],
        "timing": {"created_unix": int(time.time()), "seconds": round(seconds, 1)},
    }


class DataLost(RuntimeError):
    """The runner delivered fewer records to a stage than an earlier stage sent."""


def audit_counters(result) -> dict:
    """The audit counters' committed totals; empty when the runner reports no metrics."""
    try:
        found = result.metrics().query(MetricsFilter().with_namespace(AUDIT))["counters"]
    except Exception:  # a runner without metrics support: nothing to audit against
        return {}
    totals: dict[str, int] = {}
    for c in found:  # one result per (step, counter): a counter may be charged to several steps
        value = c.committed if c.committed is not None else c.attempted
        totals[c.key.metric.name] = totals.get(c.key.metric.name, 0) + (value or 0)
    return totals


def audit(counters: dict, manifest: dict) -> None:
    """Check the data's own counts against the metrics channel's; raise DataLost on a gap,
    before the manifest is written, so an incomplete build never looks finished."""
    c = manifest["counts"]
    written = sum(e["examples"] for e in manifest["shards"] if e["path"].endswith(".parquet"))
    checks = [("input_files", c["input_files"], "files read but neither kept nor dropped")]
    if not manifest["config"]["dedup_only"]:
        checks += [("examples_kept", c["examples"], "examples kept but not counted"),
                   ("examples_kept", written, "examples kept but not written to a shard"),
                   ("examples_written", written, "examples written but not listed"),
                   ("examples_made", counters.get("examples_mixed"),
                    "examples packed but never reached the mixture")]
    gaps = [f"{name}: {counters[name]:,} vs {got:,} ({what})" for name, got, what in checks
            if name in counters and got is not None and counters[name] != got]
    if gaps:
        raise DataLost("the runner lost records; the build is incomplete and no manifest was "
                       "written: " + "; ".join(gaps) + ". (FnApiRunner with --workers > 1 has "
                       "done this on 200 MB builds here; --workers 1 has not.) Ledger: "
                       + json.dumps(dict(sorted(counters.items())))
                       + "; data: " + json.dumps({k: c[k] for k in (
                           "input_files", "kept_files", "dropped_files", "examples")}))


EXECUTION_MSECS = "metric:ptransform_execution_time:total_msecs:v1"


def stage_seconds(result) -> dict:
    """Seconds spent in each top-level stage (``Ingest``, ``Dedup``, ``PackRepo``, ...), summed
    over workers: the runner's own per-transform execution time, which charges a fused
    stage's work to the transform that did it. Empty when the runner does not report it."""
    try:
        metrics = (result.monitoring_metrics() if hasattr(result, "monitoring_metrics")
                   else result.metrics()).query()
    except Exception:  # a runner without metrics support: timing is informational
        return {}
    msecs: dict[str, int] = {}
    for counter in metrics.get("counters", []):
        if counter.key.metric.name == EXECUTION_MSECS and counter.key.step:
            stage = counter.key.step.split("/", 1)[0]
            msecs[stage] = msecs.get(stage, 0) + (counter.committed or 0)
    return {k: round(v / 1000, 1) for k, v in sorted(msecs.items(), key=lambda kv: -kv[1])
            if v >= 50}


def no_timed_flush_on_runner_streams() -> None:
    """Turn off the runner side's timed flushing of data sent to SDK workers.

    Beam 2.77's FnApiRunner sends each bundle's input through a
    ``TimeBasedBufferingClosableOutputStream`` (``worker_handlers.DATA_BUFFER_TIME_LIMIT_MS``
    = 1000): a background thread flushes the buffer every second with ``callback(get())``
    then ``_clear()``, while ``write()`` takes no lock, so chunks written by the runner
    during a flush (the callback blocks while the worker is slow to read) are cleared
    unsent and the stream still ends normally. With two or more workers this silently lost
    the tails of large stage inputs on a 204 MB build (BENCHMARKS.md); one worker uses an
    in-memory channel. At 0 the streams buffer by size and send a bundle's input when it
    closes. Worker-side streams default to 0 already."""
    worker_handlers.DATA_BUFFER_TIME_LIMIT_MS = 0


def local_runner(options: PipelineOptions, workers: int) -> FnApiRunner:
    """FnApiRunner (DirectRunner would try Prism, which downloads a binary), with WORKERS
    processes. Each worker is Beam's SDK harness started through ``fimpack.pipelines.worker``,
    which keeps its per-bundle INFO logs off the terminal unless fimpack runs with -v."""
    direct = options.view_as(DirectOptions)
    direct.direct_num_workers = workers
    if workers == 1:
        direct.direct_running_mode = "in_memory"
        return FnApiRunner()
    if logging.getLogger().level <= logging.INFO:
        direct.direct_running_mode = "multi_processing"
        return FnApiRunner()
    direct.direct_running_mode = None  # the environment below is the multi-process one
    command = f"{sys.executable} -m fimpack.pipelines.worker"
    return FnApiRunner(
        default_environment=SubprocessSDKEnvironment.from_command_string(command))


def run(cfg: BuildConfig, sources: list[RepoSource], beam_args: list[str]) -> dict:
    """Run the build pipeline and write the manifest; the manifest."""
    options = PipelineOptions(beam_args)
    no_timed_flush_on_runner_streams()  # in-process runners: FnApiRunner, embedded job server
    runner = None
    if not options.get_all_options().get("runner"):
        runner = local_runner(options, cfg.workers)
    clear_outputs(cfg.out)
    started = time.time()
    log.info("building %d sources into %s", len(sources), cfg.out)
    p = beam.Pipeline(runner=runner, options=options)
    pipeline(p, sources, cfg)
    result = p.run()
    result.wait_until_finish()
    report = json.loads(outputs.read_bytes(outputs.join(cfg.out, ".build", "stats.json")))
    tok_path = outputs.join(cfg.out, "tokenizer.model")
    tok = Tokenizer(outputs.read_bytes(tok_path)) if FileSystems.exists(tok_path) else None
    manifest = make_manifest(cfg, report, tok, time.time() - started)
    manifest["timing"]["stages"] = stage_seconds(result)
    counters = audit_counters(result)
    audit(counters, manifest)
    manifest["audit"] = {"checked": bool(counters), **dict(sorted(counters.items()))}
    outputs.write_json(outputs.join(cfg.out, "manifest.json"), manifest)
    return manifest
