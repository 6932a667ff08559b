"""Decontamination against HumanEval on code that cannot contain it: how many files match.

    python benchmarks/bench_decontaminate.py [--old OLD_decontaminate.py] [ROOT ...]

Every ``.py`` file under the roots (default: this interpreter's standard library and the
venv's site-packages, capped at --limit files in path order) is matched against HumanEval's
n-grams; each hit is printed with its task and n-gram (the drop detail a build writes).
With --old, another version of dedup/decontaminate.py is run on the same files too (its
``contaminated(text, benchmark_ngrams(...))``), for a before/after count.
"""
from __future__ import annotations

import argparse
import glob
import importlib.util
import os
import sys
import sysconfig
import time

from fimpack.dedup import decontaminate

ROOTS = [sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"]]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("roots", nargs="*", default=ROOTS)
    ap.add_argument("--old", help="an earlier decontaminate.py to compare")
    ap.add_argument("--limit", type=int, default=20000)
    args = ap.parse_args(argv)
    files = sorted(f for root in args.roots
                   for f in glob.glob(os.path.join(root, "**", "*.py"), recursive=True))
    texts = []
    for f in files[:args.limit]:
        try:
            with open(f, encoding="utf-8") as fh:
                texts.append((f, fh.read()))
        except (OSError, UnicodeDecodeError):
            pass
    bench = decontaminate.Benchmark([decontaminate.humaneval_path()])
    t = time.perf_counter()
    hits = [(f, bench.match(x)) for f, x in texts]
    hits = [h for h in hits if h[1]]
    print(f"{len(texts)} files; HumanEval n-grams {len(bench)}; matched {len(hits)} "
          f"({time.perf_counter() - t:.1f} s)")
    for f, detail in hits:
        print(f"  {f}: {detail}")
    if args.old:
        spec = importlib.util.spec_from_file_location("old_decontaminate", args.old)
        old = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(old)
        grams = old.benchmark_ngrams([decontaminate.humaneval_path()])
        t = time.perf_counter()
        old_hits = [f for f, x in texts if old.contaminated(x, grams)]
        print(f"old: HumanEval n-grams {len(grams)}; matched {len(old_hits)} "
              f"({time.perf_counter() - t:.1f} s)")
        for f in old_hits:
            print(f"  {f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
