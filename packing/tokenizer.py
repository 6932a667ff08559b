"""The sentencepiece tokenizer: trained on a sample of the corpus, sentinels as control symbols.

Control symbols are never parsed out of raw text (user-defined symbols would be), so a source
file containing the literal text ``<|fim_prefix|>`` stays ordinary text; the real sentinels are
inserted by id from the example's structure. Settings keep code byte-exact: identity
normalisation, no dummy prefix, no whitespace folding, byte fallback for unseen characters,
digits split one by one.
"""
from __future__ import annotations

import io
import pickle
import re
import subprocess
import sys
from typing import Iterable

import sentencepiece as spm

from fimpack.records import SENTINEL, SENTINELS

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
MAX_SENTENCE_CHARS = 4096  # training "sentences" are chunks of lines of at most this size
BYTE_PIECES = 256  # byte fallback: one piece per byte value
RESERVED_PIECES = 4 + len(SENTINELS)  # pad, unk, bos, eos and the sentinels


def chunk_lines(text: str, limit: int = MAX_SENTENCE_CHARS) -> Iterable[str]:
    """Split text after newlines into chunks of at most ``limit`` characters, each as long as
    the newlines allow (a longer line is cut), newlines kept so the vocabulary learns them."""
    start, n = 0, len(text)
    while n - start > limit:
        cut = text.rfind("\n", start, start + limit) + 1
        if cut <= start:  # no newline in reach: cut the line
            cut = start + limit
        yield text[start:cut]
        start = cut
    if start < n:
        yield text[start:]


def train_model(texts: Iterable[str], vocab_size: int, max_chars: int = 20_000_000) -> bytes:
    """Train a BPE model on TEXTS (in the given order, capped at ``max_chars``); the model's
    bytes. Single-threaded so that the same sample gives the same model."""
    def sentences():
        seen = 0
        for text in texts:
            for chunk in chunk_lines(text):
                if seen >= max_chars:
                    return
                seen += len(chunk)
                yield chunk

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=sentences(), model_writer=model, vocab_size=vocab_size,
        model_type="bpe", control_symbols=list(SENTINELS), byte_fallback=True,
        normalization_rule_name="identity", remove_extra_whitespaces=False,
        add_dummy_prefix=False, split_digits=True, allow_whitespace_only_pieces=True,
        split_by_whitespace=False, character_coverage=0.9999,
        max_sentence_length=MAX_SENTENCE_CHARS * 4, input_sentence_size=0,
        shuffle_input_sentence=False, hard_vocab_limit=False, num_threads=1,
        pad_id=PAD_ID, unk_id=UNK_ID, bos_id=BOS_ID, eos_id=EOS_ID, minloglevel=2)
    return model.getvalue()


def train_model_in_fresh_process(texts: Iterable[str], vocab_size: int,
                                  max_chars: int = 20_000_000) -> bytes:
    """``train_model`` in a new Python process; the same model. The trainer allocates
    heavily, and in a long-lived Beam worker whose heap is full of freed objects it ran ~1.8x
    slower (20 s of CPU instead of 11.5 s on the 105 MB build's sample; 1.6x in a synthetic
    fragmented heap), while the other workers wait for the model."""
    sample, seen = [], 0
    for text in texts:  # what train_model would read: texts until max_chars
        if seen >= max_chars:
            break
        sample.append(text)
        seen += len(text)
    payload = pickle.dumps((sample, vocab_size, max_chars), protocol=pickle.HIGHEST_PROTOCOL)
    proc = subprocess.run([sys.executable, "-m", "fimpack.packing.tokenizer"], input=payload,
                          capture_output=True, check=False)
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace")
        if "Vocabulary size is smaller than required_chars" in err:
            from fimpack.errors import UserError
            raise UserError(f"--vocab-size {vocab_size} is too small for this corpus: "
                            f"sentencepiece needs {_required_vocab(err)} or more for its "
                            "characters, bytes and sentinels; pass a larger --vocab-size")
        raise RuntimeError("tokenizer training failed: " + err[-2000:])
    return proc.stdout


def _required_vocab(trainer_error: str) -> str:
    """Sentencepiece's "Vocabulary size is smaller than required_chars. 300 vs 391." -> 391."""
    m = re.search(r"required_chars\. *\d+ vs (\d+)", trainer_error)
    return m.group(1) if m else "more"


class Tokenizer:
    def __init__(self, model_proto: bytes):
        self.proto = model_proto
        self.sp = spm.SentencePieceProcessor(model_proto=model_proto)
        self.control_ids = {s: self.sp.piece_to_id(s) for s in SENTINELS}
        missing = [s for s, i in self.control_ids.items()
                   if i == self.sp.unk_id() or not (self.sp.is_control(i)
                                                   or self._user_defined(i))]
        if missing:
            raise ValueError(f"tokenizer model lacks the sentinel symbols {', '.join(missing)} "
                             "(control symbols, or user-defined ones as CodeGemma's "
                             "tokenizer has them); train one with fimpack build (no "
                             "--tokenizer) or add them as control_symbols")
        # Other models (CodeGemma's) may hold the sentinels as user-defined pieces, which
        # sentencepiece finds inside raw text: such literals are cut before they are encoded.
        in_text = [s for s, i in self.control_ids.items() if not self.sp.is_control(i)]
        self._literal = re.compile("|".join(map(re.escape, in_text))) if in_text else None

    def _user_defined(self, i: int) -> bool:
        piece = self.sp.id_to_piece(i)
        return self.sp.encode(piece) == [i]  # matched whole in text: a user-defined symbol

    @classmethod
    def load(cls, path: str) -> "Tokenizer":
        with open(path, "rb") as f:
            return cls(f.read())

    @property
    def vocab_size(self) -> int:
        return self.sp.get_piece_size()

    @property
    def bos_id(self) -> int:
        return self.sp.bos_id()

    @property
    def eos_id(self) -> int:
        return self.sp.eos_id()

    @property
    def pad_id(self) -> int:
        return self.sp.pad_id()

    def encode_texts(self, texts: list[str]) -> list[list[int]]:
        """Each text's ids: sentencepiece's encoding of the whole text, so any sentencepiece or
        transformers tokenizer made from this model (``fimpack export``) gives the same ids.
        Encoding in 4 KB chunks of lines instead (as the model is trained) was 1.25x faster
        but changed ids at chunk ends in 18% of files, which no other tool could reproduce
        (``benchmarks/encode_whole_vs_chunked.py``). One thread: a build runs one worker per
        core."""
        if self._literal is not None:
            return [self._encode_around_literals(text) for text in texts]
        return [list(ids) for ids in self.sp.encode(texts, num_threads=1)] if texts else []

    def _encode_around_literals(self, text: str) -> list[int]:
        """TEXT's ids with each literal sentinel encoded as its first character and the rest,
        so no sentinel id comes from text."""
        ids, start = [], 0
        for m in self._literal.finditer(text):
            ids += self.sp.encode(text[start:m.start()]) + self.sp.encode(m.group()[:1])
            ids += self.sp.encode(m.group()[1:])
            start = m.end()
        return ids + self.sp.encode(text[start:])

    def encode_text(self, text: str) -> list[int]:
        return self.encode_texts([text])[0] if text else []

    def encode_pieces(self, pieces, owners: list | None = None) -> list[int]:
        """Text pieces tokenised separately (as Bavarian et al. tokenise the FIM parts),
        sentinels by id. OWNERS, when given, gets the index of the piece of every id."""
        ids: list[int] = []
        texts = [p.text for p in pieces if p.kind != SENTINEL and p.text]
        encoded = iter(self.encode_texts(texts))  # one batched call
        for i, p in enumerate(pieces):
            before = len(ids)
            if p.kind == SENTINEL:
                ids.append(self.control_ids[p.text])
            elif p.text:
                ids.extend(next(encoded))
            if owners is not None:
                owners.extend([i] * (len(ids) - before))
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ids, the sentinels written out (sentencepiece drops control pieces)."""
        out, run = [], []
        by_id = {i: s for s, i in self.control_ids.items()}
        for i in ids:
            i = int(i)
            if i in by_id:
                out.append(self.sp.decode(run))
                out.append(by_id[i])
                run = []
            elif i not in (self.bos_id, self.eos_id, self.pad_id):
                run.append(i)
        out.append(self.sp.decode(run))
        return "".join(out)


if __name__ == "__main__":  # the child of train_model_in_fresh_process
    texts, vocab, limit = pickle.loads(sys.stdin.buffer.read())
    sys.stdout.buffer.write(train_model(texts, vocab, limit))
