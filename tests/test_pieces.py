"""The examples Parquet's ``pieces`` column: what ``piece_spans`` writes, ``pieces_of`` reads
back exactly, sentinel strings inside a file's text included."""
from hypothesis import given
from hypothesis import strategies as st

from fimpack.packing.pieces import piece_spans, pieces_of
from fimpack.records import Piece


def test_spans_of_a_psm_example():
    pieces = [Piece("path", "a.py\n", 0), Piece("sentinel", "<|fim_prefix|>"),
              Piece("prefix", "x = 1\n", 0), Piece("sentinel", "<|fim_suffix|>"),
              Piece("suffix", "", 0), Piece("middle", "y = '<|fim_middle|>'\n", 0)]
    spans = piece_spans(pieces)
    assert spans[:3] == [{"kind": "path", "file": 0, "start": 0, "end": 5},
                         {"kind": "sentinel", "file": -1, "start": 5, "end": 19},
                         {"kind": "prefix", "file": 0, "start": 19, "end": 25}]
    assert spans[4]["start"] == spans[4]["end"]  # an empty suffix keeps its place
    row = {"text": "".join(p.text for p in pieces), "pieces": spans}
    assert pieces_of(row) == pieces


@given(st.lists(st.tuples(st.sampled_from(["path", "prefix", "middle", "suffix", "sentinel"]),
                          st.text(), st.integers(-1, 3))))
def test_pieces_round_trip(parts):
    pieces = [Piece(kind, text, file) for kind, text, file in parts]
    row = {"text": "".join(p.text for p in pieces), "pieces": piece_spans(pieces)}
    assert pieces_of(row) == pieces
