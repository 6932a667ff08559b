import random

import numpy as np
import pytest
import sentencepiece as spm
import io

from fimpack.packing.stages import pack_repository
from fimpack.packing.tokenizer import Tokenizer, chunk_lines, train_model
from fimpack.records import SENTINELS, SourceFile

from conftest import STDLIB

TRAIN_FILES = sorted((STDLIB / "json").glob("*.py")) + sorted((STDLIB / "email").glob("*.py"))


@pytest.fixture(scope="module")
def tok(tokenizer):
    texts = [p.read_text() for p in TRAIN_FILES]
    return Tokenizer(train_model(texts, vocab_size=800))


def test_sentinels_are_control_symbols(tok):
    assert set(tok.control_ids) == set(SENTINELS)
    for s, i in tok.control_ids.items():
        assert tok.sp.is_control(i)
        assert i not in tok.encode_text(s)  # literal text never becomes the sentinel


@pytest.mark.parametrize("module", ["textwrap.py", "csv.py", "difflib.py", "tabnanny.py"])
def test_decode_encode_is_identity_on_real_code(tok, module):
    text = (STDLIB / module).read_text()
    assert tok.sp.decode(tok.encode_text(text)) == text


def test_identity_on_whitespace_and_unicode(tok):
    for text in ["\tx\n\t\ty\n", "  lead", "trail  \n\n\n", "\u03c0 \u2603 caf\u00e9\r\n",
                 "0123456789", " ", "\n"]:
        assert tok.sp.decode(tok.encode_text(text)) == text


def test_digits_are_split(tok):
    pieces = [tok.sp.id_to_piece(i) for i in tok.encode_text("12345")]
    assert pieces == ["1", "2", "3", "4", "5"]


def test_examples_carry_control_ids_for_sentinels_only(tok):
    src = SourceFile("r", "a.py", "python", "x = '<|fim_prefix|>'\n")
    # b.py imports a.py: one example of both files, a.py first, a separator between them.
    (ex, ids), = pack_repository("r", [src, SourceFile("r", "b.py", "python", "import a\n")],
                                 tok, seed=3, fim_rate=1.0, seq_len=512, val_fraction=0)[0]
    assert [f.path for f in ex.files] == ["a.py", "b.py"]
    assert ids[0] == tok.bos_id and ids[-1] == tok.eos_id
    n_sentinels = sum(1 for p in ex.pieces if p.kind == "sentinel")
    control = set(tok.control_ids.values())
    assert sum(int(i) in control for i in ids) == n_sentinels  # the literal one is text
    assert tok.decode(ids) == ex.text


def test_training_is_deterministic():
    texts = [p.read_text() for p in TRAIN_FILES[:6]]
    assert train_model(texts, 500) == train_model(texts, 500)


def test_model_without_control_symbols_is_rejected():
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=chunk_lines((STDLIB / "csv.py").read_text()),
                                   model_writer=model, vocab_size=300, minloglevel=2,
                                   hard_vocab_limit=False)
    with pytest.raises(ValueError, match="control symbol"):
        Tokenizer(model.getvalue())


def test_user_defined_sentinels_are_never_read_from_text():
    # CodeGemma-like models hold the sentinels as user-defined pieces, which sentencepiece
    # matches inside raw text; fimpack cuts such literals so only its own sentinels are ids
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=chunk_lines((STDLIB / "csv.py").read_text()), model_writer=model,
        vocab_size=400, minloglevel=2, hard_vocab_limit=False, user_defined_symbols=list(SENTINELS),
        add_dummy_prefix=False, byte_fallback=True, normalization_rule_name="identity",
        remove_extra_whitespaces=False)
    tok = Tokenizer(model.getvalue())
    text = 'x = "<|fim_prefix|>a<|fim_suffix|>" # <|file_separator|>\n'
    assert tok.sp.piece_to_id("<|fim_prefix|>") in tok.sp.encode(text)  # the trap
    ids = tok.encode_text(text)
    assert not set(ids) & set(tok.control_ids.values()) and tok.decode(ids) == text
    assert tok.encode_text("plain code\n") == tok.sp.encode("plain code\n")


def test_chunk_lines_keeps_text_and_bounds():
    text = (STDLIB / "difflib.py").read_text() + "x" * 10_000 + "\n"
    chunks = list(chunk_lines(text, 4096))
    assert "".join(chunks) == text
    assert max(len(c) for c in chunks) <= 4096
    # Chunks end at newlines where a newline is in reach: only the long line is cut.
    cut = [c for c in chunks if not c.endswith("\n")]
    assert len(cut) >= 2 and all(c.rstrip("x").endswith("\n") or not c.rstrip("x") for c in cut)


def test_texts_are_encoded_whole_as_sentencepiece_does(tok):
    # what any other sentencepiece user (and the exported transformers tokenizer) gets
    text = (STDLIB / "difflib.py").read_text()  # ~80 KB: twenty training chunks
    assert len(list(chunk_lines(text))) > 10
    ids = tok.encode_text(text)
    assert ids == tok.sp.encode(text)
    assert tok.encode_texts(["", "a\n", text]) == [[], tok.sp.encode("a\n"), ids]
    assert tok.sp.decode(ids) == text


def test_training_in_a_fresh_process_gives_the_same_model():
    from fimpack.packing.tokenizer import train_model_in_fresh_process
    texts = [p.read_text() for p in TRAIN_FILES[:6]]
    assert train_model_in_fresh_process(texts, 600, 100_000) == train_model(texts, 600, 100_000)
