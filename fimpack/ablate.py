"""``fimpack ablate``: the paper's open questions, answered with small models on your corpus.

    fimpack ablate --out ABL --variants fim,mixture,order --flavor tiny --steps 300 \\
        --seq-len 512 [--input DIR | --max-repos 12 --max-files-per-repo 120] [--repeats 2]
    fimpack ablate ... --device cuda --flavor small        # unchanged on a GPU (bf16)

Questions (variants of one build; every other setting is the base: FIM 0.8, code 0.8,
CodeGemma order):

* ``fim``: FIM rate 0.8 vs 0.0 (Bavarian et al.'s "FIM for free": infilling loss far lower
  at nearly the same left-to-right loss);
* ``mixture``: code fraction 0.8 vs 1.0 (natural-language loss against code loss);
* ``order``: CodeGemma's dependency order vs DeepSeek's vs random (repository-context gain).

All variants share ONE tokenizer and the SAME held-out repositories: a reference build (every
example kept, ``--code-fraction -1``) trains the tokenizer and fixes the split; each variant is
built with that tokenizer (same repositories held out: the split depends on the kept files
only), trained with the same seed, budget and model, and evaluated on the reference build's
validation split, so the losses are comparable. Writes ``ablation.json``, ``ablation.md`` (a
table per question, intervals in brackets), ``loss_curves.png``, ``metrics.png`` and
``ablation.html`` into ``--out``.
"""
from __future__ import annotations

import json
import os
import sys
from fimpack.config import INPUT, BuildConfig, with_settings
from fimpack.options import from_args
from fimpack.pipelines.build import run as run_build
from fimpack.train.ablate import (combine, curve, differences, markdown, resolve_device,
                                  trained, write_reports)
from fimpack.train.config import AblateConfig

QUESTIONS = {
    "fim": {"fim-0.8": {"fim_rate": 0.8}, "fim-0.0": {"fim_rate": 0.0}},
    "mixture": {"code-0.8": {"code_fraction": 0.8}, "code-1.0": {"code_fraction": 1.0}},
    "order": {"codegemma": {"order": "codegemma"}, "deepseek": {"order": "deepseek"},
              "random": {"order": "random"}},
}
BASE = {"fim_rate": 0.8, "code_fraction": 0.8, "order": "codegemma"}


def variant_key(settings: dict) -> str:
    s = {**BASE, **settings}
    return f"fim{s['fim_rate']}-code{s['code_fraction']}-{s['order']}"


def plan(questions: list[str]) -> dict[str, dict[str, dict]]:
    unknown = sorted(set(questions) - set(QUESTIONS))
    if unknown:
        raise ValueError(f"unknown variants {unknown}; choose from {sorted(QUESTIONS)}")
    return {q: QUESTIONS[q] for q in questions}


def ablate(out: str, sources: list, base: BuildConfig, questions: list[str], *, flavor: str,
           steps: int, batch_size: int, seed: int, repeats: int, device: str,
           metric_files: int = AblateConfig.metric_files, progress=print) -> dict:
    """Build, train and evaluate every variant of QUESTIONS; the ``ablation.json`` dict."""
    from fimpack.train.evaluate import evaluate
    from fimpack.train.trainer import train

    chosen = plan(questions)
    os.makedirs(out, exist_ok=True)
    reference = os.path.join(out, "builds", "reference")
    if not os.path.exists(os.path.join(reference, "manifest.json")):
        progress(f"reference build (tokenizer, held-out repositories): {reference}")
        run_build(with_settings(base, out=reference, code_fraction=None), sources, [])
    tokenizer = os.path.join(reference, "tokenizer.model")
    results: dict = {"settings": {"flavor": flavor, "steps": steps, "batch_size": batch_size,
                                  "seq_len": base.pack.seq_len, "seed": seed, "repeats": repeats,
                                  "device": device, "reference": reference},
                     "questions": {}}
    for question, variants in chosen.items():
        rows = {}
        for name, settings in variants.items():
            key = variant_key(settings)
            data = os.path.join(out, "builds", key)
            if not os.path.exists(os.path.join(data, "manifest.json")):
                progress(f"{question}/{name}: build {key}")
                run_build(with_settings(base, out=data, model=tokenizer, **{**BASE, **settings}),
                          sources, [])
            runs = []
            for r in range(repeats):
                run_dir = os.path.join(out, "runs", f"{key}-s{seed + r}")
                if not trained(run_dir, steps):  # an interrupted ablation resumes here
                    progress(f"{question}/{name}: train {flavor} {steps} steps, seed {seed + r}")
                    train(data, flavor, steps, run_dir, batch_size=batch_size, seed=seed + r,
                          device=device, resume=True)
                if not os.path.exists(os.path.join(run_dir, "eval.json")):
                    progress(f"{question}/{name}: evaluate seed {seed + r}")
                    result = evaluate(run_dir, reference, infill_tasks=0,
                                      humaneval_tasks_per_kind=0, metric_files=metric_files,
                                      seed=seed, device=resolve_device(device))
                    with open(os.path.join(run_dir, "eval.json"), "w") as f:
                        json.dump(result, f, indent=1)
                with open(os.path.join(run_dir, "eval.json")) as f:
                    runs.append({"run": run_dir, "eval": json.load(f),
                                 "curve": curve(run_dir)})
            rows[name] = {"build": data, "settings": {**BASE, **settings}, "runs": runs,
                          "metrics": combine(runs)}
        differences(rows)
        results["questions"][question] = rows
    write_reports(out, results)
    return results


def configs(args) -> tuple[AblateConfig, BuildConfig]:
    """``fimpack ablate``'s parsed flags as its AblateConfig and the base BuildConfig of its
    builds (BuildConfig's input group; seed, seq_len, vocabulary, held-out share and tokenizer
    sample from the AblateConfig)."""
    cfg = from_args(AblateConfig, args)
    return cfg, with_settings(from_args(BuildConfig, args, (INPUT,)), seed=cfg.seed,
                              seq_len=cfg.seq_len, vocab_size=cfg.vocab_size,
                              val_fraction=cfg.val_fraction,
                              sample_chars=cfg.tokenizer_sample_chars)


def main(args) -> int:
    """``fimpack ablate``'s parsed flags: build the variants, train, compare; the Markdown
    table on stdout, progress on stderr."""
    from fimpack.pipelines.embedded import embedded_sources
    from fimpack.pipelines.ingest import discover

    cfg, base = configs(args)
    sources = discover(base.input) if base.input else embedded_sources(base.max_repos)
    results = ablate(base.out, sources, base, cfg.variants.split(","), flavor=cfg.flavor,
                     steps=cfg.steps, batch_size=cfg.batch_size, seed=cfg.seed,
                     repeats=cfg.repeats, device=cfg.device, metric_files=cfg.metric_files,
                     progress=lambda line: print(f"fimpack ablate: {line}", file=sys.stderr,
                                                 flush=True))
    print(markdown(results))
    return 0
