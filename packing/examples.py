"""Turn a repository's ordered files into CodeGemma multi-file examples that fit a sequence.

An example (a *document* inside a packed training sequence) is files of one repository in
dependency order, each as ``path\\n`` then its body (plain or FIM), ``<|file_separator|>``
between files, tokenised as ``[bos] ... [eos]`` and at most ``seq_len`` tokens long. Files are
added in order while they fit, so a file's dependencies sit before it in the same example
whenever the two fit together. A file longer than a sequence is split at line boundaries
into parts (``FileEntry.part``/``parts``), each its own FIM unit; joining the parts in order
gives the file back.

Randomness comes from an RNG seeded by (seed, repo, path, part): the output never depends on
worker count or arrival order.
"""
from __future__ import annotations

import random
from dataclasses import replace

import numpy as np
import xxhash

from fimpack.packing.fim import UNIFORM, choose_mode, fim_pieces
from fimpack.packing.tokenizer import Tokenizer
from fimpack.records import (CODE, FILE_SEPARATOR, NATURAL_LANGUAGE, PATH, SENTINEL, TEXT,
                             Example, FileEntry, Piece, SourceFile)

# Tokens a file part may take beyond its body: path line, three sentinels, the separator,
# bos/eos, and the few extra tokens that splitting text into FIM pieces can cost.
OVERHEAD = 16


def stable_hash(*parts: str) -> int:
    return xxhash.xxh64_intdigest("\x1f".join(parts).encode("utf-8", "surrogatepass"))


def file_rng(seed: int, repo: str, path: str, part: int = 0) -> random.Random:
    return random.Random(stable_hash(str(seed), repo, path, str(part)))


def repo_split(repo: str, val_fraction: float) -> str:
    """Train/validation by repository: no repository lands in both."""
    return "validation" if stable_hash("split", repo) % 1_000_000 < val_fraction * 1_000_000 \
        else "train"


def split_lines(text: str, tok: Tokenizer, budget: int) -> list[str]:
    """TEXT cut at line ends into parts of at most BUDGET tokens (counted line by line; a
    single line over the budget is cut by characters)."""
    lines = text.splitlines(keepends=True)
    counts = [len(ids) for ids in tok.sp.encode(lines)] if lines else []
    parts, buf, size = [], [], 0
    for line, n in zip(lines, counts):
        while n > budget:  # a monster line: cut it where the token count says
            cut = max(1, len(line) * budget // n)
            if buf:
                parts.append("".join(buf))
                buf, size = [], 0
            parts.append(line[:cut])
            line = line[cut:]
            n = len(tok.encode_text(line))
        if size + n > budget and buf:
            parts.append("".join(buf))
            buf, size = [], 0
        buf.append(line)
        size += n
    if buf:
        parts.append("".join(buf))
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

    def close(self) -> None:
        if not self.entries:
            return
        index = len(self.done)
        example = Example(f"{self.id_prefix}:{index:05d}", self.repo, self.source, self.split,
                          tuple(self.entries), tuple(self.pieces))
        self.done.append((example, np.asarray(self.ids + [self.tok.eos_id], dtype=np.int64)))
        self._reset()


def _file_parts(f: SourceFile, tok: Tokenizer, budget: int, encode_whole: bool) -> list[str]:
    """[content], or its line-boundary parts when it is over BUDGET tokens. A text of at most
    BUDGET UTF-8 bytes needs no count: every token covers at least one byte."""
    if not encode_whole or len(tok.encode_text(f.content)) <= budget:
        return [f.content]
    return split_lines(f.content, tok, budget)


def repo_examples(repo: str, files: list[SourceFile], tok: Tokenizer, *, seed: int,
                  fim_rate: float, seq_len: int, val_fraction: float,
                  split: str = UNIFORM) -> list[tuple[Example, np.ndarray]]:
    """A repository's files (already in packing order) as tokenised examples."""
    builder = _Builder(repo, CODE, repo_split(repo, val_fraction), tok, seq_len)
    for f in files:
        path_piece = Piece(PATH, f.path + "\n", 0)
        path_ids = tok.encode_text(path_piece.text)
        budget = seq_len - len(path_ids) - OVERHEAD
        parts = _file_parts(f, tok, budget,
                            encode_whole=len(f.content.encode("utf-8")) > budget)
        for k, body in enumerate(parts):
            rng = file_rng(seed, repo, f.path, k)
            mode = choose_mode(rng, fim_rate)
            pieces = [path_piece] + fim_pieces(body, mode, rng, 0, split, f.language)
            ids = tok.encode_pieces(pieces)
            builder.add(FileEntry(f.path, f.language, mode, f.redactions, k, len(parts)),
                        pieces, ids)
    builder.close()
    return builder.done


def document_examples(doc: SourceFile, tok: Tokenizer, *, seq_len: int,
                      val_fraction: float) -> list[tuple[Example, np.ndarray]]:
    """A natural-language document: one plain example, or parts of one if it is too long."""
    builder = _Builder(doc.repo, NATURAL_LANGUAGE, repo_split(doc.repo, val_fraction), tok,
                       seq_len, id_prefix=f"{doc.repo}:{doc.path}")
    parts = _file_parts(doc, tok, seq_len - OVERHEAD,
                        encode_whole=len(doc.content.encode("utf-8")) > seq_len - OVERHEAD)
    for k, body in enumerate(parts):
        pieces = [Piece(TEXT, body, 0)]
        builder.add(FileEntry(doc.path, doc.language, "none", doc.redactions, k, len(parts)),
                    pieces, tok.encode_pieces(pieces))
        builder.close()  # parts of a document are separate examples, never joined
    return builder.done
