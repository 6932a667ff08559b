"""MinHash signatures of source files, fast enough that shingling, not hashing, is the cost.

Shingles are 5-grams of code tokens (runs of ``[A-Za-z0-9_]``, as BigCode's near-dedup
splits them). Each token is hashed once (xxh64, cached per worker: code vocabularies repeat),
and each 5-gram hash is a wrapping polynomial of its token hashes put through the MurmurHash3
64-bit finalizer -- all in numpy.

The default scheme, ``"oph"``, is one-permutation hashing (Li, Owen & Zhang, NeurIPS 2012)
with optimal densification (Shrivastava, ICML 2017): one hash per shingle picks one of
``num_perm`` bins and the bin keeps its minimum, so a signature costs O(shingles) instead of
O(shingles x num_perm). Empty bins (short files) borrow the value of a bin chosen by a fixed
hash of (bin, attempt), the same for every document, which keeps ``P[sig_a[i] == sig_b[i]]``
equal to the Jaccard similarity -- the property LSH banding needs.

``scheme="datasketch"`` computes the same shingles with ``datasketch.MinHash.bulk`` (its 2.0
``affine32`` permutations), for signatures that compare with datasketch's own.
"""
from __future__ import annotations

import re
from typing import Iterable, Sequence

import numpy as np
import xxhash

NUM_PERM = 256
NGRAM = 5
SEED = 0
TOKEN = re.compile(r"[A-Za-z0-9_]+")
EMPTY = np.uint32(0xFFFFFFFF)

# Odd 64-bit multipliers for the position of each token inside a shingle.
_POSITION_MULTIPLIERS = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9,
                                  0xD6E8FEB86659FD93, 0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53,
                                  0x85EBCA77C2B2AE63, 0x27D4EB2F165667C5],
                                 dtype=np.uint64)
_TOKEN_CACHE_LIMIT = 2_000_000


class _TokenHashes(dict):
    """token -> xxh64, filled on first sight. Code vocabularies repeat heavily, so after a
    few files nearly every lookup is a C-level dict hit."""

    def __init__(self, seed: int):
        super().__init__()
        self.seed = seed

    def __missing__(self, token: str) -> int:
        h = xxhash.xxh64_intdigest(token.encode(), self.seed)
        if len(self) < _TOKEN_CACHE_LIMIT:
            self[token] = h
        return h


_CACHES: dict[int, _TokenHashes] = {}


def _fmix64(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's finalizer: a bijection on uint64 that avalanches every input bit."""
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xFF51AFD7ED558CCD)
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xC4CEB9FE1A85EC53)
    return h ^ (h >> np.uint64(33))


def tokens(text: str) -> list[str]:
    return TOKEN.findall(text)


def token_hashes(toks: Sequence[str], seed: int = SEED) -> np.ndarray:
    cache = _CACHES.get(seed)
    if cache is None:
        cache = _CACHES.setdefault(seed, _TokenHashes(seed))
    return np.fromiter(map(cache.__getitem__, toks), dtype=np.uint64, count=len(toks))


def shingle_hashes(text: str, ngram: int = NGRAM, seed: int = SEED,
                   unique: bool = True) -> np.ndarray:
    """64-bit hashes of the token n-grams of TEXT, sorted and distinct unless ``unique`` is
    False (MinHash does not care about repeats, so signatures skip the sort). A text with
    fewer than NGRAM tokens is one shingle of all of them; one with no tokens has none."""
    t = token_hashes(tokens(text), seed)
    if len(t) == 0:
        return t
    n = max(1, len(t) - ngram + 1)
    k = min(ngram, len(t))
    with np.errstate(over="ignore"):
        h = t[0:n] * _POSITION_MULTIPLIERS[0]
        for j in range(1, k):
            h = h + t[j:j + n] * _POSITION_MULTIPLIERS[j]
        h = _fmix64(h + np.uint64(k))
    return np.unique(h) if unique else h


def _densify_plan(num_perm: int, seed: int) -> np.ndarray:
    """For each bin, the fixed order in which it probes other bins when it is empty."""
    rng = np.random.default_rng(seed + 0x5EED)
    return rng.integers(0, num_perm, size=(num_perm, 64), dtype=np.int64)


_PLANS: dict[tuple[int, int], np.ndarray] = {}


def oph_bins(shingles: np.ndarray, num_perm: int = NUM_PERM, seed: int = SEED) -> np.ndarray:
    """The bins of a one-permutation MinHash before densification (EMPTY where no shingle
    fell). Bins merge by element-wise minimum: the bins of a union of shingle sets are the
    minimum of their bins, which lets a repository's signature be combined from its files'."""
    sig = np.full(num_perm, EMPTY, dtype=np.uint32)
    if len(shingles) == 0:
        return sig
    with np.errstate(over="ignore"):
        h = _fmix64(shingles ^ np.uint64(seed * 0x9E3779B97F4A7C15 & 0xFFFFFFFFFFFFFFFF))
    # High bits choose the bin (multiply-shift onto [0, num_perm)), low bits are the value;
    # a low value of EMPTY itself is folded so that EMPTY only ever means "no shingle".
    bins = ((h >> np.uint64(32)) * np.uint64(num_perm)) >> np.uint64(32)
    values = np.minimum(h & np.uint64(0xFFFFFFFF), np.uint64(0xFFFFFFFE)).astype(np.uint32)
    np.minimum.at(sig, bins.astype(np.intp), values)
    return sig


def densify(bins: np.ndarray, seed: int = SEED) -> np.ndarray:
    """Optimal densification: an empty bin takes the value of the first non-empty bin in its
    fixed probe order (the same order for every document). All-empty stays all EMPTY."""
    empty = np.flatnonzero(bins == EMPTY)
    if len(empty) == 0 or len(empty) == len(bins):
        return bins
    num_perm = len(bins)
    plan = _PLANS.get((num_perm, seed))
    if plan is None:
        plan = _PLANS.setdefault((num_perm, seed), _densify_plan(num_perm, seed))
    filled = bins != EMPTY
    sig = bins.copy()
    for i in empty:
        for j in plan[i]:
            if filled[j]:
                sig[i] = bins[j]
                break
        else:  # 64 misses in a row happen only for near-empty documents
            sig[i] = bins[filled.argmax()]
    return sig


def oph_signature(shingles: np.ndarray, num_perm: int = NUM_PERM,
                  seed: int = SEED) -> np.ndarray:
    """One-permutation MinHash with optimal densification: uint32[num_perm]."""
    return densify(oph_bins(shingles, num_perm, seed), seed)


def datasketch_signature(shingles: np.ndarray, num_perm: int = NUM_PERM,
                         seed: int = SEED) -> np.ndarray:
    from datasketch import MinHash

    m = MinHash(num_perm=num_perm, seed=seed, hashfunc=lambda x: x & 0xFFFFFFFF)
    if len(shingles):
        m.update_batch(shingles.tolist())
    return m.hashvalues.astype(np.uint32)


SCHEMES = {"oph": oph_signature, "datasketch": datasketch_signature}


def signature(text: str, *, num_perm: int = NUM_PERM, ngram: int = NGRAM, seed: int = SEED,
              scheme: str = "oph") -> np.ndarray:
    return SCHEMES[scheme](shingle_hashes(text, ngram, seed, unique=scheme != "oph"), num_perm,
                           seed)


def signatures(texts: Iterable[str], *, num_perm: int = NUM_PERM, ngram: int = NGRAM,
               seed: int = SEED, scheme: str = "oph") -> np.ndarray:
    """MinHash signatures of TEXTS: uint32 array of shape (len(texts), num_perm)."""
    rows = [signature(t, num_perm=num_perm, ngram=ngram, seed=seed, scheme=scheme)
            for t in texts]
    if not rows:
        return np.zeros((0, num_perm), dtype=np.uint32)
    return np.stack(rows)


def estimate_jaccard(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(a == b))


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Exact Jaccard similarity of two shingle-hash sets (sorted unique arrays)."""
    if len(a) == 0 and len(b) == 0:
        return 1.0
    inter = len(np.intersect1d(a, b, assume_unique=True))
    return inter / (len(a) + len(b) - inter)
