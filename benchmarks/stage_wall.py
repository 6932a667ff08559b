"""Where a local build's wall time goes: wall seconds of every FnApiRunner stage (fused
transforms, run one after another) and of each worker's share of it, for one `fimpack build`.

    .venv/bin/python benchmarks/stage_wall.py OUT.tsv -- build --out DIR --workers 2 ...

Beam's own metrics give execution time per transform summed over workers; this shows what
they cannot: stages waiting on one worker (a large key, a single-element stage) and time
spent outside the workers. It wraps two FnApiRunner methods (Beam 2.77) for this run only;
the build itself is unchanged. Rows: STAGE wall_s transforms / PART wall_s input_bytes /
MEM driver_peak_mb worker_peak_mb,... (each process's peak resident set during that stage:
its high-water mark is reset through /proc/PID/clear_refs when the stage starts).
"""
from __future__ import annotations

import os
import sys
import time


def instrument(path: str, depth: int = 1) -> None:
    """Log every FnApiRunner stage's wall time with its transforms' names DEPTH levels deep
    (2: ``PackExamples/EncodeFiles``), and each worker's share of it, to PATH."""
    from apache_beam.runners.portability.fn_api_runner import fn_runner

    log = open(path, "w")
    execute, process = fn_runner.FnApiRunner._execute_bundle, fn_runner.BundleManager.process_bundle

    def _execute_bundle(self, context, manager, bundle_input):
        workers = descendants(os.getpid())
        for pid in [os.getpid(), *workers]:
            _reset_peak(pid)
        started = time.time()
        result = execute(self, context, manager, bundle_input)
        names = sorted({"/".join(t.unique_name.split("/")[:depth])
                        for t in manager.stage.transforms
                        if not t.unique_name.startswith("ref_")})
        log.write(f"STAGE\t{time.time() - started:.2f}\t{'+'.join(names)}\n")
        peaks = [proc_mb(pid, "VmHWM") or 0 for pid in workers]
        log.write(f"MEM\t{proc_mb(os.getpid(), 'VmHWM'):.0f}\t"
                  f"{','.join(f'{p:.0f}' for p in peaks if p > 50)}\n")
        log.flush()
        return result

    def process_bundle(self, inputs, *args, **kwargs):
        started = time.time()
        size = sum(len(b) for part in inputs.values() for b in part)
        result = process(self, inputs, *args, **kwargs)
        log.write(f"PART\t{time.time() - started:.2f}\t{size}\n")
        log.flush()
        return result

    fn_runner.FnApiRunner._execute_bundle = _execute_bundle
    fn_runner.BundleManager.process_bundle = process_bundle


def descendants(pid: int) -> list[int]:
    """PID's descendant processes (FnApiRunner's SDK workers under their launchers, a
    tokenizer trainer), from /proc."""
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
    return sorted(found)


def proc_mb(pid: int, field: str) -> float | None:
    """A memory FIELD of /proc/PID/status in MB (VmHWM: the peak resident set, VmRSS: the
    resident set now); None once the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _reset_peak(pid: int) -> None:
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current resident set
    except OSError:
        pass


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[2] != "--":
        sys.exit(__doc__)
    instrument(sys.argv[1])
    from fimpack.cli import main

    sys.exit(main(sys.argv[3:]))
