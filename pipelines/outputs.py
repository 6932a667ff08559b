"""Writing a build's files: atomically (temp name, then rename) and through Beam's
filesystems, so ``gs://`` and other remote outputs work the same as local folders.

Example shards and token shards are written together from one group, in packed order: row i
of ``examples/SPLIT-k-of-n.parquet`` is document i of ``tokens/SPLIT-k-of-n.bin/.idx``, and
``tokens/SPLIT-k-of-n.packs.npy`` holds where each packed training sequence starts (example
indices, one more than the number of sequences).
"""
from __future__ import annotations

import hashlib
import io
import json
import uuid

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from fimpack.packing.binpack import best_fit_decreasing
from fimpack.packing.shards import encode_shard
from fimpack.records import Example

EXAMPLES_SCHEMA = pa.schema([
    ("id", pa.string()),
    ("repo", pa.string()),
    ("source", pa.string()),          # "code" or "nl"
    ("split", pa.string()),
    ("sequence", pa.int64()),         # the packed sequence (within the shard) holding it
    ("text", pa.string()),            # the formatted example, sentinels written out
    ("num_tokens", pa.int64()),       # bos + pieces + eos
    # Per file, in packing order; ``redactions`` counts PII spans replaced by placeholders.
    # A file longer than a sequence is split at line ends: ``part`` of ``parts``.
    ("files", pa.list_(pa.struct([("path", pa.string()), ("language", pa.string()),
                                  ("fim", pa.string()), ("redactions", pa.int32()),
                                  ("part", pa.int32()), ("parts", pa.int32())]))),
    # The structure of ``text``: [start, end) in characters (code points), which file a
    # piece belongs to (-1 for separators) and its kind (path, content, prefix, ...).
    ("pieces", pa.list_(pa.struct([("kind", pa.string()), ("file", pa.int32()),
                                   ("start", pa.int64()), ("end", pa.int64())]))),
])


def join(*parts: str) -> str:
    return FileSystems.join(*parts)


def write_atomic(path: str, data: bytes) -> str:
    """Write DATA to PATH so that PATH never holds a partial file; its SHA-256."""
    tmp = f"{path}.tmp-{uuid.uuid4().hex}"
    with FileSystems.create(tmp) as f:
        f.write(data)
    if FileSystems.exists(path):
        FileSystems.delete([path])
    FileSystems.rename([tmp], [path])
    return hashlib.sha256(data).hexdigest()


def read_bytes(path: str) -> bytes:
    with FileSystems.open(path) as f:
        return f.read()


def shard_name(split: str, index: int, count: int) -> str:
    return f"{split}-{index:05d}-of-{count:05d}"


def example_row(example: Example, num_tokens: int, sequence: int) -> dict:
    pieces, pos = [], 0
    for p in example.pieces:
        pieces.append({"kind": p.kind, "file": p.file, "start": pos, "end": pos + len(p.text)})
        pos += len(p.text)
    return {"id": example.id, "repo": example.repo, "source": example.source,
            "split": example.split, "sequence": sequence, "text": example.text,
            "num_tokens": num_tokens,
            "files": [{"path": f.path, "language": f.language, "fim": f.fim,
                       "redactions": f.redactions, "part": f.part, "parts": f.parts}
                      for f in example.files],
            "pieces": pieces}


def write_shard(out: str, split: str, index: int, count: int, rows: list, dtype,
                seq_len: int) -> list[dict]:
    """Pack one shard's examples into sequences (best-fit decreasing) and write the examples
    Parquet, the token shard and its sequence index; their manifest entries.
    ROWS are (example, token ids) sorted by example id."""
    name = shard_name(split, index, count)
    bins = best_fit_decreasing([len(ids) for _, ids in rows], seq_len)
    order = [i for b in bins for i in b]
    sequence_of = {i: s for s, b in enumerate(bins) for i in b}
    table = pa.Table.from_pylist(
        [example_row(rows[i][0], len(rows[i][1]), sequence_of[i]) for i in order],
        schema=EXAMPLES_SCHEMA)
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    data, idx = encode_shard([rows[i][1] for i in order], dtype)
    starts = np.zeros(len(bins) + 1, dtype=np.int64)  # example index where each sequence starts
    starts[1:] = np.cumsum([len(b) for b in bins])
    packs = io.BytesIO()
    np.save(packs, starts)
    tokens = int(sum(len(ids) for _, ids in rows))
    entries = []
    for rel, payload in ((f"examples/{name}.parquet", buf.getvalue()),
                         (f"tokens/{name}.bin", data), (f"tokens/{name}.idx", idx),
                         (f"tokens/{name}.packs.npy", packs.getvalue())):
        digest = write_atomic(join(out, rel), payload)
        entries.append({"path": rel, "bytes": len(payload), "sha256": digest,
                        "split": split, "examples": len(rows), "tokens": tokens,
                        "sequences": len(bins), "seq_len": seq_len})
    return entries


def write_drops(out: str, drops: list) -> str:
    """Every dropped input file with its reason, sorted: ``OUT/drops.parquet``."""
    rows = sorted(({"repo": d.repo, "path": d.path, "reason": d.reason, "detail": d.detail}
                   for d in drops), key=lambda r: (r["repo"], r["path"], r["reason"]))
    schema = pa.schema([("repo", pa.string()), ("path", pa.string()),
                        ("reason", pa.string()), ("detail", pa.string())])
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), buf, compression="zstd")
    return write_atomic(join(out, "drops.parquet"), buf.getvalue())


CLUSTERS_SCHEMA = pa.schema([("level", pa.string()), ("kind", pa.string()), ("repo", pa.string()),
                             ("path", pa.string()), ("cluster", pa.string()),
                             ("kept", pa.bool_())])


def write_clusters(out: str, members: list) -> str:
    """Every member of every duplicate cluster: ``OUT/dedup/clusters.parquet``, sorted."""
    rows = sorted(({"level": m.level, "kind": m.kind, "repo": m.repo, "path": m.path,
                    "cluster": m.cluster, "kept": m.kept} for m in members),
                  key=lambda r: (r["level"], r["kind"], r["cluster"], r["repo"], r["path"] or ""))
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=CLUSTERS_SCHEMA), buf, compression="zstd")
    return write_atomic(join(out, "dedup", "clusters.parquet"), buf.getvalue())


def write_json(path: str, obj) -> str:
    return write_atomic(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())
