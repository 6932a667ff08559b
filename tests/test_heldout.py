"""Held-out metrics: the infilling loss scores exactly the middle, and the repository-context
gain is positive for a model that copies from context on a repository where B repeats what it
imports from A, and zero for a model that ignores context."""
import random
import string
import sysconfig
from pathlib import Path

import numpy as np
import pytest

from fimpack.packing.examples import file_pieces, file_rng
from fimpack.packing.fim import PSM, SPM, SYNTAX, UNIFORM
from fimpack.packing.tokenizer import Tokenizer, train_model
from fimpack.records import MIDDLE, SourceFile
from fimpack.train.heldout import context_gain, context_pairs, infilling_loss, interval

STDLIB = Path(sysconfig.get_paths()["stdlib"])


@pytest.fixture(scope="module")
def tok():
    texts = [(STDLIB / name).read_text() for name in ("bisect.py", "colorsys.py", "heapq.py")]
    return Tokenizer(train_model(texts, vocab_size=400))


def copier(vocab: int):
    """An induction oracle: predicts that the current token is followed by what followed its
    last earlier occurrence (p = 0.9), else uniform; no training, a known answer."""
    def nll(sequences):
        out = []
        for s in sequences:
            last, losses = {}, []
            for j in range(len(s) - 1):
                guess = last.get(int(s[j]))
                losses.append(-np.log(0.9) if guess is not None and s[guess + 1] == s[j + 1]
                              else np.log(vocab))
                last[int(s[j])] = j
            out.append(np.array(losses))
        return out
    return nll


def blind(sequences):
    return [np.full(len(s) - 1, 3.0) for s in sequences]


def made_up_repo(n_pairs: int, seed: int = 0) -> list[SourceFile]:
    """Pairs of files: mod_i.py defines made-up names, use_i.py imports and repeats them."""
    rng = random.Random(seed)
    files = []
    for i in range(n_pairs):
        names = ["".join(rng.choice(string.ascii_lowercase) for _ in range(9)) for _ in range(6)]
        defs = "".join(f"def {n}(x):\n    return x + {rng.randint(0, 99)}\n\n" for n in names)
        uses = "".join(f"    total = {n}(total)\n" for n in names)
        files.append(SourceFile("r", f"mod_{i}.py", "python", defs))
        files.append(SourceFile("r", f"use_{i}.py", "python",
                                f"from mod_{i} import {', '.join(names)}\n\n\ndef run(total):\n"
                                + uses + "    return total\n"))
    return files


def test_context_pairs_follow_the_import_graph():
    pairs = context_pairs(made_up_repo(3))
    assert [(b.path, [a.path for a in deps]) for b, deps in pairs] == [
        (f"use_{i}.py", [f"mod_{i}.py"]) for i in range(3)]


def test_copying_model_gains_from_repository_context(tok):
    files = made_up_repo(12)
    result = context_gain(files, tok, copier(tok.vocab_size), seq_len=2048)
    assert result["pairs"] == 12
    gain = result["gain"]
    assert gain["nats_per_token"] > 0.1 and gain["ci95"][0] > 0  # real, not noise
    assert result["loss_with_context"]["nats_per_token"] < result["loss_alone"]["nats_per_token"]
    none = context_gain(files, tok, blind, seq_len=2048)["gain"]
    assert none["nats_per_token"] == 0 and none["ci95"] == [0, 0]
    # a context that does not fit is left out, not cut
    assert context_gain(files, tok, blind, seq_len=40)["pairs"] == 0


def test_infilling_loss_scores_the_middle_and_its_end(tok):
    """With a scorer whose loss is the target's id, each variant's mean is the mean id of the
    middle's tokens plus the closing eos: the mask covers exactly those."""
    files = [SourceFile("r", name, "python", (STDLIB / name).read_text())
             for name in ("bisect.py", "colorsys.py")]
    result = infilling_loss(files, tok, lambda seqs: [s[1:].astype(float) for s in seqs],
                            seq_len=8192, seed=3)
    assert set(result) == {"uniform_psm", "uniform_spm", "syntax_psm", "syntax_spm"}
    for split in (UNIFORM, SYNTAX):
        ids = []
        for f in files:
            pieces = file_pieces(f.path, f.content, PSM, file_rng(3, f.repo, f.path), split,
                                 f.language)
            middle = "".join(p.text for p in pieces if p.kind == MIDDLE)
            ids.append(tok.encode_text(middle) + [tok.eos_id])
        for mode in (PSM, SPM):
            got = result[f"{split}_{mode}"]
            assert got["files"] == 2 and got["tokens"] == sum(len(x) for x in ids)
            assert got["nats_per_token"] == pytest.approx(
                sum(sum(x) for x in ids) / sum(len(x) for x in ids))


def test_interval_brackets_the_mean_and_narrows_with_more_files():
    rng = np.random.default_rng(0)
    few, many = rng.normal(2, 1, 10), rng.normal(2, 1, 1000)
    lo, hi = interval(few)
    assert lo < few.mean() < hi
    lo2, hi2 = interval(many)
    assert hi2 - lo2 < (hi - lo) / 3
