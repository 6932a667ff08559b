"""Fill in the middle with a trained run: CodeGemma's PSM prompt and greedy decoding.

    fimpack infill runs/tiny --path calc.py --prefix 'def add(a, b):\\n    return ' --suffix '\\n'

or from Python: ``infill("runs/tiny", prefix, suffix, path="calc.py")``.

The prompt is the packing stage's PSM layout for one file, built from token ids:

    [bos] "path\\n" <|fim_prefix|> prefix <|fim_suffix|> suffix <|fim_middle|>

Each text part is tokenised on its own (as ``Tokenizer.encode_pieces`` does for an example's
pieces) and the sentinels are inserted as control ids, so a literal "<|fim_suffix|>" inside
the prefix stays ordinary text. With no path the path line is left out. Prefix and suffix are
cut to fit the run's training context (``seq_len``): the prefix keeps its end, the suffix its start.

Decoding is greedy with a KV cache (``Gemma.generate``) and stops at any FIM sentinel
(``<|fim_prefix|>``, ``<|fim_suffix|>``, ``<|fim_middle|>``, ``<|file_separator|>``), at EOS, or
after ``max_new_tokens``. Training puts ``<|file_separator|>`` or EOS right after a middle, so
a model that learned the format stops by itself.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from fimpack.packing.tokenizer import Tokenizer
from fimpack.records import FIM_MIDDLE, FIM_PREFIX, FIM_SUFFIX
from fimpack.train.config import DEFAULT_MAX_NEW_TOKENS, InfillConfig
from fimpack.train.runs import Run, load_run


def fim_prompt(tokenizer: Tokenizer, prefix: str, suffix: str, path: str | None = None,
               max_tokens: int | None = None) -> list[int]:
    """PSM prompt ids: [bos] path\\n <|fim_prefix|> prefix <|fim_suffix|> suffix
    <|fim_middle|>. With ``max_tokens``, the prefix loses tokens from its start and the suffix
    from its end (each keeps at least half the room the other doesn't need)."""
    c = tokenizer.control_ids
    head = [tokenizer.bos_id] + (tokenizer.encode_text(path + "\n") if path else [])
    pre, suf = tokenizer.encode_text(prefix), tokenizer.encode_text(suffix)
    if max_tokens is not None:
        room = max(0, max_tokens - len(head) - 3)
        if len(pre) + len(suf) > room:
            keep_suf = min(len(suf), max(room // 2, room - len(pre)))
            keep_pre = min(len(pre), room - keep_suf)
            pre = pre[len(pre) - keep_pre:]
            suf = suf[:keep_suf]
    return head + [c[FIM_PREFIX]] + pre + [c[FIM_SUFFIX]] + suf + [c[FIM_MIDDLE]]


@dataclass
class Completion:
    text: str    # the generated middle, decoded
    tokens: int  # generated tokens (the stop token not counted)
    stop: str    # "stop" (a sentinel or EOS) or "length" (max_new_tokens reached)
    prompt_tokens: int


def complete(run: Run, prefix: str, suffix: str, path: str | None = None,
             max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
             max_context: int | None = None) -> Completion:
    """Greedy middle for (prefix, suffix) with an already loaded run. The prompt is cut to
    ``max_context`` tokens (default: the run's training ``seq_len``) minus room for the
    generation: ``max_new_tokens``, at most a quarter of the context (a middle is usually a
    few lines; past the context the model works at positions it never trained on)."""
    context = run.seq_len if max_context is None else max_context
    prompt = fim_prompt(run.tokenizer, prefix, suffix, path,
                        max_tokens=max(8, context - min(max_new_tokens, context // 4)))
    ids, stop = run.model.generate(prompt, max_new_tokens, run.stop_ids)
    return Completion(run.tokenizer.decode(ids), len(ids), stop, len(prompt))


def infill(run_dir: str, prefix: str, suffix: str, path: str | None = None,
           max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, device: str = "cpu",
           max_context: int | None = None) -> str:
    """The middle a trained run writes between ``prefix`` and ``suffix`` (greedy)."""
    run = load_run(run_dir, device)
    return complete(run, prefix, suffix, path, max_new_tokens, max_context).text


def main(run_dir: str, prefix: str, suffix: str = InfillConfig.suffix,
         path: str | None = InfillConfig.path,
         max_new_tokens: int = InfillConfig.max_new_tokens,
         as_json: bool = InfillConfig.as_json, device: str = InfillConfig.device) -> int:
    """``fimpack infill``: print the completion (raw, or one JSON object with ``--json``)."""
    run = load_run(run_dir, device)
    result = complete(run, prefix, suffix, path, max_new_tokens)
    if as_json:
        print(json.dumps({"completion": result.text, "tokens": result.tokens,
                          "stop": result.stop, "prompt_tokens": result.prompt_tokens}))
    else:
        print(result.text, end="" if result.text.endswith("\n") else "\n")
    return 0
