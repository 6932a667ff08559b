"""Prism 2.77 loses committed metric updates: K branches of two elements each; Prism splits
each slow bundle and runs the residual beside the primary; both bundles end together and
report the counter for the first time in their final responses. Expect every counter at 2.
    python repro.py PRISM_BINARY [K]"""
import json
import sys
import time

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions


class SleepThenCount(beam.DoFn):
    def __init__(self, name):
        self.name = name

    def process(self, element):
        key, seconds = element
        time.sleep(seconds)  # 0.3 s, and 0.1 s in the residual that starts ~0.2 s later
        Metrics.counter("repro", self.name).inc()
        yield key


def main(prism: str, k: int = 10) -> None:
    options = PipelineOptions(["--runner", "PrismRunner", "--prism_location", prism,
                               "--environment_type", "LOOPBACK"])
    with beam.Pipeline(options=options) as p:
        branches = [p | f"Create{i}" >> beam.Create([(0, 0.3), (1, 0.1)])
                    | f"Shuffle{i}" >> beam.Reshuffle()
                    | f"Count{i}" >> beam.ParDo(SleepThenCount(f"c{i}")) for i in range(k)]
        _ = branches | beam.Flatten() | beam.combiners.Count.Globally()
    counters = p.result.metrics().query(MetricsFilter().with_namespace("repro"))["counters"]
    print(json.dumps({c.key.metric.name: c.committed for c in counters
                      if c.committed != 2}))  # {} when every counter is right


if __name__ == "__main__":
    main(sys.argv[1], *map(int, sys.argv[2:]))
