import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from fimpack.dedup import signatures
from fimpack.dedup.minhash import (EMPTY, densify, estimate_jaccard, jaccard, oph_bins,
                                   shingle_hashes, signature)

from conftest import STDLIB

REAL = [p.read_text() for p in sorted((STDLIB / "json").glob("*.py"))]


def test_public_api_shape_and_determinism():
    sigs = signatures(REAL)
    assert sigs.shape == (len(REAL), 256) and sigs.dtype == np.uint32
    assert np.array_equal(sigs, signatures(REAL))
    assert signatures(REAL[:2], num_perm=64).shape == (2, 64)
    assert signatures([]).shape == (0, 256)


def test_identical_texts_have_identical_signatures_and_different_ones_differ():
    a, b = signatures([REAL[0], REAL[0]])
    assert np.array_equal(a, b)
    c, d = signatures([REAL[0], REAL[1]])
    assert estimate_jaccard(c, d) < 0.3


def test_estimate_tracks_exact_jaccard_on_real_edits():
    """Delete growing slices of real files: the estimate follows brute-force Jaccard."""
    errors = []
    for path in sorted(STDLIB.glob("*.py"))[:40]:
        text = path.read_text(errors="replace")
        lines = text.splitlines(keepends=True)
        if len(lines) < 200:
            continue
        for cut in (5, 20, 60):
            edited = "".join(lines[:100] + lines[100 + cut:])
            sa, sb = shingle_hashes(text), shingle_hashes(edited)
            errors.append(estimate_jaccard(signature(text), signature(edited)) - jaccard(sa, sb))
    errors = np.array(errors)
    assert len(errors) > 30
    assert abs(errors.mean()) < 0.02 and np.abs(errors).max() < 0.12


def test_union_of_bins_is_signature_of_union():
    a, b = shingle_hashes(REAL[0]), shingle_hashes(REAL[1])
    union = np.union1d(a, b)
    assert np.array_equal(np.minimum(oph_bins(a), oph_bins(b)), oph_bins(union))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=40, unique=True))
def test_densified_signature_has_no_empty_bins(values):
    sig = densify(oph_bins(np.array(sorted(values), dtype=np.uint64)))
    assert not (sig == EMPTY).any()


def test_text_without_tokens_has_empty_signature():
    assert (signature("  ;;; {}\n") == EMPTY).all()
    assert not (signature("one two") == EMPTY).any()  # fewer tokens than n: one shingle
