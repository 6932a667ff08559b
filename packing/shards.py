"""Token shards in Megatron-LM's indexed format (``MMIDIDX``), so the files load in Megatron,
NeMo and anything else that reads that layout.

``NAME.bin`` holds the token ids of every example back to back (uint16 when the vocabulary fits,
else int32: Megatron has no uint32 code). ``NAME.idx`` is, little-endian::

    b"MMIDIDX\\x00\\x00"  magic
    <Q  version (1)
    <B  dtype code (Megatron's: 8 = uint16, 4 = int32)
    <Q  sequence count S
    <Q  document count D + 1
    int32[S]   sequence lengths (tokens)
    int64[S]   sequence byte offsets into .bin
    int64[D+1] document indices (sequence index where each document starts)

Each example is one sequence and one document: the trainer masks attention across them.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

MAGIC = b"MMIDIDX\x00\x00"
VERSION = 1
# Megatron's dtype codes (megatron/core/datasets/indexed_dataset.py: DType).
DTYPE_CODES = {np.uint8: 1, np.int8: 2, np.int16: 3, np.int32: 4, np.int64: 5,
               np.float64: 6, np.float32: 7, np.uint16: 8}
CODE_DTYPES = {code: np.dtype(t) for t, code in DTYPE_CODES.items()}


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 when every id fits, else int32 (Megatron has no uint32 code)."""
    return np.dtype(np.uint16) if vocab_size <= 65536 else np.dtype(np.int32)


def encode_shard(sequences: list[np.ndarray], dtype: np.dtype) -> tuple[bytes, bytes]:
    """Return (bin bytes, idx bytes) for a list of token id arrays."""
    dtype = np.dtype(dtype)
    arrays = [np.asarray(s, dtype=dtype) for s in sequences]
    lengths = np.array([len(a) for a in arrays], dtype=np.int32)
    pointers = np.zeros(len(arrays), dtype=np.int64)
    if len(arrays) > 1:
        pointers[1:] = np.cumsum(lengths[:-1].astype(np.int64)) * dtype.itemsize
    documents = np.arange(len(arrays) + 1, dtype=np.int64)
    data = b"".join(a.tobytes() for a in arrays)
    header = MAGIC + struct.pack("<Q", VERSION) + struct.pack("<B", DTYPE_CODES[dtype.type])
    header += struct.pack("<Q", len(arrays)) + struct.pack("<Q", len(documents))
    index = header + lengths.tobytes() + pointers.tobytes() + documents.tobytes()
    return data, index


@dataclass
class TokenShard:
    """A read-only view of one ``.bin``/``.idx`` pair, the tokens memory-mapped."""

    tokens: np.ndarray      # (N,) all token ids of the shard, memory-mapped
    lengths: np.ndarray     # (S,) tokens per sequence (= per document)
    offsets: np.ndarray     # (S + 1,) token offset where each sequence starts, then N

    @classmethod
    def open(cls, prefix: str) -> "TokenShard":
        with open(prefix + ".idx", "rb") as f:
            raw = f.read()
        if raw[:9] != MAGIC:
            raise ValueError(f"{prefix}.idx is not an MMIDIDX index")
        (version,) = struct.unpack_from("<Q", raw, 9)
        if version != VERSION:
            raise ValueError(f"{prefix}.idx: unsupported version {version}")
        (code,) = struct.unpack_from("<B", raw, 17)
        (n_seq,) = struct.unpack_from("<Q", raw, 18)
        (n_doc,) = struct.unpack_from("<Q", raw, 26)
        pos = 34
        lengths = np.frombuffer(raw, dtype=np.int32, count=n_seq, offset=pos)
        pos += 4 * n_seq
        pointers = np.frombuffer(raw, dtype=np.int64, count=n_seq, offset=pos)
        pos += 8 * n_seq
        np.frombuffer(raw, dtype=np.int64, count=n_doc, offset=pos)  # validates the length
        dtype = CODE_DTYPES[code]
        total = int(lengths.sum())
        if total:
            tokens = np.memmap(prefix + ".bin", dtype=dtype, mode="r", shape=(total,))
        else:
            tokens = np.zeros(0, dtype=dtype)
        offsets = np.zeros(n_seq + 1, dtype=np.int64)
        offsets[1:] = np.cumsum(lengths, dtype=np.int64)
        if n_seq and not np.array_equal(pointers, offsets[:-1] * dtype.itemsize):
            raise ValueError(f"{prefix}.idx: sequences are not contiguous")
        return cls(tokens=tokens, lengths=lengths, offsets=offsets)

    def __len__(self) -> int:
        return len(self.lengths)

    def sequence(self, i: int) -> np.ndarray:
        return np.asarray(self.tokens[self.offsets[i]:self.offsets[i + 1]])
