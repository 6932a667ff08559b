"""Every DoFn and CombineFn of the build survives Beam's default pickler (cloudpickle), which
is what a distributed runner (Dataflow, Flink, Spark) does with them."""
import apache_beam as beam
from apache_beam.internal import pickler
from apache_beam.portability import common_urns, python_urns
from apache_beam.portability.api import beam_runner_api_pb2

from fimpack.config import BuildConfig
from fimpack.pipelines import build
from fimpack.pipelines.ingest import discover


def test_build_graph_pickles_and_unpickles(corpus_dir, tmp_path):
    assert pickler.DEFAULT_PICKLE_LIB in ("cloudpickle", pickler.USE_CLOUDPICKLE)
    cfg = BuildConfig(out=str(tmp_path / "out"), input=str(corpus_dir))
    p = beam.Pipeline()
    build.pipeline(p, discover(str(corpus_dir)), cfg)
    proto = p.to_runner_api()
    seen = 0
    for t in proto.components.transforms.values():
        if t.spec.urn == common_urns.primitives.PAR_DO.urn:
            payload = beam_runner_api_pb2.ParDoPayload.FromString(t.spec.payload)
            if payload.do_fn.urn != python_urns.PICKLED_DOFN_INFO:
                continue  # a runner-native transform: nothing of ours inside
            fn = pickler.loads(payload.do_fn.payload)
            assert fn is not None
            seen += 1
        elif t.spec.urn == common_urns.composites.COMBINE_PER_KEY.urn:
            payload = beam_runner_api_pb2.CombinePayload.FromString(t.spec.payload)
            assert pickler.loads(payload.combine_fn.payload) is not None
            seen += 1
    assert seen > 40
    # And the whole graph round-trips through the runner API, as a job submission does.
    beam.Pipeline.from_runner_api(proto, p.runner, p._options)
