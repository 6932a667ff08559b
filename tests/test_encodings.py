"""Text that is not UTF-8: transcoded with charset-normalizer when it is confident (and the
encoding recorded per file and counted), dropped with what it said when it is not; binary
files stay binary."""
import os

import pytest

from fimpack.config import build_settings, Limits
from fimpack.pipelines import build, outputs
from fimpack.pipelines.encodings import decode
from fimpack.pipelines.ingest import classify, discover
from fimpack.records import Drop, SourceFile

LIMITS = Limits(max_file_bytes=200_000)

# A Java source as old German projects wrote them: ISO-8859-1, umlauts in comments,
# identifiers and strings.
JAVA = """package de.beispiel.text;

import java.util.Locale;

/**
 * Hilfsfunktionen f\u00fcr Zeichenketten: L\u00e4nge, Gro\u00df- und Kleinschreibung.
 *
 * @author J\u00fcrgen M\u00fcller
 */
public final class Zeichenketten {

    /** Gr\u00f6\u00dfe des Puffers in Bytes. */
    static final int PUFFER_GR\u00d6SSE = 4096;

    private Zeichenketten() {
    }

    /** Gibt die L\u00e4nge zur\u00fcck, oder 0 f\u00fcr {@code null}. */
    public static int l\u00e4nge(String s) {
        return s == null ? 0 : s.length();
    }

    /** "Stra\u00dfe" wird zu "STRASSE": Gro\u00dfbuchstaben nach deutschen Regeln. */
    public static String gro\u00df(String s) {
        return s.toUpperCase(Locale.GERMAN);
    }

    public static String gru\u00df() {
        return "Gr\u00fc\u00df Gott, sch\u00f6ne Gr\u00fc\u00dfe aus K\u00f6ln";
    }
}
"""
PY_SJIS = """# -*- coding: shift_jis -*-
\"\"\"\u6587\u5b57\u5217\u306e\u30e6\u30fc\u30c6\u30a3\u30ea\u30c6\u30a3\u3002\u5168\u89d2\u3068\u534a\u89d2\u3092\u5909\u63db\u3057\u307e\u3059\u3002\"\"\"


def \u6328\u62f6(\u540d\u524d):
    \"\"\"\u540d\u524d\u3092\u53d7\u3051\u53d6\u308a\u3001\u6328\u62f6\u3092\u8fd4\u3059\u3002\"\"\"
    return f"\u3053\u3093\u306b\u3061\u306f\u3001{\u540d\u524d}\u3055\u3093\uff01\u4eca\u65e5\u306f\u3044\u3044\u5929\u6c17\u3067\u3059\u306d\u3002"
"""


def test_latin1_java_source_is_transcoded():
    data = JAVA.encode("latin-1")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    got = classify("r", "src/main/java/de/beispiel/text/Zeichenketten.java", data, LIMITS)
    assert isinstance(got, SourceFile) and got.language == "java"
    assert got.content == JAVA                      # every umlaut and \u00df right
    assert got.encoding and data.decode(got.encoding) == JAVA
    assert got.input_sha256 and got.sha256 != got.input_sha256  # provenance: the input bytes


def test_shift_jis_and_utf16_are_transcoded():
    got = classify("r", "greet.py", PY_SJIS.encode("shift_jis"), LIMITS)
    assert isinstance(got, SourceFile) and got.content == PY_SJIS
    assert got.encoding in ("shift_jis", "cp932")
    got = classify("r", "a.py", "x = '\u00e9t\u00e9'\n".encode("utf-16"), LIMITS)
    assert isinstance(got, SourceFile) and got.content == "x = '\u00e9t\u00e9'\n"
    assert got.encoding == "utf_16"


def test_utf8_is_read_as_it_is():
    got = classify("r", "a.py", "\ufeffa = '\u00e9'\r\n".encode("utf-8"), LIMITS)
    assert got.encoding == "" and got.content == "\ufeffa = '\u00e9'\r\n"


def test_not_confident_is_dropped_with_what_the_detector_said():
    # two accented bytes fit a dozen code pages, each reading them differently
    got = classify("r", "a.py", "caf\u00e9 = 1\n".encode("latin-1"), LIMITS)
    assert isinstance(got, Drop) and got.reason == "invalid_utf8"
    assert "not UTF-8" in got.detail and "differ" in got.detail
    assert not decode(b"caf\xe9\n").confident


def test_a_few_accents_that_several_code_pages_read_are_not_guessed():
    # Net::SSLeay's example callback, Finnish messages in Latin-1: "v\xe4\xe4r\xe4" reads
    # cleanly as Latin-1 and as Mac Icelandic ("v\u2030\u2030r\u2030"); no guess is taken
    perl = ("#!/usr/bin/perl\n# cb-testi.pl - callback test\nuse Net::SSLeay;\n\n"
            "sub verify {\n    my ($ok, $ctx) = @_;\n    unless ($ok) {\n"
            "        print \"v\u00e4\u00e4r\u00e4 avain\\n\";\n    }\n    return $ok;\n}\n"
            "print \"kaikki hyvin\\n\";\n")
    got = classify("r", "examples/cb-testi.pl", perl.encode("latin-1"), LIMITS)
    assert isinstance(got, Drop) and got.reason == "invalid_utf8"
    assert "read cleanly and differ" in got.detail


def test_binary_stays_binary():
    elf = b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 4
    assert classify("r", "a.c", elf, LIMITS).reason == "binary"
    noise = bytes((i * 97 + 13) % 255 + 1 for i in range(4000))  # no NUL, no text
    got = classify("r", "a.c", noise, LIMITS)
    assert isinstance(got, Drop) and got.reason in ("binary", "invalid_utf8")


@pytest.mark.slow
def test_build_records_transcoded_files(tmp_path):
    repo = tmp_path / "in" / "zeichen"
    (repo / "src").mkdir(parents=True)
    (repo / "src" / "Zeichenketten.java").write_bytes(JAVA.encode("latin-1"))
    (repo / "src" / "Haupt.java").write_text(
        "package de.beispiel.text;\n\npublic class Haupt {\n    public static void main("
        "String[] a) {\n        System.out.println(Zeichenketten.gru\u00df());\n    }\n}\n")
    (repo / "greet.py").write_bytes(PY_SJIS.encode("shift_jis"))
    (repo / "tiny.py").write_bytes("caf\u00e9 = 1\n".encode("latin-1"))
    out = tmp_path / "out"
    cfg = build_settings(out=str(out), input=str(tmp_path / "in"), vocab_size=400,
                            val_fraction=0.0, seq_len=1024, code_fraction=None,
                            benchmarks=[])
    manifest = build.run(cfg, discover(str(tmp_path / "in")), [])
    rows = {r["path"]: r for r in outputs.read_records(str(out), "files").to_pylist()}
    assert rows["src/Haupt.java"]["encoding"] is None
    assert rows["src/Zeichenketten.java"]["encoding"] == decode(JAVA.encode("latin-1")).encoding
    assert rows["greet.py"]["encoding"] in ("shift_jis", "cp932")
    counts = manifest["counts"]
    assert sum(counts["transcoded_files"].values()) == 2
    assert counts["dropped_by_reason"]["invalid_utf8"] == 1
    drops = outputs.read_records(str(out), "drops").to_pylist()
    assert [d["path"] for d in drops if d["reason"] == "invalid_utf8"] == ["tiny.py"]
    assert os.path.exists(out / "manifest.json")
