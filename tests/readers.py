"""A build's outputs opened by the tools its users read them with: Hugging Face ``datasets``
on ``OUT/examples`` and a reader of the token shards that enforces what Megatron-core's
``IndexedDataset`` does (its own parse of the ``MMIDIDX`` header, ``np.memmap`` of both files,
which refuses an empty file), written from Megatron's layout, not from fimpack's reader."""
from __future__ import annotations

import glob
import os
import struct

import numpy as np

MEGATRON_DTYPES = {1: np.uint8, 2: np.int8, 3: np.int16, 4: np.int32, 5: np.int64,
                   6: np.float64, 7: np.float32, 8: np.uint16}


def megatron_open(prefix: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sequence lengths, byte offsets, tokens) as Megatron-core reads PREFIX.idx/.bin."""
    idx = np.memmap(prefix + ".idx", mode="r", order="C")  # raises on an empty file
    header = bytes(idx[:9 + 8 + 1 + 8 + 8])
    assert header[:9] == b"MMIDIDX\x00\x00", "not a Megatron index"
    (version,) = struct.unpack("<Q", header[9:17])
    assert version == 1
    dtype = np.dtype(MEGATRON_DTYPES[header[17]])
    (n_seq,) = struct.unpack("<Q", header[18:26])
    (n_doc,) = struct.unpack("<Q", header[26:34])
    lengths = np.frombuffer(idx, np.int32, n_seq, 34)
    offsets = np.frombuffer(idx, np.int64, n_seq, 34 + 4 * n_seq)
    docs = np.frombuffer(idx, np.int64, n_doc, 34 + 12 * n_seq)
    tokens = np.memmap(prefix + ".bin", mode="r", order="C", dtype=dtype)  # raises when empty
    assert n_seq > 0 and docs[0] == 0 and docs[-1] == n_seq
    assert offsets[0] == 0 and np.all(offsets[1:] == offsets[:-1] + lengths[:-1] * dtype.itemsize)
    assert int(lengths.sum()) == len(tokens)
    return lengths, offsets, tokens


def hf_load(examples_dir: str, cache_dir: str):
    """``datasets.load_dataset`` on the examples folder, offline, as a user would call it."""
    os.environ["HF_DATASETS_OFFLINE"] = "1"
    os.environ["HF_HUB_OFFLINE"] = "1"
    import datasets

    datasets.disable_progress_bars()
    return datasets.load_dataset(examples_dir, cache_dir=cache_dir)


def assert_readers_open(out, cache_dir) -> dict:
    """Every split's examples load in ``datasets`` with the manifest's row counts, and every
    token shard opens as Megatron opens it with the manifest's token counts."""
    import json

    manifest = json.load(open(os.path.join(out, "manifest.json")))
    expected = {}
    for e in manifest["shards"]:
        if e["path"].endswith(".parquet"):
            expected[e["split"]] = expected.get(e["split"], 0) + e["examples"]
    loaded = hf_load(os.path.join(out, "examples"), str(cache_dir))
    assert {s: len(loaded[s]) for s in loaded} == expected
    for idx in glob.glob(os.path.join(out, "tokens", "*.idx")):
        lengths, _, tokens = megatron_open(idx[:-len(".idx")])
        entry = next(e for e in manifest["shards"]
                     if e["path"] == "tokens/" + os.path.basename(idx))
        assert len(lengths) == entry["examples"] and len(tokens) == entry["tokens"]
    return expected
