"""Shared fixtures: small corpora made of real open-source files (the Python standard library
installed with this interpreter) plus hand-made edge cases."""
from __future__ import annotations

import io
import os
import shutil
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

STDLIB = Path(sysconfig.get_paths()["stdlib"])


def pydoc_topic(*names: str) -> str:
    """Real English prose that ships with Python: the language reference's topics."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[n] for n in names)


def copy_package(name: str, dest: Path) -> Path:
    """Copy a stdlib package's .py files (no bytecode) to DEST."""
    shutil.copytree(STDLIB / name, dest, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def add_tar_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory) -> Path:
    """Real repositories (three stdlib packages, one as a folder, one as .tar.gz, one as .zip),
    an empty repository, natural-language rows and the usual bad inputs."""
    root = tmp_path_factory.mktemp("corpus")
    copy_package("json", root / "json")
    # A fork: the same package with one file patched. Repository-level near-dedup drops it.
    fork = copy_package("json", root / "json_fork")
    (fork / "tool.py").write_text((fork / "tool.py").read_text() + "\n# patched in the fork\n")
    email = copy_package("email", root / "email")
    # Edge cases inside a real repository.
    (email / "binary.py").write_bytes(b"\x7fELF\x00\x01\x02 not text")
    (email / "latin1.py").write_bytes("caf\u00e9 = 1\n".encode("latin-1"))
    (email / "empty.py").write_bytes(b"")
    (email / "huge.py").write_bytes(b"x = 1\n" * 60_000)  # 360 KB: over the test limit
    (email / "sentinels.py").write_text(
        's = "<|fim_prefix|>a<|fim_suffix|>b<|fim_middle|>c<|file_separator|>"\n')
    (email / "crlf.py").write_bytes(b"a = 1\r\nb = 2\r\n")
    (email / "bom.py").write_bytes("\ufeffname = 'bom'\n".encode("utf-8"))
    (email / "unicode_\u00e9t\u00e9.py").write_text("\u03c0 = 3.14159  # \u00e9t\u00e9 \u2603\n")
    (email / "tabs.py").write_text("if True:\n\tx = 1\n\t\ty = 2\n")
    (email / "copy_of_decoder.py").write_bytes((STDLIB / "json" / "decoder.py").read_bytes())
    (email / "notes.bin").write_bytes(b"\x00\x01")
    os.symlink("/etc/passwd", email / "outside.py")        # never followed out
    os.symlink(".", email / "loop")                          # a symlink loop
    (root / "empty_repo").mkdir()
    with tarfile.open(root / "http.tar.gz", "w:gz") as tar:
        for path in sorted((STDLIB / "http").glob("*.py")):
            tar.add(path, arcname=f"http-main/{path.name}")
        add_tar_member(tar, "../escape.py", b"print('escaped')\n")
        add_tar_member(tar, "/abs.py", b"print('absolute')\n")
    with zipfile.ZipFile(root / "urllib.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted((STDLIB / "urllib").glob("*.py")):
            zf.write(path, f"urllib/{path.name}")
        zf.writestr("../../zip_escape.py", "print('escaped')\n")
    (root / "broken.zip").write_bytes(b"PK\x03\x04 this is not a zip file")
    docs = [
        {"id": "with-statement", "text": pydoc_topic("with")},
        {"id": "short", "text": "too short"},
        {"id": "class-definitions", "text": pydoc_topic("class")},
        {"id": "repetitive", "text": "Natural language document. " * 40},  # nl_repetition
    ]
    import json as _json
    with open(root / "docs.jsonl", "w") as f:
        for d in docs:
            f.write(_json.dumps(d) + "\n")
        f.write("{not json\n")
    return root


@pytest.fixture(scope="session")
def tokenizer():
    """A small sentencepiece model trained on real stdlib code."""
    from fimpack.packing.tokenizer import Tokenizer, train_model

    texts = [p.read_text() for p in sorted((STDLIB / "json").glob("*.py"))
             + sorted((STDLIB / "email").glob("*.py"))]
    return Tokenizer(train_model(texts, vocab_size=800))


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models: a second intra-op thread buys nothing, and on a shared 2-core machine its
    spin-waiting made a test 30x slower under load. Modules that train or run models use it
    (``pytestmark = pytest.mark.usefixtures("one_thread")``)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
