"""Every setting of a build, in one place without Beam or torch: the pipeline's stages take
these, the command line takes its flags' defaults and choices from them, and the manifest
records them (``config``)."""
from __future__ import annotations

from dataclasses import dataclass, field

from fimpack.packing.fim import FIM_SPLITS, MIXED  # noqa: F401  (flag choices)

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
RANDOM = "random"
ORDERS = ("codegemma", "deepseek", RANDOM)  # CodeGemma's linearisation, DeepSeek's, seeded
# how files group into examples (packing.partition); "repository": consecutive files in order
PARTITIONS = ("greedy", "density", "refined", "best", "repository")
# files dropped before dedup, each kind its own reason (dedup/generated.py); --keep-generated
GENERATED_KINDS = ("compiled", "vendored", "minified", "generated")


@dataclass(frozen=True)
class Limits:
    max_file_bytes: int = 1_000_000       # StarCoder drops files over 1 MB
    max_files_per_repo: int = 0           # 0 = no cap; files past it are dropped, counted
    nl_min_chars: int = 200               # shorter natural-language documents carry little


@dataclass(frozen=True)
class NearDedupConfig:
    threshold: float = 0.7        # BigCode's Jaccard threshold
    num_perm: int = 256
    ngram: int = 5
    bands: int = 0                # 0: the optimum for threshold and num_perm
    rows: int = 0
    verify: bool = True           # keep a pair only if its estimated Jaccard >= threshold
    seed: int = 0
    max_bucket_pairs: int = 2_000

    def band_params(self) -> tuple[int, int]:
        if self.bands and self.rows:
            if self.bands * self.rows > self.num_perm:
                raise ValueError("bands x rows must not exceed num_perm")
            return self.bands, self.rows
        from datasketch.lsh import _optimal_param

        return _optimal_param(self.threshold, self.num_perm, 0.5, 0.5)


@dataclass(frozen=True)
class DedupConfig:
    repo_near: bool = True
    file_exact: bool = True
    file_near: bool = False
    near: NearDedupConfig = field(default_factory=NearDedupConfig)
    keep_policy: str = "smallest"  # the keeper of a near-duplicate cluster (dedup/near.py)
    against: tuple[str, ...] = ()  # earlier builds' OUT folders (dedup/earlier.py)
    dedup_mode: str = "keep-one"   # "drop-all": no copy of a duplicate cluster is kept


@dataclass(frozen=True)
class QualityConfig:
    max_line_length: int = 1000
    max_mean_line_length: float = 100.0
    min_alphanumeric_fraction: float = 0.25
    generated_marker_lines: int = 5
    max_encoded_fraction: float = 0.5
    max_encoded_match: int = 1024
    data_min_chars: int = 50
    data_max_chars: int = 5000


@dataclass(frozen=True)
class NLConfig:
    """Natural-language documents (dedup/nl.py): Gopher's and C4's published thresholds."""
    languages: tuple[str, ...] = ()   # ISO 639-1 codes to keep; empty: all (still counted)
    quality: bool = True
    min_confidence: float = 0.5       # below it py3langid's answer becomes "und"
    identify_chars: int = 2000        # prose characters read for the language
    min_words: int = 50
    max_words: int = 100_000
    min_mean_word_length: float = 3.0
    max_mean_word_length: float = 10.0
    max_symbol_ratio: float = 0.1
    max_bullet_lines: float = 0.9
    max_ellipsis_lines: float = 0.3
    min_alphabetic_words: float = 0.8
    min_stop_words: int = 2
    max_duplicate_items: float = 0.3       # lines, paragraphs
    max_duplicate_item_chars: float = 0.2
    top_ngram_bounds: tuple = ((2, 0.20), (3, 0.18), (4, 0.16))
    duplicate_ngram_bounds: tuple = ((5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11),
                                     (10, 0.10))
    min_sentences: int = 3            # C4


@dataclass
class BuildConfig:
    out: str
    input: str | None = None          # None: the embedded default corpus
    seed: int = 0
    seq_len: int = 8192               # tokens per packed training sequence
    fim_rate: float = 0.8             # CodeGemma 7B / 2B v1.0
    fim_split: str = MIXED            # "uniform", "syntax" or "mixed" (50/50)
    order: str = "codegemma"          # file order in a repository: ORDERS
    partition: str = "best"           # files into examples along the graph: PARTITIONS
    code_fraction: float | None = 0.8  # code share of tokens; None keeps everything
    val_fraction: float = 0.05        # repositories held out for validation
    vocab_size: int = 32_000
    tokenizer: str | None = None      # a user-supplied sentencepiece model
    tokenizer_sample_docs: int = 4_000
    tokenizer_sample_chars: int = 20_000_000
    shard_tokens: int = 1 << 25       # 64 MB of uint16 tokens: the largest group a worker holds
    max_repos: int = 0                # embedded default only: cap the repositories
    workers: int = 1
    limits: Limits = field(default_factory=Limits)
    dedup: DedupConfig = field(default_factory=DedupConfig)
    quality: QualityConfig | None = field(default_factory=QualityConfig)  # None: no filter
    nl: NLConfig | None = field(default_factory=NLConfig)  # None: documents not judged
    benchmarks: list[str] | None = None  # decontamination sets; None: HumanEval; []: off
    pii: bool = True                     # redact emails, IPs, keys
    drop_generated: tuple[str, ...] = GENERATED_KINDS  # compiled/vendored/minified/generated
    licenses: str = "any"                # "any", "permissive", a file of SPDX ids, or "off"
    exclude_repos: str | None = None     # a file of repository names or globs: opted out
    dedup_only: bool = False             # `fimpack dedup`: stop after dedup
    allow_unaudited: bool = False        # accept a runner that reports no metrics


def build_config(args, dedup_only: bool) -> BuildConfig:
    """The BuildConfig of ``fimpack build``/``dedup``'s parsed flags (whose defaults are
    this module's)."""
    near = NearDedupConfig(threshold=args.near_threshold, num_perm=args.num_perm,
                           ngram=args.ngram, bands=args.bands, rows=args.rows,
                           verify=not args.no_verify)
    dedup = DedupConfig(repo_near=not args.no_repo_near_dedup,
                        file_exact=not args.no_file_exact_dedup,
                        file_near=args.file_near_dedup, near=near,
                        keep_policy=getattr(args, "keep_policy", "smallest"),
                        against=tuple(getattr(args, "dedup_against", None) or ()),
                        dedup_mode=getattr(args, "dedup_mode", "keep-one"))
    common = dict(out=args.out, input=args.input, max_repos=args.max_repos,
                  workers=args.workers, dedup=dedup, dedup_only=dedup_only,
                  licenses=args.licenses, exclude_repos=args.exclude_repos,
                  allow_unaudited=args.allow_unaudited,
                  drop_generated=tuple(k for k in GENERATED_KINDS
                                       if k not in (args.keep_generated or ())),
                  limits=Limits(max_file_bytes=args.max_file_bytes,
                                max_files_per_repo=args.max_files_per_repo))
    if dedup_only:
        return BuildConfig(**common)
    quality = None if args.no_quality_filter else QualityConfig(
        max_line_length=args.max_line_length, max_mean_line_length=args.max_mean_line_length,
        min_alphanumeric_fraction=args.min_alphanumeric_fraction,
        # generator markers are the generated stage's rule; kept files stay kept
        generated_marker_lines=QualityConfig.generated_marker_lines
        if "generated" not in (args.keep_generated or ()) else 0)
    # a flag given wins over the preset, the preset over BuildConfig's default
    chosen = {k: getattr(args, k) if getattr(args, k) is not None
              else PRESETS.get(args.preset, {}).get(k, getattr(BuildConfig, k))
              for k in PRESET_FIELDS}
    code_fraction = chosen.pop("code_fraction")
    return BuildConfig(
        **common, **chosen, seed=args.seed, fim_split=args.fim_split, order=args.order,
        code_fraction=None if code_fraction < 0 else code_fraction,
        val_fraction=args.val_fraction, vocab_size=args.vocab_size, tokenizer=args.tokenizer,
        tokenizer_sample_docs=args.tokenizer_sample_docs,
        tokenizer_sample_chars=args.tokenizer_sample_chars,
        shard_tokens=args.shard_tokens, quality=quality,
        nl=None if args.no_nl_filter else NLConfig(
            languages=args.nl_languages or (), quality=not args.no_nl_quality_filter),
        benchmarks=[] if args.no_decontaminate else args.benchmark, pii=not args.no_pii)
