"""The build's audit decides on data alone: counts the producing stages carried as data and
counts of what the written files hold. Beam's metric counters only advise (a runner's metrics
store can lose updates: Prism 2.77 does, docs/prism-metrics-undercount.md)."""
from __future__ import annotations

import copy
import json
import logging
import os

import pytest

from fimpack.config import build_settings, Limits
from fimpack.pipelines import build
from fimpack.pipelines.ingest import discover

from conftest import copy_package, pydoc_topic
from test_e2e import no_stray_prism  # noqa: F401  (a fixture: stops a Prism a test left)


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("audit-corpus")
    copy_package("json", root / "json")
    copy_package("http", root / "http")
    (root / "http" / "empty.py").write_bytes(b"")  # a drop, so drops/ has rows
    with open(root / "docs.jsonl", "w") as f:
        for i, topic in enumerate(("with", "class", "if", "for")):
            f.write(json.dumps({"id": f"doc{i}", "text": pydoc_topic(topic)}) + "\n")
    return root


def small_build(corpus, out, beam_args=(), **overrides) -> dict:
    settings = dict(out=str(out), input=str(corpus), vocab_size=600, val_fraction=0.3,
                    limits=Limits(max_file_bytes=200_000), seq_len=1024, code_fraction=0.9)
    cfg = build_settings(**{**settings, **overrides})
    return build.run(cfg, discover(str(corpus)), list(beam_args))


@pytest.fixture(scope="module")
def built(small_corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("audit-out")
    return out, small_build(small_corpus, out)


def test_the_data_counts_agree_from_stage_to_stage(built):
    _, manifest = built
    a, c = manifest["audit"], manifest["counts"]
    assert a["flow_checked"] and a["data_checked"]
    assert a["files_read"] == c["input_files"] == c["kept_files"] + c["dropped_files"]
    assert a["examples_sampled_out"] > 0  # code_fraction 0.9 cuts documents
    assert a["examples_packed"] == c["examples"] + a["examples_sampled_out"]
    assert a["metrics_consistent"] is True and a["metrics_mismatches"] == {}
    assert a["examples_made"] == a["examples_packed"]  # the metrics agree here


def test_a_metrics_undercount_warns_and_the_build_still_passes(built, caplog):
    """Prism's failure (41 builds: one with ``examples_made`` 176 vs ``examples_mixed`` 186,
    files byte-identical to passing runs): an upstream counter LOWER than a downstream one is
    an undercount, never lost data. The audit passes, warns and records the counters."""
    _, manifest = built
    a = manifest["audit"]
    metrics = {k: a[k] for k in ("input_files", "examples_made", "examples_mixed",
                                 "examples_kept", "examples_written")}
    metrics["examples_made"] -= 10
    flow = {k: a[k] for k in ("files_read", "examples_packed", "examples_sampled_out")}
    with caplog.at_level(logging.WARNING, logger="fimpack.build"):
        section = build.audit(metrics, manifest, flow=flow)
    assert section["metrics_consistent"] is False
    made = section["metrics_mismatches"]["examples_made"]
    assert (made["metrics"], made["data"]) == (a["examples_made"] - 10, a["examples_packed"])
    assert "undercounted by 10" in made["note"] and "cannot be lost data" in made["note"]
    pair = section["metrics_mismatches"]["examples_made/examples_mixed"]
    assert "LOWER than downstream" in pair["note"]
    assert set(section["metrics_mismatches"]) == {"examples_made",
                                                  "examples_made/examples_mixed"}
    assert "metric counter examples_made" in caplog.text
    # metrics that say "lost" while the data says complete: a warning too, said that way
    metrics = {**{k: a[k] for k in ("input_files", "examples_made", "examples_mixed")},
               "examples_mixed": a["examples_mixed"] - 3}
    section = build.audit(metrics, manifest, flow=flow)
    note = section["metrics_mismatches"]["examples_mixed"]["note"]
    assert section["metrics_consistent"] is False and "undercounted by 3" in note
    assert "higher than downstream" in \
        section["metrics_mismatches"]["examples_made/examples_mixed"]["note"]


def test_data_gaps_fail_in_the_direction_they_go(built):
    _, manifest = built
    a = manifest["audit"]
    flow = {k: a[k] for k in ("files_read", "examples_packed", "examples_sampled_out")}
    metrics = {"input_files": a["input_files"]}
    with pytest.raises(build.DataLost, match=r"input_files: 2 of [\d,]+ files read at ingest "
                       r"but never kept or dropped"):
        build.audit(metrics, manifest, flow={**flow, "files_read": flow["files_read"] + 2})
    with pytest.raises(build.DataLost, match=r"examples_made: 1 more kept or sampled out by "
                       r"the mixture .* than examples packed"):
        build.audit(metrics, manifest,
                    flow={**flow, "examples_packed": flow["examples_packed"] - 1})
    short = copy.deepcopy(manifest)
    short["shards"][0]["examples"] -= 1
    with pytest.raises(build.DataLost, match="examples kept but never written to a shard"):
        build.audit(metrics, short, flow=flow)


def test_records_lost_between_stages_fail_the_build(small_corpus, tmp_path, monkeypatch):
    """A runner that loses a record between PackExamples and the mixture (as FnApiRunner's
    timed flush did, BENCHMARKS.md): the producing stage's count, carried as data, is higher
    than what arrived. The build raises DataLost and writes no manifest."""
    from fimpack.packing import mixture

    real = mixture._Mix.process
    state = {"seen": 0}

    def lossy(self, item, decision, counts):
        state["seen"] += 1
        if state["seen"] == 3:  # the third example never arrives, and nothing counts it
            return iter(())
        return real(self, item, decision, counts)

    monkeypatch.setattr(mixture._Mix, "process", lossy)
    out = tmp_path / "out"
    with pytest.raises(build.DataLost, match=r"examples_made: 1 of [\d,]+ examples packed "
                       "but never kept or sampled out"):
        small_build(small_corpus, out)  # one worker: in this process, so the patch applies
    assert not (out / "manifest.json").exists()


def prism_or_skip() -> str:
    from fimpack.pipelines.runners import EngineMissing, find_prism

    try:
        return find_prism()
    except EngineMissing as err:
        if os.environ.get("CI"):  # `make test` builds it (`make engines`): missing is a bug
            raise
        pytest.skip(str(err))


PRISM_ATTEMPTS = 4  # the time budget: each attempt is one small build on Prism (~10-20 s)


@pytest.mark.slow
def test_prism_metrics_undercount_does_not_fail_a_complete_build(small_corpus, built, tmp_path,
                                                                 monkeypatch, no_stray_prism):
    """Prism 2.77 loses a bundle's final metric update when two bundles of a stage finish
    before it has resolved the counter's short id (docs/prism-metrics-undercount.md). Here
    the repositories' PackRepo calls are timed to emit their examples together: Prism splits
    the slow PackRepo bundle (no progress in 100 ms) and runs the residual beside the
    primary, and both then report ``examples_made`` for the first time, in their final
    responses, at about the same moment. When the race hits, the build must still pass:
    byte-identical files to FnApiRunner's, the undercount in the manifest as an advisory
    mismatch. Skips when it did not hit within the budget."""
    import threading
    import time

    from fimpack.packing import stages

    prism_or_skip()
    real = stages._counted
    first: dict = {}
    lock = threading.Lock()

    def together(examples, seed):  # after a repository's work, before its examples go out
        with lock:
            t0 = first.setdefault("t", time.monotonic())
        time.sleep(max(0.0, t0 + 1.0 - time.monotonic()))
        yield from real(examples, seed)

    monkeypatch.setattr(stages, "_counted", together)  # LOOPBACK: the SDK harness is here
    _, ref = built
    for attempt in range(PRISM_ATTEMPTS):
        first.clear()
        out = tmp_path / f"prism-{attempt}"
        manifest = small_build(small_corpus, out, beam_args=["--runner", "prism"])
        a = manifest["audit"]
        assert a["data_checked"] and a["flow_checked"] and a["checked"]
        assert a["files_read"] == ref["audit"]["files_read"]
        assert a["examples_packed"] == ref["audit"]["examples_packed"]
        for entry, ref_entry in zip(manifest["shards"], ref["shards"]):
            assert entry["sha256"] == ref_entry["sha256"], entry["path"]  # the same data
        if not a["metrics_consistent"]:
            break
    else:
        pytest.skip(f"Prism's metrics undercount did not happen in {PRISM_ATTEMPTS} builds")
    mismatches = a["metrics_mismatches"]
    print(f"Prism undercount on build {attempt + 1}:", json.dumps(mismatches))
    assert mismatches, a
    for name, m in mismatches.items():
        if m["data"] is not None:
            assert m["metrics"] < m["data"] and "undercounted" in m["note"], (name, m)
    assert (out / "manifest.json").exists()
