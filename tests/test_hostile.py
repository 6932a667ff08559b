"""Hostile input: every case ends as a counted drop with its reason or a correct keep, the
build never crashes, nothing is written outside the output folder, and the manifest accounts
for every input file. One build over all the cases; one test per case."""
import io
import json
import os
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from fimpack import inspect
from fimpack.config import build_settings, Limits
from fimpack.packing.shards import TokenShard
from fimpack.packing.tokenizer import Tokenizer
from fimpack.pipelines import build, outputs
from fimpack.pipelines.ingest import discover

from conftest import STDLIB, add_tar_member, pydoc_topic
from readers import assert_readers_open

pytestmark = pytest.mark.slow

SENTINEL_SOURCE = 'BAD = "<|fim_prefix|>x<|fim_suffix|>y<|fim_middle|>z<|file_separator|>"\n'


def make_corpus(root: Path) -> None:
    r = root / "hostile"
    (r / "deep" / "/".join(f"d{i}" for i in range(40))).mkdir(parents=True)
    (r / "deep" / "/".join(f"d{i}" for i in range(40)) / "leaf.py").write_text("LEAF = 1\n")
    (r / "nul.py").write_bytes(b"x = 1\n\x00\x00y = 2\n")
    (r / "elf.c").write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)))
    (r / "latin1.py").write_bytes("s = 'd\u00e9j\u00e0 vu'\n".encode("latin-1"))
    (r / "utf16.py").write_bytes("x = 1\n".encode("utf-16"))
    (r / "crlf.py").write_bytes(b"a = 1\r\nb = 2\r\n")
    (r / "bom.py").write_bytes("\ufeffa = 'bom'\n".encode("utf-8"))
    (r / "empty.py").write_bytes(b"")
    (r / "blank.py").write_bytes(b"   \n\n\t\n")
    with open(r / "huge.py", "wb") as f:  # 100 MB, sparse: never read, only measured
        f.truncate(100 * 1024 * 1024)
    (r / "minified.js").write_text("var a=" + "1+" * 499_990 + "1;")  # ~1 MB on one line
    (r / "\u00fcnic\u00f6de_\u540d\u524d.py").write_text("NAME = '\u540d\u524d'\n")
    (r / "Case.py").write_text("CASE = 'upper'\n")
    (r / "case.py").write_text("CASE = 'lower'\n")
    (r / "sentinels.py").write_text(SENTINEL_SOURCE)
    (r / "broken.py").write_text("def f(:\n    return ))\nclass\n")
    (r / "cyc_a.py").write_text("from cyc_b import B\nA = 1\n")
    (r / "cyc_b.py").write_text("from cyc_a import A\nB = 2\n")
    (r / "self_import.py").write_text("import self_import\nX = 1\n")
    os.symlink(r / "loop_dir", r / "loop_dir")          # a symlink to itself
    os.symlink("/etc/hostname", r / "outside.py")       # never followed out
    os.mkfifo(r / "fifo.py")
    (r / ".git").mkdir()
    (r / ".git" / "config").write_text("[core]\n")      # VCS metadata: not repository content
    (root / "empty_repo").mkdir()
    many = root / "ten_thousand"
    many.mkdir()
    for i in range(10_000):
        (many / f"m{i:05d}.py").write_text(f"VALUE_{i} = {i} * {i + 7}\n")
    shared = (STDLIB / "textwrap.py").read_text()
    for i in range(1000):  # the same file in 1,000 repositories
        (root / f"copy{i:04d}").mkdir()
        (root / f"copy{i:04d}" / "textwrap.py").write_text(shared)
    with tarfile.open(root / "evil.tar.gz", "w:gz") as tar:
        add_tar_member(tar, "../../escape.py", b"print('escaped')\n")
        add_tar_member(tar, "/etc/abs.py", b"print('abs')\n")
        add_tar_member(tar, "ok.py", b"OK = 1\n")
        link = tarfile.TarInfo("link.py")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    with zipfile.ZipFile(root / "bomb.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("bomb.py", b"0" * 200_000_000)  # 200 MB that compresses to ~200 KB
        zf.writestr("small.py", b"SMALL = 1\n")
    (root / "corrupt.tar.gz").write_bytes(b"\x1f\x8b\x08\x00garbage" * 10)
    with open(root / "rows.jsonl", "w") as f:
        f.write(json.dumps({"repo": "org/rows", "path": "a.py", "content": "ROWS = 1\n"}) + "\n")
        f.write("{this is not json\n")
        f.write(json.dumps(["a", "list"]) + "\n")
        f.write(json.dumps({"repo": "org/rows", "path": "b.py"}) + "\n")
        f.write(json.dumps({"text": pydoc_topic("with")}) + "\n")
    (root / "bad.parquet").write_bytes(b"PAR1 this is not a parquet file PAR1")


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile_in")
    make_corpus(root)
    out = tmp_path_factory.mktemp("hostile_out")
    cfg = build_settings(out=str(out), input=str(root), vocab_size=600, seq_len=2048,
                            code_fraction=None, limits=Limits())
    manifest = build.run(cfg, discover(str(root)), [])
    drops = outputs.read_records(str(out), "drops").to_pylist()
    kept = {}
    for row in inspect.iter_examples(str(out)):
        for f in inspect.as_json(row)["files"]:
            kept.setdefault((row["repo"], f["path"]), []).append(f)
    return root, out, manifest, {(d["repo"], d["path"]): d for d in drops}, drops, kept


def reason(hostile, repo, path):
    return hostile[3][(repo, path)]["reason"]


def content(hostile, repo, path):
    parts = sorted(hostile[5][(repo, path)], key=lambda f: f["part"])
    return "".join(p["content"] for p in parts)


@pytest.mark.parametrize("path,expected", [
    ("nul.py", "binary"), ("elf.c", "binary"), ("latin1.py", "invalid_utf8"),
    ("empty.py", "empty"), ("blank.py", "empty"),  # utf16.py is transcoded: kept
    ("huge.py", "too_large"), ("minified.js", "minified"), ("loop_dir", "symlink"),
    ("outside.py", "symlink"), ("fifo.py", "special_file"),
])
def test_dropped_with_reason(hostile, path, expected):
    assert reason(hostile, "hostile", path) == expected


@pytest.mark.parametrize("path", ["crlf.py", "bom.py", "Case.py", "case.py",
                                  "\u00fcnic\u00f6de_\u540d\u524d.py", "broken.py",
                                  "self_import.py",
                                  "deep/" + "/".join(f"d{i}" for i in range(40)) + "/leaf.py"])
def test_kept_byte_exact(hostile, path):
    root = hostile[0]
    assert content(hostile, "hostile", path).encode() == (root / "hostile" / path).read_bytes()


def test_vcs_metadata_is_not_content(hostile):
    assert not any(p.startswith(".git") for r, p in list(hostile[3]) + list(hostile[5])
                   if r == "hostile")


def test_cyclic_imports_are_packed_both(hostile):
    assert content(hostile, "hostile", "cyc_a.py").startswith("from cyc_b")
    assert content(hostile, "hostile", "cyc_b.py").startswith("from cyc_a")


def test_literal_sentinels_stay_text(hostile):
    _, out, manifest, *_ = hostile
    assert content(hostile, "hostile", "sentinels.py") == SENTINEL_SOURCE
    tok = Tokenizer.load(str(out / "tokenizer.model"))
    control = set(tok.control_ids.values())
    for parquet in sorted((out / "examples").glob("*.parquet")):
        rows = pq.read_table(parquet).to_pylist()
        shard = TokenShard.open(str(out / "tokens" / parquet.stem))
        for i, row in enumerate(rows):
            ids = shard.sequence(i)
            assert sum(int(t) in control for t in ids) == sum(
                p["kind"] == "sentinel" for p in row["pieces"])


def test_archive_escapes_are_never_extracted(hostile):
    root = hostile[0]
    assert reason(hostile, "evil", "../../escape.py") == "unsafe_path"
    assert reason(hostile, "evil", "/etc/abs.py") == "unsafe_path"
    assert reason(hostile, "evil", "link.py") == "symlink"
    assert content(hostile, "evil", "ok.py") == "OK = 1\n"
    assert not (root.parent / "escape.py").exists() and not (root / "escape.py").exists()


def test_decompression_bomb_is_bounded(hostile):
    assert reason(hostile, "bomb", "bomb.py") == "too_large"
    assert content(hostile, "bomb", "small.py") == "SMALL = 1\n"


def test_corrupt_archive_and_row_files(hostile):
    assert reason(hostile, "corrupt", "") == "corrupt_archive"
    assert reason(hostile, "bad.parquet", "") == "corrupt_row_file"
    rows = [d for d in hostile[4] if d["repo"] == "rows.jsonl"]
    assert sorted(d["reason"] for d in rows) == ["malformed_row"] * 3
    assert content(hostile, "org/rows", "a.py") == "ROWS = 1\n"


def test_ten_thousand_file_repository(hostile):
    kept = [k for k in hostile[5] if k[0] == "ten_thousand"]
    dropped = [k for k in hostile[3] if k[0] == "ten_thousand"]
    assert len(kept) + len(dropped) == 10_000
    assert len(kept) >= 9_990


def test_one_file_in_a_thousand_repositories(hostile):
    kept = [k for k in hostile[5] if k[0].startswith("copy")]
    dropped = [hostile[3][k]["reason"] for k in hostile[3] if k[0].startswith("copy")]
    assert kept == [("copy0000", "textwrap.py")]
    assert len(dropped) == 999
    assert set(dropped) <= {"near_duplicate_repo", "exact_duplicate"}


def test_empty_repository_contributes_nothing(hostile):
    assert not any(k[0] == "empty_repo" for k in list(hostile[3]) + list(hostile[5]))


def test_default_val_fraction_holds_a_repository_out_and_outputs_open(hostile, tmp_path):
    """At the default --val-fraction 0.05 the split hash holds none of these repositories out;
    the build holds one out anyway, and no empty shard is written for either reader."""
    root, out, manifest, *_ = hostile
    rows = assert_readers_open(str(out), tmp_path)
    assert rows.get("validation", 0) > 0 and rows["train"] > 0


def test_every_input_file_is_accounted_for(hostile):
    root, out, manifest, drops, drop_rows, kept = hostile
    c = manifest["counts"]
    assert c["input_files"] == c["kept_files"] + c["dropped_files"]
    assert c["dropped_files"] == len(drop_rows) and c["kept_files"] == len(kept)
    assert sum(c["dropped_by_reason"].values()) == c["dropped_files"]
    assert not set(drops) & set(kept)
    # Every entry under each folder repository (not .git) is either kept or dropped.
    for repo_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink()):
        for dirpath, dirnames, filenames in os.walk(repo_dir):
            dirnames[:] = [d for d in dirnames if d != ".git"
                           and not os.path.islink(os.path.join(dirpath, d))]
            names = filenames + [d for d in os.listdir(dirpath)
                                 if os.path.islink(os.path.join(dirpath, d))
                                 and os.path.isdir(os.path.join(dirpath, d))]
            for name in names:
                rel = os.path.relpath(os.path.join(dirpath, name), repo_dir).replace(os.sep, "/")
                key = (repo_dir.name, rel)
                assert key in drops or key in kept, key
    # Nothing was written outside the output folder.
    assert sorted(p.name for p in root.parent.iterdir() if p.name.startswith("escape")) == []
