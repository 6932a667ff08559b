"""Turn a repository's ordered files into CodeGemma multi-file examples that fit a sequence.

An example (a *document* inside a packed training sequence) is files of one repository in
dependency order, each as ``path\\n`` then its body (plain or FIM), ``<|file_separator|>``
between files, tokenised as ``[bos] ... [eos]`` and at most ``seq_len`` tokens long. Files are
joined into examples along the repository's import edges and test links
(``packing.partition``: groups that keep the most edge weight inside while they fit a
sequence), in dependency order inside each example; a file without edges is an example of its own, a small document the sequence
packer (``binpack``) uses to fill the room that large examples leave. A file longer than a
sequence is split at line boundaries into parts (``FileEntry.part``/``parts``), each its own
FIM unit and its own example, consecutive; joining the parts in order gives the file back.

Randomness comes from an RNG seeded by (seed, repo, path, part): the output never depends on
worker count or arrival order.
"""
from __future__ import annotations

import bisect
import random
from collections.abc import Set as AbstractSet
from dataclasses import replace

import numpy as np
import xxhash

from fimpack.packing.fim import UNIFORM, choose_mode, fim_pieces
from fimpack.packing.partition import partition
from fimpack.packing.tokenizer import Tokenizer
from fimpack.records import (CODE, FILE_SEPARATOR, NATURAL_LANGUAGE, PATH, SENTINEL, TEXT,
                             Example, FileEntry, Piece, SourceFile)

# Tokens a file part may take beyond its body: path line, three sentinels, the separator,
# bos/eos, and the few extra tokens that splitting text into FIM pieces can cost.
OVERHEAD = 16
# Files up to this many times the token budget in bytes are formatted whole before they are
# counted (code runs at 3-4 bytes a token; a file this size usually fits).
LIKELY_FITS = 3
# Tokens a long file's parts are cut short of the budget by, so that their own encodings
# (checked after) fit without a second count.
CUT_MARGIN = 32


def stable_hash(*parts: str) -> int:
    return xxhash.xxh64_intdigest("\x1f".join(parts).encode("utf-8", "surrogatepass"))


def file_rng(seed: int, repo: str, path: str, part: int = 0) -> random.Random:
    return random.Random(stable_hash(str(seed), repo, path, str(part)))


def split_rank(repo: str) -> int:
    return stable_hash("split", repo) % 1_000_000


def repo_split(repo: str, val_fraction: float,
               held_out: AbstractSet[str] | None = None) -> str:
    """Train/validation by repository: no repository lands in both. HELD_OUT: the build's
    held-out repositories (``split.choose_validation``: by size, to meet VAL_FRACTION of the
    tokens); without it (packing one repository on its own) the split hash alone decides."""
    if held_out is not None:
        return "validation" if repo in held_out else "train"
    return "validation" if split_rank(repo) < val_fraction * 1_000_000 else "train"


_PIECE_BYTES: dict[int, np.ndarray] = {}  # per SentencePieceProcessor: bytes of each id


def _piece_bytes(tok: Tokenizer) -> np.ndarray:
    key = id(tok.sp)
    if key not in _PIECE_BYTES:
        sizes = []
        for i in range(tok.sp.get_piece_size()):
            piece = tok.sp.id_to_piece(i)
            byte = tok.sp.is_byte(i)
            ctrl = tok.sp.is_control(i) or tok.sp.is_unknown(i)
            sizes.append(1 if byte else 0 if ctrl else
                         len(piece.replace("\u2581", " ").encode("utf-8")))
        _PIECE_BYTES[key] = np.asarray(sizes, dtype=np.int64)
    return _PIECE_BYTES[key]


def token_ends(text: str, tok: Tokenizer) -> list[int]:
    """The UTF-8 byte offset where each of TEXT's tokens (``tok.encode_text``) ends
    (non-decreasing): from the pieces' byte lengths, or from sentencepiece's offsets where
    those do not add up (a text holding U+2581 itself)."""
    if not text:
        return []
    ends = np.cumsum(_piece_bytes(tok)[tok.encode_text(text)]).tolist()
    if ends and ends[-1] == len(text.encode("utf-8", "surrogatepass")):
        return ends
    return [piece.end for piece in tok.sp.encode(text, return_type="proto").pieces]


def line_token_counts(lines: list[str], ends: list[int]) -> list[int]:
    """Tokens of each line inside the whole text's tokenisation (ENDS: each token's end byte):
    a token spanning a line end counts for the line where it ends."""
    counts, offset, before = [], 0, 0
    for line in lines:
        offset += len(line.encode("utf-8", "surrogatepass"))
        upto = bisect.bisect_right(ends, offset)
        counts.append(upto - before)
        before = upto
    return counts


def _cut_line(line: str, n: int, budget: int, tok: Tokenizer, parts: list[str]) -> str:
    """Cut parts off LINE (N tokens; one line over BUDGET) by characters onto PARTS until the
    rest fits; the rest."""
    while n > budget:
        cut = max(1, len(line) * budget // n)
        parts.append(line[:cut])
        line = line[cut:]
        n = len(tok.encode_text(line))
    return line


def split_lines(text: str, tok: Tokenizer, budget: int,
                ends: list[int] | None = None, verify: bool = True) -> list[str]:
    """TEXT cut at line ends into parts of at most BUDGET tokens, each as full as the line
    ends allow (a single line over the budget is cut by characters).

    Lines are counted inside the whole text's tokenisation (a token that spans a line end
    counts for the line where it ends), so a part is not short-changed by counting its lines
    one by one (that over-counts: tokens such as ``"\\n    "`` span lines); each part is then
    checked by encoding it, and gives back trailing lines while it is over the budget (not
    with VERIFY false: the caller checks the parts' own encodings). ENDS:
    ``token_ends(text, tok)`` when the caller has it."""
    lines = text.splitlines(keepends=True)
    if not lines:
        return []
    counts = line_token_counts(lines, token_ends(text, tok) if ends is None else ends)
    parts: list[str] = []
    buf: list[str] = []
    size = i = 0

    def flush() -> None:
        nonlocal buf, size, i
        while verify:
            n = len(tok.encode_text("".join(buf)))
            if n <= budget:
                break
            if len(buf) == 1:
                buf = [_cut_line(buf[0], n, budget, tok, parts)]
                continue
            buf.pop()  # give the line back: it starts the next part
            i -= 1
        parts.append("".join(buf))
        buf, size = [], 0

    while i < len(lines):
        line, n = lines[i], counts[i]
        if n > budget:  # a monster line: parts of its own, its rest starts a part
            if buf:
                flush()
                continue
            buf = [_cut_line(line, len(tok.encode_text(line)), budget, tok, parts)]
            size = len(tok.encode_text(buf[0]))
            i += 1
            continue
        if size + n > budget and buf:
            flush()
            continue
        buf.append(line)
        size += n
        i += 1
        if i == len(lines):
            flush()  # may give lines back: the loop goes on with them
    if buf:
        flush()
    return parts


class _Builder:
    """Accumulates file segments into examples of at most seq_len tokens."""

    def __init__(self, repo: str, source: str, split: str, tok: Tokenizer, seq_len: int,
                 id_prefix: str | None = None):
        self.repo, self.source, self.split, self.tok, self.seq_len = (repo, source, split, tok,
                                                                       seq_len)
        self.id_prefix = repo if id_prefix is None else id_prefix
        self.done: list[tuple[Example, np.ndarray]] = []
        self._reset()

    def _reset(self):
        self.entries, self.pieces, self.ids = [], [], [self.tok.bos_id]

    def add(self, entry: FileEntry, pieces: list[Piece], ids: list[int]) -> None:
        sep = [self.tok.control_ids[FILE_SEPARATOR]] if self.entries else []
        if self.entries and len(self.ids) + len(sep) + len(ids) + 1 > self.seq_len:
            self.close()
            sep = []
        index = len(self.entries)
        if sep:
            self.pieces.append(Piece(SENTINEL, FILE_SEPARATOR, -1))
        self.pieces.extend(replace(p, file=index) if p.kind != SENTINEL or p.file >= 0 else p
                           for p in pieces)
        self.entries.append(entry)
        self.ids.extend(sep + ids)

    def close(self, index: int | None = None) -> None:
        """The example so far, as example INDEX of its repository (the next one without)."""
        if not self.entries:
            return
        index = len(self.done) if index is None else index
        example = Example(f"{self.id_prefix}:{index:05d}", self.repo, self.source, self.split,
                          tuple(self.entries), tuple(self.pieces))
        self.done.append((example, np.asarray(self.ids + [self.tok.eos_id], dtype=np.int32)))
        self._reset()


def _file_parts(f: SourceFile, tok: Tokenizer, budget: int, encode_whole: bool) -> list[str]:
    """[content], or its line-boundary parts when it is over BUDGET tokens. A text of at most
    BUDGET UTF-8 bytes needs no count: every token covers at least one byte."""
    if not encode_whole:
        return [f.content]
    ends = token_ends(f.content, tok)
    if len(ends) <= budget:
        return [f.content]
    return split_lines(f.content, tok, budget, ends)


Segment = tuple  # (FileEntry, [Piece], [token id]): one file part, formatted and tokenised


def file_pieces(path: str, body: str, mode: str, rng: random.Random, split: str,
                language: str, spans: list | None = None) -> list[Piece]:
    """One file as training text: its ``path\n`` line, then its body plain or in FIM MODE.
    The evaluation formats its held-out files with this too, so they match training. SPANS:
    BODY's syntax split candidates, when the caller has them (``fim.split_parts``)."""
    return [Piece(PATH, path + "\n", 0)] + fim_pieces(body, mode, rng, 0, split, language,
                                                      spans)


def file_segments(f: SourceFile, tok: Tokenizer, *, seed: int, fim_rate: float, seq_len: int,
                  split: str = UNIFORM, spans: list | None = None) -> list[Segment]:
    """One file as segments: ``path\\n`` + body (plain or FIM), tokenised; one segment, or one
    per part when the file is longer than a sequence (split at line ends). Depends on the file
    alone (randomness from (seed, repo, path, part)): the same whatever order or worker
    formats it (the build formats each file on its own, ``packing/perfile.py``). SPANS: the
    whole content's syntax split candidates, parsed before the tokenizer was ready (a part
    of a long file is parsed here, on its own)."""
    def segment(body: str, k: int, parts: int) -> Segment:
        rng = file_rng(seed, f.repo, f.path, k)
        mode = choose_mode(rng, fim_rate)
        whole = parts == 1 and len(body) == len(f.content)  # the single part is the content
        pieces = file_pieces(f.path, body, mode, rng, split, f.language,
                             spans if whole else None)
        return (FileEntry(f.path, f.language, mode, f.redactions, k, parts, f.license,
                          f.origin, f.input_sha256, license_source=f.license_source,
                          encoding=f.encoding), pieces,
                tok.encode_pieces(pieces))

    budget = seq_len - len(tok.encode_text(f.path + "\n")) - OVERHEAD
    nbytes = len(f.content.encode("utf-8", "surrogatepass"))
    if nbytes <= budget:  # every token covers at least one byte: it fits, no count
        return [segment(f.content, 0, 1)]
    whole = None
    if nbytes <= LIKELY_FITS * budget:
        # Format the whole file and count its tokens once: most such files fit, and counting
        # the content on its own first would tokenise them twice.
        whole = segment(f.content, 0, 1)
        if len(whole[2]) + 2 <= seq_len:  # + bos + eos
            return [whole]
    ends = token_ends(f.content, tok)
    if len(ends) <= budget:
        return [whole or segment(f.content, 0, 1)]
    # Cut by the whole file's token counts, less a margin, unchecked: each part's own encoding
    # (a part's count differs by a few tokens at its ends and chunk edges) is the check, so
    # a part is encoded once more, not twice; a part over the sequence sends the file back to
    # checked cuts.
    parts = split_lines(f.content, tok, budget - CUT_MARGIN, ends, verify=False)
    segments = [segment(body, k, len(parts)) for k, body in enumerate(parts)]
    if all(len(ids) + 2 <= seq_len for _, _, ids in segments):
        return segments
    parts = split_lines(f.content, tok, budget, ends)
    return [segment(body, k, len(parts)) for k, body in enumerate(parts)]


def assemble_repo(repo: str, units: list[tuple[str, list[Segment]]], tok: Tokenizer, *,
                  seq_len: int, val_fraction: float, edges,
                  held_out: AbstractSet[str] | None = None,
                  method: str = "greedy", imports=None) -> list[tuple[Example, np.ndarray]]:
    """A repository's formatted files, UNITS [(path, segments)] in dependency order, as
    examples: files that fit a sequence are grouped along EDGES ({(u, v): weight}, or pairs
    of weight 1) by the partition METHOD, each group one example with its files in the given
    order; a long file's parts are examples of their own, consecutive.
    ``packing.stages.pack_repository`` is the whole path a repository takes in the build;
    the build itself plans with ``plan_examples`` from token counts and builds each example
    on its own (``packing/perfile.py``)."""
    by_path = dict(units)
    builder = _Builder(repo, CODE, repo_split(repo, val_fraction, held_out), tok, seq_len)
    for members in plan_examples(repo, [(p, [len(seg[2]) for seg in segs]) for p, segs in units],
                                 seq_len=seq_len, edges=edges, method=method, imports=imports):
        for path, part in members:
            builder.add(*by_path[path][part])
        builder.close()
    return builder.done


class _Planner:
    """``_Builder``'s grouping from token counts alone: which (path, part)s make each example."""

    def __init__(self, seq_len: int):
        self.seq_len, self.done = seq_len, []
        self.entries, self.length = [], 1  # bos

    def add(self, member: tuple[str, int], tokens: int) -> None:
        sep = 1 if self.entries else 0  # the file separator
        if self.entries and self.length + sep + tokens + 1 > self.seq_len:  # + eos
            self.close()
            sep = 0
        self.entries.append(member)
        self.length += sep + tokens

    def close(self) -> None:
        if self.entries:
            self.done.append(tuple(self.entries))
        self.entries, self.length = [], 1


def plan_examples(repo: str, units: list[tuple[str, list[int]]], *, seq_len: int, edges,
                  method: str = "greedy", imports=None) -> list[tuple[tuple[str, int], ...]]:
    """``assemble_repo``'s examples from token counts: UNITS [(path, [tokens of each part])] in
    dependency order -> each example's (path, part)s, in order. Files that fit a sequence are
    grouped along EDGES by the partition METHOD; a long file's parts are examples of their
    own, consecutive. What a repository's examples are needs no text, only these counts."""
    # A single-part file costs its tokens + a separator; an example adds bos + eos - 1.
    sizes = {p: parts[0] + 1 for p, parts in units if len(parts) == 1}
    by_path = dict(units)
    weights = edges if isinstance(edges, dict) else dict.fromkeys(edges, 1.0)
    clusters = {g[0]: g for g in partition([p for p, _ in units], sizes, weights,
                                           seq_len - 1, method, imports)}
    plan = _Planner(seq_len)
    for path, parts in units:
        if len(parts) > 1:  # parts of a long file: one example each, consecutive
            for k, tokens in enumerate(parts):
                plan.add((path, k), tokens)
                plan.close()
        elif path in clusters:
            for p in clusters[path]:
                plan.add((p, 0), by_path[p][0])
            if len(plan.entries) != len(clusters[path]):  # sizes above are exact
                raise AssertionError(f"{repo}: cluster at {path} does not fit {seq_len}")
            plan.close()
    return plan.done


def document_examples(doc: SourceFile, tok: Tokenizer, *, seq_len: int, val_fraction: float,
                      held_out: AbstractSet[str] | None = None,
                      ) -> list[tuple[Example, np.ndarray]]:
    """A natural-language document: one plain example, or parts of one if it is too long."""
    builder = _Builder(doc.repo, NATURAL_LANGUAGE, repo_split(doc.repo, val_fraction, held_out),
                       tok, seq_len, id_prefix=f"{doc.repo}:{doc.path}")
    parts = _file_parts(doc, tok, seq_len - OVERHEAD,
                        encode_whole=len(doc.content.encode("utf-8")) > seq_len - OVERHEAD)
    for k, body in enumerate(parts):
        pieces = [Piece(TEXT, body, 0)]
        builder.add(FileEntry(doc.path, doc.language, "none", doc.redactions, k, len(parts),
                              doc.license, doc.origin, doc.input_sha256,
                              doc.natural_language, encoding=doc.encoding),
                    pieces, tok.encode_pieces(pieces))
        builder.close()  # parts of a document are separate examples, never joined
    return builder.done
