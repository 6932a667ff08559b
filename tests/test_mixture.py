import random

import numpy as np

from fimpack.packing.mixture import Histogram, bucket, keep, plan


def corpus(n_code, n_nl, seed=0):
    rng = random.Random(seed)
    return ([(f"c{i}", "code", rng.randint(50, 8000)) for i in range(n_code)]
            + [(f"n{i}", "nl", rng.randint(100, 4000)) for i in range(n_nl)])


def achieved(examples, decision, seed=0):
    kept = {"code": 0, "nl": 0}
    for eid, source, n in examples:
        if keep(source, bucket(seed, eid), decision):
            kept[source] += n
    return kept["code"] / (kept["code"] + kept["nl"])


def histogram(pairs):
    """The build's combiner over PAIRS, split across two accumulators and merged."""
    fn, pairs = Histogram(), list(pairs)
    halves = [fn.add_inputs(fn.create_accumulator(), part)
              for part in (pairs[::2], pairs[1::2])]
    return fn.extract_output(fn.merge_accumulators(halves))


def hists(examples, seed=0):
    return (histogram((bucket(seed, e), n) for e, s, n in examples if s == "code"),
            histogram((bucket(seed, e), n) for e, s, n in examples if s == "nl"))


def test_fraction_within_one_percent_either_way():
    for n_code, n_nl, target in [(3000, 300, 0.8), (500, 3000, 0.8), (2000, 2000, 0.5),
                                 (4000, 800, 0.9)]:
        ex = corpus(n_code, n_nl)
        d = plan(*hists(ex), target)
        assert abs(achieved(ex, d) - target) < 0.01, (n_code, n_nl, d)


def test_presets_and_no_target():
    ex = corpus(500, 500)
    assert achieved(ex, plan(*hists(ex), 1.0)) == 1.0
    assert plan(*hists(ex), None) == {"cut": None, "below": 1 << 16}
    only_code = corpus(100, 0)
    assert plan(*hists(only_code), 0.8)["cut"] is None  # nothing to mix with: keep it all


def test_sampling_is_deterministic_by_seed():
    ex = corpus(2000, 200)
    a, b = plan(*hists(ex, 1), 0.8), plan(*hists(ex, 1), 0.8)
    assert a == b
    kept1 = {e for e, s, n in ex if keep(s, bucket(1, e), a)}
    kept2 = {e for e, s, n in ex if keep(s, bucket(2, e), plan(*hists(ex, 2), 0.8))}
    assert kept1 != kept2
