import random

from hypothesis import given, settings, strategies as st

from fimpack.packing.fim import NONE, PSM, SPM, choose_mode, fim_pieces, reconstruct
from fimpack.records import FIM_MIDDLE, FIM_PREFIX, FIM_SUFFIX


@settings(max_examples=300, deadline=None)
@given(content=st.text(), mode=st.sampled_from([NONE, PSM, SPM]), seed=st.integers(0, 2**32))
def test_fim_round_trips_byte_exactly(content, mode, seed):
    pieces = fim_pieces(content, mode, random.Random(seed), file=0)
    assert reconstruct(pieces, 0) == content


@given(content=st.text(min_size=1), seed=st.integers(0, 2**32))
def test_psm_and_spm_layouts(content, seed):
    psm = fim_pieces(content, PSM, random.Random(seed), 0)
    prefix, suffix, middle = psm[1].text, psm[3].text, psm[5].text
    assert "".join(p.text for p in psm) == (
        FIM_PREFIX + prefix + FIM_SUFFIX + suffix + FIM_MIDDLE + middle)
    spm = fim_pieces(content, SPM, random.Random(seed), 0)
    # Same RNG state -> same split; SPM puts the suffix first and prefix+middle after.
    assert "".join(p.text for p in spm) == (
        FIM_PREFIX + FIM_SUFFIX + suffix + FIM_MIDDLE + prefix + middle)


def test_literal_sentinels_in_source_round_trip():
    content = "x = '<|fim_middle|>'  # <|file_separator|>\n"
    for seed in range(50):
        for mode in (PSM, SPM):
            assert reconstruct(fim_pieces(content, mode, random.Random(seed), 3), 3) == content


def test_fim_rate_and_psm_spm_split():
    rng = random.Random(0)
    modes = [choose_mode(rng, 0.8) for _ in range(20_000)]
    fim = sum(m != NONE for m in modes) / len(modes)
    spm = sum(m == SPM for m in modes) / max(1, sum(m != NONE for m in modes))
    assert abs(fim - 0.8) < 0.015 and abs(spm - 0.5) < 0.02
    assert all(choose_mode(rng, 0.0) == NONE for _ in range(1000))
    assert all(choose_mode(rng, 1.0) != NONE for _ in range(1000))
