"""The build's manifest and its audit: what was written, counted two ways.

The counts come from combiners over the data (``.build/stats.json``); the audit checks them
against (a) the files the workers wrote and (b) the counters Beam's metrics channel carried
along the pipeline, independent of the data. A gap raises ``DataLost`` before the manifest is
written, so an incomplete build never looks finished. A runner that reports no metrics gets
the data-side checks only, and fails with ``Unaudited`` unless the user allows it.
"""
from __future__ import annotations

import hashlib
import json
import platform
import re
import time
from dataclasses import asdict
from importlib import metadata

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter

import fimpack
from fimpack.packing.shards import token_dtype
from fimpack.packing.tokenizer import Tokenizer
from fimpack.counting import SumCounters
from fimpack.pipelines import outputs
from fimpack.records import AUDIT, counters_of

MANIFEST_VERSION = 3  # 3: drops and clusters as sharded folders; no empty shards


def versions() -> dict:
    names = ["apache-beam", "pyarrow", "sentencepiece", "datasketch", "networkx",
             "tree-sitter", "xxhash", "numpy"]
    out = {"fimpack": fimpack.__version__, "python": platform.python_version()}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def utilisation(shards: list[dict]) -> float | None:
    """Non-padding tokens / all tokens of the packed sequences."""
    bins = [e for e in shards if e["path"].endswith(".bin")]
    slots = sum(e["sequences"] * e["seq_len"] for e in bins)
    return round(sum(e["tokens"] for e in bins) / slots, 6) if slots else None


class Report(beam.PTransform):
    """Counter dicts -> ``OUT/.build/stats.json``: the summed counters, and the entries of the
    shards (SHARDS: a one-element list, or None) and record files (RECORD_FILES) written;
    small aggregates, read back by the driver to make the manifest."""

    def __init__(self, out: str, record_files: tuple, shards=None):
        super().__init__()
        self.out, self.record_files, self.shards = out, record_files, shards

    def expand(self, counts):
        sums = (counts | "AllCounts" >> beam.Flatten()
                | "SumCounts" >> beam.CombineGlobally(SumCounters()))
        records = beam.pvalue.AsSingleton(
            self.record_files | "AllRecordFiles" >> beam.Flatten()
            | "RecordFileList" >> beam.combiners.ToList())
        shards = self.shards
        if shards is None:
            shards = sums.pipeline | "NoShards" >> beam.Create([[]])
        path = outputs.join(self.out, ".build", "stats.json")
        return sums | "Write" >> beam.Map(
            lambda c, shards, records: outputs.write_json(path, {
                "counts": c, "shards": sorted(shards, key=lambda e: e["path"]),
                "records": sorted(records, key=lambda e: e["path"])}),
            beam.pvalue.AsSingleton(shards), records)


def make_manifest(cfg, report: dict, tok: Tokenizer | None, seconds: float) -> dict:
    c = report["counts"]
    dropped = counters_of(c, "drop")
    kept, n_dropped = c.get("kept_files", 0), c.get("dropped_files", 0)
    tokens = {"code": c.get("tokens_code", 0), "nl": c.get("tokens_nl", 0)}
    total_tokens = sum(tokens.values())
    config = json.loads(json.dumps(asdict(cfg)))  # as JSON has it: tuples are lists
    return {
        "format": "fimpack-build", "manifest_version": MANIFEST_VERSION,
        "config": config, "seed": cfg.seed, "versions": versions(),
        "counts": {
            "input_files": kept + n_dropped, "kept_files": kept, "dropped_files": n_dropped,
            "dropped_by_reason": dict(sorted(dropped.items())),
            "kept_by_source": {"code": c.get("kept_code", 0), "nl": c.get("kept_nl", 0)},
            "kept_by_language": counters_of(c, "language"),
            "files_by_license": counters_of(c, "license"),
            "documents_by_language": counters_of(c, "nl_language"),
            "fim_files": counters_of(c, "fim"),
            "examples": c.get("examples", 0),
            "examples_by_split": {s: c.get(f"examples_{s}", 0) for s in ("train", "validation")},
            "examples_by_source": {s: c.get(f"examples_{s}", 0) for s in ("code", "nl")},
            "tokens": total_tokens, "tokens_by_source": tokens,
            "tokens_by_split": {s: c.get(f"tokens_{s}", 0) for s in ("train", "validation")},
            "code_fraction": round(tokens["code"] / total_tokens, 6) if total_tokens else None,
            "code_fraction_target": cfg.code_fraction,
            "files_split": c.get("files_split", 0), "file_parts": c.get("file_parts", 0),
            "sequences": sum(e["sequences"] for e in report["shards"]
                             if e["path"].endswith(".bin")),
            "utilisation": utilisation(report["shards"]),
            "pii_redactions": counters_of(c, "pii"),
            "pii_files": c.get("pii_files", 0),
        },
        "dedup": {
            level: {"clusters": counters_of(c, "clusters").get(level, 0),
                    "members": counters_of(c, "cluster_members").get(level, 0),
                    "dropped": counters_of(c, "cluster_dropped").get(level, 0)}
            for level in ("repo-near", "file-exact", "file-near")},
        "tokenizer": None if tok is None else {
            "path": "tokenizer.model", "vocab_size": tok.vocab_size, "bos_id": tok.bos_id,
            "eos_id": tok.eos_id, "pad_id": tok.pad_id, "control_ids": tok.control_ids,
            "trained": cfg.tokenizer is None,
            "sha256": hashlib.sha256(tok.proto).hexdigest()},
        "tokens_dtype": None if tok is None else token_dtype(tok.vocab_size).name,
        "shards": report["shards"],
        "records": {name: [e for e in report.get("records", [])
                           if e["path"].rsplit("/", 1)[0] == name]
                    for name in ("drops", "dedup/clusters", "files")},
        "timing": {"created_unix": int(time.time()), "seconds": round(seconds, 1)},
    }


class DataLost(RuntimeError):
    """The runner delivered fewer records to a stage than an earlier stage sent."""


class Unaudited(RuntimeError):
    """The runner reported no metrics, so the build's counts could not be checked against
    an independent channel."""


def audit_counters(result) -> dict:
    """The audit counters' committed totals; empty when the runner reports no metrics."""
    try:
        found = result.metrics().query(MetricsFilter().with_namespace(AUDIT))["counters"]
    except Exception:  # a runner without metrics support: nothing to audit against
        return {}
    totals: dict[str, int] = {}
    for c in found:  # one result per (step, counter): a counter may be charged to several steps
        value = c.committed if c.committed is not None else c.attempted
        totals[c.key.metric.name] = totals.get(c.key.metric.name, 0) + (value or 0)
    return totals


def data_ledger(manifest: dict) -> dict:
    """Counts read off the files the workers wrote (the shards' and record files' entries),
    a second path to the combiners' counts that needs no metrics."""
    records = manifest["records"]
    return {"examples_in_shards": sum(e["examples"] for e in manifest["shards"]
                                      if e["path"].endswith(".parquet")),
            "drop_rows": sum(e["rows"] for e in records["drops"]),
            "cluster_rows": sum(e["rows"] for e in records["dedup/clusters"]),
            "file_rows": sum(e["rows"] for e in records.get("files", []))}


def audit(counters: dict, manifest: dict, allow_unaudited: bool = False) -> dict:
    """Check the data's own counts against the files written and against the metrics
    channel's counters; raise DataLost on a gap, before the manifest is written, so an
    incomplete build never looks finished. The manifest's ``audit`` section."""
    c = manifest["counts"]
    ledger = data_ledger(manifest)
    written = ledger["examples_in_shards"]
    members = sum(d["members"] for d in manifest["dedup"].values())
    data_checks = [("dropped_files", ledger["drop_rows"], c["dropped_files"],
                    "drops counted but not written"),
                   ("cluster_members", ledger["cluster_rows"], members,
                    "cluster members counted but not written")]
    checks = [("input_files", c["input_files"], "files read but neither kept nor dropped")]
    if not manifest["config"]["dedup_only"]:
        data_checks += [("examples", written, c["examples"],
                          "examples counted but not written to a shard"),
                         ("kept_files", ledger["file_rows"], c["kept_files"],
                          "files kept but without a provenance row")]
        checks += [("examples_kept", c["examples"], "examples kept but not counted"),
                   ("examples_kept", written, "examples kept but not written to a shard"),
                   ("examples_written", written, "examples written but not listed"),
                   ("examples_made", counters.get("examples_mixed"),
                    "examples packed but never reached the mixture")]
    gaps = [f"{name}: {got:,} in files vs {want:,} counted ({what})"
            for name, got, want, what in data_checks if got != want]
    gaps += [f"{name}: {counters[name]:,} vs {got:,} ({what})" for name, got, what in checks
             if name in counters and got is not None and counters[name] != got]
    if gaps:
        raise DataLost("the runner lost records; the build is incomplete and no manifest was "
                       "written: " + "; ".join(gaps) + ". Ledger: "
                       + json.dumps(dict(sorted(counters.items())))
                       + "; data: " + json.dumps({k: c[k] for k in (
                           "input_files", "kept_files", "dropped_files", "examples")}))
    if not counters and not allow_unaudited:
        raise Unaudited("the runner reported no metrics, so the build's counts were checked "
                        "against the files written only, not against an independent channel; "
                        "no manifest was written. Rerun with --allow-unaudited to accept that.")
    return {"checked": bool(counters), "data_checked": True, **ledger,
            **dict(sorted(counters.items()))}


EXECUTION_MSECS = "metric:ptransform_execution_time:total_msecs:v1"


def top_stage(step: str) -> str:
    """The top-level label of a transform: FnApiRunner names steps by label path
    (``Dedup/RepoNear/...``), Prism by transform id
    (``ref_AppliedPTransform_Dedup-RepoNear-..._41``,
    ``/`` and spaces turned into ``-``; ``e`` before lifted combiner parts)."""
    found = re.match(r"e?ref_AppliedPTransform_(.*?)(_\d+)?$", step)
    if found:
        return found.group(1).split("-", 1)[0]
    return step.split("/", 1)[0]


def stage_seconds(result) -> dict:
    """Seconds spent in each top-level stage (``Ingest``, ``Dedup``, ``PackRepo``, ...), summed
    over workers: the runner's own per-transform execution time, which charges a fused
    stage's work to the transform that did it. Empty when the runner does not report it."""
    try:
        metrics = (result.monitoring_metrics() if hasattr(result, "monitoring_metrics")
                   else result.metrics()).query()
    except Exception:  # a runner without metrics support: timing is informational
        return {}
    msecs: dict[str, int] = {}
    for counter in metrics.get("counters", []):
        if counter.key.metric.name == EXECUTION_MSECS and counter.key.step:
            stage = top_stage(counter.key.step)
            msecs[stage] = msecs.get(stage, 0) + (counter.committed or 0)
    return {k: round(v / 1000, 1) for k, v in sorted(msecs.items(), key=lambda kv: -kv[1])
            if v >= 50}


def summary(manifest: dict) -> str:
    """The terminal summary of a build (``fimpack build`` prints it)."""
    c = manifest["counts"]
    rows = [("input files", c["input_files"]), ("kept files", c["kept_files"]),
            ("dropped files", c["dropped_files"])]
    rows += [(f"  dropped: {k}", v) for k, v in c["dropped_by_reason"].items()]
    rows += [(f"dup clusters ({level})", d["clusters"]) for level, d in manifest["dedup"].items()
             if d["members"]]
    rows += [("examples", c["examples"]), ("sequences", c["sequences"]),
             ("utilisation", c["utilisation"]), ("files split", c["files_split"]),
             ("code fraction", c["code_fraction"]),
             ("tokens (code)", c["tokens_by_source"]["code"]),
             ("tokens (natural language)", c["tokens_by_source"]["nl"]),
             ("seconds", manifest["timing"]["seconds"])]
    # CPU seconds by stage, summed over workers (the runner's per-transform execution time).
    rows += [(f"  stage: {k}", v) for k, v in manifest["timing"].get("stages", {}).items()]
    width = max(len(k) for k, _ in rows)
    lines = [f"{k:<{width}}  {v:>12,}" if isinstance(v, int) else f"{k:<{width}}  {str(v):>12}"
             for k, v in rows]
    target, got = c.get("code_fraction_target"), c["code_fraction"]
    if target is not None and got is not None and abs(got - target) > 0.01:
        lines.append(f"note: code fraction {got:.3f} misses the target {target} by more than 1% "
                     "(too little of one source to sample from)")
    return "\n".join(lines)
