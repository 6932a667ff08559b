"""The ``fimpack`` command line.

    fimpack build [--input DIR] --out OUT [beam options...]   build a corpus (Beam pipeline)
    fimpack dedup [--input DIR] --out OUT [beam options...]   ingest + dedup only: clusters
    fimpack inspect OUT [--example ID] [--json]                read examples back
    fimpack report OUT                                          HTML report of a build
    fimpack provenance OUT --token SHARD:INDEX                  a token's file, line, licence
    fimpack graph REPO_DIR [--json] [--png FILE]                dependency graph and order
    fimpack train --data OUT --flavor debug --steps N --out RUN train a small model on the shards
    fimpack eval RUN --data OUT                                 loss by kind, infilling, HumanEval
    fimpack infill RUN --prefix TEXT --suffix TEXT [--path P]   fill in the middle
    fimpack export RUN --out DIR                                a transformers Gemma folder
    torchrun --standalone --nproc_per_node 2 -m fimpack train ...  data-parallel training

Pipeline commands pass every option they don't know to Beam's PipelineOptions, e.g.
``--runner prism`` (Beam's Prism, built by ``make engines``; never downloaded) or
``--runner DataflowRunner --project P --region R --temp_location gs://...``.

A mistake in the inputs or options is one line on stderr and exit status 2; ``--debug`` (any
position) or FIMPACK_DEBUG=1 shows the traceback. Ctrl-C stops a build with its workers and
engines.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys

from fimpack.config import (DEDUP_GROUPS, INPUT, PRESET_FIELDS, PRESETS, STRATEGIES,
                            BuildConfig, build_config)
from fimpack.errors import UserError, user_message
from fimpack.options import add_options, from_args
from fimpack.train.config import AblateConfig, EvalConfig, InfillConfig, TrainConfig


def _setup_logging(verbose: bool) -> None:
    """fimpack's progress always shows; other libraries' logs (Beam's import-time notes
    about optional GCP clients, say) only with --verbose. Call before importing Beam."""
    logging.basicConfig(level=logging.INFO if verbose else logging.ERROR, force=True,
                        format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    # per-repository lines ("read REPO: N files") only with --verbose: a thousand
    # repositories would bury the summary
    logging.getLogger("fimpack").setLevel(logging.DEBUG if verbose else logging.INFO)


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Every option's help ends with its default (the config dataclasses' own values)."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if (default is None or default is False or default is argparse.SUPPRESS
                or not action.option_strings or "%(default)" in text
                or "default" in text.lower()):
            return text
        return f"{text} (default: %(default)s)".strip()


def _fill_help(parser: argparse.ArgumentParser) -> None:
    """A flag written without help still gets a line (its name in words) so that its
    default shows in --help."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _fill_help(sub)
        elif action.help is None and action.option_strings:
            action.help = action.dest.replace("_", " ")


def _build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="fimpack", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True, parser_class=_SubParser)
    _add_build(sub)
    _add_dedup(sub)
    _add_inspect(sub)
    _add_report(sub)
    _add_provenance(sub)
    _add_graph(sub)
    _add_train(sub)
    _add_eval(sub)
    _add_ablate(sub)
    _add_infill(sub)
    x = sub.add_parser("export", help="write a run as a transformers model folder "
                       "(AutoModelForCausalLM / AutoTokenizer load it; same ids and logits)")
    x.add_argument("run", help="run folder (ckpt.pt, tokenizer.model)")
    x.add_argument("--out", required=True, help="the folder to write")
    x.add_argument("--format", choices=["hf"], default="hf", help="transformers (only one yet)")
    _fill_help(ap)
    return ap


class _SubParser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)


def _add_build(sub) -> None:
    """Every flag but --preset, --input-layout and --verbose is a BuildConfig field's."""
    b = sub.add_parser("build", help="build a corpus: ingest, dedup, pack, FIM, tokenise, shard")
    _input_flags(b, add_options(b, BuildConfig, cli_default=dict.fromkeys(PRESET_FIELDS)))
    b.add_argument("--preset", choices=sorted(PRESETS),
                   help="CodeGemma's mixture: codegemma-7b = 0.8 code + FIM 0.8, codegemma-2b "
                   "= 1.0 code + FIM 0.9; repository-level long context: repo-16k/32k/64k = "
                   "--seq-len 16384/32768/65536 --partition repository")


def _add_dedup(sub) -> None:
    d = sub.add_parser("dedup", help="ingest and deduplicate only: OUT/dedup/clusters/")
    _input_flags(d, add_options(d, BuildConfig, DEDUP_GROUPS))


def _add_inspect(sub) -> None:
    i = sub.add_parser("inspect", help="show a build's examples")
    i.add_argument("out")
    i.add_argument("--example", help="example id (e.g. 'repo:00000')")
    i.add_argument("--json", action="store_true", help="one JSON object per line, per example")
    i.add_argument("--limit", type=int, default=3, help="examples to render (0 = all)")
    i.add_argument("--source", choices=("code", "nl"), help="only examples of this source")
    i.add_argument("--min-files", type=int, default=0, help="only examples with at least this "
                   "many files (multi-file packing)")
    i.add_argument("--fim", action="store_true", help="only examples with a FIM-formatted "
                   "file")
    i.add_argument("--html", metavar="FILE", help="write the example (--example, else the "
                   "first) as an HTML page: FIM parts coloured, file boundaries, provenance")


def _add_provenance(sub) -> None:
    from fimpack.records import PROVENANCE_FIELDS as FIELDS
    v = sub.add_parser("provenance", help="where a token of a shard came from: example, file, "
                       "line, column, licence, origin (one JSON object)",
                       epilog="fields:\n" + "\n".join(f"  {k:<12} {v}" for k, v in
                                                     FIELDS.items()),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    v.add_argument("out")
    v.add_argument("--token", required=True, metavar="SHARD:INDEX",
                   help="e.g. train-00000-of-00001:1234 (index into the shard's .bin)")


def _add_report(sub) -> None:
    r = sub.add_parser("report", help="a self-contained HTML report of a build")
    r.add_argument("out")
    r.add_argument("--html", help="where to write it (default OUT/report.html)")


def _add_graph(sub) -> None:
    gp = sub.add_parser("graph", help="a repository's dependency graph and file order")
    gp.add_argument("repo_dir")
    gp.add_argument("--json", action="store_true", help="nodes, edges, order, test_links")
    gp.add_argument("--png", metavar="FILE", help="draw the graph (needs Graphviz's dot)")
    gp.add_argument("--strategy", choices=STRATEGIES, default=STRATEGIES[0])


def _add_train(sub) -> None:
    t = sub.add_parser("train", help="train a small Gemma-style model on a build's shards")
    add_options(t, TrainConfig)


def _add_eval(sub) -> None:
    e = sub.add_parser("eval", help="evaluate a run: held-out loss by kind of text, infilling "
                       "exact match, HumanEval infilling pass@1 (a table; JSON in a file)")
    add_options(e, EvalConfig)


def _add_ablate(sub) -> None:
    """The builds' input flags (BuildConfig's input group), then AblateConfig's."""
    a = sub.add_parser("ablate", help="the paper's questions on your corpus: build variants "
                       "(FIM rate, code fraction, file order), train each, compare held out")
    _input_flags(a, add_options(a, BuildConfig, (INPUT,)))
    add_options(a, AblateConfig)


def _add_infill(sub) -> None:
    f = sub.add_parser("infill", help="fill in the middle with a trained run (greedy)")
    add_options(f, InfillConfig)


def _input_flags(p: argparse.ArgumentParser, sections: dict) -> None:
    """The input flags that are no BuildConfig field: how --input is read (input_sources),
    and logging."""
    g = sections[INPUT]
    g.add_argument("--input-layout", choices=("auto", "repos", "repo", "rows"), default="auto",
                   help="repos: --input holds repositories; repo: it is one; rows: row files; "
                   "auto: one repository when it has .git or a package manifest at its root")
    g.add_argument("-v", "--verbose", action="store_true", help="Beam's own logs too")


def input_sources(path: str | None, layout: str, max_repos: int) -> list:
    """The RepoSources of ``--input`` (or the embedded default), saying which layout was used
    when it was guessed; an input with nothing to read is a UserError."""
    from fimpack.pipelines.embedded import embedded_sources
    from fimpack.pipelines.sources import discover_input, repository_marker

    if not path:
        return embedded_sources(max_repos)
    try:
        sources, used = discover_input(path, layout)
    except ValueError as err:  # a layout the input cannot have
        raise UserError(str(err)) from err
    if layout == "auto" and used == "repo":
        marker = repository_marker(path) if os.path.isdir(path) else "an archive"
        print(f"fimpack: {path} is one repository ({marker}); building it as one "
              "(--input-layout repos treats its subfolders as repositories)", file=sys.stderr)
    if not sources:
        raise UserError(f"--input {path} holds nothing to read: no subfolders, .tar.gz/.zip "
                        "archives or .jsonl/.parquet row files (for a single repository pass "
                        "--input-layout repo)")
    return sources


def cmd_build(args, beam_args: list[str], dedup_only: bool = False) -> int:
    from fimpack.preflight import check_build_args

    check_build_args(args, dedup_only)
    _setup_logging(args.verbose)
    from fimpack.pipelines import build
    from fimpack.pipelines.manifest import summary

    cfg = build_config(args, dedup_only)
    from fimpack.pipelines.runners import sources_for_runner  # remote runners: paths checked
    sources = sources_for_runner(
        beam_args, args.input, args.out, getattr(args, "benchmark", None),
        lambda: input_sources(args.input, args.input_layout, args.max_repos),
        getattr(args, "dedup_against", None))
    manifest = build.run(cfg, sources, beam_args)
    print(summary(manifest))
    return 0


class StepBar:
    """The trainer's progress lines as one tqdm bar (steps, rate, ETA; the latest loss, lr
    and throughput beside it). Every line also stays in RUN/log.jsonl."""

    def __init__(self, steps: int):
        self.steps = steps

    def __enter__(self):
        from tqdm import tqdm

        # redirected to a log, a bar drawn every 15 s instead of every step
        self.bar = tqdm(total=self.steps, unit="step", desc="train", dynamic_ncols=True,
                        file=sys.stderr, mininterval=0.5 if sys.stderr.isatty() else 15)
        return self

    def __exit__(self, *exc):
        self.bar.close()

    def __call__(self, line: str) -> None:
        # the trainer's line: "step N/TOTAL loss L lr R T tok/s [mfu M]"
        head, _, rest = line.partition(" ")
        done = rest.split(" ", 1)[0].split("/")[0] if head == "step" else ""
        if done.isdigit():
            self.bar.update(int(done) - self.bar.n)
            self.bar.set_postfix_str(rest.split(" ", 1)[1] if " " in rest else "",
                                     refresh=False)
        else:
            self.bar.write(line, file=sys.stderr)


def cmd_train(args) -> int:
    from fimpack.train.trainer import train

    _setup_logging(False)
    cfg = from_args(TrainConfig, args)
    options = {k: v for k, v in vars(cfg).items()
               if k not in ("data_dir", "flavor", "steps", "out_dir")}
    with StepBar(cfg.steps) as bar:
        result = train(cfg.data_dir, cfg.flavor, cfg.steps, cfg.out_dir, **options,
                       progress=bar)
    if result["rank"] == 0:  # under torchrun every process returns; one summary is enough
        print(json.dumps(result))
    return 0


def cmd_eval(args) -> int:
    from fimpack.train.evaluate import main as evaluate_main

    _setup_logging(False)
    return evaluate_main(**vars(from_args(EvalConfig, args)))


def cmd_infill(args) -> int:
    from fimpack.train.infill import main as infill_main

    return infill_main(**vars(from_args(InfillConfig, args)))


def main(argv: list[str] | None = None) -> int:
    """Run one command; a UserError (also one raised in a Beam worker) is one line on stderr
    and its exit status, a broken pipe (``| head``) ends quietly, Ctrl-C is one line and 130.
    ``--debug`` anywhere in ARGV, or FIMPACK_DEBUG=1, lets the traceback through."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("FIMPACK_DEBUG") == "1"
    argv = [a for a in argv if a != "--debug"]
    try:
        return _dispatch(argv)
    except BrokenPipeError:
        # the reader went away (``fimpack inspect OUT | head``): not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        if debug:
            raise
        print("\nfimpack: interrupted; nothing was written as complete", file=sys.stderr)
        return 130
    except Exception as err:
        message = user_message(err)
        if message is None or debug:
            raise
        print(f"fimpack: error: {message}", file=sys.stderr)
        return getattr(err, "exit_code", 2)


def _dispatch(argv: list[str]) -> int:
    parser = _build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.command in ("build", "dedup"):
        return cmd_build(args, rest, dedup_only=args.command == "dedup")
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "inspect":
        from fimpack import inspect
        return inspect.main(args.out, args.example, args.json, args.limit, args.html,
                            args.source, args.min_files, args.fim)
    if args.command == "train":
        return cmd_train(args)
    if args.command == "eval":
        return cmd_eval(args)
    if args.command == "infill":
        return cmd_infill(args)
    if args.command == "graph":
        _setup_logging(False)
        from fimpack import graph_view
        return graph_view.main(args.repo_dir, args.strategy, args.json, args.png)
    if args.command == "export":
        from fimpack.train.export import main as export_main
        return export_main(args.run, args.out)
    if args.command == "ablate":
        _setup_logging(args.verbose)
        from fimpack.ablate import main as ablate_main
        return ablate_main(args)
    if args.command == "provenance":
        from fimpack import provenance
        return provenance.main(args.out, args.token)
    if args.command == "report":
        from fimpack import report
        print(report.main(args.out, args.html))
        return 0
    parser.error(f"unknown command {args.command}")
    return 2


ISOLATED = {"build", "dedup", "ablate"}  # commands that start worker and engine processes
CHILD_ENV = "FIMPACK_SUPERVISED"


def console_main() -> int:
    """The ``fimpack`` executable. A build runs in a child process in its own session, so a
    terminal's Ctrl-C reaches only this supervisor, which stops the child's whole process
    group (driver, Beam's SDK workers, a Prism engine) at once and says so in one line,
    instead of every worker printing its own traceback while the driver waits on them."""
    argv = sys.argv[1:]
    command = next((a for a in argv if not a.startswith("-")), None)
    supervisor = os.environ.get(CHILD_ENV)
    if supervisor:
        _die_with(int(supervisor) if supervisor.isdigit() else None)
    if command not in ISOLATED or supervisor or "-h" in argv or "--help" in argv:
        return main(argv)
    try:  # the cheap checks first, so a mistake never starts a process
        parser = _build_parser()
        args, _ = parser.parse_known_args([a for a in argv if a != "--debug"])
        if command in ("build", "dedup"):
            from fimpack.preflight import check_build_args
            check_build_args(args, command == "dedup")
    except UserError as err:
        print(f"fimpack: error: {err.message}", file=sys.stderr)
        return err.exit_code
    from fimpack.pipelines.worker import malloc_arenas

    # the driver, Prism's and FnApiRunner's workers inherit the arena cap (runners.py)
    child = subprocess.Popen([sys.executable, "-m", "fimpack", *argv],
                             env={**os.environ, CHILD_ENV: str(os.getpid()),
                                  "MALLOC_ARENA_MAX": malloc_arenas()},
                             start_new_session=True)
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` or a timeout: the same clean stop
    try:
        rc = child.wait()
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C: the stop goes on
        _stop_group(child)
        out = next((argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--out"), "OUT")
        print(f"\nfimpack: interrupted; the {command} was stopped with its workers, and "
              f"nothing in {out} was written as complete (no manifest.json)", file=sys.stderr)
        if _remote_runner(argv):
            print("fimpack: a job already submitted to a remote runner keeps running there: "
                  "cancel it with the runner's own tools (e.g. gcloud dataflow jobs cancel "
                  "JOB_ID)", file=sys.stderr)
        return 130
    if rc < 0:  # killed by a signal (the kernel's out-of-memory killer, say)
        print(f"fimpack: the {command} process was killed by signal {-rc} "
              f"({signal.Signals(-rc).name}); nothing was written as complete",
              file=sys.stderr)
        return 128 - rc
    return rc


def _remote_runner(argv: list[str]) -> bool:
    """Does ARGV name a runner whose jobs run outside this process tree (Dataflow, ...)?"""
    runner = next((a.split("=", 1)[1] if "=" in a else (argv[i + 1] if i + 1 < len(argv)
                                                         else "")
                   for i, a in enumerate(argv) if a.split("=", 1)[0] == "--runner"), "")
    return runner.lower() not in ("", "prism", "prismrunner", "directrunner",
                                  "fnapirunner")


def _die_with(supervisor: int | None) -> None:
    """In the supervised child: when the supervisor is gone (killed with SIGKILL, say), stop
    this process group too (driver, workers, engines), so nothing runs on unsupervised."""
    import threading
    import time

    if supervisor is None or os.getsid(0) != os.getpid():
        return  # not the session the supervisor started: never signal anyone else's group

    def watch():
        while os.getppid() == supervisor:
            time.sleep(0.5)
        os.killpg(os.getpgid(0), signal.SIGKILL)

    threading.Thread(target=watch, name="fimpack-supervisor-watch", daemon=True).start()


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _stop_group(child: subprocess.Popen, grace: float = 3.0) -> None:
    """SIGTERM to the child's process group, SIGKILL to what is left after GRACE seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(child.pid, sig)
        except ProcessLookupError:
            return
        try:
            child.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            continue
        if sig == signal.SIGTERM:  # the driver is gone; its workers may not be
            try:
                os.killpg(child.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            return
