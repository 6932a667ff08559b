"""The packing stages of a build, Beam composites over packing's plain functions:

    kept files -> TrainTokenizer: a seeded sample -> sentencepiece (one worker), or the user's
               -> PackExamples:   per file: parse (before the tokenizer), FIM + token ids;
                                  per repository: dependency order and examples planned from
                                  the files' compact records; per example: its parts joined;
                                  per document: plain examples

Every file is parsed and tokenised once, in stages whose elements are single files
(``packing/perfile.py``), so a repository as large as a third of the corpus spreads over all
workers; what crosses a stage boundary is compact (pieces as offsets into the content, token
ids as array bytes: an earlier per-file stage that sent pieces and id lists as objects made a
105 MB two-worker build 22% slower, bench_build 2026-12-01). The per-repository step reads
no content but its build files' (``repo_index.BUILD_FILES``).
"""
from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Set as AbstractSet
from typing import NamedTuple

import apache_beam as beam
from apache_beam.metrics import Metrics

from fimpack.config import PackConfig, TokenizerConfig
from fimpack.packing import mixture
from fimpack.packing.examples import document_examples, repo_split, stable_hash
from fimpack.packing.perfile import (build_example, encode_file, file_facts, pack_files,
                                     packed_part, plan_repository, routes)
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
# Code files encoded by this process, a counter per pid (not audited): how the per-file stage
# spread a build's files over its workers (tests/test_build_stages.py reads it).
WORKERS = "fimpack.workers"


def worker_counter():
    return Metrics.counter(WORKERS, f"files_encoded_by_pid_{os.getpid()}")


class TrainTokenizer(beam.PTransform):
    """Kept files -> the sentencepiece model (one element, bytes; empty with no files),
    trained in a fresh process on a deterministic sample; or USER_MODEL (the bytes of
    ``cfg.model``, read on the driver) as given."""

    def __init__(self, cfg: TokenizerConfig, seed: int, user_model: bytes | None = None):
        super().__init__()
        self.seed, self.vocab_size = str(seed), cfg.vocab_size
        self.sample_docs, self.sample_chars, self.user_model = (cfg.sample_docs,
                                                                cfg.sample_chars, user_model)

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
                    held_out: AbstractSet[str] | None = None,
                    partition: str = PackConfig.partition) -> tuple[list[Tokenized], list[Drop]]:
    """A repository's files as the build packs them: (examples, drops), by the build's own
    steps run in one process (``packing/perfile.py``): each file parsed once, for its imports
    and its syntax-aware FIM split candidates together, then formatted and tokenised
    (``file_segments``); the files ordered along the import graph by ORDER (one of ORDERS,
    or an explicit list of paths: a what-if) from those per-file records, then grouped into
    examples of at most SEQ_LEN tokens along the import edges (``plan_examples``). A file
    that fails to format is dropped (``processing_error``); a graph failure costs the order
    (alphabetical), not the files; a failure assembling examples is isolated file by file."""
    examples, drops = pack_files(
        repo, files, tok, seed=seed, fim_rate=fim_rate, seq_len=seq_len,
        val_fraction=val_fraction, fim_split=fim_split, order=order, held_out=held_out,
        partition=partition)
    return [Tokenized(*x) for x in examples], drops


@beam.typehints.with_output_types(tuple[int, bytes])  # the main output, grouped next
class _ParseFile(beam.DoFn):
    """A kept file -> its size record (``sizes``, every file), a document as it is
    (``docs``), or a code file with its tokenizer-free facts (``perfile.file_facts``: one
    parse for imports and FIM split candidates, identifiers for test links), keyed by a hash
    of (repository, path) for ``SpreadFiles``; a document in the token-ratio sample goes
    there too (with no facts), to be measured where the code is tokenised.

    Item 2 of issue 24, the tokenizer off the critical path: this DoFn needs no side input,
    so Beam fuses it into the stage that produces the kept files, the same stage that keys
    them for the tokenizer's sample (FnApiRunner runs one fused stage at a time, spread over
    its workers): every file is parsed while the files are read for the sample, before the
    trainer starts, and only tokenisation waits for the model."""

    def __init__(self, cfg, seed: int):
        self.cfg, self.seed = cfg, seed

    def process(self, f):
        yield beam.pvalue.TaggedOutput("sizes", FileSize(f.repo, f.source, f.language,
                                                         len(f.content)))
        if f.source != CODE:
            yield beam.pvalue.TaggedOutput("docs", f)
            if in_ratio_sample(f):  # measured where the code is tokenised (no other pass)
                yield stable_hash("spread", f.repo, f.path) >> 1, packed((f, None))
            return
        cfg = self.cfg
        facts = file_facts(f, seed=self.seed, fim_rate=cfg.fim_rate, split=cfg.fim_split)
        yield stable_hash("spread", f.repo, f.path) >> 1, packed((f, facts))  # a signed int64


class _EncodeFile(_WithTokenizer):
    """One code file (after ``SpreadFiles``: a group of one file, keyed by its own hash, so
    a repository's files go to every worker) -> FIM pieces and token ids
    (``file_segments``, from the parsed split candidates), as a compact ``FileBody`` keyed by
    (repo, path) (main output) and a ``FileMeta`` keyed by repository (``meta``); its token
    ratio sample (``ratios``, documents' too); a ``Drop`` if it fails to format."""

    def __init__(self, cfg, seed: int):
        self.cfg, self.seed = cfg, seed

    def setup(self):
        super().setup()
        self._worker = worker_counter()  # in the process that runs it

    def process(self, item, model: bytes):
        cfg, tok = self.cfg, self.tokenizer(model)
        for value in item[1]:
            f, facts = pickle.loads(value)
            yield from _ratio_sample(f, tok)
            if facts is None:  # a document in the ratio sample, nothing more
                continue
            FILES_PACKED.inc()
            self._worker.inc()
            meta, body, drop = encode_file(f, facts, tok, seed=self.seed,
                                           fim_rate=cfg.fim_rate, seq_len=cfg.seq_len,
                                           split=cfg.fim_split)
            if drop is not None:
                yield beam.pvalue.TaggedOutput("drops", drop)
            yield beam.pvalue.TaggedOutput("meta", (f.repo, packed(meta)))
            if body is not None:
                yield (f.repo, f.path), packed(body)


class _PlanRepo(beam.DoFn):
    """A repository's ``FileMeta``s -> where each part of each file goes
    (``perfile.routes``), keyed by (repo, path); the drops of files no example could hold.
    The dependency graph and the examples' grouping come from the per-file records: no text
    is parsed or encoded here."""

    def __init__(self, cfg, seed: int):
        self.cfg, self.seed = cfg, seed

    def process(self, item):
        repo, metas = item
        cfg = self.cfg
        planned, drops = plan_repository(repo, [pickle.loads(m) for m in metas],
                                         seed=self.seed, seq_len=cfg.seq_len, order=cfg.order,
                                         partition=cfg.partition)
        for drop in drops:
            yield beam.pvalue.TaggedOutput("drops", drop)
        for path, where in routes(repo, planned).items():
            yield (repo, path), tuple(where)


def _route_parts(item):
    """A file's body joined with its routes (``JoinRoutes``) -> each of its parts, keyed by
    the example it goes into. A body with no route (a file no example holds) goes nowhere."""
    (repo, path), joined = item
    bodies, places = list(joined["body"]), list(joined["routes"])
    if not bodies or not places:
        return
    body = pickle.loads(bodies[0])
    for part, index, position in places[0]:
        yield (repo, index), packed_part(body, part, index, position)


class _BuildExample(_WithTokenizer):
    """One example's parts (at most a sequence of tokens) -> the example and its stats."""

    def __init__(self, cfg, seed: int):
        self.cfg, self.seed = cfg, seed

    def process(self, item, model: bytes, choice):
        (repo, _), parts = item
        parts = sorted((pickle.loads(p) for p in parts), key=lambda p: p[1])
        split = repo_split(repo, self.cfg.val_fraction, _held_out(choice))
        example = build_example(repo, parts[0][0], [p[2:] for p in parts],
                                self.tokenizer(model), seq_len=self.cfg.seq_len, split=split)
        yield from _counted([example], self.seed)


class _PackDocument(_WithTokenizer):
    def __init__(self, cfg, seed: int):
        self.cfg, self.seed = cfg, seed

    def process(self, doc, model: bytes, choice):
        held_out = _held_out(choice)
        DOCS_PACKED.inc()
        try:
            yield from _counted(document_examples(doc, self.tokenizer(model),
                                                  seq_len=self.cfg.seq_len,
                                                  val_fraction=self.cfg.val_fraction,
                                                  held_out=held_out),
                                self.seed)
        except Exception as err:
            yield beam.pvalue.TaggedOutput("drops",
                                           processing_error(doc.repo, doc.path, "pack", err))


RATIO_SAMPLE = 8  # one kept file in 8 (by a hash of repo and path) measures tokens per char


class FileSize(NamedTuple):
    """What the validation split's size estimate reads of a kept file."""

    repo: str
    source: str
    language: str
    chars: int


def in_ratio_sample(f) -> bool:
    return stable_hash("ratio", f.repo, f.path) % RATIO_SAMPLE == 0


def _ratio_sample(f, tok: Tokenizer):
    """(key, (characters, tokens)) of F if it is in the deterministic sample of the kept
    files, keyed by (repository, source) and by language: what the split's size estimate
    multiplies characters by (``split.py``)."""
    if in_ratio_sample(f):
        measured = (len(f.content), len(tok.encode_text(f.content)))
        yield beam.pvalue.TaggedOutput("ratios", (("repo", f.repo, f.source), measured))
        yield beam.pvalue.TaggedOutput("ratios", (("language", f.language), measured))


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
    sample (1/4 without one): repositories of one language still compress differently.
    F: a SourceFile or its ``FileSize``."""
    size = f.chars if isinstance(f, FileSize) else len(f.content)
    for key in (("repo", f.repo, f.source), ("language", f.language)):
        chars, tokens = ratios.get(key, (0, 0))
        if chars >= RATIO_MIN_CHARS:
            return round(size * tokens / chars)
    chars = sum(c for k, (c, _) in ratios.items() if k[0] == "language")
    tokens = sum(t for k, (_, t) in ratios.items() if k[0] == "language")
    return round(size * (tokens / chars if chars else 0.25))


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
    tokenizer MODEL as a side input. CFG: the stage's ``PackConfig`` (seq_len, fim_rate,
    fim_split, order, partition, val_fraction); SEED: the build's.

    Code, one file per element until a repository's plan (``packing/perfile.py``):
    ParseFiles (no tokenizer, fused with the tokenizer's sample) -> SpreadFiles (a group per
    file, keyed by its hash) -> EncodeFiles (FIM + ids, compact) -> per repository, PlanRepo
    from the files' metadata -> JoinRoutes (each body with its routes, on (repo, path)) ->
    RouteParts (each body's parts to their example) ->
    GroupByExample -> BuildExamples. Documents: one example (or its parts) each."""

    def __init__(self, cfg: PackConfig, seed: int, model):
        super().__init__()
        self.cfg, self.seed, self.model = cfg, seed, model

    def expand(self, files):
        cfg, model = self.cfg, self.model
        seed = self.seed
        parsed = files | "ParseFiles" >> beam.ParDo(_ParseFile(cfg, seed)).with_outputs(
            "sizes", "docs", main="code")
        encoded = (parsed.code
                   | "SpreadFiles" >> beam.GroupByKey()
                   | "EncodeFiles" >> beam.ParDo(_EncodeFile(cfg, seed), model).with_outputs(
                       "meta", "ratios", "drops", main="bodies"))
        # a dict side input of the per-key sums: no global combine (3 fused stages fewer)
        ratios = beam.pvalue.AsDict(
            encoded.ratios | "TokenRatios" >> beam.CombinePerKey(_sum_pairs))
        held_out = beam.pvalue.AsSingleton(
            parsed.sizes
            | "RepoSizes" >> beam.Map(
                lambda f, r: (f.repo, f.source, estimated_tokens(f, r)), ratios)
            | "ChooseValidation" >> beam.CombineGlobally(ChooseValidation(cfg.val_fraction)))
        plans = (encoded.meta
                 | "GroupByRepo" >> beam.GroupByKey()
                 | "PlanRepo" >> beam.ParDo(_PlanRepo(cfg, seed)).with_outputs("drops",
                                                                          main="routes"))
        # Each body meets its routes in a join on (repo, path): a shuffle that scales with
        # the files, where a side input of every route would be held whole by each worker
        code = ({"body": encoded.bodies, "routes": plans.routes}
                | "JoinRoutes" >> beam.CoGroupByKey()
                | "RouteParts" >> beam.FlatMap(_route_parts)
                | "GroupByExample" >> beam.GroupByKey()
                | "BuildExamples" >> beam.ParDo(_BuildExample(cfg, seed), model, held_out)
                .with_outputs("stats", main="examples"))
        docs = (parsed.docs
                | "PackDocument" >> beam.ParDo(_PackDocument(cfg, seed), model, held_out)
                .with_outputs("drops", "stats", main="examples"))
        stats = (code.stats, docs.stats) | "AllStats" >> beam.Flatten()
        return StageOut((code.examples, docs.examples) | "AllExamples" >> beam.Flatten(),
                        (encoded.drops, plans.drops, docs.drops),
                        (stats | "PackedCounts" >> beam.Map(lambda _: {"examples_packed": 1}),),
                        side={"stats": stats})
