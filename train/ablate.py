"""The ablation's training-side helpers and report (``fimpack ablate`` runs in
``fimpack.ablate``, the command layer, which builds the variants): whether a run finished, its
loss curve, the metrics compared per question with their intervals and paired differences, and
``ablation.json``/``.md``/``.html`` with the plots."""
from __future__ import annotations

import base64
import html
import json
import os

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


def trained(run_dir: str, steps: int) -> bool:
    """Whether RUN_DIR holds a finished run of STEPS steps (its log's last step)."""
    try:
        with open(os.path.join(run_dir, "log.jsonl")) as f:
            last = [json.loads(line) for line in f if line.strip()][-1]["step"]
        return last == steps - 1 and os.path.exists(os.path.join(run_dir, "ckpt.pt"))
    except (OSError, IndexError, ValueError):
        return False


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import torch
    return "cuda" if torch.cuda.is_available() else "cpu"


def curve(run_dir: str) -> list[float]:
    with open(os.path.join(run_dir, "log.jsonl")) as f:
        return [json.loads(line)["loss"] for line in f]


def combine(runs: list[dict]) -> dict:
    """Per metric: the mean over seeds, the first seed's interval, the spread over seeds."""
    out = {}
    for label, path in METRICS:
        found = [_dig(r["eval"], path) for r in runs]
        values = [f.get("nats_per_token") for f in found if f.get("nats_per_token") is not None]
        out[label] = {"mean": sum(values) / len(values) if values else None,
                      "ci95": found[0].get("ci95") if found else None,
                      "spread": [min(values), max(values)] if len(values) > 1 else None}
    return out


def differences(rows: dict) -> None:
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
