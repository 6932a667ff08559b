from fimpack.packing.examples import code_example, group_files, repo_examples, repo_split
from fimpack.packing.fim import reconstruct
from fimpack.records import SourceFile

from conftest import STDLIB


def stdlib_files(package):
    return [SourceFile(package, p.name, "python", p.read_text())
            for p in sorted((STDLIB / package).glob("*.py"))]


def test_multi_file_layout_without_fim():
    files = [SourceFile("r", "a/x.py", "python", "import b\n"),
             SourceFile("r", "b.py", "python", "B = 1")]
    ex = code_example("r", 0, files, seed=0, fim_rate=0.0, split="train")
    assert ex.text == "a/x.py\nimport b\n<|file_separator|>b.py\nB = 1"
    assert [f.fim for f in ex.files] == ["none", "none"]


def test_every_file_reconstructs_from_real_repo():
    files = stdlib_files("json")
    examples = repo_examples("json", files, seed=1, fim_rate=0.9, max_chars=20_000,
                             val_fraction=0.0)
    got = {}
    for ex in examples:
        for i, entry in enumerate(ex.files):
            got[entry.path] = reconstruct(list(ex.pieces), i)
    assert got == {f.path: f.content for f in files}
    assert any(f.fim != "none" for ex in examples for f in ex.files)


def test_examples_are_deterministic_and_seeded():
    files = stdlib_files("json")
    a = repo_examples("json", files, seed=7, fim_rate=0.8, max_chars=10_000, val_fraction=0)
    b = repo_examples("json", files, seed=7, fim_rate=0.8, max_chars=10_000, val_fraction=0)
    c = repo_examples("json", files, seed=8, fim_rate=0.8, max_chars=10_000, val_fraction=0)
    assert [e.text for e in a] == [e.text for e in b]
    assert [e.text for e in a] != [e.text for e in c]


def test_group_files_respects_budget_and_order():
    files = stdlib_files("email")
    groups = group_files(files, 30_000)
    assert [f for g in groups for f in g] == files
    for g in groups:
        size = sum(len(f.path) + 1 + len(f.content) for f in g)
        assert size <= 30_000 or len(g) == 1


def test_split_is_by_repository():
    repos = [f"repo{i}" for i in range(2000)]
    val = [r for r in repos if repo_split(r, 0.1) == "validation"]
    assert 150 < len(val) < 250
    assert all(repo_split(r, 0.1) == "validation" for r in val)  # stable
    assert all(repo_split(r, 0.0) == "train" for r in repos)
