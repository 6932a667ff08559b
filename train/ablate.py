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

import base64
import html
import json
import os
from dataclasses import replace

from fimpack.config import BuildConfig
from fimpack.pipelines.build import run as run_build

QUESTIONS = {
    "fim": {"fim-0.8": {"fim_rate": 0.8}, "fim-0.0": {"fim_rate": 0.0}},
    "mixture": {"code-0.8": {"code_fraction": 0.8}, "code-1.0": {"code_fraction": 1.0}},
    "order": {"codegemma": {"order": "codegemma"}, "deepseek": {"order": "deepseek"},
              "random": {"order": "random"}},
}
BASE = {"fim_rate": 0.8, "code_fraction": 0.8, "order": "codegemma"}
# (label, path into an evaluation result): the numbers each table shows
METRICS = [
    ("code loss", ("loss", "code")),
    ("NL loss", ("loss", "nl")),
    ("infill loss (PSM, uniform)", ("heldout", "infilling_loss", "uniform_psm")),
    ("infill loss (SPM, syntax)", ("heldout", "infilling_loss", "syntax_spm")),
    ("context gain", ("heldout", "repository_context", "gain")),
]


def _dig(result: dict, path: tuple) -> dict:
    for key in path:
        result = result.get(key, {}) if isinstance(result, dict) else {}
    return result


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
           metric_files: int = 60, progress=print) -> dict:
    """Build, train and evaluate every variant of QUESTIONS; the ``ablation.json`` dict."""
    from fimpack.train.evaluate import evaluate
    from fimpack.train.trainer import train

    chosen = plan(questions)
    os.makedirs(out, exist_ok=True)
    reference = os.path.join(out, "builds", "reference")
    if not os.path.exists(os.path.join(reference, "manifest.json")):
        progress(f"reference build (tokenizer, held-out repositories): {reference}")
        run_build(replace(base, out=reference, code_fraction=None), sources, [])
    tokenizer = os.path.join(reference, "tokenizer.model")
    results: dict = {"settings": {"flavor": flavor, "steps": steps, "batch_size": batch_size,
                                  "seq_len": base.seq_len, "seed": seed, "repeats": repeats,
                                  "device": device, "reference": reference},
                     "questions": {}}
    for question, variants in chosen.items():
        rows = {}
        for name, settings in variants.items():
            key = variant_key(settings)
            data = os.path.join(out, "builds", key)
            if not os.path.exists(os.path.join(data, "manifest.json")):
                progress(f"{question}/{name}: build {key}")
                run_build(replace(base, out=data, tokenizer=tokenizer, **{**BASE, **settings}),
                          sources, [])
            runs = []
            for r in range(repeats):
                run_dir = os.path.join(out, "runs", f"{key}-s{seed + r}")
                if not _trained(run_dir, steps):  # an interrupted ablation resumes here
                    progress(f"{question}/{name}: train {flavor} {steps} steps, seed {seed + r}")
                    train(data, flavor, steps, run_dir, batch_size=batch_size, seed=seed + r,
                          device=device, resume=True)
                if not os.path.exists(os.path.join(run_dir, "eval.json")):
                    progress(f"{question}/{name}: evaluate seed {seed + r}")
                    result = evaluate(run_dir, reference, infill_tasks=0,
                                      humaneval_tasks_per_kind=0, metric_files=metric_files,
                                      seed=seed, device=_device(device))
                    with open(os.path.join(run_dir, "eval.json"), "w") as f:
                        json.dump(result, f, indent=1)
                with open(os.path.join(run_dir, "eval.json")) as f:
                    runs.append({"run": run_dir, "eval": json.load(f),
                                 "curve": _curve(run_dir)})
            rows[name] = {"build": data, "settings": {**BASE, **settings}, "runs": runs,
                          "metrics": _combine(runs)}
        _differences(rows)
        results["questions"][question] = rows
    write_reports(out, results)
    return results


def _trained(run_dir: str, steps: int) -> bool:
    """Whether RUN_DIR holds a finished run of STEPS steps (its log's last step)."""
    try:
        with open(os.path.join(run_dir, "log.jsonl")) as f:
            last = [json.loads(line) for line in f if line.strip()][-1]["step"]
        return last == steps - 1 and os.path.exists(os.path.join(run_dir, "ckpt.pt"))
    except (OSError, IndexError, ValueError):
        return False


def _device(device: str) -> str:
    if device != "auto":
        return device
    import torch
    return "cuda" if torch.cuda.is_available() else "cpu"


def _curve(run_dir: str) -> list[float]:
    with open(os.path.join(run_dir, "log.jsonl")) as f:
        return [json.loads(line)["loss"] for line in f]


def _combine(runs: list[dict]) -> dict:
    """Per metric: the mean over seeds, the first seed's interval, the spread over seeds."""
    out = {}
    for label, path in METRICS:
        found = [_dig(r["eval"], path) for r in runs]
        values = [f.get("nats_per_token") for f in found if f.get("nats_per_token") is not None]
        out[label] = {"mean": sum(values) / len(values) if values else None,
                      "ci95": found[0].get("ci95") if found else None,
                      "spread": [min(values), max(values)] if len(values) > 1 else None}
    return out


def _differences(rows: dict) -> None:
    """Each variant minus the question's first, paired over the same held-out files (first
    seeds): ``differences[label]`` with its interval; None where a metric has no files."""
    from fimpack.train.heldout import paired_difference

    names = list(rows)
    base = rows[names[0]]["runs"][0]["eval"]
    for name in names:
        own = rows[name]["runs"][0]["eval"]
        rows[name]["differences"] = {
            label: paired_difference(_dig(base, path), _dig(own, path)) for label, path in
            METRICS}


def _fmt(m: dict) -> str:
    """One seed: the value [its 95% interval over files]; several: the mean over seeds and
    their range (the spread between seeds is the noise a difference must beat)."""
    if m["mean"] is None:
        return "n/a"
    if m.get("spread"):
        return f"{m['mean']:.3f} (seeds {m['spread'][0]:.3f} to {m['spread'][1]:.3f})"
    text = f"{m['mean']:.3f}"
    if m.get("ci95") and m["ci95"][0] is not None:
        text += f" [{m['ci95'][0]:.3f}, {m['ci95'][1]:.3f}]"
    return text


def markdown(results: dict) -> str:
    s = results["settings"]
    lines = [f"# fimpack ablation: {s['flavor']}, {s['steps']} steps x {s['batch_size']} rows "
             f"of {s['seq_len']} tokens, {s['repeats']} seed(s)", "",
             "Nats per token on the reference build's held-out repositories; 95% bootstrap "
             "intervals over files in brackets. Context gain = loss alone - loss with the "
             "file's imports before it (higher is better).", ""]
    for question, rows in results["questions"].items():
        lines += [f"## {question}", "", "| variant | " + " | ".join(m for m, _ in METRICS)
                  + " |", "|---" * (len(METRICS) + 1) + "|"]
        for name, row in rows.items():
            lines.append(f"| {name} | " + " | ".join(_fmt(row["metrics"][m]) for m, _ in METRICS)
                         + " |")
        first = next(iter(rows))
        lines += ["", f"Difference from {first}, paired over the same files (first seed; the "
                  "interval is over files, not seeds):", "",
                  "| variant | " + " | ".join(m for m, _ in METRICS) + " |",
                  "|---" * (len(METRICS) + 1) + "|"]
        for name, row in list(rows.items())[1:]:
            lines.append(f"| {name} | " + " | ".join(
                _fmt({"mean": d["nats_per_token"], "ci95": d["ci95"]}) if d else "n/a"
                for d in (row["differences"][m] for m, _ in METRICS)) + " |")
        lines.append("")
    return "\n".join(lines)


def plots(out: str, results: dict) -> list[str]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    questions = results["questions"]
    paths = [os.path.join(out, "loss_curves.png"), os.path.join(out, "metrics.png")]
    fig, axes = plt.subplots(1, len(questions), figsize=(5 * len(questions), 3.6), squeeze=False)
    for ax, (question, rows) in zip(axes[0], questions.items()):
        for name, row in rows.items():
            ax.plot(row["runs"][0]["curve"], label=name)
        ax.set(title=f"{question}: training loss", xlabel="step", ylabel="nats per token")
        ax.legend()
    fig.tight_layout()
    fig.savefig(paths[0], dpi=110)
    plt.close(fig)
    fig, axes = plt.subplots(len(questions), len(METRICS), squeeze=False,
                             figsize=(3.2 * len(METRICS), 2.8 * len(questions)))
    for r, (question, rows) in enumerate(questions.items()):
        for c, (label, _) in enumerate(METRICS):
            ax = axes[r][c]
            names = [n for n in rows if rows[n]["metrics"][label]["mean"] is not None]
            means = [rows[n]["metrics"][label]["mean"] for n in names]
            # bars: the range over seeds when there are several, else the interval over files
            cis = [rows[n]["metrics"][label]["spread"] or rows[n]["metrics"][label]["ci95"]
                   or [None, None] for n in names]
            err = [[max(0.0, m - (ci[0] if ci[0] is not None else m)) for m, ci in
                    zip(means, cis)],
                   [max(0.0, (ci[1] if ci[1] is not None else m) - m) for m, ci in
                    zip(means, cis)]]
            if names:  # points with their intervals: the scale shows the differences
                ax.errorbar(range(len(names)), means, yerr=err, fmt="o", capsize=4)
                ax.set_xticks(range(len(names)), names)
                ax.set_xlim(-0.5, len(names) - 0.5)
            else:
                ax.text(0.5, 0.5, "no held-out data", ha="center", transform=ax.transAxes)
            ax.set_title(f"{question}: {label}", fontsize=9)
            ax.set_ylabel("nats per token", fontsize=8)
            ax.tick_params(labelsize=8)
    fig.tight_layout()
    fig.savefig(paths[1], dpi=110)
    plt.close(fig)
    return paths


def write_reports(out: str, results: dict) -> None:
    with open(os.path.join(out, "ablation.json"), "w") as f:
        json.dump(results, f, indent=1)
    table = markdown(results)
    with open(os.path.join(out, "ablation.md"), "w") as f:
        f.write(table + "\n")
    images = "".join(
        f'<p><img alt="{os.path.basename(p)}" src="data:image/png;base64,'
        f'{base64.b64encode(open(p, "rb").read()).decode()}"></p>' for p in plots(out, results))
    s = results["settings"]
    body = [f"<h1>fimpack ablation</h1><p>{s['flavor']}, {s['steps']} steps &times; "
            f"{s['batch_size']} rows of {s['seq_len']} tokens, {s['repeats']} seed(s). Nats per "
            "token on the reference build's held-out repositories, 95% bootstrap intervals "
            "over files in brackets; context gain: higher is better.</p>"]
    for question, rows in results["questions"].items():
        head = "".join(f"<th>{html.escape(m)}</th>" for m, _ in METRICS)
        cells = "".join(f"<tr><td>{html.escape(name)}</td>" + "".join(
            f"<td>{html.escape(_fmt(row['metrics'][m]))}</td>" for m, _ in METRICS) + "</tr>"
            for name, row in rows.items())
        body.append(f"<h2>{html.escape(question)}</h2><table border=1 cellpadding=4 "
                    f"style='border-collapse:collapse'><tr><th>variant</th>{head}</tr>"
                    f"{cells}</table>")
    with open(os.path.join(out, "ablation.html"), "w") as f:
        f.write("<!doctype html><meta charset=utf-8><title>fimpack ablation</title>"
                "<body style='font-family:sans-serif;max-width:1200px'>" + "".join(body)
                + images + "</body>")


def main(args) -> int:
    """``fimpack ablate``'s parsed flags: build the variants, train, compare; the Markdown
    table on stdout, progress on stderr."""
    import sys

    from fimpack.config import Limits
    from fimpack.pipelines.embedded import embedded_sources
    from fimpack.pipelines.ingest import discover

    sources = discover(args.input) if args.input else embedded_sources(args.max_repos)
    base = BuildConfig(out=args.out, input=args.input, max_repos=args.max_repos,
                       workers=args.workers, seed=args.seed, seq_len=args.seq_len,
                       vocab_size=args.vocab_size, val_fraction=args.val_fraction,
                       tokenizer_sample_chars=4_000_000, allow_unaudited=args.allow_unaudited,
                       licenses=args.licenses, exclude_repos=args.exclude_repos,
                       limits=Limits(max_file_bytes=args.max_file_bytes,
                                     max_files_per_repo=args.max_files_per_repo))
    results = ablate(args.out, sources, base, args.variants.split(","), flavor=args.flavor,
                     steps=args.steps, batch_size=args.batch_size, seed=args.seed,
                     repeats=args.repeats, device=args.device, metric_files=args.metric_files,
                     progress=lambda line: print(f"fimpack ablate: {line}", file=sys.stderr,
                                                 flush=True))
    print(markdown(results))
    return 0
