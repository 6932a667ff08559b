"""Checkpoints that load with ``weights_only=True``: model, optimiser, data position and every
RNG's state as tensors, lists and numbers, written atomically (temp file, then rename); and the
run folder's copy of the data's tokenizer."""
from __future__ import annotations

import os
import random

import numpy as np
import torch


def rng_state(cuda: bool) -> dict:
    """Every RNG's state as tensors, lists and numbers: what ``weights_only=True`` loads."""
    version, mt, gauss = random.getstate()
    np_state = np.random.get_state(legacy=False)  # {"bit_generator", "state": {"key", "pos"}..}
    return {"python": [version, list(mt), gauss],
            "numpy": {"bit_generator": np_state["bit_generator"],
                      "key": np_state["state"]["key"].tolist(), "pos": np_state["state"]["pos"],
                      "has_gauss": np_state["has_gauss"], "gauss": np_state["gauss"]},
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if cuda else None}


def set_rng_state(state: dict) -> None:
    version, mt, gauss = state["python"]
    random.setstate((version, tuple(mt), gauss))
    n = state["numpy"]
    np.random.set_state({"bit_generator": n["bit_generator"], "has_gauss": n["has_gauss"],
                         "gauss": n["gauss"],
                         "state": {"key": np.asarray(n["key"], dtype=np.uint32),
                                   "pos": n["pos"]}})
    torch.set_rng_state(state["torch"])
    if state["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def load_checkpoint(path: str, map_location="cpu") -> dict:
    """A checkpoint written by ``train``: tensors and plain Python values only, so it loads
    with ``weights_only=True`` (no arbitrary unpickling)."""
    return torch.load(path, map_location=map_location, weights_only=True)


def save_checkpoint(path: str, state: dict) -> None:
    """Write to a temp file, then rename: a crash mid-write never leaves a torn ckpt.pt."""
    tmp = path + ".tmp"
    torch.save(state, tmp)
    os.replace(tmp, path)


def copy_tokenizer(data_dir: str, out_dir: str) -> None:
    """Keep the data's tokenizer beside the weights (evaluation and infilling need it); a run
    resumed on data with another tokenizer is an error, not a silent mix."""
    source = os.path.join(data_dir, "tokenizer.model")
    if not os.path.exists(source):
        return  # e.g. synthetic shards in tests
    target = os.path.join(out_dir, "tokenizer.model")
    with open(source, "rb") as f:
        data = f.read()
    if os.path.exists(target):
        with open(target, "rb") as f:
            if f.read() != data:
                raise ValueError(f"{data_dir} was tokenized with another tokenizer than the "
                                 f"run in {out_dir} ({target})")
        return
    with open(target + ".tmp", "wb") as f:
        f.write(data)
    os.replace(target + ".tmp", target)
