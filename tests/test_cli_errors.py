"""The first hour: every user mistake is one line and a non-zero exit, a failed build writes no
manifest, Ctrl-C stops a build with all its processes, --help shows every default, and an
input that is one repository is built as one."""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from fimpack import cli
from fimpack.errors import MARK, BuildFailed, UserError, user_message
from fimpack.pipelines.sources import discover_input, repository_marker


def fimpack(*args: str, env: dict | None = None, timeout: float = 300):
    """``python -m fimpack ARGS`` as a user runs it: (exit status, stdout, stderr)."""
    proc = subprocess.run([sys.executable, "-m", "fimpack", *args], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})
    return proc.returncode, proc.stdout, proc.stderr


def one_error_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert "Traceback" not in stderr, stderr
    errors = [ln for ln in lines if ln.startswith("fimpack: error: ")]
    assert len(errors) == 1, stderr
    return errors[0]


def test_missing_input_is_one_line(tmp_path):
    rc, _, err = fimpack("build", "--input", str(tmp_path / "nope"), "--out",
                         str(tmp_path / "out"))
    assert rc == 2
    assert "no such file or folder" in one_error_line(err)
    assert not (tmp_path / "out").exists()  # refused before anything started


def test_out_that_is_a_file(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "taken").write_text("not a folder")
    rc, _, err = fimpack("build", "--input", str(tmp_path / "in"), "--out",
                         str(tmp_path / "taken"))
    assert rc == 2
    assert "is an existing file; pass a folder" in one_error_line(err)


@pytest.mark.parametrize("flags, words", [
    (["--vocab-size", "300"], "--vocab-size 300 is too small"),
    (["--val-fraction", "1.5"], "--val-fraction 1.5 is out of range"),
    (["--workers", "0"], "--workers 0 is out of range"),
    (["--licenses", "nosuchfile.txt"], "--licenses nosuchfile.txt: neither"),
])
def test_bad_options_are_refused_before_the_pipeline(tmp_path, flags, words):
    (tmp_path / "in" / "repo").mkdir(parents=True)
    (tmp_path / "in" / "repo" / "a.py").write_text("x = 1\n")
    args = argparse.Namespace(**vars(cli._build_parser().parse_args(
        ["build", "--input", str(tmp_path / "in"), "--out", str(tmp_path / "o"), *flags])))
    from fimpack.preflight import check_build_args
    with pytest.raises(UserError) as caught:
        check_build_args(args, dedup_only=False)
    assert words in caught.value.message


def test_empty_folder_has_its_own_message(tmp_path):
    (tmp_path / "in").mkdir()
    assert cli.main(["build", "--input", str(tmp_path / "in"), "--out",
                     str(tmp_path / "out")]) == 2


def test_debug_shows_the_traceback(tmp_path):
    rc, _, err = fimpack("build", "--input", str(tmp_path / "nope"), "--out",
                         str(tmp_path / "o"), env={"FIMPACK_DEBUG": "1",
                                                   "FIMPACK_SUPERVISED": "test"})
    assert rc != 0 and "Traceback" in err and "UserError" in err


def test_a_wrapped_user_error_keeps_its_line():
    # what a runner makes of a UserError raised in a worker: its text inside another's
    wrapped = RuntimeError(f"Error in bundle 3:\nTraceback ...\n  ...\n{MARK}--vocab-size 400 "
                           "is too small for this corpus: pass a larger --vocab-size\n ...")
    assert user_message(wrapped) == ("--vocab-size 400 is too small for this corpus: pass a "
                                     "larger --vocab-size")
    assert user_message(RuntimeError("a real bug")) is None
    assert user_message(BuildFailed("x")) == "x" and BuildFailed("x").exit_code == 1


def test_vocab_too_small_for_the_corpus_says_how_large():
    from fimpack.packing.tokenizer import train_model_in_fresh_process

    texts = [Path(__file__).read_text(), "".join(chr(c) for c in range(0x4e00, 0x4e00 + 400))]
    with pytest.raises(UserError) as caught:
        train_model_in_fresh_process(texts, 520)
    message = caught.value.message
    assert "--vocab-size 520 is too small for this corpus" in message
    needed = int(message.split("needs ")[1].split()[0])
    assert needed > 520  # the 400 CJK characters alone need pieces of their own


@pytest.mark.slow
def test_all_dropped_writes_a_failure_report_not_a_manifest(tmp_path):
    repo = tmp_path / "in" / "blobs"
    repo.mkdir(parents=True)
    (repo / "a.py").write_bytes(b"\x7fELF\x00\x01\x02\x03" * 50)
    (repo / "b.js").write_bytes(b"\x00\x00\x00binary")
    out = tmp_path / "out"
    rc, _, err = fimpack("build", "--input", str(tmp_path / "in"), "--out", str(out),
                         "--workers", "1", "--input-layout", "repos")
    assert rc == 1
    line = one_error_line(err)
    assert "every one of the 2 input files was dropped (binary 2)" in line
    assert not (out / "manifest.json").exists()
    failed = json.loads((out / "failed-build.json").read_text())
    assert failed["failed"] == "every input file was dropped"
    assert failed["counts"]["dropped_by_reason"] == {"binary": 2}


def test_broken_pipe_is_quiet(tmp_path):
    # inspect writing into a pipe whose reader has gone: exit 0, nothing on stderr
    code = ("import sys, fimpack.cli as c\n"
            "c._dispatch = lambda argv: [print('x' * 100000, flush=True) for _ in range(50)]"
            " and 0\n"
            "sys.exit(c.main(['inspect', 'x']))\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.read(10)
    proc.stdout.close()  # `| head -c 10`
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0
    assert "BrokenPipeError" not in err and "Traceback" not in err


def test_help_shows_every_default():
    parser = cli._build_parser()
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name in ("build", "dedup", "train", "eval", "ablate"):
        sub = subs.choices[name]
        text = sub.format_help()
        formatter = sub._get_formatter()
        for action in sub._actions:
            if not action.option_strings or action.default in (None, False,
                                                               argparse.SUPPRESS):
                continue
            shown = formatter._get_help_string(action) or ""
            assert "default" in shown.lower(), (name, action.dest)
        for flag in ("--vocab-size", "--val-fraction", "--max-file-bytes",
                     "--max-files-per-repo") if name == "build" else ():
            dest = flag[2:].replace("-", "_")
            default = str(sub.get_default(dest))
            joined = " ".join(text.split())
            at = joined.rindex(flag + " ")  # its line in the options, not the usage
            assert f"default: {default}" in joined[at:at + 300], flag


# -- one repository or many ------------------------------------------------------------------

def test_a_folder_with_a_package_manifest_is_one_repository(tmp_path):
    repo = tmp_path / "left-pad"
    (repo / "src").mkdir(parents=True)
    (repo / "dist").mkdir()
    (repo / "package.json").write_text('{"name": "left-pad", "license": "WTFPL"}\n')
    (repo / "src" / "index.ts").write_text("export const pad = (s: string) => s;\n")
    (repo / "dist" / "index.js").write_text("exports.pad = (s) => s;\n")
    assert repository_marker(str(repo)) == "package.json"
    sources, layout = discover_input(str(repo))
    assert layout == "repo"
    assert [(s.name, s.kind, s.location) for s in sources] == [("left-pad", "dir", str(repo))]
    # the override: its subfolders as repositories
    sources, layout = discover_input(str(repo), "repos")
    assert layout == "repos" and sorted(s.name for s in sources) == ["dist", "src"]


def test_a_git_checkout_is_one_repository_and_a_folder_of_them_is_not(tmp_path):
    (tmp_path / "many" / "a" / ".git").mkdir(parents=True)
    (tmp_path / "many" / "b").mkdir()
    assert discover_input(str(tmp_path / "many" / "a"))[1] == "repo"
    sources, layout = discover_input(str(tmp_path / "many"))
    assert layout == "repos" and [s.name for s in sources] == ["a", "b"]


def test_row_files_and_archives_as_input(tmp_path):
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"repo": "r", "path": "a.py", "content": "x = 1\n"}) + "\n")
    sources, layout = discover_input(str(rows))
    assert layout == "rows" and [(s.kind, s.location) for s in sources] == [("rows",
                                                                              str(rows))]
    (tmp_path / "only-rows").mkdir()
    (tmp_path / "only-rows" / "part-0.parquet").write_bytes(b"")
    (tmp_path / "only-rows" / "notes.txt").write_text("x")
    sources, layout = discover_input(str(tmp_path / "only-rows"), "rows")
    assert [s.name for s in sources] == ["part-0.parquet"]
    archive = tmp_path / "pkg-1.0.tar.gz"
    archive.write_bytes(b"")
    sources, layout = discover_input(str(archive))
    assert layout == "repo" and [(s.name, s.kind) for s in sources] == [("pkg-1.0", "tar")]


# -- Ctrl-C ----------------------------------------------------------------------------------

def _marked(mark: str) -> list[int]:
    """Processes whose environment carries MARK: the build's whole tree, whatever its group."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if f"FIMPACK_TEST_MARK={mark}".encode() in f.read().split(b"\0"):
                    with open(f"/proc/{entry}/stat") as s:
                        if s.read().split(")")[-1].split()[0] != "Z":
                            pids.append(int(entry))
        except OSError:
            continue
    return pids


def _parent(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def _marked_build(out, workers: int, processes: int):
    """``fimpack build`` of the embedded corpus in a group of its own (so a test can signal it
    as a terminal signals its foreground group), every process of it marked; returned (with
    its mark) once PROCESSES of them run: the supervisor, the driver and its SDK workers."""
    mark = uuid.uuid4().hex
    proc = subprocess.Popen(
        [sys.executable, "-m", "fimpack", "build", "--out", str(out), "--max-repos", "8",
         "--workers", str(workers), "--vocab-size", "1024"],
        env={**os.environ, "FIMPACK_TEST_MARK": mark}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 240  # a bound on a wait, not a speed assertion
    while len(_marked(mark)) < processes and proc.poll() is None \
            and time.monotonic() < deadline:
        time.sleep(0.2)
    if proc.poll() is not None or len(_marked(mark)) < processes:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail(f"the build did not reach {processes} processes: {proc.communicate()}")
    return proc, mark


@pytest.mark.slow
def test_ctrl_c_stops_the_build_and_every_process(tmp_path):
    out = tmp_path / "out"
    proc, mark = _marked_build(out, workers=2, processes=4)
    try:
        os.killpg(proc.pid, signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "no manifest.json" in stderr
    assert "Traceback" not in stderr, stderr
    for _ in range(20):  # SIGKILLed children are reaped by init a moment later
        if not _marked(mark):
            break
        time.sleep(0.5)
    assert _marked(mark) == []
    assert not (out / "manifest.json").exists()


# -- progress and tables ---------------------------------------------------------------------

def test_train_progress_lines_drive_one_bar(capsys):
    with cli.StepBar(150) as bar:
        bar("step 1/150 loss 8.7943 lr 1.43e-04 135 tok/s")
        bar("step 40/150 loss 6.1000 lr 2.00e-03 1,500 tok/s")
        assert bar.bar.n == 40 and "loss 6.1000" in bar.bar.postfix
        bar("resumed from step 0")  # any other line is written above the bar
    err = capsys.readouterr().err
    assert "resumed from step 0" in err and "40/150" in err


def test_eval_table_is_short_and_has_the_numbers():
    from fimpack.train.evaluate import table
    result = {"model": {"flavor": "tiny", "params": 14259072, "step": 150, "seq_len": 512},
              "loss": {"held_out": True, "all": {"nats_per_token": 5.4321, "tokens": 12000},
                       "code": {"nats_per_token": 5.1, "tokens": 9000}},
              "infill": {"single_line": {"tasks": 10, "exact_match": 0.1,
                                         "exact_match_rstrip": 0.2},
                         "multi_line": {"tasks": 10, "exact_match": 0.0,
                                        "exact_match_rstrip": 0.0}},
              "humaneval": {"single_line": {"tasks": 10, "exact_match": 0.0,
                                            "exact_match_rstrip": 0.1, "pass@1": 0.3}},
              "heldout": {"infilling_loss": {"uniform_psm": {"nats_per_token": 3.25,
                                                             "files": 30}},
                          "repository_context": {"gain": {"nats_per_token": 0.0123,
                                                          "ci95": [0.01, 0.02]}}},
              "seconds": 61.27}
    text = table(result)
    lines = text.splitlines()
    assert len(lines) <= 12 and max(map(len, lines)) < 100
    assert "14,259,072 params" in lines[0]
    assert "loss all (validation)" in text and "5.432 nats/token" in text
    assert "HumanEval single_line" in text and "pass@1 30%" in text
    assert "heldout repository_context.gain" in text and "0.012 nats/token" in text
    assert "heldout infilling_loss.uniform_psm" in text and "files" not in text


def test_inspect_filters_pick_a_multi_file_fim_example():
    from fimpack.inspect import wanted
    doc = {"source": "nl", "files": [{"path": "README.md", "fim": "none"}]}
    plain = {"source": "code", "files": [{"path": "a.py", "fim": "none"},
                                         {"path": "b.py", "fim": "none"}]}
    parts = {"source": "code", "files": [{"path": "a.py", "fim": "psm"},
                                         {"path": "a.py", "fim": "none"}]}  # one file, 2 parts
    multi = {"source": "code", "files": [{"path": "a.py", "fim": "none"},
                                         {"path": "b.py", "fim": "spm"}]}
    pick = [r for r in (doc, plain, parts, multi) if wanted(r, "code", 2, True)]
    assert pick == [multi]
    assert [r for r in (doc, plain) if wanted(r, "nl")] == [doc]


def test_a_tokenizer_without_the_sentinels_is_refused_by_name(tmp_path):
    import io

    import sentencepiece as spm
    from fimpack.preflight import check_vocab
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(["def f(x):\n    return x\n" * 20] * 20), model_writer=model,
        vocab_size=100, hard_vocab_limit=False, control_symbols=["<|fim_prefix|>"],
        minloglevel=2)
    (tmp_path / "plain.model").write_bytes(model.getvalue())
    (tmp_path / "junk.model").write_bytes(b"not a model")
    with pytest.raises(UserError) as caught:
        check_vocab(32000, str(tmp_path / "plain.model"))
    message = caught.value.message
    assert "<|fim_suffix|>, <|fim_middle|>, <|file_separator|>" in message
    assert "<|fim_prefix|>," not in message  # the one it has is not named
    with pytest.raises(UserError, match="is not a sentencepiece model"):
        check_vocab(32000, str(tmp_path / "junk.model"))
    with pytest.raises(UserError, match="no such file"):
        check_vocab(32000, str(tmp_path / "none.model"))


@pytest.mark.slow
def test_a_killed_supervisor_takes_the_build_with_it(tmp_path):
    # SIGKILL cannot be caught: the supervised driver notices its supervisor is gone and
    # stops its own process group, so no build runs on unsupervised
    proc, mark = _marked_build(tmp_path / "out", workers=2, processes=4)
    try:
        proc.kill()  # the supervisor only
        proc.wait()
        for _ in range(60):
            if not _marked(mark):
                break
            time.sleep(0.5)
        assert _marked(mark) == []
    finally:
        for pid in _marked(mark):
            os.kill(pid, signal.SIGKILL)


def test_review_findings_stay_fixed(tmp_path):
    # a remote --licenses file would be read with open(): refused up front, in one line
    from fimpack.preflight import check_build_args
    (tmp_path / "in" / "r").mkdir(parents=True)
    args = cli._build_parser().parse_args(["build", "--input", str(tmp_path / "in"), "--out",
                                           str(tmp_path / "o"), "--licenses", "gs://b/ids"])
    with pytest.raises(UserError, match="pass a local file"):
        check_build_args(args, dedup_only=False)
    # one odd character after an address is no prefix length (it crashed the redactor)
    from fimpack.dedup.pii import redact
    assert redact("host 93.184.216.34/\u00b2")[1] == {"ip": 1}
    # sizes that are all zero: no choice, no crash
    from fimpack.packing.split import choose_validation
    assert choose_validation({"a": (0, 0), "b": (0, 0)}, 0.05).held_out == ()
    assert cli._remote_runner(["build", "--runner", "DataflowRunner"])
    assert not cli._remote_runner(["build", "--runner=prism"])


@pytest.mark.slow
def test_a_child_killed_by_a_signal_is_said_and_its_status_kept(tmp_path):
    # what the kernel's OOM killer does to a build: one line, 128 + the signal
    proc, mark = _marked_build(tmp_path / "out", workers=1, processes=2)
    try:
        child = next(p for p in _marked(mark) if _parent(p) == proc.pid)  # the driver
        os.kill(child, signal.SIGKILL)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 128 + signal.SIGKILL
    assert "killed by signal 9 (SIGKILL)" in stderr


def test_remote_inputs_are_told_by_their_names():
    sources, layout = discover_input("gs://b/in/pkg-1.0.tar.gz")
    assert layout == "repo" and [(s.name, s.kind) for s in sources] == [("pkg-1.0", "tar")]
    sources, layout = discover_input("gs://b/in/rows.parquet")
    assert layout == "rows" and [(s.name, s.kind) for s in sources] == [("rows.parquet",
                                                                          "rows")]
    with pytest.raises(ValueError, match="needs an archive"):
        discover_input("gs://b/in/prefix", "repo")


def test_an_earlier_build_with_other_minhash_settings_is_refused(tmp_path):
    from fimpack.preflight import check_earlier_build
    prev = tmp_path / "prev"
    prev.mkdir()
    (prev / "manifest.json").write_text(json.dumps({
        "records": {"dedup/signatures": [], "dedup/hashes": []},
        "config": {"dedup": {"near": {"num_perm": 256, "ngram": 5}}}}))
    check_earlier_build(str(prev), str(tmp_path / "out"), {"num_perm": 256, "ngram": 5})
    with pytest.raises(UserError, match="built with --num-perm 256, this build has 64"):
        check_earlier_build(str(prev), str(tmp_path / "out"), {"num_perm": 64, "ngram": 5})


def test_a_local_earlier_build_is_refused_for_a_remote_runner():
    from apache_beam.options.pipeline_options import PipelineOptions
    from fimpack.pipelines.runners import check_remote_paths
    options = PipelineOptions(["--runner", "DataflowRunner", "--project", "p", "--region",
                               "r", "--temp_location", "gs://b/tmp"])
    with pytest.raises(UserError, match="--dedup-against /data/prev is on this machine"):
        check_remote_paths(options, "gs://b/in", "gs://b/out", [], ["/data/prev"])
    check_remote_paths(options, "gs://b/in", "gs://b/out", [], ["gs://b/prev"])
