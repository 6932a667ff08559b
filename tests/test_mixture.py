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
    assert plan(*hists(ex), None) == (None, 1 << 16)
    only_code = corpus(100, 0)
    assert plan(*hists(only_code), 0.8).cut is None  # nothing to mix with: keep it all


def test_sampling_is_deterministic_by_seed():
    ex = corpus(2000, 200)
    a, b = plan(*hists(ex, 1), 0.8), plan(*hists(ex, 1), 0.8)
    assert a == b
    kept1 = {e for e, s, n in ex if keep(s, bucket(1, e), a)}
    kept2 = {e for e, s, n in ex if keep(s, bucket(2, e), plan(*hists(ex, 2), 0.8))}
    assert kept1 != kept2


def test_the_cut_keeps_each_splits_share_of_the_sampled_source():
    """plan_by_split: the corpus-wide cut applied to train and validation alone; the held-out
    share of the sampled source survives sampling, and the code fraction is still met."""
    from fimpack.packing.mixture import plan_by_split

    ex = corpus(3000, 300)
    rng = random.Random(5)
    split = {e: "validation" if rng.random() < 0.05 else "train" for e, _, _ in ex}
    hists = {}
    for e, s, n in ex:
        key = (s, split[e])
        hists[key] = hists.get(key, np.zeros(1 << 16, np.int64))
        hists[key][bucket(0, e)] += n
    decisions = plan_by_split(hists, 0.8)
    assert set(decisions) == {"train", "validation"}
    assert {d.cut for d in decisions.values()} == {"code"}
    kept = {(s, sp): 0 for s in ("code", "nl") for sp in ("train", "validation")}
    total = dict(kept)
    for e, s, n in ex:
        total[(s, split[e])] += n
        if keep(s, bucket(0, e), decisions[split[e]]):
            kept[(s, split[e])] += n
    code = kept[("code", "train")] + kept[("code", "validation")]
    assert abs(code / (code + kept[("nl", "train")] + kept[("nl", "validation")]) - 0.8) < 0.01
    share_before = total[("code", "validation")] / (total[("code", "train")]
                                                    + total[("code", "validation")])
    share_after = kept[("code", "validation")] / code
    biggest = max(n for e, s, n in ex if s == "code" and split[e] == "validation")
    assert abs(share_after - share_before) * code <= biggest  # within one example
    assert kept[("nl", "validation")] == total[("nl", "validation")]  # nl not cut
    # no target, or nothing to cut: every split keeps everything
    assert plan_by_split(hists, None) == {s: (None, 1 << 16)
                                          for s in ("train", "validation")}
