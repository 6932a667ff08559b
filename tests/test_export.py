"""``fimpack export`` to transformers and transformers Gemma folders loaded back: the same ids
on real files, the same logits, the same greedy continuation, the same eval numbers."""
import json
import os
import re
import warnings
import sysconfig
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import torch

from fimpack.cli import main as cli
from fimpack.records import SENTINELS
from fimpack.train import evaluate as ev
from fimpack.train.export import NotExportable, transformers_config
from fimpack.train.infill import fim_prompt
from fimpack.train.runs import fimpack_config, load_run
from fimpack.train.trainer import train
from test_eval import make_build

transformers = pytest.importorskip("transformers")
STDLIB = Path(sysconfig.get_paths()["stdlib"])
INJECTIONS = [
    's = "<|fim_prefix|>a<|fim_suffix|>b<|fim_middle|>c<|file_separator|>"\n',
    "<s></s><pad><unk> <|fim_prefix|><|fim_prefix|>|>",
    "x<|fim_middle|", "  \t\r\n\u00e9\U0001F600 1234567890 \u2581 \u2581\u2581x",
]


def real_files(n: int) -> list[str]:
    """N real source files from the standard library, in a fixed order."""
    out = []
    for path in sorted(STDLIB.rglob("*.py")):
        if "test" in path.parts or "site-packages" in path.parts:
            continue
        try:
            out.append(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, OSError):
            continue
        if len(out) == n:
            break
    return out


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    build = make_build(tmp_path_factory.mktemp("build"))
    out = str(tmp_path_factory.mktemp("run"))
    # steps enough that every norm weight moved off its zero init (a swapped norm would show)
    train(build, "debug", 12, out, seq_len=64, batch_size=4, lr=3e-3, warmup=2,
          packing="stream")
    return out


@pytest.fixture(scope="module")
def exported(run_dir, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("hf"))
    assert cli(["export", run_dir, "--out", out]) == 0
    return out


def test_exported_tokenizer_gives_fimpack_ids(run_dir, exported):
    tok = load_run(run_dir).tokenizer
    hf = transformers.AutoTokenizer.from_pretrained(exported)
    files = real_files(250)
    assert len(files) == 250
    for text in files + INJECTIONS:
        ids = tok.encode_text(text)
        assert hf(text, add_special_tokens=False)["input_ids"] == ids
        assert hf(text)["input_ids"] == [tok.bos_id] + ids  # examples start with bos
        assert hf.decode(ids) == tok.decode(ids)  # == text, unless it holds U+2581 itself
    # the sentinels are special tokens with fimpack's ids; literals in text stay text
    assert {s: hf.convert_tokens_to_ids(s) for s in SENTINELS} == tok.control_ids
    assert not set(hf(INJECTIONS[0])["input_ids"]) & set(tok.control_ids.values())
    assert (hf.bos_token_id, hf.eos_token_id, hf.pad_token_id) == (tok.bos_id, tok.eos_id,
                                                                    tok.pad_id)


def test_exported_model_gives_fimpack_logits_and_greedy_continuation(run_dir, exported):
    run = load_run(run_dir)
    hf = transformers.AutoModelForCausalLM.from_pretrained(exported).eval()
    assert type(hf).__name__ == "GemmaForCausalLM"
    text = (STDLIB / "colorsys.py").read_text()
    ids = torch.tensor([[run.tokenizer.bos_id] + run.tokenizer.encode_text(text)[:200]])
    with torch.no_grad():
        diff = (run.model(ids) - hf(ids).logits).abs().max().item()
    assert diff <= 1e-5
    prompt = fim_prompt(run.tokenizer, "def rgb_to_hsv(r, g, b):\n    ", "\n", "colorsys.py")
    ours, _ = run.model.generate(prompt, 16, run.stop_ids)
    theirs = hf.generate(torch.tensor([prompt]), max_new_tokens=16)[0, len(prompt):].tolist()
    stops = set(run.stop_ids)
    assert theirs[:len(ours)] == ours and (len(theirs) == len(ours) or theirs[-1] in stops)


def test_eval_reads_an_exported_folder_as_it_reads_the_run(run_dir, exported):
    build = json.load(open(os.path.join(run_dir, "config.json")))["train"]["data_dir"]
    options = dict(infill_tasks=0, humaneval_tasks_per_kind=0, metric_files=0)
    a = ev.evaluate(run_dir, build, **options)["loss"]
    b = ev.evaluate(exported, build, **options)["loss"]
    for group in ev.LOSS_GROUPS:
        assert a[group]["nats_per_token"] == pytest.approx(b[group]["nats_per_token"], abs=1e-5)


def test_a_transformers_gemma_loads_into_fimpack(tmp_path, run_dir):
    tok = load_run(run_dir).tokenizer
    config = transformers.GemmaConfig(
        vocab_size=tok.vocab_size, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=256,
        bos_token_id=tok.bos_id, eos_token_id=tok.eos_id, pad_token_id=tok.pad_id)
    torch.manual_seed(0)
    hf = transformers.GemmaForCausalLM(config).eval()
    with torch.no_grad():
        for p in hf.parameters():  # norms too: a swapped norm would change the logits
            p.normal_(0, 0.1)
    hf.save_pretrained(tmp_path)
    (tmp_path / "tokenizer.model").write_bytes(tok.proto)
    run = load_run(str(tmp_path))
    assert run.seq_len == 256 and run.flavor.startswith("transformers")
    ids = torch.tensor([[tok.bos_id] + tok.encode_text((STDLIB / "bisect.py").read_text())[:150]])
    with torch.no_grad():
        assert (run.model(ids) - hf(ids).logits).abs().max().item() <= 1e-5


def test_what_transformers_gemma_cannot_hold_is_refused(run_dir):
    run = load_run(run_dir)
    capped = type(run.model.config)(**{**run.model.config.__dict__, "final_softcap": 30.0})
    with pytest.raises(NotExportable, match="soft-capped"):
        transformers_config(capped, run.tokenizer, 64)
    with pytest.raises(NotExportable, match="model_type 'llama'"):
        fimpack_config({"model_type": "llama"})
    with pytest.raises(NotExportable, match="activation 'gelu'"):
        fimpack_config({"model_type": "gemma", "hidden_act": "gelu"})


def readme_snippets() -> list[str]:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    section = readme.split("## Use with other tools", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_readme_snippets_run(run_dir, exported, tmp_path, monkeypatch, capsys):
    snippets = readme_snippets()
    assert len(snippets) == 3
    build = json.load(open(os.path.join(run_dir, "config.json")))["train"]["data_dir"]
    monkeypatch.chdir(tmp_path)  # Megatron's index cache lands here
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    for code in snippets:
        assert '"demo/corpus"' in code or '"demo/hf"' in code
        code = code.replace('"demo/corpus"', repr(build)).replace('"demo/hf"', repr(exported))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Megatron: "Transformer Engine ... not installed"
            exec(compile(code, "README.md", "exec"), {"__name__": "readme"})
    out = capsys.readouterr().out.splitlines()
    first = pq.read_table(os.path.join(build, "examples")).filter(
        pc.equal(pq.read_table(os.path.join(build, "examples"))["split"], "train"))
    assert out[0].split()[:2] == [first["id"][0].as_py(), str(first["num_tokens"][0].as_py())]
    assert out[1].split()[0] == str(first.num_rows)  # Megatron: one sequence per example
    assert "'tokens': (512,)" in out[2] and "'labels': (512,)" in out[2]
    assert out[3].startswith("'") and len(out) == 4  # the middle the model wrote


def test_exported_files_share_one_mode(exported):
    # safetensors writes through a private temporary file (0600); the folder is shared whole
    umask = os.umask(0)
    os.umask(umask)
    modes = {name: os.stat(os.path.join(exported, name)).st_mode & 0o777
             for name in os.listdir(exported)}
    assert "model.safetensors" in modes
    assert set(modes.values()) == {0o666 & ~umask}, modes
