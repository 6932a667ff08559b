"""Validation split by size (packing/split.py, stages.ChooseValidation): whole repositories
chosen to meet --val-fraction within a tolerance, deterministic, and flagged when no choice
can."""
from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from fimpack.packing.examples import repo_split
from fimpack.packing.split import TOLERANCE, choose_validation
from fimpack.packing.stages import ChooseValidation
from fimpack.records import CODE, NATURAL_LANGUAGE


def combine(val_fraction, items, workers=2):
    """ChooseValidation as Beam runs it: partial accumulators on WORKERS, merged."""
    fn = ChooseValidation(val_fraction)
    accs = [fn.create_accumulator() for _ in range(workers)]
    for i, item in enumerate(items):
        accs[i % workers] = fn.add_input(accs[i % workers], item)
    return fn.extract_output(fn.merge_accumulators(accs))


def test_many_repositories_meet_the_fraction_within_the_tolerance():
    rng = random.Random(0)
    sizes = {f"repo-{i}": (rng.randint(1_000, 200_000), 0) for i in range(300)}
    choice = choose_validation(sizes, 0.05)
    assert choice.met
    assert abs(choice.fractions[0] - 0.05) <= 0.05 * TOLERANCE
    held = sum(sizes[r][0] for r in choice.held_out) / sum(s[0] for s in sizes.values())
    assert held == choice.fractions[0]
    # the hash alone would miss: it holds out ~5% of the repositories, whatever their size
    by_hash = [r for r in sizes if repo_split(r, 0.05) == "validation"]
    assert set(by_hash) != set(choice.held_out)


def test_one_repository_too_large_is_flagged_not_hidden():
    # the case: one repository holds 47% of the corpus; three small ones the rest
    sizes = {"big": (470, 0), "a": (200, 0), "b": (180, 0), "c": (150, 0)}
    choice = choose_validation(sizes, 0.05)
    assert not choice.met
    assert choice.held_out == ("c",)  # the closest to 5% there is: 15%, not the 47% one
    assert choice.fractions == (0.15, 0.0)


def test_two_repositories_still_give_a_validation_split():
    choice = choose_validation({"a": (100, 0), "b": (900, 0)}, 0.05)
    assert choice.held_out == ("a",) and not choice.met
    assert choose_validation({"a": (100, 0)}, 0.05).held_out == ()  # one: keep it for training
    assert choose_validation({"a": (1, 0), "b": (1, 0)}, 0.0) .held_out == ()


def test_each_source_gets_its_share():
    """Code and documents are balanced apart: the mixture later samples each source alone."""
    rng = random.Random(1)
    sizes = {f"code-{i}": (rng.randint(1_000, 50_000), 0) for i in range(100)}
    sizes |= {f"docs-{i}": (0, rng.randint(100, 5_000)) for i in range(100)}
    choice = choose_validation(sizes, 0.1)
    assert choice.met
    assert all(abs(f - 0.1) <= 0.1 * TOLERANCE for f in choice.fractions)
    assert any(r.startswith("code-") for r in choice.held_out)
    assert any(r.startswith("docs-") for r in choice.held_out)


def test_combine_fn_sums_files_and_ignores_arrival_order():
    rng = random.Random(2)
    items = []
    for i in range(60):
        for k in range(rng.randint(1, 5)):
            items.append((f"r{i}", CODE, rng.randint(100, 10_000)))
        if i % 7 == 0:
            items.append((f"r{i}", NATURAL_LANGUAGE, rng.randint(100, 3_000)))
    one = combine(0.1, items, workers=1)
    shuffled = items[:]
    rng.shuffle(shuffled)
    assert combine(0.1, shuffled, workers=3) == one
    sizes: dict = {}
    for repo, source, chars in items:
        s = sizes.setdefault(repo, [0, 0])
        s[source != CODE] += chars
    assert one == choose_validation({r: tuple(s) for r, s in sizes.items()}, 0.1)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.text("abcdefgh", min_size=1, max_size=6),
                       st.tuples(st.integers(0, 10_000), st.integers(0, 1_000)),
                       min_size=2, max_size=40),
       st.sampled_from([0.01, 0.05, 0.1, 0.3]))
def test_invariants(sizes, fraction):
    if not any(sum(s) for s in sizes.values()):
        sizes = {r: (1, 0) for r in sizes}
    choice = choose_validation(sizes, fraction)
    held = set(choice.held_out)
    assert held and held < set(sizes)                    # never empty, never everything
    assert choice.held_out == tuple(sorted(held))
    assert choose_validation(dict(reversed(list(sizes.items()))), fraction) == choice
    totals = [sum(s[k] for s in sizes.values()) for k in (0, 1)]
    for k in (0, 1):
        got = sum(sizes[r][k] for r in held)
        assert choice.fractions[k] == (got / totals[k] if totals[k] else 0.0)
    within = all(abs(choice.fractions[k] - fraction) <= fraction * TOLERANCE + 1e-12
                 for k in (0, 1) if totals[k])
    assert choice.met == within
    if len(sizes) <= 12 and not choice.met:  # exhaustive: no subset does better
        from itertools import combinations
        names = sorted(sizes)
        for n in range(1, len(names)):
            for c in combinations(names, n):
                fr = [sum(sizes[r][k] for r in c) / totals[k] for k in (0, 1) if totals[k]]
                assert max(abs(f - fraction) for f in fr) > fraction * TOLERANCE


def test_summary_and_report_warn_when_the_fraction_is_missed():
    from fimpack.pipelines.manifest import summary
    from fimpack.report import warnings

    counts = {"input_files": 10, "kept_files": 10, "dropped_files": 0, "dropped_by_reason": {},
              "examples": 4, "sequences": 2, "utilisation": 0.99, "files_split": 0,
              "code_fraction": 1.0, "code_fraction_target": None,
              "tokens_by_source": {"code": 100, "nl": 0},
              "examples_by_split": {"train": 2, "validation": 2},
              "tokens_by_split": {"train": 53, "validation": 47},
              "validation_fraction": 0.47, "validation_fraction_target": 0.05,
              "validation_tolerance": TOLERANCE}
    manifest = {"config": {"val_fraction": 0.05}, "counts": counts,
                "dedup": {}, "timing": {"seconds": 1.0}}
    text = summary(manifest)
    assert "validation fraction" in text and "0.47" in text
    assert "warning: Validation split holds 47.0% of the tokens, not the 5.0% asked" in text
    assert any("Validation split holds 47.0%" in w for w in warnings(manifest))
    counts["validation_fraction"] = 0.055  # within ±20% of 0.05
    assert "warning" not in summary(manifest)
    assert not any("Validation split" in w for w in warnings(manifest))


def test_sizes_are_estimated_tokens_per_repository_then_language():
    from fimpack.packing.stages import estimated_tokens
    from fimpack.records import SourceFile

    ratios = {("repo", "gocmp", CODE): (40_000, 12_000),     # 0.30 tokens per character
              ("language", "go"): (100_000, 27_000),          # 0.27
              ("language", "java"): (200_000, 38_000),        # 0.19
              ("repo", "tiny", CODE): (500, 400)}             # too small a sample to trust
    f = lambda repo, lang: SourceFile(repo, "x", lang, "a" * 1000)  # noqa: E731
    assert estimated_tokens(f("gocmp", "go"), ratios) == 300      # its own ratio
    assert estimated_tokens(f("cobra", "go"), ratios) == 270      # its language's
    assert estimated_tokens(f("tiny", "java"), ratios) == 190     # small sample: language
    assert estimated_tokens(f("x", "rust"), ratios) == round(1000 * 65_000 / 300_000)  # all
    assert estimated_tokens(f("x", "rust"), {}) == 250            # nothing measured: 1/4
