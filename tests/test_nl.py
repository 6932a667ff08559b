"""Natural-language documents: format, prose, language identification, Gopher / C4 rules."""
from __future__ import annotations

import gettext
import re
from pathlib import Path

import apache_beam as beam
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from conftest import STDLIB, pydoc_topic
from fimpack.config import FilterConfig, NLConfig
from fimpack.dedup.nl import (MARKDOWN, RST, TEXT, LanguageID, _Grams, doc_format, judge,
                              prose_lines)
from fimpack.dedup.stages import Filters
from fimpack.records import NATURAL_LANGUAGE, SourceFile

CFG = NLConfig()


@pytest.fixture(scope="module")
def langid():
    return LanguageID(CFG.min_confidence, CFG.identify_chars)


def test_format_from_extension_or_core_metadata():
    assert doc_format("docs/README.md", "") == MARKDOWN
    assert doc_format("index.RST", "") == RST
    assert doc_format("notes.txt", "") == TEXT
    meta = "Metadata-Version: 2.4\nName: x\nDescription-Content-Type: text/x-rst\n\nBody\n"
    assert doc_format("x-1.0.dist-info/METADATA", meta) == RST
    assert doc_format("17", meta.replace("x-rst", "markdown")) == MARKDOWN
    assert doc_format("17", "no header at all") == TEXT


def test_markdown_prose_leaves_code_tables_and_link_targets_out():
    text = ("# Install\n\nRun the [installer](https://example.com/get) now.\n\n"
            "```python\nimport secret_module\n```\n\n| col | col |\n|-----|-----|\n\n"
            "    indented_code()\n\n![badge](https://img.shields.io/x.svg) See "
            "https://example.org for more.\n")
    prose = "\n".join(prose_lines(text, MARKDOWN))
    assert "Install" in prose and "Run the installer now." in prose
    for gone in ("#", "secret_module", "col", "indented_code", "https", "badge", "shields"):
        assert gone not in prose


def test_rst_prose_leaves_directives_literals_and_underlines_out():
    text = ("Title\n=====\n\nUse it like this::\n\n    literal_code()\n\nMore prose, see "
            "`the docs <https://example.com>`_.\n\n.. code-block:: python\n\n    also_code()\n\n"
            ".. _target: https://example.com\n\nLast words.\n")
    prose = "\n".join(prose_lines(text, RST))
    assert "Use it like this:" in prose and "More prose, see the docs." in prose
    assert "Last words." in prose and "Title" in prose
    for gone in ("=====", "literal_code", "also_code", "code-block", "https", "_target"):
        assert gone not in prose


def test_core_metadata_header_is_not_prose():
    text = "Metadata-Version: 2.4\nName: pkg\nRequires-Dist: numpy\n\nThe description.\n"
    assert prose_lines(text, TEXT) == ["The description."]


def test_real_documentation_is_kept_as_english(langid):
    from pydoc_data.topics import topics

    verdicts = {name: judge(text, RST, langid, CFG) for name, text in topics.items()}
    kept = [name for name, (lang, drop) in verdicts.items() if drop is None]
    assert len(kept) >= 0.8 * len(topics)  # 67 of 79 with Python 3.11's topics
    assert all(verdicts[name][0] == "en" for name in kept)


# The stdlib's CJK test texts and their languages (benchmarks/bench_nl.py uses them too).
# big5hkscs (32 bytes of rare characters) and hz (English with one Chinese sentence) are not
# documents: left out.
CJK = {"big5": "zh", "gb2312": "zh", "gbk": "zh", "gb18030": "zh", "euc_jp": "ja",
       "shift_jis": "ja", "euc_jisx0213": "ja", "shift_jisx0213": "ja", "iso2022_jp": "ja",
       "cp949": "ko", "euc_kr": "ko", "johab": "ko", "iso2022_kr": "ko"}


def cjk_documents() -> list[tuple[str, str]]:
    folder = STDLIB / "test" / "cjkencodings"
    return [(lang, (folder / f"{name}-utf8.txt").read_text("utf-8"))
            for name, lang in CJK.items() if (folder / f"{name}-utf8.txt").exists()]


def test_cjk_text_from_the_standard_library_is_identified(langid):
    docs = cjk_documents()
    if not docs:
        pytest.skip("this Python has no test/cjkencodings")
    assert [langid(text)[0] for _, text in docs] == [lang for lang, _ in docs]


def catalog_texts(folder: Path, chars: int):
    """Each installed gettext catalog of one locale FOLDER (Debian's /usr/share/locale/LANG)
    as its translated messages over 20 characters, in msgid order, cut to CHARS; catalogs
    with less text, or unreadable ones, are skipped."""
    for mo in sorted((folder / "LC_MESSAGES").glob("*.mo")):
        try:
            with open(mo, "rb") as f:
                catalog = gettext.GNUTranslations(f)._catalog
        except Exception:
            continue  # a damaged or unusual catalog: not sample material
        text = "\n".join(v for k, v in sorted(catalog.items(), key=str)
                         if isinstance(k, str) and k and isinstance(v, str) and len(v) > 20)
        if len(text) >= chars:
            yield text[:chars]


def _catalog_text(lang: str, chars: int = 2000) -> str | None:
    return next(catalog_texts(Path("/usr/share/locale") / lang, chars), None)


def test_european_languages_from_installed_translations(langid):
    langs = ["de", "fr", "es", "it", "nl", "pl", "pt", "ru", "sv", "cs", "uk", "hu"]
    texts = {lang: t for lang in langs if (t := _catalog_text(lang))}
    if len(texts) < 6:
        pytest.skip("too few gettext catalogs installed")
    right = sum(langid(t)[0] == lang for lang, t in texts.items())
    assert right >= len(texts) - 1, {lang: langid(t) for lang, t in texts.items()}


PROSE = pydoc_topic("with")  # kept: the control every rule case below breaks one way
NO_STOP_WORDS = re.sub(r"(?i)\b(the|be|to|of|and|that|have|with)\b", "", PROSE)


@pytest.mark.parametrize("reason,text", [
    ("nl_word_count", "A short note that says very little.\nIt ends here. Done."),
    ("nl_word_length", " ".join(["internationalisation"] * 60) + "."),
    ("nl_symbol_ratio", PROSE + "\n" + " ".join(["#tag"] * 200)),
    ("nl_bullet_lines", "\n".join(f"* item {i} of the list with some words in it."
                                  for i in range(40))),
    ("nl_ellipsis_lines", "\n".join(f"Line {i} of a story that trails off and then..."
                                    for i in range(40))),
    ("nl_alphabetic_words", PROSE + "\n" + " ".join(str(i) for i in range(2000))),
    ("nl_stop_words", NO_STOP_WORDS),
    ("nl_repetition", PROSE + "\n" + "The same line again and again.\n" * 400),
    ("nl_placeholder", PROSE + "\nLorem ipsum dolor sit amet.\n"),
    ("nl_few_sentences", PROSE.replace(".", ",").replace("!", ",").replace("?", ",")),
])
def test_each_quality_rule_has_its_reason(langid, reason, text):
    assert judge(PROSE, TEXT, langid, CFG)[1] is None
    drop = judge(text, TEXT, langid, CFG)[1]
    assert drop is not None and drop[0] == reason, drop


def test_language_filter_and_quality_switch(langid):
    german = _catalog_text("de") or "Der schnelle braune Fuchs springt über den faulen Hund."
    only_en = NLConfig(languages=("en",))
    assert judge(PROSE, TEXT, langid, only_en) == ("en", None)
    lang, drop = judge(german, TEXT, langid, only_en)
    assert lang == "de" and drop[0] == "nl_language" and drop[1].startswith("de ")
    assert judge("x " * 10, TEXT, langid, NLConfig(quality=False))[1] is None


def test_documents_keep_their_text_and_get_a_language():
    readme = ("# fimpack\n\nA **toolkit** that packs repositories.\n\n```bash\nmake demo\n```\n\n"
              + PROSE)
    docs = [SourceFile("docs", "README.md", MARKDOWN, readme, NATURAL_LANGUAGE),
            SourceFile("docs", "spam.txt", TEXT, "Buy now. " * 100, NATURAL_LANGUAGE),
            SourceFile("code", "a.py", "python", "A = 1\n")]
    with TestPipeline() as p:
        out = p | beam.Create(docs) | Filters(FilterConfig(quality=None, nl=NLConfig(), benchmarks=[], pii=False))
        files = out.items
        drops = out.drops | "Drops" >> beam.Flatten()
        counts = out.counts | "Counts" >> beam.Flatten()
        assert_that(files | beam.Map(lambda f: (f.path, f.content, f.natural_language)),
                    equal_to([("README.md", readme, "en"), ("a.py", "A = 1\n", "")]),
                    label="kept")
        assert_that(drops | beam.Map(lambda d: (d.path, d.reason)),
                    equal_to([("spam.txt", "nl_repetition")]), label="dropped")
        assert_that(counts, equal_to([{"nl_language:en": 1}]), label="counted")


def test_no_nl_filter_leaves_documents_unjudged():
    doc = SourceFile("docs", "spam.txt", TEXT, "Buy now. " * 100, NATURAL_LANGUAGE)
    with TestPipeline() as p:
        out = p | beam.Create([doc]) | Filters(FilterConfig(quality=None, nl=None, benchmarks=[], pii=False))
        assert_that(out.items | beam.Map(lambda f: (f.path, f.natural_language)),
                    equal_to([("spam.txt", "")]), label="kept")
        assert out.drops == ()  # no filter ran: nothing that could drop


def _reference_shares(words: list[str], n: int) -> tuple[float, float]:
    """Gopher's top and duplicate N-gram character shares, the plain way (tuples)."""
    chars = sum(map(len, words)) or 1
    grams = list(zip(*(words[i:] for i in range(n))))
    counts: dict = {}
    for g in grams:
        counts[g] = counts.get(g, 0) + 1
    top_cov, dup_cov, seen = [False] * len(words), [False] * len(words), set()
    if grams:
        top = max(counts, key=lambda g: (counts[g], -grams.index(g)))
        for i, g in enumerate(grams):
            if g == top and counts[top] > 1:
                top_cov[i:i + n] = [True] * n
            if g in seen:
                dup_cov[i:i + n] = [True] * n
            seen.add(g)
    share = lambda cov: sum(len(w) for w, c in zip(words, cov) if c) / chars  # noqa: E731
    return share(top_cov), share(dup_cov)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["a", "bb", "ccc", "the", "packing", "x"]), max_size=60),
       st.integers(2, 10))
def test_ngram_shares_match_the_plain_definition(words, n):
    grams = _Grams(words)
    top, dup = _reference_shares(words, n)
    assert grams.top_share(n) == pytest.approx(top)
    assert grams.duplicate_share(n) == pytest.approx(dup)
