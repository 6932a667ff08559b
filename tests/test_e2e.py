"""build -> inspect -> train through the command line, as a user runs it."""
import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def fimpack(*args, **kw):
    return subprocess.run([sys.executable, "-m", "fimpack", *map(str, args)], check=True,
                          capture_output=True, text=True, timeout=600, **kw)


def test_build_inspect_train(corpus_dir, tmp_path):
    out, run = tmp_path / "out", tmp_path / "run"
    build = fimpack("build", "--input", corpus_dir, "--out", out, "--vocab-size", 1200,
                    "--max-file-bytes", 200_000, "--workers", 2)
    assert "input files" in build.stdout
    assert "fimpack.ingest: read email" in build.stderr  # progress is visible
    manifest = json.loads((out / "manifest.json").read_text())
    rows = [json.loads(line) for line in fimpack("inspect", out, "--json").stdout.splitlines()]
    assert len(rows) == manifest["counts"]["examples"]
    assert sum(len(r["files"]) for r in rows) == manifest["counts"]["kept_files"]
    shown = fimpack("inspect", out, "--example", rows[0]["id"]).stdout
    assert rows[0]["files"][0]["path"] in shown

    fimpack("train", "--data", out, "--flavor", "debug", "--steps", 40, "--out", run,
            "--seq-len", 128, "--batch-size", 8, "--ckpt-every", 20)
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(40))
    assert all(r["tokens_per_s"] > 0 for r in log)
    first = sum(r["loss"] for r in log[:5]) / 5
    last = sum(r["loss"] for r in log[-5:]) / 5
    assert last < first - 0.5, (first, last)
    assert (run / "ckpt.pt").exists()


def test_unknown_flags_reach_beam(corpus_dir, tmp_path):
    """A flag fimpack does not know is a Beam pipeline option, not an error."""
    out = tmp_path / "out"
    fimpack("build", "--input", corpus_dir, "--out", out, "--vocab-size", 800,
            "--max-file-bytes", 200_000, "--runner", "FnApiRunner", "--job_name", "fimpack-test")
    assert json.loads((out / "manifest.json").read_text())["counts"]["examples"] > 0
    with pytest.raises(subprocess.CalledProcessError) as err:
        fimpack("train", "--data", out, "--flavor", "debug", "--steps", 1, "--out",
                tmp_path / "r", "--no-such-flag")
    assert "unrecognized arguments" in err.value.stderr


def test_portable_runner_gives_the_same_shards(corpus_dir, tmp_path):
    """The embedded job server runs the same pipeline through the portability API."""
    outs = []
    for name, extra in (("fnapi", []), ("portable", ["--runner", "PortableRunner",
                                                     "--job_endpoint", "embed",
                                                     "--environment_type", "LOOPBACK"])):
        out = tmp_path / name
        fimpack("build", "--input", corpus_dir, "--out", out, "--vocab-size", 800,
                "--max-file-bytes", 200_000, "--seq-len", 2048, *extra)
        outs.append(out)
    files = sorted(p.relative_to(outs[0]) for p in outs[0].rglob("*")
                   if p.is_file() and p.name != "manifest.json")
    assert any(str(f).endswith(".bin") for f in files)
    for rel in files:
        assert (outs[0] / rel).read_bytes() == (outs[1] / rel).read_bytes(), rel
