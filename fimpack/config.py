"""Every setting of a build, in one place without Beam or torch: the pipeline's stages take
these, the command line takes its flags' defaults and choices from them, and the manifest
records them (``config``)."""
from __future__ import annotations

from dataclasses import dataclass, fields, is_dataclass, replace

from fimpack.options import from_args, nested, option

# The option vocabularies (flag choices), owned here at the bottom layer; the modules that act
# on them (packing.fim, packing.graph, packing.partition, dedup.near) import them from here.
UNIFORM, SYNTAX, MIXED = "uniform", "syntax", "mixed"
FIM_SPLITS = (UNIFORM, SYNTAX, MIXED)  # where the middle is cut: characters, a node, 50/50
RANDOM = "random"
STRATEGIES = ("codegemma", "deepseek")  # dependency orders of packing.graph
ORDERS = (*STRATEGIES, RANDOM)  # CodeGemma's linearisation, DeepSeek's, seeded random
# how files group into examples (packing.partition); "repository": consecutive files in order
PARTITIONS = ("greedy", "density", "refined", "best", "repository")
KEEP_POLICIES = ("smallest", "permissive", "stars")  # the keeper of a near-duplicate cluster
DEDUP_MODES = ("keep-one", "drop-all")
# files dropped before dedup, each kind its own reason (dedup/generated.py); --keep-generated
GENERATED_KINDS = ("compiled", "vendored", "minified", "generated")

PRESETS = {  # CodeGemma's published mixtures, then repository-level long-context stages
    "codegemma-7b": {"code_fraction": 0.8, "fim_rate": 0.8},
    "codegemma-2b": {"code_fraction": 1.0, "fim_rate": 0.9},
    # whole repositories (or consecutive runs of them) in dependency order, file-level FIM
    # inside, as Qwen2.5-Coder's and Seed-Coder's repository stages train at 32K
    "repo-16k": {"seq_len": 16384, "partition": "repository"},
    "repo-32k": {"seq_len": 32768, "partition": "repository"},
    "repo-64k": {"seq_len": 65536, "partition": "repository"},
}
PRESET_FIELDS = ("code_fraction", "fim_rate", "seq_len", "partition")  # what a preset may set
# the flag groups (help sections) of ``fimpack build``; ``fimpack dedup`` takes the first two
INPUT, DEDUP, FILTERS = "input", "deduplication", "filters"
DEDUP_GROUPS = (INPUT, DEDUP)


def language_codes(value: str) -> tuple[str, ...]:
    """``en, de`` -> ("de", "en"); anything but ISO 639 codes (or ``und``) is refused."""
    codes = tuple(sorted({c.strip().lower() for c in value.split(",") if c.strip()}))
    bad = [c for c in codes if not (c.isascii() and c.isalpha() and 2 <= len(c) <= 3)]
    if bad or not codes:
        raise ValueError(f"not ISO 639 language codes: {value!r}")
    return codes


def generated_kinds(value: str) -> tuple[str, ...]:
    kinds = tuple(k.strip() for k in value.split(",") if k.strip())
    bad = [k for k in kinds if k not in GENERATED_KINDS]
    if bad or not kinds:
        raise ValueError(f"not among {','.join(GENERATED_KINDS)}: {value!r}")
    return kinds


def _dropped_kinds(kept: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(k for k in GENERATED_KINDS if k not in kept)


@dataclass(frozen=True)
class Limits:
    max_file_bytes: int = option(1_000_000, "larger files are dropped as 'too_large' "
                                 "(StarCoder drops files over 1 MB)")
    max_files_per_repo: int = option(0, "0 = no cap; files past it are dropped, counted")
    nl_min_chars: int = option(200, "shorter natural-language documents are dropped: they "
                               "carry little")


@dataclass(frozen=True)
class NearDedupConfig:
    threshold: float = option(0.7, "Jaccard similarity of a near duplicate (BigCode's)",
                              flag="--near-threshold")
    num_perm: int = option(256, "MinHash permutations")
    ngram: int = option(5, "tokens per shingle")
    bands: int = option(0, "LSH bands; 0: the optimum for the threshold and --num-perm")
    rows: int = option(0, "LSH rows per band; 0: the optimum")
    verify: bool = option(True, "keep LSH candidate pairs without checking estimated Jaccard",
                          flag="--no-verify")
    seed: int = option(0, flag=False)  # fixed: only signatures of one seed compare
    max_bucket_pairs: int = option(2_000, "an LSH bucket that would yield more pairs links "
                                   "each member to its smallest key only")

    def band_params(self) -> tuple[int, int]:
        if self.bands and self.rows:
            if self.bands * self.rows > self.num_perm:
                raise ValueError("bands x rows must not exceed num_perm")
            return self.bands, self.rows
        from datasketch.lsh import _optimal_param

        return _optimal_param(self.threshold, self.num_perm, 0.5, 0.5)


@dataclass(frozen=True)
class DedupConfig:
    repo_near: bool = option(True, "keep near-duplicate repositories",
                             flag="--no-repo-near-dedup")
    file_exact: bool = option(True, "keep exact duplicate files", flag="--no-file-exact-dedup")
    file_near: bool = option(False, "off by default: it leaves holes in repositories that "
                             "multi-file packing would use", flag="--file-near-dedup")
    near: NearDedupConfig = option(factory=NearDedupConfig)
    keep_policy: str = option("smallest", "the copy a near-duplicate cluster keeps: the "
                              "smallest key; one whose licence is permissive; or (repository "
                              "rows with metadata) most stars, then forks, permissive licence, "
                              "earliest creation", choices=KEEP_POLICIES)
    against: tuple[str, ...] = option(
        (), "drop what these earlier builds kept (their OUT/dedup/ signatures and hashes) as "
        "'duplicate_of_earlier_build': a new build adds only what is new",
        flag="--dedup-against", nargs="+", metavar="PREV_OUT", to_field=tuple)
    dedup_mode: str = option("keep-one", "keep one copy of each duplicate cluster, or drop "
                             "every copy", choices=DEDUP_MODES)


@dataclass(frozen=True)
class QualityConfig:
    max_line_length: int = option(1000, "drop a code file with a longer line "
                                  "('max_line_length')")
    max_mean_line_length: float = option(100.0, "drop a code file whose mean line is longer")
    min_alphanumeric_fraction: float = option(
        0.25, "drop a code file with fewer letters and digits than this share")
    # the generated stage's rule: 0 when --keep-generated keeps generated files (build_config)
    generated_marker_lines: int = option(5, flag=False)
    max_encoded_fraction: float = option(0.5, "drop a file whose encoded data (base64, hex, "
                                         "escapes) is a larger share of its characters")
    max_encoded_match: int = option(1024, "drop a file with a longer run of encoded data")
    data_min_chars: int = option(50, "drop a data file (JSON, YAML, CSV...) of fewer characters")
    data_max_chars: int = option(5000, "drop a data file of more characters")


@dataclass(frozen=True)
class NLConfig:
    """Natural-language documents (dedup/nl.py): Gopher's and C4's published thresholds.
    Flags: --nl-FIELD."""
    languages: tuple[str, ...] = option(
        (), "keep natural-language documents in these ISO 639-1 languages (comma-separated, "
        "e.g. en,de; 'und' = unsure); default: all, counted", metavar="CODES",
        parse=language_codes)
    quality: bool = option(True, "keep documents that break Gopher's or C4's quality rules",
                           flag="--no-nl-quality-filter")
    min_confidence: float = option(0.5, "below it py3langid's answer becomes 'und'")
    identify_chars: int = option(2000, "prose characters read for the language")
    min_words: int = option(50, "Gopher: fewer words is too short")
    max_words: int = option(100_000, "Gopher: more words is too long")
    min_mean_word_length: float = option(3.0, "Gopher: shorter mean word length")
    max_mean_word_length: float = option(10.0, "Gopher: longer mean word length")
    max_symbol_ratio: float = option(0.1, "Gopher: '#' and ellipses per word")
    max_bullet_lines: float = option(0.9, "Gopher: share of lines starting with a bullet")
    max_ellipsis_lines: float = option(0.3, "Gopher: share of lines ending with an ellipsis")
    min_alphabetic_words: float = option(0.8, "Gopher: share of words with a letter")
    min_stop_words: int = option(2, "Gopher: English stop words at least (English only)")
    max_duplicate_items: float = option(0.3, "Gopher: share of duplicate lines, paragraphs")
    max_duplicate_item_chars: float = option(0.2, "Gopher: their share of characters")
    top_ngram_bounds: tuple = option(((2, 0.20), (3, 0.18), (4, 0.16)), flag=False)
    duplicate_ngram_bounds: tuple = option(((5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12),
                                            (9, 0.11), (10, 0.10)), flag=False)
    min_sentences: int = option(3, "C4: fewer sentences is too short")


@dataclass(frozen=True)
class LicenseConfig:
    """The Licenses stage (dedup/licenses.py): the policy and the opt-outs."""
    policy: str = option(
        "any", "keep repositories whose licence (licence files, SPDX headers) is allowed: any "
        "(default; recorded only), permissive (README's list) or a file of SPDX ids; the rest "
        "are dropped as 'license'. off: no licence read", flag="--licenses",
        metavar="any|permissive|FILE|off")
    exclude_repos: str | None = option(None, "opt-outs: repository names or globs, one per "
                                       "line ('opted_out')", metavar="FILE")


@dataclass(frozen=True)
class FilterConfig:
    """The Filters stage (dedup/stages.py): code quality, documents, decontamination, PII."""
    quality: QualityConfig | None = option(  # None: no filter
        factory=QualityConfig,
        off=("--no-quality-filter", None, "keep code files that break the line-length and "
             "alphanumeric rules"))
    nl: NLConfig | None = option(  # None: documents not judged
        factory=NLConfig, prefix="nl-",
        off=("--no-nl-filter", None, "do not judge documents at all: no language ID, no "
             "quality rules"))
    benchmarks: list[str] | None = option(  # None: HumanEval; []: off
        None, "decontaminate against this JSONL (repeatable; default: HumanEval)",
        flag="--benchmark", action="append", metavar="JSONL",
        off=("--no-decontaminate", [], "no decontamination"))
    pii: bool = option(True, "do not redact emails, IPs, keys", flag="--no-pii")


@dataclass(frozen=True)
class TokenizerConfig:
    """The TrainTokenizer stage (packing/tokenizer.py): a sentencepiece model trained on a
    seeded sample of the kept files, or the user's."""
    vocab_size: int = option(32_000, "sentencepiece vocabulary trained on a sample (at least "
                             "512)")
    model: str | None = option(None, "use this sentencepiece model instead of training one",
                               flag="--tokenizer")
    sample_docs: int = option(4_000, "documents in the tokenizer's training sample",
                              flag="--tokenizer-sample-docs")
    sample_chars: int = option(20_000_000, "characters in the tokenizer's training sample",
                               flag="--tokenizer-sample-chars")


@dataclass(frozen=True)
class PackConfig:
    """The PackExamples stage (packing/): the validation split, file order, FIM and the
    grouping of a repository's files into examples of at most ``seq_len`` tokens."""
    seq_len: int = option(8192, "tokens per packed training sequence")
    fim_rate: float = option(0.8, "share of files in FIM format (CodeGemma 7B / 2B v1.0)")
    fim_split: str = option(MIXED, "FIM split points: uniform characters, a whole tree-sitter "
                            "node, or 50/50 (default)", choices=FIM_SPLITS)
    order: str = option("codegemma", "file order inside a repository: CodeGemma's dependency "
                        "linearisation, DeepSeek-Coder's topological order, or seeded random",
                        choices=ORDERS)
    partition: str = option(
        "best", "how a repository's files group into examples along imports and test links: "
        "smallest pairs first (greedy), most edge weight per token (density), density then "
        "single-file moves (refined), per repository whichever of greedy and refined keeps "
        "more import edges in order (best), or consecutive files in order (repository)",
        choices=PARTITIONS)
    val_fraction: float = option(0.05, "share of the tokens held out as whole repositories "
                                 "(validation)")


@dataclass(frozen=True)
class MixConfig:
    """The Mixture stage (packing/mixture.py) and the shards it keys examples into."""
    code_fraction: float | None = option(
        0.8, "code share of tokens; -1 keeps everything (None)",
        to_field=lambda v: None if v < 0 else v)
    shard_tokens: int = option(1 << 25, "tokens per shard (a shard is one group in one "
                               "worker's memory; 64 MB of uint16 tokens)")


@dataclass(frozen=True)
class BuildConfig:
    """Every setting of ``fimpack build`` (``fimpack dedup``: the input and deduplication
    groups); each field's flag, default and help are its ``option``. Each stage takes its
    own part: Ingest ``limits``, Licenses ``licenses``, Dedup ``dedup``, Filters
    ``filters``, TrainTokenizer ``tokenizer``, PackExamples ``pack``, Mixture ``mix``; the
    seed is every stage's."""
    out: str = option(help="output folder (local or a Beam filesystem URL)", group=INPUT)
    input: str | None = option(
        None, "folder of repositories (subfolders, .tar.gz/.zip archives, .jsonl/.parquet "
        "rows), one repository (a folder with .git or a package manifest, or an archive) or a "
        "row file; default: the Python source installed here", group=INPUT)
    seed: int = option(0, "FIM, splits, sampling: the same seed gives byte-identical outputs")
    max_repos: int = option(0, "embedded default only: number of code repositories (0 = all)",
                            group=INPUT)
    workers: int = option(1, "FnApiRunner (the default runner) SDK processes; other runners "
                          "(--runner prism, Dataflow, Flink, Spark) size themselves", group=INPUT)
    limits: Limits = option(factory=Limits, group=INPUT)
    licenses: LicenseConfig = option(factory=LicenseConfig, group=INPUT)
    drop_generated: tuple[str, ...] = option(
        GENERATED_KINDS, "keep these of compiled,vendored,minified,generated (comma-separated; "
        "alone: all four), which are dropped before dedup by default", flag="--keep-generated",
        nargs="?", const=",".join(GENERATED_KINDS), parse=generated_kinds, metavar="KINDS",
        to_field=_dropped_kinds, group=DEDUP)
    dedup: DedupConfig = option(factory=DedupConfig, group=DEDUP)
    filters: FilterConfig = option(factory=FilterConfig, group=FILTERS)
    tokenizer: TokenizerConfig = option(factory=TokenizerConfig)
    pack: PackConfig = option(factory=PackConfig)
    mix: MixConfig = option(factory=MixConfig)
    dedup_only: bool = option(False, flag=False)  # set by the command: ``fimpack dedup``
    allow_unaudited: bool = option(False, "accept a runner that reports no metrics: the counts "
                                   "are then checked against the files written only",
                                   group=INPUT)


def setting_path(name: str, cls=None) -> tuple[str, ...]:
    """Where the setting NAME (a field name, as presets and ablations name them) sits in
    BuildConfig: ("pack", "seq_len"). Setting names are unique across the nested configs
    (every one is a flag); an unknown one is a KeyError."""
    for f in fields(cls or BuildConfig):
        if f.name == name:
            return (name,)
        inner = nested(f)
        if inner is not None:
            try:
                return (f.name, *setting_path(name, inner))
            except KeyError:
                continue
    raise KeyError(f"no build setting named {name!r}")


def with_settings(cfg, **settings):
    """CFG with each setting replaced where it sits in the nested configs (``setting_path``):
    ``with_settings(cfg, seq_len=4096, code_fraction=None)``. A nested config is replaced only
    by another (or None where it may be off): ``licenses="any"`` is a TypeError, the
    setting is ``policy``."""
    for name, value in settings.items():
        cfg = _replace_at(cfg, setting_path(name, type(cfg)), value)
    return cfg


def build_settings(out: str, **settings) -> BuildConfig:
    """The BuildConfig of OUT with SETTINGS by name (``with_settings``), the rest defaults."""
    return with_settings(BuildConfig(out=out), **settings)


def recorded_setting(config: dict, name: str, default=None):
    """The setting NAME of a build's recorded config (``manifest.json``'s ``config``: the
    BuildConfig as JSON, nested); DEFAULT when it is absent. A manifest written before the
    stages' configs were nested (2026-12-05) has every setting at the top."""
    value = config
    for key in setting_path(name):
        if not isinstance(value, dict) or key not in value:
            return config.get(name, default)
        value = value[key]
    return value


def _replace_at(obj, path: tuple[str, ...], value):
    if len(path) == 1:
        old = getattr(obj, path[0])
        if is_dataclass(old) and value is not None and not is_dataclass(value):
            raise TypeError(f"{path[0]} is a {type(old).__name__}, not {value!r}: set one of "
                            "its fields by name")
        return replace(obj, **{path[0]: value})
    return replace(obj, **{path[0]: _replace_at(getattr(obj, path[0]), path[1:], value)})


def build_config(args, dedup_only: bool) -> BuildConfig:
    """The BuildConfig of ``fimpack build``/``dedup``'s parsed flags (``cli`` generates them
    from the fields above): a flag given wins over the preset, the preset over the field's
    default."""
    if dedup_only:
        return from_args(BuildConfig, args, DEDUP_GROUPS, dedup_only=True)
    preset = PRESETS.get(getattr(args, "preset", None), {})
    cfg = with_settings(from_args(BuildConfig, args),
                        **{k: v for k, v in preset.items() if getattr(args, k) is None})
    quality = cfg.filters.quality
    if quality is not None and "generated" not in cfg.drop_generated:
        # generator markers are the generated stage's rule; kept files stay kept
        cfg = with_settings(cfg, generated_marker_lines=0)
    return cfg
