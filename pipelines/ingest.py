"""Ingest: repositories (folders, tar/zip archives, explicit file lists) and row files
(The-Stack-like code rows, natural-language ``text`` rows) into ``SourceFile``s and ``Drop``s.

Every input file ends as exactly one ``SourceFile`` or one ``Drop`` with a reason, so the
manifest can account for all of them. Nothing is extracted to disk: archive members are read
into memory with a size bound, so ``../`` or absolute member paths cannot escape, and symlinks
are recorded, never followed.
"""
from __future__ import annotations

import json
import logging
import os
import stat
import tarfile
import zipfile
from dataclasses import dataclass, field
from typing import Iterable, Iterator

import apache_beam as beam
from apache_beam.metrics import Metrics

from fimpack.pipelines.languages import detect_language
from fimpack.config import Limits  # noqa: F401  (re-exported)
from fimpack.records import AUDIT, CODE, NATURAL_LANGUAGE, Drop, SourceFile, processing_error

log = logging.getLogger("fimpack.ingest")

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".zip")
ROW_SUFFIXES = (".jsonl", ".parquet")
VCS_DIRS = {".git", ".hg", ".svn"}  # version-control metadata, not repository content

# Column names seen in The Stack / StarCoderData style rows.
REPO_COLUMNS = ("repo", "repo_name", "max_stars_repo_name", "repository_name")
PATH_COLUMNS = ("path", "max_stars_repo_path", "file_path")
CONTENT_COLUMNS = ("content", "code")


@dataclass(frozen=True)
class RepoSource:
    """Where one repository (or one row file) comes from."""

    name: str
    kind: str                 # "dir", "tar", "zip", "files" or "rows"
    location: str             # folder, archive or row file
    files: tuple[str, ...] = field(default=())  # for "files": paths relative to location
    source: str = CODE        # for "files": CODE or NATURAL_LANGUAGE


def repo_name_for(entry: str) -> str:
    name = os.path.basename(entry.rstrip("/"))
    for suffix in ARCHIVE_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def is_remote(path: str) -> bool:
    """gs://, s3://, hdfs://...: read through Beam's filesystems, never ``open()``."""
    return "://" in path


def open_binary(path: str):
    if is_remote(path):
        from apache_beam.io.filesystems import FileSystems

        return FileSystems.open(path, compression_type="uncompressed")
    return open(path, "rb")


def discover_remote(input_dir: str) -> list[RepoSource]:
    """Object stores have no folders: archives and row files under INPUT_DIR."""
    from apache_beam.io.filesystems import FileSystems

    pattern = FileSystems.join(input_dir.rstrip("/"), "*")
    sources = []
    for meta in sorted(FileSystems.match([pattern])[0].metadata_list, key=lambda m: m.path):
        name = meta.path.rstrip("/").rsplit("/", 1)[-1]
        if name.endswith(".zip"):
            sources.append(RepoSource(repo_name_for(name), "zip", meta.path))
        elif name.endswith(ARCHIVE_SUFFIXES):
            sources.append(RepoSource(repo_name_for(name), "tar", meta.path))
        elif name.endswith(ROW_SUFFIXES):
            sources.append(RepoSource(name, "rows", meta.path))
        else:
            log.warning("skipping %s: neither an archive nor a row file", meta.path)
    return sources


def discover(input_dir: str) -> list[RepoSource]:
    """Each immediate subdirectory of INPUT_DIR is a repository; so is each archive in it.
    ``.jsonl``/``.parquet`` files in it are row files (code rows or natural-language rows).
    A remote INPUT_DIR (``gs://...``) is listed through Beam's filesystems."""
    if is_remote(input_dir):
        return discover_remote(input_dir)
    sources = []
    for entry in sorted(os.listdir(input_dir)):
        full = os.path.join(input_dir, entry)
        if os.path.islink(full):
            log.warning("skipping symlink %s at the top of the input", full)
            continue
        if os.path.isdir(full):
            sources.append(RepoSource(entry, "dir", full))
        elif entry.endswith(".zip"):
            sources.append(RepoSource(repo_name_for(entry), "zip", full))
        elif entry.endswith(ARCHIVE_SUFFIXES):
            sources.append(RepoSource(repo_name_for(entry), "tar", full))
        elif entry.endswith(ROW_SUFFIXES):
            sources.append(RepoSource(entry, "rows", full))
        else:
            log.warning("skipping %s: neither a folder, an archive nor a row file", full)
    return sources


def classify(repo: str, path: str, data: bytes, limits: Limits,
             source: str = CODE) -> SourceFile | Drop:
    """Decide what one file's bytes become. The content is kept byte-exact."""
    language = "text" if source == NATURAL_LANGUAGE else detect_language(path)
    if language is None:
        return Drop(repo, path, "unsupported_language")
    if len(data) > limits.max_file_bytes:
        return Drop(repo, path, "too_large", f"{len(data)} bytes")
    if not data.strip():
        return Drop(repo, path, "empty")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return Drop(repo, path, "unsupported_encoding", "UTF-16/32 byte-order mark")
    if b"\x00" in data:
        return Drop(repo, path, "binary")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        return Drop(repo, path, "invalid_utf8", str(err)[:120])
    if source == NATURAL_LANGUAGE and len(text) < limits.nl_min_chars:
        return Drop(repo, path, "too_short")
    return SourceFile(repo, path, language, text, source)


def _capped(repo: str, paths: Iterable[str], limits: Limits) -> Iterator[tuple[str, bool]]:
    """Yield (path, within_cap) in sorted order so the cap keeps the same files every time."""
    for i, path in enumerate(sorted(paths)):
        yield path, not limits.max_files_per_repo or i < limits.max_files_per_repo


def _read_bounded(f, limit: int) -> bytes:
    return f.read(limit + 1)  # one byte past the limit is enough to know it is too large


def list_dir(src: RepoSource, limits: Limits) -> Iterator[tuple]:
    """A folder's entries as (repo, root, rel, kind, within_cap, source), read one by one
    later: listing is cheap, and one element per file keeps any single output small."""
    root = src.location
    entries: dict[str, str] = {}  # relative path -> "file" | "symlink" | "special"
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        keep_dirs = []
        for d in sorted(dirnames):
            if d in VCS_DIRS:
                continue
            full = os.path.join(dirpath, d)
            if os.path.islink(full):  # never follow: it may point outside or loop
                entries[os.path.relpath(full, root).replace(os.sep, "/")] = "symlink"
            else:
                keep_dirs.append(d)
        dirnames[:] = keep_dirs
        for name in filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root).replace(os.sep, "/")
            mode = os.lstat(full).st_mode
            entries[rel] = ("symlink" if stat.S_ISLNK(mode)
                            else "file" if stat.S_ISREG(mode) else "special")
    for rel, within_cap in _capped(src.name, entries, limits):
        yield (src.name, root, rel, entries[rel], within_cap, CODE)


def read_dir(src: RepoSource, limits: Limits) -> Iterator[SourceFile | Drop]:
    for entry in list_dir(src, limits):
        yield _read_path_entry(*entry, limits=limits)


def _read_path_entry(repo: str, root: str, rel: str, kind: str, within_cap: bool,
                     source: str = CODE, *, limits: Limits) -> SourceFile | Drop:
    if kind == "symlink":
        return Drop(repo, rel, "symlink")
    if kind == "special":
        return Drop(repo, rel, "special_file")
    if not within_cap:
        return Drop(repo, rel, "over_repo_file_cap")
    if source == CODE and detect_language(rel) is None:
        return Drop(repo, rel, "unsupported_language")  # decided without reading the file
    full = os.path.join(root, *rel.split("/"))
    try:
        size = os.path.getsize(full)
        if size > limits.max_file_bytes:
            return Drop(repo, rel, "too_large", f"{size} bytes")
        with open(full, "rb") as f:
            data = _read_bounded(f, limits.max_file_bytes)
    except OSError as err:
        return Drop(repo, rel, "unreadable", str(err)[:120])
    return classify(repo, rel, data, limits, source)


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


def read_tar(src: RepoSource, limits: Limits) -> Iterator[SourceFile | Drop]:
    try:
        with open_binary(src.location) as raw, tarfile.open(fileobj=raw, mode="r:*") as tar:
            members = []
            for m in tar:
                if m.isdir():
                    continue
                members.append(m)
            safe = {m.name: safe_member_path(m.name) for m in members}
            root = _strip_common_root([p for p in safe.values() if p])
            order = sorted(members, key=lambda m: (safe[m.name] or m.name))
            for i, m in enumerate(order):
                rel = safe[m.name]
                if rel is None:
                    yield Drop(src.name, m.name, "unsafe_path")
                    continue
                rel = rel[len(root):] if root and rel.startswith(root) else rel
                if m.issym() or m.islnk():
                    yield Drop(src.name, rel, "symlink")
                elif not m.isfile():
                    yield Drop(src.name, rel, "special_file")
                elif limits.max_files_per_repo and i >= limits.max_files_per_repo:
                    yield Drop(src.name, rel, "over_repo_file_cap")
                elif detect_language(rel) is None:
                    yield Drop(src.name, rel, "unsupported_language")
                elif m.size > limits.max_file_bytes:
                    yield Drop(src.name, rel, "too_large", f"{m.size} bytes")
                else:
                    f = tar.extractfile(m)
                    yield classify(src.name, rel, _read_bounded(f, limits.max_file_bytes), limits)
    except (tarfile.TarError, EOFError, OSError, ValueError) as err:
        # Members read before the damage are kept; the archive itself is recorded once.
        yield Drop(src.name, "", "corrupt_archive", str(err)[:120])


def read_zip(src: RepoSource, limits: Limits) -> Iterator[SourceFile | Drop]:
    try:
        with open_binary(src.location) as raw, zipfile.ZipFile(raw) as zf:
            infos = [i for i in zf.infolist() if not i.is_dir()]
            safe = {i.filename: safe_member_path(i.filename) for i in infos}
            root = _strip_common_root([p for p in safe.values() if p])
            order = sorted(infos, key=lambda i: (safe[i.filename] or i.filename))
            for n, info in enumerate(order):
                rel = safe[info.filename]
                if rel is None:
                    yield Drop(src.name, info.filename, "unsafe_path")
                    continue
                rel = rel[len(root):] if root and rel.startswith(root) else rel
                if stat.S_ISLNK(info.external_attr >> 16):
                    yield Drop(src.name, rel, "symlink")
                elif limits.max_files_per_repo and n >= limits.max_files_per_repo:
                    yield Drop(src.name, rel, "over_repo_file_cap")
                elif detect_language(rel) is None:
                    yield Drop(src.name, rel, "unsupported_language")
                elif info.file_size > limits.max_file_bytes:
                    yield Drop(src.name, rel, "too_large", f"{info.file_size} bytes")
                else:
                    try:
                        with zf.open(info) as f:  # bounded read: a bomb stops at the limit
                            data = _read_bounded(f, limits.max_file_bytes)
                    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as err:
                        yield Drop(src.name, rel, "corrupt_member", str(err)[:120])
                        continue
                    yield classify(src.name, rel, data, limits)
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        yield Drop(src.name, "", "corrupt_archive", str(err)[:120])


def list_files(src: RepoSource, limits: Limits) -> Iterator[tuple]:
    for rel, within_cap in _capped(src.name, src.files, limits):
        full = os.path.join(src.location, *rel.split("/"))
        kind = "symlink" if os.path.islink(full) else "file"
        yield (src.name, src.location, rel, kind, within_cap, src.source)


def read_files(src: RepoSource, limits: Limits) -> Iterator[SourceFile | Drop]:
    for entry in list_files(src, limits):
        yield _read_path_entry(*entry, limits=limits)


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


def read_rows(src: RepoSource, limits: Limits) -> Iterator[SourceFile | Drop]:
    """Rows with content + repo + path are code files; rows with ``text`` are documents."""
    try:
        for i, row, error in iter_rows(src.location):
            where = f"{src.name}#{i}"
            if row is None:
                yield Drop(src.name, where, "malformed_row", error)
                continue
            content = _first(row, CONTENT_COLUMNS)
            if isinstance(content, str):
                repo = _first(row, REPO_COLUMNS)
                path = _first(row, PATH_COLUMNS)
                if not isinstance(repo, str) or not isinstance(path, str):
                    yield Drop(src.name, where, "malformed_row", "code row without repo/path")
                    continue
                rel = safe_member_path(path) or path
                yield classify(repo, rel, content.encode("utf-8", "surrogatepass"), limits)
            elif isinstance(row.get("text"), str):
                doc = str(row.get("id", i))
                yield classify(src.name, doc, row["text"].encode("utf-8", "surrogatepass"),
                               limits, NATURAL_LANGUAGE)
            else:
                yield Drop(src.name, where, "malformed_row", "no content or text column")
    except Exception as err:  # a damaged Parquet footer, say: recorded, the build goes on
        yield Drop(src.name, "", "corrupt_row_file", f"{type(err).__name__}: {err}"[:120])


READERS = {"dir": read_dir, "tar": read_tar, "zip": read_zip, "files": read_files,
           "rows": read_rows}


def read_source(src: RepoSource, limits: Limits) -> Iterator[SourceFile | Drop]:
    yield from READERS[src.kind](src, limits)


INPUT_FILES = Metrics.counter(AUDIT, "input_files")


LISTERS = {"dir": list_dir, "files": list_files}


class _ReadSource(beam.DoFn):
    DROPS = "drops"
    ENTRIES = "entries"

    def __init__(self, limits: Limits):
        self.limits = limits

    def process(self, src: RepoSource):
        if src.kind in LISTERS:  # loose files: listed here, read one element per file
            try:
                entries = list(LISTERS[src.kind](src, self.limits))
            except Exception as err:
                INPUT_FILES.inc()
                yield beam.pvalue.TaggedOutput(self.DROPS, processing_error(src.name, "", "read",
                                                                            err))
                return
            log.info("read %s: %d files listed", src.name, len(entries))
            for entry in entries:
                yield beam.pvalue.TaggedOutput(self.ENTRIES, entry)
            return
        kept = dropped = 0
        try:
            for item in read_source(src, self.limits):
                if isinstance(item, Drop):
                    dropped += 1
                    yield beam.pvalue.TaggedOutput(self.DROPS, item)
                else:
                    kept += 1
                    yield item
        except Exception as err:  # files read so far stay; the rest is one counted drop
            dropped += 1
            yield beam.pvalue.TaggedOutput(self.DROPS, processing_error(src.name, "", "read",
                                                                        err))
        # Counted on the metrics channel too, apart from the data: the driver checks that
        # every file read is accounted for as kept or dropped (see pipelines/manifest.py).
        INPUT_FILES.inc(kept + dropped)
        log.info("read %s: %d files kept, %d dropped", src.name, kept, dropped)


class _ReadEntry(beam.DoFn):
    """One listed file -> a SourceFile or a Drop."""

    def __init__(self, limits: Limits):
        self.limits = limits

    def process(self, entry: tuple):
        INPUT_FILES.inc()
        try:
            item = _read_path_entry(*entry, limits=self.limits)
        except Exception as err:
            item = processing_error(entry[0], entry[2], "read", err)
        if isinstance(item, Drop):
            yield beam.pvalue.TaggedOutput(_ReadSource.DROPS, item)
        else:
            yield item


class Ingest(beam.PTransform):
    """RepoSources -> SourceFiles (main output) and Drops (``drops`` output)."""

    def __init__(self, limits: Limits):
        super().__init__()
        self.limits = limits

    def expand(self, sources):
        read = (sources
                | "Spread" >> beam.Reshuffle()
                | "Read" >> beam.ParDo(_ReadSource(self.limits)).with_outputs(
                    _ReadSource.DROPS, _ReadSource.ENTRIES, main="files"))
        loose = (read[_ReadSource.ENTRIES]
                 | "SpreadFiles" >> beam.Reshuffle()
                 | "ReadFile" >> beam.ParDo(_ReadEntry(self.limits)).with_outputs(
                     _ReadSource.DROPS, main="files"))
        files = (read.files, loose.files) | "AllFiles" >> beam.Flatten()
        drops = ((read[_ReadSource.DROPS], loose[_ReadSource.DROPS])
                 | "AllReadDrops" >> beam.Flatten())
        return files, drops
