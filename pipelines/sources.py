"""Where repositories come from and how their files are read, without Beam: sources
(folders, file lists; archives and row files in ``archives.py``), their discovery (local or
any Beam filesystem), and one outcome per file: a ``SourceFile`` or a ``Drop`` with a reason.
Nothing is extracted to disk and symlinks are recorded, never followed."""
from __future__ import annotations

import hashlib
import logging
import os
import stat
from dataclasses import dataclass, field
from typing import Iterable, Iterator, NamedTuple

from fimpack.config import Limits
from fimpack.pipelines.encodings import decode, has_utf16_or_32_bom
from fimpack.languages import detect_language
from fimpack.dedup.licenses import is_license_file, is_license_source, is_manifest
from fimpack.dedup.nl import TEXT, doc_format
from fimpack.records import CODE, LICENSE_TEXT, NATURAL_LANGUAGE, Drop, SourceFile

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
    """Object stores have no folders, only names: archives and row files directly under
    INPUT_DIR, and each first-level prefix with objects under it (a folder of repositories
    uploaded with ``gsutil cp -r``) as one repository of those files, like a local folder
    (version-control metadata left out). Listed and read through Beam's filesystems."""
    from apache_beam.io.filesystems import FileSystems

    base = input_dir.rstrip("/")
    found = FileSystems.match([FileSystems.join(base, "**")])[0].metadata_list
    entries, folders = [], {}
    for meta in sorted(found, key=lambda m: m.path):
        top, _, rest = meta.path[len(base):].lstrip("/").partition("/")
        if rest:  # under a prefix: one file of the repository the prefix names
            if not rest.endswith("/") and not set(rest.split("/")[:-1]) & VCS_DIRS:
                folders.setdefault(top, []).append(rest)
        elif top.endswith(".zip"):
            entries.append((top, RepoSource(repo_name_for(top), "zip", meta.path)))
        elif top.endswith(ARCHIVE_SUFFIXES):
            entries.append((top, RepoSource(repo_name_for(top), "tar", meta.path)))
        elif top.endswith(ROW_SUFFIXES):
            entries.append((top, RepoSource(top, "rows", meta.path)))
        else:
            log.warning("skipping %s: neither a folder, an archive nor a row file", meta.path)
    entries += [(top, RepoSource(top, "files", FileSystems.join(base, top), tuple(files)))
                for top, files in folders.items()]
    return [src for _, src in sorted(entries, key=lambda e: e[0])]


# What marks a folder as one repository rather than a folder of them: version-control
# metadata, or a package manifest at its root (the registries' own file names).
PACKAGE_MANIFESTS = ("package.json", "pyproject.toml", "setup.py", "setup.cfg", "PKG-INFO",
                     "Cargo.toml", "go.mod", "pom.xml", "build.gradle", "build.gradle.kts",
                     "composer.json", "Gemfile", "CMakeLists.txt", "deno.json")
LAYOUTS = ("auto", "repos", "repo", "rows")


def repository_marker(folder: str) -> str | None:
    """The VCS folder or package manifest that makes FOLDER one repository, if any."""
    try:
        names = set(os.listdir(folder))
    except OSError:
        return None
    for name in sorted(VCS_DIRS) + list(PACKAGE_MANIFESTS):
        if name in names:
            return name
    return next((n for n in sorted(names) if n.endswith(".gemspec")), None)


def discover_input(path: str, layout: str = "auto") -> tuple[list[RepoSource], str]:
    """The sources of ``--input PATH`` and the layout used. ``repos``: PATH holds
    repositories (subfolders, archives, row files); ``repo``: PATH is one repository (a
    folder or an archive); ``rows``: PATH is a row file or a folder of them; ``auto``: one
    repository when PATH is an archive or a folder with a VCS folder or package manifest at
    its root, a row file's rows when it is one, else ``repos``."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown input layout {layout!r}: one of {', '.join(LAYOUTS)}")
    if is_remote(path) and layout in ("auto", "repo", "rows"):
        # object stores have no folders to look into: the name decides
        if path.endswith(ARCHIVE_SUFFIXES):
            layout = "repo"
        elif path.endswith(ROW_SUFFIXES):
            layout = "rows"
        elif layout != "auto":
            raise ValueError(f"--input-layout {layout} with a remote --input needs an archive "
                             f"({', '.join(ARCHIVE_SUFFIXES)}) or a row file (.jsonl, "
                             ".parquet); a remote prefix is read as a folder of repositories")
        else:
            layout = "repos"
        if layout != "repos":
            name = repo_name_for(path.rstrip("/"))
            kind = "rows" if layout == "rows" else ("zip" if path.endswith(".zip") else "tar")
            return [RepoSource(os.path.basename(path) if kind == "rows" else name, kind,
                               path)], layout
    if layout == "auto":
        if os.path.isfile(path):
            layout = "rows" if path.endswith(ROW_SUFFIXES) else "repo"
        else:
            layout = "repo" if repository_marker(path) else "repos"
    if layout == "repos":
        return discover(path), layout
    name = repo_name_for(path.rstrip("/"))
    if layout == "repo":
        if os.path.isdir(path):
            return [RepoSource(name, "dir", path)], layout
        kind = "zip" if path.endswith(".zip") else "tar"
        return [RepoSource(name, kind, path)], layout
    if os.path.isdir(path):
        rows = [RepoSource(e, "rows", os.path.join(path, e)) for e in sorted(os.listdir(path))
                if e.endswith(ROW_SUFFIXES)]
        return rows, layout
    return [RepoSource(os.path.basename(path), "rows", path)], layout


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
             source: str = CODE, origin: str = "") -> SourceFile | Drop:
    """Decide what one file's bytes become. The content is kept byte-exact; ORIGIN and the
    bytes' SHA-256 are its provenance. A licence file becomes a LICENSE_TEXT file for the
    Licenses stage."""
    language = TEXT if source == NATURAL_LANGUAGE else detect_language(path)
    if source == CODE and (is_license_file(path) or (language is None and is_manifest(path))):
        language = LICENSE_TEXT  # LICENSE.md too: read for the licence, not trained on
    if language is None:
        return Drop(repo, path, "unsupported_language")
    if len(data) > limits.max_file_bytes:
        return Drop(repo, path, "too_large", f"{len(data)} bytes")
    if not data.strip():
        return Drop(repo, path, "empty")
    if b"\x00" in data and not has_utf16_or_32_bom(data):
        return Drop(repo, path, "binary")
    decoded = decode(data)  # UTF-8 as read, else charset-normalizer when it is confident
    if not decoded.confident:
        return Drop(repo, path, "invalid_utf8", f"not UTF-8; {decoded.encoding}"[:120])
    text = decoded.text
    if source == NATURAL_LANGUAGE:
        if len(text) < limits.nl_min_chars:
            return Drop(repo, path, "too_short")
        language = doc_format(path, text)
    return SourceFile(repo, path, language, text, source, origin=origin,
                      input_sha256=hashlib.sha256(data).hexdigest(), encoding=decoded.encoding)


def _capped(repo: str, paths: Iterable[str], limits: Limits) -> Iterator[tuple[str, bool]]:
    """Yield (path, within_cap) in sorted order so the cap keeps the same files every time; a
    licence file or package manifest is always within (the Licenses stage reads it)."""
    for i, path in enumerate(sorted(paths)):
        yield path, (not limits.max_files_per_repo or i < limits.max_files_per_repo
                     or is_license_source(path))


def _read_bounded(f, limit: int) -> bytes:
    return f.read(limit + 1)  # one byte past the limit is enough to know it is too large


class ListedFile(NamedTuple):
    """One file of a folder as listed, before it is read (``read_listed``): listing is
    cheap, and one element per file keeps any single output small."""

    repo: str
    root: str          # the folder (local or remote) the path is relative to
    path: str          # relative, with "/"
    kind: str          # "file", "symlink" or "special" (a device, a pipe)
    within_cap: bool   # inside --max-files-per-repo
    source: str = CODE


def list_dir(src: RepoSource, limits: Limits) -> Iterator[ListedFile]:
    """A folder's files as ListedFiles, read one by one later."""
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
        yield ListedFile(src.name, root, rel, entries[rel], within_cap, CODE)


def read_dir(src: RepoSource, limits: Limits) -> Iterator[SourceFile | Drop]:
    for entry in list_dir(src, limits):
        yield read_listed(entry, limits)


def read_listed(entry: ListedFile, limits: Limits) -> SourceFile | Drop:
    """A listed file read and classified (``classify``), or its Drop."""
    repo, root, rel, kind, within_cap, source = entry
    if kind == "symlink":
        return Drop(repo, rel, "symlink")
    if kind == "special":
        return Drop(repo, rel, "special_file")
    if not within_cap:
        return Drop(repo, rel, "over_repo_file_cap")
    if source == CODE and detect_language(rel) is None and not is_license_source(rel):
        return Drop(repo, rel, "unsupported_language")  # decided without reading the file
    full = os.path.join(root, *rel.split("/"))
    if is_remote(full):
        return _read_remote_entry(repo, root, rel, full, source, limits)
    try:
        size = os.path.getsize(full)
        if size > limits.max_file_bytes:
            return Drop(repo, rel, "too_large", f"{size} bytes")
        with open(full, "rb") as f:
            data = _read_bounded(f, limits.max_file_bytes)
    except OSError as err:
        return Drop(repo, rel, "unreadable", str(err)[:120])
    return classify(repo, rel, data, limits, source, origin=root)


def _read_remote_entry(repo: str, root: str, rel: str, full: str, source: str,
                       limits: Limits) -> SourceFile | Drop:
    """A file of a remote folder (``discover_remote``), read through Beam's filesystems with
    the same bound and outcomes as a local one."""
    from apache_beam.io.filesystems import FileSystems

    try:
        with open_binary(full) as f:
            data = _read_bounded(f, limits.max_file_bytes)
        if len(data) > limits.max_file_bytes:
            size = FileSystems.match([full])[0].metadata_list[0].size_in_bytes
            return Drop(repo, rel, "too_large", f"{size} bytes")
    except Exception as err:  # the filesystem's own errors (BeamIOError, HTTP, ...)
        return Drop(repo, rel, "unreadable", f"{type(err).__name__}: {err}"[:120])
    return classify(repo, rel, data, limits, source, origin=root)


def list_files(src: RepoSource, limits: Limits) -> Iterator[ListedFile]:
    for rel, within_cap in _capped(src.name, src.files, limits):
        full = os.path.join(src.location, *rel.split("/"))
        kind = "symlink" if not is_remote(full) and os.path.islink(full) else "file"
        yield ListedFile(src.name, src.location, rel, kind, within_cap, src.source)


def read_files(src: RepoSource, limits: Limits) -> Iterator[SourceFile | Drop]:
    for entry in list_files(src, limits):
        yield read_listed(entry, limits)


