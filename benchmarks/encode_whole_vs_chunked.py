"""Whole-text encoding (what fimpack does, what sentencepiece and transformers do) against
encoding in 4 KB chunks of lines (what fimpack did before 2026-12-02), on installed Python.

    .venv/bin/python benchmarks/encode_whole_vs_chunked.py --tokenizer demo/corpus/tokenizer.model

Every 10th ``.py`` file of the installed distributions (sorted paths); CPU seconds of one
single-threaded ``sp.encode(list)`` call each way, best of ``--repeats``; how many files get
different ids.
"""
from __future__ import annotations

import argparse
import sys
import sysconfig
import time
from pathlib import Path

import sentencepiece as spm

from fimpack.packing.tokenizer import chunk_lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args(argv)
    sp = spm.SentencePieceProcessor(model_file=args.tokenizer)
    texts = []
    for path in sorted(Path(sysconfig.get_paths()["purelib"]).rglob("*.py"))[::10]:
        try:
            texts.append(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, OSError):
            continue
    mb = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    chunks, bounds = [], [0]
    for t in texts:
        chunks += list(chunk_lines(t))
        bounds.append(len(chunks))
    best = {"whole": 1e9, "chunked": 1e9}
    for _ in range(args.repeats):
        t = time.process_time()
        whole = sp.encode(texts, num_threads=1)
        best["whole"] = min(best["whole"], time.process_time() - t)
        t = time.process_time()
        flat = sp.encode(chunks, num_threads=1)
        best["chunked"] = min(best["chunked"], time.process_time() - t)
    chunked = [[i for ids in flat[a:b] for i in ids] for a, b in zip(bounds, bounds[1:])]
    differ = sum(a != b for a, b in zip(whole, chunked))
    print(f"{len(texts)} files, {mb:.1f} MB: whole {best['whole']:.2f} s, chunked "
          f"{best['chunked']:.2f} s CPU (whole / chunked = {best['whole'] / best['chunked']:.2f}x); "
          f"tokens {sum(map(len, whole)):,} vs {sum(map(len, chunked)):,}; "
          f"files with different ids {differ}/{len(texts)} ({differ / len(texts):.1%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
