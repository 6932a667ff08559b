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

from apache_beam.runners.portability.fn_api_runner import fn_runner


def instrument(path: str, depth: int = 1) -> None:
    """Log every FnApiRunner stage's wall time with its transforms' names DEPTH levels deep
    (2: ``PackExamples/EncodeFiles``), and each worker's share of it, to PATH."""
    log = open(path, "w")
    execute, process = fn_runner.FnApiRunner._execute_bundle, fn_runner.BundleManager.process_bundle

    def _execute_bundle(self, context, manager, bundle_input):
        workers = _children(os.getpid())
        for pid in [os.getpid(), *workers]:
            _reset_peak(pid)
        started = time.time()
        result = execute(self, context, manager, bundle_input)
        names = sorted({"/".join(t.unique_name.split("/")[:depth])
                        for t in manager.stage.transforms
                        if not t.unique_name.startswith("ref_")})
        log.write(f"STAGE\t{time.time() - started:.2f}\t{'+'.join(names)}\n")
        peaks = [_peak_mb(pid) for pid in workers]
        log.write(f"MEM\t{_peak_mb(os.getpid()):.0f}\t"
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


def _children(pid: int) -> list[int]:
    """PID's descendant processes (FnApiRunner's SDK workers under their launchers, a
    tokenizer trainer)."""
    out = []  # a child is listed under the thread that started it
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:  # gone
        return out
    for tid in threads:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                for child in map(int, f.read().split()):
                    out += [child, *_children(child)]
        except OSError:
            pass
    return sorted(out)


def _reset_peak(pid: int) -> None:
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current resident set
    except OSError:
        pass


def _peak_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[2] != "--":
        sys.exit(__doc__)
    instrument(sys.argv[1])
    from fimpack.cli import main

    sys.exit(main(sys.argv[3:]))
