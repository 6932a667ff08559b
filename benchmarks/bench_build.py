"""End-to-end build throughput and scaling: `fimpack build` on the embedded default corpus
(the Python source installed in the venv) at two corpus sizes, with 1 and 2 local workers.

    .venv/bin/python benchmarks/bench_build.py --data bench-data [--sizes 20,60] [--workers 1,2]

Reports input MB (bytes of the files the build read), wall seconds, MB/s, MB/s per core used,
the speed-up from 1 to 2 workers, whether both worker counts wrote identical shards, seconds per
stage (summed over workers), and peak resident memory of the driver, of the largest SDK worker
(``--workers 1`` runs in the driver) and of the tokenizer trainer's own process.
Writes bench-data/results-build.json.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time


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


def peak_rss_mb(pid: int) -> float | None:
    """VmHWM (peak resident set) of a live process, MB; None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def descendants(pid: int) -> set[int]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(entry))
    found, todo = set(), [pid]
    while todo:
        for k in kids.get(todo.pop(), []):
            if k not in found:
                found.add(k)
                todo.append(k)
    return found


def run_build(out: str, max_repos: int, max_files: int, workers: int) -> dict:
    """One build; its wall time and the peak RSS of the driver (FnApiRunner keeps the
    PCollections between stages in the driver) and of the largest SDK worker process,
    sampled from /proc every 0.2 s."""
    cmd = [sys.executable, "-m", "fimpack", "build", "--out", out, "--max-repos", str(max_repos),
           "--max-files-per-repo", str(max_files), "--vocab-size", "8192", "--workers",
           str(workers), "--code-fraction", "-1"]
    t0 = time.perf_counter()
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    log_path = out.rstrip("/") + ".log"  # a file, not a pipe: a full pipe would stall the build
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log)
    driver, worker, trainer = 0.0, 0.0, 0.0
    while proc.poll() is None:
        driver = max(driver, peak_rss_mb(proc.pid) or 0)
        for pid in descendants(proc.pid):
            if "fimpack.packing.tokenizer" in cmdline(pid):  # the tokenizer trainer's process
                trainer = max(trainer, peak_rss_mb(pid) or 0)
            else:
                worker = max(worker, peak_rss_mb(pid) or 0)
        time.sleep(0.2)
    wall = time.perf_counter() - t0
    if proc.returncode:  # e.g. DataLost from the build's audit: recorded, the bench goes on
        return {"command": " ".join(cmd[1:]), "wall_s": round(wall, 1),
                "peak_rss_mb_driver": round(driver, 1),
                "peak_rss_mb_worker": round(worker, 1) if workers > 1 else None,
                "failed": open(log_path).read().strip().splitlines()[-1][:1000]}
    with open(os.path.join(out, "manifest.json")) as f:
        manifest = json.load(f)
    return {"command": " ".join(cmd[1:]), "wall_s": round(wall, 1),
            "peak_rss_mb_driver": round(driver, 1),
            "peak_rss_mb_worker": round(worker, 1) if workers > 1 else None,
            "peak_rss_mb_tokenizer_trainer": round(trainer, 1),
            "shards_sha256": [e["sha256"] for e in manifest["shards"]],
            "kept_files": manifest["counts"]["kept_files"],
            "tokens": manifest["counts"]["tokens"],
            "stage_seconds": manifest["timing"].get("stages", {})}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="bench-data")
    ap.add_argument("--sizes", default="20,60", help="numbers of repositories")
    ap.add_argument("--max-files-per-repo", type=int, default=400)
    ap.add_argument("--workers", default="1,2")
    args = ap.parse_args()
    results = {"cpus": os.cpu_count(), "runs": []}
    for size in [int(s) for s in args.sizes.split(",")]:
        mb = input_mb(size, args.max_files_per_repo)
        for w in [int(x) for x in args.workers.split(",")]:
            out = os.path.join(args.data, f"build-{size}-w{w}")
            r = run_build(out, size, args.max_files_per_repo, w)
            r.update(repos=size, workers=w, input_mb=round(mb, 2))
            if "failed" not in r:
                r.update(mb_per_s=round(mb / r["wall_s"], 3),
                         mb_per_s_per_core=round(mb / r["wall_s"] / w, 3))
            results["runs"].append(r)
            print(json.dumps(r), flush=True)
    by = {(r["repos"], r["workers"]): r for r in results["runs"]}
    for size in {r["repos"] for r in results["runs"]}:
        if (size, 1) in by and (size, 2) in by and not any(
                "failed" in by[(size, w)] for w in (1, 2)):
            results[f"speedup_1_to_2_workers_{size}_repos"] = round(
                by[(size, 1)]["wall_s"] / by[(size, 2)]["wall_s"], 2)
            results[f"identical_shards_1_and_2_workers_{size}_repos"] = (
                by[(size, 1)]["shards_sha256"] == by[(size, 2)]["shards_sha256"])
    with open(os.path.join(args.data, "results-build.json"), "w") as f:
        json.dump(results, f, indent=1)
    print(json.dumps({k: v for k, v in results.items() if k != "runs"}))


if __name__ == "__main__":
    main()
