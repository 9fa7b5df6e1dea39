"""Lint one config: load it, build the facts, run the rules, turn findings into diagnostics."""

from __future__ import annotations

import os

from . import kinds, suppression
from .diagnostics import Diagnostic, Severity
from .installed_release import installed_arguments
from .launch import Launch, resolve_launch
from .loading import MAX_FILE_BYTES, START, LoadedConfig, load
from .records import Record
from .rules import ALL_RULES, Context, Finding, Rule
from .rules.reading import INTERNAL_ERROR
from .switches import LaunchEnv
from .versions import Resolution, Target, installed_version, resolve


class LintOptions(Record):
    llamafactory_version: str | None = None
    transformers_version: str | None = None
    torch_version: str | None = None  # the torch the run uses (default: the one installed here, else unknown)
    command: str | None = None  # force "train", "export" or "chat"
    overrides: tuple[str, ...] = ()
    select: list[str] | None = None
    ignore: tuple[str, ...] = ()
    workdir: str | os.PathLike | None = None  # the folder the run is launched from (default: the current one)
    num_gpus: int | None = None
    nnodes: int | None = None
    env: dict | None = None  # the launch environment (default: this process's)
    env_overrides: dict = {}  # variables set for the launch (--env, [tool.lf-lint] env) over ``env``
    max_bytes: int = MAX_FILE_BYTES
    count_datasets: bool = True  # False: a schema-only lint (no dataset file is read)
    use_cache: bool = True  # reuse dataset scans of unchanged files (dataset/cache.py)
    num_examples: int | None = None  # the training examples, when given instead of counted
    num_examples_per_dataset: dict = {}  # rows of named datasets that cannot be counted (hub datasets)
    exact: bool = False  # --exact: ask the installed LLaMA-Factory's data pipeline for the counts
    exact_python: str | None = None  # the Python that has LLaMA-Factory (default: this one)
    gpu: object = None  # memory.gpus.Gpu: the card the run targets (--gpu / --gpu-memory)
    memory: bool = True  # estimate memory even without a GPU (the JSON `memory` object, the API)
    params: float | None = None  # model parameters, when lf-lint cannot know the model's shape
    online: bool = False  # --online: fill the Hugging Face cache with what the config needs (online.py)
    accelerate: object = None  # launch.AccelerateConfig: `accelerate launch --config_file` (--accelerate-config)

    def resolution(self) -> Resolution:
        resolution = resolve(self.llamafactory_version, self.transformers_version)
        installed = self.installed(resolution.target)
        if not installed:
            return resolution
        from .schema import field_table

        table = field_table(resolution.target, "train", "default", installed)
        notes = tuple(source.note(table) for source in installed)
        return resolution._replace(notes=resolution.notes + notes)

    def installed(self, target: Target) -> tuple:
        """Installed releases newer than the modelled ones: their arguments, read from source (installed_release.py)."""
        return installed_arguments(target, self.llamafactory_version, self.transformers_version, self.use_cache)

    def launch_env(self) -> LaunchEnv:
        return LaunchEnv.of(self.env_overrides, self.env)

    def launch(self) -> Launch:
        return resolve_launch(self.num_gpus, self.nnodes, dict(self.launch_env().variables), accelerate=self.accelerate)

    def enabled(self, rule: Rule) -> bool:
        if self.select is not None and not any(suppression.matches(rule.code, s) for s in self.select):
            return False
        return not any(suppression.matches(rule.code, s) for s in self.ignore)


class FileResult(Record):
    path: str
    resolution: Resolution
    kind: str
    command: str
    diagnostics: list[Diagnostic]
    lines: list[str]
    io_failure: bool = False
    plan: object = None  # plan.Plan, when the datasets were checked (or --num-examples given)
    memory: object = None  # memory.report.MemoryReport, for train configs

    @property
    def errors(self) -> int:
        return sum(d.severity is Severity.ERROR for d in self.diagnostics)

    def counts(self) -> str:
        """The diagnostics by severity, e.g. "2 errors, 1 warning, 0 notes"."""
        from .reprs import plural

        words = ((Severity.ERROR, "error"), (Severity.WARNING, "warning"), (Severity.INFO, "note"))
        return ", ".join(plural(sum(d.severity is s for d in self.diagnostics), word) for s, word in words)

    def __repr__(self) -> str:
        from .reprs import bracket, clip_path

        if self.io_failure:
            return bracket("LintResult", f"{clip_path(self.path, 60)}: cannot be read")
        kind = "" if self.kind == "train" else f" ({self.kind} config)"
        return bracket("LintResult", f"{clip_path(self.path, 60)}{kind}: {self.counts()}")

    def _repr_html_(self) -> str:
        from .reprs import table

        rows = [(f"{d.line}:{d.column}", d.code, d.severity.value, d.message, d.fix) for d in self.diagnostics]
        facts = [
            f"{name}: {fact.problem or repr(fact)}"
            for name, fact in (("step plan", self.plan), ("memory", self.memory))
            if fact is not None
        ]
        caption = f"{self.path}: {self.counts()} ({self.resolution.target.describe()})"
        header = ("line", "code", "severity", "message", "fix")
        return table(caption, rows or [("", "", "", "no problems found", "")], header, facts)


def classify(config: LoadedConfig, forced: str | None) -> tuple[str, str]:
    """(kind, command) of a loaded file; ``forced`` is the --command option."""
    if forced:
        kind = {"train": "train", "export": "export", "chat": "chat", "api": "chat", "webchat": "chat"}[forced]
        return kind, kinds.command_for(kind)
    if config.data is not None:
        kind = kinds.classify(config.data)
    elif any(p.kind in ("io", "encoding", "too-large", "empty") for p in config.problems):
        kind = "train"  # nothing to classify by; the user named this file
    else:
        kind = "train" if kinds.looks_like_lf_config(config.text) else "other"
    return kind, kinds.command_for(kind)


def lint_file(
    path: str | os.PathLike, options: LintOptions, *, text: str | None = None, resolution: Resolution | None = None
) -> FileResult:
    resolution = resolution or options.resolution()
    config = load(path, resolution.target, text=text, overrides=list(options.overrides), max_bytes=options.max_bytes)
    return lint_config(config, options, resolution)


def make_context(config: LoadedConfig, options: LintOptions, resolution: Resolution) -> Context:
    """The facts about one loaded config (computed when a rule or a command first asks)."""
    kind, command = classify(config, options.command)
    workdir = options.workdir or os.getcwd()
    ctx = Context(
        config, resolution.target, command if command != "other" else "train", kind, workdir, options.launch()
    )
    ctx.installed = options.installed(resolution.target)
    ctx.options.update(
        launch_env=options.launch_env(),
        transformers_release=resolution.transformers_release or resolution.target.transformers,
        command=command,
        count_datasets=options.count_datasets and config.data is not None,
        num_examples=options.num_examples,
        num_examples_per_dataset=dict(options.num_examples_per_dataset),
        versions_source=resolution.source,
        use_cache=options.use_cache,
        exact=options.exact,
        exact_python=options.exact_python,
        gpu=_target_gpu(options.gpu),
        params=options.params,
        torch=options.torch_version or installed_version("torch"),
    )
    if options.online and command == "train" and config.data is not None:
        from .online import prefetch

        ctx.options["fetched"] = prefetch(ctx.args, workdir)
    return ctx


def lint_config(config: LoadedConfig, options: LintOptions, resolution: Resolution) -> FileResult:
    """Run the rules on a loaded config."""
    ctx = make_context(config, options, resolution)
    kind, command = ctx.kind, ctx.options["command"]
    findings: list[tuple[Rule, Finding]] = []
    for rule in _rules_for(command, options):
        if rule.needs_config and config.data is None:
            continue
        try:
            findings.extend((rule, finding) for finding in rule.check(ctx))
        except Exception as exc:
            if os.environ.get("LF_LINT_DEBUG"):
                raise
            findings.append((INTERNAL_ERROR, Finding(f"lf-lint failed while checking {rule.code} ({rule.name}): {type(exc).__name__}: {exc}. "
                                                     "Please report this (set LF_LINT_DEBUG=1 for the traceback).")))  # fmt: skip
    silenced = suppression.parse(config.text)
    diagnostics = []
    for rule, finding in findings:
        diagnostic = _diagnostic(rule, finding, config)
        if not silenced.silences(diagnostic.code, diagnostic.line):
            diagnostics.append(diagnostic)
    diagnostics.sort(key=lambda d: d.sort_key)
    io_failure = any(p.kind == "io" for p in config.problems)
    plan = _fact(lambda: ctx.plan) if command == "train" and config.data is not None else None
    wanted = options.memory or ctx.options.get("gpu") is not None
    memory = _fact(lambda: ctx.memory) if command == "train" and config.data is not None and wanted else None
    return FileResult(config.path, resolution, kind, command, diagnostics, config.lines, io_failure, plan, memory)


def _rules_for(command: str, options: LintOptions) -> list[Rule]:
    """The rules that check a config of ``command`` under the options' selection (worked out once per process)."""
    key = (command, tuple(options.select) if options.select is not None else None, tuple(options.ignore))
    rules = _SELECTED.get(key)
    if rules is None:
        rules = _SELECTED[key] = [r for r in ALL_RULES if command in r.applies_to and options.enabled(r)]
    return rules


_SELECTED: dict[tuple, list[Rule]] = {}


def _target_gpu(gpu):
    """LintOptions.gpu as a Gpu: API callers may pass a name."""
    if isinstance(gpu, str):
        from .memory.gpus import find_gpu

        return find_gpu(gpu)
    return gpu


def _fact(compute):
    try:
        return compute()
    except Exception:
        if os.environ.get("LF_LINT_DEBUG"):
            raise
        return None


def _diagnostic(rule: Rule, finding: Finding, config: LoadedConfig) -> Diagnostic:
    span = finding.span
    if span is None and finding.key is not None:
        path = finding.key if isinstance(finding.key, tuple) else (finding.key,)
        span = config.value_span(path) if finding.at == "value" else config.key_span(path)
        override = config.overridden(path[0]) if path and isinstance(path[0], str) else None
        if override is not None and path not in config.value_spans:
            finding = Finding(
                f"{finding.message} (set by --set {override.text})",
                finding.key,
                finding.at,
                finding.fix,
                finding.severity,
            )
    span = span or START
    return Diagnostic(
        code=rule.code,
        name=rule.name,
        severity=finding.severity or rule.severity,
        message=finding.message,
        path=config.path,
        line=span.line,
        column=span.column,
        end_line=span.end_line,
        end_column=span.end_column,
        fix=finding.fix,
    )
