"""``fimpack provenance``: where a token of a shard came from.

    fimpack provenance OUT --token train-00000-of-00001:123456

Token ``INDEX`` of ``OUT/tokens/SHARD.bin`` lies in sequence *i* of the shard (its ``.idx``),
which is row *i* of ``OUT/examples/SHARD.parquet``. The row's pieces are tokenised again
exactly as the build tokenised them (``Tokenizer.encode_pieces``, checked against the shard's
ids), which says which piece (path line, FIM prefix / middle / suffix, plain content,
separator) and which characters of it the token covers. Undoing the FIM rearrangement (prefix,
then middle, then suffix) and adding the file's earlier parts (a file longer than a sequence
is split into consecutive parts, all in the same shard) gives the offset in the file as it was
read: its line and column. The answer carries the file's provenance from the example row:
licence, origin (folder, archive or row file#row) and the input's SHA-256.
"""
from __future__ import annotations

import json
import os

import pyarrow.parquet as pq

import pyarrow.compute as pc

from fimpack.packing.fim import original_start, reconstruct
from fimpack.packing.pieces import pieces_of
from fimpack.packing.shards import TokenShard
from fimpack.packing.tokenizer import Tokenizer
from fimpack.records import PATH, PROVENANCE_FIELDS as FIELDS, SENTINEL  # noqa: F401


def locate(out: str, shard: str, index: int, tok: Tokenizer | None = None) -> dict:
    """The example, file, line and column of token INDEX of token shard SHARD."""
    tok = tok or Tokenizer.load(os.path.join(out, "tokenizer.model"))
    tokens = TokenShard.open(os.path.join(out, "tokens", shard))
    if not 0 <= index < len(tokens.tokens):
        raise IndexError(f"{shard} has {len(tokens.tokens)} tokens; no token {index}")
    seq = int(tokens.offsets.searchsorted(index, side="right")) - 1
    table = pq.read_table(os.path.join(out, "examples", shard + ".parquet"))
    row = table.slice(seq, 1).to_pylist()[0]
    pos = index - int(tokens.offsets[seq])
    ids = tokens.sequence(seq).tolist()
    answer = {"shard": shard, "token": index, "id": ids[pos], "sequence": seq,
              "example": row["id"], "repo": row["repo"], "position": pos,
              "piece": tok.sp.id_to_piece(ids[pos])}
    pieces = pieces_of(row)
    owners: list[int] = []
    body = tok.encode_pieces(pieces, owners)
    if [tok.bos_id] + body + [tok.eos_id] != ids:
        raise ValueError(f"{row['id']}: its pieces do not tokenise to the shard's ids "
                         "(another tokenizer?)")
    if pos == 0 or pos == len(ids) - 1:
        return {**answer, "kind": "bos" if pos == 0 else "eos"}
    k = owners[pos - 1]
    piece = pieces[k]
    answer["kind"] = piece.kind
    if piece.kind == SENTINEL or piece.file < 0:
        return answer
    entry = row["files"][piece.file]
    answer.update(path=entry["path"], part=entry["part"], parts=entry["parts"],
                  license=entry.get("license"), origin=entry.get("origin"),
                  sha256=entry.get("sha256"), fim=entry["fim"])
    if piece.kind == PATH:
        return answer
    # characters of the piece before this token: its earlier tokens decoded
    mine = [i for i, o in zip(body, owners) if o == k]
    before = len(tok.sp.decode(mine[:owners[:pos - 1].count(k)]))
    earlier = _earlier_parts(table, row["repo"], entry["path"], entry["part"])
    full = earlier + reconstruct(pieces, piece.file)  # the file as read, up to this part
    offset = len(earlier) + original_start(pieces, k) + before
    answer.update(char_offset=offset, line=full.count("\n", 0, offset) + 1,
                  column=offset - full.rfind("\n", 0, offset))
    return answer


def _earlier_parts(table, repo: str, path: str, part: int) -> str:
    """The content of parts 0..PART-1 of REPO's PATH (a repository's examples share a shard)."""
    if part == 0:
        return ""
    texts = {}
    for row in table.filter(pc.equal(table["repo"], repo)).to_pylist():
        for i, f in enumerate(row["files"]):
            if f["path"] == path and f["part"] < part:
                texts[f["part"]] = reconstruct(pieces_of(row), i)
    return "".join(texts[k] for k in sorted(texts))


def main(out: str, token: str) -> int:
    shard, _, index = token.rpartition(":")
    print(json.dumps(locate(out, shard, int(index))))
    return 0
