"""Licence detectors side by side on the licence files of the distributions installed here.

    .venv/bin/python benchmarks/bench_licenses.py [--spdx-matcher]

Cases: every installed distribution that declares an SPDX licence (License-Expression, one
unambiguous OSI classifier, or an SPDX id in License) and ships licence files in its
``.dist-info`` (``tests/test_licenses.py``'s ``installed_cases``, the test's own cases).
Detectors on the same files, a distribution's answer from its files in path order:
fimpack's ``repo_license``; identify's ``license_id`` (when ``identify[license]`` is installed,
as ``make bench-licenses`` does); spdx-matcher's own ``analyse_license_text`` with
``--spdx-matcher`` (slow: seconds per file). Agreement: the detected licence is the declared
one or one of the terms of a declared OR/AND expression (``-only`` ignored).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_licenses import agrees, installed_cases  # noqa: E402

from fimpack.dedup.licenses import repo_license, spdx_texts  # noqa: E402


def fimpack_detector(texts):
    return repo_license(texts)[0]


def identify_detector(texts):
    import os
    import tempfile

    from identify.identify import license_id
    for _, text in sorted(texts):
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
            f.write(text)
        try:
            found = license_id(f.name)
        finally:
            os.unlink(f.name)
        if found:
            return found
    return None


def spdx_matcher_detector(texts):
    import spdx_matcher
    for _, text in sorted(texts):
        found, _ = spdx_matcher.analyse_license_text(text)
        ids = sorted(found.get("licenses", {}))
        if ids:
            return " AND ".join(ids)
    return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--spdx-matcher", action="store_true", help="also run spdx-matcher's own")
    args = ap.parse_args(argv)
    t = time.perf_counter()
    spdx_texts()
    loaded = time.perf_counter() - t
    cases = installed_cases()
    detectors = {"fimpack": fimpack_detector}
    try:
        import identify.identify  # noqa: F401
        import ukkonen  # noqa: F401
        detectors["identify"] = identify_detector
    except ImportError:
        print("identify[license] not installed: skipped")
    if args.spdx_matcher:
        detectors["spdx-matcher"] = spdx_matcher_detector
    print(f"{len(cases)} distributions declaring an SPDX licence, "
          f"{sum(len(x) for _, _, x in cases)} licence files; fimpack's SPDX texts loaded in "
          f"{loaded:.2f} s")
    for name, detect in detectors.items():
        t = time.perf_counter()
        got = [(dist, want, detect(texts)) for dist, want, texts in cases]
        seconds = time.perf_counter() - t
        bad = [g for g in got if not agrees(g[1], g[2])]
        print(f"\n{name}: {len(got) - len(bad)}/{len(got)} agree "
              f"({(len(got) - len(bad)) / len(got):.1%}), "
              f"{sum(g[2] is None for g in got)} undetected, {seconds:.1f} s")
        for dist, want, found in bad:
            print(f"    {dist}: declared {want}, detected {found}")
    print("\nnot SPDX (LicenseRef-*): fimpack's answer, which should be none unless the file "
          "holds an SPDX licence")
    for dist, want, texts in proprietary_cases():
        print(f"    {dist}: declared {want}, fimpack {repo_license(texts)[0]}")
    return 0


def proprietary_cases():
    """Installed distributions declaring a LicenseRef-* expression, with their licence files."""
    import importlib.metadata

    from fimpack.dedup.licenses import is_license_file
    out = {}
    for dist in importlib.metadata.distributions():
        want = dist.metadata.get("License-Expression") or ""
        if not want.startswith("LicenseRef-"):
            continue
        files = [f for f in dist.files or () if ".dist-info/" in str(f)
                 and is_license_file(str(f).replace("\\", "/"))]
        out.setdefault(dist.metadata["Name"], (want, [
            (str(f), f.locate().read_text(encoding="utf-8", errors="replace")) for f in files]))
    return sorted((name, want, texts) for name, (want, texts) in out.items())


if __name__ == "__main__":
    sys.exit(main())
