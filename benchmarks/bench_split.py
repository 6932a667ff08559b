"""The validation split of finished builds: the held-out share of the tokens that
``packing/split.py`` achieved, next to what the earlier rule (the split hash alone, plus the
code repository of least hash when that held out none) would have held out of the same
examples.

    .venv/bin/python benchmarks/bench_split.py bench-data/pack-embedded-8192 \\
        bench-data/pack-sdists-8192 bench-data/pack-real-8192

Tokens are the examples' ``num_tokens`` as built (bench_pack builds keep every example:
``--code-fraction -1``).
"""
from __future__ import annotations

import argparse
import glob
import json
import sys
from collections import defaultdict
from pathlib import Path

import pyarrow.parquet as pq

from fimpack.config import recorded_setting
from fimpack.packing.examples import split_rank


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("builds", nargs="+")
    args = ap.parse_args(argv)
    print(f"{'build':28} {'repos':>5} {'target':>6} | {'earlier rule':>12} {'repos':>5} | "
          f"{'now':>6} {'repos':>5} {'manifest':>8}")
    for out in map(Path, args.builds):
        manifest = json.loads((out / "manifest.json").read_text())
        target = recorded_setting(manifest["config"], "val_fraction")
        tokens, source, split = defaultdict(int), {}, {}
        for path in sorted(glob.glob(str(out / "examples" / "*.parquet"))):
            for r in pq.read_table(path, columns=["repo", "num_tokens", "source",
                                                  "split"]).to_pylist():
                tokens[r["repo"]] += r["num_tokens"]
                source.setdefault(r["repo"], r["source"])
                split[r["repo"]] = r["split"]
        total = sum(tokens.values())
        share = lambda repos: sum(tokens[r] for r in repos) / total  # noqa: E731
        earlier = {r for r in tokens if split_rank(r) < target * 1_000_000}
        if not earlier and len(tokens) > 1:
            code = [r for r in tokens if source[r] == "code"] or list(tokens)
            earlier = {min(code, key=lambda r: (split_rank(r), r))}
        now = {r for r in tokens if split[r] == "validation"}
        print(f"{out.name:28} {len(tokens):5} {target:6.3f} | {share(earlier):12.3f} "
              f"{len(earlier):5} | {share(now):6.3f} {len(now):5} "
              f"{manifest['counts'].get('validation_fraction')!s:>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
