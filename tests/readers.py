"""A build's outputs opened by the tools its users read them with: Hugging Face ``datasets``
on ``OUT/examples`` and Megatron-core's own ``IndexedDataset`` on the token shards (it
memory-maps both files and refuses an empty one)."""
from __future__ import annotations

import glob
import os
import warnings

import numpy as np


def megatron_open(prefix: str) -> tuple[np.ndarray, np.ndarray]:
    """(sequence lengths, all tokens) of PREFIX.idx/.bin as Megatron-core reads them."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Transformer Engine and Apex are not installed"
        from megatron.core.datasets.indexed_dataset import IndexedDataset
    ds = IndexedDataset(prefix, mmap=True)
    assert len(ds) > 0 and ds.document_indices[0] == 0 and ds.document_indices[-1] == len(ds)
    tokens = np.concatenate([ds[i] for i in range(len(ds))])
    assert int(ds.sequence_lengths.sum()) == len(tokens)
    return ds.sequence_lengths, tokens


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
        lengths, tokens = megatron_open(idx[:-len(".idx")])
        entry = next(e for e in manifest["shards"]
                     if e["path"] == "tokens/" + os.path.basename(idx))
        assert len(lengths) == entry["examples"] and len(tokens) == entry["tokens"]
    return expected
