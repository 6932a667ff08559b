"""The build's manifest and its audit: what was written, counted two ways.

The counts come from combiners over the data (``.build/stats.json``). The audit checks them,
by data alone, against (a) the files the workers wrote and (b) the counts the producing
stages carried as data (files read at ingest, examples packed), so a record lost between two
stages shows as a gap. A gap raises ``DataLost`` before the manifest is written, so an
incomplete build never looks finished. Beam's metric counters (the ``fimpack.audit``
namespace) are compared too, but only advise: a runner may commit metrics "where supported"
and lose updates (Prism 2.77 does: docs/prism-metrics-undercount.md), so a mismatch is a
warning and ``metrics_consistent: false`` in the manifest. A runner that reports no metrics
fails with ``Unaudited`` unless the user allows it.
"""
from __future__ import annotations

import hashlib
import json
import logging
import platform
import re
import time
from dataclasses import asdict
from importlib import metadata

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter

import fimpack
from fimpack.packing.shards import token_dtype
from fimpack.packing.split import TOLERANCE as VAL_TOLERANCE, achieved, validation_warning
from fimpack.packing.tokenizer import Tokenizer
from fimpack.config import recorded_setting
from fimpack.counting import SumCounters
from fimpack.pipelines import outputs
from fimpack.records import AUDIT, counters_of

log = logging.getLogger("fimpack.build")

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


class _ReportFn(beam.CombineFn):
    """("counts", counter dict) / ("shards" or "records", a file's manifest entry) -> the
    stats.json object: counters summed, entries listed by path."""

    def create_accumulator(self):
        return {}, [], []

    def add_input(self, acc, item):
        kind, value = item
        if kind == "counts":
            SumCounters().add_input(acc[0], value)
        else:
            acc[1 if kind == "shards" else 2].append(value)
        return acc

    def merge_accumulators(self, accs):
        out = self.create_accumulator()
        for counts, shards, records in accs:
            SumCounters().add_input(out[0], counts)
            out[1].extend(shards)
            out[2].extend(records)
        return out

    def extract_output(self, acc):
        counts, shards, records = acc
        return {"counts": dict(sorted(counts.items())),
                "shards": sorted(shards, key=lambda e: e["path"]),
                "records": sorted(records, key=lambda e: e["path"])}


class Report(beam.PTransform):
    """Counter dicts -> ``OUT/.build/stats.json``: the summed counters, and the entries of the
    shards (SHARDS: one element per shard file, or None) and record files (RECORD_FILES)
    written; small aggregates, read back by the driver to make the manifest. One combine for
    all three (three stages, where a combine each took nine)."""

    def __init__(self, out: str, record_files: tuple, shards=None):
        super().__init__()
        self.out, self.record_files, self.shards = out, record_files, shards

    def expand(self, counts):
        # tagged where they are made (each Map fuses into its producer's stage), one Flatten
        tagged = [c | f"TagCounts{i}" >> beam.Map(lambda c: ("counts", c))
                  for i, c in enumerate(counts)]
        tagged += [r | f"TagRecords{i}" >> beam.Map(lambda e: ("records", e))
                   for i, r in enumerate(self.record_files)]
        if self.shards is not None:
            tagged.append(self.shards | "TagShards" >> beam.Map(lambda e: ("shards", e)))
        path = outputs.join(self.out, ".build", "stats.json")
        return (tagged | "AllReported" >> beam.Flatten()
                | "Sum" >> beam.CombineGlobally(_ReportFn())
                | "Write" >> beam.Map(lambda report: outputs.write_json(path, report)))


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
            "transcoded_files": counters_of(c, "transcoded"),  # kept, by source encoding
            "files_by_license": counters_of(c, "license"),
            # where each code file's licence came from (header, license_file, manifest), and
            # repositories whose manifest and licence files disagree ("MANIFEST vs FILES")
            "files_by_license_source": counters_of(c, "license_source"),
            "license_disagreements": counters_of(c, "license_disagreement"),
            "documents_by_language": counters_of(c, "nl_language"),
            "fim_files": counters_of(c, "fim"),
            "examples": c.get("examples", 0),
            "examples_by_split": {s: c.get(f"examples_{s}", 0) for s in ("train", "validation")},
            "examples_by_source": {s: c.get(f"examples_{s}", 0) for s in ("code", "nl")},
            "tokens": total_tokens, "tokens_by_source": tokens,
            "tokens_by_split": {s: c.get(f"tokens_{s}", 0) for s in ("train", "validation")},
            # the held-out share of the tokens (packing/split.py chooses whole repositories)
            "validation_fraction": achieved({s: c.get(f"tokens_{s}", 0)
                                             for s in ("train", "validation")}),
            "validation_fraction_target": cfg.pack.val_fraction,
            "validation_tolerance": VAL_TOLERANCE,
            "code_fraction": round(tokens["code"] / total_tokens, 6) if total_tokens else None,
            "code_fraction_target": cfg.mix.code_fraction,
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
                    "dropped": counters_of(c, "cluster_dropped").get(level, 0),
                    # clusters by what chose their keeper (--keep-policy)
                    "keepers": {k.split(":", 1)[1]: v for k, v in counters_of(c, "keeper").items()
                                if k.startswith(level + ":") and v}}
            for level in ("repo-near", "file-exact", "file-near")},
        "tokenizer": None if tok is None else {
            "path": "tokenizer.model", "vocab_size": tok.vocab_size, "bos_id": tok.bos_id,
            "eos_id": tok.eos_id, "pad_id": tok.pad_id, "control_ids": tok.control_ids,
            "trained": cfg.tokenizer.model is None,
            "sha256": hashlib.sha256(tok.proto).hexdigest()},
        "tokens_dtype": None if tok is None else token_dtype(tok.vocab_size).name,
        "shards": report["shards"],
        "records": {name: [e for e in report.get("records", [])
                           if e["path"].rsplit("/", 1)[0] == name]
                    for name in ("drops", "dedup/clusters", "files", "dedup/signatures",
                                 "dedup/hashes")},
        "timing": {"created_unix": int(time.time()), "seconds": round(seconds, 1)},
    }


class DataLost(RuntimeError):
    """The data's own counts disagree: a stage received fewer (or more) records than the stage
    before it sent, or a written file holds fewer records than were counted into it."""


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


# Counts carried as data (``.build/stats.json``), each summed by the one counters combiner
# whose partial sums run fused into the stage that made the records: ``files_read`` where
# Ingest emits them, ``examples_packed`` where PackExamples emits them (one per ExampleStats),
# ``examples_sampled_out`` where the mixture drops them (kept ones are ``examples``).
FLOW_KEYS = ("files_read", "examples_packed", "examples_sampled_out")


def data_ledger(manifest: dict, flow: dict | None = None) -> dict:
    """Counts read off the files the workers wrote (the shards' and record files' entries),
    a second path to the combiners' counts that needs no metrics; and FLOW, the counts that
    producing stages carried as data (``FLOW_KEYS``), when given."""
    records = manifest["records"]
    ledger = {"examples_in_shards": sum(e["examples"] for e in manifest["shards"]
                                        if e["path"].endswith(".parquet")),
              "drop_rows": sum(e["rows"] for e in records["drops"]),
              "cluster_rows": sum(e["rows"] for e in records["dedup/clusters"]),
              "file_rows": sum(e["rows"] for e in records.get("files", []))}
    if flow is not None:
        ledger.update({k: flow.get(k, 0) for k in FLOW_KEYS})
    return ledger


def _data_gaps(c: dict, ledger: dict, members: int, dedup_only: bool, flow: bool) -> list[str]:
    """The data's counts that disagree, each said in the direction it goes."""
    checks = [  # (name, upstream: what was made or counted, downstream: what arrived, stages)
        ("dropped_files", c["dropped_files"], ledger["drop_rows"], "drops counted",
         "written to drops/"),
        ("cluster_members", members, ledger["cluster_rows"], "cluster members counted",
         "written to dedup/clusters/")]
    if not dedup_only:
        checks += [("examples", c["examples"], ledger["examples_in_shards"],
                    "examples kept", "written to a shard"),
                   ("kept_files", c["kept_files"], ledger["file_rows"], "files kept",
                    "written to files/ (provenance)")]
    if flow:
        checks.append(("input_files", ledger["files_read"], c["input_files"],
                       "files read at ingest", "kept or dropped"))
        if not dedup_only:
            checks.append(("examples_made", ledger["examples_packed"],
                           c["examples"] + ledger["examples_sampled_out"],
                           "examples packed", "kept or sampled out by the mixture"))
    gaps = []
    for name, up, down, made, arrived in checks:
        if up > down:
            gaps.append(f"{name}: {up - down:,} of {up:,} {made} but never {arrived} "
                        f"({down:,})")
        elif up < down:
            gaps.append(f"{name}: {down - up:,} more {arrived} ({down:,}) than {made} "
                        f"({up:,}): records duplicated, or their counts lost")
    return gaps


def _metric_mismatches(counters: dict, c: dict, ledger: dict, dedup_only: bool) -> dict:
    """The metric counters that disagree with the data's counts (already checked to agree
    with each other): {counter: {"metrics", "data", "note"}}. Advisory only: Beam commits
    metrics "where supported", and a runner's metrics store can lose updates (Prism 2.77:
    docs/prism-metrics-undercount.md)."""
    pairs = [("input_files", c["input_files"])]
    if not dedup_only:
        pairs += [("examples_kept", c["examples"]),
                  ("examples_written", ledger["examples_in_shards"])]
        if "examples_packed" in ledger:
            pairs += [("examples_made", ledger["examples_packed"]),
                      ("examples_mixed", c["examples"] + ledger["examples_sampled_out"])]
    out = {}
    for name, data in pairs:
        got = counters.get(name)
        if got is None or got == data:
            continue
        if got < data:
            note = (f"the metrics channel undercounted by {data - got:,}: the data holds all "
                    f"{data:,}, so a lower count here cannot be lost data")
        else:
            note = (f"the metrics channel counted {got - data:,} more than the data holds "
                    "(retried bundles counted twice?); the data's counts agree from stage "
                    "to stage")
        out[name] = {"metrics": got, "data": data, "note": note}
    # Upstream and downstream counters of the same records, said the right way round.
    made, mixed = counters.get("examples_made"), counters.get("examples_mixed")
    if not dedup_only and made is not None and mixed is not None and made != mixed:
        out["examples_made/examples_mixed"] = {"metrics": [made, mixed], "data": None, "note": (
            f"upstream examples_made ({made:,}) is LOWER than downstream examples_mixed "
            f"({mixed:,}): the metrics undercounted, which cannot be lost data"
            if made < mixed else
            f"upstream examples_made ({made:,}) is higher than downstream examples_mixed "
            f"({mixed:,}), but the data's own counts show every example packed reached the "
            "mixture")}
    return out


def audit(counters: dict, manifest: dict, allow_unaudited: bool = False,
          flow: dict | None = None) -> dict:
    """Check the build's data: the combiners' counts against the files written, and (FLOW:
    the counts the producing stages carried as data, ``FLOW_KEYS``) each stage's records
    against the next's. A gap in the data raises DataLost before the manifest is written, so
    an incomplete build never looks finished. Beam's metric COUNTERS are compared too, but
    only advise: a mismatch is a warning and ``metrics_consistent: false``, with the counters
    concerned. The manifest's ``audit`` section."""
    c = manifest["counts"]
    dedup_only = manifest["config"]["dedup_only"]
    ledger = data_ledger(manifest, flow)
    members = sum(d["members"] for d in manifest["dedup"].values())
    gaps = _data_gaps(c, ledger, members, dedup_only, flow is not None)
    if gaps:
        raise DataLost("the runner lost records; the build is incomplete and no manifest was "
                       "written: " + "; ".join(gaps) + ". Data: " + json.dumps(
                           {**{k: c[k] for k in ("input_files", "kept_files", "dropped_files",
                                                 "examples")}, **ledger})
                       + "; metrics (advisory): " + json.dumps(dict(sorted(counters.items()))))
    if not counters and not allow_unaudited:
        raise Unaudited("the runner reported no metrics, so the build's counts were checked "
                        "against the files written only, not against an independent channel; "
                        "no manifest was written. Rerun with --allow-unaudited to accept that.")
    mismatches = _metric_mismatches(counters, c, ledger, dedup_only) if counters else {}
    for name, m in mismatches.items():
        log.warning("audit: metric counter %s is %s, the data says %s: %s (the build's data "
                    "is complete; metrics are advisory)", name, m["metrics"], m["data"],
                    m["note"])
    return {"checked": bool(counters), "data_checked": True,
            "flow_checked": flow is not None, **ledger, **dict(sorted(counters.items())),
            "metrics_consistent": (not mismatches) if counters else None,
            "metrics_mismatches": mismatches}


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
    if manifest.get("dry_run"):  # ``--dry_run``: what would run (runners.dry_run_report)
        return json.dumps(manifest, indent=2)
    c = manifest["counts"]
    rows = [("input files", c["input_files"]), ("kept files", c["kept_files"]),
            ("dropped files", c["dropped_files"])]
    rows += [(f"  dropped: {k}", v) for k, v in c["dropped_by_reason"].items()]
    rows += [(f"transcoded from {k}", v) for k, v in c.get("transcoded_files", {}).items()]
    rows += [(f"redacted: {k}", v) for k, v in c.get("pii_redactions", {}).items()]
    rows += [(f"dup clusters ({level})", d["clusters"]) for level, d in manifest["dedup"].items()
             if d["members"]]
    rows += [("examples", c["examples"]), ("sequences", c["sequences"]),
             ("utilisation", c["utilisation"]), ("files split", c["files_split"]),
             ("code fraction", c["code_fraction"]),
             ("validation fraction", c.get("validation_fraction")),
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
    missed = validation_warning(c, recorded_setting(manifest["config"], "val_fraction", 0))
    if missed:
        lines.append("warning: " + missed)
    return "\n".join(lines)
