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
import logging
import pickle
import uuid

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from fimpack.dedup import earlier
from fimpack.filesystems import join, read_bytes
from fimpack.packing.binpack import best_fit_decreasing
from fimpack.packing.examples import stable_hash
from fimpack.packing.pieces import piece_spans
from fimpack.packing.shards import encode_shard, token_dtype
from fimpack.packing.tokenizer import Tokenizer
from fimpack.records import AUDIT, SPLITS, ClusterMember, Drop, Example, PartFate

log = logging.getLogger("fimpack.build")
EXAMPLES_WRITTEN = Metrics.counter(AUDIT, "examples_written")  # the audit's last count

EXAMPLES_SCHEMA = pa.schema([
    ("id", pa.string()),
    ("repo", pa.string()),
    ("source", pa.string()),          # "code" or "nl"
    ("split", pa.string()),
    ("sequence", pa.int64()),         # the packed sequence (within the shard) holding it
    ("text", pa.string()),            # the formatted example, sentinels written out
    ("num_tokens", pa.int64()),       # bos + pieces + eos
    # Per file, in packing order; ``redactions`` counts PII spans replaced by placeholders.
    # A file longer than a sequence is split at line ends: ``part`` of ``parts``. Provenance:
    # ``license`` (SPDX), ``origin`` (folder, archive, or row file#row) and ``sha256`` of the
    # input bytes.
    ("files", pa.list_(pa.struct([("path", pa.string()), ("language", pa.string()),
                                  ("fim", pa.string()), ("redactions", pa.int32()),
                                  ("part", pa.int32()), ("parts", pa.int32()),
                                  ("license", pa.string()), ("origin", pa.string()),
                                  ("sha256", pa.string()),
                                  ("natural_language", pa.string())]))),
    # The structure of ``text``: [start, end) in characters (code points), which file a
    # piece belongs to (-1 for separators) and its kind (path, content, prefix, ...).
    ("pieces", pa.list_(pa.struct([("kind", pa.string()), ("file", pa.int32()),
                                   ("start", pa.int64()), ("end", pa.int64())]))),
])


def write_atomic(path: str, data: bytes) -> str:
    """Write DATA to PATH so that PATH never holds a partial file; its SHA-256."""
    tmp = f"{path}.tmp-{uuid.uuid4().hex}"
    with FileSystems.create(tmp) as f:
        f.write(data)
    if FileSystems.exists(path):
        FileSystems.delete([path])
    FileSystems.rename([tmp], [path])
    return hashlib.sha256(data).hexdigest()


def shard_name(split: str, index: int, count: int) -> str:
    return f"{split}-{index:05d}-of-{count:05d}"


def example_row(example: Example, num_tokens: int, sequence: int) -> dict:
    return {"id": example.id, "repo": example.repo, "source": example.source,
            "split": example.split, "sequence": sequence, "text": example.text,
            "num_tokens": num_tokens,
            "files": [{"path": f.path, "language": f.language, "fim": f.fim,
                       "redactions": f.redactions, "part": f.part, "parts": f.parts,
                       "license": f.license, "origin": f.origin, "sha256": f.sha256,
                       "natural_language": f.natural_language or None}
                      for f in example.files],
            "pieces": piece_spans(example.pieces)}


ROWS_PER_BATCH = 256  # examples made into Python dicts, then Arrow, at a time


def write_shard(out: str, split: str, index: int, count: int, rows, dtype, seq_len: int,
                lengths: list[int] | None = None) -> list[dict]:
    """Pack one shard's examples into sequences (best-fit decreasing) and write the examples
    Parquet, the token shard and its sequence index; their manifest entries.
    ROWS: (example, token ids) sorted by example id, a sequence read by index (a
    ``PackedRows`` unpickles each on access); LENGTHS: their token counts, when known without
    reading them. The rows are read ROWS_PER_BATCH at a time in sequence order, each batch
    turned into Arrow at once, so only one batch is ever Python objects."""
    name = shard_name(split, index, count)
    lengths = lengths if lengths is not None else [len(ids) for _, ids in rows]
    bins = best_fit_decreasing(lengths, seq_len)
    order = [i for b in bins for i in b]
    sequence_of = {i: s for s, b in enumerate(bins) for i in b}
    batches, arrays = [], []
    for k in range(0, len(order), ROWS_PER_BATCH):
        batch = [(i, rows[i]) for i in order[k:k + ROWS_PER_BATCH]]
        batches.append(pa.RecordBatch.from_pylist(
            [example_row(example, len(ids), sequence_of[i]) for i, (example, ids) in batch],
            schema=EXAMPLES_SCHEMA))
        arrays += [np.asarray(ids, dtype=dtype) for _, (_, ids) in batch]
    # One contiguous table: Parquet's pages (so its bytes) follow the table's chunks
    table = pa.Table.from_batches(batches, schema=EXAMPLES_SCHEMA).combine_chunks()
    del batches
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    del table
    data, idx = encode_shard(arrays, dtype)
    starts = np.zeros(len(bins) + 1, dtype=np.int64)  # example index where each sequence starts
    starts[1:] = np.cumsum([len(b) for b in bins])
    packs = io.BytesIO()
    np.save(packs, starts)
    tokens = int(sum(lengths))
    entries = []
    for rel, payload in ((f"examples/{name}.parquet", buf.getvalue()),
                         (f"tokens/{name}.bin", data), (f"tokens/{name}.idx", idx),
                         (f"tokens/{name}.packs.npy", packs.getvalue())):
        digest = write_atomic(join(out, rel), payload)
        entries.append({"path": rel, "bytes": len(payload), "sha256": digest,
                        "split": split, "examples": len(lengths), "tokens": tokens,
                        "sequences": len(bins), "seq_len": seq_len})
    return entries


class PackedRows:
    """A shard's rows as ``Mixture`` keys them, (example id, token count, packed
    (example, ids)), sorted by id; row I unpickled when read."""

    def __init__(self, rows):
        self._rows = sorted(rows)
        self.lengths = [n for _, n, _ in self._rows]

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, i: int):
        return pickle.loads(self._rows[i][2])


DROPS_SCHEMA = pa.schema([("repo", pa.string()), ("path", pa.string()),
                         ("reason", pa.string()), ("detail", pa.string())])
CLUSTERS_SCHEMA = pa.schema([("level", pa.string()), ("kind", pa.string()), ("repo", pa.string()),
                             ("path", pa.string()), ("cluster", pa.string()),
                             ("kept", pa.bool_()),
                             # what chose the cluster's keeper (--keep-policy): smallest key,
                             # permissive or stars (the same on every row of a cluster)
                             ("keep_policy", pa.string())])
# Every kept file (after the mixture) and where it came from: the manifest's per-file
# provenance. ``parts``: examples the file was split across; ``origin``: folder, archive or
# row file#row; ``sha256``: of the input bytes.
FILES_SCHEMA = pa.schema([("repo", pa.string()), ("path", pa.string()),
                          ("source", pa.string()), ("language", pa.string()),
                          ("natural_language", pa.string()), ("license", pa.string()),
                          ("origin", pa.string()), ("sha256", pa.string()),
                          ("parts", pa.int32()),
                          # header, license_file or manifest (dedup/licenses.py)
                          ("license_source", pa.string()),
                          # the encoding the input was transcoded from (pipelines/encodings.py);
                          # null: UTF-8 as read
                          ("encoding", pa.string())])
RECORD_SCHEMAS = {"drops": DROPS_SCHEMA, "clusters": CLUSTERS_SCHEMA, "files": FILES_SCHEMA,
                  # what dedup kept, for later builds' --dedup-against (dedup/earlier.py)
                  "signatures": earlier.SIGNATURES_SCHEMA, "hashes": earlier.HASHES_SCHEMA}
ROWS_PER_RECORD_SHARD = 1_000_000  # ~20-60 MB of Parquet per shard at real path lengths


def row_of(schema: pa.Schema, **values) -> tuple:
    """A record table's row, its values by field name in SCHEMA's order (the order is stated
    once, by the schema; a field missing from VALUES is a KeyError, an extra one too)."""
    if len(values) != len(schema.names):
        raise KeyError(f"not the fields of the schema: {sorted(set(values) ^ set(schema.names))}")
    return tuple(values[name] for name in schema.names)


def drop_row(d: Drop) -> tuple:
    return row_of(DROPS_SCHEMA, repo=d.repo, path=d.path, reason=d.reason, detail=d.detail)


def cluster_row(m: ClusterMember) -> tuple:
    return row_of(CLUSTERS_SCHEMA, level=m.level, kind=m.kind, repo=m.repo, path=m.path,
                  cluster=m.cluster, kept=m.kept, keep_policy=m.keep_policy)


def file_row(kept: tuple[tuple[str, str], PartFate]) -> tuple:
    """One kept file's provenance row: ((repo, path), PartFate) as the mixture keeps it."""
    (repo, path), fate = kept
    f = fate.entry
    return row_of(FILES_SCHEMA, repo=repo, path=path, source=fate.source,
                  language=f.language, natural_language=f.natural_language or None,
                  license=f.license, origin=f.origin, sha256=f.sha256, parts=f.parts,
                  license_source=f.license_source or None, encoding=f.encoding or None)


# Every record table a build writes: its name under OUT, its schema, and the function that
# makes a row of the record its stage hands on (``StageOut.tables``).
RECORD_TABLES = {
    "drops": (DROPS_SCHEMA, drop_row),
    "dedup/clusters": (CLUSTERS_SCHEMA, cluster_row),
    "dedup/signatures": (earlier.SIGNATURES_SCHEMA, earlier.signature_row),
    "dedup/hashes": (earlier.HASHES_SCHEMA, earlier.hash_row),
    "files": (FILES_SCHEMA, file_row),
}


def _order(row: tuple) -> tuple:
    return tuple("" if v is None else v for v in row)


def record_shard_key(row: tuple, count: int) -> int:
    return stable_hash(*(str(v) for v in row)) % count


def write_record_shard(out: str, name: str, schema: pa.Schema, index: int, count: int,
                       rows: list[tuple]) -> dict:
    """One shard of per-file records, rows sorted: ``OUT/NAME/NAME-k-of-n.parquet``; its
    manifest entry."""
    rows = sorted(rows, key=_order)
    table = pa.Table.from_pylist([dict(zip(schema.names, r)) for r in rows], schema=schema)
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    rel = f"{name}/{shard_name(name.rsplit('/', 1)[-1], index, count)}.parquet"
    data = buf.getvalue()
    digest = write_atomic(join(out, *rel.split("/")), data)
    return {"path": rel, "rows": len(rows), "bytes": len(data), "sha256": digest}


class WriteRecords(beam.PTransform):
    """Per-file records (drops, cluster members, kept files) as sharded Parquet written by
    the workers: ``OUT/NAME/NAME-k-of-n.parquet``, no shard empty, nothing gathered into one element.
    The shard count comes from the record count (``rows_per_shard``), a record's shard from
    a hash of its content, and each shard is sorted, so the files are the same however the
    build is spread. Outputs the manifest entry of each shard written."""

    def __init__(self, out: str, name: str, schema: pa.Schema, to_row,
                 rows_per_shard: int = ROWS_PER_RECORD_SHARD):
        super().__init__()
        self.out, self.name, self.schema, self.to_row = out, name, schema, to_row
        self.rows_per_shard = rows_per_shard

    def expand(self, records):
        per_shard = self.rows_per_shard
        rows = records | "Rows" >> beam.Map(self.to_row)
        buckets = beam.pvalue.AsSingleton(
            rows
            | "Count" >> beam.combiners.Count.Globally()
            | "Buckets" >> beam.Map(lambda n: max(1, -(-n // per_shard))))
        keyed = rows | "KeyByShard" >> beam.Map(lambda r, n: (record_shard_key(r, n), r),
                                                buckets)
        names = beam.pvalue.AsSingleton(
            keyed
            | "ShardKeys" >> beam.Keys()
            | "DistinctShards" >> beam.Distinct()
            | "ShardKeyList" >> beam.combiners.ToList()
            | "Dense" >> beam.Map(lambda keys: {k: (i, len(keys))
                                                for i, k in enumerate(sorted(keys))}))
        out, name, schema = self.out, self.name, self.schema
        return (keyed
                | "GroupByShard" >> beam.GroupByKey()
                | "WriteShard" >> beam.Map(
                    lambda kv, names: write_record_shard(
                        out, name, schema, *names[kv[0]], list(kv[1])), names))


class _WriteRecordShard(beam.DoFn):
    """((table, shard key), rows) -> that table's shard, numbered densely over the table's
    non-empty shard keys (the side input: every (table, key) that received rows)."""

    def __init__(self, out: str, tables: dict):
        self.out, self.tables = out, tables

    def setup(self):
        self._names = (None, {})

    def process(self, item, keys: list):
        if self._names[0] is not keys:
            names = {}
            for table in {t for t, _ in keys}:
                present = sorted(k for t, k in keys if t == table)
                names.update({(table, k): (i, len(present)) for i, k in enumerate(present)})
            self._names = (keys, names)
        (table, _), rows = item
        yield write_record_shard(self.out, table, self.tables[table][0],
                                 *self._names[1][item[0]], list(rows))


class WriteRecordTables(beam.PTransform):
    """Several tables of per-file records written as ``WriteRecords`` writes each (the same
    files, byte for byte), in one set of stages for all of them: TABLES is {name: (schema,
    to_row)}, the input a dict {name: PCollection, or a tuple of them}. One count per table (a CombinePerKey), one
    GroupByKey for every table's shards and one for their keys, where a WriteRecords per table
    took 7-8 fused stages each (37 of a build's 159 for its five tables). Outputs the manifest
    entry of each shard written."""

    def __init__(self, out: str, tables: dict, rows_per_shard: int = ROWS_PER_RECORD_SHARD):
        super().__init__()
        self.out, self.tables, self.rows_per_shard = out, tables, rows_per_shard

    def expand(self, records: dict):
        per_shard, tables = self.rows_per_shard, self.tables
        # a table's records may come as several PCollections: each is mapped where it is made
        # (no Flatten of Flattens, which FnApiRunner runs as a copy stage each)
        parts = [(name, i, pcoll) for name in sorted(records) for i, pcoll in enumerate(
            records[name] if isinstance(records[name], (tuple, list)) else [records[name]])]
        rows = [pcoll | f"Rows/{name}/{i}" >> beam.Map(
            lambda r, name=name, to_row=tables[name][1]: (name, to_row(r)))
            for name, i, pcoll in parts] | "AllRows" >> beam.Flatten()
        buckets = beam.pvalue.AsDict(
            rows
            | "Count" >> beam.combiners.Count.PerKey()
            | "Buckets" >> beam.MapTuple(lambda name, n: (name, max(1, -(-n // per_shard)))))
        keyed = rows | "KeyByShard" >> beam.Map(
            lambda r, n: ((r[0], record_shard_key(r[1], n[r[0]])), r[1]), buckets)
        keys = beam.pvalue.AsList(
            keyed | "ShardKeys" >> beam.Keys() | "DistinctShards" >> beam.Distinct())
        return (keyed
                | "GroupByShard" >> beam.GroupByKey()
                | "WriteShard" >> beam.ParDo(_WriteRecordShard(self.out, tables), keys))


def read_records(out: str, name: str) -> pa.Table:
    """Every shard of OUT/NAME/ (``drops``, ``dedup/clusters``, ``files``) as one table."""
    base = name.rsplit("/", 1)[-1]
    pattern = join(out, *name.split("/"), f"{base}-*-of-*.parquet")
    paths = sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)
    schema = RECORD_SCHEMAS[base]
    tables = [pq.read_table(io.BytesIO(read_bytes(p))) for p in paths]
    return pa.concat_tables(tables) if tables else schema.empty_table()


class _WriteShard(beam.DoFn):
    def __init__(self, out: str, seq_len: int):
        self.out, self.seq_len = out, seq_len

    def setup(self):
        self._names = (None, {})

    def process(self, item, keys: list, model: bytes):
        if self._names[0] is not keys:  # once per side input, not per shard
            self._names = (keys, dense_shard_names(keys))
        key, rows = item
        split = key[0]
        index, count = self._names[1][key]
        rows = PackedRows(rows)
        dtype = token_dtype(Tokenizer(model).vocab_size) if model else np.dtype(np.uint16)
        entries = write_shard(self.out, split, index, count, rows, dtype, self.seq_len,
                              rows.lengths)
        EXAMPLES_WRITTEN.inc(len(rows))
        log.info("wrote %s shard %d: %d examples in %d sequences", split, index, len(rows),
                 entries[-1]["sequences"])
        yield from entries


def dense_shard_names(keys: list) -> dict:
    """{(split, bucket): (index, count)} over the buckets that received examples: a
    repository hashes to one of the split's buckets, and a bucket no repository hashed to
    gets no file (an empty shard breaks Hugging Face ``datasets`` and Megatron's readers), so
    the files are numbered k-of-n over the non-empty buckets, in bucket order."""
    names = {}
    for split in SPLITS:
        buckets = sorted(b for s, b in keys if s == split)
        names.update({(split, b): (i, len(buckets)) for i, b in enumerate(buckets)})
    return names


class WriteShards(beam.PTransform):
    """Kept examples keyed by (split, bucket), as (id, tokens, packed bytes) -> one shard per
    non-empty bucket (examples Parquet, token .bin/.idx, .packs.npy; see ``write_shard``) ->
    the list of their manifest entries (one element each). MODEL: the tokenizer, a side
    input."""

    def __init__(self, out: str, seq_len: int, model):
        super().__init__()
        self.out, self.seq_len, self.model = out, seq_len, model

    def expand(self, keyed):
        keys = beam.pvalue.AsList(
            keyed | "ShardKeys" >> beam.Keys() | "DistinctShards" >> beam.Distinct())
        return (keyed
                | "GroupByShard" >> beam.GroupByKey()
                | "Write" >> beam.ParDo(_WriteShard(self.out, self.seq_len), keys, self.model))


def write_json(path: str, obj) -> str:
    return write_atomic(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())
