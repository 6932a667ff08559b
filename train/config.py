"""The trainer's settings, in a module without torch: the command line takes its flags'
defaults from here (``fimpack build`` must run where torch is not installed)."""
from __future__ import annotations

from dataclasses import dataclass

PACKINGS = ("packed", "stream")


@dataclass
class TrainConfig:
    """What ``fimpack train`` takes (its flags' defaults come from here) and what
    ``RUN/config.json`` holds under "train", with the defaults resolved."""

    data_dir: str                  # a build's output folder
    flavor: str = "debug"          # a name in FLAVORS
    steps: int = 100               # optimiser steps
    out_dir: str = "run"           # log.jsonl, config.json, ckpt.pt, tokenizer.model
    packing: str = "packed"        # PACKINGS: the build's packed sequences, or stream windows
    seq_len: int | None = None     # stream: 256 unless given; packed: the build's (no other)
    batch_size: int = 8            # rows per step (before accumulation), all ranks together
    lr: float | None = None        # peak learning rate; None: DEFAULT_LR for the flavor
    warmup: int | None = None      # linear warmup steps; None: 5% of steps, at most 200
    seed: int = 0
    ckpt_every: int = 0            # 0: a checkpoint at the end only
    resume: bool = False           # continue from out_dir/ckpt.pt when it exists
    log_every: int = 1
    grad_accum: int = 1            # micro-batches per step
    clip: float = 1.0              # gradient norm clip; <= 0: off
    device: str = "auto"           # "auto": cuda when available
    compile: bool = False          # torch.compile the model
    attention: str = "auto"        # a backend of model.gemma.attention
