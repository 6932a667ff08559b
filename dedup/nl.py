"""Natural-language documents: their format, their language, and Gopher / C4 quality rules.

Documents keep their text byte-exact: nothing here rewrites one (C4 deletes lines; that would
break Markdown and reStructuredText structure, so its line rules become document measures).
The rules read a document's *prose*: for Markdown and reStructuredText, code blocks, tables,
directives, underlines and link targets are left out, and heading / list markers are cut, so
an API page is judged by its sentences, not by its code samples.

Language: py3langid (its model ships in the wheel) on the first ``identify_chars`` characters
of prose; below ``min_confidence`` the language is ``und``.

Quality (Rae et al. 2021, Gopher, appendix A; Raffel et al. 2020, C4), each a drop reason:
  nl_word_count       fewer than 50 or more than 100,000 words
  nl_word_length      mean word length outside 3..10 characters
  nl_symbol_ratio     "#" and ellipses per word over 0.1
  nl_bullet_lines     over 90% of lines start with a bullet
  nl_ellipsis_lines   over 30% of lines end with an ellipsis
  nl_alphabetic_words under 80% of words have a letter
  nl_stop_words       English with fewer than 2 of Gopher's 8 stop words
  nl_repetition       a Gopher repetition measure over its bound (detail: which)
  nl_placeholder      "lorem ipsum" (C4)
  nl_few_sentences    fewer than 3 sentences (C4)
Word rules apply to languages written with spaces; Chinese, Japanese, Thai, ... get the
line, paragraph and character rules only.
"""
from __future__ import annotations

import re
from dataclasses import replace

import numpy as np

from fimpack.config import NLConfig
from fimpack.dedup.filters import FileFilter, Filter, Keep
from fimpack.records import NATURAL_LANGUAGE, SourceFile, counter_key

MARKDOWN, RST, TEXT = "markdown", "restructuredtext", "text"
FORMATS = {".md": MARKDOWN, ".markdown": MARKDOWN, ".rst": RST, ".txt": TEXT}
CONTENT_TYPE = re.compile(r"^Description-Content-Type:\s*text/(x-rst|markdown|plain)",
                          re.IGNORECASE | re.MULTILINE)
UNSPACED = {"zh", "ja", "th", "lo", "km", "my", "bo", "dz"}  # scripts without word spaces
STOP_WORDS = {"the", "be", "to", "of", "and", "that", "have", "with"}  # Gopher's
BULLETS = ("*", "-", "+", "•", "‣", "◦", "▪")
ELLIPSES = ("...", "…")
SENTENCE_END = re.compile(r"[.!?。！？](?:[\"')\]]*)(?=\s|$)")
UNDERLINE = re.compile(r"^([=\-~^\"'`#*+_:.])\1{2,}\s*$")  # rst section adornment
TABLE = re.compile(r"^\s*(\||\+[-=+]+\+\s*$)")
MD_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+")
LIST_MARK = re.compile(r"^\s*(?:[*+\-•]|\d+[.)])\s+")
LETTER = re.compile(r"[^\W\d_]")  # what str.isalpha accepts, one character
FENCE = re.compile(r"^\s*(```|~~~)")
# inline markup a reader does not read as words: images, link targets, URLs, HTML tags
MD_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
MD_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
RST_LINK = re.compile(r"`([^`<]*?)\s*<[^>`]+>`_{1,2}")
URL = re.compile(r"<?\b(?:https?|ftp)://\S+|\bwww\.\S+")
HTML_TAG = re.compile(r"</?[A-Za-z][^>]*>")


def doc_format(path: str, text: str) -> str:
    """MARKDOWN, RST or TEXT: by extension, else a core-metadata Description-Content-Type."""
    dot = path.rfind(".")
    if dot > path.rfind("/"):
        fmt = FORMATS.get(path[dot:].lower())
        if fmt:
            return fmt
    m = CONTENT_TYPE.search(text, 0, 20_000)
    if m:
        return {"x-rst": RST, "markdown": MARKDOWN}.get(m.group(1).lower(), TEXT)
    return TEXT


def _skip_header(lines: list[str]) -> list[str]:
    """A core-metadata file (METADATA, PKG-INFO): its body only, after the header block."""
    if not lines or not lines[0].startswith("Metadata-Version:"):
        return lines
    for i, line in enumerate(lines):
        if not line.strip():
            return lines[i + 1:]
    return []


def prose_lines(text: str, fmt: str) -> list[str]:
    """The lines a reader reads as prose, markers cut; code, tables, directives left out."""
    out, fenced, literal = [], False, False
    for line in _skip_header(text.splitlines()):
        stripped = line.strip()
        if fmt == MARKDOWN and FENCE.match(line):
            fenced = not fenced
            continue
        if fenced:
            continue
        if fmt == RST:
            if literal and (not stripped or line[:1].isspace()):
                continue  # inside a literal block or a directive's body
            literal = False
            if stripped.startswith(".. ") or stripped.endswith("::"):
                literal = True  # directive, comment, link target or "::" literal block
                if not stripped.startswith(".. ") and stripped != "::":
                    out.append(stripped[:-1])  # "text::" keeps "text:"
                continue
            if UNDERLINE.match(line):
                continue
        if fmt == MARKDOWN and line.startswith(("    ", "\t")) and not LIST_MARK.match(line):
            continue  # indented code
        if fmt != TEXT and TABLE.match(line):
            continue
        out.append(MD_HEADING.sub("", line) if fmt == MARKDOWN else line)
    prose = "\n".join(out)  # inline markup goes in one pass over the whole text
    if fmt == MARKDOWN:
        prose = MD_LINK.sub(r"\1", MD_IMAGE.sub("", prose))
    elif fmt == RST:
        prose = RST_LINK.sub(r"\1", prose)
    return HTML_TAG.sub("", URL.sub("", prose)).split("\n")


def _words(lines: list[str]) -> list[str]:
    return " ".join(lines).split()


def gopher_quality(lines: list[str], words: list[str], language: str,
                   cfg: NLConfig) -> tuple[str, str] | None:
    """(reason, detail) of the first Gopher quality rule LINES / WORDS break, or None."""
    nonblank = [line.strip() for line in lines if line.strip()]
    if nonblank:
        bullets = sum(LIST_MARK.match(line) is not None or line.startswith(BULLETS)
                      for line in nonblank) / len(nonblank)
        if bullets > cfg.max_bullet_lines:
            return "nl_bullet_lines", f"{bullets:.2f}"
        ellipsis = sum(line.endswith(ELLIPSES) for line in nonblank) / len(nonblank)
        if ellipsis > cfg.max_ellipsis_lines:
            return "nl_ellipsis_lines", f"{ellipsis:.2f}"
    if language in UNSPACED:
        return None
    n = len(words)
    if not cfg.min_words <= n <= cfg.max_words:
        return "nl_word_count", str(n)
    mean = sum(map(len, words)) / n
    if not cfg.min_mean_word_length <= mean <= cfg.max_mean_word_length:
        return "nl_word_length", f"{mean:.1f}"
    prose = " ".join(words)  # "#" and ellipses never hold a space: count them in one string
    symbols = (prose.count("#") + prose.count("...") + prose.count("…")) / n
    if symbols > cfg.max_symbol_ratio:
        return "nl_symbol_ratio", f"{symbols:.2f}"
    alphabetic = sum(w.isalpha() or LETTER.search(w) is not None for w in words) / n
    if alphabetic < cfg.min_alphabetic_words:
        return "nl_alphabetic_words", f"{alphabetic:.2f}"
    if language == "en":
        stop = len(STOP_WORDS.intersection(w.lower().strip(".,;:!?\"'()") for w in words))
        if stop < cfg.min_stop_words:
            return "nl_stop_words", str(stop)
    return None


def _duplicate_share(items: list[str]) -> tuple[float, float]:
    """(share of ITEMS that repeat an earlier one, share of their characters)."""
    seen, dup, dup_chars = set(), 0, 0
    for item in items:
        if item in seen:
            dup += 1
            dup_chars += len(item)
        seen.add(item)
    total = sum(map(len, items))
    return dup / max(1, len(items)), dup_chars / max(1, total)


class _Grams:
    """A document's word N-grams as 64-bit rolling hashes (numpy), so each Gopher N-gram
    measure is a few array passes instead of a Python loop over tuples."""

    PRIME = np.uint64(1_000_003)

    def __init__(self, words: list[str]):
        index: dict[str, int] = {}
        self.ids = np.array([index.setdefault(w, len(index)) for w in words], np.uint64)
        self.lengths = np.array([len(w) for w in words], np.int64)
        self.chars = int(self.lengths.sum()) or 1
        self.n, self.keys = 1, self.ids

    def of(self, n: int) -> np.ndarray:
        """The hashes of the N-grams (N >= the last N asked for), one per start position."""
        if n < self.n:
            raise ValueError("N-grams are built up: ask for N in increasing order")
        with np.errstate(over="ignore"):  # wrap-around is the hash
            while self.n < n:
                self.keys = self.keys[:-1] * self.PRIME + self.ids[self.n:]
                self.n += 1
        return self.keys

    def covered_share(self, starts: np.ndarray, n: int) -> float:
        """Characters of the words inside the N-grams starting where STARTS is true."""
        diff = np.zeros(len(self.ids) + 1, np.int64)
        diff[:len(starts)] += starts
        diff[n:n + len(starts)] -= starts
        return float(self.lengths[np.cumsum(diff)[:-1] > 0].sum()) / self.chars

    def top_share(self, n: int) -> float:
        """Characters the most common N-gram covers (overlaps count once)."""
        keys = self.of(n)
        if not len(keys):
            return 0.0
        _, first, inverse, counts = np.unique(keys, return_index=True, return_inverse=True,
                                              return_counts=True)
        tied = np.flatnonzero(counts == counts.max())
        top = int(tied[first[tied].argmin()])  # of equals, the one seen first
        return 0.0 if counts[top] < 2 else self.covered_share(inverse == top, n)

    def duplicate_share(self, n: int) -> float:
        """Characters covered by N-grams that occurred earlier in the document."""
        keys = self.of(n)
        if not len(keys):
            return 0.0
        _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        return self.covered_share(first[inverse] != np.arange(len(keys)), n)


def gopher_repetition(text: str, words: list[str], language: str,
                      cfg: NLConfig) -> str | None:
    """The first Gopher repetition measure over its bound, as "measure=value", or None."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for name, items in (("line", lines), ("paragraph", paragraphs)):
        share, char_share = _duplicate_share(items)
        if share > cfg.max_duplicate_items:
            return f"duplicate_{name}s={share:.2f}"
        if char_share > cfg.max_duplicate_item_chars:
            return f"duplicate_{name}_chars={char_share:.2f}"
    if language in UNSPACED or len(words) < cfg.min_words:
        return None
    grams = _Grams(words)
    for n, bound in cfg.top_ngram_bounds:
        share = grams.top_share(n)
        if share > bound:
            return f"top_{n}gram={share:.2f}"
    for n, bound in cfg.duplicate_ngram_bounds:
        share = grams.duplicate_share(n)
        if share > bound:
            return f"duplicate_{n}grams={share:.2f}"
    return None


_MODELS: dict = {}  # min_confidence -> classifier: loading one takes about 1 s


class LanguageID:
    """py3langid's normalised classifier, loaded once per worker process."""

    def __init__(self, min_confidence: float, chars: int):
        if min_confidence not in _MODELS:
            from py3langid.langid import MODEL_FILE, LanguageIdentifier

            _MODELS[min_confidence] = LanguageIdentifier.from_model_file(
                MODEL_FILE, norm_probs=True, min_confidence=min_confidence)
        self.model = _MODELS[min_confidence]
        self.chars = chars

    def __call__(self, prose: str) -> tuple[str, float]:
        """(ISO 639-1 code or "und", probability) of the first ``chars`` characters."""
        lang, prob = self.model.classify(prose[:self.chars])
        return lang, round(prob, 3)


def c4_quality(prose: str, language: str, cfg: NLConfig) -> tuple[str, str] | None:
    """C4's page rules that survive keeping the text whole: placeholders, too few sentences."""
    if "lorem ipsum" in prose.lower():
        return "nl_placeholder", "lorem ipsum"
    sentences = len(SENTENCE_END.findall(prose))
    if language not in UNSPACED and sentences < cfg.min_sentences:
        return "nl_few_sentences", str(sentences)
    return None


def judge(text: str, fmt: str, langid: LanguageID, cfg: NLConfig
          ) -> tuple[str, tuple[str, str] | None]:
    """(language, None or (drop reason, detail)) of one document in format FMT."""
    lines = prose_lines(text, fmt)
    prose = "\n".join(lines)
    language, prob = langid(prose)
    if cfg.languages and language not in cfg.languages:
        return language, ("nl_language", f"{language} {prob:.2f}")
    if not cfg.quality:
        return language, None
    words = _words(lines)
    reason = gopher_quality(lines, words, language, cfg)
    if reason is None:
        repeated = gopher_repetition(prose, words, language, cfg)
        reason = ("nl_repetition", repeated) if repeated else c4_quality(prose, language, cfg)
    return language, reason


class _Documents(FileFilter):
    """Each natural-language document gets its language (counted, ``nl_language:CODE``);
    documents outside ``languages`` or breaking a Gopher / C4 rule are dropped. Code passes."""

    stage = "nl"
    langid = None  # loaded at the first document (about 1 s), so code-only workers skip it

    def __init__(self, cfg: NLConfig):
        self.cfg = cfg

    def check(self, f: SourceFile):
        if f.source != NATURAL_LANGUAGE:
            return None
        if self.langid is None:
            self.langid = LanguageID(self.cfg.min_confidence, self.cfg.identify_chars)
        language, drop = judge(f.content, f.language, self.langid, self.cfg)
        if drop is not None:
            return drop
        return Keep(replace(f, natural_language=language),
                    {counter_key("nl_language", language): 1})


def DocumentFilter(cfg: NLConfig = NLConfig()) -> Filter:
    """SourceFiles -> ``StageOut``: documents judged (language set) and code, Drops, the
    documents' language counts (``filters.Filter``)."""
    return Filter(_Documents(cfg))
