"""Builds that add to earlier builds: every build writes what its dedup kept to OUT/dedup/
(signatures, hashes; listed in the manifest), and ``--dedup-against PREV_OUT`` drops what an
earlier build kept as ``duplicate_of_earlier_build``; ``--dedup-mode drop-all``."""
import shutil

import pytest

from fimpack.config import build_settings, DedupConfig, Limits
from fimpack.dedup.earlier import REASON
from fimpack.pipelines import build
from fimpack.pipelines.ingest import discover

from conftest import copy_package


def dedup_build(root, out, **dedup) -> dict:
    cfg = build_settings(out=str(out), input=str(root), dedup_only=True,
                            limits=Limits(max_file_bytes=300_000), dedup=DedupConfig(**dedup))
    return build.run(cfg, discover(str(root)), [])


def kept(out) -> set:
    return {(r["repo"], r["path"])
            for r in build.outputs.read_records(str(out), "dedup/hashes").to_pylist()}


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("against")
    first, new, both = tmp / "first", tmp / "new", tmp / "both"
    for name in ("json", "email"):
        copy_package(name, first / name)
    copy_package("html", new / "html")
    copy_package("http", new / "http")
    shutil.copytree(first, both)
    shutil.copytree(new, both, dirs_exist_ok=True)
    fork = copy_package("json", both / "json_fork")  # a near copy of the first build's json
    (fork / "decoder.py").write_text((fork / "decoder.py").read_text() + "\n# patched\n")
    m1 = dedup_build(first, tmp / "out1")
    m_new = dedup_build(new, tmp / "out_new")
    m2 = dedup_build(both, tmp / "out2", against=(str(tmp / "out1"),))
    return tmp, m1, m_new, m2


def test_every_build_writes_what_it_kept(builds):
    tmp, m1, _, _ = builds
    for name in ("dedup/signatures", "dedup/hashes"):
        assert m1["records"][name] and all(e["rows"] for e in m1["records"][name])
    sigs = build.outputs.read_records(str(tmp / "out1"), "dedup/signatures").to_pylist()
    assert {r["repo"] for r in sigs} == {"json", "email"}
    assert all(len(r["signature"]) == 256 * 4 for r in sigs)
    assert len(kept(tmp / "out1")) == m1["counts"]["kept_files"]


def test_the_second_build_keeps_exactly_the_new_repositories(builds):
    tmp, m1, m_new, m2 = builds
    assert kept(tmp / "out2") == kept(tmp / "out_new")
    c1, cn, c2 = m1["counts"], m_new["counts"], m2["counts"]
    # the manifests add up: the second build's input is the first's, the new ones and the fork
    fork_files = sum(1 for _ in (tmp / "both" / "json_fork").rglob("*") if _.is_file())
    assert c2["input_files"] == c1["input_files"] + cn["input_files"] + fork_files
    assert c2["input_files"] == c2["kept_files"] + c2["dropped_files"]
    assert c2["kept_files"] == cn["kept_files"]
    # what the first build kept, and what its own dedup dropped, now go as earlier duplicates
    first_dedup_drops = sum(c1["dropped_by_reason"].get(r, 0)
                            for r in ("near_duplicate_repo", "exact_duplicate"))
    fork_code = c2["dropped_by_reason"][REASON] - c1["kept_files"] - first_dedup_drops
    assert 0 < fork_code <= fork_files
    drops = build.outputs.read_records(str(tmp / "out2"), "drops").to_pylist()
    details = {(d["repo"], d["path"]): d["detail"] for d in drops if d["reason"] == REASON}
    out1 = str(tmp / "out1")
    assert details[("json", "decoder.py")] == f"near duplicate of {out1}:json"
    assert details[("json_fork", "decoder.py")] == f"near duplicate of {out1}:json"
    assert all(d["reason"] != REASON for d in drops if d["repo"] in ("html", "http"))


def test_drop_all_keeps_no_copy(tmp_path):
    root = tmp_path / "in"
    copy_package("json", root / "json")
    copy_package("json", root / "json_copy")
    copy_package("email", root / "email")
    m = dedup_build(root, tmp_path / "out", dedup_mode="drop-all")
    repos = {r for r, _ in kept(tmp_path / "out")}
    assert repos == {"email"}
    d = m["dedup"]["repo-near"]
    assert (d["clusters"], d["members"], d["dropped"]) == (1, 2, 2)
    assert d["keepers"] == {"drop-all": 1}


def test_dedup_flags_reach_the_config():
    from fimpack.cli import _build_parser
    from fimpack.config import build_config

    parse = _build_parser().parse_args
    base = ["build", "--input", "x", "--out", "y"]
    cfg = build_config(parse(base), False).dedup
    assert (cfg.against, cfg.dedup_mode, cfg.keep_policy) == ((), "keep-one", "smallest")
    cfg = build_config(parse(base + ["--dedup-against", "a", "b", "--dedup-mode", "drop-all",
                                     "--keep-policy", "stars"]), False).dedup
    assert (cfg.against, cfg.dedup_mode, cfg.keep_policy) == (("a", "b"), "drop-all", "stars")


def test_an_earlier_build_that_is_not_one_is_refused_before_the_pipeline(tmp_path):
    from fimpack.errors import UserError
    from fimpack.preflight import check_earlier_build

    with pytest.raises(UserError, match="no manifest.json"):
        check_earlier_build(str(tmp_path / "missing"), str(tmp_path / "out"))
    old = tmp_path / "old"
    old.mkdir()
    (old / "manifest.json").write_text('{"records": {"drops": []}}')
    with pytest.raises(UserError, match="rebuild it once"):
        check_earlier_build(str(old), str(tmp_path / "out"))
    with pytest.raises(UserError, match="--out itself"):
        check_earlier_build(str(old), str(old))
