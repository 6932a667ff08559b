"""Fill-in-the-middle formatting with CodeGemma's sentinels, and its exact inverse.

Split points (``split``):
  * ``uniform``: two character positions drawn uniformly (Bavarian et al. 2022), so any of
    prefix, middle and suffix may be empty -- the model learns to infill at any cursor;
  * ``syntax``: the middle is one whole tree-sitter node (statement, block, expression,
    definition; ``syntax.py``) -- CodeGemma's "syntactically natural" split, what an editor
    asks to complete; files without a grammar fall back to uniform;
  * ``mixed`` (the default): each FIM file flips a fair coin between the two, so neither
    skill is traded away for the other.

The two orders, in pieces:

    PSM: <|fim_prefix|> prefix <|fim_suffix|> suffix <|fim_middle|> middle
    SPM: <|fim_prefix|> <|fim_suffix|> suffix <|fim_middle|> prefix middle

SPM is Bavarian et al.'s "variant 2" (the one StarCoder and Code Llama train on): both
sentinels come first, so the model sees the suffix, then writes prefix + middle as one
continuous left-to-right span, and PSM and SPM share the "<|fim_middle|> then the rest" shape.
Nothing is added around sentinels; the content is byte-exact prefix + middle + suffix.
"""
from __future__ import annotations

import random

from fimpack.config import MIXED, SYNTAX, UNIFORM  # the split vocabulary (FIM_SPLITS) is config's
from fimpack.records import (CONTENT, FIM_MIDDLE, FIM_PREFIX, FIM_SUFFIX, MIDDLE, PREFIX,
                             SENTINEL, SUFFIX, TEXT, Piece)

NONE, PSM, SPM = "none", "psm", "spm"


def choose_mode(rng: random.Random, fim_rate: float, spm_rate: float = 0.5) -> str:
    if rng.random() >= fim_rate:
        return NONE
    return SPM if rng.random() < spm_rate else PSM


def uniform_split(content: str, rng: random.Random) -> tuple[str, str, str]:
    """Two uniform character positions in [0, len]: (prefix, middle, suffix)."""
    i, j = sorted((rng.randint(0, len(content)), rng.randint(0, len(content))))
    return content[:i], content[i:j], content[j:]


def resolve_split(rng: random.Random, split: str) -> str:
    """SPLIT as ``split_parts`` applies it: MIXED becomes SYNTAX or UNIFORM by one draw of
    RNG, the draw after ``choose_mode``'s (``perfile.needs_spans`` makes the same two)."""
    if split == MIXED:
        return SYNTAX if rng.random() < 0.5 else UNIFORM
    return split


def split_parts(content: str, rng: random.Random, split: str = UNIFORM,
                language: str = "", spans: list | None = None) -> tuple[str, str, str]:
    """(prefix, middle, suffix) by the SPLIT strategy. SPANS: CONTENT's syntax candidates
    (``syntax.candidate_spans``) when the caller parsed it already (the build does, before
    the tokenizer is trained: ``packing/perfile.py``)."""
    split = resolve_split(rng, split)
    if split == SYNTAX:
        if spans is None:  # the import is lazy: tree-sitter's grammars load only if needed
            from fimpack.packing.syntax import candidate_spans

            spans = candidate_spans(content, language)
        span = rng.choice(spans) if spans else None
        if span is not None:
            i, j = span
            return content[:i], content[i:j], content[j:]
    elif split != UNIFORM:
        raise ValueError(f"unknown FIM split {split!r}")
    return uniform_split(content, rng)


def fim_pieces(content: str, mode: str, rng: random.Random, file: int,
               split: str = UNIFORM, language: str = "",
               spans: list | None = None) -> list[Piece]:
    """The pieces of one file body in MODE (the path line is added by the caller)."""
    if mode == NONE:
        return [Piece(CONTENT, content, file)]
    prefix, middle, suffix = split_parts(content, rng, split, language, spans)
    sentinel = lambda s: Piece(SENTINEL, s, file)  # noqa: E731
    if mode == PSM:
        return [sentinel(FIM_PREFIX), Piece(PREFIX, prefix, file),
                sentinel(FIM_SUFFIX), Piece(SUFFIX, suffix, file),
                sentinel(FIM_MIDDLE), Piece(MIDDLE, middle, file)]
    if mode == SPM:
        return [sentinel(FIM_PREFIX), sentinel(FIM_SUFFIX), Piece(SUFFIX, suffix, file),
                sentinel(FIM_MIDDLE), Piece(PREFIX, prefix, file), Piece(MIDDLE, middle, file)]
    raise ValueError(f"unknown FIM mode {mode!r}")


ORIGINAL_ORDER = (CONTENT, PREFIX, MIDDLE, SUFFIX)  # a file's pieces in the file's own order


def _kind(p: Piece) -> str:
    return CONTENT if p.kind == TEXT else p.kind  # a document is plain content


def reconstruct(pieces: list[Piece], file: int) -> str:
    """Undo the FIM rearrangement of one file: its original content, byte-exact."""
    parts = dict.fromkeys(ORIGINAL_ORDER, "")
    for p in pieces:
        if p.file == file and _kind(p) in parts:
            parts[_kind(p)] += p.text
    return "".join(parts[k] for k in ORIGINAL_ORDER)


def original_start(pieces: list[Piece], k: int) -> int:
    """Where piece K (a content, text, prefix, middle or suffix piece) starts in its file as
    ``reconstruct`` gives the file back."""
    rank = ORIGINAL_ORDER.index(_kind(pieces[k]))
    return sum(len(p.text) for p in pieces if p.file == pieces[k].file
               and _kind(p) in ORIGINAL_ORDER and ORIGINAL_ORDER.index(_kind(p)) < rank)
