"""``fimpack report OUT``: one self-contained HTML file (inline SVG, no scripts, no network)
that shows what a build packed: sequence utilisation, documents per sequence, files split,
language and source mix, drops by reason, and the dependency graph of a sample repository."""
from __future__ import annotations

import glob
import html
import json
import os
from collections import Counter

import pyarrow.parquet as pq

from fimpack.inspect import as_json

W, H = 520, 220  # plot size in pixels


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
               xlabel: str) -> str:
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
                 f'<text x="0" y="12" font-size="11">max {top:,}</text></svg>')
    return f"<h3>{html.escape(title)}</h3>" + "".join(parts)


def _graph_svg(repo: str, files: dict[str, str]) -> str:
    """The dependency graph of one repository, laid out by networkx (no Graphviz needed)."""
    import networkx as nx

    from fimpack.packing.graph import order_repository
    from fimpack.pipelines.languages import detect_language
    from fimpack.records import SourceFile

    sources = [SourceFile(repo, p, detect_language(p) or "text", c)
               for p, c in sorted(files.items())]
    result = order_repository(sources)
    g = nx.DiGraph()
    g.add_nodes_from(p for p in result.order)
    g.add_edges_from(result.edges)
    nodes = [n for n in g if g.degree(n)] or list(g)[:40]
    g = g.subgraph(nodes[:80])
    pos = nx.spring_layout(g, seed=0) if len(g) else {}
    size = 560

    def xy(n):
        x, y = pos[n]
        return 30 + (x + 1) / 2 * (size - 60), 20 + (y + 1) / 2 * (size - 40)

    rank = {p: i for i, p in enumerate(result.order)}
    parts = [f'<svg width="{size}" height="{size}" role="img"><defs><marker id="a" '
             'viewBox="0 0 10 10" refX="10" refY="5" markerWidth="5" markerHeight="5" '
             'orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#999"/></marker></defs>']
    removed = set(map(tuple, result.removed_edges))
    for u, v in g.edges:
        (x1, y1), (x2, y2) = xy(u), xy(v)
        colour = "#d55" if (u, v) in removed else "#999"
        parts.append(f'<line x1="{x1:.0f}" y1="{y1:.0f}" x2="{x2:.0f}" y2="{y2:.0f}" '
                     f'stroke="{colour}" marker-end="url(#a)"/>')
    for n in g:
        x, y = xy(n)
        parts.append(f'<circle cx="{x:.0f}" cy="{y:.0f}" r="4" fill="#4a7fb5">'
                     f'<title>{html.escape(n)} (#{rank.get(n, -1)} in order)</title></circle>'
                     f'<text x="{x + 5:.0f}" y="{y - 4:.0f}" font-size="9">'
                     f'{html.escape(os.path.basename(n))}</text>')
    parts.append("</svg>")
    caption = (f"{repo}: {len(result.order)} files, {len(result.edges)} import edges "
               f"({len(removed)} removed to break cycles, red), {len(result.test_links)} test "
               f"links; order starts {', '.join(result.order[:6])}")
    return f"<h3>Dependency graph of a sample repository</h3><p>{html.escape(caption)}</p>" \
        + "".join(parts)


def build_report(out: str) -> str:
    with open(os.path.join(out, "manifest.json")) as f:
        manifest = json.load(f)
    c = manifest["counts"]
    seq_len = manifest["config"]["seq_len"]
    fills, docs_per_seq, languages = [], [], Counter()
    repo_files: dict[str, dict[str, str]] = {}
    for path in sorted(glob.glob(os.path.join(out, "examples", "*.parquet"))):
        per_seq = Counter()
        per_seq_docs = Counter()
        for row in pq.read_table(path).to_pylist():
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
    sample = max(repo_files, key=lambda r: (min(len(repo_files[r]), 60), r), default=None)
    summary = [("input files", c["input_files"]), ("kept files", c["kept_files"]),
               ("dropped files", c["dropped_files"]), ("examples", c["examples"]),
               ("sequences", c.get("sequences")), ("utilisation", c.get("utilisation")),
               ("files split across sequences", c.get("files_split")),
               ("code fraction (target)", f"{c['code_fraction']} ({c.get('code_fraction_target')})"),
               ("tokens", c["tokens"])]
    table = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>"
                    for k, v in summary)
    body = [
        f"<h1>fimpack build report</h1><p>{html.escape(os.path.abspath(out))}</p>",
        f"<table>{table}</table>",
        _histogram("Sequence utilisation (tokens / seq_len)", fills, 20, 0.0, 1.0, "fill"),
        _histogram("Documents (examples) per sequence", docs_per_seq, 20, 0,
                   max(docs_per_seq, default=1) + 1, "examples"),
        _bars("Tokens by source", sorted(c["tokens_by_source"].items())),
        _bars("Files by language", languages.most_common()),
        _bars("Dropped files by reason", sorted(c["dropped_by_reason"].items(),
                                                 key=lambda kv: -kv[1])),
        _bars("FIM mode of code files", sorted(c.get("fim_files", {}).items())),
    ]
    if sample:
        body.append(_graph_svg(sample, repo_files[sample]))
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
             "table{border-collapse:collapse}td{border:1px solid #ccc;padding:2px 8px}"
             "h3{margin-top:1.5em}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>fimpack report</title>"
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>")


def main(out: str, path: str | None = None) -> str:
    path = path or os.path.join(out, "report.html")
    with open(path, "w", encoding="utf-8") as f:
        f.write(build_report(out))
    return path
