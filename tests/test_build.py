"""The build end to end on a small real corpus with bad inputs mixed in."""
import hashlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from fimpack import inspect
from fimpack.cli import _build_parser
from fimpack.config import Limits, QualityConfig, build_config, build_settings
from fimpack.dedup.pii import redact
from fimpack.packing.shards import TokenShard
from fimpack.packing.tokenizer import Tokenizer
from fimpack.packing.graph import order_repository
from fimpack.packing.mixture import shard_count
from fimpack.pipelines import build, outputs
from fimpack.records import SPLITS, SourceFile
from fimpack.pipelines.ingest import discover

from conftest import STDLIB
from readers import assert_readers_open


def run_build(corpus_dir: Path, out: Path, **overrides) -> dict:
    settings = dict(out=str(out), input=str(corpus_dir), vocab_size=1000, val_fraction=0.3,
                    limits=Limits(max_file_bytes=200_000), seq_len=2048, shard_tokens=60_000,
                    code_fraction=None)
    cfg = build_settings(**{**settings, **overrides})
    return build.run(cfg, discover(str(corpus_dir)), [])


@pytest.fixture(scope="module")
def built(corpus_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    return out, run_build(corpus_dir, out)


def original_contents(corpus_dir: Path) -> dict:
    """(repo, path) -> text for every file as it sits in the input."""
    found = {}
    for repo in ("json", "email", "json_fork"):
        for p in (corpus_dir / repo).rglob("*"):
            if p.is_file() and not p.is_symlink():
                found[(repo, p.relative_to(corpus_dir / repo).as_posix())] = p.read_bytes()
    with tarfile.open(corpus_dir / "http.tar.gz") as tar:
        for m in tar:
            if m.isfile() and m.name.startswith("http-main/"):
                found[("http", m.name[len("http-main/"):])] = tar.extractfile(m).read()
    with zipfile.ZipFile(corpus_dir / "urllib.zip") as zf:
        for name in zf.namelist():
            if name.startswith("urllib/"):
                found[("urllib", name[len("urllib/"):])] = zf.read(name)
    for line in (corpus_dir / "docs.jsonl").read_text().splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        found[("docs.jsonl", row["id"])] = row["text"].encode()
    return found


def test_counts_add_up_and_every_input_is_accounted(built, corpus_dir):
    out, manifest = built
    c = manifest["counts"]
    assert c["input_files"] == c["kept_files"] + c["dropped_files"]
    assert sum(c["dropped_by_reason"].values()) == c["dropped_files"]
    assert c["documents_by_language"] == {"en": 2}  # the third is nl_repetition
    drops = outputs.read_records(str(out), "drops").to_pylist()
    assert len(drops) == c["dropped_files"]
    reasons = {(d["repo"], d["path"]): d["reason"] for d in drops}
    assert reasons[("email", "binary.py")] == "binary"
    assert reasons[("email", "latin1.py")] == "invalid_utf8"
    assert reasons[("email", "empty.py")] == "empty"
    assert reasons[("email", "huge.py")] == "too_large"
    assert reasons[("email", "outside.py")] == "symlink"
    assert reasons[("email", "loop")] == "symlink"
    assert reasons[("email", "notes.bin")] == "unsupported_language"
    assert reasons[("http", "../escape.py")] == "unsafe_path"
    assert reasons[("http", "/abs.py")] == "unsafe_path"
    assert reasons[("urllib", "../../zip_escape.py")] == "unsafe_path"
    assert reasons[("broken", "")] == "corrupt_archive"
    assert reasons[("docs.jsonl", "short")] == "too_short"
    assert reasons[("docs.jsonl", "repetitive")] == "nl_repetition"
    # decoder.py exists twice; the copy kept is the smallest (repo, path).
    assert reasons[("json", "decoder.py")] == "exact_duplicate"
    fork = {d["path"]: d for d in drops if d["repo"] == "json_fork"}
    assert fork and {d["reason"] for d in fork.values()} == {"near_duplicate_repo"}
    assert {d["detail"] for d in fork.values()} == {"json"}
    clusters = outputs.read_records(str(out), "dedup/clusters").to_pylist()
    assert {(c["level"], c["kind"], c["repo"], c["kept"]) for c in clusters if c["level"] == "repo"} \
        == {("repo", "near", "json", True), ("repo", "near", "json_fork", False)}
    assert manifest["dedup"]["repo-near"] == {"clusters": 1, "members": 2, "dropped": 1,
                                              "keepers": {"smallest": 1}}
    # Every input file of the folder repositories is kept or dropped, never lost.
    kept = {(f["repo"], f["path"]) for f in iter_files(out)}
    for repo in ("json", "email", "json_fork"):
        for p in (corpus_dir / repo).rglob("*"):
            if p.is_symlink() or p.is_file():
                key = (repo, p.relative_to(corpus_dir / repo).as_posix())
                assert (key in kept) != (key in reasons), key
    assert len(kept) == c["kept_files"]


def iter_files(out):
    """Every kept file once, its split parts joined in order."""
    parts = {}
    for row in inspect.iter_examples(str(out)):
        for f in inspect.as_json(row)["files"]:
            parts.setdefault((row["repo"], f["path"]), []).append(f)
    for (repo, _), fs in sorted(parts.items()):
        fs.sort(key=lambda f: f["part"])
        assert [f["part"] for f in fs] == list(range(fs[0]["parts"]))
        assert len({f["redactions"] for f in fs}) == 1  # a file's count, on each of its parts
        yield {**fs[0], "repo": repo, "content": "".join(f["content"] for f in fs)}


def test_fim_round_trip_is_byte_exact_for_every_kept_file(built, corpus_dir):
    out, manifest = built
    originals = original_contents(corpus_dir)
    checked = redacted = 0
    for f in iter_files(out):
        original = originals[(f["repo"], f["path"])]
        if f["redactions"]:  # PII placeholders are the only change, and they are counted
            expected, counts = redact(original.decode("utf-8"))
            assert f["content"] == expected and sum(counts.values()) == f["redactions"]
            redacted += 1
        else:
            assert f["content"].encode("utf-8") == original, f["path"]
        checked += 1
    assert checked == manifest["counts"]["kept_files"] > 40
    assert 0 < redacted == manifest["counts"]["pii_files"] < checked / 2
    assert manifest["counts"]["fim_files"]["psm"] > 0 and manifest["counts"]["fim_files"]["spm"] > 0


def test_literal_sentinels_are_kept_as_text(built):
    """A file containing sentinel strings is kept; token-level checks are below."""
    out, _ = built
    found = [f for f in iter_files(out) if f["path"] == "sentinels.py"]
    assert len(found) == 1
    assert all(s in found[0]["content"] for s in ("<|fim_prefix|>", "<|file_separator|>"))


def test_token_shards_match_examples(built):
    out, manifest = built
    tok = Tokenizer.load(str(out / "tokenizer.model"))
    assert manifest["tokenizer"]["control_ids"] == tok.control_ids
    n_examples = 0
    for parquet in sorted((out / "examples").glob("*.parquet")):
        rows = pq.read_table(parquet).to_pylist()
        prefix = str(out / "tokens" / parquet.name.replace(".parquet", ""))
        shard = TokenShard.open(prefix)
        assert len(shard) == len(rows)
        # Packed sequences: consecutive examples, at most seq_len tokens each.
        starts = np.load(prefix + ".packs.npy")
        assert starts[0] == 0 and starts[-1] == len(rows)
        for s, (a, b) in enumerate(zip(starts[:-1], starts[1:])):
            assert b > a and {rows[i]["sequence"] for i in range(a, b)} == {s}
            assert sum(rows[i]["num_tokens"] for i in range(a, b)) <= 2048
        for i, row in enumerate(rows):
            ids = shard.sequence(i)
            assert len(ids) == row["num_tokens"]
            assert ids[0] == tok.bos_id and ids[-1] == tok.eos_id
            assert tok.decode(ids) == row["text"]
            # Literal sentinel text inside a file is ordinary tokens: control ids appear
            # exactly as often as the structure says.
            control = sum(int(t) in set(tok.control_ids.values()) for t in ids)
            assert control == sum(p["kind"] == "sentinel" for p in row["pieces"])
        n_examples += len(rows)
    assert n_examples == manifest["counts"]["examples"]
    tokens = manifest["counts"]["tokens_by_source"]
    assert tokens["code"] > 0 and tokens["nl"] > 0
    # Several shards per split, named like HF datasets expects.
    names = sorted(p.name for p in (out / "examples").glob("train-*.parquet"))
    assert len(names) > 1 and names[0] == f"train-00000-of-{len(names):05d}.parquet"


def test_split_is_by_repository(built):
    out, _ = built
    splits = {}
    for row in inspect.iter_examples(str(out)):
        splits.setdefault(row["repo"], set()).add(row["split"])
    assert all(len(s) == 1 for s in splits.values())
    assert {s for v in splits.values() for s in v} == {"train", "validation"}


def test_manifest_checksums(built):
    import hashlib
    out, manifest = built
    assert manifest["shards"]
    for entry in manifest["shards"]:
        assert hashlib.sha256((out / entry["path"]).read_bytes()).hexdigest() == entry["sha256"]


def test_deterministic_across_worker_counts(built, corpus_dir, tmp_path):
    out, manifest = built
    out2 = tmp_path / "out2"
    manifest2 = run_build(corpus_dir, out2, workers=2)
    files = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file()
                   and p.name != "manifest.json")
    assert files == sorted(p.relative_to(out2) for p in out2.rglob("*") if p.is_file()
                           and p.name != "manifest.json")
    for rel in files:
        assert (out / rel).read_bytes() == (out2 / rel).read_bytes(), rel
    for m in (manifest, manifest2):
        m.pop("timing"), m["config"].pop("workers"), m["config"].pop("out")
    assert manifest == manifest2


def test_empty_input_reports_clearly(tmp_path, capsys):
    from fimpack.cli import main
    (tmp_path / "in" / "repo").mkdir(parents=True)
    (tmp_path / "in" / "repo" / "blob.bin").write_bytes(b"\x00")
    rc = main(["build", "--input", str(tmp_path / "in"), "--out", str(tmp_path / "out")])
    assert rc == 1
    err = capsys.readouterr().err
    assert "every one of the 1 input files was dropped (unsupported_language 1)" in err
    assert not (tmp_path / "out" / "manifest.json").exists()  # nothing looks complete
    m = json.loads((tmp_path / "out" / "failed-build.json").read_text())
    assert m["counts"]["dropped_by_reason"] == {"unsupported_language": 1}


def test_every_input_file_is_a_kept_row_or_a_drop_with_its_provenance(built, corpus_dir):
    out, manifest = built
    kept = outputs.read_records(str(out), "files").to_pylist()
    drops = outputs.read_records(str(out), "drops").to_pylist()
    assert len(kept) == manifest["counts"]["kept_files"] == manifest["audit"]["file_rows"]
    assert [e["path"] for e in manifest["records"]["files"]] == ["files/files-00000-of-00001.parquet"]
    keys = [(r["repo"], r["path"]) for r in kept + drops if r["path"]]
    assert len(keys) == len(set(keys))  # one outcome per file
    inputs = original_contents(corpus_dir)
    for row in kept:
        data = inputs[(row["repo"], row["path"])]
        assert row["sha256"] == hashlib.sha256(data).hexdigest(), row
        assert row["origin"] and row["parts"] >= 1
    docs = {r["path"]: r for r in kept if r["source"] == "nl"}
    assert {p: (r["natural_language"], r["language"]) for p, r in docs.items()} == {
        "with-statement": ("en", "text"), "class-definitions": ("en", "text")}
    assert all(r["natural_language"] is None for r in kept if r["source"] == "code")


def test_report_is_self_contained(built):
    from fimpack import report
    out, manifest = built
    page = report.build_report(str(out))
    assert page.startswith("<!doctype html>") and "<script" not in page
    assert not re.search(r"""(src|href)\s*=\s*["']?https?:""", page)  # nothing fetched
    assert page.count("<svg") >= 7
    assert "Dependency graph of a repository" in page
    languages = page[page.index("Natural-language documents by language"):]
    assert ">en<" in languages[:languages.index("</svg>")]  # the chart has the English bar
    assert f"{manifest['counts']['examples']}" in page
    # warnings come before the numbers; the matrix draws at most MATRIX_FILES files
    assert page.index("Warnings") < page.index("<table>")
    assert page.count(" imports ") <= report.MATRIX_FILES ** 2
    assert "An example as packed" in page and "<pre" in page


def test_report_tables_answer_questions(built):
    # train/validation and per-repository tables, files counted once, chosen matrices,
    # axes with ticks, numbers with separators
    import pyarrow.parquet as pq
    from fimpack import report
    out, manifest = built
    page = report.build_report(str(out))
    c = manifest["counts"]
    split = page[page.index("Train and validation"):page.index("Repositories (by tokens")]
    for name in ("train", "validation"):
        n = c["examples_by_split"].get(name, 0)
        if n:
            assert f"<td>{name}</td>" in split and f">{n:,}<" in split
    repos = page[page.index("Repositories (by tokens"):]
    repos = repos[:repos.index("</table>")]
    kept = pq.read_table(sorted((out / "files").glob("*.parquet"))).to_pylist()
    for repo in {r["repo"] for r in kept}:
        assert f"<td>{repo}</td>" in repos, repo
    # files by language counts each kept file once, however many parts it was packed in
    chart = page[page.index("Kept files by language"):]
    chart = chart[:chart.index("</svg>")]
    py = sum(1 for r in kept if r["language"] == "python")
    assert f">{py:,}</text>" in chart
    assert page.count("<details") >= 2 and page.count("<details open>") == 1
    assert re.search(r">\d{1,3}(,\d{3})+<", page)  # thousands separators
    assert page.count('text-anchor="middle"') >= 5  # tick labels under the axes


def test_report_ticks_and_numbers():
    from fimpack.report import _num, _ticks
    assert _ticks(10) == [0, 5, 10]
    assert _ticks(1234) == [0, 500, 1000]
    assert _ticks(1.0) == [0, 0.5, 1.0]
    assert _ticks(7) == [0, 2, 4, 6]
    assert _num(1234567) == "1,234,567" and _num(0.5) == "0.5" and _num(2.0) == "2"


def test_report_warnings_say_what_is_wrong_first():
    from fimpack.report import warnings
    manifest = {"config": {"val_fraction": 0.05}, "counts": {
        "examples_by_split": {"train": 10}, "code_fraction": 1.0, "code_fraction_target": 0.8,
        "tokens_by_source": {"code": 100}, "input_files": 100, "dropped_files": 40,
        "dropped_by_reason": {"too_large": 30, "empty": 10}, "files_split": 3,
        "file_parts": 7, "utilisation": 0.9, "files_by_license": {"MIT": 50, "none": 10}}}
    text = " ".join(warnings(manifest))
    for needle in ("validation split is empty", "Code fraction 1.000 misses the 0.8",
                   "no natural-language input", "40% of the input", "'too_large'",
                   "3 files are longer", "utilisation is 90.0%", "10 kept files have no"):
        assert needle in text, needle
    assert warnings({"config": {"val_fraction": 0.0}, "counts": {
        "code_fraction": 0.8, "code_fraction_target": 0.8, "tokens_by_source": {"nl": 1},
        "input_files": 10, "dropped_files": 0, "dropped_by_reason": {}}}) == []


def test_a_failing_file_is_dropped_and_the_build_goes_on(corpus_dir, tmp_path, monkeypatch):
    """An exception on one file drops that file with its reason; everything else builds."""
    import fimpack.dedup.quality as quality
    import fimpack.packing.perfile as build_module

    real_quality, real_format = quality.quality_reason, build_module.file_segments

    def flaky_quality(f, cfg=QualityConfig()):
        if f.path == "tabs.py":
            raise RuntimeError("boom")
        return real_quality(f, cfg)

    def flaky_format(f, *args, **kw):
        if f.path == "scanner.py":
            raise ValueError("cannot pack")
        return real_format(f, *args, **kw)

    monkeypatch.setattr(quality, "quality_reason", flaky_quality)
    monkeypatch.setattr(build_module, "file_segments", flaky_format)
    out = tmp_path / "out"
    manifest = run_build(corpus_dir, out)
    drops = {(d["repo"], d["path"]): d for d in outputs.read_records(str(out), "drops").to_pylist()}
    assert drops[("email", "tabs.py")]["reason"] == "processing_error"
    assert "quality: RuntimeError: boom" in drops[("email", "tabs.py")]["detail"]
    assert drops[("json", "scanner.py")]["reason"] == "processing_error"
    kept = {(f["repo"], f["path"]) for f in iter_files(out)}
    assert any(repo == "json" for repo, _ in kept)
    c = manifest["counts"]
    assert c["input_files"] == c["kept_files"] + c["dropped_files"]
    assert c["dropped_by_reason"]["processing_error"] == 2


@pytest.mark.slow
def test_a_killed_build_restarted_gives_the_uninterrupted_output(built, corpus_dir, tmp_path):
    """Kill a build (every process of it) once it is midway, leave debris as a crash would,
    start it again into the same folder: the output equals an uninterrupted build's, and no
    file under a final name was ever partial."""
    import os
    import signal
    import subprocess
    import sys
    import time

    ref_out = built[0]
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "fimpack", "build", "--input", str(corpus_dir), "--out",
           str(out), "--vocab-size", "1000", "--val-fraction", "0.3", "--max-file-bytes",
           "200000", "--seq-len", "2048", "--shard-tokens", "60000", "--code-fraction", "-1",
           "--workers", "2"]
    # the driver itself, without fimpack's supervisor: what a crash or an OOM kill leaves
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True,
                            env={**os.environ, "FIMPACK_SUPERVISED": "test"})
    deadline = time.time() + 300
    while not (out / "tokenizer.model").exists() and proc.poll() is None:
        assert time.time() < deadline
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and its SDK worker processes
    proc.wait()
    assert not (out / "manifest.json").exists(), "killed too late to test anything"
    for shard in (out / "examples").glob("*.parquet"):  # a final name is a whole file
        pq.read_table(shard)
    (out / "examples").mkdir(exist_ok=True)
    (out / "examples" / "train-00000-of-00002.parquet.tmp-0123abcd").write_bytes(b"PAR1 half")

    assert subprocess.run(cmd, capture_output=True).returncode == 0
    files = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    assert not [f for f in files if ".tmp-" in f.name]
    assert files == sorted(p.relative_to(ref_out) for p in ref_out.rglob("*") if p.is_file())
    for rel in files:
        if rel.name != "manifest.json":
            assert (out / rel).read_bytes() == (ref_out / rel).read_bytes(), rel
    manifest, ref_manifest = (json.loads((o / "manifest.json").read_text())
                              for o in (out, ref_out))
    for m in (manifest, ref_manifest):
        m.pop("timing"), m["config"].pop("workers"), m["config"].pop("out")
    assert manifest == ref_manifest


def test_records_lost_by_the_runner_fail_the_build(corpus_dir, tmp_path, monkeypatch):
    """If a stage receives fewer records than an earlier one sent (as FnApiRunner's
    multi-process mode did on a 200 MB build), the audit on the data catches it:
    the build raises and writes no manifest, instead of finishing with a quiet gap."""
    import fimpack.pipelines.outputs as outputs_module

    real_write = outputs_module.write_shard

    def lossy_write(out, split, index, count, rows, dtype, seq_len, lengths=None):
        if split == "train":  # the last row lost, and with it its length
            rows, lengths = [rows[i] for i in range(len(rows) - 1)], None
        return real_write(out, split, index, count, rows, dtype, seq_len, lengths)

    monkeypatch.setattr(outputs_module, "write_shard", lossy_write)
    with pytest.raises(build.DataLost, match="examples kept but never written to a shard"):
        run_build(corpus_dir, tmp_path / "out")
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_audit_counts_match_on_a_whole_build(built):
    out, manifest = built
    c = manifest["counts"]
    audit = manifest["audit"]
    assert audit["checked"] and audit["input_files"] == c["input_files"]
    assert audit["examples_kept"] == audit["examples_written"] == c["examples"]
    assert audit["examples_made"] == audit["examples_mixed"] >= c["examples"]
    assert audit["code_files_packed"] + audit["documents_packed"] >= c["kept_files"]
    build.audit({"input_files": c["input_files"], "examples_kept": c["examples"],
                 "examples_written": c["examples"]}, manifest)
    # a metric counter alone never fails a build, it advises (tests/test_audit.py)
    section = build.audit({"input_files": c["input_files"] + 8}, manifest)
    assert section["metrics_consistent"] is False and "input_files" in \
        section["metrics_mismatches"]
    assert audit["metrics_consistent"] and audit["files_read"] == c["input_files"]


def test_every_output_opens_in_its_readers(built, tmp_path):
    out, _ = built
    rows = assert_readers_open(str(out), tmp_path)
    assert rows["train"] > 0 and rows["validation"] > 0


def test_shard_names_are_dense_over_the_buckets_that_got_examples():
    names = outputs.dense_shard_names([("train", 7), ("train", 2), ("validation", 4)])
    assert names == {("train", 2): (0, 2), ("train", 7): (1, 2), ("validation", 4): (0, 1)}
    assert shard_count(0, 100) == 0 and shard_count(101, 100) == 2


def test_no_shard_is_empty_and_names_have_no_gaps(built):
    out, manifest = built
    for split in SPLITS:
        entries = [e for e in manifest["shards"] if e["split"] == split]
        names = sorted(e["path"].split("/")[1].split(".")[0] for e in entries
                       if e["path"].startswith("examples/"))
        assert names == [f"{split}-{k:05d}-of-{len(names):05d}" for k in range(len(names))]
        assert names, split  # val_fraction 0.3 holds repositories out
        assert all(e["examples"] > 0 and e["bytes"] > 0 for e in entries)
    assert len([e for e in manifest["shards"] if e["split"] == "train"]) > 4  # several shards
    tokens = manifest["counts"]["tokens_by_split"]  # the achieved share is recorded
    assert manifest["counts"]["validation_fraction"] == round(
        tokens["validation"] / (tokens["train"] + tokens["validation"]), 6)
    assert manifest["counts"]["validation_fraction_target"] == 0.3
    for name in ("drops", "dedup/clusters"):
        files = manifest["records"][name]
        assert files and all(e["rows"] > 0 for e in files)
        assert sorted(p.relative_to(out).as_posix() for p in (out / name).iterdir()) == \
            [e["path"] for e in files]




def test_a_runner_without_metrics_fails_loudly_unless_allowed(built):
    """No metrics channel: the build's counts are checked against the files written only,
    and the build stops with Unaudited (no manifest) unless the user accepts that."""
    import copy

    _, manifest = built
    with pytest.raises(build.Unaudited, match="--allow-unaudited"):
        build.audit({}, manifest)
    section = build.audit({}, manifest, allow_unaudited=True)
    assert section["checked"] is False and section["data_checked"] is True
    assert section["examples_in_shards"] == manifest["counts"]["examples"]
    assert section["drop_rows"] == manifest["counts"]["dropped_files"]
    # the data-side ledger alone still catches a file that lost rows
    short = copy.deepcopy(manifest)
    short["records"]["drops"][0]["rows"] -= 1
    with pytest.raises(build.DataLost, match="drops counted but never written"):
        build.audit({}, short, allow_unaudited=True)


def test_repository_preset_packs_whole_repositories_in_dependency_order(corpus_dir, tmp_path):
    # repo-32k: each repository that fits is one long example, its files in the graph's
    # order; the same shards, manifest and byte-exact round trip as any build
    args = _build_parser().parse_args(["build", "--out", str(tmp_path), "--preset", "repo-32k"])
    cfg = build_config(args, dedup_only=False)
    assert (cfg.pack.seq_len, cfg.pack.partition) == (32768, "repository")
    manifest = run_build(corpus_dir, tmp_path, seq_len=cfg.pack.seq_len,
                         partition=cfg.pack.partition)
    assert manifest["config"]["pack"]["partition"] == "repository"
    rows = [r for r in inspect.iter_examples(str(tmp_path)) if r["source"] == "code"]
    json_rows = [r for r in rows if r["repo"] == "json"]
    assert len(json_rows) == 1  # the whole package, ~20K tokens at this vocabulary
    paths = [f["path"] for f in json_rows[0]["files"]]
    files = [SourceFile("json", p, "python", (corpus_dir / "json" / p).read_text())
             for p in sorted(paths)]
    assert paths == order_repository(files).order  # CodeGemma's dependency order
    originals = original_contents(corpus_dir)
    kept = 0
    for f in iter_files(tmp_path):
        if not f["redactions"]:
            assert f["content"].encode("utf-8") == originals[(f["repo"], f["path"])]
        kept += 1
    assert kept == manifest["counts"]["kept_files"]
    assert_readers_open(str(tmp_path), tmp_path / "cache")


def test_provenance_maps_tokens_back_to_file_lines(built, corpus_dir, capsys):
    from fimpack.cli import main as cli
    from fimpack.provenance import locate
    from fimpack.records import PROVENANCE_FIELDS

    out, manifest = built
    tok = Tokenizer.load(str(out / "tokenizer.model"))
    originals = original_contents(corpus_dir)
    shards = [e["path"][len("tokens/"):-len(".bin")] for e in manifest["shards"]
              if e["path"].endswith(".bin")]
    checked = 0
    seen = set()
    for shard in shards:
        n = TokenShard.open(str(out / "tokens" / shard)).tokens.shape[0]
        for index in range(0, n, max(1, n // 150)):
            a = locate(str(out), shard, index, tok)
            seen.add(a["kind"])
            assert set(a) <= set(PROVENANCE_FIELDS), set(a) - set(PROVENANCE_FIELDS)
            if "line" not in a or a["piece"].startswith("<0x"):
                continue
            original = originals.get((a["repo"], a["path"]))
            row = next(r for r in inspect.iter_examples(str(out)) if r["id"] == a["example"])
            entry = next(f for f in row["files"] if f["path"] == a["path"])
            if original is None or entry["redactions"]:
                continue
            text = original.decode("utf-8")
            piece = tok.sp.decode([a["id"]])
            assert text[a["char_offset"]:a["char_offset"] + len(piece)] == piece, a
            lines = text.split("\n")
            assert lines[a["line"] - 1][a["column"] - 1:].startswith(piece.split("\n")[0]), a
            assert entry["sha256"] == hashlib.sha256(original).hexdigest()
            checked += 1
    assert checked > 100 and {"prefix", "middle", "suffix", "content"} <= seen
    assert cli(["provenance", str(out), "--token", f"{shards[0]}:1"]) == 0
    assert json.loads(capsys.readouterr().out)["token"] == 1


@pytest.mark.skipif(shutil.which("chromium") is None,
                    reason="Debian's chromium is not installed (make report-shots installs it)")
def test_report_renders_in_a_real_browser(built, tmp_path):
    # Debian's Chromium, headless, screenshots the report: the page renders, it is not blank,
    # and the warnings box (its #fff4e5 background) is at the top, before any chart
    from fimpack import report
    out, _ = built
    page = report.main(str(out), str(tmp_path / "report.html"))
    shot = screenshot(page, tmp_path / "report.png")
    from PIL import Image
    img = Image.open(shot).convert("RGB")
    assert img.size == (1200, 2600)
    colours = img.getcolors(maxcolors=1 << 20)
    assert len(colours) > 50  # text, bars, matrix: not a blank page
    top = img.crop((0, 0, 1200, 500))
    assert (255, 244, 229) in {c for _, c in top.getcolors(maxcolors=1 << 20)}


def screenshot(page: str, png) -> str:
    """Chromium's headless screenshot of PAGE. Chromium starts helper processes (zygote,
    renderer, GPU): it runs in its own process group, killed whole however this ends."""
    proc = subprocess.Popen(["chromium", "--headless=new", "--no-sandbox", "--disable-gpu",
                             "--hide-scrollbars", "--window-size=1200,2600",
                             f"--screenshot={png}", f"file://{page}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        assert proc.wait(timeout=120) == 0
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return str(png)


@pytest.mark.slow
def test_a_given_tokenizer_gives_the_same_shards_as_the_trained_one(built, corpus_dir,
                                                                     tmp_path):
    # --tokenizer with the model the first build trained: byte-identical shards and examples
    out, manifest = built
    again = tmp_path / "again"
    manifest2 = run_build(corpus_dir, again, model=str(out / "tokenizer.model"))
    assert manifest2["tokenizer"]["sha256"] == manifest["tokenizer"]["sha256"]
    for sub in ("tokens", "examples"):
        names = sorted(p.name for p in (out / sub).iterdir())
        assert names == sorted(p.name for p in (again / sub).iterdir())
        for name in names:
            assert (out / sub / name).read_bytes() == (again / sub / name).read_bytes(), name
