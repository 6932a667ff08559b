"""Repository rows: a JSONL / Parquet row holding a whole repository (name, files with path
and content, optional metadata) is read as one repository, with a folder's bounds and drops."""
import json

import pyarrow as pa
import pyarrow.parquet as pq

from fimpack.config import build_settings, Limits
from fimpack.pipelines import build
from fimpack.pipelines.ingest import RepoSource, discover, read_source
from fimpack.records import Drop, SourceFile

from conftest import STDLIB

MIT = ("MIT License\n\nCopyright (c) 2024 Example\n\nPermission is hereby granted, free of "
       "charge, to any person obtaining a copy of this software and associated documentation "
       "files (the \"Software\"), to deal in the Software without restriction, including "
       "without limitation the rights to use, copy, modify, merge, publish, distribute, "
       "sublicense, and/or sell copies of the Software, and to permit persons to whom the "
       "Software is furnished to do so, subject to the following conditions:\n\nThe above "
       "copyright notice and this permission notice shall be included in all copies or "
       "substantial portions of the Software.\n\nTHE SOFTWARE IS PROVIDED \"AS IS\", WITHOUT "
       "WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES "
       "OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT "
       "SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER "
       "LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF "
       "OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.\n")

FILES = {  # one repository's files: code, a licence, and each kind of drop
    "pkg/__init__.py": "from pkg.colors import rgb_to_hsv\n",
    "pkg/colors.py": (STDLIB / "colorsys.py").read_text(),
    "pkg/empty.py": "   \n",
    "big.py": "x = 1\n" * 400,
    "logo.png": "not really a png",
    "LICENSE": MIT,
    "a.py": "print('a')\n",
    "b.py": "print('b')\n",
    "z.py": "print('z')\n",  # ninth in path order: over the cap
}
LIMITS = Limits(max_file_bytes=2_000, max_files_per_repo=8)


def outcomes(items) -> dict:
    return {(i.path if isinstance(i, (SourceFile, Drop)) else None):
            (i.reason if isinstance(i, Drop) else i.language) for i in items}


def repo_row(name: str, files: dict, **meta) -> dict:
    return {"repo_name": name, "files": [{"path": p, "content": c} for p, c in files.items()],
            **meta}


def test_a_repository_row_is_read_like_the_same_folder(tmp_path):
    folder = tmp_path / "example"
    for path, text in FILES.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_text(text)
    from_folder = outcomes(read_source(RepoSource("example", "dir", str(folder)), LIMITS))
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps(repo_row("example", FILES, stars=7)) + "\n")
    items = list(read_source(RepoSource("rows.jsonl", "rows", str(rows)), LIMITS))
    assert outcomes(items) == from_folder  # same bounds, same drops, same languages
    assert from_folder["big.py"] == "too_large" and from_folder["pkg/empty.py"] == "empty"
    assert from_folder["logo.png"] == "unsupported_language"
    assert from_folder["z.py"] == "over_repo_file_cap"
    kept = [i for i in items if isinstance(i, SourceFile)]
    assert {i.repo for i in items} == {"example"}
    assert all(f.meta == (("stars", 7),) for f in kept)
    assert all(f.origin == f"{rows}#0" for f in kept)


def test_repository_rows_in_parquet_with_bad_entries(tmp_path):
    table = pa.Table.from_pylist([
        repo_row("one", {"m.py": "x = 1\n", "../escape.py": "y = 2\n"}, stars=3, forks=1,
                 license="Apache-2.0", created_at="2020-01-02T00:00:00Z"),
        {"repo_name": "two", "files": [{"path": "n.py", "content": "z = 3\n"},
                                       {"path": "n.py", "content": "z = 4\n"},
                                       {"path": None, "content": "w"}]},
        {"repo_name": None, "files": []},
    ])
    path = tmp_path / "repos.parquet"
    pq.write_table(table, path)
    items = list(read_source(RepoSource("repos.parquet", "rows", str(path)), Limits()))
    got = {(i.repo, i.path): (i.reason if isinstance(i, Drop) else i.meta) for i in items}
    assert got[("one", "m.py")] == (("created_at", "2020-01-02T00:00:00Z"), ("forks", 1),
                                    ("license", "Apache-2.0"), ("stars", 3))
    assert got[("one", "../escape.py")] == "unsafe_path"
    assert got[("two", "n.py")] == () and ("two", "n.py") in got
    reasons = sorted(i.reason for i in items if isinstance(i, Drop))
    assert reasons == ["duplicate_path", "malformed_row", "malformed_row", "unsafe_path"]


def test_a_build_over_repository_rows_accounts_for_every_file(tmp_path):
    root = tmp_path / "in"
    root.mkdir()
    files = dict(FILES, LICENSE=MIT)
    rows = [repo_row("example", files, stars=5, license="Apache-2.0"),
            repo_row("other", {"tool.py": "import sys\nprint(sys.argv)\n", "LICENSE": MIT})]
    (root / "repos.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = build_settings(out=str(tmp_path / "out"), input=str(root), vocab_size=600,
                            seq_len=2048, val_fraction=0.0, code_fraction=None,
                            limits=LIMITS, policy="any")
    manifest = build.run(cfg, discover(str(root)), [])
    c = manifest["counts"]
    assert c["input_files"] == c["kept_files"] + c["dropped_files"] == len(files) + 2
    kept = {(r["repo"], r["path"]): r for r in
            build.outputs.read_records(cfg.out, "files").to_pylist()}
    # the row's declared licence is the repository's (as a manifest), over its LICENSE file
    assert kept[("example", "pkg/__init__.py")]["license"] == "Apache-2.0"
    assert kept[("example", "pkg/__init__.py")]["license_source"] == "manifest"
    assert kept[("other", "tool.py")]["license"] == "MIT"
    assert c["license_disagreements"] == {"Apache-2.0 vs MIT": 1}
