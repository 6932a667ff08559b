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

``runs.load_transformers`` is the reverse: a local transformers Gemma folder (weights as
safetensors, and a sentencepiece ``tokenizer.model`` with the four FIM sentinels, as CodeGemma's
folders have) becomes a fimpack ``Run`` for ``fimpack eval`` and ``fimpack infill``.
"""
from __future__ import annotations

import json
import logging
import os

import torch

from fimpack.model.gemma import GemmaConfig
from fimpack.packing.tokenizer import Tokenizer
from fimpack.records import FILE_SEPARATOR, FIM_MIDDLE, FIM_PREFIX, FIM_SUFFIX, SENTINELS
from fimpack.train.runs import ACTIVATION, NotExportable, load_run, transformers_name

log = logging.getLogger(__name__)


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


def main(run_dir: str, out_dir: str) -> int:
    """``fimpack export``: one JSON summary line."""
    print(json.dumps(export(run_dir, out_dir)))
    return 0
