"""Training batches from the token shards: the build's packed sequences (default), or one
concatenated stream cut into windows (``--packing stream``).

Packed rows (``PackedSampler``)
-------------------------------
The build packs each shard's examples into sequences of ``seq_len`` tokens by best-fit
decreasing (99.7% utilisation on bench_pack's corpus at 8192) and records where each sequence
starts in ``tokens/SPLIT-k-of-n.packs.npy``. A training row is one such sequence: its examples
whole and in packed order, so a multi-file example (a repository's files in dependency order)
reaches the model in one piece, with the dependency before its importer in the same context.
The row is padded to ``seq_len + 1`` with the pad id; pads form one trailing document of
their own (doc id -1): no real token attends to them, they attend only to pads, and every
target that is a pad, or that would predict a pad, is ignored. RoPE positions restart at each
document and attention never crosses one, as in stream mode. Rows come in a per-epoch
permutation seeded by (seed, epoch); the position is how many rows were handed out, so resume
is exact. Fits: training at the build's ``seq_len`` to measure what packing is for (cross-file
context), at the cost of the padding (reported per step).

Stream windows (``WindowSampler``)
----------------------------------
The packing stage writes each training example (files of one repository in dependency order,
each plain or FIM-formatted, joined by ``<|file_separator|>``) as one document
``[bos] + tokens + [eos]``. Here all documents of a split
are read as one concatenated token stream, memory-mapped across shards, and cut into windows of
``T + 1`` tokens that overlap by one token, so every token of the stream is a target exactly once
per epoch. The window order is a seeded permutation per epoch.

Why concatenate and cut rather than pack whole documents into rows:
- nothing is padded: utilisation is 100%, where best-fit packing reaches ~99.7% (nanochat, real
  data, T=2048) and padding to the longest document far less;
- documents do get cut at window edges (nanochat measured 39% of documents cropped by greedy
  cropping vs ~23% for first-fit-decreasing at T=2048, 22.9% being the minimum), but a cut here
  only costs the second part its earlier context; no token is thrown away;
- the cross-document contamination that made plain concatenation worse than best-fit in Ding
  et al. 2024 ("Fewer Truncations") is removed by the document mask: ``doc_ids`` go with every
  window, attention stays inside a document, RoPE positions restart at each document start, and
  the target that would predict a new document's first token from the previous document (the
  token after an EOS) is set to -100.
A window that starts inside a document gives its first tokens positions from 0, as if the
document began there.

The sampler's position (``state()``) is the number of windows handed out so far plus the seed;
restoring it with ``load_state()`` continues with exactly the batches an uninterrupted run
would have seen.
"""
from __future__ import annotations

import glob
import json
import os
from dataclasses import dataclass

import numpy as np
import torch

from fimpack.config import recorded_setting
from fimpack.packing.shards import TokenShard

IGNORE = -100  # targets with this id are skipped by the loss
PAD_DOC = -1   # the document id of padding in packed rows


class TokenStream:
    """Every shard of one split as a single token stream, each shard memory-mapped."""

    def __init__(self, data_dir: str, split: str = "train"):
        paths = sorted(glob.glob(os.path.join(data_dir, "tokens", f"{split}-*-of-*.idx")))
        if not paths:
            raise FileNotFoundError(f"no {split} shards under {data_dir}/tokens")
        self.shards = [TokenShard.open(p[:-len(".idx")]) for p in paths]
        sizes = [len(s.tokens) for s in self.shards]
        self.shard_starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)  # (n+1,)
        # global token offset where each document starts, then the stream length: (D + 1,)
        self.doc_starts = np.concatenate(
            [s.offsets[:-1] + base for s, base in zip(self.shards, self.shard_starts)]
            + [self.shard_starts[-1:]]).astype(np.int64)

    def __len__(self) -> int:
        return int(self.shard_starts[-1])

    @property
    def n_documents(self) -> int:
        return len(self.doc_starts) - 1

    def tokens(self, start: int, stop: int) -> np.ndarray:
        """Token ids [start, stop) of the stream as int64, reading across shard edges."""
        out = np.empty(stop - start, dtype=np.int64)
        first = int(np.searchsorted(self.shard_starts, start, side="right")) - 1
        pos = start
        for i in range(first, len(self.shards)):
            if pos >= stop:
                break
            base = int(self.shard_starts[i])
            take = min(stop, int(self.shard_starts[i + 1])) - pos
            local = pos - base
            out[pos - start:pos - start + take] = self.shards[i].tokens[local:local + take]
            pos += take
        return out

    def doc_ids(self, start: int, stop: int) -> np.ndarray:
        """Document index of each token position in [start, stop)."""
        return np.searchsorted(self.doc_starts, np.arange(start, stop), side="right") - 1


@dataclass
class Batch:
    tokens: np.ndarray   # (B, T+1) windows of the stream
    doc_ids: np.ndarray  # (B, T+1) document index of each token

    @property
    def real_tokens(self) -> int:
        """Input positions that are not padding."""
        return int((self.doc_ids[:, :-1] != PAD_DOC).sum())

    def tensors(self, device="cpu") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(inputs, doc_ids, targets), each (B, T): targets are the inputs shifted by one, with
        -100 where the next token opens another document (nothing in this one predicts it)
        and where it is padding."""
        inputs = self.tokens[:, :-1]
        nxt = self.doc_ids[:, 1:]
        targets = np.where((nxt == self.doc_ids[:, :-1]) & (nxt != PAD_DOC), self.tokens[:, 1:],
                           IGNORE)
        out = [torch.from_numpy(np.ascontiguousarray(a)) for a in
               (inputs, self.doc_ids[:, :-1], targets)]
        if torch.device(device).type == "cuda":
            return tuple(t.pin_memory().to(device, non_blocking=True) for t in out)
        return tuple(t.to(device) for t in out)


class _Sampler:
    """Deterministic batches of (B, T+1) rows drawn without replacement in a per-epoch
    permutation seeded by (seed, epoch); the position is how many rows were handed out, so
    ``state()``/``load_state()`` resume exactly. Data parallel: ``batch_size`` is the global
    batch; with ``world_size`` W, rank r reads only rows [r*B/W, (r+1)*B/W) of each batch, so
    the ranks together see exactly the rows one process would, and the position (the same on
    every rank) resumes on any W. Subclasses say what a row is (``packing``, ``n_items``,
    ``fetch``)."""

    packing = ""

    def __init__(self, seq_len: int, batch_size: int, seed: int, rank: int, world_size: int,
                 n_items: int):
        if batch_size % world_size:
            raise ValueError(f"batch size {batch_size} does not split over {world_size} ranks")
        self.seq_len, self.batch_size, self.seed = seq_len, batch_size, seed
        self.rows = batch_size // world_size  # rows this rank reads of each batch
        self.first_row = rank * self.rows
        self.n_items = n_items
        self.position = 0  # rows handed out so far, over all epochs
        self._order = (-1, None)  # (epoch, permutation) cache

    def fetch(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(tokens, doc_ids), each (T+1,), of item I."""
        raise NotImplementedError

    def _item(self, j: int) -> int:
        epoch, i = divmod(j, self.n_items)
        if self._order[0] != epoch:
            rng = np.random.default_rng([self.seed, epoch])
            self._order = (epoch, rng.permutation(self.n_items))
        return int(self._order[1][i])

    def next_batch(self) -> Batch:
        """This rank's rows of the next batch: (B / world_size, T+1)."""
        T = self.seq_len
        tokens = np.empty((self.rows, T + 1), dtype=np.int64)
        doc_ids = np.empty((self.rows, T + 1), dtype=np.int64)
        for b in range(self.rows):
            tokens[b], doc_ids[b] = self.fetch(self._item(self.position + self.first_row + b))
        self.position += self.batch_size
        return Batch(tokens, doc_ids)

    def __iter__(self):
        while True:
            yield self.next_batch()

    @property
    def epoch(self) -> float:
        return self.position / self.n_items

    def state(self) -> dict:
        return {"seed": self.seed, "position": self.position, "seq_len": self.seq_len,
                "packing": self.packing}

    def load_state(self, state: dict) -> None:
        saved = state.get("packing", "stream")  # runs before packed rows saved no kind
        if saved != self.packing or state["seq_len"] != self.seq_len:
            raise ValueError(f"the checkpoint's data position is for {saved} rows of "
                             f"{state['seq_len']} tokens, not {self.packing} rows of "
                             f"{self.seq_len}")
        self.seed, self.position = state["seed"], state["position"]
        self._order = (-1, None)


class WindowSampler(_Sampler):
    """Windows of a TokenStream: window w covers stream tokens [w*T, w*T + T + 1)."""

    packing = "stream"

    def __init__(self, stream: TokenStream, seq_len: int, batch_size: int, seed: int = 0,
                 rank: int = 0, world_size: int = 1):
        n_windows = (len(stream) - 1) // seq_len
        if n_windows < 1:
            raise ValueError(f"{len(stream)} tokens cannot fill one window of {seq_len + 1}")
        super().__init__(seq_len, batch_size, seed, rank, world_size, n_windows)
        self.stream, self.n_windows = stream, n_windows

    def fetch(self, w: int) -> tuple[np.ndarray, np.ndarray]:
        start = w * self.seq_len
        stop = start + self.seq_len + 1
        return self.stream.tokens(start, stop), self.stream.doc_ids(start, stop)


class PackedRows:
    """The packed sequences of one split, as the build wrote them: shard k's sequence s is
    its documents ``packs[s]:packs[s+1]`` (``tokens/SPLIT-k-of-n.packs.npy``)."""

    def __init__(self, data_dir: str, split: str = "train"):
        paths = sorted(glob.glob(os.path.join(data_dir, "tokens", f"{split}-*-of-*.idx")))
        if not paths:
            raise FileNotFoundError(f"no {split} shards under {data_dir}/tokens")
        self.shards = [TokenShard.open(p[:-len(".idx")]) for p in paths]
        self.packs = [np.load(p[:-len(".idx")] + ".packs.npy") for p in paths]
        # (shard, sequence) of every row, in shard order
        self.index = np.array([(k, s) for k, packs in enumerate(self.packs)
                               for s in range(len(packs) - 1)], dtype=np.int64).reshape(-1, 2)

    def __len__(self) -> int:
        return len(self.index)

    def documents(self, row: int) -> list[np.ndarray]:
        """Token ids of each example of ROW, in packed order."""
        k, s = self.index[row]
        shard, packs = self.shards[k], self.packs[k]
        return [shard.sequence(d) for d in range(int(packs[s]), int(packs[s + 1]))]


class PackedSampler(_Sampler):
    """Packed rows (``PackedRows``), each padded to (T+1,) with PAD_ID."""

    packing = "packed"

    def __init__(self, rows: PackedRows, seq_len: int, batch_size: int, pad_id: int,
                 seed: int = 0, rank: int = 0, world_size: int = 1):
        if len(rows) < 1:
            raise ValueError("no packed sequences to train on")
        super().__init__(seq_len, batch_size, seed, rank, world_size, len(rows))
        self.data, self.pad_id, self.n_rows = rows, pad_id, len(rows)

    def fetch(self, r: int) -> tuple[np.ndarray, np.ndarray]:
        """(tokens, doc_ids), each (T+1,), of packed row R."""
        T = self.seq_len
        tokens = np.full(T + 1, self.pad_id, dtype=np.int64)
        doc_ids = np.full(T + 1, PAD_DOC, dtype=np.int64)
        pos = 0
        for d, ids in enumerate(self.data.documents(r)):
            if pos + len(ids) > T:
                raise ValueError(f"packed row {r} holds more than {T} tokens: was the build's "
                                 "seq_len different?")
            tokens[pos:pos + len(ids)] = ids
            doc_ids[pos:pos + len(ids)] = d
            pos += len(ids)
        return tokens, doc_ids


def train_sampler(data_dir: str, packing: str, seq_len: int | None, batch_size: int, seed: int,
             rank: int, world: int):
    """The train split's sampler for PACKING ("packed" or "stream") and its row length."""
    with open(os.path.join(data_dir, "manifest.json")) as f:
        manifest = json.load(f)
    if packing == "stream":
        seq_len = seq_len or 256
        return WindowSampler(TokenStream(data_dir, "train"), seq_len, batch_size, seed,
                             rank=rank, world_size=world), seq_len
    if packing != "packed":
        raise ValueError(f"packing is 'packed' or 'stream', not {packing!r}")
    built = recorded_setting(manifest["config"], "seq_len")
    if seq_len is not None and seq_len != built:
        raise ValueError(f"the build packed sequences of {built} tokens; packed training uses "
                         f"them as they are (omit --seq-len), or use --packing stream to cut "
                         f"windows of {seq_len}")
    return PackedSampler(PackedRows(data_dir, "train"), built, batch_size,
                         manifest["tokenizer"]["pad_id"], seed, rank=rank,
                         world_size=world), built
