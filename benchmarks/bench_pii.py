"""PII redaction: precision and recall per kind on a labelled sample of real code.

    python benchmarks/bench_pii.py                       # fimpack's detector (dedup/pii.py)
    python benchmarks/bench_pii.py --module OLD_pii.py   # another version of the module
    python benchmarks/bench_pii.py --detect-secrets PY   # + detect-secrets 1.5.0 on the key
                                                         #   rows, run by interpreter PY
    python benchmarks/bench_pii.py --errors              # list the misses and false hits
    python benchmarks/bench_pii.py --build OUT --input DIR   # what a build redacted, by kind,
                                                         #   labelled from the samples

The sample (``benchmarks/data/pii_sample.jsonl``) is lines (a whole PEM block for private
keys) taken from real repositories of five languages: the pinned real packages of
``/work/shared/tools/fetch-real-packages`` (npm, crates, Go, Maven, PyPI), the Go standard
library (with the validators' tests of ``net/mail``, ``net/netip``, ``net/url``), Go modules
(golang.org/x, google.golang.org/api, cloud.google.com/go, Beam, moby, OpenTelemetry) and PyPI
wheels. Each row is one candidate VALUE in its TEXT with a label written by hand:
``pii`` (a person's or an organisation's mailbox; a public address of a specific host; a
private key or a credential) or ``benign`` with its category (reserved example domains, URL
user-info, package versions, section numbers and OIDs, documentation and special-purpose IP
ranges, placeholders like 1.2.3.4, public DNS resolvers, test fixtures of validators, crypto
test vectors, ...). Candidates came from fimpack's earlier detector, a broad regex and
detect-secrets' scan, so the sample holds both what a detector finds and what it should not.

``benchmarks/data/pii_heldout.jsonl`` (``--sample``) is a second sample drawn the same way
from other files of those trees *after* the rules were written: candidates from the earlier
and the current detector, labelled by the same policy (one change made while labelling it:
cloud service accounts are robots, not mailboxes, so not PII). Its numbers say what the
rules do on code they were not written on; the rules added after its first run (service
accounts, module paths, ``...@email.com``, ``xxx@``) are in BENCHMARKS.md with both runs.

A row is detected when the detector returns a span of the row's kind that overlaps the
value's first occurrence in the text. Precision = detected pii / all detected, recall =
detected pii / all pii.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import subprocess
import sys
from collections import Counter, defaultdict

SAMPLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "pii_sample.jsonl")
KINDS = ("email", "ip", "key")

# detect-secrets' plugins on one line at a time (its scan_line), in its own interpreter so
# it need not be a dependency of fimpack: reads texts as JSON lines, prints 0/1 per text.
DETECT_SECRETS = r"""
import json, sys
from detect_secrets.core.scan import scan_line
from detect_secrets.settings import default_settings
with default_settings():
    for raw in sys.stdin:
        text = json.loads(raw)
        hit = any(True for line in text.splitlines() for _ in scan_line(line))
        print(int(hit), flush=True)
"""


def load_module(path: str | None):
    if path is None:
        from fimpack.dedup import pii
        return pii
    spec = importlib.util.spec_from_file_location("pii_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_sample(path: str = SAMPLE) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def detected(find_pii, row: dict) -> bool:
    start = row["text"].index(row["value"])
    end = start + len(row["value"])
    return any(kind == row["kind"] and s < end and start < e
               for s, e, kind in find_pii(row["text"], row["source"].split(": ", 1)[-1]))


TEST_PATH = re.compile(r"(^|/)(tests?|testdata|testing|__tests__|spec)/|(^|/)test_[^/]*$|"
                       r"_test\.\w+$|\.(test|spec)\.\w+$|Test\.java$")


def in_test_file(row: dict) -> bool:
    return bool(TEST_PATH.search(row["source"].split(": ", 1)[-1]))


def quoted(row: dict) -> bool:
    """The value sits inside a string literal of its line (an odd number of quotes before)."""
    before = row["text"][:row["text"].index(row["value"])]
    return any(before.count(q) % 2 for q in "\"'`")


def score(rows: list[dict], hits: list[bool]) -> dict:
    """{kind: {tp, fp, fn, tn, precision, recall}}."""
    out = {}
    for kind in KINDS:
        c = Counter()
        for row, hit in zip(rows, hits):
            if row["kind"] == kind:
                c[("tp" if hit else "fn") if row["label"] == "pii" else ("fp" if hit else "tn")] += 1
        found = c["tp"] + c["fp"]
        out[kind] = dict(c, precision=c["tp"] / found if found else float("nan"),
                         recall=c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else
                         float("nan"))
    return out


def detect_secrets_hits(python: str, texts: list[str]) -> list[bool]:
    run = subprocess.run([python, "-c", DETECT_SECRETS], input="\n".join(
        json.dumps(t) for t in texts) + "\n", capture_output=True, text=True, check=True)
    return [line == "1" for line in run.stdout.split()]


def table(name: str, scores: dict, kinds=KINDS) -> str:
    lines = []
    for kind in kinds:
        s = scores[kind]
        lines.append(f"| {name} | {kind} | {s.get('tp', 0)} | {s.get('fp', 0)} | "
                     f"{s.get('fn', 0)} | {s['precision']:.3f} | {s['recall']:.3f} |")
    return "\n".join(lines)


def build_report(args, module) -> int:
    """Every span the detector finds in the files a build kept, by kind, each labelled by the
    labelled samples' row for the same value in the same file (pii / benign / unlabelled)."""
    from fimpack.pipelines import outputs
    from fimpack.config import Limits
    from fimpack.pipelines.ingest import discover, read_source
    from fimpack.records import SourceFile

    kept = {(r["repo"], r["path"]) for r in outputs.read_records(args.build, "files").to_pylist()}
    labels = {}
    for path in (SAMPLE, os.path.join(os.path.dirname(SAMPLE), "pii_heldout.jsonl")):
        for row in load_sample(path):
            labels.setdefault((row["kind"], row["value"].lower(), row["source"].split(": ", 1)[-1]
                               .split("/", 1)[-1]), row["label"])
    counts = Counter()
    unlabelled = []
    for src in discover(args.input):
        for f in read_source(src, Limits()):
            if not isinstance(f, SourceFile) or (f.repo, f.path) not in kept:
                continue
            for s, e, kind in module.find_pii(f.content):
                value = f.content[s:e]
                label = next((labels[k] for k in ((kind, value.lower(), f.path),
                              (kind, value.lower(), f"{f.repo}/{f.path}".split("/", 1)[-1]))
                              if k in labels), None)
                if label is None:
                    label = next((lab for (k, v, _), lab in labels.items()
                                  if k == kind and v == value.lower()), "unlabelled")
                counts[(kind, label)] += 1
                if label == "unlabelled":
                    unlabelled.append((kind, f.repo, f.path, value))
    print("| kind | redactions | labelled pii | labelled benign | unlabelled | precision |")
    print("|---|---|---|---|---|---|")
    for kind in KINDS:
        tp, fp, un = counts[(kind, "pii")], counts[(kind, "benign")], counts[(kind, "unlabelled")]
        print(f"| {kind} | {tp + fp + un} | {tp} | {fp} | {un} | "
              f"{tp / (tp + fp) if tp + fp else float('nan'):.3f} |")
    for u in unlabelled[:20]:
        print("unlabelled:", *u)
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sample", default=SAMPLE)
    ap.add_argument("--module", help="a pii.py to measure instead of fimpack's")
    ap.add_argument("--name", default=None, help="the detector's name in the table")
    ap.add_argument("--detect-secrets", metavar="PYTHON",
                    help="an interpreter with detect-secrets installed: also score it on keys")
    ap.add_argument("--errors", action="store_true", help="print misses and false hits")
    ap.add_argument("--build", metavar="OUT", help="a build's output: count what the detector "
                    "finds in its kept files (read again from --input), labelled by the samples")
    ap.add_argument("--input", metavar="DIR", help="the build's --input (with --build)")
    ap.add_argument("--exempt-test-strings", action="store_true",
                    help="the experiment: also skip quoted values in test files")
    args = ap.parse_args(argv)
    module = load_module(args.module)
    if args.build:
        return build_report(args, module)
    rows = load_sample(args.sample)
    find = module.find_pii
    try:  # the current detector takes the file's path; older ones take the text alone
        find("", "")
        finder = find
    except TypeError:
        finder = lambda text, path="": find(text)  # noqa: E731
    hits = [detected(finder, row) for row in rows]
    if args.exempt_test_strings:
        hits = [hit and not (in_test_file(row) and quoted(row)) for row, hit in zip(rows, hits)]
    print(f"{len(rows)} rows: " + ", ".join(
        f"{k} {sum(r['kind'] == k and r['label'] == 'pii' for r in rows)} pii / "
        f"{sum(r['kind'] == k and r['label'] != 'pii' for r in rows)} benign" for k in KINDS))
    print("| detector | kind | true hits | false hits | misses | precision | recall |")
    print("|---|---|---|---|---|---|---|")
    print(table(args.name or ("fimpack" if args.module is None else args.module),
                score(rows, hits)))
    if args.detect_secrets:
        keys = [r for r in rows if r["kind"] == "key"]
        ds = detect_secrets_hits(args.detect_secrets, [r["text"] for r in keys])
        print(table("detect-secrets 1.5.0", score(keys, ds), kinds=("key",)))
    if args.errors:
        by = defaultdict(list)
        for row, hit in zip(rows, hits):
            if hit != (row["label"] == "pii"):
                by[("false hit" if hit else "miss", row["kind"], row["category"])].append(row)
        for (what, kind, cat), rs in sorted(by.items()):
            print(f"\n{what} {kind} {cat}: {len(rs)}")
            for r in rs[:12]:
                print(f"  {r['value'][:60]!r:64} {r['text'][:90]!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
