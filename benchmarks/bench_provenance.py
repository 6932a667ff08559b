"""What licences, document language / quality rules and provenance cost a build, side by side.

    .venv/bin/python benchmarks/bench_provenance.py --data bench-data [--repos 40] [--repeats 2]
        [--nl-share 0.2]

The same ``fimpack build`` of the embedded default corpus (``--max-repos``, 400 files a
repository, FnApiRunner, one worker), alternately with everything on (the defaults: licence
detection, SPDX headers, the documents' language ID and Gopher/C4 rules) and off
(``--licenses off --no-nl-filter``), ``--repeats`` times each, interleaved so machine noise
hits both. Reports each wall time, the best of each, their ratio, and the seconds the runner
charged to the stages involved (``Licenses``; ``Filters``, which holds the documents' rules
with the code quality rules, decontamination and PII; ``WriteRecords``: the per-file
provenance records, written in both, with the drops and dedup records since 2026-12-05, when
the tables' writers were merged; ``WriteFiles`` before). Writes bench-data/results-provenance.json.

The embedded corpus is 98% code by tokens, so the documents' rules barely show in it. With
``--nl-share S`` the input is instead a folder (``bench-data/provenance-input``, no file cap):
the embedded corpus's distributions copied as folders until documents make S of the input
bytes, and
one ``docs.jsonl`` of real documents: the venv's READMEs/METADATA/docs, the language
reference's pydoc topics, and the translated messages of Debian's gettext catalogs (1,500
characters each, as ``bench_nl.py`` makes them), so language ID and every rule run at the
paper's 80/20 mixture on text in many languages.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_build import input_mb, run_build  # noqa: E402
from bench_nl import catalog_documents, corpus_documents  # noqa: E402

OFF = ("--licenses", "off", "--no-nl-filter")


def stage(result: dict, *names: str) -> float:
    return round(sum(v for k, v in result.get("stage_seconds", {}).items()
                     if any(n in k for n in names)), 2)


def documents() -> list[str]:
    from pydoc_data.topics import topics

    from fimpack.dedup.nl import LanguageID

    known = set(LanguageID(0.5, 2000).model.labels)
    docs = [text for _, text in corpus_documents()]
    docs += [topics[k] for k in sorted(topics)]
    docs += [text for _, text in catalog_documents(Path("/usr/share/locale"), known, 12, 1500)]
    return docs


def mixed_input(root: str, nl_share: float) -> float:
    """ROOT: code repositories as folders + docs.jsonl with NL_SHARE of the bytes; its MB."""
    import shutil

    from fimpack.pipelines.embedded import embedded_sources

    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root)
    docs = documents()
    nl_bytes = sum(len(d.encode("utf-8")) for d in docs)
    with open(os.path.join(root, "docs.jsonl"), "w") as f:
        for i, d in enumerate(docs):
            f.write(json.dumps({"id": f"doc{i}", "text": d}) + "\n")
    code_bytes, want = 0, nl_bytes * (1 - nl_share) / nl_share
    for src in embedded_sources():  # distributions; the stdlib alone would be 34 MB
        if src.source != "code" or src.name.startswith("python-stdlib") or code_bytes >= want:
            continue
        for rel in src.files:
            dest = os.path.join(root, src.name, rel)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            shutil.copyfile(os.path.join(src.location, rel), dest)
            code_bytes += os.path.getsize(dest)
    print(f"input: {code_bytes / 1e6:.1f} MB code, {nl_bytes / 1e6:.1f} MB documents "
          f"({len(docs)})", flush=True)
    return (code_bytes + nl_bytes) / 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="bench-data")
    ap.add_argument("--repos", type=int, default=40)
    ap.add_argument("--max-files-per-repo", type=int, default=400)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--nl-share", type=float, default=0.0,
                    help="build a code + documents folder with this share of documents")
    args = ap.parse_args()
    source: tuple[str, ...] = ()
    if args.nl_share:
        root = os.path.join(args.data, "provenance-input")
        mb = mixed_input(root, args.nl_share)
        source = ("--input", root)
    else:
        mb = input_mb(args.repos, args.max_files_per_repo)
    runs = {"on": [], "off": []}
    for i in range(args.repeats):
        for name, extra in (("on", source), ("off", source + OFF)):
            out = os.path.join(args.data, "provenance", f"{name}-{i}")
            r = run_build(out, args.repos, 0 if args.nl_share else args.max_files_per_repo, 1,
                          extra=extra)
            r["stages_of_interest"] = {"Licenses": stage(r, "Licenses"),
                                       "Filters": stage(r, "Filters"),
                                       "WriteRecords": stage(r, "WriteRecords"),
                                       "all stages": stage(r, "")}
            runs[name].append(r)
            print(name, i, r["wall_s"], "s", r.get("failed", ""), r["stages_of_interest"],
                  flush=True)
    best = {k: min(r["wall_s"] for r in v) for k, v in runs.items()}
    result = {"input_mb": round(mb, 2), "repos": args.repos, "nl_share": args.nl_share,
              "runs": runs,
              "best_wall_s": best, "on_over_off": round(best["on"] / best["off"], 3),
              "throughput_drop": f"{1 - best['off'] / best['on']:.1%}",
              "MB_per_s": {k: round(mb / v, 3) for k, v in best.items()}}
    name = "results-provenance" + (f"-nl{args.nl_share}" if args.nl_share else "") + ".json"
    with open(os.path.join(args.data, name), "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=2))


if __name__ == "__main__":
    main()
