"""Counters that travel with the data: {key: count} dicts summed by one combiner into the
manifest's counts (keys: ``records.counter_key``). Beam's metrics channel carries the audit's
independent counts (``pipelines/manifest.py``)."""
from __future__ import annotations

import apache_beam as beam

from fimpack.records import CODE, counter_key


class SumCounters(beam.CombineFn):
    def create_accumulator(self):
        return {}

    def add_input(self, acc, counter):
        for k, v in counter.items():
            acc[k] = acc.get(k, 0) + v
        return acc

    def merge_accumulators(self, accs):
        out = {}
        for acc in accs:
            self.add_input(out, acc)
        return out

    def extract_output(self, acc):
        return dict(sorted(acc.items()))


def example_counter(item) -> dict:
    """Counts of one kept (example, ids)."""
    example, ids = item
    n = len(ids)
    c = {"examples": 1, f"examples_{example.split}": 1, f"examples_{example.source}": 1,
         f"tokens_{example.source}": n, f"tokens_{example.split}": n, "tokens": n}
    for f in example.files:
        if example.source == CODE:
            key = counter_key("fim", f.fim)
            c[key] = c.get(key, 0) + 1
        if f.parts > 1:
            c["file_parts"] = c.get("file_parts", 0) + 1
            c["files_split"] = c.get("files_split", 0) + int(f.part == 0)
    return c


def kept_counter(source: str, language: str, encoding: str = "") -> dict:
    c = {"kept_files": 1, f"kept_{source}": 1, counter_key("language", language): 1}
    if encoding:  # transcoded to UTF-8 from ENCODING (pipelines/encodings.py)
        c[counter_key("transcoded", encoding)] = 1
    return c


def drop_counter(drop) -> dict:
    return {"dropped_files": 1, counter_key("drop", drop.reason): 1}


def cluster_counter(member) -> dict:
    level = f"{member.level}-{member.kind}"
    # one row per cluster counts it: the kept one, or under --dedup-mode drop-all the member
    # the cluster is named after (its smallest key)
    key = member.repo if member.path is None else f"{member.repo}/{member.path}"
    head = member.kept or (member.keep_policy == "drop-all"
                           and member.cluster.split(":", 1)[1] == key)
    return {counter_key("cluster_members", level): 1,
            counter_key("cluster_dropped", level): int(not member.kept),
            counter_key("clusters", level): int(head),
            counter_key("keeper", f"{level}:{member.keep_policy}"): int(head)}
