"""WriteRecordTables writes every table as WriteRecords writes it alone (same files, same bytes),
in one set of stages whatever the number of tables."""
from __future__ import annotations

import os

import apache_beam as beam
from apache_beam.runners.portability.fn_api_runner import FnApiRunner, fn_runner

from fimpack.pipelines import outputs
from fimpack.records import Drop


def drops(n, repo):
    return [Drop(repo, f"src/f{i:03d}.py", ["too_long", "pii", "near_duplicate"][i % 3],
                 None if i % 4 else f"detail {i}") for i in range(n)]


TABLES = {"drops": (outputs.DROPS_SCHEMA, outputs.drop_row),
          "more/drops": (outputs.DROPS_SCHEMA, outputs.drop_row),
          "empty/drops": (outputs.DROPS_SCHEMA, outputs.drop_row)}
DATA = {"drops": drops(47, "a"), "more/drops": drops(5, "b"), "empty/drops": []}


def files_under(root) -> dict:
    found = {}
    for base, _, names in os.walk(root):
        for name in names:
            path = os.path.join(base, name)
            with open(path, "rb") as f:
                found[os.path.relpath(path, root)] = f.read()
    return found


def test_tables_written_together_are_byte_identical_to_one_writer_each(tmp_path):
    alone, together = tmp_path / "alone", tmp_path / "together"
    with beam.Pipeline(runner=FnApiRunner()) as p:
        for name, (schema, to_row) in TABLES.items():
            _ = (p | f"Create/{name}" >> beam.Create(DATA[name])
                 | f"Write/{name}" >> outputs.WriteRecords(str(alone), name, schema, to_row,
                                                           rows_per_shard=10))
    with beam.Pipeline(runner=FnApiRunner()) as p:
        records = {name: p | f"Create/{name}" >> beam.Create(DATA[name]) for name in TABLES}
        entries = records | outputs.WriteRecordTables(str(together), TABLES, rows_per_shard=10)
        _ = entries | beam.combiners.ToList() | beam.Map(
            lambda es: (tmp_path / "entries.txt").write_text(
                "\n".join(sorted(e["path"] for e in es))))
    want = files_under(alone)
    assert len([p for p in want if p.startswith("drops/")]) == 5  # 47 rows, 10 a shard
    assert files_under(together) == want
    # the manifest entries name exactly the files written (none for the empty table)
    assert (tmp_path / "entries.txt").read_text().split("\n") == sorted(want)


def test_one_set_of_stages_for_any_number_of_tables(tmp_path):
    def stages(n, write=True):
        p = beam.Pipeline(runner=FnApiRunner())
        records = {f"t{i}": p | f"Create{i}" >> beam.Create([]) | f"Id{i}" >> beam.Map(
            lambda x: x) for i in range(n)}
        if write:
            _ = records | outputs.WriteRecordTables(
                str(tmp_path), {f"t{i}": TABLES["drops"] for i in range(n)})
        return len(fn_runner.FnApiRunner().create_stages(p.to_runner_api())[1])

    # the writer's own stages, beside those of the inputs: a handful, not 7-8 a table
    assert stages(1) - stages(1, write=False) <= 5
    assert stages(5) - stages(5, write=False) <= 6
