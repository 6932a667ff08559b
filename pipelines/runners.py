"""Which Beam runner a build runs on, and what each needs to run correctly here.

* No ``--runner``: Beam's FnApiRunner in this process tree, ``--workers N`` SDK processes.
* ``--runner prism`` (or ``PrismRunner``): Beam's portable local runner, a Go binary built
  from the Beam module at the pinned Beam version by ``make engines`` (``.engines/bin/prism``).
  Beam's Python SDK would download a release binary when none is given; fimpack never does:
  the binary comes from ``--prism_location``, ``$FIMPACK_PRISM``, the checkout's
  ``.engines/bin/prism`` or ``PATH``, else the build stops and says how to build one.
* Any other ``--runner`` (Dataflow, Flink, Spark job servers) goes to Beam as given.
"""
from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path

from apache_beam.options.pipeline_options import (DirectOptions, PipelineOptions,
                                                  PortableOptions, PrismRunnerOptions,
                                                  StandardOptions)
from apache_beam.runners.portability.fn_api_runner import FnApiRunner, worker_handlers
from apache_beam.transforms.environments import SubprocessSDKEnvironment

PRISM_ALIASES = {"prism", "prismrunner"}
CHECKOUT = Path(__file__).resolve().parent.parent  # editable installs: the repository root


class EngineMissing(RuntimeError):
    """A runner's engine is not installed here (and is never downloaded at run time)."""


def find_prism() -> str:
    """Path of the Prism binary to run, never a download."""
    candidates = [os.environ.get("FIMPACK_PRISM"), str(CHECKOUT / ".engines" / "bin" / "prism"),
                  shutil.which("prism")]
    for path in candidates:
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    raise EngineMissing(
        "no Prism binary: run `make engines` in the fimpack checkout, or `go install "
        "github.com/apache/beam/sdks/v2/go/cmd/prism@v2.77.0` and pass --prism_location PATH "
        "(or set FIMPACK_PRISM); fimpack does not download runners at run time")


def no_timed_flush_on_runner_streams() -> None:
    """Turn off the runner side's timed flushing of data sent to SDK workers.

    Beam 2.77's FnApiRunner sends each bundle's input through a
    ``TimeBasedBufferingClosableOutputStream`` (``worker_handlers.DATA_BUFFER_TIME_LIMIT_MS``
    = 1000): a background thread flushes the buffer every second with ``callback(get())``
    then ``_clear()``, while ``write()`` takes no lock, so chunks written by the runner
    during a flush (the callback blocks while the worker is slow to read) are cleared
    unsent and the stream still ends normally. With two or more workers this silently lost
    the tails of large stage inputs on a 204 MB build (BENCHMARKS.md); one worker uses an
    in-memory channel. At 0 the streams buffer by size and send a bundle's input when it
    closes. Worker-side streams default to 0 already."""
    worker_handlers.DATA_BUFFER_TIME_LIMIT_MS = 0


def local_runner(options: PipelineOptions, workers: int) -> FnApiRunner:
    """FnApiRunner (DirectRunner would try Prism, which downloads a binary), with WORKERS
    processes. Each worker is Beam's SDK harness started through ``fimpack.pipelines.worker``,
    which keeps its per-bundle INFO logs off the terminal unless fimpack runs with -v."""
    direct = options.view_as(DirectOptions)
    direct.direct_num_workers = workers
    if workers == 1:
        direct.direct_running_mode = "in_memory"
        return FnApiRunner()
    if logging.getLogger().level <= logging.INFO:
        direct.direct_running_mode = "multi_processing"
        return FnApiRunner()
    direct.direct_running_mode = None  # the environment below is the multi-process one
    command = f"{sys.executable} -m fimpack.pipelines.worker"
    return FnApiRunner(
        default_environment=SubprocessSDKEnvironment.from_command_string(command))


def runner_for(options: PipelineOptions, workers: int):
    """The runner object to pass to ``beam.Pipeline`` (None: Beam's, from OPTIONS), after
    filling in what the chosen engine needs."""
    no_timed_flush_on_runner_streams()  # in-process runners: FnApiRunner, embedded job server
    standard = options.view_as(StandardOptions)
    name = (standard.runner or "").lower()
    if not name:
        return local_runner(options, workers)
    if name in PRISM_ALIASES:
        standard.runner = "PrismRunner"
        prism = options.view_as(PrismRunnerOptions)
        if not prism.prism_location:
            prism.prism_location = find_prism()
        portable = options.view_as(PortableOptions)
        if not portable.environment_type:
            portable.environment_type = "LOOPBACK"  # the SDK harness runs in this process
    return None


def engine_name(options: PipelineOptions) -> str:
    return options.view_as(StandardOptions).runner or "FnApiRunner"
