"""What ingest makes of the source files on this machine that are not UTF-8.

    python benchmarks/bench_encodings.py [ROOT ...]   # default: Go module cache, Go's
                                                      # sources, the venv, /usr/lib/python3,
                                                      # /usr/share/doc, /usr/include

Every file of a language fimpack reads (by name), under 1 MB, without NUL bytes and not valid
UTF-8 goes through ingest's ``classify``: transcoded (by the encoding charset-normalizer
chose) or dropped (``invalid_utf8``: no confident answer). Prints the counts and three
examples of each outcome, so a wrong guess can be looked at.
"""
from __future__ import annotations

import argparse
import collections
import os
import sys

from fimpack.config import Limits
from fimpack.pipelines.ingest import classify
from fimpack.languages import detect_language
from fimpack.records import SourceFile

ROOTS = ["~/go/pkg/mod", "/usr/local/go/src", sys.prefix, "/usr/lib/python3",
         "/usr/share/doc", "/usr/include"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("roots", nargs="*", default=ROOTS)
    args = ap.parse_args(argv)
    limits, outcomes, examples, scanned = Limits(), collections.Counter(), {}, 0
    for root in args.roots:
        for folder, _, names in os.walk(os.path.expanduser(root)):
            for name in names:
                path = os.path.join(folder, name)
                if detect_language(name) is None or os.path.islink(path):
                    continue
                try:
                    if os.path.getsize(path) > limits.max_file_bytes:
                        continue
                    with open(path, "rb") as f:
                        data = f.read()
                except OSError:
                    continue
                scanned += 1
                if b"\x00" in data:
                    continue
                try:
                    data.decode("utf-8")
                    continue
                except UnicodeDecodeError:
                    pass
                got = classify("r", name, data, limits)
                key = f"transcoded from {got.encoding}" if isinstance(got, SourceFile) \
                    else got.reason
                outcomes[key] += 1
                examples.setdefault(key, []).append(path)
    print(f"{scanned} files read; not UTF-8 and no NUL: {sum(outcomes.values())}")
    for key, n in outcomes.most_common():
        print(f"  {key}: {n}  e.g. {', '.join(examples[key][:3])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
