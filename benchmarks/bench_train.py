"""Benchmark the training path on this CPU; prints a table, writes bench-data/results-train.json.

    .venv/bin/python benchmarks/bench_train.py                       # ~3-5 minutes on 2 cores
    .venv/bin/python benchmarks/bench_train.py --threads 2 --data OUT   # windows of a real build

Three measurements, each variant on identical inputs in one run, timed variants interleaved
(A B A B ...) so that load from other processes hits both alike; medians reported.

1. **Training tokens/s**: one optimiser step (forward, backward, gradient clipping, AdamW) on
   the same (B, T) windows. fimpack: ``Gemma`` with document-masked ``segments`` attention and
   the chunked loss, as ``train()`` runs it. Baseline: a nanoGPT-style GPT (learned positions,
   LayerNorm, GELU MLP, full multi-head attention computed naively: ``q @ k^T``, a dense causal
   mask, softmax, ``@ v``; full-vocabulary logits and ``F.cross_entropy``) whose MLP width is
   chosen so its parameter count matches (both counts are printed). The baseline attends over
   the whole row as nanoGPT does; fimpack only within each document, which is both what
   packed training should compute and part of why it is faster. Windows come from synthetic
   documents (lengths log-uniform in [32, 4096] tokens) or from ``--data``'s train shards;
   the mean number of documents per window is reported.
2. **Document-masked attention**, T=2048 with 8 documents per row (random boundaries),
   forward + backward: ``segments`` (fused causal SDPA per document) vs one SDPA call with a
   dense (B, 1, T, T) boolean mask (``sdpa_mask``), plus the naive ``eager`` reference.
3. **Peak memory of the loss** at vocabulary 32k: the chunked loss vs full-vocabulary
   cross-entropy, forward + backward of ``h @ W^T`` for N tokens. Each variant runs in a fresh
   process; the number is the growth of its peak resident set size (the kernel's high-water
   mark ``VmHWM``, which sees every page torch touches, reset through ``/proc/self/clear_refs``
   once the inputs are allocated and the kernels warmed up on a tiny problem) over the RSS at
   that moment. (``getrusage``'s ru_maxrss would not do: Linux carries it across fork and
   exec, so a child of this process starts with the parent's peak.)
   The fp32 logits alone would take N * V * 4 bytes; that is printed beside it.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from fimpack.model.gemma import Gemma, attention, chunked_cross_entropy, config_for
from fimpack.train.trainer import make_optimizer


# ---------------------------------------------------------------------------------------------
# the baseline: nanoGPT's model, slow-attention path


class GPTBlock(nn.Module):
    def __init__(self, d: int, n_heads: int, hidden: int, block_size: int):
        super().__init__()
        self.n_heads = n_heads
        self.ln_1, self.ln_2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.c_attn = nn.Linear(d, 3 * d, bias=False)
        self.c_proj = nn.Linear(d, d, bias=False)
        self.c_fc = nn.Linear(d, hidden, bias=False)
        self.mlp_proj = nn.Linear(hidden, d, bias=False)
        self.register_buffer("bias", torch.tril(torch.ones(block_size, block_size))
                             .view(1, 1, block_size, block_size), persistent=False)

    def attn(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_heads, C // self.n_heads).transpose(1, 2)
                   for t in (q, k, v))  # (B, nh, T, hs)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))  # (B, nh, T, T)
        att = att.masked_fill(self.bias[:, :, :T, :T] == 0, float("-inf"))
        att = F.softmax(att, dim=-1)
        y = att @ v
        return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x))))


class GPT(nn.Module):
    def __init__(self, vocab: int, d: int, n_layers: int, n_heads: int, hidden: int,
                 block_size: int):
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Embedding(block_size, d)
        self.blocks = nn.ModuleList(GPTBlock(d, n_heads, hidden, block_size)
                                    for _ in range(n_layers))
        self.ln_f = nn.LayerNorm(d)
        for p in self.parameters():
            if p.dim() >= 2:
                nn.init.normal_(p, std=0.02)

    def forward(self, idx, targets):
        T = idx.shape[1]
        x = self.wte(idx) + self.wpe(torch.arange(T, device=idx.device))
        for block in self.blocks:
            x = block(x)
        logits = F.linear(self.ln_f(x), self.wte.weight)  # (B, T, V): the full logits, tied
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1),
                               ignore_index=-100)


def matched_baseline(gemma: Gemma, block_size: int) -> GPT:
    """A GPT with Gemma's width, depth, query heads and vocabulary, its MLP width chosen so
    the parameter counts match as closely as possible."""
    c = gemma.config
    target = gemma.num_params()
    with torch.device("meta"):  # shapes only
        one = sum(p.numel() for p in GPT(c.vocab_size, c.d_model, c.n_layers, c.n_heads, 1,
                                         block_size).parameters())
    per_unit = 2 * c.d_model * c.n_layers  # parameters per unit of MLP width
    hidden = round((target - (one - per_unit)) / per_unit)
    return GPT(c.vocab_size, c.d_model, c.n_layers, c.n_heads, hidden, block_size)


# ---------------------------------------------------------------------------------------------
# inputs


def synthetic_windows(batch: int, seq_len: int, vocab: int, seed: int):
    """(inputs, doc_ids, targets) from documents of log-uniform length in [32, 4096]."""
    rng = np.random.default_rng(seed)
    need = batch * (seq_len + 1) + 1
    lengths = []
    while sum(lengths) < need + 4096:
        lengths.append(int(np.exp(rng.uniform(np.log(32), np.log(4096)))))
    doc = np.repeat(np.arange(len(lengths)), lengths)
    tokens = rng.integers(4, vocab, size=len(doc))
    start = int(rng.integers(0, 4096))
    from fimpack.train.data import Batch
    rows = [slice(start + b * seq_len, start + b * seq_len + seq_len + 1) for b in range(batch)]
    return Batch(np.stack([tokens[r] for r in rows]), np.stack([doc[r] for r in rows])).tensors()


def build_windows(data: str, batch: int, seq_len: int, seed: int):
    from fimpack.train.data import TokenStream, WindowSampler
    return WindowSampler(TokenStream(data, "train"), seq_len, batch, seed).next_batch().tensors()


def docs_per_window(doc_ids: torch.Tensor) -> float:
    return float(((doc_ids[:, 1:] != doc_ids[:, :-1]).sum(1) + 1).float().mean())


# ---------------------------------------------------------------------------------------------
# timing


def interleaved(fns: dict, reps: int, warmup: int = 1) -> dict:
    """{name: [seconds per call]}: warm-up calls first, then rounds of one call each."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return times


def bench_training(args) -> dict:
    torch.manual_seed(0)
    vocab = args.vocab
    gemma = Gemma(config_for(args.flavor, vocab_size=vocab, attention="segments"))
    gpt = matched_baseline(gemma, args.seq_len)
    if args.data:
        inputs, doc_ids, targets = build_windows(args.data, args.batch_size, args.seq_len, 0)
        vocab_used = int(max(inputs.max(), targets.max())) + 1
        assert vocab_used <= vocab, f"--vocab must be at least {vocab_used} for {args.data}"
    else:
        inputs, doc_ids, targets = synthetic_windows(args.batch_size, args.seq_len, vocab, 0)

    def step_fn(model, loss_fn):
        opt = make_optimizer(model, 1e-4, fused=False)

        def step():
            loss = loss_fn()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
        return step

    fns = {"fimpack": step_fn(gemma, lambda: gemma(inputs, doc_ids, targets)),
           "nanogpt": step_fn(gpt, lambda: gpt(inputs, targets))}
    times = interleaved(fns, args.steps)
    tokens = inputs.numel()
    result = {"tokens_per_step": tokens, "docs_per_window": docs_per_window(doc_ids),
              "params": {"fimpack": gemma.num_params(),
                         "nanogpt": sum(p.numel() for p in gpt.parameters())},
              "baseline_mlp_hidden": gpt.blocks[0].c_fc.out_features}
    for name, ts in times.items():
        result[name] = {"seconds_per_step": statistics.median(ts),
                        "tokens_per_s": tokens / statistics.median(ts), "runs": ts}
    result["speedup"] = result["fimpack"]["tokens_per_s"] / result["nanogpt"]["tokens_per_s"]
    return result


def bench_attention(args) -> dict:
    gen = torch.Generator().manual_seed(0)
    B, T, nh, nkv, hs = args.attn_batch, 2048, 8, 1, 64
    q0 = torch.randn(B, nh, T, hs, generator=gen)
    k0, v0 = (torch.randn(B, nkv, T, hs, generator=gen) for _ in range(2))
    up = torch.randn(B, nh, T, hs, generator=gen)
    rows = []
    for _ in range(B):  # 8 documents: 7 distinct random cut points
        cuts = torch.randperm(T - 1, generator=gen)[:7] + 1
        start = torch.zeros(T, dtype=torch.long)
        start[cuts] = 1
        rows.append(start.cumsum(0))
    doc_ids = torch.stack(rows)

    def fwd_bwd(backend):
        def run():
            q, k, v = (t.clone().requires_grad_() for t in (q0, k0, v0))
            (attention(q, k, v, doc_ids, backend) * up).sum().backward()
        return run

    fns = {b: fwd_bwd(b) for b in ("segments", "sdpa_mask", "eager")}
    times = interleaved(fns, args.attn_reps)
    result = {"shape": {"B": B, "T": T, "n_heads": nh, "n_kv_heads": nkv, "head_dim": hs,
                        "documents_per_row": 8}}
    for name, ts in times.items():
        result[name] = {"ms": 1000 * statistics.median(ts), "runs": ts}
    result["speedup_vs_sdpa_mask"] = result["sdpa_mask"]["ms"] / result["segments"]["ms"]
    result["speedup_vs_eager"] = result["eager"]["ms"] / result["segments"]["ms"]
    return result


# ---------------------------------------------------------------------------------------------
# memory: one fresh process per variant


def memory_child(variant: str, tokens: int, vocab: int, d: int, chunk: int) -> dict:
    gen = torch.Generator().manual_seed(0)

    def loss_fn(h, w, t):
        if variant == "chunked":
            return chunked_cross_entropy(h, w, t, chunk=chunk)
        return F.cross_entropy(F.linear(h, w).float(), t, ignore_index=-100)

    # warm up kernels and thread pools on a tiny problem: it must not raise the peak
    h = torch.randn(8, d, generator=gen, requires_grad=True)
    w = torch.randn(64, d, generator=gen, requires_grad=True)
    loss_fn(h, w, torch.randint(0, 64, (8,))).backward()
    # filled in place: no temporary copies that would raise the peak before the measurement
    h = torch.empty(tokens, d).normal_(0, 0.5, generator=gen).requires_grad_()
    w = torch.empty(vocab, d).normal_(0, 0.02, generator=gen).requires_grad_()
    t = torch.randint(0, vocab, (tokens,), generator=gen)
    before = reset_peak_rss()
    t0 = time.perf_counter()
    loss_fn(h, w, t).backward()
    seconds = time.perf_counter() - t0
    after = peak_rss_kb()
    return {"peak_rss_growth_mb": (after - before) / 1024, "seconds": seconds}


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def reset_peak_rss() -> int:
    """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS; that RSS in KiB."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # Linux >= 4.0: "reset the peak resident set size"
    return _status_kb("VmRSS")


def peak_rss_kb() -> int:
    return _status_kb("VmHWM")


def bench_memory(args) -> dict:
    result = {"tokens": args.mem_tokens, "vocab": args.mem_vocab, "d_model": args.mem_d,
              "chunk": args.mem_chunk,
              "fp32_logits_mb": args.mem_tokens * args.mem_vocab * 4 / 2**20}
    for variant in ("full", "chunked"):
        out = subprocess.run(
            [sys.executable, __file__, "--memory-child", variant, "--threads", str(args.threads),
             "--mem-tokens", str(args.mem_tokens), "--mem-vocab", str(args.mem_vocab),
             "--mem-d", str(args.mem_d), "--mem-chunk", str(args.mem_chunk)],
            check=True, capture_output=True, text=True)
        result[variant] = json.loads(out.stdout.strip().splitlines()[-1])
    result["reduction"] = (result["full"]["peak_rss_growth_mb"]
                           / max(1e-9, result["chunked"]["peak_rss_growth_mb"]))
    return result


# ---------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch intra-op threads (1: steadiest on a shared machine)")
    ap.add_argument("--flavor", default="tiny")
    ap.add_argument("--vocab", type=int, default=32_000)
    ap.add_argument("--seq-len", type=int, default=1024)
    ap.add_argument("--batch-size", type=int, default=2)
    ap.add_argument("--steps", type=int, default=3, help="timed steps per variant")
    ap.add_argument("--data", help="a build folder: time on its train windows")
    ap.add_argument("--attn-batch", type=int, default=2)
    ap.add_argument("--attn-reps", type=int, default=5)
    ap.add_argument("--mem-tokens", type=int, default=8192)
    ap.add_argument("--mem-vocab", type=int, default=32_000)
    ap.add_argument("--mem-d", type=int, default=384)
    ap.add_argument("--mem-chunk", type=int, default=1024)
    ap.add_argument("--skip", action="append", default=[],
                    choices=["training", "attention", "memory"])
    ap.add_argument("--out", default="bench-data/results-train.json")
    ap.add_argument("--memory-child", choices=["full", "chunked"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    if args.memory_child:
        print(json.dumps(memory_child(args.memory_child, args.mem_tokens, args.mem_vocab,
                                      args.mem_d, args.mem_chunk)))
        return 0

    results = {"torch": torch.__version__, "threads": args.threads, "cpu_count": os.cpu_count(),
               "load_avg_at_start": os.getloadavg()}
    rows = []
    if "training" not in args.skip:
        r = results["training"] = bench_training(args)
        rows += [("training tokens/s", f"{args.flavor}, V={args.vocab}, "
                  f"B={args.batch_size} T={args.seq_len}, "
                  f"{r['docs_per_window']:.1f} docs/window",
                  f"{r['fimpack']['tokens_per_s']:,.0f}", f"{r['nanogpt']['tokens_per_s']:,.0f}",
                  f"{r['speedup']:.2f}x", ">= 2x"),
                 ("  params", "fimpack / nanoGPT", f"{r['params']['fimpack']:,}",
                  f"{r['params']['nanogpt']:,}", "", "")]
    if "attention" not in args.skip:
        r = results["attention"] = bench_attention(args)
        rows += [("attention fwd+bwd ms", f"B={args.attn_batch} T=2048, 8 docs/row",
                  f"{r['segments']['ms']:.1f}", f"{r['sdpa_mask']['ms']:.1f} (sdpa_mask)",
                  f"{r['speedup_vs_sdpa_mask']:.2f}x", ">= 1.5x"),
                 ("", "", "", f"{r['eager']['ms']:.1f} (eager)",
                  f"{r['speedup_vs_eager']:.2f}x", "")]
    if "memory" not in args.skip:
        r = results["memory"] = bench_memory(args)
        rows += [("loss peak RSS growth MB", f"N={args.mem_tokens} V={args.mem_vocab} "
                  f"(fp32 logits {r['fp32_logits_mb']:,.0f} MB)",
                  f"{r['chunked']['peak_rss_growth_mb']:,.0f}",
                  f"{r['full']['peak_rss_growth_mb']:,.0f}", f"{r['reduction']:.1f}x less", ""),
                 ("  loss fwd+bwd seconds", "", f"{r['chunked']['seconds']:.2f}",
                  f"{r['full']['seconds']:.2f}", "", "")]

    head = ("measurement", "setting", "fimpack", "baseline", "ratio", "target")
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    for row in [head] + rows:
        print("  ".join(str(x).ljust(w) for x, w in zip(row, widths)))
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=2)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
