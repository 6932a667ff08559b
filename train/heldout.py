"""Held-out metrics that can tell two corpora apart at small scale, with intervals.

Exact match is 0 for a ``tiny`` model, so it can't rank two builds; losses can. Each metric is
a mean over held-out files with a 95% bootstrap interval over files (resampled with
replacement, ``BOOTSTRAP`` times, seeded), so a difference between two runs can be called real
when the intervals of the difference exclude zero.

* **Infilling loss**: a held-out code file formatted as training formats it (``file_pieces``:
  its path line, then PSM or SPM with CodeGemma's sentinels) with the span chosen as training
  chooses it, ``uniform`` (two uniform character positions) or ``syntax`` (one whole
  tree-sitter node); the loss is the mean over the middle's tokens and the end-of-sequence
  token that closes it (knowing where to stop is part of infilling). The same span serves PSM
  and SPM.
* **Repository-context gain**: for a held-out file B that imports files A of its own
  repository (fimpack's dependency graph), the loss of B's content tokens with its imports
  placed before it as packing places them (``[bos] A <|file_separator|> B [eos]``, each file
  as its path line and content, as many imports as fit the sequence), minus nothing: versus B
  alone (``[bos] B [eos]``). ``gain`` = loss alone - loss with context, in nats per token,
  paired per file: what multi-file packing exists to improve.

Both take an ``nll`` function (token sequences -> loss of each next token), so they run on a
model (``model_nll``) or on any scorer a test supplies.
"""
from __future__ import annotations

import os
from typing import Callable, Iterator

import numpy as np
import pyarrow.parquet as pq
import torch

from fimpack.model.gemma import token_losses
from fimpack.packing.examples import file_pieces, file_rng
from fimpack.packing.fim import NONE, PSM, SPM, SYNTAX, UNIFORM, reconstruct
from fimpack.packing.graph import order_repository
from fimpack.packing.pieces import pieces_of
from fimpack.packing.tokenizer import Tokenizer
from fimpack.records import CODE, FILE_SEPARATOR, MIDDLE, PATH, SourceFile
from fimpack.train.data import IGNORE, PAD_DOC, Batch

BOOTSTRAP = 1000
Nll = Callable[[list[np.ndarray]], list[np.ndarray]]  # ids (n,) -> next-token losses (n-1,)


def code_files(data_dir: str, split: str, shard_names: list[str],
               whole_only: bool = True) -> Iterator[SourceFile]:
    """Every code file of SPLIT's examples, rebuilt exactly from the Parquet pieces, in shard
    order; with WHOLE_ONLY false also each part of a file longer than a sequence, as its own
    file (``path`` unchanged): training formats a part as it formats a file."""
    for name in shard_names:
        path = os.path.join(data_dir, "examples", name + ".parquet")
        for batch in pq.ParquetFile(path).iter_batches(batch_size=64):
            for row in batch.to_pylist():
                if row["source"] != CODE:
                    continue
                pieces = pieces_of(row)
                for i, f in enumerate(row["files"]):
                    content = reconstruct(pieces, i)
                    if content.strip() and (f["parts"] == 1 or not whole_only):
                        yield SourceFile(row["repo"], f["path"], f["language"], content)


def model_nll(model, batch_size: int = 8) -> Nll:
    """Next-token losses of each sequence under MODEL, a batch of rows at a time, each row one
    document padded as packed training rows are."""
    device = model.embed.weight.device

    @torch.no_grad()
    def nll(sequences: list[np.ndarray]) -> list[np.ndarray]:
        out = []
        for first in range(0, len(sequences), batch_size):
            group = sequences[first:first + batch_size]
            T = max(len(s) for s in group)
            tokens = np.zeros((len(group), T), dtype=np.int64)
            doc_ids = np.full((len(group), T), PAD_DOC, dtype=np.int64)
            for b, s in enumerate(group):
                tokens[b, :len(s)], doc_ids[b, :len(s)] = s, 0
            inputs, docs, targets = Batch(tokens, doc_ids).tensors(device)
            h = model.hidden_states(inputs, docs)
            losses = token_losses(h, model.embed.weight, targets, model.config.loss_chunk,
                                  model.config.final_softcap).reshape(targets.shape)
            losses = losses.masked_fill(targets == IGNORE, 0).float().cpu().numpy()
            out += [losses[b, :len(s) - 1] for b, s in enumerate(group)]
        return out

    return nll


def interval(values: np.ndarray, weights: np.ndarray | None = None, seed: int = 0) -> list:
    """95% bootstrap interval of the (weighted) mean of per-file VALUES."""
    if len(values) == 0:
        return [None, None]
    w = np.ones(len(values)) if weights is None else np.asarray(weights, dtype=np.float64)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(values), size=(BOOTSTRAP, len(values)))
    means = (values[picks] * w[picks]).sum(1) / w[picks].sum(1)
    return [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))]


def paired_difference(a: dict, b: dict, seed: int = 0) -> dict | None:
    """Summary of B - A over the same files (two ``summary`` dicts of runs evaluated on the
    same held-out files), weighted by A's token counts: the interval of a difference, which is
    far narrower than either run's own when files vary more than runs do."""
    if not a.get("per_file") or len(a["per_file"]) != len(b.get("per_file") or ()):
        return None
    diff = np.array(b["per_file"]) - np.array(a["per_file"])
    w = np.array(a["per_file_tokens"], dtype=np.float64)
    return {"nats_per_token": float((diff * w).sum() / w.sum()), "ci95": interval(diff, w, seed),
            "files": int(len(diff))}


def summary(per_file: np.ndarray, tokens: np.ndarray, seed: int = 0) -> dict:
    """Token-weighted mean of per-file mean losses, its interval, and the counts."""
    if len(per_file) == 0:
        return {"nats_per_token": None, "ci95": [None, None], "files": 0, "tokens": 0}
    return {"nats_per_token": float((per_file * tokens).sum() / tokens.sum()),
            "ci95": interval(per_file, tokens, seed), "files": int(len(per_file)),
            "tokens": int(tokens.sum()),
            # per file, in a fixed order: two runs on the same files compare file by file
            "per_file": [round(float(x), 6) for x in per_file],
            "per_file_tokens": [int(x) for x in tokens]}


def _encode(tok: Tokenizer, pieces) -> tuple[list[int], list]:
    owners: list[int] = []
    ids = tok.encode_pieces(pieces, owners)
    return ids, [pieces[i].kind for i in owners]


def infilling_loss(files: list[SourceFile], tok: Tokenizer, nll: Nll, seq_len: int,
                   seed: int = 0, max_files: int = 100) -> dict:
    """{"uniform_psm", "uniform_spm", "syntax_psm", "syntax_spm": summary} of the middle's
    loss (see the module docstring) on up to MAX_FILES files that fit SEQ_LEN."""
    sequences, middles, names = [], [], []
    used = 0
    for f in files:
        if used >= max_files:
            break
        if len(tok.encode_text(f.path + "\n" + f.content)) + 8 > seq_len:
            continue  # the file and its sentinels must fit one sequence
        used += 1
        for split in (UNIFORM, SYNTAX):
            for mode in (PSM, SPM):
                rng = file_rng(seed, f.repo, f.path)  # the same span for PSM and SPM
                ids, kinds = _encode(tok, file_pieces(f.path, f.content, mode, rng, split,
                                                      f.language))
                sequences.append(np.array([tok.bos_id] + ids + [tok.eos_id]))
                # target j predicts token j + 1: a middle token, or the closing eos
                middles.append(np.array([k == MIDDLE for k in kinds] + [True]))
                names.append(f"{split}_{mode}")
    losses = nll(sequences)
    out = {}
    for name in (f"{s}_{m}" for s in (UNIFORM, SYNTAX) for m in (PSM, SPM)):
        rows = [(loss[mask].mean(), mask.sum()) for loss, mask, n in
                zip(losses, middles, names) if n == name and mask.sum()]
        per_file, tokens = (np.array(x, dtype=np.float64) for x in zip(*rows)) if rows \
            else (np.zeros(0), np.zeros(0))
        out[name] = summary(per_file, tokens, seed)
    return out


def context_pairs(repo_files: list[SourceFile]) -> list[tuple[SourceFile, list[SourceFile]]]:
    """(B, the files of its repository that B imports, in the repository's order)."""
    if len(repo_files) < 2:
        return []
    by_path = {f.path: f for f in repo_files}
    graph = order_repository(list(by_path.values()))
    rank = {p: i for i, p in enumerate(graph.order)}
    deps: dict[str, list[str]] = {}
    for importer, imported in graph.edges:
        if importer != imported:
            deps.setdefault(importer, []).append(imported)
    return [(by_path[b], [by_path[a] for a in sorted(found, key=rank.get)])
            for b, found in sorted(deps.items())]


def context_gain(files: list[SourceFile], tok: Tokenizer, nll: Nll, seq_len: int,
                 seed: int = 0, max_pairs: int = 200) -> dict:
    """Repository-context gain (see the module docstring) over held-out FILES grouped by
    repository: {"pairs", "loss_alone", "loss_with_context", "gain": summaries}."""
    by_repo: dict[str, list[SourceFile]] = {}
    for f in files:
        by_repo.setdefault(f.repo, []).append(f)
    sep = tok.control_ids[FILE_SEPARATOR]
    alone, with_context, counted = [], [], []
    for repo in sorted(by_repo):
        for b, imports in context_pairs(by_repo[repo]):
            ids_b, kinds_b = _encode(tok, file_pieces(b.path, b.content, NONE, None, UNIFORM,
                                                      b.language))
            if len(ids_b) + 2 > seq_len or len(alone) >= max_pairs:
                continue
            context: list[int] = []
            for a in imports:  # as many imports as fit, dependencies first
                ids_a = tok.encode_pieces(file_pieces(a.path, a.content, NONE, None, UNIFORM,
                                                      a.language))
                if len(context) + len(ids_a) + 1 + len(ids_b) + 2 > seq_len:
                    break
                context += ids_a + [sep]
            if not context or len(ids_b) < 2:
                continue
            content = np.array([k != PATH for k in kinds_b])  # B's content, not its path line
            alone.append(np.array([tok.bos_id] + ids_b + [tok.eos_id]))
            with_context.append(np.array([tok.bos_id] + context + ids_b + [tok.eos_id]))
            counted.append(content)
    if not alone:
        return {"pairs": 0, "loss_alone": summary(np.zeros(0), np.zeros(0)),
                "loss_with_context": summary(np.zeros(0), np.zeros(0)),
                "gain": summary(np.zeros(0), np.zeros(0))}
    l_alone, l_with = nll(alone), nll(with_context)
    a, w, n = [], [], []
    for la, lw, mask in zip(l_alone, l_with, counted):
        # the losses of B's tokens: all but the last (which predicts eos), counted from the end
        a.append(la[-len(mask) - 1:-1][mask].mean())
        w.append(lw[-len(mask) - 1:-1][mask].mean())
        n.append(mask.sum())
    a, w, n = (np.array(x, dtype=np.float64) for x in (a, w, n))
    return {"pairs": len(a), "loss_alone": summary(a, n, seed),
            "loss_with_context": summary(w, n, seed), "gain": summary(a - w, n, seed)}


def heldout_metrics(units: list[SourceFile], files: list[SourceFile], tok: Tokenizer,
                    nll: Nll, seq_len: int, seed: int = 0, max_files: int = 100) -> dict:
    """Infilling loss on UNITS (whole files and parts of long ones, as training FIMs them) and
    repository-context gain on whole FILES."""
    return {"infilling_loss": infilling_loss(units, tok, nll, seq_len, seed, max_files),
            "repository_context": context_gain(files, tok, nll, seq_len, seed, 2 * max_files)}
