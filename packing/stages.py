"""The packing stages of a build, Beam composites over packing's plain functions:

    kept files -> TrainTokenizer: a seeded sample -> sentencepiece (one worker), or the user's
               -> PackExamples:   per repository: dependency order -> FIM -> tokenised
                                  examples of <= seq_len tokens; per document: plain examples

Files are parsed, formatted and tokenised inside the per-repository DoFn: formatting them in
a stage of their own spreads a large repository over workers, but its output (pieces and
token ids, twice the content) then crosses a shuffle, which made a 105 MB two-worker build
22% slower on FnApiRunner (bench_build, 2026-12-01).
"""
from __future__ import annotations

import logging
import pickle
from dataclasses import replace

import apache_beam as beam
from apache_beam.metrics import Metrics

from fimpack.config import ORDERS, RANDOM  # noqa: F401
from fimpack.packing import mixture
from fimpack.packing.examples import (assemble_repo, document_examples, file_segments,
                                      repo_split, split_rank, stable_hash)
from fimpack.packing.graph import order_repository
from fimpack.packing.imports import extract_imports, has_parser
from fimpack.packing.partition import edge_weights
from fimpack.packing.tokenizer import Tokenizer, train_model_in_fresh_process
from fimpack.packing.fim import UNIFORM
from fimpack.records import (AUDIT, CODE, Drop, ExampleStats, SourceFile, Tokenized, packed,
                             processing_error)

log = logging.getLogger("fimpack.build")

# Audit counters (see pipelines/manifest.py): sent on the metrics channel, apart from the data.
FILES_PACKED = Metrics.counter(AUDIT, "code_files_packed")
DOCS_PACKED = Metrics.counter(AUDIT, "documents_packed")
EXAMPLES_MADE = Metrics.counter(AUDIT, "examples_made")


class TrainTokenizer(beam.PTransform):
    """Kept files -> the sentencepiece model (one element, bytes; empty with no files),
    trained in a fresh process on a deterministic sample; or USER_MODEL as given."""

    def __init__(self, seed: int, vocab_size: int, sample_docs: int, sample_chars: int,
                 user_model: bytes | None = None):
        super().__init__()
        self.seed, self.vocab_size = str(seed), vocab_size
        self.sample_docs, self.sample_chars, self.user_model = (sample_docs, sample_chars,
                                                                user_model)

    def expand(self, files):
        if self.user_model is not None:
            return files.pipeline | "UserTokenizer" >> beam.Create([self.user_model])
        seed, vocab, chars = self.seed, self.vocab_size, self.sample_chars
        return (files
                | "SampleKey" >> beam.Map(
                    lambda f: (stable_hash("tokenizer", seed, f.repo, f.path), f.content))
                | "Sample" >> beam.combiners.Top.Smallest(self.sample_docs)
                | "Train" >> beam.Map(
                    lambda sample: train_model_in_fresh_process(
                        [t for _, t in sample], vocab, chars) if sample else b""))


class _WithTokenizer(beam.DoFn):
    """A DoFn that receives the tokenizer model as a side input and keeps it built."""

    def setup(self):
        self._tok = None

    def tokenizer(self, model: bytes) -> Tokenizer:
        if self._tok is None or self._tok.proto != model:
            self._tok = Tokenizer(model)
        return self._tok


def _counted(examples, seed: int):
    """Each example, and its ``stats`` record."""
    for example, ids in examples:
        EXAMPLES_MADE.inc()
        yield Tokenized(example, ids)
        yield beam.pvalue.TaggedOutput("stats", ExampleStats(
            example.source, example.split, mixture.bucket(seed, example.id), len(ids)))


def pack_repository(repo: str, files: list[SourceFile], tok: Tokenizer, *, seed: int,
                    fim_rate: float, seq_len: int, val_fraction: float,
                    fim_split: str = UNIFORM, order: str | list[str] = "codegemma",
                    held_out: str | None = None, partition: str = "greedy") -> tuple[list[Tokenized], list[Drop]]:
    """A repository's files as the build packs them: (examples, drops).

    Each file is parsed once, for its imports and its syntax-aware FIM split together
    (``parse_tree`` keeps the last tree), and formatted and tokenised right after
    (``file_segments``); the files are ordered along the import graph by ORDER (one of
    ORDERS, or an explicit list of paths: a what-if), then grouped into examples of at most
    SEQ_LEN tokens along the import edges (``assemble_repo``). A file that fails to format is
    dropped (``processing_error``); a graph failure costs the order (alphabetical), not the
    files; a failure assembling examples is isolated file by file."""
    files = sorted(files, key=lambda f: f.path)
    segments, extractions, drops, graph_error = {}, {}, [], None
    for f in files:
        if has_parser(f.language) and graph_error is None:
            try:
                extractions[f.path] = extract_imports(f.content, f.language)
            except Exception as err:  # costs the order, not the file
                graph_error = err
        try:
            segments[f.path] = file_segments(replace(f, repo=repo), tok, seed=seed,
                                             fim_rate=fim_rate, seq_len=seq_len,
                                             split=fim_split)
        except Exception as err:
            drops.append(processing_error(repo, f.path, "pack", err))
    files = [f for f in files if f.path in segments]
    try:
        if graph_error is not None:
            raise graph_error
        strategy = order if isinstance(order, str) else "codegemma"
        graph = order_repository(files, strategy=strategy if strategy != RANDOM
                                 else "codegemma", extractions=extractions)
        paths, edges = graph.order, edge_weights(graph.importance, graph.test_links, partition)
        if strategy == RANDOM:  # the ablation's baseline: the same clusters, no order
            paths = sorted(paths, key=lambda p: stable_hash("order", str(seed), repo, p))
        if not isinstance(order, str):
            paths = [p for p in order if p in segments]
    except Exception as err:  # a graph failure costs the order, not the files
        log.warning("%s: dependency order failed (%s); alphabetical order", repo, err)
        paths, edges = [f.path for f in files], {}
    assemble = lambda paths, edges={}: [Tokenized(*x) for x in assemble_repo(  # noqa: E731,B006
        repo, [(p, segments[p]) for p in paths], tok, seq_len=seq_len,
        val_fraction=val_fraction, edges=edges, held_out=held_out, method=partition)]
    try:
        return assemble(paths, edges), drops
    except Exception:  # find the file that breaks packing; keep the rest, one by one
        examples = []
        for p in paths:
            try:
                examples += assemble([p])
            except Exception as err:
                drops.append(processing_error(repo, p, "pack", err))
        return examples, drops


class _PackRepo(_WithTokenizer):
    """A repository's files -> ``pack_repository`` -> examples (and their stats) and drops."""

    def __init__(self, cfg):
        self.cfg = cfg

    def process(self, item, model: bytes, held_out: str | None):
        repo, files = item
        files = [pickle.loads(f) for f in files]
        FILES_PACKED.inc(len(files))
        cfg = self.cfg
        examples, drops = pack_repository(
            repo, files, self.tokenizer(model), seed=cfg.seed, fim_rate=cfg.fim_rate,
            seq_len=cfg.seq_len, val_fraction=cfg.val_fraction, fim_split=cfg.fim_split,
            order=cfg.order, held_out=held_out, partition=cfg.partition)
        for drop in drops:
            yield beam.pvalue.TaggedOutput("drops", drop)
        yield from _counted(examples, cfg.seed)


class _PackDocument(_WithTokenizer):
    def __init__(self, cfg):
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


class PackExamples(beam.PTransform):
    """Kept files -> (Tokenized examples, ExampleStats, Drops of files that failed), with the
    tokenizer MODEL as a side input. CFG: the build's settings (seed, fim_rate, fim_split,
    order, seq_len, val_fraction)."""

    def __init__(self, cfg, model):
        super().__init__()
        self.cfg, self.model = cfg, model

    def expand(self, files):
        cfg, model = self.cfg, self.model
        held_out = beam.pvalue.AsSingleton(
            files
            | "RepoSources" >> beam.Map(lambda f: (f.repo, f.source))
            | "HoldOut" >> beam.CombineGlobally(HoldOut(cfg.val_fraction)))
        code = (files
                | "Code" >> beam.Filter(lambda f: f.source == CODE)
                | "KeyByRepo" >> beam.Map(lambda f: (f.repo, packed(f)))
                | "GroupByRepo" >> beam.GroupByKey()
                | "PackRepo" >> beam.ParDo(_PackRepo(cfg), model, held_out).with_outputs(
                    "drops", "stats", main="examples"))
        docs = (files
                | "Docs" >> beam.Filter(lambda f: f.source != CODE)
                | "PackDocument" >> beam.ParDo(_PackDocument(cfg), model, held_out)
                .with_outputs("drops", "stats", main="examples"))
        return ((code.examples, docs.examples) | "AllExamples" >> beam.Flatten(),
                (code.stats, docs.stats) | "AllStats" >> beam.Flatten(),
                (code.drops, docs.drops) | "PackDrops" >> beam.Flatten())
