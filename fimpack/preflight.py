"""Checks of a build's inputs and options before any pipeline starts: a mistake found here
costs the user a second, not a runner start-up and a traceback. Each failure is a
``UserError`` whose one line says what was wrong and what to pass instead."""
from __future__ import annotations

import os

from fimpack.errors import UserError
from fimpack.packing.tokenizer import BYTE_PIECES, RESERVED_PIECES
from fimpack.pipelines.sources import ARCHIVE_SUFFIXES, ROW_SUFFIXES, is_remote

# The smallest vocabulary a build may ask for: the byte-fallback pieces and the reserved
# (pad/unk/bos/eos and FIM/file sentinel) pieces, plus room for the corpus's characters and
# merges. Sentencepiece itself refuses a size below bytes + reserved + the characters that
# cover the sample; that part depends on the data and is reported after training starts.
MIN_VOCAB_SIZE = 512


def check_input(path: str | None, layout: str = "auto") -> None:
    if path is None or is_remote(path):
        return  # the embedded default; a remote path is listed by Beam's filesystems
    if not os.path.exists(path):
        raise UserError(f"--input {path}: no such file or folder; pass a folder of "
                        "repositories, one repository, an archive or a .jsonl/.parquet file")
    if not os.access(path, os.R_OK):
        raise UserError(f"--input {path}: not readable by this user; check its permissions")
    if os.path.isfile(path):
        if not path.endswith(ARCHIVE_SUFFIXES + ROW_SUFFIXES):
            raise UserError(f"--input {path} is a file but neither an archive "
                            f"({', '.join(ARCHIVE_SUFFIXES)}) nor a row file (.jsonl, "
                            ".parquet); pass the folder that holds it")
        if layout == "repos":
            raise UserError(f"--input {path} is a file: --input-layout repos needs a folder")
    elif layout == "rows" and not any(e.endswith(ROW_SUFFIXES) for e in os.listdir(path)):
        raise UserError(f"--input {path} holds no .jsonl or .parquet files for "
                        "--input-layout rows")


def check_out(path: str) -> None:
    if is_remote(path):
        return
    if os.path.exists(path) and not os.path.isdir(path):
        raise UserError(f"--out {path} is an existing file; pass a folder (it is created if "
                        "missing; an earlier build's outputs in it are replaced)")
    parent = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent) or not os.access(parent if not os.path.exists(path) else path,
                                                  os.W_OK):
        raise UserError(f"--out {path}: cannot write there; choose a folder you can write to")


def check_vocab(vocab_size: int, tokenizer: str | None) -> None:
    if tokenizer:
        if is_remote(tokenizer):
            return
        if not os.path.isfile(tokenizer):
            raise UserError(f"--tokenizer {tokenizer}: no such file; pass a sentencepiece "
                            ".model file, or leave it out to train one on the corpus")
        from fimpack.packing.tokenizer import Tokenizer
        try:
            Tokenizer.load(tokenizer)
        except ValueError as err:  # not a model, or one without the sentinels
            raise UserError(f"--tokenizer {tokenizer}: {err}") from err
        except RuntimeError as err:
            raise UserError(f"--tokenizer {tokenizer} is not a sentencepiece model ({err})") \
                from err
        return
    need = BYTE_PIECES + RESERVED_PIECES
    if vocab_size < MIN_VOCAB_SIZE:
        raise UserError(f"--vocab-size {vocab_size} is too small: the {BYTE_PIECES} byte-"
                        f"fallback pieces and {RESERVED_PIECES} reserved pieces (pad, unk, bos, "
                        f"eos, FIM and file sentinels) alone take {need}; use at least "
                        f"{MIN_VOCAB_SIZE} (the demo uses 4096, CodeGemma 256000)")


def _in_range(name: str, value, lo, hi, lo_open=False, hi_open=False) -> None:
    if value is None:
        return
    bad = value < lo or value > hi or (lo_open and value == lo) or (hi_open and value == hi)
    if bad:
        lo_s, hi_s = ("(" if lo_open else "["), (")" if hi_open else "]")
        raise UserError(f"{name} {value} is out of range: it must lie in {lo_s}{lo}, {hi}{hi_s}")


def check_earlier_build(prev: str, out: str, near: dict | None = None) -> None:
    """--dedup-against PREV: a finished build (its manifest) that wrote what it kept, with
    MinHash signatures comparable to this build's (NEAR: its num_perm and ngram)."""
    if is_remote(prev):
        return
    manifest = os.path.join(prev, "manifest.json")
    if os.path.abspath(prev) == os.path.abspath(out):
        raise UserError(f"--dedup-against {prev} is --out itself: the build clears it first")
    if not os.path.isfile(manifest):
        raise UserError(f"--dedup-against {prev}: no manifest.json there (not a finished "
                        "fimpack build's OUT folder)")
    import json

    with open(manifest, encoding="utf-8") as f:
        earlier = json.load(f)
    records = earlier.get("records", {})
    if "dedup/signatures" not in records or "dedup/hashes" not in records:
        raise UserError(f"--dedup-against {prev}: built before builds wrote OUT/dedup/ "
                        "signatures and hashes; rebuild it once")
    theirs = earlier.get("config", {}).get("dedup", {}).get("near", {})
    for key, value in (near or {}).items():  # other settings give signatures of other sets
        if key in theirs and theirs[key] != value:
            flag = "--" + key.replace("_", "-")
            raise UserError(f"--dedup-against {prev}: it was built with {flag} "
                            f"{theirs[key]}, this build has {value}; their MinHash signatures "
                            f"cannot be compared: pass {flag} {theirs[key]}")


def check_build_args(args, dedup_only: bool) -> None:
    """Every check of ``fimpack build``/``dedup``'s parsed flags; raises UserError."""
    check_input(args.input, getattr(args, "input_layout", "auto"))
    check_out(args.out)
    _in_range("--workers", args.workers, 1, 1024)
    _in_range("--max-file-bytes", args.max_file_bytes, 1, 1 << 40)
    _in_range("--near-threshold", args.near_threshold, 0.0, 1.0, lo_open=True)
    for flag, value in (("--licenses", args.licenses), ("--exclude-repos",
                                                         args.exclude_repos)):
        if value and is_remote(value):  # read by the driver with open(), before Beam starts
            raise UserError(f"{flag} {value}: pass a local file (it is read once, by the "
                            "machine that submits the build)")
    if args.licenses not in ("any", "permissive", "off") \
            and not os.path.isfile(args.licenses):
        raise UserError(f"--licenses {args.licenses}: neither any, permissive, off nor a file "
                        "of SPDX ids (one per line)")
    if args.exclude_repos and not os.path.isfile(args.exclude_repos):
        raise UserError(f"--exclude-repos {args.exclude_repos}: no such file (names or globs, "
                        "one per line)")
    for prev in getattr(args, "dedup_against", None) or ():
        check_earlier_build(prev, args.out, {"num_perm": args.num_perm, "ngram": args.ngram})
    if dedup_only:
        return
    check_vocab(args.vocab_size, args.tokenizer)
    _in_range("--val-fraction", args.val_fraction, 0.0, 1.0, hi_open=True)
    _in_range("--fim-rate", args.fim_rate, 0.0, 1.0)
    _in_range("--seq-len", args.seq_len, 64, 1 << 22)
    if args.code_fraction is not None and args.code_fraction != -1:
        _in_range("--code-fraction", args.code_fraction, 0.0, 1.0, lo_open=True)
    for bench in args.benchmark or ():
        if not is_remote(bench) and not os.path.isfile(bench):
            raise UserError(f"--benchmark {bench}: no such file (a JSONL of benchmark tasks)")
