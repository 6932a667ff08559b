"""The embedded default corpus: Python source already installed on this machine.

The standard library is one repository and every installed distribution another (named
``name-version``); their README/long descriptions and bundled docs are the natural-language
side. Real code nobody here wrote, no network. fimpack's own distribution is left out.
"""
from __future__ import annotations

import importlib.metadata
import os
import sys
import sysconfig

from fimpack.dedup.licenses import is_license_file
from fimpack.pipelines.ingest import RepoSource
from fimpack.languages import detect_language
from fimpack.records import NATURAL_LANGUAGE

SKIP_DIRS = {"__pycache__", "site-packages", "dist-packages", "idlelib", "turtledemo"}
NL_EXTENSIONS = (".md", ".rst", ".txt")
NL_SKIP_NAMES = ("license", "licence", "copying", "notice", "authors", "record",
                 "top_level", "entry_points", "requires", "sources", "dependency_links")


def stdlib_source() -> RepoSource:
    root = sysconfig.get_paths()["stdlib"]
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        for name in filenames:
            rel = os.path.relpath(os.path.join(dirpath, name), root).replace(os.sep, "/")
            if detect_language(rel) is not None or is_license_file(rel):
                files.append(rel)
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    return RepoSource(f"python-stdlib-{version}", "files", root, tuple(sorted(files)))


def _dist_sources(dist) -> tuple[RepoSource | None, RepoSource | None]:
    name = dist.metadata["Name"]
    repo = f"{name}-{dist.version}"
    root = str(dist.locate_file(""))
    code, docs, licenses = [], [], []
    for f in dist.files or ():
        rel = str(f).replace(os.sep, "/")
        if rel.startswith("..") or "__pycache__" in rel:
            continue  # scripts outside site-packages, bytecode
        lower = os.path.basename(rel).lower()
        if is_license_file(rel):
            licenses.append(rel)  # read for the repository's licence (dedup/licenses.py)
        elif ".dist-info/" in rel or ".egg-info/" in rel:
            if lower == "metadata" or (lower.endswith(NL_EXTENSIONS)
                                       and not lower.startswith(NL_SKIP_NAMES)):
                docs.append(rel)
        elif lower.endswith(NL_EXTENSIONS) and not lower.startswith(NL_SKIP_NAMES):
            docs.append(rel)
        elif detect_language(rel) is not None:
            code.append(rel)
    code_src = RepoSource(repo, "files", root, tuple(sorted(code + licenses))) if code else None
    docs_src = (RepoSource(f"{repo}-docs", "files", root, tuple(sorted(docs)),
                           NATURAL_LANGUAGE) if docs else None)
    return code_src, docs_src


def embedded_sources(max_repos: int = 0) -> list[RepoSource]:
    """The stdlib plus installed distributions, sorted by name; ``max_repos`` caps the code
    repositories (0 = all) so the demo stays small, keeping the docs of the chosen ones."""
    dists = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if not name or name.lower() == "fimpack" or name in dists:
            continue  # our own code is not corpus material; first on sys.path wins
        dists[name] = dist
    sources = [stdlib_source()]
    docs = []
    for name in sorted(dists, key=str.lower):
        code_src, docs_src = _dist_sources(dists[name])
        if code_src is None:
            continue
        if max_repos and len(sources) >= max_repos:
            break
        sources.append(code_src)
        if docs_src is not None:
            docs.append(docs_src)
    return sources + docs
