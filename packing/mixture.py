"""The code / natural-language mixture, by tokens, sampled deterministically.

The over-represented source is down-sampled (nothing is repeated: repeats cost quality more
than a slightly smaller corpus). Each example gets a hash bucket from (seed, id); the
per-source token totals per bucket are combined across the corpus (a fixed-size histogram,
so it scales), and the kept buckets are the lowest ones whose tokens fit the target. The
achieved fraction is then off by at most one bucket's tokens (1/65536 of the source on a large
corpus; one example on a small one).
"""
from __future__ import annotations

import numpy as np

from fimpack.packing.examples import stable_hash

BUCKETS = 1 << 16
PRESETS = {  # CodeGemma's published mixtures
    "codegemma-7b": {"code_fraction": 0.8, "fim_rate": 0.8},
    "codegemma-2b": {"code_fraction": 1.0, "fim_rate": 0.9},
}


def bucket(seed: int, example_id: str) -> int:
    return stable_hash("mixture", str(seed), example_id) % BUCKETS


def histogram(pairs) -> np.ndarray:
    """Token totals per bucket from (bucket, tokens) pairs."""
    h = np.zeros(BUCKETS, dtype=np.int64)
    for b, n in pairs:
        h[b] += n
    return h


def plan(code: np.ndarray, nl: np.ndarray, code_fraction: float | None) -> dict:
    """Which source to cut and below which bucket its examples stay.
    ``{"cut": None}`` keeps everything (no target, or nothing to cut)."""
    total_code, total_nl = int(code.sum()), int(nl.sum())
    if code_fraction is None or total_code + total_nl == 0:
        return {"cut": None, "below": BUCKETS}
    if code_fraction >= 1.0:
        return {"cut": "nl", "below": 0}
    if code_fraction <= 0.0:
        return {"cut": "code", "below": 0}
    if total_nl and total_code / (total_code + total_nl) > code_fraction:
        cut, hist, want = "code", code, code_fraction / (1 - code_fraction) * total_nl
    elif total_code and total_code / (total_code + total_nl) < code_fraction:
        cut, hist, want = "nl", nl, (1 - code_fraction) / code_fraction * total_code
    else:
        return {"cut": None, "below": BUCKETS}
    cum = np.cumsum(hist)
    # The bucket boundary whose kept total is closest to the wanted tokens.
    below = int(np.searchsorted(cum, want))
    if below < BUCKETS and below > 0 and abs(cum[below] - want) < abs(cum[below - 1] - want):
        below += 1
    elif below == 0 and cum[0] and abs(cum[0] - want) < want:
        below = 1
    return {"cut": cut, "below": min(below, BUCKETS)}


def keep(source: str, example_bucket: int, decision: dict) -> bool:
    return decision["cut"] != source or example_bucket < decision["below"]
