"""A code file's packing work, done once per file, and a repository's examples assembled from
compact per-file records (issue 24, items 1 and 2).

The build packs a repository in four steps (``packing/stages.py`` wires them):

1. ``file_facts`` (no tokenizer): one tree-sitter parse of the file gives its imports
   (``extract_imports``) and, when its first part will take a syntax-aware FIM split, the
   split candidates (``syntax.candidate_spans``) of the same tree; its identifiers are its
   test-link feature (``testlinks.identifiers``). This step runs before the tokenizer is
   trained, in the stage that reads the files for the tokenizer's sample.
2. ``file_segments`` (the tokenizer): FIM pieces and token ids, from the facts' split
   candidates (no second parse); ``compact`` turns them into a ``FileMeta`` for the
   repository's plan (no content: token counts, imports, identifiers) and a ``FileBody``
   (the content once, its pieces as offsets into it, the ids as array bytes).
3. ``plan_repository`` (per repository, ``FileMeta``s only): the dependency graph and order
   (``graph.order_repository`` from the facts, never the text) and the examples
   (``examples.plan_examples``): which (path, part)s make each example.
4. ``build_example`` (per example): the planned parts of one example, from their bodies.

No element of steps 1, 2 and 4 holds more than one file (or one example, at most a
sequence); step 3 holds the repository's metadata. ``stages.pack_repository`` runs the same
four steps in one process: the build and a direct call give the same examples.
"""
from __future__ import annotations

import logging
import pickle
import posixpath
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np

from fimpack.config import RANDOM, SYNTAX
from fimpack.packing.examples import (CODE, _Builder, file_rng, file_segments, plan_examples,
                                      repo_split, stable_hash)
from fimpack.packing.fim import (NONE, ORIGINAL_ORDER, choose_mode, original_start, reconstruct,
                                 resolve_split)
from fimpack.packing.graph import order_repository
from fimpack.packing.imports import Extraction, extract_imports, has_parser
from fimpack.packing.partition import edge_weights
from fimpack.packing.repo_index import BUILD_FILES
from fimpack.packing.syntax import candidate_spans
from fimpack.packing.testlinks import FAMILY, identifiers
from fimpack.records import (PATH, SENTINEL, SENTINELS, Drop, Example, Piece, SourceFile,
                             processing_error)

log = logging.getLogger("fimpack.build")


class GraphFacts(NamedTuple):
    """What a code file tells its repository's dependency graph and test links."""

    extraction: Extraction | None    # imports (None: no grammar, or the parse failed)
    error: str | None = None         # why extraction failed: costs the repository its order
    idents: str | None = None        # testlinks.identifiers, sorted, one a line


@dataclass(frozen=True, slots=True)
class FileFacts:
    """What one code file says about itself without the tokenizer: its ``GraphFacts``,
    pickled once where they are made and unpickled only by the repository's plan, and its
    syntax split candidates."""

    graph: bytes                     # pickled GraphFacts
    spans: bytes | None = None       # the content's syntax split candidates (int32 pairs),
                                     # when part 0 takes a syntax split; else None

    def span_list(self) -> "Spans | None":
        return None if self.spans is None else Spans(self.spans)


class Spans:
    """Split candidates as ``syntax.candidate_spans`` lists them, read from their array:
    what ``random.choice`` needs (a length, and (start, end) by index)."""

    def __init__(self, data: bytes):
        self._a = np.frombuffer(data, dtype=np.int32).reshape(-1, 2)

    def __len__(self) -> int:
        return len(self._a)

    def __getitem__(self, i: int) -> tuple[int, int]:
        start, end = self._a[i]
        return int(start), int(end)


def needs_spans(f: SourceFile, *, seed: int, fim_rate: float, split: str) -> bool:
    """Whether F's first part takes a syntax-aware split: the draws ``file_segments`` makes
    for it (``choose_mode``, then ``resolve_split``) from the same seeded RNG."""
    if not has_parser(f.language):
        return False
    rng = file_rng(seed, f.repo, f.path, 0)
    return choose_mode(rng, fim_rate) != NONE and resolve_split(rng, split) == SYNTAX


def file_facts(f: SourceFile, *, seed: int, fim_rate: float, split: str) -> FileFacts:
    """F's facts: one parse for imports and split candidates (``parsing.parse_tree`` keeps
    the tree between the two), and its identifiers."""
    extraction = error = spans = None
    if has_parser(f.language):
        try:
            extraction = extract_imports(f.content, f.language)
        except Exception as err:  # costs the repository its order, not the file
            error = f"{type(err).__name__}: {err}"
        if needs_spans(f, seed=seed, fim_rate=fim_rate, split=split):
            try:
                spans = np.asarray(candidate_spans(f.content, f.language),
                                   dtype=np.int32).reshape(-1, 2).tobytes()
            except Exception:  # formatting parses it again, and drops the file if it fails
                spans = None
    idents = ("\n".join(sorted(identifiers(f.content))) if f.language in FAMILY else None)
    return FileFacts(pickle.dumps(GraphFacts(extraction, error, idents),
                                  protocol=pickle.HIGHEST_PROTOCOL), spans)


@dataclass(frozen=True, slots=True)
class FileMeta:
    """A code file as its repository's plan sees it: no content (but a build file's)."""

    path: str
    language: str
    graph: bytes                     # pickled GraphFacts
    tokens: tuple[int, ...] = ()     # token ids of each part (one part: the whole file)
    index_content: str = ""          # a build file's content (repo_index.BUILD_FILES), else ""
    dropped: bool = False            # formatting failed: the file is not packed

    def source(self, repo: str) -> SourceFile:
        return SourceFile(repo, self.path, self.language, self.index_content)


@dataclass(frozen=True, slots=True)
class FileBody:
    """A formatted code file, compact: the content once; per part its entry, where its body
    sits in the content, its pieces as (kind, start, end) offsets into that body (a sentinel
    as (SENTINEL, index into SENTINELS, -1), the path line as (PATH, 0, 0)) and its token ids
    as array bytes of DTYPE."""

    content: str
    parts: tuple  # ((FileEntry, start, end, ((kind, a, b), ...), ids bytes), ...)
    dtype: str

    def part(self, k: int):
        """Part K as (entry, body text, piece offsets, ids bytes)."""
        entry, start, end, spec, ids = self.parts[k]
        return entry, self.content[start:end], spec, ids


def id_dtype(vocab_size: int) -> str:
    return "uint16" if vocab_size <= 1 << 16 else "uint32"


def _piece_spec(pieces: list[Piece], body: str, path: str) -> tuple:
    """PIECES of one part as offsets into BODY; a text piece that is not where the FIM layout
    puts it (never, unless the layout changes) keeps its text."""
    spec = []
    for k, p in enumerate(pieces):
        if p.kind == SENTINEL:
            spec.append((SENTINEL, SENTINELS.index(p.text), -1))
        elif p.kind == PATH and p.text == path + "\n":
            spec.append((PATH, 0, 0))
        elif p.kind in ORIGINAL_ORDER and body.startswith(p.text, at := original_start(pieces, k)):
            spec.append((p.kind, at, at + len(p.text)))
        else:
            spec.append((p.kind, p.text))
    return tuple(spec)


def pieces_from_spec(spec: tuple, body: str, path: str) -> list[Piece]:
    """The pieces ``_piece_spec`` made offsets of, back (all of file 0)."""
    out = []
    for item in spec:
        kind = item[0]
        if len(item) == 2:
            out.append(Piece(kind, item[1], 0))
        elif kind == SENTINEL:
            out.append(Piece(SENTINEL, SENTINELS[item[1]], 0))
        elif kind == PATH:
            out.append(Piece(PATH, path + "\n", 0))
        else:
            out.append(Piece(kind, body[item[1]:item[2]], 0))
    return out


def compact(f: SourceFile, facts: FileFacts, segments: list, dtype: str
            ) -> tuple[FileMeta, FileBody]:
    """F's SEGMENTS (``file_segments``) as its plan record and its body."""
    parts, at = [], 0
    for entry, pieces, ids in segments:
        body = reconstruct(pieces, 0)
        if not f.content.startswith(body, at):  # parts are consecutive slices of the content
            raise AssertionError(f"{f.path}: part {entry.part} is not the content's next slice")
        parts.append((entry, at, at + len(body), _piece_spec(pieces, body, f.path),
                      np.asarray(ids, dtype=dtype).tobytes()))
        at += len(body)
    meta = FileMeta(f.path, f.language, facts.graph, tuple(len(ids) for _, _, ids in segments),
                    f.content if posixpath.basename(f.path) in BUILD_FILES else "")
    return meta, FileBody(f.content, tuple(parts), dtype)


def encode_file(f: SourceFile, facts: FileFacts, tok, *, seed: int, fim_rate: float,
                seq_len: int, split: str) -> tuple[FileMeta, FileBody | None, Drop | None]:
    """F formatted and tokenised (``file_segments``, from its FACTS' split candidates: no
    second parse): its plan record and body; or, when it fails to format, a record marked
    dropped (its repository still sees its imports) and the Drop."""
    try:
        segments = file_segments(f, tok, seed=seed, fim_rate=fim_rate, seq_len=seq_len,
                                 split=split, spans=facts.span_list())
        return (*compact(f, facts, segments, id_dtype(tok.vocab_size)), None)
    except Exception as err:
        return (FileMeta(f.path, f.language, facts.graph, dropped=True), None,
                processing_error(f.repo, f.path, "pack", err))


@dataclass(frozen=True, slots=True)
class Planned:
    """One planned example: its id number in the repository and its (path, part)s."""

    index: int
    members: tuple[tuple[str, int], ...]


def order_from_records(repo: str, metas: list[FileMeta], facts: dict[str, GraphFacts],
                       strategy: str = "codegemma"):
    """``graph.order_repository`` of REPO from its files' records (their FACTS by path): the
    same order, edges and test links as from the full files, reading no content but the
    build files' (``repo_index.BUILD_FILES``)."""
    return order_repository(
        [m.source(repo) for m in metas], strategy=strategy,
        extractions={m.path: facts[m.path].extraction for m in metas
                     if facts[m.path].extraction is not None},
        idents={m.path: facts[m.path].idents.split("\n") if facts[m.path].idents else ()
                for m in metas if facts[m.path].idents is not None})


def plan_repository(repo: str, metas: list[FileMeta], *, seed: int, seq_len: int,
                    order="codegemma", partition: str = "greedy",
                    ) -> tuple[list[Planned], list[Drop]]:
    """A repository's examples from its files' records: the dependency order by ORDER (one
    of ORDERS, or an explicit list of paths: a what-if), then the examples of at most
    SEQ_LEN tokens along the import edges (``plan_examples``). A failed extraction costs the
    order (alphabetical), not the files; a failure planning examples is isolated file by
    file, its examples numbered on from the files planned before it (ids stay unique in the
    repository)."""
    metas = sorted(metas, key=lambda m: m.path)
    facts = {m.path: pickle.loads(m.graph) for m in metas}
    error = next((facts[m.path].error for m in metas if facts[m.path].error is not None), None)
    metas = [m for m in metas if not m.dropped]
    tokens = {m.path: list(m.tokens) for m in metas}
    try:
        if error is not None:
            raise ValueError(error)
        strategy = order if isinstance(order, str) else "codegemma"
        graph = order_from_records(repo, metas, facts,
                                   strategy if strategy != RANDOM else "codegemma")
        paths, edges = graph.order, edge_weights(graph.importance, graph.test_links, partition)
        imports = list(graph.importance)
        if strategy == RANDOM:  # the ablation's baseline: the same clusters, no order
            paths = sorted(paths, key=lambda p: stable_hash("order", str(seed), repo, p))
        if not isinstance(order, str):
            paths = [p for p in order if p in tokens]
    except Exception as err:  # a graph failure costs the order, not the files
        log.warning("%s: dependency order failed (%s); alphabetical order", repo, err)
        paths, edges, imports = [m.path for m in metas], {}, None
    try:
        return [Planned(i, members) for i, members in enumerate(plan_examples(
            repo, [(p, tokens[p]) for p in paths], seq_len=seq_len, edges=edges,
            method=partition, imports=imports))], []
    except Exception:  # find the file that breaks packing; keep the rest, one by one
        planned, drops = [], []
        for p in paths:
            try:
                planned += [Planned(i, members) for i, members in enumerate(plan_examples(
                    repo, [(p, tokens[p])], seq_len=seq_len, edges={}, method=partition,
                    imports=imports), start=len(planned))]
            except Exception as err:
                drops.append(processing_error(repo, p, "pack", err))
        return planned, drops


def build_example(repo: str, index: int, parts: list, tok, *, seq_len: int, split: str
                  ) -> tuple[Example, np.ndarray]:
    """Example INDEX of REPO from its PARTS [(entry, body, piece offsets, ids bytes)]
    in order, as ``_Builder`` makes it (separators, bos, eos, piece file numbers)."""
    builder = _Builder(repo, CODE, split, tok, seq_len)
    dtype = id_dtype(tok.vocab_size)  # the ids' array type, from the same tokenizer
    for entry, body, spec, ids in parts:
        builder.add(entry, pieces_from_spec(spec, body, entry.path),
                    np.frombuffer(ids, dtype=dtype).tolist())
    builder.close(index)
    if len(builder.done) != 1:  # the plan said the parts fit one sequence
        raise AssertionError(f"{repo}:{index:05d}: planned parts fill {len(builder.done)} "
                             "examples")
    return builder.done[0]


def routes(repo: str, planned: list[Planned]) -> dict[str, list[tuple[int, int, int]]]:
    """{path: [(part, example index, position in it)]}: where each part of each file goes
    (the index is unique in the repository)."""
    out: dict[str, list] = {}
    for p in planned:
        for position, (path, part) in enumerate(p.members):
            out.setdefault(path, []).append((part, p.index, position))
    return out


def pack_files(repo: str, files: list[SourceFile], tok, *, seed: int, fim_rate: float,
               seq_len: int, val_fraction: float, fim_split: str, order, held_out,
               partition: str) -> tuple[list[tuple[Example, np.ndarray]], list[Drop]]:
    """The four steps for one repository in one process: (examples, drops)."""
    metas, bodies, drops = [], {}, []
    for f in sorted(files, key=lambda f: f.path):
        f = replace(f, repo=repo) if f.repo != repo else f
        facts = file_facts(f, seed=seed, fim_rate=fim_rate, split=fim_split)
        meta, body, drop = encode_file(f, facts, tok, seed=seed, fim_rate=fim_rate,
                                       seq_len=seq_len, split=fim_split)
        metas.append(meta)
        if drop is None:
            bodies[f.path] = body
        else:
            drops.append(drop)
    planned, more = plan_repository(repo, metas, seed=seed, seq_len=seq_len, order=order,
                                    partition=partition)
    split = repo_split(repo, val_fraction, held_out)
    examples = []
    for p in planned:
        parts = [bodies[path].part(k) for path, k in p.members]
        examples.append(build_example(repo, p.index, parts, tok, seq_len=seq_len, split=split))
    return examples, drops + more


def packed_part(body: FileBody, k: int, index: int, position: int) -> bytes:
    """Part K of BODY as it travels to its example: (index, position, entry, body text,
    piece offsets, ids bytes), pickled."""
    return pickle.dumps((index, position) + body.part(k), protocol=pickle.HIGHEST_PROTOCOL)
