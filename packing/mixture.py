"""The code / natural-language mixture, by tokens, sampled deterministically.

The over-represented source is down-sampled (nothing is repeated: repeats cost quality more
than a slightly smaller corpus). Each example gets a hash bucket from (seed, id); the
per-source token totals per bucket are combined across the corpus (a fixed-size histogram,
so it scales), and the kept buckets are the lowest ones whose tokens fit the target. The
achieved fraction is then off by at most one bucket's tokens (1/65536 of the source on a large
corpus; one example on a small one). The cut is applied to each split alone (``plan_by_split``):
the sampled source keeps the same share of its tokens in train and validation, so the
held-out fraction that ``split.py`` chose survives the sampling.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics

from fimpack.config import MixConfig
from fimpack.counting import SumCounters, example_counter, kept_counter
from fimpack.packing.examples import stable_hash
from fimpack.records import (AUDIT, CODE, NATURAL_LANGUAGE, SPLITS, Drop, PartFate, StageOut,
                             packed)

BUCKETS = 1 << 16
def bucket(seed: int, example_id: str) -> int:
    return stable_hash("mixture", str(seed), example_id) % BUCKETS


class Histogram(beam.CombineFn):
    """Token totals per bucket (int64, BUCKETS long) from (bucket, tokens) pairs: a fixed
    size whatever the corpus."""

    def create_accumulator(self):
        return np.zeros(BUCKETS, dtype=np.int64)

    def add_input(self, acc, pair):
        acc[pair[0]] += pair[1]
        return acc

    def merge_accumulators(self, accs):
        return np.sum(list(accs), axis=0)

    def extract_output(self, acc):
        return acc


class Cut(NamedTuple):
    """The mixture's decision for one split: the examples of source CUT stay when their
    bucket is below BELOW; the other source's all stay. ``Cut(None, BUCKETS)`` keeps
    everything."""

    cut: str | None      # CODE, NATURAL_LANGUAGE or None
    below: int


KEEP_ALL = Cut(None, BUCKETS)


def plan(code: np.ndarray, nl: np.ndarray, code_fraction: float | None) -> Cut:
    """Which source to cut and below which bucket its examples stay; ``KEEP_ALL`` with no
    target, or nothing to cut."""
    total_code, total_nl = int(code.sum()), int(nl.sum())
    if code_fraction is None or total_code + total_nl == 0:
        return KEEP_ALL
    if code_fraction >= 1.0:
        return Cut(NATURAL_LANGUAGE, 0)
    if code_fraction <= 0.0:
        return Cut(CODE, 0)
    if total_nl and total_code / (total_code + total_nl) > code_fraction:
        cut, hist, want = CODE, code, code_fraction / (1 - code_fraction) * total_nl
    elif total_code and total_code / (total_code + total_nl) < code_fraction:
        cut, hist, want = NATURAL_LANGUAGE, nl, (1 - code_fraction) / code_fraction * total_code
    else:
        return KEEP_ALL
    return Cut(cut, _below(hist, want))


def _below(hist: np.ndarray, want: float) -> int:
    """The bucket boundary whose kept total (buckets below it) is closest to WANT tokens."""
    cum = np.cumsum(hist)
    below = int(np.searchsorted(cum, want))
    if below < len(cum) and below > 0 and abs(cum[below] - want) < abs(cum[below - 1] - want):
        below += 1
    elif below == 0 and len(cum) and cum[0] and abs(cum[0] - want) < want:
        below = 1
    return min(below, BUCKETS)


def plan_by_split(hists: dict, code_fraction: float | None) -> dict[str, Cut]:
    """{split: Cut}: the cut of ``plan`` over the whole corpus, applied to each split
    alone (stratified): the cut source keeps the same share of its tokens in every split.
    Sampled corpus-wide, a split of few examples keeps whatever share its examples' buckets
    happen to give, and the held-out fraction that ``split.py`` chose moves with it (6.4%
    instead of 5% on a 195-example build). HISTS: {(source, split): histogram}."""
    zero = np.zeros(BUCKETS, np.int64)

    def hist(source, split=None):
        if split is not None:
            return np.asarray(hists.get((source, split), zero))
        return sum((np.asarray(hists.get((source, s), zero)) for s in SPLITS), zero)

    overall = plan(hist(CODE), hist(NATURAL_LANGUAGE), code_fraction)
    cut = overall.cut
    if cut is None or overall.below in (0, BUCKETS):
        return {s: overall for s in SPLITS}
    total = hist(cut)
    share = float(np.cumsum(total)[overall.below - 1]) / float(total.sum())
    return {s: Cut(cut, _below(hist(cut, s), share * float(hist(cut, s).sum())))
            for s in SPLITS}


def keep(source: str, example_bucket: int, decision: Cut) -> bool:
    return decision.cut != source or example_bucket < decision.below


def shard_count(tokens: int, shard_tokens: int) -> int:
    """Shard buckets for a split's repositories: none for an empty split."""
    return math.ceil(tokens / shard_tokens)


# Audit counters (see pipelines/manifest.py): sent on the metrics channel, apart from the data.
EXAMPLES_MIXED = Metrics.counter(AUDIT, "examples_mixed")
EXAMPLES_KEPT = Metrics.counter(AUDIT, "examples_kept")


class _Mix(beam.DoFn):
    """Keep or drop each example by the mixture plan, keyed by its shard (split, bucket) when
    kept (and counted); report every file part's fate."""

    def __init__(self, seed: int):
        self.seed = seed

    def process(self, item, decision: dict, counts: dict):
        example, ids = item
        EXAMPLES_MIXED.inc()
        kept = keep(example.source, bucket(self.seed, example.id), decision[example.split])
        if kept:
            EXAMPLES_KEPT.inc()
            split = example.split
            # the id and token count travel beside the bytes: the shard writer sorts and
            # packs by them, and unpickles one batch of examples at a time
            yield ((split, stable_hash("shard", example.repo) % counts[f"shards_{split}"]),
                   (example.id, len(ids), packed(item)))
            yield beam.pvalue.TaggedOutput("counts", example_counter(item))
        else:  # counted as data too: packed = kept + sampled out (the build's audit)
            yield beam.pvalue.TaggedOutput("counts", {"examples_sampled_out": 1})
        for f in example.files:
            yield beam.pvalue.TaggedOutput(
                "parts", ((example.repo, f.path), PartFate(kept, example.source, f)))


class _FileFate(beam.CombineFn):
    """A file is kept when any of its parts is."""

    def create_accumulator(self):
        return None

    def add_input(self, acc, value):
        return value if acc is None or (value[0] and not acc[0]) else acc

    def merge_accumulators(self, accs):
        out = None
        for acc in accs:
            if acc is not None:
                out = self.add_input(out, acc)
        return out

    def extract_output(self, acc):
        return acc


class Mixture(beam.PTransform):
    """{"examples": Tokenized examples, "stats": their ExampleStats} -> ``StageOut``: kept
    examples keyed by shard as (id, tokens, packed bytes); Drops of the files whose every
    part fell out; the kept examples' and kept files' counters; and the ``files`` table (each
    kept file's ((repo, path), PartFate), its provenance row in ``OUT/files``:
    ``outputs.file_row``). The plan (one token histogram per source and split) and the shard
    counts come from the small stats records, so the examples are read once, to be kept or
    dropped and keyed.
    Shard counts come from the data (not the worker count), so outputs are identical however
    the build is spread; a repository's examples share a shard, so they can share
    sequences."""

    def __init__(self, cfg: MixConfig, seed: int):
        super().__init__()
        self.seed = seed
        self.code_fraction, self.shard_tokens = cfg.code_fraction, cfg.shard_tokens

    def expand(self, pcolls):
        examples, stats = pcolls["examples"], pcolls["stats"]
        fraction, shard_tokens = self.code_fraction, self.shard_tokens
        decision = beam.pvalue.AsSingleton(
            stats
            | "MixtureKey" >> beam.Map(lambda s: ((s.source, s.split), (s.bucket, s.tokens)))
            | "Histograms" >> beam.CombinePerKey(Histogram())
            | "HistogramDict" >> beam.combiners.ToDict()
            | "MixturePlan" >> beam.Map(lambda h: plan_by_split(h, fraction)))
        shard_counts = beam.pvalue.AsSingleton(
            stats
            | "SplitTokens" >> beam.Map(
                lambda s, d: {s.split: s.tokens if keep(s.source, s.bucket, d[s.split]) else 0},
                decision)
            | "CountSplits" >> beam.CombineGlobally(SumCounters())
            | "ShardCounts" >> beam.Map(lambda c: {
                f"shards_{s}": shard_count(c.get(s, 0), shard_tokens) for s in SPLITS}))
        keyed, parts, example_counts = examples | "Mix" >> beam.ParDo(
            _Mix(self.seed), decision, shard_counts).with_outputs("parts", "counts",
                                                                  main="kept")
        fates = parts | "FileFate" >> beam.CombinePerKey(_FileFate())
        drops = (fates
                 | "Dropped" >> beam.Filter(lambda kv: not kv[1].kept)
                 | "AsDrops" >> beam.Map(lambda kv: Drop(*kv[0], "mixture_sampling")))
        kept_files = fates | "Kept" >> beam.Filter(lambda kv: kv[1].kept)
        kept = kept_files | "KeptCounts" >> beam.Map(
            lambda kv: kept_counter(kv[1].source, kv[1].entry.language, kv[1].entry.encoding))
        return StageOut(keyed, (drops,), (example_counts, kept), tables={"files": kept_files})
