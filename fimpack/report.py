"""``fimpack report OUT``: one self-contained HTML file (inline SVG, no scripts, no network)
that shows what a build packed. Warnings first (an empty split, a missed mixture target, high
drop rates, split files, low utilisation, files without a licence), then the numbers, the
train/validation breakdown, a table per repository (files, parts, tokens, licence, split,
drops), charts with titles, axis ticks and units (sequence utilisation, documents per
sequence, tokens by source, files by language — each file once — and licence, documents by
natural language, drops by reason, FIM modes), the dependency graphs of up to MATRIX_REPOS
repositories as matrices in CodeGemma's order (one open at a time by its <details> header,
at most MATRIX_FILES files each, the rest counted), and one example as packed
(``inspect.render_html``)."""
from __future__ import annotations

import glob
import html
import json
import os
from collections import Counter

import pyarrow.parquet as pq

from fimpack.config import recorded_setting
from fimpack.inspect import as_json, wanted
from fimpack.packing.split import validation_warning

W, H = 520, 220  # plot size in pixels
MATRIX_FILES = 40  # files drawn in the dependency matrix; more would not be readable
MATRIX_REPOS = 8   # repositories whose matrix can be chosen (each costs a parse)
REPO_ROWS = 200    # rows of the per-repository table; the rest are counted
DROP_WARN = 0.25   # warn when this share of the input is dropped, or of one reason > 10%


def _bars(title: str, items: list[tuple[str, float]], fmt=lambda v: f"{v:,}") -> str:
    """A horizontal bar chart."""
    items = items[:24]
    if not items:
        return f"<h3>{html.escape(title)}</h3><p>(nothing)</p>"
    top = max(v for _, v in items) or 1
    row, span = 18, W - 260
    axis = 5 + row * len(items)
    parts = [f'<svg width="{W}" height="{axis + 24}" role="img">']
    for i, (label, v) in enumerate(items):
        y = 5 + i * row
        w = int(span * v / top)
        parts.append(f'<text x="0" y="{y + 12}" font-size="12"><title>{html.escape(label)}'
                     f'</title>{html.escape(label[:30])}</text>'
                     f'<rect x="190" y="{y + 2}" width="{w}" height="13" fill="#4a7fb5"/>'
                     f'<text x="{195 + w}" y="{y + 12}" font-size="11">{fmt(v)}</text>')
    parts.append(f'<line x1="190" y1="{axis}" x2="{190 + span}" y2="{axis}" stroke="#888"/>')
    for t in _ticks(top):  # the value axis: where the bars' lengths are read
        x = 190 + span * t / top
        parts.append(f'<line x1="{x:.1f}" y1="{axis}" x2="{x:.1f}" y2="{axis + 4}" '
                     f'stroke="#888"/><text x="{x:.1f}" y="{axis + 16}" font-size="10" '
                     f'text-anchor="middle">{_num(t)}</text>')
    parts.append("</svg>")
    return f"<h3>{html.escape(title)}</h3>" + "".join(parts)


def _ticks(top: float, n: int = 4) -> list[float]:
    """Round tick values from 0 to at most TOP (1, 2 or 5 times a power of ten apart)."""
    import math
    if top <= 0:
        return [0]
    raw = top / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    return [i * step for i in range(int(top // step) + 1)]


def _num(v: float) -> str:
    """A number as people read it: thousands separators, no float noise."""
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, int) or float(v).is_integer():
        return f"{int(v):,}"
    return f"{v:,.3g}" if abs(v) < 1 else f"{v:,.2f}"


def _histogram(title: str, values: list[float], bins: int, lo: float, hi: float,
               xlabel: str, ylabel: str = "sequences") -> str:
    if not values:
        return f"<h3>{html.escape(title)}</h3><p>(nothing)</p>"
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, max(0, int((v - lo) / (hi - lo) * bins)))] += 1
    top = max(counts)
    left, base, plot_h = 50, H - 40, H - 60  # plot area: x from LEFT, bars up from BASE
    bw = (W - left - 10) / bins
    parts = [f'<svg width="{W}" height="{H}" role="img">']
    for i, c in enumerate(counts):
        h = plot_h * c / top
        parts.append(f'<rect x="{left + i * bw:.1f}" y="{base - h:.1f}" width="{bw - 1:.1f}" '
                     f'height="{h:.1f}" fill="#5b9a68"><title>{c:,}</title></rect>')
    parts.append(f'<line x1="{left}" y1="{base}" x2="{W - 10}" y2="{base}" stroke="#888"/>'
                 f'<line x1="{left}" y1="{base}" x2="{left}" y2="{base - plot_h}" '
                 'stroke="#888"/>')
    for t in _ticks(top):  # y: counts
        y = base - plot_h * t / top
        parts.append(f'<line x1="{left - 4}" y1="{y:.1f}" x2="{left}" y2="{y:.1f}" '
                     f'stroke="#888"/><text x="{left - 6}" y="{y + 4:.1f}" font-size="10" '
                     f'text-anchor="end">{_num(t)}</text>')
    for i in range(5):  # x: the binned value, at five evenly spaced ticks
        v, x = lo + (hi - lo) * i / 4, left + (W - left - 10) * i / 4
        parts.append(f'<line x1="{x:.1f}" y1="{base}" x2="{x:.1f}" y2="{base + 4}" '
                     f'stroke="#888"/><text x="{x:.1f}" y="{base + 15}" font-size="10" '
                     f'text-anchor="middle">{_num(round(v, 2))}</text>')
    parts.append(f'<text x="{left + (W - left) / 2}" y="{H - 5}" font-size="11" '
                 f'text-anchor="middle">{html.escape(xlabel)}</text>'
                 f'<text x="0" y="12" font-size="11">{html.escape(ylabel)}</text></svg>')
    return f"<h3>{html.escape(title)}</h3>" + "".join(parts)


def _graph_matrix(repo: str, files: dict[str, str]) -> str:
    """The dependency graph of one repository as a matrix in CodeGemma's order: row i imports
    column j when cell (i, j) is filled. Dependencies first puts every mark left of the
    diagonal; a mark right of it is an import the order could not honour (a cycle, red)."""
    from fimpack.packing.graph import order_repository
    from fimpack.languages import detect_language
    from fimpack.records import SourceFile

    sources = [SourceFile(repo, p, detect_language(p) or "text", c)
               for p, c in sorted(files.items())]
    result = order_repository(sources)
    linked = {p for e in result.edges for p in e}
    shown = [p for p in result.order if p in linked][:MATRIX_FILES]
    idx = {p: i for i, p in enumerate(shown)}
    cell = 12
    # the labels' column fits the longest path (6 px a character at 10 px type)
    label = 30 + 6 * max((len(f"{len(shown)}. {p}") for p in shown), default=10)
    size = label + cell * len(shown) + 10
    removed = set(map(tuple, result.removed_edges))
    parts = [f'<svg width="{size}" height="{size - label + 40}" role="img">']
    for p, i in idx.items():
        y = 30 + i * cell
        parts.append(f'<text x="{label - 6}" y="{y + 10}" font-size="10" text-anchor="end">'
                     f'{i + 1}. {html.escape(p)}</text>'
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
    return f"<p>{html.escape(caption)}</p>" + "".join(parts)


def _graph_matrices(repo_files: dict[str, dict[str, str]]) -> str:
    """Up to MATRIX_REPOS repositories' matrices, the one with the most files first and open;
    each opens from its header (a selector that needs no script)."""
    chosen = sorted(repo_files, key=lambda r: (-min(len(repo_files[r]), 60), r))[:MATRIX_REPOS]
    if not chosen:
        return ""
    parts = ["<h3>Dependency graph of a repository (matrix, CodeGemma order; choose one)</h3>"]
    for i, repo in enumerate(chosen):
        parts.append(f"<details{' open' if i == 0 else ''}><summary>{html.escape(repo)} "
                     f"({len(repo_files[repo]):,} files)</summary>"
                     f"{_graph_matrix(repo, repo_files[repo])}</details>")
    if len(repo_files) > len(chosen):
        parts.append(f"<p>{len(repo_files) - len(chosen):,} more repositories are not drawn; "
                     "<code>fimpack graph</code> draws any repository.</p>")
    return "".join(parts)


def warnings(manifest: dict) -> list[str]:
    """What a reader should know before the numbers."""
    c, out = manifest["counts"], []
    by_split = c.get("examples_by_split", {})
    val_fraction = recorded_setting(manifest["config"], "val_fraction", 0)
    if val_fraction > 0 and not by_split.get("validation"):
        out.append("The validation split is empty: evaluation falls back to training data.")
    elif missed := validation_warning(c, val_fraction):
        out.append(missed)
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


def _records(out: str, name: str) -> list[dict]:
    """The rows of OUT/NAME/*.parquet (files, drops), or none when the build has none."""
    paths = sorted(glob.glob(os.path.join(out, name, "*.parquet")))
    return [r for path in paths for r in pq.read_table(path).to_pylist()]


class _Repo:
    """One repository's row of the per-repository table."""
    __slots__ = ("examples", "tokens", "splits", "files", "parts", "licenses", "drops")

    def __init__(self):
        self.examples = self.tokens = 0
        self.splits, self.files, self.licenses, self.drops = set(), set(), Counter(), Counter()
        self.parts = 0


def _collect(out: str, seq_len: int):
    """(sequence fills, documents per sequence, per-split and per-repository numbers, up to
    50 repositories' files, the first example row) read from the examples Parquet."""
    fills, docs_per_seq, first = [], [], None
    repos: dict[str, _Repo] = {}
    splits: dict[str, dict] = {}
    repo_files: dict[str, dict[str, str]] = {}
    for path in sorted(glob.glob(os.path.join(out, "examples", "*.parquet"))):
        per_seq, per_seq_docs = Counter(), Counter()
        for row in pq.read_table(path).to_pylist():
            # the example shown: the first multi-file code example with FIM, else the first
            if first is None or (not wanted(first, "code", 2, True)
                                 and wanted(row, "code", 2, True)):
                first = row
            per_seq[row["sequence"]] += row["num_tokens"]
            per_seq_docs[row["sequence"]] += 1
            r = repos.setdefault(row["repo"], _Repo())
            r.examples += 1
            r.tokens += row["num_tokens"]
            r.splits.add(row["split"])
            r.files.update(f["path"] for f in row["files"])
            r.parts += len(row["files"])
            sp = splits.setdefault(row["split"], {"repos": set(), "examples": 0, "files": set(),
                                                  "tokens": 0})
            sp["repos"].add(row["repo"])
            sp["examples"] += 1
            sp["tokens"] += row["num_tokens"]
            sp["files"].update((row["repo"], f["path"]) for f in row["files"])
            if row["source"] == "code" and (row["repo"] in repo_files or len(repo_files) < 50):
                files = repo_files.setdefault(row["repo"], {})
                for f in as_json(row)["files"]:
                    files[f["path"]] = files.get(f["path"], "") + f["content"]
        fills += [t / seq_len for t in per_seq.values()]
        docs_per_seq += list(per_seq_docs.values())
    return fills, docs_per_seq, splits, repos, repo_files, first


def _table(head: list[str], rows: list[list], cls: str = "") -> str:
    cells = lambda r, tag: "".join(  # noqa: E731
        f"<{tag}{' class=n' if isinstance(v, (int, float)) else ''}>"
        f"{_num(v) if isinstance(v, (int, float)) else html.escape(str(v))}</{tag}>" for v in r)
    return (f"<table class='{cls}'><tr>{cells(head, 'th')}</tr>"
            + "".join(f"<tr>{cells(r, 'td')}</tr>" for r in rows) + "</table>")


def _split_table(splits: dict[str, dict]) -> str:
    total = sum(sp["tokens"] for sp in splits.values()) or 1
    rows = [[name, len(sp["repos"]), len(sp["files"]), sp["examples"], sp["tokens"],
             f"{sp['tokens'] / total:.1%}"] for name, sp in sorted(splits.items())]
    return ("<h3>Train and validation (held out as whole repositories)</h3>"
            + _table(["split", "repositories", "files", "examples", "tokens",
                      "share of tokens"], rows))


def _repo_table(repos: dict[str, _Repo], files: list[dict], drops: list[dict]) -> str:
    for f in files:
        repos.setdefault(f["repo"], _Repo()).licenses[f.get("license") or "none"] += 1
    for d in drops:
        repos.setdefault(d["repo"], _Repo()).drops[d["reason"]] += 1
    order = sorted(repos, key=lambda name: (-repos[name].tokens, name))
    rows = []
    for name in order[:REPO_ROWS]:
        r = repos[name]
        licence = ", ".join(f"{k} ({v:,})" if len(r.licenses) > 1 else k
                            for k, v in r.licenses.most_common(2)) or "—"
        dropped = sum(r.drops.values())
        why = ", ".join(f"{k} {v:,}" for k, v in r.drops.most_common(2))
        rows.append([name, "/".join(sorted(r.splits)) or "—", len(r.files), r.parts,
                     r.tokens, licence, dropped, why or "—"])
    more = (f"<p>{len(order) - REPO_ROWS:,} more repositories, with fewer tokens, are not "
            "listed.</p>") if len(order) > REPO_ROWS else ""
    return ("<h3>Repositories (by tokens; kept files counted once, parts are the pieces "
            "files were packed in)</h3>"
            + _table(["repository", "split", "files", "parts", "tokens", "licence (files)",
                      "dropped files", "top drop reasons"], rows, "repos") + more)


def _languages(files: list[dict]) -> Counter:
    """Kept files by language, each file once (a file split into parts is one file)."""
    return Counter(f["language"] for f in files)


def _summary_table(c: dict) -> str:
    """The build's headline counts, one row each."""
    utilisation = c.get("utilisation")
    summary = [("input files", c["input_files"]), ("kept files", c["kept_files"]),
               ("dropped files", c["dropped_files"]), ("examples", c["examples"]),
               ("sequences", c.get("sequences")),
               ("utilisation", None if utilisation is None else f"{utilisation:.2%}"),
               ("files split across sequences", c.get("files_split")),
               ("code fraction (target)",
                f"{c['code_fraction']:.3f} ({c.get('code_fraction_target')})"
                if c.get("code_fraction") is not None else "—"),
               ("tokens", c["tokens"])]
    return "<table>" + "".join(
        f"<tr><td>{html.escape(k)}</td><td class=n>"
        f"{html.escape(_num(v) if isinstance(v, (int, float)) else str(v))}</td></tr>"
        for k, v in summary) + "</table>"


def build_report(out: str) -> str:
    with open(os.path.join(out, "manifest.json")) as f:
        manifest = json.load(f)
    c = manifest["counts"]
    seq_len = recorded_setting(manifest["config"], "seq_len")
    fills, docs_per_seq, splits, repos, repo_files, first = _collect(out, seq_len)
    files, drops = _records(out, "files"), _records(out, "drops")
    table = _summary_table(c)
    notes = warnings(manifest)
    warn = ("<div class='warn'><h2>Warnings</h2><ul>"
            + "".join(f"<li>{html.escape(w)}</li>" for w in notes) + "</ul></div>") if notes \
        else "<p class='ok'>No warnings.</p>"
    body = [
        f"<h1>fimpack build report</h1><p>{html.escape(os.path.abspath(out))}</p>", warn,
        table,
        _split_table(splits),
        _repo_table(repos, files, drops),
        _histogram(f"Sequence utilisation (tokens / seq_len {seq_len:,})", fills, 20, 0.0,
                   1.0, "fill of the sequence (0 to 1)", "sequences"),
        _histogram("Documents (examples) per packed sequence", docs_per_seq, 20, 0,
                   max(docs_per_seq, default=1) + 1, "examples in the sequence",
                   "sequences"),
        _bars("Tokens by source (tokens)", sorted(c["tokens_by_source"].items())),
        _bars(f"Kept files by language (files, each once; {c.get('files_split') or 0:,} of "
              "them split into parts)", _languages(files).most_common()),
        _bars("Files by licence (SPDX; files past the licence policy)", sorted(
            c.get("files_by_license", {}).items(), key=lambda kv: -kv[1])),
        _bars("Natural-language documents by language (ISO 639-1, py3langid; documents "
              "past the filters)", sorted(c.get("documents_by_language", {}).items(),
                                          key=lambda kv: -kv[1])),
        _bars("Dropped files by reason (files)", sorted(c["dropped_by_reason"].items(),
                                                         key=lambda kv: -kv[1])),
        _bars("FIM mode of code files (file parts: a file split across examples counts once "
              "per part)", sorted(c.get("fim_files", {}).items())),
        _graph_matrices(repo_files),
    ]
    if first is not None:
        from fimpack.inspect import render_html
        body.append("<h3>An example as packed (the first with several code files and FIM, "
                    "if any)</h3>" + render_html(first))
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px}"
             "td.n{text-align:right;font-variant-numeric:tabular-nums}"
             "table.repos{font-size:13px}summary{cursor:pointer;margin:4px 0}"
             "details{overflow-x:auto}"
             "h3{margin-top:1.5em}.warn{background:#fff4e5;border:1px solid #f0a030;"
             "padding:4px 12px}.ok{color:#2a7}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>fimpack report</title>"
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>")


def main(out: str, path: str | None = None) -> str:
    path = path or os.path.join(out, "report.html")
    with open(path, "w", encoding="utf-8") as f:
        f.write(build_report(out))
    return path
