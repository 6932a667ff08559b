"""One source for every option: each command's flags are its config dataclasses' fields. Every
flag changes exactly one field (the one it names), every field has a flag (but the few below,
each with its reason), and with no flags given the CLI's config equals the library's defaults,
field by field."""
from __future__ import annotations

import argparse
import inspect
from dataclasses import fields, is_dataclass, replace

import pytest

from fimpack import config
from fimpack.cli import _build_parser
from fimpack.config import (BuildConfig, PackConfig, build_config, build_settings, setting_path,
                            with_settings)
from fimpack.options import from_args
from fimpack.train.config import AblateConfig, EvalConfig, InfillConfig, TrainConfig

# Deliberate exceptions, each with its reason.
FIELDS_WITHOUT_FLAG = {
    "BuildConfig.dedup_only": "set by the command: `fimpack dedup`",
    "NearDedupConfig.seed": "fixed: MinHash signatures compare only under one seed, and "
                            "--dedup-against compares them with earlier builds'",
    "QualityConfig.generated_marker_lines": "derived: 0 when --keep-generated keeps "
                                            "generated files (build_config)",
    "NLConfig.top_ngram_bounds": "Gopher's table of (n, share) pairs: no one-value flag",
    "NLConfig.duplicate_ngram_bounds": "Gopher's table of (n, share) pairs: no one-value flag",
}
FLAGS_WITHOUT_FIELD = {
    "--preset": "sets several fields (config.PRESETS); a flag given still wins",
    "--input-layout": "how --input is read (cli.input_sources), not a setting of the build",
    "--verbose": "logging only",
}


def leaves(obj, path: str = "", owner: str = "") -> dict[str, tuple[str, object]]:
    """dotted path -> (Class.field, value) of every field of a config, nested configs too
    (a nested config that is None is one leaf)."""
    out = {}
    for f in fields(obj):
        value, where = getattr(obj, f.name), f"{type(obj).__name__}.{f.name}"
        if is_dataclass(value):
            out[path + f.name] = (where, "<config>")
            out.update(leaves(value, f"{path}{f.name}.", where))
        else:
            out[path + f.name] = (where, value)
    return out


def assert_same(got, want) -> None:
    a, b = leaves(got), leaves(want)
    assert a.keys() == b.keys()
    assert [p for p in a if a[p] != b[p]] == [], {p: (a[p][1], b[p][1]) for p in a
                                                   if a[p] != b[p]}


def subparser(name: str) -> argparse.ArgumentParser:
    subs = next(a for a in _build_parser()._actions
                if isinstance(a, argparse._SubParsersAction))
    return subs.choices[name]


def other_value(action: argparse.Action) -> list[str]:
    """Words that give ACTION's flag a value other than its default."""
    if action.nargs == 0:  # store_true
        return []
    if action.choices:
        return [next(c for c in action.choices if c != action.default and c not in
                     ("best", "codegemma", "mixed"))]
    if action.dest == "keep_generated":
        return ["vendored"]
    if action.dest == "nl_languages":
        return ["de"]
    if action.type in (int, float):
        base = action.default if action.default is not None else 3
        return [str(action.type(base) + 1 if action.type is int else base * 2 + 0.5)]
    return ["other-value"]


def flag_effects(command: str, required: list[str], to_config):
    """{flag: the dotted paths of the config fields its non-default value changes}."""
    parser = subparser(command)
    base = to_config(parser.parse_args(required))
    effects = {}
    for action in parser._actions:
        if action.dest == "help":
            continue
        if not action.option_strings:  # a positional: the run folder, given as RUN
            flag, argv = action.dest, ["OTHER" if w == "RUN" else w for w in required]
        else:
            flag = action.option_strings[-1]
            argv = [*required, flag, *other_value(action)]
        got = to_config(parser.parse_args(argv))
        a, b = leaves(got) if not isinstance(got, tuple) else _joined(got), \
            leaves(base) if not isinstance(base, tuple) else _joined(base)
        effects[flag] = {p for p in a.keys() | b.keys() if a.get(p) != b.get(p)}
    return effects, base


def _joined(configs: tuple) -> dict:
    return {f"{i}.{p}": v for i, c in enumerate(configs) for p, v in leaves(c).items()}


def check_one_field_per_flag(effects: dict, base) -> set[str]:
    """Every flag changes one field (and what lies under it), or is a listed exception; the
    Class.field names that some flag sets."""
    names = leaves(base) if not isinstance(base, tuple) else _joined(base)
    covered = set()
    for flag, changed in effects.items():
        if flag in FLAGS_WITHOUT_FIELD:
            continue
        assert changed, f"{flag} changes no field"
        root = min(changed, key=len)
        assert all(p == root or p.startswith(root + ".") for p in changed), (flag, changed)
        covered.add(names[root][0])
    return covered


def without_flag(base, covered: set[str]) -> set[str]:
    names = leaves(base) if not isinstance(base, tuple) else _joined(base)
    # a nested config is covered by its fields' flags; its own name is no setting
    return {where for where, value in names.values() if value != "<config>"} - covered


def test_build_flags_and_fields_match_one_to_one():
    effects, base = flag_effects("build", ["--out", "X"], lambda a: build_config(a, False))
    covered = check_one_field_per_flag(effects, base)
    assert without_flag(base, covered) == set(FIELDS_WITHOUT_FLAG)
    # the switches that turn a whole part off set that field, not one under it
    assert {f: effects[f] and min(effects[f], key=len) for f in
            ("--no-quality-filter", "--no-nl-filter", "--no-decontaminate")} == {
        "--no-quality-filter": "filters.quality", "--no-nl-filter": "filters.nl",
        "--no-decontaminate": "filters.benchmarks"}
    assert build_config(subparser("build").parse_args(["--out", "X", "--no-nl-filter"]),
                        False).filters.nl is None


def test_dedup_flags_are_the_input_and_deduplication_fields():
    effects, base = flag_effects("dedup", ["--out", "X"], lambda a: build_config(a, True))
    covered = check_one_field_per_flag(effects, base)
    groups = {"input", "deduplication"}
    expected = {w for f, (w, v) in leaves(base).items() if v != "<config>"
                and _group(f) in groups} - set(FIELDS_WITHOUT_FLAG)
    assert covered == expected


def _group(path: str) -> str | None:
    """The flag group of a BuildConfig field path (its top-level field's)."""
    top = next(f for f in fields(BuildConfig) if f.name == path.split(".")[0])
    return top.metadata.get("group")


@pytest.mark.parametrize("command, required, cls", [
    ("train", ["--data", "D", "--out", "R"], TrainConfig),
    ("eval", ["RUN", "--data", "D"], EvalConfig),
    ("infill", ["RUN", "--prefix", "p"], InfillConfig),
])
def test_run_commands_flags_and_fields_match_one_to_one(command, required, cls):
    effects, base = flag_effects(command, required, lambda a: from_args(cls, a))
    covered = check_one_field_per_flag(effects, base)
    assert without_flag(base, covered) == set()


def _setting(cfg, name: str):
    for key in setting_path(name):
        cfg = getattr(cfg, key)
    return cfg


def test_ablate_flags_are_its_fields_and_the_builds_input_fields():
    from fimpack.ablate import configs

    # the builds' fields that come from AblateConfig's, left out of the one-to-one check
    derived = ("seed", "seq_len", "vocab_size", "val_fraction", "sample_chars")
    defaults = BuildConfig(out="X")

    def own(args):
        ablate, build = configs(args)
        return ablate, with_settings(build, **{k: _setting(defaults, k) for k in derived})

    effects, base = flag_effects("ablate", ["--out", "X"], own)
    covered = check_one_field_per_flag(effects, base)
    assert {w for w in covered if not w.startswith("AblateConfig.")} == {
        w for f, (w, v) in leaves(base[1]).items() if v != "<config>" and _group(f) == "input"}
    ablate, build = configs(subparser("ablate").parse_args(["--out", "X"]))
    assert {w for w in covered if w.startswith("AblateConfig.")} == {
        f"AblateConfig.{f.name}" for f in fields(AblateConfig)}
    # its flags set the builds' input fields; seed, seq_len, vocabulary, held-out share and
    # tokenizer sample come from the AblateConfig
    assert build == build_settings("X", seed=ablate.seed, seq_len=ablate.seq_len,
                                   vocab_size=ablate.vocab_size, val_fraction=ablate.val_fraction,
                                   sample_chars=ablate.tokenizer_sample_chars)


def test_build_and_dedup_defaults_are_the_library_defaults():
    assert_same(build_config(subparser("build").parse_args(["--out", "X"]), False),
                BuildConfig(out="X"))
    assert_same(build_config(subparser("dedup").parse_args(["--out", "X"]), True),
                BuildConfig(out="X", dedup_only=True))


def test_presets_set_their_fields_and_a_flag_wins():
    parse = subparser("build").parse_args
    cfg = build_config(parse(["--out", "X", "--preset", "repo-32k", "--seq-len", "4096"]),
                       False)
    assert (cfg.pack.seq_len, cfg.pack.partition) == (4096, "repository")
    assert_same(build_config(parse(["--out", "X", "--preset", "codegemma-2b"]), False),
                build_settings("X", code_fraction=1.0, fim_rate=0.9))
    assert build_config(parse(["--out", "X", "--code-fraction", "-1"]),
                        False).mix.code_fraction is None


def test_run_command_defaults_are_the_functions_defaults():
    from fimpack.train import evaluate, infill

    assert_same(from_args(TrainConfig, subparser("train").parse_args(
        ["--data", "D", "--out", "R"])), TrainConfig("D", out_dir="R"))
    got = from_args(EvalConfig, subparser("eval").parse_args(["RUN", "--data", "D"]))
    assert_same(got, EvalConfig("RUN", "D"))
    signature = {**_defaults(evaluate.evaluate), **_defaults(evaluate.main)}
    assert {k: getattr(got, k) for k in signature} == signature
    assert set(signature) == {f.name for f in fields(EvalConfig)} - {"run_dir", "data_dir"}
    inspect.signature(evaluate.main).bind(**vars(got))  # what cmd_eval passes
    got = from_args(InfillConfig, subparser("infill").parse_args(["RUN", "--prefix", "p"]))
    assert_same(got, InfillConfig("RUN", "p"))
    assert {k: getattr(got, k) for k in _defaults(infill.main)} == _defaults(infill.main)
    inspect.signature(infill.main).bind(**vars(got))  # what cmd_infill passes
    from fimpack.ablate import ablate
    assert _defaults(ablate)["metric_files"] == AblateConfig.metric_files


def _defaults(function) -> dict:
    return {k: p.default for k, p in inspect.signature(function).parameters.items()
            if p.default is not inspect.Parameter.empty and k not in ("progress", "bar")}


def test_one_owner_for_each_option_vocabulary():
    from fimpack.dedup import near
    from fimpack.packing import fim, graph, partition, stages

    assert graph.STRATEGIES is config.STRATEGIES
    assert (fim.UNIFORM, fim.SYNTAX, fim.MIXED) == config.FIM_SPLITS
    assert partition.PARTITIONS is config.PARTITIONS and near.KEEP_POLICIES is \
        config.KEEP_POLICIES
    assert inspect.signature(stages.pack_repository).parameters["partition"].default \
        == PackConfig.partition
    choices = {a.dest: a.choices for a in subparser("build")._actions}
    assert (choices["fim_split"], choices["order"], choices["partition"]) == (
        config.FIM_SPLITS, config.ORDERS, config.PARTITIONS)
    assert choices["keep_policy"] == config.KEEP_POLICIES
    assert {a.dest: a.choices for a in subparser("graph")._actions}["strategy"] \
        == config.STRATEGIES
