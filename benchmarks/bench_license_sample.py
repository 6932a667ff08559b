"""Repository licences on real packages from five registries: fimpack vs ScanCode toolkit.

    benchmarks/fetch_license_sample.sh /tmp/license-sample          # the packages (once)
    .venv/bin/python benchmarks/bench_license_sample.py --sample /tmp/license-sample \\
        [--scancode /path/to/venv/bin/scancode] [--json OUT.json]

Truth: ``benchmarks/license_sample.tsv``, what each package declares (package.json, Cargo.toml,
PKG-INFO, the pom's ``<licenses>``; Go: the licence text as pkg.go.dev reads it) and where.

fimpack: every file of a package read from disk, as a build reads it; licence files and
package manifests (``is_license_source``) go to ``repo_license_info``, every code file (a
language by name) through ``file_license_source`` (SPDX identifier or header notice). The
repository's answer is ``repo_license_info``'s expression; the answer of the issue's measure
(what most of its code files carry, header else repository, column "files") and the licence
files' own answer with every manifest ignored (column "text") are reported too.

ScanCode (``scancode -l --package --classify -n 1`` over the whole sample in one run, so its
start-up and licence index load are paid once): a repository's answer is what ScanCode
declares for it, as its own summary does: the ``declared_license_expression_spdx`` of a
package manifest at the repository's top level (or under ``META-INF/maven/``; the package
named like the repository first, as a parent pom ships beside a Maven package's own), else
the detections of its top-level legal files (``is_legal``) joined with AND.

Agreement: the answer is equivalent to the truth as an SPDX expression (license-expression's
``is_equivalent``: ``MIT OR Apache-2.0`` == ``Apache-2.0 OR MIT``, but OR is not AND).
Speed: files (every regular file of the sample) per second of wall time, one process each,
measured in the same run.
"""
from __future__ import annotations

import argparse
import collections
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fimpack.dedup.licenses import (equivalent, file_license_source, is_license_source,
                                    repo_license_info)
from fimpack.languages import detect_language

HERE = Path(__file__).resolve().parent
DATA_LANGUAGES = {"markdown", "restructuredtext", "json", "yaml", "toml", "xml", "ini", "html",
                  "css"}


def truth_table(path: Path = HERE / "license_sample.tsv") -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def package_files(folder: str) -> list[str]:
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if d not in (".git", ".hg", ".svn"))
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            if os.path.isfile(full) and not os.path.islink(full):
                out.append(os.path.relpath(full, folder).replace(os.sep, "/"))
    return out


def fimpack_repo(folder: str) -> tuple[str | None, str | None, str | None, int, str | None]:
    """(repository expression, its source, majority of code files, files read, the licence
    files' own answer without any manifest)."""
    sources, headers = [], []
    files = package_files(folder)
    for rel in files:
        license_source = is_license_source(rel)
        language = detect_language(rel)
        if not license_source and language is None:
            continue  # the build drops it unread (unsupported_language)
        with open(os.path.join(folder, rel), "rb") as f:
            data = f.read(1_000_001)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
        if license_source:
            sources.append((rel, text))
        if language is not None and language not in DATA_LANGUAGES:
            headers.append(file_license_source(text))
    info = repo_license_info(sources)
    votes = collections.Counter(h or info.expression for h in headers)
    majority = votes.most_common(1)[0][0] if votes else info.expression
    return info.expression, info.source, majority, len(files), info.from_files


def _link(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another file system
        shutil.copy2(src, dst)


def scancode_run(scancode: str, sample: str, repos: list[str],
                 keep: str | None = None) -> tuple[dict, float, int]:
    """ScanCode over the repositories of SAMPLE in one process: ({repo: expression}, wall
    seconds, files scanned)."""
    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, "sample")
        os.mkdir(root)
        for repo in repos:  # only the table's repositories, under one root (hard links:
            # ScanCode does not follow symbolic links)
            shutil.copytree(os.path.join(sample, repo), os.path.join(root, repo),
                            copy_function=_link)
        out = os.path.join(tmp, "scan.json")
        cmd = [scancode, "-l", "--package", "--classify", "-n", "1", "--quiet",
               "--json", out, root]
        start = time.perf_counter()
        subprocess.run(cmd, check=True)
        seconds = time.perf_counter() - start
        if keep:
            shutil.copy(out, keep)
        with open(out, encoding="utf-8") as f:
            scan = json.load(f)
    answers: dict[str, str | None] = {}
    files_scanned = sum(1 for f in scan["files"] if f.get("type") == "file")
    top = {}  # repo -> top-level legal files' expressions
    for f in scan["files"]:
        parts = f["path"].split("/")
        if len(parts) == 3 and f.get("type") == "file" and f.get("is_legal"):
            expr = f.get("detected_license_expression_spdx")
            if expr:
                top.setdefault(parts[1], []).append(expr)
    candidates: dict[str, list] = {}
    for p in scan.get("packages", []):
        for datafile in p.get("datafile_paths") or ():
            parts = datafile.split("/")
            at_top = len(parts) == 3 or (len(parts) > 3 and parts[2] == "META-INF")
            expr = p.get("declared_license_expression_spdx")
            if at_top and expr:
                # the package named like the repository first (a parent pom ships beside it)
                own = bool(p.get("name")) and f"-{p['name']}-" in f"{parts[1]}-"
                candidates.setdefault(parts[1], []).append((not own, datafile, expr))
    answers.update({repo: sorted(c)[0][2] for repo, c in candidates.items()})
    for repo in repos:
        if repo not in answers and repo in top:
            answers[repo] = " AND ".join(dict.fromkeys(top[repo]))
    return answers, seconds, files_scanned


def agrees(truth: str, got: str | None) -> bool:
    return bool(got) and equivalent(truth, got)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sample", required=True, help="folder from fetch_license_sample.sh")
    ap.add_argument("--scancode", help="the scancode executable (a throwaway venv's)")
    ap.add_argument("--json", help="write the per-repository answers here")
    ap.add_argument("--scan-json", help="keep ScanCode's own JSON output here")
    args = ap.parse_args(argv)
    table = [r for r in truth_table() if os.path.isdir(os.path.join(args.sample,
                                                                    r["repository"]))]
    missing = len(truth_table()) - len(table)
    repos = [r["repository"] for r in table]
    start = time.perf_counter()
    fim = {repo: fimpack_repo(os.path.join(args.sample, repo)) for repo in repos}
    fim_seconds = time.perf_counter() - start
    fim_files = sum(v[3] for v in fim.values())
    sc, sc_seconds, sc_files = ({}, None, 0)
    if args.scancode:
        sc, sc_seconds, sc_files = scancode_run(args.scancode, args.sample, repos,
                                                args.scan_json)
    rows, by_registry = [], collections.defaultdict(lambda: collections.Counter())
    for r in table:
        repo, want = r["repository"], r["declared"]
        got, source, majority, _, text_only = fim[repo]
        ok = {"fimpack": agrees(want, got), "fimpack_files": agrees(want, majority),
              "fimpack_text": agrees(want, text_only)}
        if args.scancode:
            ok["scancode"] = agrees(want, sc.get(repo))
        reg = by_registry[r["registry"]]
        reg["n"] += 1
        for k, v in ok.items():
            reg[k] += v
        rows.append({"repository": repo, "registry": r["registry"], "declared": want,
                     "fimpack": got, "fimpack_source": source, "fimpack_files": majority,
                     "fimpack_text": text_only,
                     "scancode": sc.get(repo) if args.scancode else None, **{
                         f"ok_{k}": v for k, v in ok.items()}})
    n = len(rows)
    print(f"{n} repositories from {len(by_registry)} registries ({missing} of the table not "
          f"fetched)")
    head = f"{'registry':10} {'n':>3} {'fimpack':>8} {'(files)':>8} {'(text)':>7}" + (
        f" {'scancode':>9}" if args.scancode else "")
    print(head)
    total = collections.Counter()
    for reg, c in sorted(by_registry.items()):
        total.update(c)
        print(f"{reg:10} {c['n']:>3} {c['fimpack']:>8} {c['fimpack_files']:>8} "
              f"{c['fimpack_text']:>7}"
              + (f" {c['scancode']:>9}" if args.scancode else ""))
    print(f"{'all':10} {n:>3} {total['fimpack'] / n:>8.1%} {total['fimpack_files'] / n:>8.1%} "
          f"{total['fimpack_text'] / n:>7.1%}"
          + (f" {total['scancode'] / n:>9.1%}" if args.scancode else ""))
    print(f"fimpack: {fim_files} files in {fim_seconds:.2f} s = {fim_files / fim_seconds:,.0f} "
          "files/s")
    if args.scancode:
        print(f"scancode: {sc_files} files in {sc_seconds:.1f} s = "
              f"{sc_files / sc_seconds:,.1f} files/s; fimpack is "
              f"{(fim_files / fim_seconds) / (sc_files / sc_seconds):,.0f}x faster")
    for row in rows:
        wrong = [k for k in ("fimpack", "fimpack_files", "fimpack_text", "scancode")
                 if row.get(f"ok_{k}") is False]
        if wrong:
            print(f"  {row['repository']}: declared {row['declared']}; fimpack {row['fimpack']}"
                  f" ({row['fimpack_source']}), files {row['fimpack_files']}, text "
                  f"{row['fimpack_text']}"
                  + (f"; scancode {row['scancode']}" if args.scancode else ""))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"rows": rows, "fimpack_seconds": fim_seconds, "fimpack_files": fim_files,
                       "scancode_seconds": sc_seconds, "scancode_files": sc_files}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
