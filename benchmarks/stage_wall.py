"""Where a local build's wall time goes: wall seconds of every FnApiRunner stage (fused
transforms, run one after another) and of each worker's share of it, for one `fimpack build`.

    .venv/bin/python benchmarks/stage_wall.py OUT.tsv -- build --out DIR --workers 2 ...

Beam's own metrics give execution time per transform summed over workers; this shows what
they cannot: stages waiting on one worker (a large key, a single-element stage) and time
spent outside the workers. It wraps two FnApiRunner methods (Beam 2.77) for this run only;
the build itself is unchanged. Rows: STAGE wall_s transforms / PART wall_s input_bytes.
"""
from __future__ import annotations

import sys
import time

from apache_beam.runners.portability.fn_api_runner import fn_runner


def instrument(path: str, depth: int = 1) -> None:
    """Log every FnApiRunner stage's wall time with its transforms' names DEPTH levels deep
    (2: ``PackExamples/EncodeFiles``), and each worker's share of it, to PATH."""
    log = open(path, "w")
    execute, process = fn_runner.FnApiRunner._execute_bundle, fn_runner.BundleManager.process_bundle

    def _execute_bundle(self, context, manager, bundle_input):
        started = time.time()
        result = execute(self, context, manager, bundle_input)
        names = sorted({"/".join(t.unique_name.split("/")[:depth])
                        for t in manager.stage.transforms
                        if not t.unique_name.startswith("ref_")})
        log.write(f"STAGE\t{time.time() - started:.2f}\t{'+'.join(names)}\n")
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


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[2] != "--":
        sys.exit(__doc__)
    instrument(sys.argv[1])
    from fimpack.cli import main

    sys.exit(main(sys.argv[3:]))
