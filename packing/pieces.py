"""The structure of an example's text as the examples Parquet stores it (the ``pieces``
column): each piece (path, content, prefix, middle, suffix, sentinel, ...) as its kind, the
file it belongs to (-1 for separators) and its [start, end) span of the text in characters
(code points). ``piece_spans`` writes the column from an example's pieces; ``pieces_of`` reads
them back from a row, for ``fimpack inspect``, provenance and the held-out metrics, which
rebuild files from them (``fim.reconstruct``) even when a file contains a sentinel string."""
from __future__ import annotations

from typing import Iterable

from fimpack.records import Piece


def piece_spans(pieces: Iterable[Piece]) -> list[dict]:
    """The ``pieces`` column of an example whose text is the pieces' texts joined."""
    spans, pos = [], 0
    for p in pieces:
        spans.append({"kind": p.kind, "file": p.file, "start": pos, "end": pos + len(p.text)})
        pos += len(p.text)
    return spans


def pieces_of(row: dict) -> list[Piece]:
    """An examples row's pieces (``text`` and ``pieces`` columns)."""
    text = row["text"]
    return [Piece(p["kind"], text[p["start"]:p["end"]], p["file"]) for p in row["pieces"]]
