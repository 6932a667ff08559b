"""The command line takes every default from the config dataclasses (one source of truth),
and importing it pulls in neither Beam nor torch (``fimpack build`` runs on workers without
torch; ``fimpack infill`` should not wait for Beam)."""
import subprocess
import sys
from dataclasses import fields

from fimpack.cli import _build_parser
from fimpack.config import BuildConfig, build_config as _config
from fimpack.train.config import TrainConfig


def test_build_flags_default_to_build_config():
    args = _build_parser().parse_args(["build", "--out", "OUT"])
    assert _config(args, dedup_only=False) == BuildConfig(out="OUT")
    args = _build_parser().parse_args(["dedup", "--out", "OUT"])
    assert _config(args, dedup_only=True) == BuildConfig(out="OUT", dedup_only=True)


def test_train_flags_default_to_train_config():
    args = vars(_build_parser().parse_args(["train", "--data", "D", "--out", "R"]))
    want = TrainConfig("D", out_dir="R")
    for f in fields(TrainConfig):
        flag = {"data_dir": "data", "out_dir": "out"}.get(f.name, f.name)
        if flag in args:
            assert args[flag] == getattr(want, f.name), f.name


def test_the_cli_imports_neither_beam_nor_torch():
    code = ("import sys, fimpack.cli as c; c._build_parser(); "
            "print(sorted(m for m in ('apache_beam', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_document_flags():
    import pytest

    parse = lambda *flags: _config(_build_parser().parse_args(  # noqa: E731
        ["build", "--out", "OUT", *flags]), dedup_only=False)
    assert parse("--nl-languages", "EN, de,en").filters.nl.languages == ("de", "en")
    assert parse("--no-nl-quality-filter").filters.nl.quality is False
    assert parse("--no-nl-filter").filters.nl is None
    assert parse("--licenses", "off").licenses.policy == "off"
    for bad in ("english", "en,??", ","):
        with pytest.raises(SystemExit):
            parse("--nl-languages", bad)
