"""A build whose input and output live on a non-local filesystem: every read and write must go
through ``apache_beam.io.filesystems`` (as gs:// on Dataflow does), never ``open()``. The
filesystem here is an in-memory one registered under the scheme ``memfs://``."""
import io
import json
import tarfile
import zipfile

import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystem import FileMetadata, FileSystem, MatchResult

from fimpack.config import build_settings
from fimpack.pipelines import build
from fimpack.pipelines.ingest import discover

from conftest import STDLIB, pydoc_topic

STORE: dict[str, bytes] = {}


class _Writer(io.BytesIO):
    def __init__(self, path):
        super().__init__()
        self.path = path

    def close(self):
        STORE[self.path] = self.getvalue()
        super().close()


class MemFileSystem(FileSystem):
    """Just enough of a Beam FileSystem: flat keys, prefix listing."""

    @classmethod
    def scheme(cls):
        return "memfs"

    def join(self, basepath, *paths):
        return "/".join([basepath.rstrip("/"), *(p.strip("/") for p in paths)])

    def split(self, path):
        head, _, tail = path.rpartition("/")
        return head, tail

    def mkdirs(self, path):
        pass

    def has_dirs(self):
        return False

    def _list(self, dir_or_prefix):
        for path, data in sorted(STORE.items()):
            if path.startswith(dir_or_prefix):
                yield FileMetadata(path, len(data))

    def create(self, path, mime_type="application/octet-stream", compression_type=None):
        return _Writer(path)

    def open(self, path, mime_type="application/octet-stream", compression_type=None):
        return io.BytesIO(STORE[path])

    def copy(self, sources, destinations):
        for s, d in zip(sources, destinations):
            STORE[d] = STORE[s]

    def rename(self, sources, destinations):
        for s, d in zip(sources, destinations):
            STORE[d] = STORE.pop(s)

    def exists(self, path):
        return path in STORE

    def size(self, path):
        return len(STORE[path])

    def last_updated(self, path):
        return 0.0

    def checksum(self, path):
        return str(hash(STORE[path]))

    def metadata(self, path):
        return FileMetadata(path, len(STORE[path]))

    def delete(self, paths):
        for p in paths:
            STORE.pop(p, None)


def test_build_reads_and_writes_only_through_beam_filesystems(tmp_path, monkeypatch):
    tar_buf = io.BytesIO()
    with tarfile.open(fileobj=tar_buf, mode="w:gz") as tar:
        for p in sorted((STDLIB / "json").glob("*.py")):
            tar.add(p, arcname=f"json-main/{p.name}")
    zip_buf = io.BytesIO()
    with zipfile.ZipFile(zip_buf, "w") as zf:
        for p in sorted((STDLIB / "http").glob("*.py")):
            zf.write(p, f"http/{p.name}")
    rows = io.BytesIO()
    pq.write_table(pa.Table.from_pylist([{"text": pydoc_topic("with")}]), rows)
    STORE.update({"memfs://bucket/in/json.tar.gz": tar_buf.getvalue(),
                  "memfs://bucket/in/http.zip": zip_buf.getvalue(),
                  "memfs://bucket/in/docs.parquet": rows.getvalue()})

    import builtins
    real_open = builtins.open

    def guarded_open(file, *args, **kwargs):  # any open() of a remote path is a bug
        assert "memfs://" not in str(file), f"open({file!r}) bypassed Beam's filesystems"
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded_open)
    sources = discover("memfs://bucket/in")
    assert [(s.name, s.kind) for s in sources] == [("docs.parquet", "rows"), ("http", "zip"),
                                                   ("json", "tar")]
    cfg = build_settings(out="memfs://bucket/out", input="memfs://bucket/in", vocab_size=600,
                            seq_len=2048, code_fraction=None)
    manifest = build.run(cfg, sources, [])
    c = manifest["counts"]
    assert c["kept_files"] > 10 and c["kept_by_source"]["nl"] == 1
    assert json.loads(STORE["memfs://bucket/out/manifest.json"]) == manifest
    written = {k for k in STORE if k.startswith("memfs://bucket/out/")}
    assert "memfs://bucket/out/tokenizer.model" in written
    assert any(k.endswith(".bin") for k in written) and any(k.endswith(".parquet")
                                                           for k in written)
    assert not any(".tmp-" in k for k in written)  # temp names were all renamed
    assert not list(tmp_path.iterdir())


def test_remote_input_gives_the_same_shards_as_a_local_read(tmp_path):
    """The same repositories read from a local folder and from a Beam filesystem (memfs://,
    as gs:// on Dataflow): a folder of loose files (uploaded object by object, as `gsutil cp
    -r` does), a .tar.gz, a .zip, code rows (.jsonl, The Stack's columns) and document rows
    (.parquet). Same sources, same drops, byte-identical tokens and tokenizer, the same
    examples and provenance rows but for where each file was read from (``origin``)."""
    local = tmp_path / "in"
    (local / "json" / "tests").mkdir(parents=True)
    for p in sorted((STDLIB / "json").glob("*.py")):
        (local / "json" / p.name).write_bytes(p.read_bytes())
    (local / "json" / "tests" / "empty.py").write_bytes(b"")  # a drop, same either way
    (local / "json" / ".git").mkdir()
    (local / "json" / ".git" / "HEAD").write_text("ref: refs/heads/main\n")  # never read
    with tarfile.open(local / "http.tar.gz", "w:gz") as tar:
        for p in sorted((STDLIB / "http").glob("*.py")):
            tar.add(p, arcname=f"http-main/{p.name}")
    with zipfile.ZipFile(local / "html.zip", "w") as zf:
        for p in sorted((STDLIB / "html").glob("*.py")):
            zf.write(p, f"html/{p.name}")
    with open(local / "stack.jsonl", "w") as f:
        for name in ("textwrap.py", "shlex.py", "fnmatch.py"):
            f.write(json.dumps({"max_stars_repo_name": "stdlib/small",
                                "max_stars_repo_path": f"lib/{name}",
                                "content": (STDLIB / name).read_text()}) + "\n")
    pq.write_table(pa.Table.from_pylist([{"id": t, "text": pydoc_topic(t)}
                                         for t in ("with", "class", "for")]),
                   local / "docs.parquet")
    base = "memfs://bucket/repos"
    for p in sorted(local.rglob("*")):
        if p.is_file():
            STORE[f"{base}/{p.relative_to(local).as_posix()}"] = p.read_bytes()

    local_sources, remote_sources = discover(str(local)), discover(base)
    assert [(s.name, s.kind) for s in local_sources] == [
        ("docs.parquet", "rows"), ("html", "zip"), ("http", "tar"), ("json", "dir"),
        ("stack.jsonl", "rows")]
    assert [(s.name, s.kind) for s in remote_sources] == [
        ("docs.parquet", "rows"), ("html", "zip"), ("http", "tar"), ("json", "files"),
        ("stack.jsonl", "rows")]
    assert ".git/HEAD" not in remote_sources[3].files and "tests/empty.py" in \
        remote_sources[3].files

    def run(sources, out):
        cfg = build_settings(out=str(out), input="in", vocab_size=600, seq_len=1024,
                                code_fraction=None, val_fraction=0.3)
        return build.run(cfg, sources, [])

    a = run(local_sources, tmp_path / "local")
    b = run(remote_sources, tmp_path / "remote")
    assert a["counts"] == b["counts"] and a["counts"]["kept_by_source"]["nl"] == 3
    assert a["counts"]["dropped_by_reason"].get("empty") == 1
    assert [e for e in a["shards"] if not e["path"].startswith("examples/")] == \
        [e for e in b["shards"] if not e["path"].startswith("examples/")]  # tokens: same bytes
    assert (tmp_path / "local" / "tokenizer.model").read_bytes() == \
        (tmp_path / "remote" / "tokenizer.model").read_bytes()

    def rows(out, folder, origin_of):
        table = pa.concat_tables(pq.read_table(p) for p in sorted((out / folder).glob("*")))
        found = table.to_pylist()
        for row in found:
            for f in row.get("files") or [row]:
                if f.get("origin"):
                    f["origin"] = origin_of(f["origin"])
        return found

    def from_local(origin):
        assert origin.startswith(str(local)), origin
        return base + origin[len(str(local)):]

    for folder in ("examples", "files", "drops"):
        want = rows(tmp_path / "local", folder, from_local)
        got = rows(tmp_path / "remote", folder, lambda o: o)
        assert got == want and want, folder
    assert any(f["origin"] == f"{base}/json" for r in rows(tmp_path / "remote", "examples",
                                                           lambda o: o) for f in r["files"])
