"""What licences, document language / quality rules and provenance cost a build, side by side.

    .venv/bin/python benchmarks/bench_provenance.py --data bench-data [--repos 40] [--repeats 2]

The same ``fimpack build`` of the embedded default corpus (``--max-repos``, 400 files a
repository, FnApiRunner, one worker), alternately with everything on (the defaults: licence
detection, SPDX headers, the documents' language ID and Gopher/C4 rules) and off
(``--licenses off --no-nl-filter``), ``--repeats`` times each, interleaved so machine noise
hits both. Reports each wall time, the best of each, their ratio, and the seconds the runner
charged to the stages involved (``Licenses``; ``Filters``, which holds the documents' rules
with the code quality rules, decontamination and PII; ``WriteFiles``: the per-file provenance
records, written in both). Writes bench-data/results-provenance.json.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_build import input_mb, run_build  # noqa: E402

OFF = ("--licenses", "off", "--no-nl-filter")


def stage(result: dict, *names: str) -> float:
    return round(sum(v for k, v in result.get("stage_seconds", {}).items()
                     if any(n in k for n in names)), 2)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="bench-data")
    ap.add_argument("--repos", type=int, default=40)
    ap.add_argument("--max-files-per-repo", type=int, default=400)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    mb = input_mb(args.repos, args.max_files_per_repo)
    runs = {"on": [], "off": []}
    for i in range(args.repeats):
        for name, extra in (("on", ()), ("off", OFF)):
            out = os.path.join(args.data, "provenance", f"{name}-{i}")
            r = run_build(out, args.repos, args.max_files_per_repo, 1, extra=extra)
            r["stages_of_interest"] = {"Licenses": stage(r, "Licenses"),
                                       "Filters": stage(r, "Filters"),
                                       "WriteFiles": stage(r, "WriteFiles")}
            runs[name].append(r)
            print(name, i, r["wall_s"], "s", r.get("failed", ""), r["stages_of_interest"],
                  flush=True)
    best = {k: min(r["wall_s"] for r in v) for k, v in runs.items()}
    result = {"input_mb": round(mb, 2), "repos": args.repos, "runs": runs,
              "best_wall_s": best, "on_over_off": round(best["on"] / best["off"], 3),
              "throughput_drop": f"{1 - best['off'] / best['on']:.1%}",
              "MB_per_s": {k: round(mb / v, 3) for k, v in best.items()}}
    with open(os.path.join(args.data, "results-provenance.json"), "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=2))


if __name__ == "__main__":
    main()
