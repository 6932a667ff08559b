"""``fimpack build``: repositories in, examples, tokenizer and token shards out.

    sources -> Ingest -> ExactDedup -> group by repo -> order -> FIM examples
            -> sample -> train tokenizer (one worker) -> tokenise (side input) -> shards

The driver writes ``manifest.json`` last, after the pipeline has finished, so a manifest
always describes complete outputs.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.transforms.environments import SubprocessSDKEnvironment

import fimpack
from fimpack.dedup.decontaminate import Decontaminate, humaneval_path
from fimpack.dedup.pii import RedactPII
from fimpack.dedup.quality import QualityConfig, QualityFilter
from fimpack.dedup.stages import Dedup, DedupConfig
from fimpack.packing.examples import document_example, repo_examples, stable_hash
from fimpack.packing.order import order_files
from fimpack.packing.shards import token_dtype
from fimpack.packing.tokenizer import Tokenizer, train_model
from fimpack.pipelines import outputs
from fimpack.pipelines.ingest import Ingest, Limits, RepoSource
from fimpack.records import CODE, SENTINEL, Example

log = logging.getLogger("fimpack.build")

MANIFEST_VERSION = 1


@dataclass
class BuildConfig:
    out: str
    input: str | None = None          # None: the embedded default corpus
    seed: int = 0
    fim_rate: float = 0.8             # CodeGemma 7B / 2B v1.0
    max_example_chars: int = 24_000   # files per example until this many characters
    val_fraction: float = 0.05        # repositories held out for validation
    vocab_size: int = 32_000
    tokenizer: str | None = None      # a user-supplied sentencepiece model
    tokenizer_sample_docs: int = 4_000
    tokenizer_sample_chars: int = 20_000_000
    examples_per_shard: int = 20_000
    max_repos: int = 0                # embedded default only: cap the repositories
    workers: int = 1
    limits: Limits = field(default_factory=Limits)
    dedup: DedupConfig = field(default_factory=DedupConfig)
    quality: QualityConfig | None = field(default_factory=QualityConfig)  # None: no filter
    benchmarks: list[str] | None = None  # decontamination sets; None: HumanEval; []: off
    pii: bool = True                     # redact emails, IPs, keys
    dedup_only: bool = False             # `fimpack dedup`: stop after dedup


class _Tokenize(beam.DoFn):
    """Example -> (example, token ids); the tokenizer arrives as a side input."""

    def setup(self):
        self._tok = None

    def process(self, example: Example, model: bytes):
        if self._tok is None or self._tok.proto != model:
            self._tok = Tokenizer(model)
        yield example, self._tok.encode_example(example)


class _WriteShard(beam.DoFn):
    def __init__(self, out: str):
        self.out = out

    def process(self, item, counts: dict, model: bytes):
        (split, index), rows = item
        rows = sorted(rows, key=lambda r: r[0].id)
        dtype = token_dtype(Tokenizer(model).vocab_size)
        entries = outputs.write_shard(self.out, split, index, shard_count(counts, split, None),
                                      rows, dtype)
        log.info("wrote %s shard %d: %d examples", split, index, len(rows))
        yield from entries


def shard_count(counts: dict, split: str, per_shard: int | None) -> int:
    if per_shard is None:  # already computed into the counts dict
        return counts[f"shards_{split}"]
    return max(1, math.ceil(counts.get(split, 0) / per_shard))


def tokenizer_text(example: Example) -> str:
    return "".join(p.text for p in example.pieces if p.kind != SENTINEL)


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


def file_counter(f) -> dict:
    return {"kept_files": 1, f"kept_{f.source}": 1, f"language:{f.language}": 1,
            "kept_bytes": len(f.content.encode("utf-8"))}


def example_counter(item) -> dict:
    example, ids = item
    n = len(ids)
    return {"examples": 1, f"examples_{example.split}": 1, f"examples_{example.source}": 1,
            f"tokens_{example.source}": n, f"tokens_{example.split}": n, "tokens": n}


def fim_counter(example: Example) -> dict:
    c: dict = {}
    for f in example.files:
        if example.source == CODE:
            c[f"fim:{f.fim}"] = c.get(f"fim:{f.fim}", 0) + 1
    return c


def _counts(pcoll, label: str, fn):
    return pcoll | label >> beam.Map(fn)


def pipeline(p: beam.Pipeline, sources: list[RepoSource], cfg: BuildConfig):
    """Wire the build into P. Returns nothing: every output is a file under cfg.out."""
    out = cfg.out
    files, read_drops = p | "Sources" >> beam.Create(sources) | "Ingest" >> Ingest(cfg.limits)
    unique, dedup_drops, clusters = files | "Dedup" >> Dedup(cfg.dedup)
    _ = (clusters
         | "ClusterList" >> beam.combiners.ToList()
         | "WriteClusters" >> beam.Map(lambda rows: outputs.write_clusters(out, rows)))
    drop_sets = [read_drops, dedup_drops]
    counts = [_counts(clusters, "ClusterCounts",
                      lambda c: {f"cluster_members:{c.level}-{c.kind}": 1,
                                 f"cluster_dropped:{c.level}-{c.kind}": int(not c.kept),
                                 f"clusters:{c.level}-{c.kind}": int(c.kept)})]
    clean = unique
    if not cfg.dedup_only:
        if cfg.quality is not None:
            clean, quality_drops = clean | "QualityFilter" >> QualityFilter(cfg.quality)
            drop_sets.append(quality_drops)
        benchmarks = [humaneval_path()] if cfg.benchmarks is None else cfg.benchmarks
        if benchmarks:
            clean, contaminated = clean | "Decontaminate" >> Decontaminate(benchmarks)
            drop_sets.append(contaminated)
        if cfg.pii:
            clean, pii_counts = clean | "RedactPII" >> RedactPII()
            counts.append(pii_counts)
    drops = tuple(drop_sets) | "AllDrops" >> beam.Flatten()
    counts += [_counts(drops, "DropCounts",
                       lambda d: {"dropped_files": 1, f"drop:{d.reason}": 1}),
               _counts(clean, "KeptCounts", file_counter)]
    _ = (drops
         | "DropList" >> beam.combiners.ToList()
         | "WriteDrops" >> beam.Map(lambda ds: outputs.write_drops(out, ds)))
    if cfg.dedup_only:
        _ = (tuple(counts)
             | "AllCounts" >> beam.Flatten()
             | "SumCounts" >> beam.CombineGlobally(_SumCounters())
             | "Report" >> beam.Map(lambda c: outputs.write_json(
                 outputs.join(out, ".build", "stats.json"), {"counts": c, "shards": []})))
        return
    code = clean | "Code" >> beam.Filter(lambda f: f.source == CODE)
    docs = clean | "Docs" >> beam.Filter(lambda f: f.source != CODE)
    code_examples = (
        code
        | "KeyByRepo" >> beam.Map(lambda f: (f.repo, f))
        | "GroupByRepo" >> beam.GroupByKey()
        | "PackRepo" >> beam.FlatMap(
            lambda kv: repo_examples(kv[0], order_files(list(kv[1])), seed=cfg.seed,
                                     fim_rate=cfg.fim_rate, max_chars=cfg.max_example_chars,
                                     val_fraction=cfg.val_fraction)))
    doc_examples = docs | "DocExamples" >> beam.Map(
        document_example, val_fraction=cfg.val_fraction)
    examples = (code_examples, doc_examples) | "AllExamples" >> beam.Flatten()

    if cfg.tokenizer:
        model = p | "UserTokenizer" >> beam.Create([outputs.read_bytes(cfg.tokenizer)])
    else:
        model = (
            examples
            | "SampleKey" >> beam.Map(lambda e: (stable_hash("tokenizer", str(cfg.seed), e.id),
                                                 tokenizer_text(e)))
            | "Sample" >> beam.combiners.Top.Smallest(cfg.tokenizer_sample_docs)
            | "TrainTokenizer" >> beam.Map(
                lambda sample: train_model([t for _, t in sample], cfg.vocab_size,
                                           cfg.tokenizer_sample_chars) if sample else b""))
    _ = model | "WriteTokenizer" >> beam.Map(
        lambda m: outputs.write_atomic(outputs.join(out, "tokenizer.model"), m) if m else None)

    tokenized = examples | "Tokenize" >> beam.ParDo(_Tokenize(), beam.pvalue.AsSingleton(model))

    # Shard counts come from the data (not the worker count), so outputs are identical
    # however the build is spread.
    per_shard = cfg.examples_per_shard
    split_counts = (
        examples
        | "SplitOf" >> beam.Map(lambda e: {e.split: 1})
        | "CountSplits" >> beam.CombineGlobally(_SumCounters())
        | "ShardCounts" >> beam.Map(lambda c: {**c, **{
            f"shards_{s}": shard_count(c, s, per_shard) for s in ("train", "validation")}}))
    counts_side = beam.pvalue.AsSingleton(split_counts)
    shard_entries = (
        tokenized
        | "KeyByShard" >> beam.Map(
            lambda item, c: ((item[0].split,
                              stable_hash("shard", item[0].id) % c[f"shards_{item[0].split}"]),
                             item), counts_side)
        | "GroupByShard" >> beam.GroupByKey()
        | "WriteShards" >> beam.ParDo(_WriteShard(out), counts_side,
                                      beam.pvalue.AsSingleton(model)))

    counts += [_counts(tokenized, "ExampleCounts", example_counter),
               _counts(examples, "FimCounts", fim_counter)]
    stats = tuple(counts) | "AllCounts" >> beam.Flatten() | "SumCounts" >> beam.CombineGlobally(
        _SumCounters())
    shard_list = shard_entries | "ShardList" >> beam.combiners.ToList()
    _ = (stats
         | "Report" >> beam.Map(
             lambda s, shards: outputs.write_json(
                 outputs.join(out, ".build", "stats.json"),
                 {"counts": s, "shards": sorted(shards, key=lambda e: e["path"])}),
             beam.pvalue.AsSingleton(shard_list)))


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
            "kept_bytes": c.get("kept_bytes", 0),
            "kept_by_language": {k.split(":", 1)[1]: v for k, v in c.items()
                                 if k.startswith("language:")},
            "fim_files": {k.split(":", 1)[1]: v for k, v in c.items() if k.startswith("fim:")},
            "examples": c.get("examples", 0),
            "examples_by_split": {s: c.get(f"examples_{s}", 0) for s in ("train", "validation")},
            "examples_by_source": {s: c.get(f"examples_{s}", 0) for s in ("code", "nl")},
            "tokens": total_tokens, "tokens_by_source": tokens,
            "tokens_by_split": {s: c.get(f"tokens_{s}", 0) for s in ("train", "validation")},
            "code_fraction": round(tokens["code"] / total_tokens, 6) if total_tokens else None,
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
    runner = None
    if not options.get_all_options().get("runner"):
        runner = local_runner(options, cfg.workers)
    clear_outputs(cfg.out)
    started = time.time()
    log.info("building %d sources into %s", len(sources), cfg.out)
    with beam.Pipeline(runner=runner, options=options) as p:
        pipeline(p, sources, cfg)
    report = json.loads(outputs.read_bytes(outputs.join(cfg.out, ".build", "stats.json")))
    tok_path = outputs.join(cfg.out, "tokenizer.model")
    tok = Tokenizer(outputs.read_bytes(tok_path)) if FileSystems.exists(tok_path) else None
    manifest = make_manifest(cfg, report, tok, time.time() - started)
    outputs.write_json(outputs.join(cfg.out, "manifest.json"), manifest)
    return manifest
