"""The record types that cross stage boundaries, defined once.

A ``SourceFile`` leaves ingest and flows through dedup and ordering; a ``Drop`` records why an
input file was left out (every input file ends as exactly one kept ``SourceFile`` or one
``Drop``); an ``Example`` is one formatted training example made of ``Piece``s.
"""
from __future__ import annotations

import hashlib
import pickle
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

# CodeGemma's sentinels, exactly as the model cards write them.
FIM_PREFIX = "<|fim_prefix|>"
FIM_SUFFIX = "<|fim_suffix|>"
FIM_MIDDLE = "<|fim_middle|>"
FILE_SEPARATOR = "<|file_separator|>"
SENTINELS = (FIM_PREFIX, FIM_SUFFIX, FIM_MIDDLE, FILE_SEPARATOR)

CODE = "code"
NATURAL_LANGUAGE = "nl"
LICENSE_TEXT = "license"  # a repository's licence file: read for its licence, never trained on


@dataclass(frozen=True, slots=True)
class SourceFile:
    repo: str          # repository name (folder or archive name, or distribution name)
    path: str          # POSIX path relative to the repository root
    language: str      # from the extension; a document's format: markdown, restructuredtext, text
    content: str       # the file decoded as UTF-8, byte-exact (no newline or BOM changes);
                       # or transcoded from ENCODING (pipelines/encodings.py)
    source: str = CODE  # CODE or NATURAL_LANGUAGE
    redactions: int = 0  # PII spans replaced by placeholders (content is then not the input)
    license: str | None = None  # SPDX expression: the file's own header, else its repository's
    origin: str = ""     # provenance: the folder, archive or row file it was read from (#row)
    input_sha256: str = ""  # provenance: SHA-256 of the bytes as read, before any redaction
    natural_language: str = ""  # a document's ISO 639-1 code (py3langid), "und" if unsure
    license_source: str = ""  # where LICENSE came from: header, license_file or manifest
    encoding: str = ""  # "": UTF-8 as read; else the encoding the bytes were transcoded from
    # a repository row's metadata, as sorted (name, value) pairs: stars, forks, created_at,
    # license (pipelines/archives.py ``repo_row_meta``); () for folders and archives
    meta: tuple = ()

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Drop:
    repo: str
    path: str
    reason: str        # a short snake_case reason: "binary", "invalid_utf8", "too_large", ...
    detail: str = ""   # e.g. the kept copy of an exact duplicate


@dataclass(frozen=True, slots=True)
class ClusterMember:
    """One member of a duplicate cluster (size >= 2), as ``dedup/clusters/*.parquet`` list it."""

    level: str         # "repo" or "file"
    kind: str          # "exact" or "near"
    repo: str
    path: str | None   # None at repository level
    cluster: str       # the cluster's id: its keeper's key, prefixed by level and kind
    kept: bool
    keep_policy: str = "smallest"  # what chose the keeper: smallest, permissive or stars


def processing_error(repo: str, path: str, stage: str, err: BaseException) -> Drop:
    """The Drop for a file whose processing raised: the build goes on without it."""
    return Drop(repo, path, "processing_error", f"{stage}: {type(err).__name__}: {err}"[:240])


# Kinds of piece in an example. Sentinel pieces are structure (they become control tokens);
# the others are text (tokenised with sentencepiece). Keeping the structure, instead of
# re-parsing rendered text, is what keeps a file that contains a literal "<|fim_prefix|>" safe.
SENTINEL = "sentinel"
PATH = "path"          # "path/to/file.py\n" before each file
CONTENT = "content"    # a file without FIM
PREFIX = "prefix"
MIDDLE = "middle"
SUFFIX = "suffix"
TEXT = "text"          # a natural-language document


@dataclass(frozen=True, slots=True)
class Piece:
    kind: str
    text: str
    file: int = -1     # index into Example.files, -1 for sentinels between files


@dataclass(frozen=True, slots=True)
class FileEntry:
    path: str
    language: str
    fim: str           # "none", "psm" or "spm"
    redactions: int = 0
    part: int = 0      # a file longer than a sequence is split at line ends into parts
    parts: int = 1
    license: str | None = None  # provenance, from the SourceFile
    origin: str = ""
    sha256: str = ""   # the input file's bytes
    natural_language: str = ""  # a document's language (ISO 639-1), "" for code
    license_source: str = ""  # header, license_file or manifest (dedup/licenses.py)
    encoding: str = ""  # the encoding the input was transcoded from; "": UTF-8 as read


@dataclass(frozen=True, slots=True)
class Example:
    id: str            # stable: derived from the repository and the first file, not arrival order
    repo: str
    source: str        # CODE or NATURAL_LANGUAGE
    split: str         # "train" or "validation" (by repository)
    files: tuple[FileEntry, ...]
    pieces: tuple[Piece, ...] = field(default=())

    @property
    def text(self) -> str:
        return "".join(p.text for p in self.pieces)


SPLITS = ("train", "validation")


class Tokenized(NamedTuple):
    """An example and its token ids ``[bos] ... [eos]``: what packing makes, the mixture
    keeps or drops, and a shard writes."""

    example: Example
    ids: np.ndarray


class ExampleStats(NamedTuple):
    """The small record of one example that the mixture plan and the shard counts are
    computed from, so the examples themselves are read once more only."""

    source: str        # CODE or NATURAL_LANGUAGE
    split: str
    bucket: int        # the example's mixture bucket (a hash of seed and id)
    tokens: int


class PartFate(NamedTuple):
    """Whether the mixture kept one part of a file, keyed by (repo, path): a file is kept
    when any of its parts is. ENTRY carries the file's provenance to ``OUT/files``."""

    kept: bool
    source: str
    entry: FileEntry


@dataclass(frozen=True)
class StageOut:
    """What one stage of a build hands on (``pipelines/build.py``), every output by name:

    - ``items``: the records the next stage reads (files, examples, ...);
    - ``drops``: PCollections of ``Drop``, each mapped where it is made;
    - ``counts``: PCollections of counter dicts for the report (``counter_key``);
    - ``tables``: record tables to write, {table name: PCollection or tuple of them}
      (``pipelines/outputs.RECORD_TABLES`` names them and their rows);
    - ``side``: other named outputs a later stage reads (PackExamples' ``stats``)."""

    items: Any
    drops: tuple = ()
    counts: tuple = ()
    tables: dict = field(default_factory=dict)
    side: dict = field(default_factory=dict)


# Counters travel as {key: count} dicts summed by a combiner into the manifest. A key is a
# plain name ("kept_files") or KIND:VALUE ("drop:too_large", "language:python").
def counter_key(kind: str, value) -> str:
    return f"{kind}:{value}"


def counters_of(counts: dict, kind: str) -> dict:
    """{value: count} of the KIND:VALUE keys in COUNTS."""
    prefix = kind + ":"
    return {k[len(prefix):]: v for k, v in counts.items() if k.startswith(prefix)}


AUDIT = "fimpack.audit"  # the namespace of the build's audit counters (pipelines/manifest.py)


def packed(value) -> bytes:
    """VALUE as bytes for a GroupByKey. FnApiRunner groups in the driver, decoding and
    re-encoding every grouped value with its coder, one stage at a time while the workers
    wait: an object costs it an unpickle and a pickle, bytes a copy. Workers pickle either
    way (the coder's fallback for our dataclasses is pickle)."""
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


# Every field of ``fimpack provenance``'s answer: where it comes from and what its numbers
# count from. Counts from 0 are positions into arrays (a shard's tokens, a sequence, a file's
# parts, its characters); line and column count from 1, as editors and compilers show them.
PROVENANCE_FIELDS = {
    "shard": "the token shard's name (OUT/tokens/SHARD.bin and OUT/examples/SHARD.parquet)",
    "token": "index of the token in the shard's .bin, from 0 (what --token takes)",
    "id": "the token's id in the tokenizer's vocabulary",
    "sequence": "the packed sequence holding the token, from 0: row SEQUENCE of the shard's "
                "Parquet and of its .idx",
    "example": "the example's id, REPO:NNNNN (NNNNN from 0 per repository)",
    "repo": "the repository the example came from",
    "position": "the token's position in its sequence, from 0 (0 is the BOS token)",
    "piece": "the sentencepiece piece of the token",
    "kind": "bos, eos, path (the file's path line), sentinel, prefix, middle, suffix "
            "(FIM parts), content (a file without FIM) or text (a document)",
    "path": "the file's path in its repository",
    "part": "which part of a file longer than a sequence, from 0 (inspect shows part+1/parts)",
    "parts": "how many parts the file was split into (1: whole)",
    "license": "the file's SPDX licence expression (or none)",
    "origin": "where the file was read: folder, archive, or row file#row (row from 0)",
    "sha256": "SHA-256 of the file's input bytes, before any decoding or redaction",
    "fim": "the file's FIM mode: psm, spm or none",
    "char_offset": "offset in the file as read (decoded text), in characters, from 0",
    "line": "the line of that character in the file, from 1",
    "column": "its column in that line, in characters, from 1",
}
