"""Turn a repository's ordered files into CodeGemma multi-file examples.

An example is files of one repository in order, each as ``path\\n`` then its body (plain or
FIM), with ``<|file_separator|>`` between files (nothing else is added, so every file
reconstructs byte-exactly). Files are added greedily until the example would pass
``max_chars``; a file longer than that gets an example of its own. Randomness comes from a
per-file RNG seeded by (seed, repo, path): the output never depends on worker count or order.
"""
from __future__ import annotations

import random

import xxhash

from fimpack.packing.fim import choose_mode, fim_pieces
from fimpack.records import (CODE, FILE_SEPARATOR, NATURAL_LANGUAGE, PATH, SENTINEL, TEXT,
                             Example, FileEntry, Piece, SourceFile)


def stable_hash(*parts: str) -> int:
    return xxhash.xxh64_intdigest("\x1f".join(parts).encode("utf-8", "surrogatepass"))


def file_rng(seed: int, repo: str, path: str) -> random.Random:
    return random.Random(stable_hash(str(seed), repo, path))


def repo_split(repo: str, val_fraction: float) -> str:
    """Train/validation by repository: no repository lands in both."""
    return "validation" if stable_hash("split", repo) % 1_000_000 < val_fraction * 1_000_000 \
        else "train"


def group_files(files: list[SourceFile], max_chars: int) -> list[list[SourceFile]]:
    groups: list[list[SourceFile]] = []
    size = 0
    for f in files:
        cost = len(f.path) + 1 + len(f.content)
        if groups and size + cost <= max_chars:
            groups[-1].append(f)
            size += cost
        else:
            groups.append([f])
            size = cost
    return groups


def code_example(repo: str, index: int, files: list[SourceFile], *, seed: int,
                 fim_rate: float, split: str) -> Example:
    pieces: list[Piece] = []
    entries = []
    for i, f in enumerate(files):
        rng = file_rng(seed, repo, f.path)
        mode = choose_mode(rng, fim_rate)
        if i:
            pieces.append(Piece(SENTINEL, FILE_SEPARATOR, -1))
        pieces.append(Piece(PATH, f.path + "\n", i))
        pieces.extend(fim_pieces(f.content, mode, rng, i))
        entries.append(FileEntry(f.path, f.language, mode, f.redactions))
    return Example(f"{repo}:{index:05d}", repo, CODE, split, tuple(entries), tuple(pieces))


def repo_examples(repo: str, files: list[SourceFile], *, seed: int, fim_rate: float,
                  max_chars: int, val_fraction: float) -> list[Example]:
    split = repo_split(repo, val_fraction)
    return [code_example(repo, i, group, seed=seed, fim_rate=fim_rate, split=split)
            for i, group in enumerate(group_files(files, max_chars))]


def document_example(doc: SourceFile, *, val_fraction: float) -> Example:
    """A natural-language document is one example of plain text."""
    return Example(f"{doc.repo}:{doc.path}", doc.repo, NATURAL_LANGUAGE,
                   repo_split(doc.repo, val_fraction),
                   (FileEntry(doc.path, doc.language, "none", doc.redactions),),
                   (Piece(TEXT, doc.content, 0),))
