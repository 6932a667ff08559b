"""Natural-language language ID and quality rules: accuracy on a labelled sample, speed.

    .venv/bin/python benchmarks/bench_nl.py [--per-language 12] [--doc-chars 1500]

**Labelled sample** (made here, never committed): the gettext catalogs Debian packages install
under ``/usr/share/locale/LANG/LC_MESSAGES/*.mo``. A document is the translated messages of one
catalog (longer than 20 characters, in msgid order) cut to ``--doc-chars``; its label is the
folder's language (``pt_BR`` -> ``pt``, ``sr@latin`` -> ``sr``), kept when py3langid knows it;
at most ``--per-language`` catalogs per language, chosen by name, so no language dominates.
The 13 CJK texts of the stdlib's ``test/cjkencodings`` are added. Catalogs hold program
messages, so the sample is noisier than prose: untranslated English strings and format
placeholders stay in it.

**Accuracy**: fimpack's ``LanguageID`` (py3langid, normalised, ``und`` under 0.5, first 2,000
characters), micro and macro over languages, the worst languages and the most common
confusions.

**Speed** (``time.process_time``, one process, warm model, best of ``--repeats``) on the
documents of the embedded default corpus (the venv's READMEs, METADATA, docs): prose
extraction + language ID of the first 2,000 characters (what a build does), py3langid on
whole documents (the baseline), and the whole ``judge`` (language + all quality rules).

**Verdicts**: how many of the venv's documents and of the language reference's pydoc topics
the rules keep, with each drop reason's count.

``--lingua``: lingua-language-detector too, if installed (it is not a dependency: a 96 MB
wheel): both on the sample's languages that both know, same prose prefixes, and their speed.
"""
from __future__ import annotations

import argparse
import collections
import itertools
import json
import os
import sys
import time
from pathlib import Path

from fimpack.config import NLConfig
from fimpack.dedup.nl import TEXT, LanguageID, doc_format, judge, prose_lines

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_nl import catalog_texts, cjk_documents  # noqa: E402  (the test's own readers)


def catalog_documents(root: Path, known: set[str], per_language: int, chars: int):
    """[(label, text)] from the gettext catalogs under ROOT, at most PER_LANGUAGE a folder."""
    docs = []
    for folder in sorted(root.iterdir()) if root.is_dir() else ():
        label = folder.name.split("@")[0].split("_")[0].split(".")[0]
        if label in known and label != "en":
            docs += [(label, text) for text in itertools.islice(catalog_texts(folder, chars),
                                                                per_language)]
    return docs


def accuracy(langid: LanguageID, docs) -> dict:
    per = collections.defaultdict(lambda: [0, 0])
    confusions = collections.Counter()
    for label, text in docs:
        got = langid("\n".join(prose_lines(text, TEXT)))[0]
        per[label][0] += got == label
        per[label][1] += 1
        if got != label:
            confusions[f"{label}->{got}"] += 1
    right = sum(r for r, _ in per.values())
    macro = sum(r / n for r, n in per.values()) / len(per)
    worst = sorted(per.items(), key=lambda kv: kv[1][0] / kv[1][1])[:8]
    return {"documents": len(docs), "languages": len(per), "micro": round(right / len(docs), 4),
            "macro": round(macro, 4),
            "worst": {k: f"{r}/{n}" for k, (r, n) in worst},
            "confusions": dict(confusions.most_common(10))}


def corpus_documents():
    from fimpack.pipelines.embedded import embedded_sources

    docs = []
    for src in embedded_sources():
        if src.source != "nl":
            continue
        for rel in src.files:
            try:
                text = Path(src.location, rel).read_text("utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            if len(text) >= 200:
                docs.append((doc_format(rel, text), text))
    return docs


class Lingua:
    """lingua-language-detector (``--lingua``; not a dependency: install it for the run), all
    its languages, models preloaded, on the same first 2,000 prose characters."""

    def __init__(self):
        from lingua import LanguageDetectorBuilder

        self.detector = (LanguageDetectorBuilder.from_all_languages()
                         .with_preloaded_language_models().build())
        self.labels = {lang.iso_code_639_1.name.lower()
                       for lang in __import__("lingua").Language.all()}

    def __call__(self, prose: str) -> tuple[str, float]:
        lang = self.detector.detect_language_of(prose[:2000])
        return ("und" if lang is None else lang.iso_code_639_1.name.lower()), 1.0


def compare_lingua(langid: LanguageID, docs, corpus, repeats: int) -> dict:
    """py3langid and lingua on the sample's languages both know, and their speed."""
    lingua = Lingua()
    shared = [(label, text) for label, text in docs if label in lingua.labels]
    mb = sum(len(t.encode("utf-8")) for _, t in corpus) / 1e6
    prose = ["\n".join(prose_lines(t, f)) for f, t in corpus]
    out = {"languages_both_know": len({label for label, _ in shared})}
    for name, model in (("py3langid", langid), ("lingua", lingua)):
        out[name] = accuracy(model, shared)
        model(prose[0])  # warm
        out[name]["MB/s"] = round(mb / best_seconds(lambda: [model(p) for p in prose],
                                                    repeats), 2)
    return out


def verdicts(langid: LanguageID, docs) -> dict:
    """How many of DOCS ((format, text) pairs) the rules keep, and each drop reason's count."""
    cfg = NLConfig()
    reasons = collections.Counter(
        (drop[0] if drop else "kept") for _, drop in (judge(t, f, langid, cfg) for f, t in docs))
    return {"documents": len(docs), **dict(reasons.most_common())}


def best_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.process_time()
        fn()
        times.append(time.process_time() - t)
    return min(times)


def speed(langid: LanguageID, docs, repeats: int) -> dict:
    mb = sum(len(t.encode("utf-8")) for _, t in docs) / 1e6
    cfg = NLConfig()
    whole = LanguageID(cfg.min_confidence, 1 << 40)
    runs = {
        "prose + language ID (first 2,000 chars)":
            lambda: [langid("\n".join(prose_lines(t, f))) for f, t in docs],
        "py3langid on whole documents (baseline)": lambda: [whole(t) for _, t in docs],
        "judge: language + Gopher/C4 rules": lambda: [judge(t, f, langid, cfg) for f, t in docs],
    }
    out = {"documents": len(docs), "MB": round(mb, 2)}
    for name, fn in runs.items():
        fn()  # warm
        out[name] = f"{mb / best_seconds(fn, repeats):.2f} MB/s"
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--locale-dir", default="/usr/share/locale")
    ap.add_argument("--per-language", type=int, default=12)
    ap.add_argument("--doc-chars", type=int, default=1500)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--lingua", action="store_true",
                    help="also run lingua-language-detector (pip install it first)")
    args = ap.parse_args()
    from pydoc_data.topics import topics  # the language reference: English prose

    cfg = NLConfig()
    langid = LanguageID(cfg.min_confidence, cfg.identify_chars)
    known = set(langid.model.labels)
    docs = catalog_documents(Path(args.locale_dir), known, args.per_language, args.doc_chars)
    if not docs:
        print(f"no gettext catalogs under {args.locale_dir}", file=sys.stderr)
        return 1
    result = {"sample": f"{args.locale_dir} catalogs + stdlib cjkencodings, "
                        f"{args.doc_chars} chars, <= {args.per_language} per language",
              "accuracy": accuracy(langid, docs + cjk_documents()),
              "accuracy_at_200_chars": accuracy(langid, [(l, t[:200]) for l, t in docs]),
              "verdicts": {
                  "venv documents": verdicts(langid, corpus_documents()),
                  "pydoc topics": verdicts(langid, [("restructuredtext", topics[k])
                                                    for k in sorted(topics)])},
              "speed": speed(langid, corpus_documents(), args.repeats),
              "cpu_count": os.cpu_count()}
    if args.lingua:
        result["lingua_vs_py3langid"] = compare_lingua(langid, docs + cjk_documents(),
                                                       corpus_documents(), args.repeats)
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
