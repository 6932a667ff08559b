"""Which Beam runner a build runs on, and what each needs to run correctly here.

* No ``--runner``: Beam's FnApiRunner in this process tree, ``--workers N`` SDK processes.
* ``--runner prism`` (or ``PrismRunner``): Beam's portable local runner, a Go binary built
  from the Beam module at the pinned Beam version by ``make engines`` (``.engines/bin/prism``).
  Beam's Python SDK would download a release binary when none is given; fimpack never does:
  the binary comes from ``--prism_location``, ``$FIMPACK_PRISM``, the checkout's
  ``.engines/bin/prism`` or ``PATH``, else the build stops and says how to build one.
* ``--runner DataflowRunner`` (or ``dataflow``): fimpack stages itself for the workers: a
  wheel of this checkout (``--extra_package``) and the pipeline dependencies pinned at the
  versions installed here (``--requirements_file``; torch is not among them), unless the
  user chose how workers get fimpack (``--setup_file``, ``--extra_package``,
  ``--sdk_container_image``: the README's Dockerfile). Every path the workers read or
  write must be on a filesystem they reach (``gs://``); ``check_remote_paths`` refuses the
  rest before anything is submitted. ``--dry_run`` translates and stages locally, needs no
  account, and the build returns what would run (``dry_run_report``) instead of a manifest.
* Any other ``--runner`` (Flink, Spark job servers) goes to Beam as given; one with a
  cluster master gets the same path check as Dataflow.
"""
from __future__ import annotations

import glob
import hashlib
import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path

from apache_beam.options.pipeline_options import (DirectOptions, FlinkRunnerOptions,
                                                  GoogleCloudOptions, PipelineOptions,
                                                  PortableOptions, PrismRunnerOptions,
                                                  SetupOptions, SparkRunnerOptions,
                                                  StandardOptions, TestOptions, WorkerOptions)
from apache_beam.runners.portability.fn_api_runner import FnApiRunner, worker_handlers
from apache_beam.transforms.environments import SubprocessSDKEnvironment

from fimpack.pipelines.worker import DRIVER_TRIM_S, malloc_arenas, trim_freed_memory

PRISM_ALIASES = {"prism", "prismrunner"}
DATAFLOW_ALIASES = {"dataflow", "dataflowrunner"}
log = logging.getLogger("fimpack.build")
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
    # Beam starts the command through a shell; glibc reads the arena cap at start-up
    command = (f"MALLOC_ARENA_MAX={shlex.quote(malloc_arenas())} "
               f"{shlex.quote(sys.executable)} -m fimpack.pipelines.worker")
    return FnApiRunner(
        default_environment=SubprocessSDKEnvironment.from_command_string(command))


def runner_for(options: PipelineOptions, workers: int):
    """The runner object to pass to ``beam.Pipeline`` (None: Beam's, from OPTIONS), after
    filling in what the chosen engine needs."""
    no_timed_flush_on_runner_streams()  # in-process runners: FnApiRunner, embedded job server
    standard = options.view_as(StandardOptions)
    name = (standard.runner or "").lower()
    if not name:  # FnApiRunner: this process holds every collection between stages
        trim_freed_memory(when_idle=False, every=DRIVER_TRIM_S)
        return local_runner(options, workers)
    if name in DATAFLOW_ALIASES:
        standard.runner = "DataflowRunner"
        stage_fimpack(options)
        return None
    if name in PRISM_ALIASES:
        standard.runner = "PrismRunner"
        prism = options.view_as(PrismRunnerOptions)
        if not prism.prism_location:
            prism.prism_location = find_prism()
        portable = options.view_as(PortableOptions)
        if not portable.environment_type:
            portable.environment_type = "LOOPBACK"  # the SDK harness runs in this process
            trim_freed_memory(when_idle=True)
    return None


def engine_name(options: PipelineOptions) -> str:
    return options.view_as(StandardOptions).runner or "FnApiRunner"


# --- Remote runners: what the workers can read, and how they get fimpack ---------------------

def is_remote_runner(options: PipelineOptions) -> bool:
    """Whether the workers run on other machines, which cannot read this one's files:
    Dataflow always; Flink and Spark when given a cluster master (their default starts a
    local embedded cluster)."""
    name = (options.view_as(StandardOptions).runner or "").lower()
    if name in DATAFLOW_ALIASES:
        return True
    if name in ("flink", "flinkrunner"):
        return options.view_as(FlinkRunnerOptions).flink_master not in ("[auto]", "[local]")
    if name in ("spark", "sparkrunner"):
        return not options.view_as(SparkRunnerOptions).spark_master_url.startswith("local")
    return False


def is_dry_run(options: PipelineOptions) -> bool:
    """``--dry_run`` on Dataflow: translate and stage, submit nothing. (Other runners ignore
    the option and would run; ``check_remote_paths`` refuses it for them.)"""
    name = (options.view_as(StandardOptions).runner or "").lower()
    return bool(options.view_as(TestOptions).dry_run) and name in DATAFLOW_ALIASES


GCS_PATH = re.compile(r"^gs://[a-z0-9][-_a-z0-9.]{1,61}[a-z0-9](/|$)")  # bucket name rules


def _is_url(path: str) -> bool:
    return "://" in path


def check_remote_paths(options: PipelineOptions, input_path: str | None, out: str,
                       benchmarks: list[str] | None = None,
                       earlier: list[str] | None = None) -> None:
    """Refuse, before anything is submitted, a path that a remote runner's workers would
    read or write on their own disks: a local --input (or the embedded default, this
    machine's installed Python), a local --out, a local --benchmark. The message says what
    to pass instead. Local runners: nothing to check. (--tokenizer, --licenses FILE and
    --exclude-repos are read here, by the driver, so they may stay local.)"""
    from fimpack.errors import UserError

    if options.view_as(TestOptions).dry_run and not is_dry_run(options):
        raise UserError("--dry_run only means something to --runner DataflowRunner (it "
                        "translates and stages the job without submitting it); other runners "
                        "would run the build anyway")
    if not is_remote_runner(options):
        return
    runner = options.view_as(StandardOptions).runner
    bad = []
    gcp = options.view_as(GoogleCloudOptions)
    if is_dry_run(options) and not any(GCS_PATH.match(p or "") for p in (
            gcp.temp_location, gcp.staging_location)):
        # else Beam tries to make a default bucket, which needs an account (and the network)
        bad.append("a dry run needs --temp_location gs://BUCKET/tmp (a valid bucket name; "
                   "nothing is written there)")
    if input_path is None:
        bad.append("no --input: the embedded default is this machine's installed Python, "
                   "which the workers cannot read; upload repositories (folders, .tar.gz/.zip "
                   "archives, .jsonl/.parquet rows) and pass --input gs://BUCKET/PREFIX")
    elif not _is_url(input_path):
        bad.append(f"--input {input_path} is on this machine; copy it to a bucket (gsutil -m "
                   f"cp -r {input_path.rstrip('/')}/* gs://BUCKET/PREFIX/) and pass --input "
                   "gs://BUCKET/PREFIX")
    if not _is_url(out):
        bad.append(f"--out {out} would be written on the workers' disks; pass --out "
                   "gs://BUCKET/PREFIX and copy the build back if you want it here")
    for path in benchmarks or []:
        if not _is_url(path):
            bad.append(f"--benchmark {path} is on this machine; copy it to a bucket and pass "
                       "its gs:// path")
    for path in earlier or []:
        if not _is_url(path):  # the workers read its dedup records
            bad.append(f"--dedup-against {path} is on this machine; copy that build to a "
                       "bucket and pass its gs:// path")
    if bad:
        raise UserError(f"--runner {runner} runs on other machines: " + "; ".join(bad))


def sources_for_runner(beam_args: list[str], input_path: str | None, out: str,
                       benchmarks: list[str] | None, list_sources,
                       earlier: list[str] | None = None):
    """The build's sources for the chosen runner: paths checked (``check_remote_paths``)
    first; LIST_SOURCES() lists them, except in a remote dry run, which needs no account
    and so does not list a bucket (the pipeline's graph does not depend on the list)."""
    options = PipelineOptions(beam_args)
    check_remote_paths(options, input_path, out, benchmarks, earlier)
    if is_remote_runner(options) and is_dry_run(options) and input_path and \
            _is_url(input_path):
        log.info("dry run: %s is not listed (no account needed); the pipeline is translated "
                 "with its sources left empty", input_path)
        return []
    return list_sources()


def _requirement_names(dist: str, extras: tuple = ()) -> list[str]:
    from packaging.requirements import Requirement

    names = []
    for line in metadata.requires(dist) or []:
        req = Requirement(line)
        env_ok = any(req.marker is None or req.marker.evaluate({"extra": e})
                     for e in (extras or ("",)))
        if env_ok:
            names.append(req.name)
    return names


def _closure(names: list[str]) -> set[str]:
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in seen:
            continue
        try:
            metadata.version(name)
        except metadata.PackageNotFoundError:
            continue  # an optional dependency not installed here
        seen.add(key)
        todo.extend(_requirement_names(name))
    return seen


def pipeline_requirements() -> list[str]:
    """``name==version`` for fimpack's pipeline dependencies (its base requirements, never
    an extra: no torch) and what they need, at the versions installed here (the pins of
    constraints.txt), leaving out what apache-beam itself needs: the Beam SDK image of the
    same version has those, at the versions Beam tested."""
    direct = _requirement_names("fimpack")
    beam_own = _closure(["apache-beam"]) - {"apache-beam"}
    keep = (_closure(direct) - beam_own) | {re.sub(r"[-_.]+", "-", n).lower() for n in direct}
    return sorted((f"{metadata.metadata(n)['Name']}=={metadata.version(n)}" for n in keep),
                  key=str.lower)


def build_wheel(dest: str) -> str:
    """A wheel of this checkout (pure Python: the fimpack namespace), built offline with the
    setuptools installed here; its path."""
    from fimpack.errors import UserError

    if not (CHECKOUT / "pyproject.toml").is_file():
        raise UserError("fimpack is not installed from a checkout, so it cannot stage itself "
                        "for remote workers; pass --extra_package FIMPACK.whl, or "
                        "--sdk_container_image with fimpack installed (README: Dataflow)")
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
           "--disable-pip-version-check", "-q", "-w", dest, str(CHECKOUT)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = glob.glob(os.path.join(dest, "fimpack-*.whl"))
    if proc.returncode or not wheels:
        raise UserError("could not build fimpack's wheel to stage for the workers ("
                        + (proc.stderr.strip().splitlines() or ["no wheel"])[-1]
                        + "); `pip install setuptools wheel` in this environment, or pass "
                        "--sdk_container_image (README: Dataflow)")
    return wheels[0]


def stage_fimpack(options: PipelineOptions) -> dict:
    """Make a remote runner's workers install fimpack and its pinned pipeline dependencies:
    ``--extra_package`` (a wheel of this checkout) and ``--requirements_file`` (the pins,
    ``pipeline_requirements``), unless the user already chose (``--setup_file``,
    ``--extra_package``, ``--requirements_file`` or ``--sdk_container_image``). What was
    staged."""
    setup = options.view_as(SetupOptions)
    image = options.view_as(WorkerOptions).sdk_container_image
    if setup.setup_file or setup.extra_packages or setup.requirements_file or image:
        log.info("workers get fimpack as the options say (setup_file=%s, extra_packages=%s, "
                 "requirements_file=%s, sdk_container_image=%s)", setup.setup_file,
                 setup.extra_packages, setup.requirements_file, image)
        return {"by": "user"}
    staging = tempfile.mkdtemp(prefix="fimpack-stage-")
    wheel = build_wheel(staging)
    requirements = os.path.join(staging, "requirements.txt")
    pins = pipeline_requirements()
    with open(requirements, "w") as f:
        f.write("".join(line + "\n" for line in pins))
    setup.extra_packages = [wheel]
    setup.requirements_file = requirements
    # the workers install the pins from PyPI at start-up; nothing is downloaded here
    setup.requirements_cache = "skip"
    log.info("staging fimpack for the workers: %s and %d pinned requirements",
             os.path.basename(wheel), len(pins))
    return {"by": "fimpack", "wheel": wheel, "requirements": requirements}


def dry_run_report(result, options: PipelineOptions, input_path: str | None, out: str,
                   sources: int) -> dict:
    """What a dry run would submit: runner, project, the workers' environment (image and the
    artifacts staged into it), the top-level stages and the graph's size."""
    from apache_beam.portability import common_urns
    from apache_beam.portability.api import beam_runner_api_pb2

    job = getattr(result, "job", None)
    proto = getattr(job, "proto_pipeline", None)
    report = {"dry_run": True, "runner": options.view_as(StandardOptions).runner,
              "input": input_path, "out": out,
              "sources": sources if sources else "not listed (dry run)"}
    gcp = options.view_as(GoogleCloudOptions)
    report.update({"project": gcp.project, "region": gcp.region,
                   "temp_location": gcp.temp_location, "job_name": gcp.job_name})
    if proto is None:
        return report
    components = proto.components
    environments = []
    for env_id, env in sorted(components.environments.items()):
        entry = {"id": env_id, "urn": env.urn, "artifacts": []}
        if env.urn == common_urns.environments.DOCKER.urn:
            entry["image"] = beam_runner_api_pb2.DockerPayload.FromString(
                env.payload).container_image
        for dep in env.dependencies:
            art = {"name": None, "path": None}
            if dep.role_urn == common_urns.artifact_roles.STAGING_TO.urn:
                art["name"] = beam_runner_api_pb2.ArtifactStagingToRolePayload.FromString(
                    dep.role_payload).staged_name
            if dep.type_urn == common_urns.artifact_types.FILE.urn:
                path = beam_runner_api_pb2.ArtifactFilePayload.FromString(
                    dep.type_payload).path
                art["path"] = path
                if os.path.isfile(path):
                    with open(path, "rb") as f:
                        data = f.read()
                    art.update(bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
            entry["artifacts"].append(art)
        environments.append(entry)
    roots = [components.transforms[t] for t in proto.root_transform_ids]
    top = [components.transforms[s].unique_name for r in roots for s in r.subtransforms] \
        if len(roots) == 1 and roots[0].subtransforms else [r.unique_name for r in roots]
    report.update({"environments": environments, "stages": top,
                   "transforms": len(components.transforms),
                   "pcollections": len(components.pcollections)})
    saved = tempfile.NamedTemporaryFile(prefix="fimpack-dry-run-", suffix=".pipeline.pb",
                                        delete=False)
    with saved:  # the translated portable pipeline, for a closer look (and the test)
        saved.write(proto.SerializeToString())
    report["pipeline_proto"] = saved.name
    return report


def staged_wheel_contents(path: str) -> dict:
    """The files and the unconditional requirements of a staged wheel (for the dry run's
    report and its test)."""
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
        lines = zf.read(meta).decode().splitlines()
    requires = [line.split(":", 1)[1].strip() for line in lines
                if line.startswith("Requires-Dist:") and "extra ==" not in line]
    return {"files": names, "requires": requires}

