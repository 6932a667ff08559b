"""Every drop says why: a contamination drop names the benchmark task and the n-gram, a run
of single characters is no n-gram match, and ``fimpack graph`` names the files that did not
parse."""
import json

import apache_beam as beam
from apache_beam.testing.util import assert_that, equal_to

from fimpack.dedup.decontaminate import (Benchmark, Decontaminate, benchmark_rows,
                                         humaneval_path, informative, ngram_hashes)
from fimpack.dedup.minhash import tokens
from fimpack import graph_view
from fimpack.records import Drop, SourceFile

# A real-format Java file (a hex formatter) with the digit run that matched HumanEval/78.
HEX_JAVA = """package org.example.codec;

/** Hex digits: 0 1 2 3 4 5 6 7 8 9 A B C D E F (upper case, as RFC 4648 section 8). */
public final class Hex {
    private static final char[] DIGITS = {
        '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', 'A', 'B', 'C', 'D', 'E', 'F'};

    public static String encode(byte[] data) {
        StringBuilder out = new StringBuilder(data.length * 2);
        for (byte b : data) {
            out.append(DIGITS[(b >> 4) & 0xF]).append(DIGITS[b & 0xF]);
        }
        return out.toString();
    }
}
"""


def test_single_characters_are_no_ngram():
    bench = Benchmark([humaneval_path()])
    assert bench.match(HEX_JAVA) is None
    assert bench.match("digits = '0 1 2 3 4 5 6 7 8 9 A B C D E F'\n") is None
    assert list(informative(["5", "A", "x1", "numbers", "0xFF", "__"])) == [0, 0, 1, 1, 1, 0]


def test_keyword_idioms_are_no_ngram():
    bench = Benchmark([humaneval_path()])
    matrix = ("def identity(n):\n    m = [[0] * n for _ in range(n)]\n"
              "    for i in range(n):\n        for j in range(n):\n"
              "            m[i][j] = 1 if i == j else 0\n    return m\n")
    assert bench.match(matrix) is None  # HumanEval/129's "for i in range n for j in range n"


def test_every_humaneval_task_still_has_ngrams():
    rows = benchmark_rows([humaneval_path()])
    with_grams = {task for task, text in rows if len(ngram_hashes(text))}
    assert len(with_grams) == len({task for task, _ in rows}) == 164


def test_match_names_the_task_and_the_ngram():
    bench = Benchmark([humaneval_path()])
    task, solution = [r for r in benchmark_rows([humaneval_path()])
                      if r[0] == "HumanEval/1"][1]
    hit = bench.match("import os\n\n" + solution)
    assert hit.startswith("HumanEval/1: ")
    ngram = hit.split(": ", 1)[1]
    assert len(ngram.split()) == 10 and ngram in " ".join(tokens(solution))


def test_contaminated_drop_detail(tmp_path):
    own = tmp_path / "bench.jsonl"
    own.write_text(json.dumps({"task_id": "Mine/7", "solution":
                               "def rolling_max(numbers):\n    running_max = None\n"
                               "    result = []\n    for n in numbers:\n"
                               "        running_max = n if running_max is None else "
                               "max(running_max, n)\n        result.append(running_max)\n"
                               "    return result\n"}) + "\n")
    copied = SourceFile("r", "copy.py", "python", "import sys\n\ndef rolling_max(numbers):\n"
                        "    running_max = None\n    result = []\n    for n in numbers:\n"
                        "        pass\n")
    clean = SourceFile("r", "hex/Hex.java", "java", HEX_JAVA)
    with beam.Pipeline() as p:
        out = (p | beam.Create([copied, clean])
               | Decontaminate([str(own), humaneval_path()]))
        kept, drops = out.items, out.drops[0]
        assert_that(kept | beam.Map(lambda f: f.path), equal_to(["hex/Hex.java"]),
                    label="kept")
        assert_that(drops, equal_to([Drop(
            "r", "copy.py", "contaminated",
            "Mine/7: def rolling_max numbers running_max None result for n in numbers")]),
            label="drops")


def test_graph_names_the_files_that_did_not_parse(tmp_path, capsys):
    (tmp_path / "a.py").write_text("import b\n")
    (tmp_path / "b.py").write_text("x = 1\n")
    (tmp_path / "broken.py").write_text("def (:\n import b\n")
    assert graph_view.main(str(tmp_path), "codegemma", False, None) == 0
    out = capsys.readouterr().out
    assert "parse errors 1" in out and "parse error: broken.py" in out
    assert graph_view.graph_json(str(tmp_path))["parse_errors"] == ["broken.py"]
