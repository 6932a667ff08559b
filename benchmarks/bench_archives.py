"""Reading real registry archives: how far from path order their members are stored, and how
long ``read_tar`` takes on each; with ``--before PKG`` the same with an older checkout's code
(a folder whose ``fimpack`` package is that checkout, put first on PYTHONPATH), and whether
both read the same files and drops.

    .venv/bin/python benchmarks/bench_archives.py --data bench-data/archives [--before PKG]
        [EXTRA.tar.gz ...]

Downloads, when missing, npm tarballs and crates (tar.gz both) into DATA; never committed.
Pass other archives (the sdists of ``fetch_build_corpus.sh``, its merged archive) as
arguments. A compressed stream seeks backward by decompressing again from its start, so a
reader that reads members out of the stored order pays for each backward step.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tarfile
import time
import urllib.request

ARCHIVES = {
    "rxjs-7.8.1.tgz": "https://registry.npmjs.org/rxjs/-/rxjs-7.8.1.tgz",
    "typescript-5.4.5.tgz": "https://registry.npmjs.org/typescript/-/typescript-5.4.5.tgz",
    "commander-12.1.0.tgz": "https://registry.npmjs.org/commander/-/commander-12.1.0.tgz",
    "tokio-1.38.0.crate": "https://static.crates.io/crates/tokio/tokio-1.38.0.crate",
    "anyhow-1.0.86.crate": "https://static.crates.io/crates/anyhow/anyhow-1.0.86.crate",
}


def fetch(data: str) -> list[str]:
    os.makedirs(data, exist_ok=True)
    paths = []
    for name, url in ARCHIVES.items():
        path = os.path.join(data, name)
        if not os.path.exists(path):
            urllib.request.urlretrieve(url, path + ".part")
            os.replace(path + ".part", path)
        paths.append(path)
    return paths


def measure(path: str) -> dict:
    """This process's fimpack reading PATH: seconds, items and a digest of them."""
    from fimpack.config import Limits
    from fimpack.pipelines.archives import read_tar
    from fimpack.pipelines.sources import RepoSource

    started = time.perf_counter()
    items = list(read_tar(RepoSource("r", "tar", path), Limits()))
    seconds = time.perf_counter() - started
    digest = hashlib.sha256("\n".join(sorted(map(repr, items))).encode()).hexdigest()
    return {"read_s": round(seconds, 3), "items": len(items), "sha256": digest}


def stored_order(path: str) -> dict:
    with tarfile.open(path) as tar:
        names = [m.name for m in tar if not m.isdir()]
    return {"members": len(names),
            "backward_steps": sum(1 for a, b in zip(names, names[1:]) if a > b)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="bench-data/archives")
    ap.add_argument("--before", default=None, metavar="PKG")
    ap.add_argument("extra", nargs="*", help="more tar archives to read")
    args = ap.parse_args()
    rows = []
    for path in fetch(args.data) + [os.path.abspath(p) for p in args.extra]:
        row = {"archive": os.path.basename(path), **stored_order(path), **measure(path)}
        if args.before:
            env = dict(os.environ, PYTHONPATH=args.before)
            done = subprocess.run([sys.executable, "-c", "import json, sys; sys.path.insert(0, "
                                   f"{os.path.dirname(os.path.abspath(__file__))!r}); "
                                   "from bench_archives import measure; "
                                   f"print(json.dumps(measure({path!r})))"],
                                  env=env, cwd="/", capture_output=True, text=True, check=True)
            before = json.loads(done.stdout.strip().splitlines()[-1])
            row.update(before_read_s=before["read_s"],
                       same_items=before["sha256"] == row["sha256"])
        rows.append(row)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
