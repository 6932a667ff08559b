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
from collections.abc import Set as AbstractSet
from dataclasses import replace

import apache_beam as beam
from apache_beam.metrics import Metrics

from fimpack.config import RANDOM, BuildConfig
from fimpack.packing import mixture
from fimpack.packing.examples import (assemble_repo, document_examples, file_segments,
                                      stable_hash)
from fimpack.packing.graph import order_repository
from fimpack.packing.imports import extract_imports, has_parser
from fimpack.packing.partition import edge_weights
from fimpack.packing.split import TOLERANCE, choose_validation
from fimpack.packing.tokenizer import Tokenizer, train_model_in_fresh_process
from fimpack.packing.fim import UNIFORM
from fimpack.records import (AUDIT, CODE, Drop, ExampleStats, SourceFile, StageOut, Tokenized,
                             packed, processing_error)

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
                    held_out: AbstractSet[str] | None = None, partition: str = BuildConfig.partition) -> tuple[list[Tokenized], list[Drop]]:
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
        imports = list(graph.importance)
        if strategy == RANDOM:  # the ablation's baseline: the same clusters, no order
            paths = sorted(paths, key=lambda p: stable_hash("order", str(seed), repo, p))
        if not isinstance(order, str):
            paths = [p for p in order if p in segments]
    except Exception as err:  # a graph failure costs the order, not the files
        log.warning("%s: dependency order failed (%s); alphabetical order", repo, err)
        paths, edges, imports = [f.path for f in files], {}, None
    assemble = lambda paths, edges={}: [Tokenized(*x) for x in assemble_repo(  # noqa: E731,B006
        repo, [(p, segments[p]) for p in paths], tok, seq_len=seq_len,
        val_fraction=val_fraction, edges=edges, held_out=held_out, method=partition,
        imports=imports)]
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

    def process(self, item, model: bytes, choice):
        held_out = _held_out(choice)
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

    def process(self, doc, model: bytes, choice):
        held_out = _held_out(choice)
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


RATIO_SAMPLE = 8  # one kept file in 8 (by a hash of repo and path) measures tokens per char


class _TokenRatio(_WithTokenizer):
    """(key, (characters, tokens)) of a deterministic sample of the kept files, keyed by
    (repository, source) and by language: what the split's size estimate multiplies
    characters by (``split.py``)."""

    def process(self, f, model: bytes):
        if model and stable_hash("ratio", f.repo, f.path) % RATIO_SAMPLE == 0:
            measured = (len(f.content), len(self.tokenizer(model).encode_text(f.content)))
            yield ("repo", f.repo, f.source), measured
            yield ("language", f.language), measured


def _sum_pairs(pairs) -> tuple[int, int]:
    chars = tokens = 0
    for c, t in pairs:
        chars += c
        tokens += t
    return chars, tokens


RATIO_MIN_CHARS = 10_000  # a sample smaller than this does not set a ratio


def estimated_tokens(f, ratios: dict) -> int:
    """F's tokens estimated from its characters and the measured tokens per character of
    its repository's sampled files (same source), else of its language's, else of the whole
    sample (1/4 without one): repositories of one language still compress differently."""
    for key in (("repo", f.repo, f.source), ("language", f.language)):
        chars, tokens = ratios.get(key, (0, 0))
        if chars >= RATIO_MIN_CHARS:
            return round(len(f.content) * tokens / chars)
    chars = sum(c for k, (c, _) in ratios.items() if k[0] == "language")
    tokens = sum(t for k, (_, t) in ratios.items() if k[0] == "language")
    return round(len(f.content) * (tokens / chars if chars else 0.25))


class ChooseValidation(beam.CombineFn):
    """The repositories held out for validation (``split.choose_validation``, a
    ``SplitChoice``): whole repositories meeting ``val_fraction`` of each source's tokens
    within ``split.TOLERANCE``, tokens estimated from characters per language
    (``estimated_tokens``: the split must be known before the files are tokenised; see
    ``split.py``). Inputs are (repo, source, estimated tokens) per kept file; the
    accumulator is {repo: [code, natural language]} (about 100 bytes a repository)."""

    def __init__(self, val_fraction: float):
        self.val_fraction = val_fraction

    def create_accumulator(self):
        return {}

    def add_input(self, acc, item):
        repo, source, chars = item
        sizes = acc.setdefault(repo, [0, 0])
        sizes[source != CODE] += chars
        return acc

    def merge_accumulators(self, accs):
        out: dict = {}
        for acc in accs:
            for repo, (code, nl) in acc.items():
                sizes = out.setdefault(repo, [0, 0])
                sizes[0] += code
                sizes[1] += nl
        return out

    def extract_output(self, acc):
        choice = choose_validation({r: tuple(s) for r, s in acc.items()}, self.val_fraction)
        if self.val_fraction > 0 and not choice.met:
            log.warning("validation split: no choice of whole repositories meets "
                        "--val-fraction %s within %.0f%% (%d repositories); held out %d, "
                        "%s of the code / natural-language tokens (estimated)", self.val_fraction,
                        TOLERANCE * 100, len(acc), len(choice.held_out),
                        " / ".join(f"{f:.3f}" for f in choice.fractions))
        return choice


_HELD_OUT: list = [None, frozenset()]  # the last SplitChoice seen and its set


def _held_out(choice) -> frozenset:
    """The held-out repositories of CHOICE (the side input) as a set, built once."""
    if _HELD_OUT[0] is not choice:
        _HELD_OUT[:] = [choice, frozenset(choice.held_out) if choice is not None
                        else frozenset()]
    return _HELD_OUT[1]


class PackExamples(beam.PTransform):
    """Kept files -> ``StageOut``: Tokenized examples, the Drops of files that failed, an
    ``examples_packed`` count, and ``side["stats"]`` (an ExampleStats per example), with the
    tokenizer MODEL as a side input. CFG: the build's settings (seed, fim_rate, fim_split,
    order, seq_len, val_fraction)."""

    def __init__(self, cfg, model):
        super().__init__()
        self.cfg, self.model = cfg, model

    def expand(self, files):
        cfg, model = self.cfg, self.model
        ratios = beam.pvalue.AsSingleton(
            files
            | "SampleTokenRatios" >> beam.ParDo(_TokenRatio(), model)
            | "TokenRatios" >> beam.CombinePerKey(_sum_pairs)
            | "TokenRatioDict" >> beam.combiners.ToDict())
        held_out = beam.pvalue.AsSingleton(
            files
            | "RepoSizes" >> beam.Map(
                lambda f, r: (f.repo, f.source, estimated_tokens(f, r)), ratios)
            | "ChooseValidation" >> beam.CombineGlobally(ChooseValidation(cfg.val_fraction)))
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
        stats = (code.stats, docs.stats) | "AllStats" >> beam.Flatten()
        return StageOut((code.examples, docs.examples) | "AllExamples" >> beam.Flatten(),
                        (code.drops, docs.drops),
                        (stats | "PackedCounts" >> beam.Map(lambda _: {"examples_packed": 1}),),
                        side={"stats": stats})
