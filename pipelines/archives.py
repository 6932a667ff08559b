"""Archives (tar, zip) and row files (JSONL, Parquet) as repositories: members are read into
memory with a size bound, so ``../`` or absolute member paths cannot escape (they are dropped
as ``unsafe_path``), and a damaged archive keeps the members read before the damage."""
from __future__ import annotations

import json
import stat
from dataclasses import replace
import tarfile
import zipfile
from typing import Iterator

from fimpack.dedup.licenses import is_license_source
from fimpack.config import Limits
from fimpack.languages import detect_language
from fimpack.pipelines.sources import (CONTENT_COLUMNS, PATH_COLUMNS, REPO_COLUMNS, RepoSource,
                                       _capped, _read_bounded, classify, open_binary)
from fimpack.records import CODE, NATURAL_LANGUAGE, Drop, SourceFile

# A repository row (The Stack v3's train split: one repository per row): its name, a list of
# files (path + content), optional metadata.
FILES_COLUMNS = ("files",)
REPO_ROW_NAMES = REPO_COLUMNS + ("name", "full_name")
META_COLUMNS = {
    "stars": ("stars", "star_count", "stars_count", "stargazers_count", "max_stars_count"),
    "forks": ("forks", "fork_count", "forks_count", "max_forks_count"),
    "created_at": ("created_at", "repo_created_at", "created"),
    "license": ("license", "spdx_license", "license_type", "gha_license_id"),
}

def safe_member_path(name: str) -> str | None:
    """The normalised relative path of an archive member, or None when it would escape."""
    name = name.replace("\\", "/")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return None
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        return None
    return "/".join(parts)


def _strip_common_root(paths: list[str]) -> str:
    """GitHub-style archives wrap everything in one top folder (repo-sha/); drop it."""
    tops = {p.split("/", 1)[0] for p in paths}
    if len(tops) == 1 and all("/" in p for p in paths):
        return tops.pop() + "/"
    return ""


def _placed(src: RepoSource, members: list, name_of) -> Iterator[tuple]:
    """(index, member, repository path, None) for each member in path order, the archive's
    single top folder stripped; (index, member, None, Drop) for one whose path escapes."""
    safe = {name_of(m): safe_member_path(name_of(m)) for m in members}
    root = _strip_common_root([p for p in safe.values() if p])
    for i, m in enumerate(sorted(members, key=lambda m: safe[name_of(m)] or name_of(m))):
        rel = safe[name_of(m)]
        if rel is None:
            yield i, m, None, Drop(src.name, name_of(m), "unsafe_path")
        else:
            yield i, m, (rel[len(root):] if root and rel.startswith(root) else rel), None


def _before_reading(src: RepoSource, rel: str, index: int, size: int,
                    limits: Limits) -> Drop | None:
    """The drop a member gets without being read: over the file cap, no language, too large.
    A licence file is always read (for the Licenses stage), whatever the cap."""
    license_file = is_license_source(rel)
    if limits.max_files_per_repo and index >= limits.max_files_per_repo and not license_file:
        return Drop(src.name, rel, "over_repo_file_cap")
    if detect_language(rel) is None and not license_file:
        return Drop(src.name, rel, "unsupported_language")
    if size > limits.max_file_bytes:
        return Drop(src.name, rel, "too_large", f"{size} bytes")
    return None


def read_tar(src: RepoSource, limits: Limits) -> Iterator[SourceFile | Drop]:
    try:
        with open_binary(src.location) as raw, tarfile.open(fileobj=raw, mode="r:*") as tar:
            members = [m for m in tar if not m.isdir()]
            # Numbered in path order (the file cap), read in the archive's own order: a
            # compressed stream seeks back by decompressing from the start, so members read
            # out of order cost the archive's size each (a 17 MB tar.gz of two folders not in
            # path order: 200 s, read in its own order 0.9 s)
            placed = sorted(_placed(src, members, lambda m: m.name), key=lambda p: p[1].offset)
            for i, m, rel, drop in placed:
                if drop is None and (m.issym() or m.islnk()):
                    drop = Drop(src.name, rel, "symlink")
                elif drop is None and not m.isfile():
                    drop = Drop(src.name, rel, "special_file")
                drop = drop or _before_reading(src, rel, i, m.size, limits)
                if drop is not None:
                    yield drop
                    continue
                data = _read_bounded(tar.extractfile(m), limits.max_file_bytes)
                yield classify(src.name, rel, data, limits, origin=src.location)
    except (tarfile.TarError, EOFError, OSError, ValueError) as err:
        # Members read before the damage are kept; the archive itself is recorded once.
        yield Drop(src.name, "", "corrupt_archive", str(err)[:120])


def read_zip(src: RepoSource, limits: Limits) -> Iterator[SourceFile | Drop]:
    try:
        with open_binary(src.location) as raw, zipfile.ZipFile(raw) as zf:
            infos = [i for i in zf.infolist() if not i.is_dir()]
            for n, info, rel, drop in _placed(src, infos, lambda i: i.filename):
                if drop is None and stat.S_ISLNK(info.external_attr >> 16):
                    drop = Drop(src.name, rel, "symlink")
                drop = drop or _before_reading(src, rel, n, info.file_size, limits)
                if drop is not None:
                    yield drop
                    continue
                try:
                    with zf.open(info) as f:  # bounded read: a bomb stops at the limit
                        data = _read_bounded(f, limits.max_file_bytes)
                except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as err:
                    yield Drop(src.name, rel, "corrupt_member", str(err)[:120])
                    continue
                yield classify(src.name, rel, data, limits, origin=src.location)
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        yield Drop(src.name, "", "corrupt_archive", str(err)[:120])


def iter_rows(path: str) -> Iterator[tuple[int, dict | None, str]]:
    """(row number, row or None, error) for every row of a JSONL or Parquet file."""
    if path.endswith(".jsonl"):
        with open_binary(path) as f:
            for i, line in enumerate(f):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    yield (i, row, "") if isinstance(row, dict) else (i, None, "not an object")
                except (ValueError, UnicodeDecodeError) as err:
                    yield i, None, str(err)[:120]
    else:
        import pyarrow.parquet as pq

        n = 0
        with open_binary(path) as f:
            for batch in pq.ParquetFile(f).iter_batches(batch_size=1024):
                for row in batch.to_pylist():
                    yield n, row, ""
                    n += 1


def _first(row: dict, names: tuple[str, ...]):
    for name in names:
        value = row.get(name)
        if value is not None:
            return value
    return None


def repo_row_meta(row: dict) -> tuple:
    """A repository row's metadata as sorted (name, value) pairs: ``stars`` and ``forks``
    (integers), ``created_at`` (text, ISO 8601 sorts), ``license`` (the row's SPDX
    expression, read by the Licenses stage like a package manifest)."""
    meta = {}
    for name, columns in META_COLUMNS.items():
        value = _first(row, columns)
        if name in ("stars", "forks"):
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                meta[name] = int(value)
        elif name == "license" and isinstance(value, list):
            ids = [v for v in value if isinstance(v, str) and v]
            if ids:
                meta[name] = " AND ".join(ids)  # a bare list says no OR: all apply
        elif value is not None and str(value):
            meta[name] = str(value)
    return tuple(sorted(meta.items()))


def read_repo_row(src: RepoSource, i: int, row: dict,
                  limits: Limits) -> Iterator[SourceFile | Drop]:
    """One row holding a whole repository: read as a folder is, with the same bounds and
    drops (the file cap in path order with licence files and manifests always within,
    ``unsafe_path``, ``unsupported_language``, ``too_large``, ``empty``, ``binary``,
    ``invalid_utf8``), plus ``duplicate_path`` (a path twice in one row) and
    ``malformed_row`` (a file entry without path or content). Every file carries the row's
    metadata (``SourceFile.meta``)."""
    where = f"{src.name}#{i}"
    repo = _first(row, REPO_ROW_NAMES)
    if not isinstance(repo, str) or not repo.strip():
        yield Drop(src.name, where, "malformed_row", "repository row without a name")
        return
    meta = repo_row_meta(row)
    entries: dict[str, str | bytes] = {}
    for j, f in enumerate(_first(row, FILES_COLUMNS) or ()):
        path = _first(f, PATH_COLUMNS + ("name",)) if isinstance(f, dict) else None
        content = _first(f, CONTENT_COLUMNS + ("text",)) if isinstance(f, dict) else None
        if not isinstance(path, str) or not isinstance(content, (str, bytes)):
            yield Drop(repo, f"{where}/files#{j}", "malformed_row",
                       "file entry without path and content")
            continue
        rel = safe_member_path(path)
        if rel is None:
            yield Drop(repo, path, "unsafe_path")
        elif rel in entries:
            yield Drop(repo, rel, "duplicate_path", f"{where}/files#{j}")
        else:
            entries[rel] = content
    for rel, within_cap in _capped(repo, entries, limits):
        if not within_cap:
            yield Drop(repo, rel, "over_repo_file_cap")
            continue
        if detect_language(rel) is None and not is_license_source(rel):
            yield Drop(repo, rel, "unsupported_language")
            continue
        content = entries[rel]
        data = content if isinstance(content, bytes) else content.encode("utf-8",
                                                                         "surrogatepass")
        item = classify(repo, rel, data, limits, CODE, origin=f"{src.location}#{i}")
        yield item if isinstance(item, Drop) or not meta else replace(item, meta=meta)


def read_rows(src: RepoSource, limits: Limits) -> Iterator[SourceFile | Drop]:
    """Rows with content + repo + path are code files; rows with ``text`` are documents;
    rows with a ``files`` list are whole repositories (``read_repo_row``)."""
    try:
        for i, row, error in iter_rows(src.location):
            where = f"{src.name}#{i}"
            if row is None:
                yield Drop(src.name, where, "malformed_row", error)
                continue
            if isinstance(_first(row, FILES_COLUMNS), list):
                yield from read_repo_row(src, i, row, limits)
                continue
            content = _first(row, CONTENT_COLUMNS)
            if isinstance(content, str):
                repo = _first(row, REPO_COLUMNS)
                path = _first(row, PATH_COLUMNS)
                if not isinstance(repo, str) or not isinstance(path, str):
                    yield Drop(src.name, where, "malformed_row", "code row without repo/path")
                    continue
                rel = safe_member_path(path) or path
                yield classify(repo, rel, content.encode("utf-8", "surrogatepass"), limits,
                               origin=f"{src.location}#{i}")
            elif isinstance(row.get("text"), str):
                doc = str(row.get("id", i))
                yield classify(src.name, doc, row["text"].encode("utf-8", "surrogatepass"),
                               limits, NATURAL_LANGUAGE, origin=f"{src.location}#{i}")
            else:
                yield Drop(src.name, where, "malformed_row", "no content or text column")
    except Exception as err:  # a damaged Parquet footer, say: recorded, the build goes on
        yield Drop(src.name, "", "corrupt_row_file", f"{type(err).__name__}: {err}"[:120])


