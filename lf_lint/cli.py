"""The ``lf-lint`` command: a thin shell over the engine and the renderers.

Exit status: 0 no errors; 1 errors found (or warnings, with ``--fail-on warning``);
2 usage error or a file that cannot be read.
"""

from __future__ import annotations

import os
import sys

from . import __version__

EXIT_OK, EXIT_FOUND, EXIT_USAGE = 0, 1, 2
FORMATS = ("full", "concise", "json", "github", "sarif")
SUBCOMMANDS = ("check", "rule", "rules", "schema", "explain-log", "suggest", "gpus")


class UsageError(Exception):
    pass


def _codes(values: list[str] | None) -> list[str] | None:
    if values is None:
        return None
    return [c.strip().upper() for value in values for c in value.split(",") if c.strip()]


def _check_parser():
    import argparse

    parser = argparse.ArgumentParser(
        prog="lf-lint",
        description="Pre-flight checks for LLaMA-Factory training configs.",
        epilog="Other commands: `lf-lint rules`, `lf-lint rule CODE`, `lf-lint schema`, `lf-lint explain-log LOG`, "
        "`lf-lint suggest CONFIG --gpu NAME`, `lf-lint gpus`. "
        "Exit status: 0 clean, 1 problems found, 2 usage or I/O error.",
    )
    _add_check_options(parser)
    return parser


def _check_args(argv: list[str]):
    """The check command's arguments: read by quick_args.py in the plain cases, else by argparse (help, errors)."""
    from .quick_args import QuickParser

    args = QuickParser(_add_check_options).parse(argv)
    return args if args is not None else _check_parser().parse_args(argv)


def _add_check_options(parser) -> None:
    """The check command's options, added to an argparse.ArgumentParser (or a quick_args.QuickParser)."""
    parser.add_argument("files", nargs="*", metavar="FILE", help="config files (YAML or JSON) to check")
    parser.add_argument("--format", choices=FORMATS, help="output format (default: full)")
    parser.add_argument(
        "--select", action="append", metavar="CODES", help="only these rule codes or prefixes (comma-separated)"
    )
    parser.add_argument(
        "--ignore", action="append", metavar="CODES", help="skip these rule codes or prefixes (comma-separated)"
    )
    parser.add_argument(
        "--fail-on",
        choices=("error", "warning", "info"),
        help="lowest severity that makes the exit status 1 (default: error)",
    )
    parser.add_argument(
        "--llamafactory-version",
        metavar="X.Y.Z",
        help="LLaMA-Factory release to model (default: installed, else newest supported)",
    )
    parser.add_argument(
        "--transformers-version",
        metavar="X.Y.Z",
        help="transformers release to model (default: installed, else newest the LLaMA-Factory release allows)",
    )
    parser.add_argument(
        "--torch-version",
        metavar="X.Y.Z",
        help="torch release the training runs with (default: installed here; rules about torch need one)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a key as `llamafactory-cli train cfg.yaml KEY=VALUE` does (repeatable)",
    )
    parser.add_argument(
        "--command",
        choices=("train", "export", "chat", "api", "webchat"),
        help="the llamafactory-cli command the config is for (default: guessed from its keys)",
    )
    parser.add_argument(
        "--num-gpus",
        type=int,
        metavar="N",
        help="processes per node (default: from NPROC_PER_NODE / CUDA_VISIBLE_DEVICES, else 1)",
    )
    parser.add_argument("--nnodes", type=int, metavar="N", help="number of nodes (default: NNODES, else 1)")
    parser.add_argument(
        "--accelerate-config",
        metavar="FILE",
        help="the run starts with `accelerate launch --config_file FILE`: its processes, and FSDP or DeepSpeed",
    )
    parser.add_argument(
        "--env",
        action="append",
        metavar="NAME=VALUE",
        help="a variable of the launch environment, over this one's (repeatable): USE_MCA=1, USE_MEGATRON_BRIDGE=1, "
        "USE_RAY=1, DISABLE_VERSION_CHECK=1, WORLD_SIZE=16, ...",
    )
    parser.add_argument(
        "--workdir",
        metavar="DIR",
        help="directory training is launched from; relative paths start there (default: .)",
    )
    parser.add_argument(
        "--no-datasets", action="store_true", help="do not read dataset files (a schema-only lint; no step plan)"
    )
    parser.add_argument(
        "--num-examples",
        action="append",
        metavar="N|NAME=N",
        help="the training examples (N), or the rows of a dataset lf-lint cannot count offline (NAME=N); repeatable",
    )
    parser.add_argument("--explain", action="store_true", help="show how each number of the step plan is derived")
    parser.add_argument(
        "--exact",
        action="store_true",
        help="count the examples with the installed LLaMA-Factory's own data pipeline (offline, CPU; needs the tokenizer locally)",
    )
    parser.add_argument(
        "--exact-python",
        metavar="PYTHON",
        help="the Python that has LLaMA-Factory installed, for --exact (default: this one)",
    )
    parser.add_argument(
        "--gpu", metavar="NAME", help="the GPU the run targets (A100-80G, H100, RTX 4090, ...; see `lf-lint gpus`)"
    )
    parser.add_argument(
        "--gpu-memory", type=float, metavar="GIB", help="the GPU's memory in GiB, for a card lf-lint does not list"
    )
    parser.add_argument(
        "--params",
        type=float,
        metavar="N",
        help="model parameters (e.g. 7e9), when lf-lint cannot find the model's config.json",
    )
    parser.add_argument(
        "--no-cache", action="store_true", help="read every dataset file again instead of reusing earlier scans"
    )
    parser.add_argument(
        "--online",
        action="store_true",
        help="download what the config needs from the Hugging Face Hub into its cache first: data files of hub "
        "datasets (never loading scripts' code) and the model's config, tokenizer and processor files (no weights)",
    )
    parser.add_argument(
        "--config",
        metavar="PYPROJECT",
        help="read [tool.lf-lint] from this file instead of the nearest pyproject.toml",
    )
    parser.add_argument("--isolated", action="store_true", help="ignore any pyproject.toml")
    parser.add_argument(
        "--show-settings", action="store_true", help="print the resolved settings and versions, then exit"
    )
    parser.add_argument("--version", action="version", version=f"lf-lint {__version__}")


def _settings_for(args):
    from .settings import find_pyproject, load_settings

    if args.isolated:
        return load_settings(None)
    path = args.config if args.config is not None else find_pyproject(os.getcwd())
    if args.config is not None and not os.path.isfile(args.config):
        raise UsageError(f"--config {args.config}: no such file")
    return load_settings(path)


def _options(args, project):
    from .engine import LintOptions
    from .rules import BY_CODE
    from .switches import parse_assignments

    def pick(name, default=None):
        value = getattr(args, name, None)
        return value if value is not None else project.get(name, default)

    select = _codes(args.select) if args.select is not None else _codes(project.get("select"))
    ignore = _codes(args.ignore) if args.ignore is not None else _codes(project.get("ignore")) or []
    for selector in (select or []) + ignore:
        if selector != "ALL" and not any(code.startswith(selector) for code in BY_CODE):
            raise UsageError(f"unknown rule selector `{selector}` (see `lf-lint rules`)")
    command = pick("command")
    if command is not None and command not in ("train", "export", "chat", "api", "webchat"):
        raise UsageError(f"[tool.lf-lint] command must be train, export, chat, api or webchat, not {command!r}")
    workdir = pick("workdir")
    for name in ("num_gpus", "nnodes"):
        value = pick(name)
        if value is not None and value < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1")
    total, per_dataset = _num_examples(args.num_examples or [])
    # a GPU named on the command line brings its own memory, unless --gpu-memory is given there too
    memory = args.gpu_memory if args.gpu_memory is not None or args.gpu is not None else project.get("gpu_memory")
    gpu = _gpu(pick("gpu"), memory)
    params = pick("params")
    if params is not None and params <= 0:
        raise UsageError("--params must be a positive number of parameters (e.g. 7e9)")
    accelerate = None
    if pick("accelerate_config") is not None:
        from .launch import read_accelerate_config

        try:
            accelerate = read_accelerate_config(pick("accelerate_config"))
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
    try:
        env = parse_assignments([*(project.get("env") or []), *(getattr(args, "env", None) or [])])
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    options = LintOptions(
        accelerate=accelerate,
        env=dict(os.environ),  # read once for all the files of the run
        env_overrides=env,
        count_datasets=not args.no_datasets,
        use_cache=not args.no_cache,
        online=args.online,
        num_examples=total,
        num_examples_per_dataset=per_dataset,
        llamafactory_version=pick("llamafactory_version"),
        transformers_version=pick("transformers_version"),
        torch_version=pick("torch_version"),
        command=command,
        overrides=tuple(args.overrides),
        select=select,
        ignore=tuple(ignore),
        workdir=workdir,
        num_gpus=pick("num_gpus"),
        nnodes=pick("nnodes"),
        gpu=gpu,
        params=params,
        exact=args.exact or bool(args.exact_python),
        exact_python=args.exact_python,
        # the text formats show the estimate only for a target GPU (or --explain); JSON always carries it
        memory=(args.format or project.get("format", "full")) == "json" or args.explain,
    )
    try:
        resolution = options.resolution()
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    return options, resolution


def _gpu(name: str | None, memory: float | None):
    if name is None and memory is None:
        return None
    from .memory.gpus import GpuError, target_gpu

    try:
        return target_gpu(name, memory)
    except GpuError as exc:
        raise UsageError(str(exc)) from exc


def _num_examples(values: list[str]) -> tuple[int | None, dict]:
    total, per_dataset = None, {}
    for value in values:
        name, _, number = value.rpartition("=")
        if not number.strip().isdigit():
            raise UsageError(f"--num-examples {value}: expected N or NAME=N with a whole number")
        if name:
            per_dataset[name.strip()] = int(number)
        else:
            total = int(number)
    return total, per_dataset


def run_check(argv: list[str]) -> int:
    args = _check_args(argv)
    from .settings import SettingsError

    try:
        project = _settings_for(args)
        options, resolution = _options(args, project)
        fmt = args.format or project.get("format", "full")
        if fmt not in FORMATS:
            raise UsageError(f"[tool.lf-lint] format must be one of {', '.join(FORMATS)}, not {fmt!r}")
        fail_on = args.fail_on or project.get("fail_on", "error")
        if fail_on not in ("error", "warning", "info"):
            raise UsageError(f"[tool.lf-lint] fail-on must be error, warning or info, not {fail_on!r}")
    except (UsageError, SettingsError) as exc:
        print(f"lf-lint: error: {exc}", file=sys.stderr)
        return EXIT_USAGE

    if args.show_settings:
        return _show_settings(options, resolution, project, fmt, fail_on)
    if not args.files:
        _check_parser().print_usage(sys.stderr)
        print("lf-lint: error: no config files given", file=sys.stderr)
        return EXIT_USAGE

    from .diagnostics import Severity
    from .engine import lint_file
    from .output import RENDERERS

    results = [
        lint_file(path, options, resolution=resolution) for path in _expand(args.files, project.get("exclude") or [])
    ]
    sys.stdout.write(RENDERERS[fmt](results, explain=args.explain))
    if any(r.io_failure for r in results):
        return EXIT_USAGE
    threshold = Severity(fail_on).rank
    failed = any(d.severity.rank >= threshold for r in results for d in r.diagnostics)
    return EXIT_FOUND if failed else EXIT_OK


def _expand(files: list[str], exclude: list[str]) -> list[str]:
    import fnmatch

    return [f for f in files if not any(fnmatch.fnmatch(f, pattern) for pattern in exclude)]


def _show_settings(options, resolution, project, fmt: str, fail_on: str) -> int:
    launch = options.launch()
    lines = [
        f"pyproject: {project.path or '(none)'}",
        f"versions: {resolution.target.describe()} ({resolution.source})",
        *[f"  note: {note}" for note in resolution.notes],
        f"processes: {launch.describe()}",
        f"workdir: {options.workdir or os.getcwd()}",
        f"format: {fmt}",
        f"fail-on: {fail_on}",
        f"select: {','.join(options.select) if options.select else 'ALL'}",
        f"ignore: {','.join(options.ignore) or '(none)'}",
        f"command: {options.command or '(guessed from keys)'}",
    ]
    print("\n".join(lines))
    return EXIT_OK


def run_rules(argv: list[str]) -> int:
    from .rules import ALL_RULES

    if argv:
        print("usage: lf-lint rules", file=sys.stderr)
        return EXIT_USAGE
    width = max(len(r.name) for r in ALL_RULES)
    for rule in ALL_RULES:
        print(f"{rule.code}  {rule.name:<{width}}  {rule.severity.value:<7}  {rule.summary}")
    return EXIT_OK


def run_rule(argv: list[str]) -> int:
    from .rules import BY_CODE

    if len(argv) != 1:
        print("usage: lf-lint rule CODE", file=sys.stderr)
        return EXIT_USAGE
    wanted = argv[0].upper()
    rule = BY_CODE.get(wanted) or next((r for r in BY_CODE.values() if r.name == argv[0].lower()), None)
    if rule is None:
        print(f"lf-lint: error: no rule {argv[0]!r} (see `lf-lint rules`)", file=sys.stderr)
        return EXIT_USAGE
    sys.stdout.write(rule.documentation())
    return EXIT_OK


def run_schema(argv: list[str]) -> int:
    import argparse
    import json

    from .schema import json_schema
    from .versions import resolve

    parser = argparse.ArgumentParser(
        prog="lf-lint schema", description="Print the JSON Schema of a config for the given versions."
    )
    parser.add_argument("--llamafactory-version")
    parser.add_argument("--transformers-version")
    parser.add_argument("--command", choices=("train", "infer"), default="train")
    args = parser.parse_args(argv)
    try:
        target = resolve(args.llamafactory_version, args.transformers_version).target
    except ValueError as exc:
        print(f"lf-lint: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(json.dumps(json_schema(target, args.command), indent=1))
    return EXIT_OK


def run_explain_log(argv: list[str]) -> int:
    import argparse
    import json

    from .log_explanation import explain_startup_log, render_report, report_to_dict
    from .startup_log import LogError, decode_log, parse_startup_log

    parser = argparse.ArgumentParser(
        prog="lf-lint explain-log",
        description="Check the numbers of a Trainer start-up log (`***** Running training *****`, or any of its lines "
        "as pasted, with or without the logging prefix) against each other and say which transformers releases and "
        "hidden settings (processes, dataloader_drop_last) explain them; `trainer.py:LINE` prefixes name the release.",
        epilog="Exit status: 0 explained, 1 the numbers contradict each other, 2 too few start-up numbers to explain "
        "or an unreadable file.",
    )
    parser.add_argument("log", metavar="FILE", help="a training log, or - for standard input")
    parser.add_argument("--format", choices=("full", "json"), default="full")
    args = parser.parse_args(argv)
    try:
        if args.log == "-":
            stdin = getattr(sys.stdin, "buffer", None)  # bytes: a log in another encoding must not raise
            text, source = decode_log(stdin.read()) if stdin else sys.stdin.read(), "<stdin>"
        else:
            with open(args.log, "rb") as handle:
                text, source = decode_log(handle.read()), args.log
        report = explain_startup_log(parse_startup_log(text))
    except OSError as exc:
        print(f"lf-lint: error: {args.log}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    except LogError as exc:
        print(f"lf-lint: error: {source}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.format == "json":
        print(json.dumps({"path": source, **report_to_dict(report)}, indent=1))
    else:
        sys.stdout.write(render_report(report, source))
    return EXIT_FOUND if report.problems else EXIT_OK


def run_suggest(argv: list[str]) -> int:
    import json

    from .loading import load
    from .memory.suggest import render_suggestion, suggest_config
    from .settings import SettingsError

    parser = _check_parser()
    parser.prog = "lf-lint suggest"
    parser.description = ("Per-device batch x gradient accumulation choices for the same examples per optimizer step, "
                          "with estimated memory, total steps and time on the target GPU, best first.")  # fmt: skip
    parser.add_argument(
        "--target-batch", type=int, metavar="B", help="examples per optimizer step, all GPUs (default: the config's)"
    )
    args = parser.parse_args(argv)
    try:
        project = _settings_for(args)
        options, resolution = _options(args, project)
        if options.gpu is None:
            raise UsageError("suggest needs the target GPU: --gpu NAME or --gpu-memory GIB")
        if len(args.files) != 1:
            raise UsageError("suggest takes one config file")
        if args.target_batch is not None and args.target_batch < 1:
            raise UsageError("--target-batch must be at least 1")
    except (UsageError, SettingsError) as exc:
        print(f"lf-lint: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    path = args.files[0]
    config = load(path, resolution.target, overrides=list(options.overrides))
    if config.data is None:
        print(f"lf-lint: error: {path}: cannot read the config (run `lf-lint {path}` for the details)", file=sys.stderr)
        return EXIT_USAGE
    result = suggest_config(config, options, resolution, args.target_batch)
    if (args.format or "full") == "json":
        print(json.dumps(result.to_dict(), indent=1))
    else:
        sys.stdout.write(render_suggestion(result))
    return EXIT_OK if result.choices else EXIT_FOUND


def run_gpus(argv: list[str]) -> int:
    from .memory.gpus import all_gpus

    if argv:
        print("usage: lf-lint gpus", file=sys.stderr)
        return EXIT_USAGE
    for gpu in all_gpus():
        precision = "bf16" if gpu.bf16 else "fp16 only"
        print(f"{gpu.name:<16} {gpu.memory_gib:>6.1f} GiB  {precision:<9}  {gpu.tflops:>5g} TFLOPs  ({gpu.confidence})")
    return EXIT_OK


def console_main() -> int:
    """The ``lf-lint`` command (and ``python -m lf_lint``): ``main`` in a process of its own.

    A lint's objects nearly all live until the process ends (field tables, rules, the loaded config), so the cyclic
    garbage collector's passes over them are wasted work, about a tenth of a schema-only lint (benchmarks/lint_speed.py).
    Here a collection waits for 50,000 new objects instead of 700, which still bounds the garbage of a long count, and
    what is alive at the end is frozen, so that the interpreter's exit skips one last full pass over it. ``main``, as
    the tests and the API call it, leaves the caller's collector alone.
    """
    import gc

    gc.set_threshold(50_000, *gc.get_threshold()[1:])
    try:
        return main()
    finally:
        gc.freeze()


def main(argv: list[str] | None = None) -> int:
    try:
        return _dispatch(list(sys.argv[1:] if argv is None else argv))
    except BrokenPipeError:  # `lf-lint ... | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


def _dispatch(argv: list[str]) -> int:
    if argv and argv[0] in SUBCOMMANDS:
        command, rest = argv[0], argv[1:]
        handler = {"check": run_check, "rule": run_rule, "rules": run_rules, "schema": run_schema, "explain-log": run_explain_log,
                   "suggest": run_suggest, "gpus": run_gpus}[command]  # fmt: skip
        return handler(rest)
    return run_check(argv)


if __name__ == "__main__":
    sys.exit(console_main())
