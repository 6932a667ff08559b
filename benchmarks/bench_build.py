"""End-to-end build throughput and scaling: `fimpack build` on the embedded default corpus
(the Python source installed in the venv) at one or more corpus sizes, on FnApiRunner with 1
and 2 local workers and on Prism (``--runner prism``, built by ``make engines``).

    .venv/bin/python benchmarks/bench_build.py --data bench-data [--sizes 20,60] \
        [--runs fnapi-1,fnapi-2,prism-1] [--input DIR --name NAME] [--given-tokenizer]
        [--before PKG]

``--input DIR`` builds DIR (e.g. ``benchmarks/fetch_build_corpus.sh``'s sdists) instead of the
embedded corpus (``--sizes`` is then ignored; input MB = the bytes of its files, archive
members included). ``--given-tokenizer`` repeats every FnApiRunner run with ``--tokenizer``
set to the model the first run trained, and checks that its shards are byte-identical to the
trained run's. ``--before PKG`` runs every FnApiRunner build with a trained tokenizer a
second time, alternating, with the code of PKG (a folder whose ``fimpack`` package is an older checkout, put first on PYTHONPATH): the
before/after ratios come from the same run, under the same load.

Reports input MB (bytes of the files the build read), wall seconds, MB/s, MB/s per core used,
the speed-up from 1 to 2 workers and of each other engine against FnApiRunner with one worker,
whether they wrote identical shards, the fraction of the encode + parse floor reached, seconds per
stage (summed over workers), and peak resident memory of the driver, of the largest SDK worker
(``--workers 1`` runs in the driver) and of the tokenizer trainer's own process, the number
of fused stages FnApiRunner runs (``build.fused_stages``) and the load average (other users of
the machine); and the floor that one tokenisation and one parse of the kept content put on MB/s
per core.
Writes bench-data/results-build.json.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from stage_wall import descendants, proc_mb  # this folder is on sys.path: run as a script


def input_mb(max_repos: int, max_files: int) -> float:
    from fimpack.pipelines.embedded import embedded_sources

    total = 0
    for src in embedded_sources(max_repos):
        for i, rel in enumerate(sorted(src.files)):
            if max_files and i >= max_files:
                break
            try:
                total += os.path.getsize(os.path.join(src.location, rel))
            except OSError:
                pass
    return total / 1e6


def folder_mb(path: str) -> float:
    """Bytes of the files under PATH, an archive's by its members (what a build reads)."""
    import tarfile
    import zipfile

    from fimpack.pipelines.sources import ARCHIVE_SUFFIXES

    total = 0
    for root, _, names in os.walk(path):
        for name in names:
            full = os.path.join(root, name)
            if name.endswith(ARCHIVE_SUFFIXES) and not name.endswith(".zip"):
                with tarfile.open(full) as tar:
                    total += sum(m.size for m in tar if m.isfile())
            elif name.endswith(".zip"):  # what ingest reads as archives, and nothing else
                with zipfile.ZipFile(full) as z:
                    total += sum(i.file_size for i in z.infolist() if not i.is_dir())
            else:
                total += os.path.getsize(full)
    return total / 1e6


def peak_rss_mb(pid: int) -> float | None:
    """VmHWM (peak resident set) of a live process, MB; None once it is gone."""
    return proc_mb(pid, "VmHWM")


def rss_mb(pid: int) -> float:
    """VmRSS (resident set now) of a live process, MB; 0 once it is gone."""
    return proc_mb(pid, "VmRSS") or 0.0


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def fused_stage_count(build_args: list[str], pythonpath: str | None = None) -> int:
    """How many fused stages FnApiRunner runs for ``fimpack build BUILD_ARGS`` (Beam's own
    fusion of the build's graph, ``build.fused_stages``; nothing runs), with the code on
    PYTHONPATH (this checkout's without)."""
    script = ("import json, sys\n"
              "from fimpack.cli import _build_parser\n"
              "from fimpack.config import build_config\n"
              "from fimpack.pipelines import build\n"
              "args, _ = _build_parser().parse_known_args(['build', *json.loads(sys.argv[1])])\n"
              "print(len(build.fused_stages(build_config(args, False))))\n")
    env = dict(os.environ, PYTHONPATH=pythonpath) if pythonpath else None
    done = subprocess.run([sys.executable, "-c", script, json.dumps(build_args)], env=env,
                          cwd="/", capture_output=True, text=True, check=True)
    return int(done.stdout.split()[-1])


def instrument_stages(path: str) -> None:
    """Log every FnApiRunner stage's wall time with its transforms two levels deep
    (``PackExamples/EncodeFiles``), and each worker's share of it, to PATH (TSV rows: STAGE
    wall_s names / PART wall_s input_bytes): where a build's wall time goes, one stage at a
    time, and which stages wait on one worker. Wraps two FnApiRunner methods (Beam 2.77) in
    this process only (the build runs here, without the CLI's supervisor)."""
    from stage_wall import instrument

    instrument(path, depth=2)


def stage_table(path: str, top: int = 8) -> list[dict]:
    """The TOP stages by wall time from an ``instrument_stages`` log, with their workers'
    shares (seconds, input MB)."""
    stages, parts = [], []
    for line in open(path):
        kind, wall, rest = line.rstrip("\n").split("\t", 2)
        if kind == "PART":
            parts.append((float(wall), round(int(rest) / 1e6, 1)))
        elif kind == "MEM":  # the stage just logged: each process's peak MB during it
            stages[-1]["peak_mb"] = {"driver": float(wall),
                                     "workers": [float(m) for m in rest.split(",") if m]}
        else:
            stages.append({"wall_s": float(wall), "names": rest, "shares": parts})
            parts = []
    return sorted(stages, key=lambda st: -st["wall_s"])[:top]


def run_build(out: str, max_repos: int, max_files: int, workers: int,
              engine: str = "fnapi", extra: tuple[str, ...] = (), input_dir: str | None = None,
              pythonpath: str | None = None, stage_walls: bool = False) -> dict:
    """One build; its wall time and the peak RSS of the driver (FnApiRunner keeps the
    PCollections between stages in the driver; on Prism the driver is also the SDK worker)
    and of the largest other process (SDK workers; the Prism engine), and the peak of the
    whole process tree's resident sets summed at one instant, sampled from /proc every 0.2 s."""
    out = os.path.abspath(out)
    input_dir = os.path.abspath(input_dir) if input_dir else None
    cmd = [sys.executable, "-m", "fimpack", "build", "--out", out,
           *(["--input", input_dir] if input_dir else ["--max-repos", str(max_repos)]),
           "--max-files-per-repo", str(max_files), "--vocab-size", "8192", "--workers",
           str(workers), "--code-fraction", "-1"]
    if engine == "prism":
        cmd += ["--runner", "prism"]
    cmd += list(extra)
    walls = out.rstrip("/") + ".stages.tsv"
    if stage_walls and engine == "fnapi":  # the build in this script's process, instrumented
        cmd = [sys.executable, os.path.abspath(__file__), "--stage-walls-of", walls, "--",
               *cmd[3:]]
    t0 = time.perf_counter()
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    log_path = out.rstrip("/") + ".log"  # a file, not a pipe: a full pipe would stall the build
    env = dict(os.environ, PYTHONPATH=pythonpath) if pythonpath else None
    with open(log_path, "w") as log:  # from /: no checkout on the path but PYTHONPATH's
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, env=env,
                                cwd="/")
    # `fimpack build` runs the build in a child process of its own (cli.console_main's
    # supervisor): the driver is that child, the process with the build's own command line.
    build_cmd = " ".join(cmd[1:])
    in_process = "--stage-walls-of" in cmd  # no supervisor: the driver is the process itself
    driver, worker, trainer, tree = 0.0, 0.0, 0.0, 0.0
    at_peak: dict = {}  # the tree's resident sets by role when their sum peaked
    while proc.poll() is None:
        pids = descendants(proc.pid)
        now = {"driver": 0.0, "workers": 0.0, "trainer": 0.0, "supervisor": rss_mb(proc.pid)}
        if in_process:
            now["driver"] = now.pop("supervisor")
            driver = max(driver, peak_rss_mb(proc.pid) or 0)
        for pid in pids:
            line = cmdline(pid)
            if "fimpack.packing.tokenizer" in line:  # the tokenizer trainer's process
                trainer = max(trainer, peak_rss_mb(pid) or 0)
                now["trainer"] += rss_mb(pid)
            elif build_cmd in line:
                driver = max(driver, peak_rss_mb(pid) or 0)
                now["driver"] += rss_mb(pid)
            else:
                worker = max(worker, peak_rss_mb(pid) or 0)
                now["workers"] += rss_mb(pid)
        if sum(now.values()) > tree:  # the whole tree, at once
            tree = sum(now.values())
            at_peak = {k: round(v, 1) for k, v in now.items()}
        time.sleep(0.2)
    wall = time.perf_counter() - t0
    if proc.returncode:  # e.g. DataLost from the build's audit: recorded, the bench goes on
        return {"command": " ".join(cmd[1:]), "wall_s": round(wall, 1),
                "peak_rss_mb_driver": round(driver, 1), "peak_rss_mb_tree": round(tree, 1),
                "peak_rss_mb_worker": round(worker, 1) if workers > 1 or engine != "fnapi"
                else None,
                "failed": open(log_path).read().strip().splitlines()[-1][:1000]}
    with open(os.path.join(out, "manifest.json")) as f:
        manifest = json.load(f)
    build_args = cmd[cmd.index("build") + 1:]
    return {"command": " ".join(cmd[1:]), "wall_s": round(wall, 1),
            "load_average": os.getloadavg(),  # 1/5/15 min, at the end: other users' CPU
            "fused_stages": fused_stage_count(build_args, pythonpath),
            **({"stage_walls": stage_table(walls)} if in_process else {}),
            "peak_rss_mb_driver": round(driver, 1), "peak_rss_mb_tree": round(tree, 1),
            "peak_rss_mb_worker": round(worker, 1) if workers > 1 or engine != "fnapi"
            else None,
            "peak_rss_mb_tokenizer_trainer": round(trainer, 1),
            "rss_mb_at_tree_peak": at_peak,
            "shards_sha256": [e["sha256"] for e in manifest["shards"]],
            "kept_files": manifest["counts"]["kept_files"],
            "tokens": manifest["counts"]["tokens"],
            "stage_seconds": manifest["timing"].get("stages", {})}


def encode_parse_floor(out: str, input_mb: float) -> dict:
    """CPU seconds of one sentencepiece encode (``encode_texts``: 4 KB chunks, one thread) of
    every kept file and one tree-sitter parse of every kept code file, the least any build of
    this design spends, timed on a finished build's kept content (files put back together
    from the examples' pieces); the MB of input per second per core that leaves."""
    import glob

    import pyarrow.parquet as pq

    from fimpack.packing.imports import has_parser, parser_for
    from fimpack.packing.tokenizer import Tokenizer

    tok = Tokenizer.load(os.path.join(out, "tokenizer.model"))
    order = {"content": 0, "prefix": 0, "middle": 1, "suffix": 2}
    files = []
    for path in sorted(glob.glob(os.path.join(out, "examples", "*.parquet"))):
        for row in pq.read_table(path, columns=["text", "files", "pieces"]).to_pylist():
            for i, entry in enumerate(row["files"]):
                spans = sorted((order[p["kind"]], p["start"], p["end"]) for p in row["pieces"]
                               if p["file"] == i and p["kind"] in order)
                files.append((entry["language"], "".join(row["text"][a:b] for _, a, b in spans)))
    started = time.process_time()
    tok.encode_texts([text for _, text in files])
    encode_s = time.process_time() - started
    code = [(lang, text.encode("utf-8", "surrogatepass")) for lang, text in files
            if has_parser(lang)]
    started = time.process_time()
    for lang, data in code:
        parser_for(lang)[0].parse(data)
    parse_s = time.process_time() - started
    return {"kept_mb": round(sum(len(t.encode("utf-8", "surrogatepass")) for _, t in files)
                             / 1e6, 2),
            "encode_s": round(encode_s, 1), "parse_s": round(parse_s, 1),
            "input_mb_per_s_per_core": round(input_mb / (encode_s + parse_s), 2)}


def compare_runs(results: dict, runs: list[dict], label: str) -> None:
    """Speed-ups and shard identity of RUNS (one configuration's) into RESULTS."""
    by = {(r["repos"], r["workers"]): r for r in runs if r["engine"] == "fnapi"}
    for size in {r["repos"] for r in runs}:
        if (size, 1) in by and (size, 2) in by and not any(
                "failed" in by[(size, w)] for w in (1, 2)):
            results[f"speedup_1_to_2_workers_{size}{label}"] = round(
                by[(size, 1)]["wall_s"] / by[(size, 2)]["wall_s"], 2)
            results[f"identical_shards_1_and_2_workers_{size}{label}"] = (
                by[(size, 1)]["shards_sha256"] == by[(size, 2)]["shards_sha256"])
    for r in runs:
        ref = by.get((r["repos"], 1))
        if r["engine"] != "fnapi" and ref and "failed" not in r and "failed" not in ref:
            key = f"{r['engine']}_{r['workers']}_vs_fnapi_1_{r['repos']}{label}"
            results[f"speedup_{key}"] = round(ref["wall_s"] / r["wall_s"], 2)
            results[f"identical_shards_{key}"] = r["shards_sha256"] == ref["shards_sha256"]


def main() -> None:
    if sys.argv[1:2] == ["--stage-walls-of"]:  # one instrumented build (run_build's child)
        instrument_stages(sys.argv[2])
        from fimpack.cli import main as fimpack_main

        sys.exit(fimpack_main(sys.argv[4:]))
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="bench-data")
    ap.add_argument("--sizes", default="20,60", help="numbers of repositories")
    ap.add_argument("--max-files-per-repo", type=int, default=400)
    ap.add_argument("--tokenizer", default=None, metavar="MODEL",
                    help="pass --tokenizer MODEL to every build (no training: what the "
                         "tokenizer's place on the critical path costs)")
    ap.add_argument("--runs", default="fnapi-1,fnapi-2",
                    help="ENGINE-WORKERS list: fnapi-N (FnApiRunner, N processes), prism-1")
    ap.add_argument("--input", default=None, metavar="DIR",
                    help="build DIR instead of the embedded corpus (--sizes ignored)")
    ap.add_argument("--name", default=None, help="a name for --input's runs (its folder's)")
    ap.add_argument("--given-tokenizer", action="store_true",
                    help="repeat each fnapi run with --tokenizer set to the first run's model")
    ap.add_argument("--stage-walls", action="store_true",
                    help="run FnApiRunner builds instrumented: wall s of each fused stage and "
                         "its workers' shares (the top 8 per run, and OUT.stages.tsv)")
    ap.add_argument("--before", default=None, metavar="PKG",
                    help="also run every build with the code of PKG (PYTHONPATH), alternating")
    args = ap.parse_args()
    results = {"cpus": os.cpu_count(), "load_average_before": os.getloadavg(), "runs": []}
    name = args.name or (os.path.basename(args.input.rstrip("/")) if args.input else None)
    sizes = [0] if args.input else [int(s) for s in args.sizes.split(",")]
    codes = [("after", None)] + ([("before", os.path.abspath(args.before))]
                                 if args.before else [])
    for size in sizes:
        mb = folder_mb(args.input) if args.input else input_mb(size, args.max_files_per_repo)
        label = name or f"{size}"
        # older code: FnApiRunner runs with a trained tokenizer only
        plan = [(run, code, None) for run in args.runs.split(",") for code in codes
                if code[0] == "after" or run.startswith("fnapi")]
        if args.given_tokenizer:
            plan += [(run, codes[0], "given") for run in args.runs.split(",")
                     if run.startswith("fnapi")]
        for run, (code, pythonpath), tok in plan:
            engine, w = run.rsplit("-", 1)
            w = int(w)
            suffix = (f"-{code}" if args.before else "") + ("-given" if tok else "")
            out = os.path.join(args.data, f"build-{label}-{engine}-w{w}{suffix}")
            model = args.tokenizer
            if tok:  # the model the first run of this code trained
                first = next(r for r in results["runs"] if r["label"] == label
                             and r["code"] == code and not r["given_tokenizer"])
                model = os.path.join(first["out"], "tokenizer.model")
            extra = ("--tokenizer", os.path.abspath(model)) if model else ()
            r = run_build(out, size, args.max_files_per_repo, w, engine, extra, args.input,
                          pythonpath, args.stage_walls)
            r.update(repos=size if not args.input else name, label=label, engine=engine,
                     workers=w, input_mb=round(mb, 2), code=code, given_tokenizer=bool(tok),
                     out=out)
            if "failed" not in r:
                r.update(mb_per_s=round(mb / r["wall_s"], 3),
                         mb_per_s_per_core=round(mb / r["wall_s"] / w, 3),
                         peak_tree_over_input=round(r["peak_rss_mb_tree"] / mb, 1))
            results["runs"].append(r)
            print(json.dumps(r), flush=True)
    for code, _ in codes:
        for given in (False, True):
            runs = [r for r in results["runs"] if r["code"] == code
                    and r["given_tokenizer"] == given]
            compare_runs(results, runs, f"_{code}" + ("_given_tokenizer" if given else ""))
    for r in results["runs"]:  # the given tokenizer against the trained one
        if r["given_tokenizer"] and "failed" not in r:
            twin = next((t for t in results["runs"] if not t["given_tokenizer"] and
                         (t["label"], t["engine"], t["workers"], t["code"]) ==
                         (r["label"], r["engine"], r["workers"], r["code"])), None)
            if twin and "failed" not in twin:
                key = f"{r['label']}_{r['engine']}_{r['workers']}_{r['code']}"
                results[f"identical_shards_given_vs_trained_tokenizer_{key}"] = (
                    r["shards_sha256"] == twin["shards_sha256"])
                results[f"speedup_given_vs_trained_tokenizer_{key}"] = round(
                    twin["wall_s"] / r["wall_s"], 2)
    if args.before:
        for r in results["runs"]:
            if r["code"] == "after" and "failed" not in r:
                old = next((t for t in results["runs"] if t["code"] == "before" and
                            (t["label"], t["engine"], t["workers"], t["given_tokenizer"]) ==
                            (r["label"], r["engine"], r["workers"], r["given_tokenizer"])),
                           None)
                if old and "failed" not in old:
                    key = (f"{r['label']}_{r['engine']}_{r['workers']}"
                           + ("_given_tokenizer" if r["given_tokenizer"] else ""))
                    results[f"after_over_before_wall_{key}"] = round(
                        r["wall_s"] / old["wall_s"], 3)
                    results[f"identical_shards_before_after_{key}"] = (
                        r["shards_sha256"] == old["shards_sha256"])
    first = results["runs"][0] if results["runs"] else None
    if first and "failed" not in first:
        floor = encode_parse_floor(first["out"], first["input_mb"])
        results["floor_encode_and_parse"] = floor
        # The target of issue 11: one worker end to end at >= 50% of the floor's MB/s per core.
        for r in results["runs"]:
            if r["workers"] == 1 and "failed" not in r and r["repos"] == first["repos"]:
                key = (f"{r['engine']}_1_{r['label']}_{r['code']}"
                       + ("_given_tokenizer" if r["given_tokenizer"] else ""))
                results[f"fraction_of_floor_{key}"] = round(
                    r["mb_per_s_per_core"] / floor["input_mb_per_s_per_core"], 3)
    name = f"results-build-{name}.json" if name else "results-build.json"
    with open(os.path.join(args.data, name), "w") as f:
        json.dump(results, f, indent=1)
    print(json.dumps({k: v for k, v in results.items() if k != "runs"}))


if __name__ == "__main__":
    main()
