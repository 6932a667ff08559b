"""The settings of ``fimpack train``, ``eval``, ``infill`` and ``ablate``, in a module without
torch: the command line generates their flags from these dataclasses (``fimpack.options``;
``fimpack build`` must run where torch is not installed), and the functions that run them take
their defaults from here."""
from __future__ import annotations

from dataclasses import dataclass

from fimpack.options import option

PACKINGS = ("packed", "stream")
DEFAULT_MAX_NEW_TOKENS = 128  # tokens an infilling may generate (eval and infill)


@dataclass
class TrainConfig:
    """What ``fimpack train`` takes (its flags come from here) and what ``RUN/config.json``
    holds under "train", with the defaults resolved."""

    data_dir: str = option(help="a build's output folder", flag="--data")
    flavor: str = option("debug", "a model size in model.gemma.FLAVORS")
    steps: int = option(100, "optimiser steps")
    out_dir: str = option("run", "run folder: log.jsonl, ckpt.pt, config.json, tokenizer.model",
                          flag="--out", required=True)
    packing: str = option("packed", "packed: rows are the build's packed sequences at its "
                          "seq_len (padded; multi-file examples whole); stream: windows of "
                          "--seq-len cut from all documents concatenated (no padding; any "
                          "length)", choices=PACKINGS)
    seq_len: int | None = option(None, "stream mode only (default 256); packed rows use the "
                                 "build's")
    batch_size: int = option(8, "rows per step (before accumulation), all ranks together")
    lr: float | None = option(None, "peak learning rate; default: the flavor's")
    warmup: int | None = option(None, "linear warmup steps; default: 5%% of the steps, at most "
                                "200")
    seed: int = option(0, "data order and initialisation")
    ckpt_every: int = option(0, "steps between checkpoints; 0: at the end only")
    resume: bool = option(False, "continue from OUT/ckpt.pt when it exists")
    log_every: int = option(1, "steps between log lines")
    grad_accum: int = option(1, "micro-batches per step")
    clip: float = option(1.0, "gradient norm clip; <= 0: off")
    device: str = option("auto", "auto: cuda when available")
    compile: bool = option(False, "torch.compile the model")
    attention: str = option("auto", "a backend of model.gemma.attention")


@dataclass
class EvalConfig:
    """What ``fimpack eval`` takes; ``train.evaluate.evaluate``'s defaults are these."""

    run_dir: str = option(help="run folder (ckpt.pt, tokenizer.model) or a transformers Gemma "
                          "folder (safetensors + tokenizer.model)", flag="run")
    data_dir: str = option(help="a build's output folder, same tokenizer", flag="--data")
    max_loss_tokens: int = option(100_000, "tokens the held-out loss reads at most")
    infill_tasks: int = option(20, "held-out file tasks per kind (single-line, multi-line); "
                               "0 = skip")
    humaneval_tasks_per_kind: int = option(20, "HumanEval infilling tasks per kind; 0 = skip",
                                           flag="--humaneval-tasks")
    metric_files: int = option(100, "held-out files for the infilling loss and the "
                               "repository-context gain; 0 = skip")
    max_new_tokens: int = option(DEFAULT_MAX_NEW_TOKENS, "tokens an infilling may generate")
    timeout: float = option(5.0, "seconds per HumanEval test run")
    seed: int = option(0, "sampling of held-out documents and tasks")
    device: str = option("cpu", "torch device")
    details: str | None = option(None, "write every infilling task here", metavar="JSONL")
    json_out: str | None = option(None, "where the whole result goes as JSON (default "
                                  "RUN/eval.json)", metavar="FILE")
    as_json: bool = option(False, "print the JSON on stdout instead of the table (for "
                           "scripts)", flag="--json")


@dataclass
class InfillConfig:
    """What ``fimpack infill`` takes; ``train.infill.main``'s defaults are these."""

    run_dir: str = option(help="run folder (ckpt.pt, tokenizer.model) or a transformers Gemma "
                          "folder", flag="run")
    prefix: str = option(help="the text before the hole")
    suffix: str = option("", "the text after the hole; default: none")
    path: str | None = option(None, "file path for the prompt's path line")
    max_new_tokens: int = option(DEFAULT_MAX_NEW_TOKENS, "tokens it may generate")
    as_json: bool = option(False, "completion, tokens, stop reason", flag="--json")
    device: str = option("cpu", "torch device")


@dataclass
class AblateConfig:
    """What ``fimpack ablate`` takes besides the builds' input flags (BuildConfig's input
    group); its builds, training runs and evaluations use these."""

    variants: str = option("fim,mixture,order", "comma-separated: fim (0.8 vs 0.0), mixture "
                           "(code 0.8 vs 1.0), order (codegemma vs deepseek vs random)")
    flavor: str = option("tiny", "the model trained on each variant")
    steps: int = option(300, "optimiser steps per run")
    seq_len: int = option(512, "the builds' packed sequences")
    batch_size: int = option(4, "rows per step")
    repeats: int = option(1, "seeds per variant")
    seed: int = option(0, "the builds' and the first run's seed")
    device: str = option("auto", "auto: cuda when available")
    vocab_size: int = option(4096, "the reference build's tokenizer vocabulary")
    val_fraction: float = option(0.2, "share of the tokens held out (the same repositories "
                                 "for every variant)")
    metric_files: int = option(60, "held-out files for the infilling loss and the "
                               "repository-context gain")
    tokenizer_sample_chars: int = option(4_000_000, "characters in the tokenizer's training "
                                         "sample")
