"""Byte-identical outputs across a refactor: two builds, every output file and its SHA-256.

    .venv/bin/python benchmarks/same_outputs.py build DIR     # both builds into DIR/{embedded,mixed}
    .venv/bin/python benchmarks/same_outputs.py compare A B   # same files, same bytes?
    .venv/bin/python benchmarks/same_outputs.py time BEFORE_PKG [N [AFTER_PKG]]  # build time

``time``: the embedded build at 40 repositories (300 files each, 2 workers), N times (3) with
the code of BEFORE_PKG (a folder holding an older checkout's ``fimpack`` package and a
``sitecustomize.py`` that drops the editable install from ``sys.meta_path``) and with this
checkout (or AFTER_PKG, made the same way), alternately, so both see the same load; the
median wall seconds of each, and their ratio.

``embedded``: 20 repositories of the embedded corpus (120 files each).
``mixed``: the 16 real packages of ``../shared/tools/fetch-real-packages`` (npm, crates, Go,
Maven, PyPI: licences of every kind) plus a ``docs.jsonl`` of natural-language documents
made from their READMEs, with e-mail addresses, IP addresses and keys in them (PII), and
``--licenses permissive`` so the licence policy drops some. The manifest's timings and
paths differ between runs, so ``manifest.json`` is compared without its ``timing`` and
``input``, its ``config`` in the flat form builds recorded before 2026-12-05; every other
file byte for byte.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

FIMPACK = str(Path(sys.executable).parent / "fimpack")
REAL = Path(os.environ.get("REAL_PACKAGES", "/work/real-packages"))
COMMON = ["--vocab-size", "2048", "--tokenizer-sample-chars", "2000000", "--seq-len", "1024",
          "--workers", "1", "--val-fraction", "0.1", "--seed", "3"]
PII = ["Write to maintainer.name@example-corp.com or ops@internal.example.org for access.",
       "The staging host is 172.16.254.3 and the proxy 10.20.30.40 on port 8080.",
       "export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
       "token: ghp_1234567890abcdefghijklmnopqrstuvwxyzAB"]


# One fixed place for the mixed input: files record where they were read (``origin``), so
# builds compare only when they read the same path. Made once, then reused.
MIXED_INPUT = Path(os.environ.get("SAME_OUTPUTS_INPUT", "/tmp/fimpack-same-outputs-input"))


def mixed_input(dest: Path = MIXED_INPUT) -> Path:
    """The real packages and a docs.jsonl of their READMEs with PII lines mixed in."""
    if (dest / "docs.jsonl").exists():
        return dest
    tmp = dest.with_name(dest.name + f".tmp{os.getpid()}")
    tmp.mkdir(parents=True)
    dest, final = tmp, dest
    docs = []
    for entry in sorted(REAL.iterdir()):
        if entry.name.endswith(".tsv"):
            continue
        target = dest / entry.name
        if entry.is_dir():
            shutil.copytree(entry, target, symlinks=True)
            for readme in sorted(entry.rglob("README*"))[:1]:
                text = readme.read_text(errors="replace")
                lines = text.splitlines()
                at = len(lines) // 2
                lines[at:at] = PII[len(docs) % len(PII):] + PII[:len(docs) % len(PII)]
                docs.append({"id": f"{entry.name}-readme", "text": "\n".join(lines)})
        else:
            shutil.copy(entry, target)
    with open(dest / "docs.jsonl", "w") as fh:
        for d in docs:
            fh.write(json.dumps(d) + "\n")
    try:
        dest.rename(final)
    except OSError:  # another run made it first
        shutil.rmtree(dest)
    return final


def build(where: Path) -> None:
    where.mkdir(parents=True, exist_ok=True)
    runs = {"embedded": ["--max-repos", "20", "--max-files-per-repo", "120"],
            "mixed": ["--input", str(mixed_input()),
                      "--licenses", "permissive"]}
    for name, args in runs.items():
        cmd = [FIMPACK, "build", "--out", str(where / name), *COMMON, *args]
        print(" ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
    for name in runs:
        for digest, path in hashes(where / name):
            print(f"{digest[:16]}  {name}/{path}")


# The stage configs nested in BuildConfig on 2026-12-05 (issue 23); a manifest's config is
# compared in the flat form older builds recorded, so the values are still checked.
NESTED = {"licenses": {"policy": "licenses"}, "filters": {}, "pack": {}, "mix": {},
          "tokenizer": {"model": "tokenizer", "sample_docs": "tokenizer_sample_docs",
                        "sample_chars": "tokenizer_sample_chars"}}


def flat_config(config: dict) -> dict:
    flat = dict(config)
    for group, renames in NESTED.items():
        if isinstance(flat.get(group), dict):
            for key, value in flat.pop(group).items():
                flat[renames.get(key, key)] = value
    return flat


def hashes(out: Path) -> list[tuple[str, str]]:
    """(sha256, relative path) of every output file, manifest.json without run details."""
    found = []
    for p in sorted(out.rglob("*")):
        if not p.is_file() or ".build" in p.parts:
            continue
        data = p.read_bytes()
        if p.name == "manifest.json":
            m = json.loads(data)
            for k in ("timing", "input", "out", "created"):
                m.pop(k, None)
            m["config"] = flat_config(m.get("config", {}))
            m["config"].pop("out", None)
            m["config"].pop("input", None)
            data = json.dumps(m, sort_keys=True).encode()
        found.append((hashlib.sha256(data).hexdigest(), p.relative_to(out).as_posix()))
    return found


def compare(a: Path, b: Path) -> int:
    bad = 0
    for name in ("embedded", "mixed"):
        ha, hb = dict((p, h) for h, p in hashes(a / name)), dict((p, h) for h, p in hashes(b / name))
        for path in sorted(set(ha) | set(hb)):
            if ha.get(path) != hb.get(path):
                bad += 1
                print(f"DIFFERS {name}/{path}: {ha.get(path, '-')[:16]} vs {hb.get(path, '-')[:16]}")
        print(f"{name}: {len(ha)} files, {sum(ha.get(p) == hb.get(p) for p in ha)} identical")
    return 1 if bad else 0


def time_builds(before_pkg: str, n: int = 3, after_pkg: str = "") -> None:
    import statistics
    import tempfile
    import time

    args = ["--max-repos", "40", "--max-files-per-repo", "300", "--workers", "2",
            "--vocab-size", "8192", "--seq-len", "2048", "--val-fraction", "0.05"]
    seconds: dict[str, list[float]] = {"before": [], "after": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(n):
            for name, pythonpath in (("before", before_pkg), ("after", after_pkg)):
                env = dict(os.environ, PYTHONPATH=pythonpath)
                started = time.perf_counter()
                subprocess.run([FIMPACK, "build", "--out", f"{tmp}/{name}", *args], env=env,
                               check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               cwd=tmp)
                seconds[name].append(time.perf_counter() - started)
                print(f"run {i} {name}: {seconds[name][-1]:.1f} s  (load {os.getloadavg()[0]:.2f})",
                      flush=True)
    before, after = (statistics.median(seconds[k]) for k in ("before", "after"))
    print(f"median before {before:.1f} s, after {after:.1f} s: after/before {after / before:.3f}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["build"]:
        build(Path(sys.argv[2]))
    elif sys.argv[1:2] == ["time"]:
        time_builds(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 3,
                    sys.argv[4] if len(sys.argv) > 4 else "")
    elif sys.argv[1:2] == ["compare"]:
        sys.exit(compare(Path(sys.argv[2]), Path(sys.argv[3])))
    else:
        sys.exit(__doc__)
