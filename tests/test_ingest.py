import io
import json
import tarfile
import zipfile

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fimpack.config import Limits
from fimpack.pipelines.ingest import (RepoSource, classify, discover, read_source,
                                      safe_member_path)
from fimpack.records import LICENSE_TEXT, NATURAL_LANGUAGE, Drop, SourceFile

from conftest import STDLIB, add_tar_member

LIMITS = Limits(max_file_bytes=200_000)


@pytest.mark.parametrize("path,data,outcome", [
    ("a.py", b"x = 1\n", "python"),
    ("a.rs", b"fn main() {}\n", "rust"),
    ("Makefile", b"all:\n\techo hi\n", "makefile"),
    ("a.py", b"", "empty"),
    ("a.py", b"  \n\t\n", "empty"),
    ("a.py", b"x = '\x00'\n", "binary"),
    ("a.py", b"caf\xe9\n", "invalid_utf8"),
    ("a.py", "x = 1\n".encode("utf-16"), "python"),  # transcoded (tests/test_encodings.py)
    ("a.py", b"x" * 200_001, "too_large"),
    ("image.png", b"\x89PNG", "unsupported_language"),
])
def test_classify_outcomes(path, data, outcome):
    got = classify("r", path, data, LIMITS)
    assert (got.language if isinstance(got, SourceFile) else got.reason) == outcome


def test_classify_keeps_bytes_exactly():
    data = "\ufeffa = 1\r\nb = '\u00e9'\r\n".encode("utf-8")
    got = classify("r", "a.py", data, LIMITS)
    assert got.content.encode("utf-8") == data


def test_discover_finds_folders_archives_and_rows(corpus_dir):
    kinds = {s.name: s.kind for s in discover(str(corpus_dir))}
    assert kinds == {"json": "dir", "json_fork": "dir", "email": "dir", "empty_repo": "dir", "http": "tar",
                     "urllib": "zip", "broken": "zip", "docs.jsonl": "rows"}


def test_read_dir_never_follows_symlinks(corpus_dir):
    items = list(read_source(RepoSource("email", "dir", str(corpus_dir / "email")), LIMITS))
    by_path = {i.path: i for i in items}
    assert by_path["outside.py"].reason == "symlink"
    assert by_path["loop"].reason == "symlink"
    assert not any(p.startswith("loop/") for p in by_path)
    assert by_path["huge.py"].reason == "too_large"
    assert by_path["notes.bin"].reason == "unsupported_language"
    kept = [i for i in items if isinstance(i, SourceFile)]
    originals = {p.name for p in (STDLIB / "email").glob("*.py")}
    assert originals <= {k.path for k in kept}


def test_file_cap_is_deterministic(corpus_dir):
    src = RepoSource("json", "dir", str(corpus_dir / "json"))
    items = list(read_source(src, Limits(max_files_per_repo=2)))
    kept = sorted(i.path for i in items if isinstance(i, SourceFile))
    capped = [i for i in items if isinstance(i, Drop)]
    assert kept == sorted(p.name for p in (STDLIB / "json").glob("*.py"))[:2]
    assert {d.reason for d in capped} == {"over_repo_file_cap"}
    assert len(kept) + len(capped) == len(items)


@pytest.mark.parametrize("kind", ["dir", "tar"])
def test_licence_files_are_read_whatever_the_cap_and_format(tmp_path, kind):
    # a licence file has no language and may sort past the file cap: it is read all the same,
    # for the Licenses stage, from folders and archives alike
    files = {"a.py": b"a = 1\n", "b.py": b"b = 2\n", "licence.txt": b"Permission is granted.\n"}
    if kind == "dir":
        for name, data in files.items():
            (tmp_path / name).write_bytes(data)
        src = RepoSource("r", "dir", str(tmp_path))
    else:
        with tarfile.open(tmp_path / "r.tar.gz", "w:gz") as tar:
            for name, data in files.items():
                add_tar_member(tar, f"r-main/{name}", data)
        src = RepoSource("r", "tar", str(tmp_path / "r.tar.gz"))
    items = {i.path: i for i in read_source(src, Limits(max_files_per_repo=1))}
    assert isinstance(items["a.py"], SourceFile)
    assert items["b.py"].reason == "over_repo_file_cap"
    assert items["licence.txt"].language == LICENSE_TEXT


def test_a_tar_gz_out_of_path_order_is_decompressed_twice_not_once_per_member(tmp_path,
                                                                            monkeypatch):
    """Members are numbered in path order (the file cap) but read in the archive's order: a
    gzip stream seeks back by decompressing from its start, so reading 60 members in path
    order from an archive stored in reverse read the file ~30 times (205 s for a 17 MB
    tar.gz of two folders). Two passes (list, then read) are the least a stream allows."""
    import os

    import fimpack.pipelines.archives as archives

    files = {f"r-main/m{k:02d}.py": f"x{k} = {os.urandom(3000).hex()!r}\n".encode()
             for k in range(60)}
    with tarfile.open(tmp_path / "r.tar.gz", "w:gz") as tar:
        for name in sorted(files, reverse=True):
            add_tar_member(tar, name, files[name])
    read = []

    class Counting(io.FileIO):
        def read(self, n=-1):
            data = super().read(n)
            read.append(len(data))
            return data

        def readinto(self, b):
            n = super().readinto(b)
            read.append(n or 0)
            return n

    monkeypatch.setattr(archives, "open_binary", lambda path: Counting(path))
    items = list(read_source(RepoSource("r", "tar", str(tmp_path / "r.tar.gz")),
                             Limits(max_files_per_repo=50)))
    kept = {i.path: i.content.encode() for i in items if isinstance(i, SourceFile)}
    assert kept == {n[len("r-main/"):]: d for n, d in sorted(files.items())[:50]}
    assert sorted(i.path for i in items if isinstance(i, Drop)) == [f"m{k}.py"
                                                                    for k in range(50, 60)]
    assert sum(read) <= 3 * os.path.getsize(tmp_path / "r.tar.gz")


def test_tar_escape_paths_are_dropped_not_extracted(corpus_dir, tmp_path):
    items = list(read_source(RepoSource("http", "tar", str(corpus_dir / "http.tar.gz")), LIMITS))
    unsafe = sorted(i.path for i in items if isinstance(i, Drop) and i.reason == "unsafe_path")
    assert unsafe == ["../escape.py", "/abs.py"]
    kept = {i.path for i in items if isinstance(i, SourceFile)}
    # The common top folder of a GitHub-style archive is stripped.
    assert kept == {p.name for p in (STDLIB / "http").glob("*.py")}
    assert not (corpus_dir.parent / "escape.py").exists()


def test_zip_bomb_is_bounded(tmp_path):
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("big.py", b"0" * 50_000_000)  # 50 MB of zeros, ~50 KB compressed
        zf.writestr("ok.py", b"x = 1\n")
    items = list(read_source(RepoSource("bomb", "zip", str(bomb)), LIMITS))
    reasons = {i.path: (i.reason if isinstance(i, Drop) else "kept") for i in items}
    assert reasons == {"big.py": "too_large", "ok.py": "kept"}


def test_corrupt_archives_are_recorded(corpus_dir, tmp_path):
    items = list(read_source(RepoSource("broken", "zip", str(corpus_dir / "broken.zip")),
                             LIMITS))
    assert [(i.path, i.reason) for i in items] == [("", "corrupt_archive")]
    truncated = tmp_path / "t.tar.gz"
    with tarfile.open(truncated, "w:gz") as tar:
        add_tar_member(tar, "a.py", b"x = 1\n" * 10_000)
    truncated.write_bytes(truncated.read_bytes()[:120])  # cut inside the member data
    items = list(read_source(RepoSource("t", "tar", str(truncated)), LIMITS))
    assert items[-1].reason == "corrupt_archive"


def test_rows_code_and_text(tmp_path):
    rows = tmp_path / "stack.parquet"
    pq.write_table(pa.Table.from_pylist([
        {"max_stars_repo_name": "org/a", "max_stars_repo_path": "src/x.py",
         "content": "def f():\n    return 1\n", "text": None},
        {"max_stars_repo_name": "org/a", "max_stars_repo_path": "y.go",
         "content": "package y\n", "text": None},
        {"max_stars_repo_name": None, "max_stars_repo_path": None, "content": None,
         "text": "A document about code. " * 20},
    ]), rows)
    items = list(read_source(RepoSource("stack.parquet", "rows", str(rows)), LIMITS))
    assert [(i.repo, i.path, i.language, i.source) for i in items] == [
        ("org/a", "src/x.py", "python", "code"), ("org/a", "y.go", "go", "code"),
        ("stack.parquet", "2", "text", NATURAL_LANGUAGE)]


def test_malformed_jsonl_rows_are_counted(corpus_dir):
    items = list(read_source(RepoSource("docs.jsonl", "rows", str(corpus_dir / "docs.jsonl")),
                             LIMITS))
    reasons = sorted(i.reason for i in items if isinstance(i, Drop))
    assert reasons == ["malformed_row", "too_short"]
    assert sorted(i.path for i in items if isinstance(i, SourceFile)) == ["class-definitions", "repetitive",
                                                                     "with-statement"]


@pytest.mark.parametrize("name,expected", [
    ("a/b.py", "a/b.py"), ("./a//b.py", "a/b.py"), ("../a.py", None), ("a/../../b", None),
    ("/etc/passwd", None), ("C:\\x.py", None), ("a\\b.py", "a/b.py"), ("", None),
])
def test_safe_member_path(name, expected):
    assert safe_member_path(name) == expected
