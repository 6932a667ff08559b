"""``fimpack inspect``: read a build's examples back, readably or as JSON.

The JSON form reconstructs every file of an example from the example's text by undoing the
FIM rearrangement (using the piece structure stored beside the text, so a file that contains
a literal sentinel string is still reconstructed exactly).
"""
from __future__ import annotations

import glob
import json
import os
import sys
from typing import Iterator

import pyarrow.parquet as pq

from fimpack.packing.fim import reconstruct
from fimpack.records import Piece

# ANSI colours per piece kind: prefix / middle / suffix stay distinguishable in a terminal.
COLOURS = {"path": "\033[1;36m", "sentinel": "\033[1;35m", "prefix": "\033[32m",
           "middle": "\033[1;33m", "suffix": "\033[34m", "content": "", "text": ""}
RESET = "\033[0m"


def example_files(out: str) -> list[str]:
    files = sorted(glob.glob(os.path.join(out, "examples", "*.parquet")))
    if not files:
        raise FileNotFoundError(f"no examples under {out}/examples (is it a fimpack build?)")
    return files


def iter_examples(out: str) -> Iterator[dict]:
    for path in example_files(out):
        for batch in pq.ParquetFile(path).iter_batches(batch_size=256):
            yield from batch.to_pylist()


def pieces_of(row: dict) -> list[Piece]:
    text = row["text"]
    return [Piece(p["kind"], text[p["start"]:p["end"]], p["file"]) for p in row["pieces"]]


def as_json(row: dict) -> dict:
    pieces = pieces_of(row)
    return {"id": row["id"], "repo": row["repo"], "source": row["source"],
            "split": row["split"], "text": row["text"], "num_tokens": row["num_tokens"],
            "sequence": row["sequence"],
            "files": [{"path": f["path"], "language": f["language"], "fim": f["fim"],
                       "redactions": f["redactions"], "part": f["part"], "parts": f["parts"],
                       "license": f.get("license"), "origin": f.get("origin"),
                       "sha256": f.get("sha256"), "content": reconstruct(pieces, i)}
                      for i, f in enumerate(row["files"])]}


def render(row: dict, colour: bool) -> str:
    head = (f"== example {row['id']}  repo={row['repo']}  source={row['source']}  "
            f"split={row['split']}  tokens={row['num_tokens']}")
    files = ", ".join(f"{f['path']} [{f['fim']}]" + (f" (part {f['part'] + 1}/{f['parts']})"
                                                      if f["parts"] > 1 else "")
                      for f in row["files"])
    lines = [head, f"   files: {files}", ""]
    body = []
    for p in pieces_of(row):
        if colour:
            body.append(COLOURS.get(p.kind, "") + p.text + RESET)
        elif p.kind in ("prefix", "middle", "suffix"):
            body.append(f"⟦{p.kind}⟧{p.text}")
        else:
            body.append(p.text)
    lines.append("".join(body))
    if not colour:
        lines.append("\n(⟦prefix⟧/⟦middle⟧/⟦suffix⟧ mark where each FIM part starts)")
    return "\n".join(lines)


def main(out: str, example: str | None, json_lines: bool, limit: int) -> int:
    colour = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    shown = 0
    for row in iter_examples(out):
        if example is not None and row["id"] != example:
            continue
        print(json.dumps(as_json(row), ensure_ascii=False) if json_lines
              else render(row, colour))
        shown += 1
        if example is not None or (limit and shown >= limit and not json_lines):
            break
    if example is not None and not shown:
        print(f"no example {example!r} in {out}", file=sys.stderr)
        return 1
    return 0
