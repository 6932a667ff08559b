"""Train the Gemma model on a build's token shards.

    fimpack train --data OUT --flavor debug --steps 200 --out runs/debug          # CPU, ~1M params
    fimpack train --data OUT --flavor tiny --steps 2000 --out runs/tiny --seq-len 512
    fimpack train --data OUT --flavor small --steps 20000 --out runs/small \\
        --seq-len 2048 --batch-size 16 --grad-accum 4 --compile                      # one GPU
    fimpack train --data OUT --flavor debug --steps 400 --out runs/debug --resume  # continue

or from Python: ``train("OUT", "debug", 200, "runs/debug")``.

A run folder holds ``config.json`` (model config and training arguments), ``log.jsonl`` (one
JSON object per logged step: step, loss, lr, tokens_per_s, grad_norm, epoch, and mfu on CUDA)
and ``ckpt.pt`` (model, optimiser, step, data position, RNG states), replaced atomically every
``ckpt_every`` steps and at the end. ``resume=True`` continues from ``ckpt.pt``; on CPU the
losses after resuming equal an uninterrupted run's bit for bit.

AdamW (fused on CUDA), linear warmup then cosine decay to 10% of the peak, gradient
accumulation and clipping; bf16 autocast on CUDA only, fp32 on CPU so runs are reproducible.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import random
import time
from dataclasses import asdict
from typing import Callable

import numpy as np
import torch

from fimpack.model.gemma import FLAVORS, Gemma, GemmaConfig, config_for
from fimpack.train.data import TokenStream, WindowSampler

# Peak learning rate when none is given: smaller models tolerate (and need) larger steps.
DEFAULT_LR = {"debug": 3e-3, "tiny": 1e-3, "small": 6e-4, "codegemma-2b": 3e-4,
              "codegemma-7b": 2e-4}
MIN_LR_RATIO = 0.1    # cosine decays to 10% of the peak (Chinchilla, Llama)
WEIGHT_DECAY = 0.1
BETAS = (0.9, 0.95)
# Dense bf16 peak FLOP/s per GPU, for MFU. Unknown GPUs log mfu = null rather than a guess.
PEAK_FLOPS = {"H100": 989e12, "H200": 989e12, "B200": 2250e12, "A100": 312e12, "L40S": 362e12,
              "L4": 121e12, "A10G": 70e12}


def lr_at(step: int, peak: float, warmup: int, total: int) -> float:
    """Linear warmup over ``warmup`` steps, then cosine from ``peak`` to MIN_LR_RATIO * peak."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (MIN_LR_RATIO + (1 - MIN_LR_RATIO) * 0.5 * (1 + math.cos(math.pi * progress)))


def make_optimizer(model: torch.nn.Module, lr: float, fused: bool) -> torch.optim.AdamW:
    # decay matrices (projections, embedding); leave the 1-D norm weights alone
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": WEIGHT_DECAY},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=BETAS, fused=fused)


def flops_per_token(config: GemmaConfig, seq_len: int) -> float:
    """Training FLOPs per token (PaLM appendix B): 6 per weight of every matmul, including the
    tied output projection, plus 12 * L * nh * hs * T for attention scores and values."""
    c = config
    attn = c.d_model * c.head_dim * (2 * c.n_heads + 2 * c.n_kv_heads)
    mlp = 3 * c.d_model * c.ffn_hidden
    matmul_weights = c.n_layers * (attn + mlp) + c.vocab_size * c.d_model
    return 6 * matmul_weights + 12 * c.n_layers * c.n_heads * c.head_dim * seq_len


def _peak_flops(device: torch.device) -> float | None:
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_FLOPS.items() if k in name), None)


def _rng_state(cuda: bool) -> dict:
    return {"python": random.getstate(), "numpy": np.random.get_state(),
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if cuda else None}


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str, state: dict) -> None:
    """Write to a temp file, then rename: a crash mid-write never leaves a torn ckpt.pt."""
    tmp = path + ".tmp"
    torch.save(state, tmp)
    os.replace(tmp, path)


def _shape(config: dict) -> dict:
    """The fields a checkpoint's weights depend on (the attention backend can change)."""
    return {k: v for k, v in config.items() if k not in ("attention", "loss_chunk")}


def _model_config(data_dir: str, flavor: str, attention: str) -> GemmaConfig:
    with open(os.path.join(data_dir, "manifest.json")) as f:
        vocab = json.load(f)["tokenizer"]["vocab_size"]
    if flavor not in FLAVORS:
        raise KeyError(f"unknown flavor {flavor!r}; choose from {sorted(FLAVORS)}")
    fixed = FLAVORS[flavor].vocab_size
    if fixed is not None and fixed < vocab:
        raise ValueError(f"flavor {flavor} has {fixed} embeddings but the data uses {vocab} ids")
    return config_for(flavor, attention=attention,
                      **({"vocab_size": vocab} if fixed is None else {}))


def train(data_dir: str, flavor: str, steps: int, out_dir: str, *, seq_len: int = 256,
          batch_size: int = 8, lr: float | None = None, warmup: int | None = None,
          seed: int = 0, ckpt_every: int = 0, resume: bool = False, log_every: int = 1,
          grad_accum: int = 1, clip: float = 1.0, device: str = "auto", compile: bool = False,
          attention: str = "auto", progress: Callable[[str], None] | None = None) -> dict:
    """Train ``flavor`` on ``data_dir``'s train shards for ``steps`` optimiser steps.

    lr: peak learning rate (default per flavor, DEFAULT_LR); warmup: steps of linear warmup
    (default 5% of ``steps``, at most 200); each step sees batch_size * grad_accum windows of
    seq_len tokens. clip <= 0 turns clipping off. ckpt_every = 0 checkpoints only at the end.
    resume: continue from out_dir/ckpt.pt when it exists (a fresh start otherwise), keeping
    the log lines before the checkpoint's step. progress: called with one line per logged step.

    Returns {"flavor", "params", "steps", "start_step", "first_loss", "final_loss",
    "tokens_per_s", "out_dir"} (the losses of this call's first and last step).
    """
    dev = torch.device("cuda" if device == "auto" and torch.cuda.is_available()
                       else "cpu" if device == "auto" else device)
    cuda = dev.type == "cuda"
    lr = DEFAULT_LR.get(flavor, 3e-4) if lr is None else lr
    warmup = min(200, steps // 20) if warmup is None else warmup
    os.makedirs(out_dir, exist_ok=True)
    ckpt_path = os.path.join(out_dir, "ckpt.pt")
    log_path = os.path.join(out_dir, "log.jsonl")

    if compile and attention == "auto" and not cuda:
        # segments cut rows at data-dependent places, so a compiled model would recompile for
        # every new document layout; one dense mask keeps the graph static
        attention = "sdpa_mask"
    config = _model_config(data_dir, flavor, attention)
    torch.manual_seed(seed)
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    with torch.device(dev):
        model = Gemma(config)
    optimizer = make_optimizer(model, lr, fused=cuda)
    sampler = WindowSampler(TokenStream(data_dir, "train"), seq_len, batch_size, seed)

    start = 0
    if resume and os.path.exists(ckpt_path):
        # map to CPU: RNG states must stay CPU tensors; load_state_dict copies onto dev
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        if _shape(ckpt["config"]) != _shape(asdict(config)):
            raise ValueError(f"{ckpt_path} holds a different model: {ckpt['config']}")
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        sampler.load_state(ckpt["data"])
        _set_rng_state(ckpt["rng"])
        start = ckpt["step"]

    train_args = dict(data_dir=data_dir, flavor=flavor, steps=steps, seq_len=seq_len,
                      batch_size=batch_size, lr=lr, warmup=warmup, seed=seed,
                      grad_accum=grad_accum, clip=clip, device=str(dev), compile=compile,
                      attention=attention)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump({"flavor": flavor, "model": asdict(config), "train": train_args}, f, indent=2)
    # a resumed run drops log lines the checkpoint doesn't cover (steps after it were lost)
    kept = []
    if start and os.path.exists(log_path):
        with open(log_path) as f:
            kept = [line for line in f if line.strip() and json.loads(line)["step"] < start]
    log = open(log_path, "w")  # closed in the finally below, also when a step raises
    log.writelines(kept)
    log.flush()

    run_model = torch.compile(model) if compile else model
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if cuda
                else contextlib.nullcontext())
    step_flops = flops_per_token(config, seq_len)
    peak = _peak_flops(dev) if cuda else None
    n_params = model.num_params()
    tokens_per_step = batch_size * seq_len * grad_accum

    first_loss = final_loss = None
    t_last, tokens_since, t_run, tokens_run = time.perf_counter(), 0, 0.0, 0
    try:
        model.train()
        for step in range(start, steps):
            step_lr = lr_at(step, lr, warmup, steps)
            for group in optimizer.param_groups:
                group["lr"] = step_lr
            loss_sum = torch.zeros((), device=dev)
            for _ in range(grad_accum):
                inputs, doc_ids, targets = sampler.next_batch().tensors(dev)
                with autocast:
                    loss = run_model(inputs, doc_ids, targets)
                (loss / grad_accum).backward()  # mean over micro-batches, as one big batch would
                loss_sum += loss.detach()
            # with clipping off, an infinite threshold still measures the norm for the log
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(),
                                                       clip if clip > 0 else math.inf)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            tokens_since += tokens_per_step

            last = step == steps - 1
            if step % log_every == 0 or last or step == start:
                step_loss = (loss_sum / grad_accum).item()  # also waits for the GPU
                dt = time.perf_counter() - t_last
                tps = tokens_since / dt
                t_run, tokens_run = t_run + dt, tokens_run + tokens_since
                record = {"step": step, "loss": step_loss, "lr": step_lr, "tokens_per_s": tps,
                          "grad_norm": grad_norm.item(), "epoch": sampler.epoch}
                if cuda:
                    record["mfu"] = None if peak is None else step_flops * tps / peak
                log.write(json.dumps(record) + "\n")
                log.flush()
                if progress is not None:
                    progress(f"step {step + 1}/{steps} loss {step_loss:.4f} lr {step_lr:.2e} "
                             f"{tps:,.0f} tok/s" + (f" mfu {record['mfu']:.1%}"
                                                    if record.get("mfu") is not None else ""))
                first_loss = step_loss if first_loss is None else first_loss
                final_loss = step_loss
                tokens_since = 0
                t_last = time.perf_counter()

            if last or (ckpt_every and (step + 1) % ckpt_every == 0):
                save_checkpoint(ckpt_path, {
                    "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "step": step + 1, "data": sampler.state(), "rng": _rng_state(cuda),
                    "config": asdict(config), "flavor": flavor, "train": train_args})
                t_last = time.perf_counter()  # checkpoint time is not training throughput
    finally:
        log.close()
    return {"flavor": flavor, "params": n_params, "steps": steps, "start_step": start,
            "first_loss": first_loss, "final_loss": final_loss,
            "tokens_per_s": tokens_run / t_run if t_run else None, "out_dir": out_dir}
