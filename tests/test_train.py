"""The data loader over token shards and the training loop: windows, document masking of
targets, determinism, the learning rate schedule, learning, logging and exact resumption."""
import json
import os

import numpy as np
import pytest
import torch

from fimpack.packing.shards import encode_shard
from fimpack.train.data import (IGNORE, PAD_DOC, Batch, PackedRows, PackedSampler, TokenStream,
                                WindowSampler)
from fimpack.train.trainer import MIN_LR_RATIO, lr_at, train

BOS, EOS, VOCAB = 1, 2, 512


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def write_build(root, shards, vocab=VOCAB, split="train", seq_len=256):
    """A build folder as the pipeline writes it: tokens/{split}-i-of-n.bin/.idx/.packs.npy
    (documents packed in their order, a new sequence when the next one does not fit) and a
    manifest."""
    os.makedirs(root / "tokens", exist_ok=True)
    for i, docs in enumerate(shards):
        data, index = encode_shard(docs, np.uint16)
        prefix = root / "tokens" / f"{split}-{i:05d}-of-{len(shards):05d}"
        prefix.with_suffix(".bin").write_bytes(data)
        prefix.with_suffix(".idx").write_bytes(index)
        if max(len(d) for d in docs) > seq_len:
            continue  # a stream-only build: no packed sequences
        starts, used = [0], 0
        for d, ids in enumerate(docs):
            if used + len(ids) > seq_len:
                starts.append(d)
                used = 0
            used += len(ids)
        starts.append(len(docs))
        np.save(str(prefix) + ".packs.npy", np.array(starts, dtype=np.int64))
    manifest = {"config": {"seq_len": seq_len}, "tokenizer": {"vocab_size": vocab, "bos_id": BOS, "eos_id": EOS, "pad_id": 0,
                              "control_ids": {"<|fim_prefix|>": 3, "<|fim_suffix|>": 4,
                                              "<|fim_middle|>": 5, "<|file_separator|>": 6}}}
    (root / "manifest.json").write_text(json.dumps(manifest))
    return str(root)


def doc(body):
    return np.concatenate([[BOS], np.asarray(body), [EOS]])


def cyclic_docs(n_docs, seed=0, period=24):
    """Documents that cycle through a fixed token pattern from a random phase: after a few
    steps a model predicts every token but the first of each document."""
    rng = np.random.default_rng(seed)
    pattern = np.arange(10, 10 + period)
    return [doc(np.roll(pattern, -int(rng.integers(period)))[np.arange(int(rng.integers(40, 160)))
                                                               % period])
            for _ in range(n_docs)]


@pytest.fixture
def two_shards(tmp_path):
    rng = np.random.default_rng(0)
    docs = [doc(rng.integers(10, VOCAB, size=int(rng.integers(1, 30)))) for _ in range(60)]
    return write_build(tmp_path, [docs[:25], docs[25:]]), docs


# ---------------------------------------------------------------------------------------------
# data


def test_stream_reads_across_shards(two_shards):
    root, docs = two_shards
    stream = TokenStream(root, "train")
    flat = np.concatenate(docs)
    doc_of = np.repeat(np.arange(len(docs)), [len(d) for d in docs])
    assert len(stream) == len(flat) and stream.n_documents == 60
    edge = sum(len(d) for d in docs[:25])  # first token of the second shard
    for start, stop in [(0, len(flat)), (edge - 7, edge + 9), (edge, edge + 3), (5, 6)]:
        assert np.array_equal(stream.tokens(start, stop), flat[start:stop])
        assert np.array_equal(stream.doc_ids(start, stop), doc_of[start:stop])
    with pytest.raises(FileNotFoundError):
        TokenStream(root, "validation")


def test_targets_ignore_exactly_the_first_token_of_each_document(two_shards):
    root, _ = two_shards
    sampler = WindowSampler(TokenStream(root), seq_len=32, batch_size=4, seed=0)
    for _ in range(5):
        batch = sampler.next_batch()
        assert batch.tokens.shape == batch.doc_ids.shape == (4, 33)
        inputs, doc_ids, targets = batch.tensors()
        assert inputs.shape == doc_ids.shape == targets.shape == (4, 32)
        assert np.array_equal(inputs.numpy(), batch.tokens[:, :-1])
        # BOS occurs only at document starts: a target is ignored iff it is a BOS
        opens_doc = batch.tokens[:, 1:] == BOS
        assert np.array_equal(targets.numpy() == IGNORE, opens_doc)
        kept = ~opens_doc
        assert np.array_equal(targets.numpy()[kept], batch.tokens[:, 1:][kept])
        # doc ids step up by one exactly where a BOS appears
        steps = np.diff(batch.doc_ids, axis=1)
        assert np.array_equal(steps, (batch.tokens[:, 1:] == BOS).astype(steps.dtype))


def test_each_epoch_uses_every_window_once(tmp_path):
    # token value = its position in the stream, so a window says where it came from
    values = np.arange(1000, 1000 + 700)
    root = write_build(tmp_path, [[values[:300]], [values[300:]]], vocab=4096)
    T = 16
    sampler = WindowSampler(TokenStream(root), seq_len=T, batch_size=4, seed=3)
    n = sampler.n_windows
    assert n == (700 - 1) // T
    starts, targets = [], []
    while sampler.position < 2 * n:
        batch = sampler.next_batch()
        starts += (batch.tokens[:, 0] - 1000).tolist()
        targets += (batch.tokens[:, 1:] - 1000).ravel().tolist()
    for epoch in range(2):  # the last batch of an epoch runs on into the next one
        these = starts[epoch * n:(epoch + 1) * n]
        assert sorted(these) == [w * T for w in range(n)]
        assert sorted(targets[epoch * n * T:(epoch + 1) * n * T]) == list(range(1, n * T + 1))
        assert these != sorted(these)  # shuffled
    assert starts[:n] != starts[n:2 * n]  # a new order each epoch


def test_sampler_is_deterministic_and_resumable(two_shards):
    root, _ = two_shards
    stream = TokenStream(root)

    def batches(sampler, n):
        return [sampler.next_batch().tokens for _ in range(n)]

    a = WindowSampler(stream, 20, 3, seed=7)
    run = batches(a, 40)
    assert a.epoch > 2  # crosses epochs, each with its own permutation
    again = batches(WindowSampler(stream, 20, 3, seed=7), 40)
    assert all(np.array_equal(x, y) for x, y in zip(run, again))
    other = batches(WindowSampler(stream, 20, 3, seed=8), 40)
    assert not all(np.array_equal(x, y) for x, y in zip(run, other))
    first = WindowSampler(stream, 20, 3, seed=7)
    batches(first, 15)  # stop mid-epoch
    state = json.loads(json.dumps(first.state()))  # plain data, fits in a checkpoint
    resumed = WindowSampler(stream, 20, 3, seed=0)
    resumed.load_state(state)
    assert all(np.array_equal(x, y) for x, y in zip(batches(resumed, 25), run[15:]))
    with pytest.raises(ValueError):
        WindowSampler(stream, 21, 3).load_state(state)


# ---------------------------------------------------------------------------------------------
# trainer


def test_lr_warms_up_then_decays_to_the_floor():
    peak, warmup, total = 1e-3, 10, 110
    assert lr_at(0, peak, warmup, total) == pytest.approx(peak / 10)
    assert lr_at(9, peak, warmup, total) == pytest.approx(peak)
    assert lr_at(10, peak, warmup, total) == pytest.approx(peak)
    mid = lr_at(60, peak, warmup, total)
    assert mid == pytest.approx(peak * (MIN_LR_RATIO + (1 - MIN_LR_RATIO) / 2))
    assert lr_at(110, peak, warmup, total) == pytest.approx(peak * MIN_LR_RATIO)
    lrs = [lr_at(s, peak, warmup, total) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))


def read_log(out):
    with open(os.path.join(out, "log.jsonl")) as f:
        return [json.loads(line) for line in f]


def test_loss_falls_on_a_learnable_stream(tmp_path):
    root = write_build(tmp_path / "data", [cyclic_docs(120)])
    out = str(tmp_path / "run")
    lines = []
    summary = train(root, "debug", 30, out, seq_len=64, batch_size=8, lr=3e-3, warmup=3,
                    progress=lines.append, packing="stream")
    log = read_log(out)
    assert [r["step"] for r in log] == list(range(30))
    assert all({"step", "loss", "lr", "tokens_per_s", "grad_norm"} <= r.keys() for r in log)
    assert all(r["tokens_per_s"] > 0 for r in log) and "mfu" not in log[0]  # CPU: no mfu
    assert len(lines) == 30 and lines[-1].startswith("step 30/30 loss")
    # starts near uniform over the vocabulary, ends far below it
    assert abs(log[0]["loss"] - np.log(VOCAB)) < 1.0
    assert summary["first_loss"] == log[0]["loss"] and summary["final_loss"] == log[-1]["loss"]
    assert summary["final_loss"] < 0.4 * summary["first_loss"]
    config = json.load(open(os.path.join(out, "config.json")))
    assert config["model"]["vocab_size"] == VOCAB and config["flavor"] == "debug"
    assert sorted(os.listdir(out)) == ["ckpt.pt", "config.json", "log.jsonl"]  # no temp file
    json.dumps(summary)  # the CLI prints it


@pytest.mark.parametrize("packing", ["stream", "packed"])
def test_resume_continues_exactly_like_an_uninterrupted_run(tmp_path, packing):
    root = write_build(tmp_path / "data", [cyclic_docs(60, seed=1), cyclic_docs(60, seed=2)],
                       seq_len=200)
    kwargs = dict(batch_size=4, grad_accum=2, lr=2e-3, warmup=2, seed=5, packing=packing,
                  **({"seq_len": 32} if packing == "stream" else {}))
    straight = str(tmp_path / "straight")
    train(root, "debug", 8, straight, **kwargs)

    class Crash(Exception):
        pass

    def crash_at_step_6(line):
        if line.startswith("step 6/"):
            raise Crash

    broken = str(tmp_path / "broken")
    with pytest.raises(Crash):  # dies after step 6; the last checkpoint is after step 4
        train(root, "debug", 8, broken, ckpt_every=4, progress=crash_at_step_6, **kwargs)
    assert [r["step"] for r in read_log(broken)] == list(range(6))
    summary = train(root, "debug", 8, broken, ckpt_every=4, resume=True, **kwargs)
    assert summary["start_step"] == 4
    want, got = read_log(straight), read_log(broken)
    assert [r["step"] for r in got] == list(range(8))  # steps 4, 5 replaced, not duplicated
    assert [r["loss"] for r in got] == [r["loss"] for r in want]  # bit-exact on CPU
    assert [r["grad_norm"] for r in got] == [r["grad_norm"] for r in want]
    assert summary["final_loss"] == want[-1]["loss"]


def test_grad_accumulation_matches_one_big_batch(tmp_path):
    root = write_build(tmp_path / "data", [cyclic_docs(60)])
    common = dict(seq_len=32, lr=1e-3, warmup=1, clip=0.0, packing="stream")
    train(root, "debug", 3, str(tmp_path / "big"), batch_size=8, **common)
    train(root, "debug", 3, str(tmp_path / "accum"), batch_size=4, grad_accum=2, **common)
    big, accum = read_log(tmp_path / "big"), read_log(tmp_path / "accum")
    # the same 8 windows per step; the means differ only by the ignored-target counts of the
    # two halves, so losses and gradient norms agree closely (not a factor 2 apart)
    for b, a in zip(big, accum):
        assert a["loss"] == pytest.approx(b["loss"], rel=0.02)
        assert a["grad_norm"] == pytest.approx(b["grad_norm"], rel=0.05)


def test_resume_refuses_a_different_model(tmp_path):
    root = write_build(tmp_path / "data", [cyclic_docs(30)])
    out = str(tmp_path / "run")
    train(root, "debug", 1, out, seq_len=32, batch_size=2, packing="stream")
    with pytest.raises(ValueError, match="different model"):
        train(root, "tiny", 2, out, seq_len=32, batch_size=2, resume=True, packing="stream")


# ---------------------------------------------------------------------------------------------
# packed rows: the build's sequences, as packs.npy lists them


def test_a_packed_row_is_exactly_the_examples_packs_lists(tmp_path):
    docs = cyclic_docs(40, seed=3)
    root = write_build(tmp_path, [docs[:25], docs[25:]], seq_len=200)
    rows = PackedRows(root)
    sampler = PackedSampler(rows, 200, 4, pad_id=0)
    packs = [np.load(tmp_path / "tokens" / f"train-0000{k}-of-00002.packs.npy") for k in (0, 1)]
    assert len(rows) == sum(len(p) - 1 for p in packs)
    seen = []
    for r in range(len(rows)):
        k, s = rows.index[r]
        members = docs[:25][packs[k][s]:packs[k][s + 1]] if k == 0 else \
            docs[25:][packs[k][s]:packs[k][s + 1]]
        tokens, doc_ids = sampler.fetch(r)
        n = sum(len(m) for m in members)
        assert np.array_equal(tokens[:n], np.concatenate(members))
        assert np.array_equal(doc_ids[:n], np.repeat(np.arange(len(members)),
                                                     [len(m) for m in members]))
        assert np.all(tokens[n:] == 0) and np.all(doc_ids[n:] == PAD_DOC) and n < 201
        seen += [tuple(m) for m in members]
    assert sorted(seen) == sorted(tuple(d) for d in docs)  # every example once, whole

    batch = Batch(*map(np.stack, zip(*(sampler.fetch(r) for r in range(3)))))
    _, _, targets = batch.tensors()
    pads = batch.doc_ids[:, 1:] == PAD_DOC
    assert torch.all(targets[torch.from_numpy(pads)] == IGNORE)  # pads carry no loss
    assert batch.real_tokens == int((batch.doc_ids[:, :-1] != PAD_DOC).sum())


@pytest.mark.parametrize("attention", ["eager", "segments", "sdpa_mask"])
def test_packed_rows_attend_and_position_per_document(tmp_path, attention):
    """Each example of a packed row gets exactly the logits it gets alone, whatever the
    attention backend: attention never crosses a document (nor reaches the padding) and RoPE
    positions restart at each one."""
    from fimpack.model.gemma import Gemma, config_for

    docs = cyclic_docs(12, seed=4)
    root = write_build(tmp_path, [docs], seq_len=400)
    sampler = PackedSampler(PackedRows(root), 400, 1, pad_id=0)
    tokens, doc_ids = sampler.fetch(0)
    assert (doc_ids == PAD_DOC).sum() > 10  # the row has padding to ignore
    torch.manual_seed(0)
    model = Gemma(config_for("debug", vocab_size=VOCAB, attention=attention)).eval()
    with torch.no_grad():
        packed = model(torch.from_numpy(tokens[None, :-1]), torch.from_numpy(doc_ids[None, :-1]))
        for d in range(int(doc_ids.max()) + 1):
            where = np.flatnonzero(doc_ids[:-1] == d)
            alone = model(torch.from_numpy(tokens[None, where]))
            torch.testing.assert_close(packed[0, where], alone[0], rtol=1e-5, atol=1e-5)


def test_packed_ranks_split_the_rows_of_each_batch(tmp_path):
    root = write_build(tmp_path, [cyclic_docs(30, seed=1), cyclic_docs(30, seed=2)], seq_len=200)
    rows = PackedRows(root)
    single = PackedSampler(rows, 200, 4, pad_id=0, seed=2)
    ranks = [PackedSampler(rows, 200, 4, pad_id=0, seed=2, rank=r, world_size=2)
             for r in range(2)]
    for _ in range(3 * len(rows) // 4 + 2):  # across epochs
        want = single.next_batch()
        got = [s.next_batch() for s in ranks]
        assert np.array_equal(np.concatenate([g.tokens for g in got]), want.tokens)
    assert all(s.state() == single.state() for s in ranks)


def test_packed_mode_takes_the_builds_seq_len(tmp_path):
    root = write_build(tmp_path / "data", [cyclic_docs(30)], seq_len=200)
    with pytest.raises(ValueError, match="packed sequences of 200 tokens"):
        train(root, "debug", 1, str(tmp_path / "run"), seq_len=64, batch_size=2)
    out = str(tmp_path / "ok")
    train(root, "debug", 2, out, batch_size=2)
    log = read_log(out)
    assert json.load(open(os.path.join(out, "config.json")))["train"]["seq_len"] == 200
    assert all(0 < r["padding"] < 1 for r in log)  # padding reported, real tokens counted
