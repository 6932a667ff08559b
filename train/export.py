"""A run to transformers and back.

    fimpack export runs/tiny --out hf/tiny          # then, anywhere transformers is installed:
    AutoModelForCausalLM.from_pretrained("hf/tiny"); AutoTokenizer.from_pretrained("hf/tiny")

``export`` writes a transformers ``GemmaForCausalLM`` folder: ``config.json``,
``generation_config.json``, ``model.safetensors`` (tied embedding), the tokenizer as
``tokenizer.json`` + ``tokenizer_config.json``, and fimpack's ``tokenizer.model`` beside them.
fimpack's Gemma is transformers' Gemma with other parameter names (no transposes), so the
weights are renamed, not converted.

The tokenizer gives fimpack's ids: a BPE model with the sentencepiece model's pieces, merges
from transformers' ``generate_merges``, byte fallback, spaces as ``▁``, no pre-tokenizer
(fimpack encodes whole texts, as sentencepiece does), ``<s>`` prepended like fimpack's examples
start. The sentinels are special tokens with fimpack's ids, and ``split_special_tokens`` is on:
a literal ``<|fim_prefix|>`` in a source file stays text, as in fimpack's shards. To put a
sentinel in a prompt, build the ids (``tokenizer.convert_tokens_to_ids("<|fim_prefix|>")``)
or call the tokenizer with ``split_special_tokens=False``.

``load_transformers`` is the reverse: a local transformers Gemma folder (weights as
safetensors, and a sentencepiece ``tokenizer.model`` with the four FIM sentinels, as CodeGemma's
folders have) becomes a fimpack ``Run`` for ``fimpack eval`` and ``fimpack infill``.
"""
from __future__ import annotations

import glob
import json
import logging
import os
import re

import torch

from fimpack.model.gemma import Gemma, GemmaConfig
from fimpack.packing.tokenizer import Tokenizer
from fimpack.records import FILE_SEPARATOR, FIM_MIDDLE, FIM_PREFIX, FIM_SUFFIX, SENTINELS

log = logging.getLogger(__name__)
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


def transformers_config(config: GemmaConfig, tok: Tokenizer, seq_len: int) -> dict:
    """``GemmaConfig`` keyword arguments for CONFIG (soft-capping refused: transformers' Gemma
    has none, and Gemma 2, which has it, adds two norms per block that fimpack's lacks)."""
    if config.attn_softcap is not None or config.final_softcap is not None:
        raise NotExportable("soft-capped models have no transformers architecture with "
                            "fimpack's layout (Gemma 2 caps, but has four norms per block)")
    return dict(vocab_size=config.vocab_size, hidden_size=config.d_model,
                intermediate_size=config.ffn_hidden, num_hidden_layers=config.n_layers,
                num_attention_heads=config.n_heads, num_key_value_heads=config.n_kv_heads,
                head_dim=config.head_dim, hidden_act=ACTIVATION, hidden_activation=ACTIVATION,
                max_position_embeddings=seq_len, rms_norm_eps=config.norm_eps,
                initializer_range=config.init_std, tie_word_embeddings=True,
                rope_parameters={"rope_type": "default", "rope_theta": config.rope_theta},
                bos_token_id=tok.bos_id, eos_token_id=tok.eos_id, pad_token_id=tok.pad_id,
                architectures=["GemmaForCausalLM"])


def fast_tokenizer(tok: Tokenizer):
    """A ``tokenizers.Tokenizer`` giving TOK's ids (see the module docstring)."""
    from tokenizers import AddedToken, Tokenizer as FastTokenizer, decoders, models, normalizers
    from tokenizers.processors import TemplateProcessing
    from transformers.convert_slow_tokenizer import generate_merges

    sp = tok.sp
    pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
    special = [p for i, p in enumerate(pieces) if sp.is_control(i) or sp.is_unknown(i)
               or p in SENTINELS]
    vocab = {p: i for i, p in enumerate(pieces)}
    fast = FastTokenizer(models.BPE(vocab=vocab, merges=generate_merges(vocab, skip_tokens=special),
                                    unk_token=sp.id_to_piece(sp.unk_id()), fuse_unk=True,
                                    byte_fallback=True))
    fast.normalizer = normalizers.Replace(" ", "▁")
    fast.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(),
                                      decoders.Fuse()])
    fast.add_special_tokens([AddedToken(p, special=True, normalized=False) for p in special])
    bos = sp.id_to_piece(tok.bos_id)
    fast.post_processor = TemplateProcessing(single=f"{bos} $A", pair=f"{bos} $A {bos} $B",
                                             special_tokens=[(bos, tok.bos_id)])
    return fast


def _transformers():
    try:
        import transformers
    except ImportError as err:  # the [hf] extra
        raise NotExportable("transformers is not installed: pip install 'fimpack[hf]'") from err
    transformers.utils.logging.disable_progress_bar()  # one JSON line is the CLI's output
    return transformers


def export(run_dir: str, out_dir: str) -> dict:
    """Write RUN_DIR's model and tokenizer as a transformers folder OUT_DIR; a summary."""
    from fimpack.train.infill import load_run

    tf = _transformers()
    run = load_run(run_dir)
    config = tf.GemmaConfig(**transformers_config(run.model.config, run.tokenizer, run.seq_len))
    with torch.device("meta"):
        hf = tf.GemmaForCausalLM(config)
    state = {transformers_name(k): v for k, v in run.model.state_dict().items()}
    hf.load_state_dict(state, strict=False, assign=True)
    hf.tie_weights()
    missing = [k for k, p in hf.state_dict().items() if p.is_meta]
    if missing:
        raise NotExportable(f"transformers' Gemma has parameters fimpack's lacks: {missing[:5]}")
    c = run.tokenizer.control_ids
    hf.generation_config = tf.GenerationConfig(
        bos_token_id=run.tokenizer.bos_id, pad_token_id=run.tokenizer.pad_id,
        # fimpack infill's stops: EOS and the sentinels training puts after a middle
        eos_token_id=[run.tokenizer.eos_id, c[FILE_SEPARATOR], c[FIM_PREFIX], c[FIM_SUFFIX],
                      c[FIM_MIDDLE]], do_sample=False)
    hf.save_pretrained(out_dir)
    sp = run.tokenizer.sp
    names = {k: sp.id_to_piece(getattr(run.tokenizer, f"{k}_id")) for k in ("bos", "eos", "pad")}
    hf_tok = tf.PreTrainedTokenizerFast(
        tokenizer_object=fast_tokenizer(run.tokenizer), split_special_tokens=True,
        bos_token=names["bos"], eos_token=names["eos"], pad_token=names["pad"],
        unk_token=sp.id_to_piece(sp.unk_id()), additional_special_tokens=list(SENTINELS),
        model_max_length=run.seq_len, clean_up_tokenization_spaces=False)
    hf_tok.save_pretrained(out_dir)
    with open(os.path.join(out_dir, "tokenizer.model"), "wb") as f:
        f.write(run.tokenizer.proto)
    same_mode(out_dir)
    return {"out_dir": out_dir, "architecture": "GemmaForCausalLM",
            "params": run.model.num_params(), "vocab_size": run.model.config.vocab_size,
            "files": sorted(os.listdir(out_dir))}


def same_mode(folder: str) -> None:
    """Every file of FOLDER readable as a file written with open() is (0666 less the umask):
    safetensors writes its weights through a private temporary file (0600), which a shared
    model folder or a container image would then hide from other users."""
    umask = os.umask(0)
    os.umask(umask)
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            os.chmod(path, 0o666 & ~umask)


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

    from fimpack.train.infill import Run

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


def main(run_dir: str, out_dir: str) -> int:
    """``fimpack export``: one JSON summary line."""
    print(json.dumps(export(run_dir, out_dir)))
    return 0
