"""Which repositories are held out for validation: whole repositories, chosen to meet
``--val-fraction`` of the tokens within a tolerance.

**By what measure.** The split has to be known before a repository's examples are made: each
example carries its split, the shards are per split, and the files are tokenised in the same
per-repository step that makes the examples (``stages.PackExamples``). Choosing after
tokenisation would mean a second global pass that moves every example's token ids through a
shuffle to relabel them. So the choice is made on **estimated tokens**: each kept file's
characters times the tokens per character measured on a deterministic sample (one file in 8,
``stages.RATIO_SAMPLE``, tokenised with the build's tokenizer), per repository and source
where the sample is large enough, else per language (``stages.estimated_tokens``). On a
Java-heavy multi-registry corpus whose held-out Go repositories compress worse, characters
alone held out 7.8% of the tokens for 5%, per-language ratios 6.4%, per-repository ratios
4.9% (BENCHMARKS.md, "Validation split by size"). The sizes are summed per repository in
one small ``CombineGlobally`` (``stages.ChooseValidation``), and the manifest records the
fraction achieved in **tokens** (``validation_fraction``).

**Per source.** The code / natural-language mixture (``mixture.py``) later down-samples one
source, the same share of it in each split (``mixture.plan_by_split``). Sizes are therefore
balanced per source: each source present gets ``val_fraction`` of its own tokens (within the
tolerance), so whatever share of a source the mixture keeps, the held-out fraction of the
mixed corpus stays the same.

**How.** Deterministic, with no dependence on input order:

1. Repositories in the order of their split hash (``split_rank``: a fixed pseudo-random order,
   so the held-out set is not chosen by size or name), taking each one that brings the
   held-out sizes closer to the targets (summed relative distance over the sources) and keeps
   every source at or under ``target * (1 + tolerance)``; the pick is good when every source
   is within ``target * (1 ± tolerance)``.
2. If that misses, with at most ``EXACT_UP_TO`` repositories every subset is tried; else the
   hash-order pick and the single repositories are tried. The least relative error wins (ties:
   fewer repositories, then the earlier in hash order).

The validation split is never empty (with ``val_fraction`` > 0 and two or more repositories:
an empty split breaks evaluation and the shard readers) and never everything. When the target
is not met within the tolerance -- too few repositories, or one too large -- ``met`` is false;
the build then warns in its summary and report (``validation_fraction`` in the manifest vs
``val_fraction``). With more than ``EXACT_UP_TO`` repositories "not met" means this search
found no choice, not that none exists.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

from fimpack.packing.examples import split_rank

TOLERANCE = 0.2      # relative: --val-fraction 0.05 is met by 0.04 .. 0.06
EXACT_UP_TO = 16     # repositories for which every subset is tried when the greedy pick misses


@dataclass(frozen=True)
class SplitChoice:
    held_out: tuple[str, ...]          # repositories for validation, sorted
    fractions: tuple[float, ...]       # held-out share of each source's characters
    met: bool                          # every source within the tolerance of the target


def choose_validation(sizes: dict[str, tuple[int, ...]], val_fraction: float,
                      tolerance: float = TOLERANCE) -> SplitChoice:
    """The repositories to hold out. SIZES: {repo: characters per source} (each tuple the
    same length, e.g. (code, natural language))."""
    if not sizes:
        return SplitChoice((), (), val_fraction <= 0)
    width = len(next(iter(sizes.values())))
    totals = [sum(s[k] for s in sizes.values()) for k in range(width)]
    if val_fraction <= 0:
        return SplitChoice((), tuple(0.0 for _ in totals), True)
    if len(sizes) < 2:
        return SplitChoice((), tuple(0.0 for _ in totals), False)
    order = sorted(sizes, key=lambda r: (split_rank(r), r))
    present = [k for k in range(width) if totals[k] > 0]
    if not present:  # nothing has a size (one-character files estimate to 0 tokens)
        return SplitChoice((), tuple(0.0 for _ in totals), False)
    targets = [val_fraction * t for t in totals]

    def fractions(chosen) -> tuple[float, ...]:
        return tuple(sum(sizes[r][k] for r in chosen) / totals[k] if totals[k] else 0.0
                     for k in range(width))

    def error(chosen) -> float:
        f = fractions(chosen)
        return max(abs(f[k] - val_fraction) / val_fraction for k in present)

    def ok(chosen) -> bool:
        return bool(chosen) and len(chosen) < len(sizes) and error(chosen) <= tolerance + 1e-12

    # 1. hash order: take a repository when it brings the held-out sizes closer to the
    # targets (summed relative distance) without passing the upper bound
    held: list[str] = []
    got = [0] * width

    def distance(sizes_held) -> float:
        return sum(abs(sizes_held[k] - targets[k]) / targets[k] for k in present)

    for r in order:
        after = [g + s for g, s in zip(got, sizes[r])]
        if all(after[k] <= targets[k] * (1 + tolerance) for k in range(width)) \
                and distance(after) < distance(got):
            held.append(r)
            got = after
    best = held
    if not ok(best):
        rank = {r: i for i, r in enumerate(order)}
        if len(order) <= EXACT_UP_TO:
            candidates = (list(c) for n in range(1, len(order))
                          for c in combinations(order, n))
        else:
            candidates = [held] + [[r] for r in order]
        best = min((c for c in candidates if c),
                   key=lambda c: (round(error(c), 12), len(c), sorted(rank[r] for r in c)))
    return SplitChoice(tuple(sorted(best)), fractions(best), ok(best))


def achieved(tokens_by_split: dict) -> float | None:
    """The held-out share of the tokens a build wrote (its manifest's ``validation_fraction``)."""
    total = sum(tokens_by_split.values())
    return round(tokens_by_split.get("validation", 0) / total, 6) if total else None


def validation_warning(counts: dict, val_fraction: float) -> str | None:
    """The build summary's and report's warning when the held-out share of the tokens misses
    VAL_FRACTION by more than the tolerance (None when it does not, or nothing is asked)."""
    got = counts.get("validation_fraction")
    if not val_fraction or val_fraction <= 0 or got is None:
        return None
    if abs(got - val_fraction) <= val_fraction * counts.get("validation_tolerance", TOLERANCE):
        return None
    return (f"Validation split holds {got:.1%} of the tokens, not the {val_fraction:.1%} asked "
            f"(±{counts.get('validation_tolerance', TOLERANCE):.0%}): no choice of whole "
            "repositories meets it (too few repositories, or one too large).")
