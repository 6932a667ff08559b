"""``fimpack report OUT``: one self-contained HTML file (inline SVG, no scripts, no network)
that shows what a build packed. Warnings first (an empty split, a missed mixture target, high
drop rates, split files, low utilisation, files without a licence), then the numbers, charts
with titles and units (sequence utilisation, documents per sequence, tokens by source, files
by language and licence, documents by natural language, drops by reason, FIM modes), the
dependency graph of a sample repository as a matrix in CodeGemma's order (at most
MATRIX_FILES files, the rest counted),
and one example as packed (``inspect.render_html``)."""
from __future__ import annotations

import glob
import html
import json
import os
from collections import Counter

import pyarrow.parquet as pq

from fimpack.inspect import as_json

W, H = 520, 220  # plot size in pixels
MATRIX_FILES = 40  # files drawn in the dependency matrix; more would not be readable
DROP_WARN = 0.25   # warn when this share of the input is dropped, or of one reason > 10%


def _bars(title: str, items: list[tuple[str, float]], fmt=lambda v: f"{v:,}") -> str:
    """A horizontal bar chart."""
    items = items[:24]
    if not items:
        return f"<h3>{html.escape(title)}</h3><p>(nothing)</p>"
    top = max(v for _, v in items) or 1
    row = 18
    parts = [f'<svg width="{W}" height="{row * len(items) + 10}" role="img">']
    for i, (label, v) in enumerate(items):
        y = 5 + i * row
        w = int((W - 260) * v / top)
        parts.append(f'<text x="0" y="{y + 12}" font-size="12">{html.escape(label[:30])}</text>'
                     f'<rect x="190" y="{y + 2}" width="{w}" height="13" fill="#4a7fb5"/>'
                     f'<text x="{195 + w}" y="{y + 12}" font-size="11">{fmt(v)}</text>')
    parts.append("</svg>")
    return f"<h3>{html.escape(title)}</h3>" + "".join(parts)


def _histogram(title: str, values: list[float], bins: int, lo: float, hi: float,
               xlabel: str, ylabel: str = "sequences") -> str:
    if not values:
        return f"<h3>{html.escape(title)}</h3><p>(nothing)</p>"
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, max(0, int((v - lo) / (hi - lo) * bins)))] += 1
    top = max(counts)
    bw = (W - 40) / bins
    parts = [f'<svg width="{W}" height="{H}" role="img">']
    for i, c in enumerate(counts):
        h = (H - 40) * c / top
        parts.append(f'<rect x="{30 + i * bw:.1f}" y="{H - 25 - h:.1f}" width="{bw - 1:.1f}" '
                     f'height="{h:.1f}" fill="#5b9a68"><title>{c}</title></rect>')
    parts.append(f'<text x="30" y="{H - 8}" font-size="11">{lo:g}</text>'
                 f'<text x="{W - 40}" y="{H - 8}" font-size="11">{hi:g}</text>'
                 f'<text x="{W / 2 - 60}" y="{H - 8}" font-size="11">{html.escape(xlabel)}</text>'
                 f'<text x="0" y="12" font-size="11">{html.escape(ylabel)} (max {top:,} in '
                 'a bar)</text></svg>')
    return f"<h3>{html.escape(title)}</h3>" + "".join(parts)


def _graph_matrix(repo: str, files: dict[str, str]) -> str:
    """The dependency graph of one repository as a matrix in CodeGemma's order: row i imports
    column j when cell (i, j) is filled. Dependencies first puts every mark left of the
    diagonal; a mark right of it is an import the order could not honour (a cycle, red)."""
    from fimpack.packing.graph import order_repository
    from fimpack.pipelines.languages import detect_language
    from fimpack.records import SourceFile

    sources = [SourceFile(repo, p, detect_language(p) or "text", c)
               for p, c in sorted(files.items())]
    result = order_repository(sources)
    linked = {p for e in result.edges for p in e}
    shown = [p for p in result.order if p in linked][:MATRIX_FILES]
    idx = {p: i for i, p in enumerate(shown)}
    cell, label = 12, 230
    size = label + cell * len(shown) + 10
    removed = set(map(tuple, result.removed_edges))
    parts = [f'<svg width="{size}" height="{size - label + 40}" role="img">']
    for p, i in idx.items():
        y = 30 + i * cell
        parts.append(f'<text x="{label - 6}" y="{y + 10}" font-size="10" text-anchor="end">'
                     f'{i + 1}. {html.escape(p[-36:])}</text>'
                     f'<text x="{label + i * cell + 2}" y="24" font-size="8">{i + 1}</text>'
                     f'<rect x="{label + i * cell}" y="{y}" width="{cell}" height="{cell}" '
                     f'fill="#f4f4f4"/>')
    for u, v in result.edges:
        if u in idx and v in idx:
            colour = "#d55" if (u, v) in removed or idx[v] > idx[u] else "#4a7fb5"
            parts.append(f'<rect x="{label + idx[v] * cell + 1}" y="{30 + idx[u] * cell + 1}" '
                         f'width="{cell - 2}" height="{cell - 2}" fill="{colour}">'
                         f'<title>{html.escape(u)} imports {html.escape(v)}</title></rect>')
    parts.append(f'<text x="{label}" y="12" font-size="11">imported file (column) →</text>'
                 "</svg>")
    hidden = len(linked) - len(shown)
    caption = (f"{repo}: {len(result.order)} files, {len(result.edges)} import edges "
               f"({len(removed)} removed to break cycles), {len(result.test_links)} test links. "
               f"Rows import columns; files in CodeGemma's order, so marks sit left of the "
               f"diagonal (red: against the order). Showing the first {len(shown)} files "
               f"with edges" + (f"; {hidden} more files with edges and "
                                f"{len(result.order) - len(linked)} without are not drawn."
                                if hidden else "."))
    return (f"<h3>Dependency graph of a sample repository (matrix, CodeGemma order)</h3>"
            f"<p>{html.escape(caption)}</p>" + "".join(parts))


def warnings(manifest: dict) -> list[str]:
    """What a reader should know before the numbers."""
    c, out = manifest["counts"], []
    by_split = c.get("examples_by_split", {})
    if manifest["config"].get("val_fraction", 0) > 0 and not by_split.get("validation"):
        out.append("The validation split is empty: evaluation falls back to training data.")
    target, got = c.get("code_fraction_target"), c.get("code_fraction")
    if target is not None and got is not None and abs(got - target) > 0.05:
        out.append(f"Code fraction {got:.3f} misses the {target} target"
                   + (" (no natural-language input)" if not c["tokens_by_source"].get("nl")
                      else "") + ".")
    if c["input_files"] and c["dropped_files"] / c["input_files"] > DROP_WARN:
        out.append(f"{c['dropped_files'] / c['input_files']:.0%} of the input files were "
                   "dropped.")
    for reason, n in sorted(c["dropped_by_reason"].items(), key=lambda kv: -kv[1]):
        if c["input_files"] and n / c["input_files"] > 0.1:
            out.append(f"{n:,} files ({n / c['input_files']:.0%}) dropped as '{reason}'.")
    if c.get("files_split"):
        out.append(f"{c['files_split']:,} files are longer than a sequence and were split "
                   f"into parts ({c.get('file_parts', '?')} parts).")
    if c.get("utilisation") is not None and c["utilisation"] < 0.95:
        out.append(f"Sequence utilisation is {c['utilisation']:.1%} (padding is wasted "
                   "compute).")
    unlicensed = c.get("files_by_license", {}).get("none", 0)
    if unlicensed:
        out.append(f"{unlicensed:,} kept files have no detected licence (--licenses "
                   "permissive would drop them).")
    for pair, n in sorted(c.get("license_disagreements", {}).items(), key=lambda kv: -kv[1]):
        manifest_says, _, files_say = pair.partition(" vs ")
        out.append(f"{n:,} repositories declare {manifest_says} in their package manifest "
                   f"while their licence files read {files_say} (the manifest's is kept).")
    return out


def _collect(out: str, seq_len: int):
    """(sequence fills, documents per sequence, files by language, up to 50 repositories'
    files, the first example row) read from the examples Parquet."""
    fills, docs_per_seq, languages, first = [], [], Counter(), None
    repo_files: dict[str, dict[str, str]] = {}
    for path in sorted(glob.glob(os.path.join(out, "examples", "*.parquet"))):
        per_seq, per_seq_docs = Counter(), Counter()
        for row in pq.read_table(path).to_pylist():
            first = first or row
            per_seq[row["sequence"]] += row["num_tokens"]
            per_seq_docs[row["sequence"]] += 1
            for f in row["files"]:
                languages[f["language"]] += 1
            if row["source"] == "code" and len(repo_files) < 50:
                files = repo_files.setdefault(row["repo"], {})
                for f in as_json(row)["files"]:
                    files[f["path"]] = files.get(f["path"], "") + f["content"]
        fills += [t / seq_len for t in per_seq.values()]
        docs_per_seq += list(per_seq_docs.values())
    return fills, docs_per_seq, languages, repo_files, first


def build_report(out: str) -> str:
    with open(os.path.join(out, "manifest.json")) as f:
        manifest = json.load(f)
    c = manifest["counts"]
    seq_len = manifest["config"]["seq_len"]
    fills, docs_per_seq, languages, repo_files, first = _collect(out, seq_len)
    sample = max(repo_files, key=lambda r: (min(len(repo_files[r]), 60), r), default=None)
    summary = [("input files", c["input_files"]), ("kept files", c["kept_files"]),
               ("dropped files", c["dropped_files"]), ("examples", c["examples"]),
               ("sequences", c.get("sequences")), ("utilisation", c.get("utilisation")),
               ("files split across sequences", c.get("files_split")),
               ("code fraction (target)", f"{c['code_fraction']} ({c.get('code_fraction_target')})"),
               ("tokens", c["tokens"])]
    table = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>"
                    for k, v in summary)
    notes = warnings(manifest)
    warn = ("<div class='warn'><h2>Warnings</h2><ul>"
            + "".join(f"<li>{html.escape(w)}</li>" for w in notes) + "</ul></div>") if notes \
        else "<p class='ok'>No warnings.</p>"
    body = [
        f"<h1>fimpack build report</h1><p>{html.escape(os.path.abspath(out))}</p>", warn,
        f"<table>{table}</table>",
        _histogram(f"Sequence utilisation (tokens / seq_len {seq_len:,}), sequences per bin",
                   fills, 20, 0.0, 1.0, "fill of the sequence (0 to 1)"),
        _histogram("Documents (examples) per packed sequence", docs_per_seq, 20, 0,
                   max(docs_per_seq, default=1) + 1, "examples in the sequence"),
        _bars("Tokens by source (tokens)", sorted(c["tokens_by_source"].items())),
        _bars("Files by language (files, as packed)", languages.most_common()),
        _bars("Files by licence (SPDX; files past the licence policy)", sorted(
            c.get("files_by_license", {}).items(), key=lambda kv: -kv[1])),
        _bars("Natural-language documents by language (ISO 639-1, py3langid; documents "
              "past the filters)", sorted(c.get("documents_by_language", {}).items(),
                                          key=lambda kv: -kv[1])),
        _bars("Dropped files by reason (files)", sorted(c["dropped_by_reason"].items(),
                                                         key=lambda kv: -kv[1])),
        _bars("FIM mode of code files (files)", sorted(c.get("fim_files", {}).items())),
    ]
    if sample:
        body.append(_graph_matrix(sample, repo_files[sample]))
    if first is not None:
        from fimpack.inspect import render_html
        body.append("<h3>The first example, as packed</h3>" + render_html(first))
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
             "table{border-collapse:collapse}td{border:1px solid #ccc;padding:2px 8px}"
             "h3{margin-top:1.5em}.warn{background:#fff4e5;border:1px solid #f0a030;"
             "padding:4px 12px}.ok{color:#2a7}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>fimpack report</title>"
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>")


def main(out: str, path: str | None = None) -> str:
    path = path or os.path.join(out, "report.html")
    with open(path, "w", encoding="utf-8") as f:
        f.write(build_report(out))
    return path
