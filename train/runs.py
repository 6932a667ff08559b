"""A trained run, loaded for evaluation, infilling and export: a fimpack run folder
(``ckpt.pt`` and the tokenizer the trainer copied beside it) or a transformers Gemma folder
(``fimpack export``'s, or a local CodeGemma checkpoint: weights as safetensors and a
sentencepiece ``tokenizer.model`` with the four FIM sentinels). The parameter names of
fimpack's Gemma in transformers' layout are here too: loading a transformers folder and
``export.py``'s writing one use the same map."""
from __future__ import annotations

import glob
import json
import os
import re
from dataclasses import dataclass

import torch

from fimpack.model.gemma import Gemma, GemmaConfig
from fimpack.packing.tokenizer import Tokenizer
from fimpack.records import FILE_SEPARATOR, FIM_MIDDLE, FIM_PREFIX, FIM_SUFFIX
from fimpack.train.checkpoint import load_checkpoint

ACTIVATION = "gelu_pytorch_tanh"  # transformers' name for fimpack's tanh-approximated GELU

# fimpack's parameter names -> transformers' (per block, then the model's own)
_BLOCK_NAMES = {
    "attn_norm.weight": "input_layernorm.weight",
    "mlp_norm.weight": "post_attention_layernorm.weight",
    **{f"attn.{p}_proj.weight": f"self_attn.{p}_proj.weight" for p in "qkvo"},
    **{f"mlp.{p}_proj.weight": f"mlp.{p}_proj.weight" for p in ("gate", "up", "down")},
}
_MODEL_NAMES = {"embed.weight": "model.embed_tokens.weight", "final_norm.weight": "model.norm.weight"}


class NotExportable(ValueError):
    """A model transformers' Gemma cannot represent (or a folder fimpack cannot load)."""


def transformers_name(name: str) -> str:
    """transformers' name of a fimpack Gemma parameter."""
    if name in _MODEL_NAMES:
        return _MODEL_NAMES[name]
    match = re.fullmatch(r"blocks\.(\d+)\.(.+)", name)
    if not match or match.group(2) not in _BLOCK_NAMES:
        raise KeyError(f"no transformers name for {name}")
    return f"model.layers.{match.group(1)}.{_BLOCK_NAMES[match.group(2)]}"


@dataclass
class Run:
    """A trained model with its tokenizer, loaded from a run folder."""

    model: Gemma
    tokenizer: Tokenizer
    flavor: str
    step: int       # optimiser steps the checkpoint has seen
    seq_len: int    # training context: prompts are cut to fit it

    @property
    def stop_ids(self) -> tuple[int, ...]:
        c = self.tokenizer.control_ids
        return (c[FIM_PREFIX], c[FIM_SUFFIX], c[FIM_MIDDLE], c[FILE_SEPARATOR],
                self.tokenizer.eos_id)


def load_run(run_dir: str, device: str = "cpu", attention: str = "auto") -> Run:
    """The model in ``run_dir/ckpt.pt`` (loaded with ``weights_only=True``) in eval mode, and
    its tokenizer: ``run_dir/tokenizer.model`` (the trainer copies it there), else the one in
    the data folder that config.json names. A transformers Gemma folder (``fimpack export``'s,
    or a local CodeGemma checkpoint) loads too (``load_transformers``)."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if is_transformers_folder(run_dir):
        return load_transformers(run_dir, device, attention)
    ckpt_path = os.path.join(run_dir, "ckpt.pt")
    if not os.path.exists(ckpt_path):
        raise FileNotFoundError(f"no checkpoint {ckpt_path} (train first)")
    ckpt = load_checkpoint(ckpt_path)
    config = GemmaConfig(**{**ckpt["config"], "attention": attention})
    with torch.device(device):
        model = Gemma(config)
    model.load_state_dict(ckpt["model"])
    model.eval()
    tok_path = os.path.join(run_dir, "tokenizer.model")
    if not os.path.exists(tok_path):
        tok_path = os.path.join(ckpt["train"]["data_dir"], "tokenizer.model")
    if not os.path.exists(tok_path):
        raise FileNotFoundError(f"no tokenizer.model in {run_dir} or in the run's data folder "
                                f"{ckpt['train']['data_dir']}")
    tokenizer = Tokenizer.load(tok_path)
    if tokenizer.vocab_size > config.vocab_size:
        raise ValueError(f"{tok_path} has {tokenizer.vocab_size} ids, the model "
                         f"{config.vocab_size} embeddings")
    return Run(model, tokenizer, ckpt.get("flavor", ""), int(ckpt["step"]),
               int(ckpt["train"]["seq_len"]))


def is_transformers_folder(path: str) -> bool:
    """A folder with a transformers config.json (fimpack's run folders have ckpt.pt)."""
    cfg = os.path.join(path, "config.json")
    if not os.path.isfile(cfg) or os.path.exists(os.path.join(path, "ckpt.pt")):
        return False
    with open(cfg) as f:
        return "model_type" in json.load(f)


def fimpack_config(hf: dict, attention: str = "auto") -> GemmaConfig:
    """fimpack's GemmaConfig for a transformers Gemma config.json (other models refused)."""
    if hf.get("model_type") != "gemma":
        raise NotExportable(f"model_type {hf.get('model_type')!r}: fimpack loads Gemma "
                            "(CodeGemma) checkpoints only")
    act = hf.get("hidden_activation") or hf.get("hidden_act")
    if act != ACTIVATION:
        raise NotExportable(f"activation {act!r}: fimpack's Gemma uses {ACTIVATION}")
    rope = hf.get("rope_parameters") or {"rope_type": "default",
                                         "rope_theta": hf.get("rope_theta", 10000.0)}
    if rope.get("rope_type", "default") != "default" or hf.get("attention_bias"):
        raise NotExportable(f"RoPE {rope} / attention bias: not fimpack's Gemma")
    if not hf.get("tie_word_embeddings", True):
        raise NotExportable("an untied output projection: fimpack's Gemma ties it")
    return GemmaConfig(vocab_size=hf["vocab_size"], d_model=hf["hidden_size"],
                       n_layers=hf["num_hidden_layers"], n_heads=hf["num_attention_heads"],
                       n_kv_heads=hf["num_key_value_heads"], head_dim=hf["head_dim"],
                       ffn_hidden=hf["intermediate_size"], rope_theta=float(rope["rope_theta"]),
                       norm_eps=hf["rms_norm_eps"], attention=attention)


def load_transformers(path: str, device: str = "cpu", attention: str = "auto"):
    """A transformers Gemma folder as a fimpack ``Run`` (no network: a local folder only)."""
    from safetensors.torch import load_file

    with open(os.path.join(path, "config.json")) as f:
        hf = json.load(f)
    config = fimpack_config(hf, attention)
    files = sorted(glob.glob(os.path.join(path, "*.safetensors")))
    if not files:
        raise NotExportable(f"no *.safetensors weights in {path}")
    weights = {}
    for file in files:
        weights.update(load_file(file))
    weights.pop("lm_head.weight", None)  # tied: the embedding
    with torch.device(device):
        model = Gemma(config)
    ours = {transformers_name(k): k for k in model.state_dict()}
    unknown = sorted(set(weights) - set(ours))
    if unknown:
        raise NotExportable(f"weights fimpack's Gemma has no place for: {unknown[:5]}")
    model.load_state_dict({ours[k]: v for k, v in weights.items()})
    model.eval()
    tok_path = os.path.join(path, "tokenizer.model")
    if not os.path.exists(tok_path):
        raise NotExportable(f"no sentencepiece tokenizer.model in {path}")
    tokenizer = Tokenizer.load(tok_path)
    if tokenizer.vocab_size > config.vocab_size:
        raise NotExportable(f"{tok_path} has {tokenizer.vocab_size} ids, the model "
                            f"{config.vocab_size} embeddings")
    return Run(model, tokenizer, f"transformers:{os.path.basename(os.path.normpath(path))}", 0,
               int(hf.get("max_position_embeddings", 8192)))
