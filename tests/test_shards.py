import numpy as np
import pytest

from fimpack.packing.shards import MAGIC, TokenShard, encode_shard, token_dtype


@pytest.mark.parametrize("vocab,dtype", [(32_000, np.uint16), (65_536, np.uint16),
                                         (256_000, np.int32)])
def test_round_trip(tmp_path, vocab, dtype):
    rng = np.random.default_rng(0)
    seqs = [rng.integers(0, vocab, size=n) for n in (5, 1, 300, 17)]
    assert token_dtype(vocab) == np.dtype(dtype)
    data, idx = encode_shard(seqs, token_dtype(vocab))
    assert idx[:9] == MAGIC
    (tmp_path / "s.bin").write_bytes(data)
    (tmp_path / "s.idx").write_bytes(idx)
    shard = TokenShard.open(str(tmp_path / "s"))
    assert len(shard) == 4
    assert shard.tokens.dtype == np.dtype(dtype)
    assert [shard.sequence(i).tolist() for i in range(4)] == [s.tolist() for s in seqs]
    assert shard.offsets.tolist() == [0, 5, 6, 306, 323]


def test_rejects_foreign_index(tmp_path):
    (tmp_path / "x.idx").write_bytes(b"NOTANIDX" + b"\0" * 40)
    with pytest.raises(ValueError):
        TokenShard.open(str(tmp_path / "x"))
