"""Train the Gemma model on a build's token shards.

    fimpack train --data OUT --flavor debug --steps 200 --out runs/debug          # CPU, ~1M params
    fimpack train --data OUT --flavor tiny --steps 2000 --out runs/tiny --seq-len 512
    fimpack train --data OUT --flavor small --steps 20000 --out runs/small \\
        --seq-len 2048 --batch-size 16 --grad-accum 4 --compile                      # one GPU
    fimpack train --data OUT --flavor debug --steps 400 --out runs/debug --resume  # continue
    torchrun --standalone --nproc_per_node 2 -m fimpack train --data OUT --flavor debug \
        --steps 200 --out runs/ddp                      # data parallel: 2 processes (gloo on CPU)
    torchrun --standalone --nproc_per_node 8 -m fimpack train --data OUT --flavor small \
        --steps 20000 --out runs/small --seq-len 2048 --batch-size 64 --compile  # 8 GPUs (nccl)

or from Python: ``train("OUT", "debug", 200, "runs/debug")``.

A run folder holds ``config.json`` (model config and training arguments), ``log.jsonl`` (one
JSON object per logged step: step, loss, lr, tokens_per_s, grad_norm, epoch, and mfu on CUDA),
``tokenizer.model`` (copied from the data folder, so the run can be used without it) and
``ckpt.pt`` (model, optimiser, step, data position, RNG states; plain tensors and Python
values only, so ``torch.load(..., weights_only=True)`` reads it), replaced atomically every
``ckpt_every`` steps and at the end. ``resume=True`` continues from ``ckpt.pt``; on CPU the
losses after resuming equal an uninterrupted run's bit for bit.

Data parallel: under ``torchrun`` (RANK / LOCAL_RANK / WORLD_SIZE in the environment) every
process trains a replica wrapped in DistributedDataParallel (gloo on CPU, nccl on CUDA, one GPU
per process). ``batch_size`` stays the global batch: each rank reads a disjoint, deterministic
slice of every batch, and each rank's loss is weighted by its share of the batch's targets, so
the all-reduced gradient is exactly the gradient of the global batch mean: the loss curve
equals a single process's with the same batch (up to float summation order). Rank 0 writes the
log, config and checkpoints; at the end the ranks compare parameter checksums and fail loudly
if the replicas drifted apart.

AdamW (fused on CUDA), linear warmup then cosine decay to 10% of the peak, gradient
accumulation and clipping; bf16 autocast on CUDA only, fp32 on CPU so runs are reproducible.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass, replace
from typing import Callable

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from fimpack.model.gemma import FLAVORS, Gemma, GemmaConfig, config_for
from fimpack.train.checkpoint import (copy_tokenizer, load_checkpoint, rng_state,
                                      save_checkpoint, set_rng_state)
from fimpack.train.config import TrainConfig
from fimpack.train.distributed import init_distributed, replicas_in_sync
from fimpack.train.data import IGNORE, train_sampler

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


def train(data_dir: str, flavor: str, steps: int, out_dir: str, *,
          progress: Callable[[str], None] | None = None, **options) -> dict:
    """Train ``flavor`` on ``data_dir``'s train shards for ``steps`` optimiser steps; OPTIONS
    are the other fields of ``TrainConfig``. progress: called with one line per logged step
    (on rank 0 only). Under torchrun, batch_size is the global batch and must divide by the
    number of processes.

    Returns {"flavor", "params", "steps", "start_step", "first_loss", "final_loss",
    "tokens_per_s", "out_dir", "rank", "world_size"} (the losses of this call's first and last
    step), plus "replicas_in_sync" (always true: a drift raises) when world_size > 1.
    """
    cfg = TrainConfig(data_dir, flavor, steps, out_dir, **options)
    rank, local_rank, world, own_group = init_distributed(cfg.device)
    try:
        return _train(cfg, progress=progress, rank=rank, local_rank=local_rank, world=world)
    finally:
        if own_group:
            dist.destroy_process_group()


@dataclass
class _Session:
    """What one training call holds: the model, its optimiser and data, where it writes."""

    cfg: TrainConfig       # with seq_len, lr, warmup, attention and device resolved
    dev: torch.device
    model: Gemma
    run_model: torch.nn.Module  # the model as stepped: compiled and/or DDP-wrapped
    optimizer: torch.optim.Optimizer
    sampler: object        # PackedSampler or WindowSampler
    start: int             # the first step to run (a resumed run's checkpoint step)
    world: int
    log: object = None     # log.jsonl, open on rank 0

    @property
    def cuda(self) -> bool:
        return self.dev.type == "cuda"


def _device(device: str, local_rank: int, world: int) -> torch.device:
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda" and world > 1:
        dev = torch.device("cuda", local_rank)  # one GPU per process
        torch.cuda.set_device(dev)
    return dev


def _start(cfg: TrainConfig, rank: int, local_rank: int, world: int) -> _Session:
    """Model, optimiser and data for CFG, restored from the checkpoint when resuming; the
    run folder's config.json and log.jsonl (rank 0)."""
    dev = _device(cfg.device, local_rank, world)
    # Subnormal floats (tiny gradients and Adam moments late in a run) take a microcode slow
    # path on x86 CPUs: measured here, steps went from ~1,600 to under 100 tokens/s. Flushing
    # them to zero costs nothing a model can notice.
    torch.set_flush_denormal(True)
    cuda = dev.type == "cuda"
    attention = cfg.attention
    if cfg.compile and attention == "auto" and not cuda:
        # segments cut rows at data-dependent places, so a compiled model would recompile for
        # every new document layout; one dense mask keeps the graph static
        attention = "sdpa_mask"
    config = _model_config(cfg.data_dir, cfg.flavor, attention)
    torch.manual_seed(cfg.seed)
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    with torch.device(dev):
        model = Gemma(config)
    lr = DEFAULT_LR.get(cfg.flavor, 3e-4) if cfg.lr is None else cfg.lr
    optimizer = make_optimizer(model, lr, fused=cuda)
    sampler, seq_len = train_sampler(cfg.data_dir, cfg.packing, cfg.seq_len, cfg.batch_size,
                                cfg.seed, rank, world)
    cfg = replace(cfg, seq_len=seq_len, lr=lr, attention=attention, device=dev.type,
                  warmup=min(200, cfg.steps // 20) if cfg.warmup is None else cfg.warmup)
    ckpt_path = os.path.join(cfg.out_dir, "ckpt.pt")
    start = 0
    if cfg.resume and os.path.exists(ckpt_path):
        # map to CPU: RNG states must stay CPU tensors; load_state_dict copies onto dev
        ckpt = load_checkpoint(ckpt_path)
        if _shape(ckpt["config"]) != _shape(asdict(config)):
            raise ValueError(f"{ckpt_path} holds a different model: {ckpt['config']}")
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        sampler.load_state(ckpt["data"])
        set_rng_state(ckpt["rng"])
        start = ckpt["step"]
    run_model = torch.compile(model) if cfg.compile else model
    if world > 1:
        # broadcasts rank 0's parameters, then all-reduces (averages) gradients in backward
        run_model = DistributedDataParallel(run_model, device_ids=[dev.index] if cuda else None)
    session = _Session(cfg, dev, model, run_model, optimizer, sampler, start, world)
    if rank == 0:
        session.log = _open_run_folder(session, config)
    return session


def _open_run_folder(s: _Session, config: GemmaConfig):
    """config.json, the tokenizer, and log.jsonl open for appending steps (a resumed run keeps
    the lines its checkpoint covers; steps after it were lost)."""
    out_dir = s.cfg.out_dir
    os.makedirs(out_dir, exist_ok=True)
    copy_tokenizer(s.cfg.data_dir, out_dir)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump({"flavor": s.cfg.flavor, "model": asdict(config), "train": _train_args(s)}, f,
                  indent=2)
    log_path = os.path.join(out_dir, "log.jsonl")
    kept = []
    if s.start and os.path.exists(log_path):
        with open(log_path) as f:
            kept = [line for line in f if line.strip() and json.loads(line)["step"] < s.start]
    log = open(log_path, "w")  # closed by _train, also when a step raises
    log.writelines(kept)
    log.flush()
    return log


def _train_args(s: _Session) -> dict:
    return {**asdict(s.cfg), "world_size": s.world}


def _step(s: _Session, step: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """One optimiser step over grad_accum micro-batches: (loss summed over micro-batches, the
    gradient norm, this rank's real tokens)."""
    cfg = s.cfg
    for group in s.optimizer.param_groups:
        group["lr"] = lr_at(step, cfg.lr, cfg.warmup, cfg.steps)
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if s.cuda
                else contextlib.nullcontext())
    loss_sum, real = torch.zeros((), device=s.dev), 0
    for micro in range(cfg.grad_accum):
        batch = s.sampler.next_batch()
        real += batch.real_tokens
        inputs, doc_ids, targets = batch.tensors(s.dev)
        share = 1.0  # this rank's part of the micro-batch's targets, times world
        if s.world > 1:
            counts = (targets != IGNORE).sum().double()
            total = counts.clone()
            dist.all_reduce(total)
            # DDP averages gradients over ranks: weighting each rank's mean by
            # world * n_rank / n_all makes that average the global batch mean's gradient
            share = (counts * s.world / total.clamp(min=1)).float()
        # gradients are all-reduced once per step, in the last micro-batch's backward
        sync = (s.run_model.no_sync() if s.world > 1 and micro < cfg.grad_accum - 1
                else contextlib.nullcontext())
        with sync:
            with autocast:
                loss = s.run_model(inputs, doc_ids, targets) * share
            (loss / cfg.grad_accum).backward()  # mean over micro-batches, as one big batch
        loss_sum += loss.detach()  # summed over ranks by the caller: the global mean
    # with clipping off, an infinite threshold still measures the norm for the log
    grad_norm = torch.nn.utils.clip_grad_norm_(s.model.parameters(),
                                               cfg.clip if cfg.clip > 0 else math.inf)
    s.optimizer.step()
    s.optimizer.zero_grad(set_to_none=True)
    return loss_sum, grad_norm, real


def _global(s: _Session, loss_sum: torch.Tensor, real: int) -> tuple[float, int]:
    """(the step's mean loss, real tokens) over all ranks."""
    if s.world > 1:
        dist.all_reduce(loss_sum)
        loss_sum /= s.world
        total = torch.tensor(float(real), device=s.dev)
        dist.all_reduce(total)
        real = int(total.item())
    return (loss_sum / s.cfg.grad_accum).item(), real  # .item() also waits for the GPU


def _log_step(s: _Session, step: int, loss: float, tps: float, padding: float,
              grad_norm: float, step_flops: float, peak: float | None, progress) -> None:
    """One log.jsonl line (rank 0) and one progress line."""
    cfg = s.cfg
    step_lr = lr_at(step, cfg.lr, cfg.warmup, cfg.steps)
    record = {"step": step, "loss": loss, "lr": step_lr, "tokens_per_s": tps,
              "padding": round(padding, 6), "grad_norm": grad_norm, "epoch": s.sampler.epoch}
    if s.cuda:
        record["mfu"] = None if peak is None else step_flops * tps / (peak * s.world)
    if s.log is not None:
        s.log.write(json.dumps(record) + "\n")
        s.log.flush()
    if progress is not None:
        progress(f"step {step + 1}/{cfg.steps} loss {loss:.4f} lr {step_lr:.2e} {tps:,.0f} tok/s"
                 + (f" mfu {record['mfu']:.1%}" if record.get("mfu") is not None else ""))


def _train(cfg: TrainConfig, *, progress, rank, local_rank, world) -> dict:
    s = _start(cfg, rank, local_rank, world)
    cfg = s.cfg
    progress = progress if rank == 0 else None
    step_flops = flops_per_token(s.model.config, cfg.seq_len)
    peak = _peak_flops(s.dev) if s.cuda else None
    slots_per_step = cfg.batch_size * cfg.seq_len * cfg.grad_accum  # global, all ranks
    first_loss = final_loss = None
    t_last, t_run, tokens_run = time.perf_counter(), 0.0, 0
    tokens_since = slots_since = 0  # real tokens and row positions since the last log line
    try:
        s.model.train()
        for step in range(s.start, cfg.steps):
            loss_sum, grad_norm, real = _step(s, step)
            tokens_since += real  # this rank's; summed over ranks at the log line
            slots_since += slots_per_step
            last = step == cfg.steps - 1
            if step % cfg.log_every == 0 or last or step == s.start:
                step_loss, tokens_since = _global(s, loss_sum, tokens_since)
                dt = time.perf_counter() - t_last
                tps = tokens_since / dt  # real tokens only: padding is not throughput
                t_run, tokens_run = t_run + dt, tokens_run + tokens_since
                _log_step(s, step, step_loss, tps, 1 - tokens_since / slots_since,
                          grad_norm.item(), step_flops, peak, progress)
                first_loss = step_loss if first_loss is None else first_loss
                final_loss = step_loss
                tokens_since = slots_since = 0
                t_last = time.perf_counter()
            if rank == 0 and (last or (cfg.ckpt_every and (step + 1) % cfg.ckpt_every == 0)):
                save_checkpoint(os.path.join(cfg.out_dir, "ckpt.pt"), {
                    "model": s.model.state_dict(), "optimizer": s.optimizer.state_dict(),
                    "step": step + 1, "data": s.sampler.state(), "rng": rng_state(s.cuda),
                    "config": asdict(s.model.config), "flavor": cfg.flavor,
                    "train": _train_args(s)})
                t_last = time.perf_counter()  # checkpoint time is not training throughput
    finally:
        if s.log is not None:
            s.log.close()
    summary = {"flavor": cfg.flavor, "params": s.model.num_params(), "steps": cfg.steps,
               "start_step": s.start, "first_loss": first_loss, "final_loss": final_loss,
               "tokens_per_s": tokens_run / t_run if t_run else None, "out_dir": cfg.out_dir,
               "rank": rank, "world_size": world}
    if world > 1:
        if not replicas_in_sync(s.model):
            raise RuntimeError(f"rank {rank}: parameters differ between data-parallel replicas")
        summary["replicas_in_sync"] = True
        dist.barrier()  # rank 0's last checkpoint is on disk when any rank returns
    return summary
