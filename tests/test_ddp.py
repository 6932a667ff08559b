"""Data-parallel training under torchrun (gloo on CPU): each rank reads its own slice of every
batch, and two processes train exactly like one process with the same global batch."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from fimpack.train.data import TokenStream, WindowSampler
from fimpack.train.trainer import train

from test_train import cyclic_docs, write_build



pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def test_ranks_read_disjoint_slices_that_make_up_the_single_process_batch(tmp_path):
    root = write_build(tmp_path, [cyclic_docs(30, seed=1), cyclic_docs(30, seed=2)])
    stream = TokenStream(root)
    single = WindowSampler(stream, 16, 6, seed=4)
    ranks = [WindowSampler(stream, 16, 6, seed=4, rank=r, world_size=3) for r in range(3)]
    for _ in range(3 * single.n_windows // 6 + 2):  # across epochs
        want = single.next_batch()
        got = [s.next_batch() for s in ranks]
        assert all(g.tokens.shape == (2, 17) for g in got)
        assert np.array_equal(np.concatenate([g.tokens for g in got]), want.tokens)
        assert np.array_equal(np.concatenate([g.doc_ids for g in got]), want.doc_ids)
    assert all(s.state() == single.state() for s in ranks)  # resumable on any world size
    with pytest.raises(ValueError, match="does not split"):
        WindowSampler(stream, 16, 5, rank=0, world_size=2)


def read_log(out):
    with open(os.path.join(out, "log.jsonl")) as f:
        return [json.loads(line) for line in f]


@pytest.mark.parametrize("packing", ["stream", "packed"])
def test_torchrun_two_processes_train_like_one(tmp_path, packing):
    root = write_build(tmp_path / "data", [cyclic_docs(60, seed=1), cyclic_docs(60, seed=2)],
                       seq_len=200)
    # the CLI's options only (warmup: the default, 5% of steps)
    args = dict(steps=8, batch_size=8, grad_accum=2, lr=2e-3, seed=3, packing=packing,
                **({"seq_len": 32} if packing == "stream" else {}))
    single = str(tmp_path / "single")
    train(root, "debug", args["steps"], single, **{k: v for k, v in args.items() if k != "steps"})

    ddp = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "fimpack", "train", "--data", root, "--flavor", "debug", "--out", str(ddp)]
    for key, value in args.items():
        cmd += [f"--{key.replace('_', '-')}", str(value)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # each rank returns a summary (the CLI may print rank 0's alone); a rank whose parameters
    # drifted from the others' raises instead
    summaries = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert 0 in [s["rank"] for s in summaries]
    assert all(s["world_size"] == 2 and s["replicas_in_sync"] for s in summaries)
    assert len({s["final_loss"] for s in summaries}) == 1

    want, got = read_log(single), read_log(ddp)
    assert [r["step"] for r in got] == list(range(8))  # rank 0 alone writes the log
    assert got[-1]["loss"] < 0.7 * got[0]["loss"]  # it learns
    for a, b in zip(got, want):
        assert a["lr"] == b["lr"]
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5, abs=1e-6)
        assert a["grad_norm"] == pytest.approx(b["grad_norm"], rel=1e-4)
    assert sorted(os.listdir(ddp)) == ["ckpt.pt", "config.json", "log.jsonl"]
    assert json.loads((ddp / "config.json").read_text())["train"]["world_size"] == 2
    ckpt = torch.load(ddp / "ckpt.pt", weights_only=True)
    ref = torch.load(os.path.join(single, "ckpt.pt"), weights_only=True)
    for name, tensor in ckpt["model"].items():
        torch.testing.assert_close(tensor, ref["model"][name], atol=1e-5, rtol=1e-4)
