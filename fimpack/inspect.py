"""``fimpack inspect``: read a build's examples back, readably or as JSON.

The JSON form reconstructs every file of an example from the example's text by undoing the
FIM rearrangement (using the piece structure stored beside the text, so a file that contains
a literal sentinel string is still reconstructed exactly).
"""
from __future__ import annotations

import glob
import html
import json
import os
import sys
from typing import Iterator

import pyarrow.parquet as pq

from fimpack.packing.fim import reconstruct
from fimpack.packing.pieces import pieces_of

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


def as_json(row: dict) -> dict:
    pieces = pieces_of(row)
    return {"id": row["id"], "repo": row["repo"], "source": row["source"],
            "split": row["split"], "text": row["text"], "num_tokens": row["num_tokens"],
            "sequence": row["sequence"],
            "files": [{"path": f["path"], "language": f["language"], "fim": f["fim"],
                       "redactions": f["redactions"], "part": f["part"], "parts": f["parts"],
                       "license": f.get("license"), "origin": f.get("origin"),
                       "sha256": f.get("sha256"),
                       "natural_language": f.get("natural_language"),
                       "content": reconstruct(pieces, i)}
                      for i, f in enumerate(row["files"])]}


def render(row: dict, colour: bool) -> str:
    head = (f"== example {row['id']}  repo={row['repo']}  source={row['source']}  "
            f"split={row['split']}  tokens={row['num_tokens']}")
    lines = [head]
    for f in row["files"]:  # each file with its provenance
        part = f" (part {f['part'] + 1}/{f['parts']})" if f["parts"] > 1 else ""
        lang = f" language={f['natural_language']}" if f.get("natural_language") else ""
        lines.append(f"   {f['path']} [{f['fim']}]{part}  licence={f.get('license')}{lang}  "
                     f"sha256={(f.get('sha256') or '')[:12]}  origin={f.get('origin') or ''}")
    lines.append("")
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


HTML_COLOURS = {"path": "#e8f4f8", "sentinel": "#f3e5f5", "prefix": "#e8f5e9",
                "middle": "#fff3cd", "suffix": "#e3f2fd", "content": "#ffffff", "text": "#ffffff"}


def render_html(row: dict) -> str:
    """One example as an HTML fragment: its files' provenance, then its text with each piece
    coloured by kind (FIM parts, path lines, sentinels) and a rule at each file boundary."""
    files = "".join(
        f"<tr><td>{i}</td><td>{html.escape(f['path'])}</td><td>{f['fim']}</td>"
        f"<td>{f['part'] + 1}/{f['parts']}</td><td>{html.escape(str(f.get('license')))}</td>"
        f"<td>{html.escape(str(f.get('origin') or ''))}</td>"
        f"<td><code>{(f.get('sha256') or '')[:12]}</code></td></tr>"
        for i, f in enumerate(row["files"]))
    spans = []
    for p in pieces_of(row):
        if p.kind == "path" and spans:
            spans.append("<hr>")
        spans.append(f'<span class="{p.kind}" title="{p.kind}, file {p.file}" style="background:'
                     f'{HTML_COLOURS.get(p.kind, "#fff")}">{html.escape(p.text)}</span>')
    legend = " ".join(f'<span style="background:{c};padding:0 4px">{k}</span>'
                      for k, c in HTML_COLOURS.items() if k not in ("content", "text"))
    return (f"<h3>Example {html.escape(row['id'])}</h3><p>repo {html.escape(row['repo'])}, "
            f"{row['source']}, split {row['split']}, {row['num_tokens']:,} tokens, sequence "
            f"{row['sequence']} of its shard. Colours: {legend}</p>"
            "<table><tr><th>#</th><th>path</th><th>FIM</th><th>part</th><th>licence</th>"
            f"<th>origin</th><th>sha256</th></tr>{files}</table>"
            f"<pre style='white-space:pre-wrap;border:1px solid #ccc;padding:6px'>"
            f"{''.join(spans)}</pre>")


def write_html(row: dict, path: str) -> str:
    with open(path, "w", encoding="utf-8") as f:
        f.write("<!doctype html><html><head><meta charset='utf-8'><title>fimpack example "
                f"{html.escape(row['id'])}</title><style>body{{font-family:sans-serif;"
                "max-width:1100px;margin:2em auto}td,th{border:1px solid #ccc;padding:2px 6px}"
                f"table{{border-collapse:collapse}}</style></head><body>{render_html(row)}"
                "</body></html>")
    return path


def wanted(row: dict, source: str | None = None, min_files: int = 0,
           fim: bool = False) -> bool:
    """Does ROW pass ``inspect``'s filters: its source (code, nl), at least MIN_FILES
    distinct files, and (FIM) at least one file in a FIM mode?"""
    if source and row["source"] != source:
        return False
    if len({f["path"] for f in row["files"]}) < min_files:
        return False
    return not fim or any(f["fim"] != "none" for f in row["files"])


def main(out: str, example: str | None, json_lines: bool, limit: int,
         html_path: str | None = None, source: str | None = None, min_files: int = 0,
         fim: bool = False) -> int:
    colour = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    shown = 0
    for row in iter_examples(out):
        if example is not None and row["id"] != example:
            continue
        if not wanted(row, source, min_files, fim):
            continue
        if html_path:
            print(write_html(row, html_path))
            return 0
        print(json.dumps(as_json(row), ensure_ascii=False) if json_lines
              else render(row, colour))
        shown += 1
        if example is not None or (limit and shown >= limit and not json_lines):
            break
    if example is not None and not shown:
        print(f"no example {example!r} in {out}", file=sys.stderr)
        return 1
    if not shown and (source or min_files or fim):
        print(f"no example in {out} matches the filters", file=sys.stderr)
        return 1
    return 0
