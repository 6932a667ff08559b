"""Packed rows vs stream windows: real tokens per second of training, side by side.

    .venv/bin/python benchmarks/bench_packing.py --data OUT [--flavor tiny] [--steps 30]

Same build, same model shape and initial weights, same batch (B rows of the build's
seq_len): one optimiser step on a packed batch (``PackedSampler``: the build's sequences,
padded) and one on a stream batch (``WindowSampler``: windows of the concatenated
documents), interleaved A B A B so load from other processes hits both alike. Reports the
median seconds per step, real (non-padding) tokens per second, the padding fraction and the
ratio packed / stream. Writes bench-data/results-packing.json.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch

from fimpack.config import recorded_setting
from fimpack.model.gemma import Gemma, config_for
from fimpack.train.data import PackedRows, PackedSampler, TokenStream, WindowSampler
from fimpack.train.trainer import make_optimizer


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True, help="a build's output folder")
    ap.add_argument("--flavor", default="tiny")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--steps", type=int, default=30, help="timed steps per mode")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--out", default="bench-data/results-packing.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    manifest = json.load(open(os.path.join(args.data, "manifest.json")))
    T, tok = recorded_setting(manifest["config"], "seq_len"), manifest["tokenizer"]
    samplers = {
        "packed": PackedSampler(PackedRows(args.data), T, args.batch_size, tok["pad_id"], seed=0),
        "stream": WindowSampler(TokenStream(args.data), T, args.batch_size, seed=0),
    }
    runs = {}
    for name in samplers:
        torch.manual_seed(0)
        model = Gemma(config_for(args.flavor, vocab_size=tok["vocab_size"]))
        runs[name] = (model, make_optimizer(model, 1e-3, fused=False))
    seconds = {n: [] for n in samplers}
    real = {n: [] for n in samplers}
    for step in range(args.warmup + args.steps):
        for name, sampler in samplers.items():
            batch = sampler.next_batch()
            inputs, doc_ids, targets = batch.tensors()
            model, opt = runs[name]
            t0 = time.perf_counter()
            loss = model(inputs, doc_ids, targets)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            dt = time.perf_counter() - t0
            if step >= args.warmup:
                seconds[name].append(dt)
                real[name].append(batch.real_tokens)
    report = {"data": args.data, "flavor": args.flavor, "seq_len": T,
              "batch_size": args.batch_size, "steps": args.steps, "threads": args.threads}
    for name in samplers:
        slots = args.batch_size * T * len(seconds[name])
        report[name] = {
            "median_step_s": round(statistics.median(seconds[name]), 4),
            "real_tokens_per_s": round(sum(real[name]) / sum(seconds[name]), 1),
            "padding": round(1 - sum(real[name]) / slots, 4)}
    report["packed_vs_stream_real_tokens_per_s"] = round(
        report["packed"]["real_tokens_per_s"] / report["stream"]["real_tokens_per_s"], 3)
    report["packed_vs_stream_step_time"] = round(
        report["stream"]["median_step_s"] / report["packed"]["median_step_s"], 3)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=1)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
