"""The dedup and filter stages of a build. Dedup, in the order that keeps repository
structure:

    repository-level near-dedup  (forks and version copies go as a whole)
    -> file-level exact dedup    (vendored copies across the corpus)
    -> file-level near-dedup     (optional)

Defaults: repository-level near-dedup and file-level exact dedup on, file-level near-dedup
off. Removing a near-duplicate *file* from a repository leaves a hole in that repository's
import graph, which multi-file packing then cannot fill; DeepSeek-Coder dedups repositories
as a whole for that reason. Repository level runs first so that exact file dedup does not
strip a fork down to its changed files before the fork is recognised as one.

Then ``Filters``: quality rules, decontamination, PII redaction, each drop counted by reason.
``Licenses`` runs before all of them (a file outside the licence policy must not be the
copy that exact dedup keeps).
"""
from __future__ import annotations

from dataclasses import replace
from typing import Iterator

import apache_beam as beam

from fimpack.config import DedupConfig, FilterConfig, LicenseConfig, NearDedupConfig
from fimpack.dedup.decontaminate import HUMANEVAL, Decontaminate
from fimpack.dedup.earlier import AgainstEarlier
from fimpack.dedup.exact import ExactDedup
from fimpack.dedup.near import FileSignatures, KeepPolicy, LSHClusters, RepoSignatures
from fimpack.dedup.filters import FileFilter, Filter, Keep
from fimpack.dedup.pii import RedactPII
from fimpack.dedup.quality import QualityFilter
from fimpack.dedup.licenses import (ROW_LICENSE, SOURCE_HEADER, allowed, file_license_source,
                                    is_manifest, load_patterns, load_policy, opted_out,
                                    repo_license_info)
from fimpack.dedup.nl import DocumentFilter
from fimpack.counting import cluster_counter
from fimpack.records import (CODE, LICENSE_TEXT, ClusterMember, Drop, SourceFile, StageOut,
                             counter_key)

SEP = "\x1f"  # between repo and path in a file key: never in a path


def apply_verdicts(item, level: str):
    """(key, {"files": [...], "verdict": [(cluster, kept)]}) -> files or Drops."""
    _, grouped = item
    verdict = list(grouped["verdict"])
    for f in grouped["files"]:
        if verdict and not verdict[0][1] and (level == "file" or f.source == CODE):
            reason = "near_duplicate_repo" if level == "repo" else "near_duplicate"
            yield beam.pvalue.TaggedOutput("drops", Drop(f.repo, f.path, reason,
                                                         verdict[0][0].replace(SEP, "/")))
        else:
            yield f


def member_row(level: str, key: str, cluster: str, kept: bool,
               why: str = "smallest") -> ClusterMember:
    repo, _, path = key.partition(SEP)
    return ClusterMember(level, "near", repo, path if level == "file" else None,
                         f"{level}-near:{cluster.replace(SEP, '/')}", kept, why)


class _NearLevel(beam.PTransform):
    """Near-dedup at one level: signatures, clusters, then the verdicts joined back."""

    def __init__(self, level: str, config: NearDedupConfig, keep_policy: str = "smallest",
                 sigs=None):
        super().__init__()
        self.level, self.config, self.keep_policy = level, config, keep_policy
        self.sigs = sigs  # repository level: signatures computed once by Dedup

    def expand(self, files):
        level = self.level
        if level == "repo":
            keyed = files | "KeyByRepo" >> beam.Map(lambda f: (f.repo, f))
            sigs = self.sigs
            if sigs is None:
                sigs = (files
                        | "CodeOnly" >> beam.Filter(lambda f: f.source == CODE)
                        | "RepoText" >> beam.Map(lambda f: (f.repo, f.content))
                        | "RepoSignatures" >> RepoSignatures(self.config))
        else:
            keyed = files | "KeyByFile" >> beam.Map(lambda f: (f.repo + SEP + f.path, f))
            sigs = (keyed
                    | "FileText" >> beam.MapTuple(lambda k, f: (k, f.content))
                    | "FileSignatures" >> FileSignatures(self.config))
        members = ((sigs | "Clusters" >> LSHClusters(self.config), keyed)
                   | "Keeper" >> KeepPolicy(self.keep_policy))
        rows = members | "Rows" >> beam.MapTuple(
            lambda key, cluster, kept, why: member_row(level, key, cluster, kept, why))
        verdicts = members | "Verdicts" >> beam.MapTuple(
            lambda key, cluster, kept, why: (key, (cluster, kept)))
        out = ({"files": keyed, "verdict": verdicts}
               | "Join" >> beam.CoGroupByKey()
               | "Apply" >> beam.FlatMap(apply_verdicts, level).with_outputs("drops",
                                                                             main="files"))
        return out.files, out.drops, rows


def _without(pcoll, keys, label: str):
    """(key, value) elements of PCOLL whose key is not among KEYS."""
    return ({"v": pcoll, "k": keys | f"{label}Keys" >> beam.Map(lambda k: (k, None))}
            | f"{label}Join" >> beam.CoGroupByKey()
            | f"{label}Keep" >> beam.FlatMap(
                lambda kv: [(kv[0], v) for v in kv[1]["v"]] if not list(kv[1]["k"]) else []))


class Dedup(beam.PTransform):
    """SourceFiles -> ``StageOut``: kept SourceFiles, Drops, cluster counts, and three record
    tables: ``dedup/clusters`` (ClusterMembers), and what a later build dedups against
    (``dedup/earlier.py``): ``dedup/signatures`` ((repo, signature) of every repository kept
    at repository level) and ``dedup/hashes`` (the kept files). With ``against`` (earlier
    builds' outputs), what they kept is dropped first."""

    def __init__(self, config: DedupConfig = DedupConfig()):
        super().__init__()
        self.config = config

    def expand(self, files):
        cfg = self.config
        drops, clusters = [], []
        drop_all = getattr(cfg, "dedup_mode", "keep-one") == "drop-all"
        policy = "drop-all" if drop_all else cfg.keep_policy
        # every build's repository signatures: its near-dedup's and what later builds read
        sigs = (files
                | "CodeOnly" >> beam.Filter(lambda f: f.source == CODE)
                | "RepoText" >> beam.Map(lambda f: (f.repo, f.content))
                | "RepoSignatures" >> RepoSignatures(cfg.near))
        against = tuple(getattr(cfg, "against", ()) or ())
        if against:
            files, d, matched = (files, sigs) | "EarlierBuilds" >> AgainstEarlier(against,
                                                                                 cfg.near)
            drops.append(d)
            sigs = _without(sigs, matched, "NotEarlier")
        if cfg.repo_near:
            files, d, c = files | "RepoNear" >> _NearLevel("repo", cfg.near, policy, sigs)
            drops.append(d)
            clusters.append(c)
            gone = c | "DroppedRepos" >> beam.FlatMap(
                lambda m: [] if m.kept else [m.repo])
            sigs = _without(sigs, gone, "NotNearDuplicate")
        if cfg.file_exact:
            exact = files | "FileExact" >> ExactDedup(drop_all)
            files = exact.files
            drops.append(exact.drops)
            clusters.append(exact.clusters)
        if cfg.file_near:
            files, d, c = files | "FileNear" >> _NearLevel("file", cfg.near, policy)
            drops.append(d)
            clusters.append(c)
        counts = tuple(c | f"ClusterCounts{i}" >> beam.Map(cluster_counter)
                       for i, c in enumerate(clusters))
        # what dedup kept, for a later build's --dedup-against (dedup/earlier.py)
        return StageOut(files, tuple(drops), counts, tables={
            "dedup/clusters": tuple(clusters), "dedup/signatures": sigs,
            "dedup/hashes": files})


class Filters(beam.PTransform):
    """Kept SourceFiles -> ``StageOut``: SourceFiles that pass, Drops, counters. The code
    quality rules (``quality`` None: off), the documents' language and quality (``nl`` None:
    off), decontamination against ``benchmarks`` (None: HumanEval; empty: off), then PII
    redaction (counted per file) when ``pii``. Each is a ``filters.FileFilter``: its drops and
    counters come out the same way."""

    def __init__(self, config: FilterConfig = FilterConfig()):
        super().__init__()
        self.quality, self.nl, self.pii = config.quality, config.nl, config.pii
        self.benchmarks = [HUMANEVAL] if config.benchmarks is None else list(config.benchmarks)

    def expand(self, files):
        steps = []
        if self.quality is not None:
            steps.append(("Quality", QualityFilter(self.quality)))
        if self.nl is not None:
            steps.append(("Documents", DocumentFilter(self.nl)))
        if self.benchmarks:
            steps.append(("Decontaminate", Decontaminate(self.benchmarks)))
        if self.pii:
            steps.append(("RedactPII", RedactPII()))
        drops, counts = (), ()
        for label, step in steps:
            out = files | label >> step
            files, drops, counts = out.items, drops + out.drops, counts + out.counts
        return StageOut(files, drops, counts)


def _repo_licenses(repo: str, files) -> Iterator:
    """(repo, (expression, source)) of a repository's licence files and manifests, and a
    ``license_disagreement`` counter (``MANIFEST vs FILES``) when the two say different
    things (the manifest's answer is kept: it is what the registry declares)."""
    info = repo_license_info(sorted(set(files)))
    if info.disagreement is not None:
        yield beam.pvalue.TaggedOutput("counts", {
            counter_key("license_disagreement", " vs ".join(info.disagreement)): 1})
    yield repo, (info.expression, info.source)


class _LicensePolicy(FileFilter):
    """Licence files are dropped (``license_file``: read for their licence, never trained on).
    Each code file gets its licence and where it came from (``license_source``): its own
    header (an SPDX identifier or a licence notice), else its repository's (manifest or
    licence file, from the side input {repo: (expression, source)}); files of opted-out
    repositories, and code files whose licence is outside the policy, are dropped.
    Natural-language documents pass the policy (they carry no SPDX licence)."""

    stage = "licenses"

    def __init__(self, policy: frozenset | None, opt_outs: tuple[str, ...], detect: bool):
        self.policy, self.opt_outs, self.detect = policy, opt_outs, detect

    def check(self, f: SourceFile, repo_licenses: dict):
        if f.language == LICENSE_TEXT:
            return "license_file"
        pattern = opted_out(f.repo, self.opt_outs)
        if pattern is not None:
            return "opted_out", pattern
        if f.source != CODE or not self.detect:  # documents carry no SPDX licence
            return None
        spdx, source = file_license_source(f.content), SOURCE_HEADER
        if spdx is None:
            spdx, source = repo_licenses.get(f.repo, (None, None))
        if not allowed(spdx, self.policy):
            return "license", spdx or "none detected"
        return Keep(replace(f, license=spdx, license_source=source or ""),
                    {counter_key("license", spdx or "none"): 1,
                     counter_key("license_source", source or "none"): 1})


class Licenses(beam.PTransform):
    """SourceFiles -> ``StageOut``: SourceFiles with their licence, Drops, licence counters.
    Licence files and package manifests are read per repository (``dedup/licenses.py``), then
    every file goes through ``_LicensePolicy`` with what they said as a side input: licence
    files and the manifests that are no code (PKG-INFO / METADATA / gemspec) are dropped as
    ``license_file`` (package.json, Cargo.toml, pom.xml... stay code files), the others meet
    the policy and the opt-out list. With ``--licenses off`` licence files are still
    dropped, opt-outs still apply, and no licence is read. The policy and opt-out files are
    read here, when the pipeline is built (on the driver)."""

    def __init__(self, config: LicenseConfig = LicenseConfig()):
        super().__init__()
        self.policy = load_policy(config.policy)
        self.opt_outs = load_patterns(config.exclude_repos)
        self.detect = config.policy != "off"

    def expand(self, files):
        if self.detect:
            detected = (files
                        | "LicenseSources" >> beam.Filter(
                            lambda f: f.language == LICENSE_TEXT
                            or (f.source == CODE and is_manifest(f.path)))
                        | "ByRepo" >> beam.Map(lambda f: (f.repo, (f.path, f.content))))
            row_licenses = (files
                            | "RowLicense" >> beam.FlatMap(
                                lambda f: [(f.repo, (ROW_LICENSE, v)) for k, v in f.meta
                                           if k == "license"])
                            | "OneRowLicense" >> beam.Distinct())
            detected = ((detected, row_licenses)
                        | "AllLicenseSources" >> beam.Flatten()
                        | "GroupLicenseFiles" >> beam.GroupByKey()
                        | "Detect" >> beam.FlatMapTuple(_repo_licenses).with_outputs(
                            "counts", main="licenses"))
            repo_licenses, disagreements = detected.licenses, (detected.counts,)
        else:  # no licence read: an empty side input, nothing to disagree
            repo_licenses = files.pipeline | "NoDetection" >> beam.Create([])
            disagreements = ()
        out = files | "Apply" >> Filter(_LicensePolicy(self.policy, self.opt_outs, self.detect),
                                        beam.pvalue.AsDict(repo_licenses))
        return StageOut(out.items, out.drops, (*out.counts, *disagreements))
