"""What a rule is, what it sees (``Context``) and what it yields (``Finding``).

A rule reads facts from the context and yields findings; it never reads files or prints.
Each rule carries its own documentation (what it does, why, a failing and a passing
example), which ``lf-lint rule CODE`` prints and the test suite runs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from functools import cached_property
from pathlib import Path
from typing import NamedTuple

from ..args import Args
from ..diagnostics import Severity
from ..launch import DeepSpeed, Launch, OutputDir, read_deepspeed, read_output_dir
from ..loading import LoadedConfig, Span
from ..schema import FieldTable, SchemaProblem, field_table, table_schema, validate
from ..switches import LaunchEnv, detect_switch
from ..versions import Target


class Finding(NamedTuple):
    """One problem a rule found. ``key`` is the config path it concerns (a str for a top-level key)."""

    message: str
    key: str | tuple | None = None
    at: str = "key"  # point at the "key" or its "value"
    fix: str | None = None
    severity: Severity | None = None  # overrides the rule's default
    span: Span | None = None  # an explicit location instead of ``key``


class Context:
    """Everything known about one config; expensive facts are computed on first use."""

    def __init__(self, config: LoadedConfig, target: Target, command: str, kind: str, workdir: Path, launch: Launch):
        self.config = config
        self.target = target
        self.command = command  # "train" or "infer": whose arguments the config is checked against
        self.kind = kind  # what the file looks like: "train", "export", "chat", ...
        self.workdir = workdir
        self.launch = launch
        self.options: dict = {}
        self.installed: tuple = ()  # installed_release.InstalledArguments: newer releases' arguments, from source

    @property
    def data(self) -> dict:
        return self.config.data or {}

    @cached_property
    def launch_env(self) -> LaunchEnv:
        """The launch environment (switches.py); a train config whose keys only make sense under one argument
        switch is read under it (``detected``)."""
        env = self.options.get("launch_env") or LaunchEnv.of()
        if self.command == "train" and env.arguments(self.target) == "default":
            env = env.with_detected(detect_switch(self.data, self.target))
        return env

    @cached_property
    def table(self) -> FieldTable:
        use_kt = self.command == "train" and self.data.get("use_kt") is True
        return field_table(self.target, self.command, self.launch_env.arguments(self.target, use_kt), self.installed)

    def table_for(self, command: str) -> FieldTable:
        """Another command's arguments, of the same releases."""
        return field_table(self.target, command, "default", self.installed)

    @cached_property
    def schema_problems(self) -> list[SchemaProblem]:
        return validate(self.data, table_schema(self.table), self.table)

    @cached_property
    def args(self) -> Args:
        return Args(self.data, self.table, self.schema_problems)

    @cached_property
    def deepspeed(self) -> DeepSpeed | None:
        """The DeepSpeed config the run uses: the YAML's ``deepspeed`` (it wins, as in TrainingArguments), else
        the one an ``accelerate launch --config_file`` file sets up."""
        launched = self.launch.accelerate
        if self.args.is_set("deepspeed") or launched is None:
            return read_deepspeed(self.args.get("deepspeed"), self.workdir)
        return launched.deepspeed_config(self.workdir)

    @cached_property
    def model_config(self) -> tuple[str, dict] | None:
        """(where, contents) of the model's config.json, when the model is on this machine (a folder, or the
        Hugging Face cache)."""
        from ..hub_cache import model_folders

        for folder in model_folders(self.args.model_name_or_path, self.workdir):
            try:
                config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(config, dict):
                return str(folder / "config.json"), config
        return None

    @cached_property
    def model_info(self):
        """memory.model.ModelInfo: the model's shape and size as far as lf-lint can know them here (a local
        config.json, the catalogue, the size in the name, --params), or None."""
        from ..memory.model import find_model

        name = self.args.model_name_or_path
        return find_model(name if isinstance(name, str) else None, Path(self.workdir), self.options.get("params"))

    @cached_property
    def output_dir(self) -> OutputDir | None:
        return read_output_dir(self.args.get("output_dir"), self.workdir)

    @cached_property
    def counts(self):
        """The examples LLaMA-Factory will train on (None when datasets are not checked)."""
        if self.command != "train" or not self.options.get("count_datasets", True):
            return None
        from ..dataset.counting import count_examples

        counts = count_examples(
            self.args, self.target, self.workdir, self.args.stage,
            self.options.get("num_examples_per_dataset") or {}, self.options.get("use_cache", True),
        )  # fmt: skip
        if not self.options.get("exact"):
            return counts
        from ..dataset.exact import ExactCount, exact_counts

        own = (counts.num_examples, counts.num_eval_examples, counts.exact)
        scripts = [s.name for s in counts.sources if s.attr is not None and s.attr.load_from == "script"]
        if scripts:  # LLaMA-Factory would run the dataset's loading script; lf-lint never runs code from data
            refused = ExactCount(
                None, None, None, f"{', '.join(scripts)} is loaded by a script, which lf-lint does not let run"
            )
            return counts._replace(checked=refused, own=own)
        checked = exact_counts(self.data, self.args.stage, self.workdir, self.options.get("exact_python"))
        if checked.problem or checked.train is None:
            return counts._replace(checked=checked, own=own)
        basis = f"LLaMA-Factory {checked.llamafactory}'s own data pipeline (--exact)"
        return counts._replace(
            num_examples=checked.train,
            num_eval_examples=checked.eval,
            exact=True,
            basis=basis,
            checked=checked,
            own=own,
        )

    @cached_property
    def plan(self):
        """The Trainer's step plan (None when datasets are not checked and no count was given)."""
        if self.command != "train":
            return None
        total = self.options.get("num_examples")
        if self.counts is None and total is None:
            return None
        from ..plan import build_plan

        return build_plan(self.args, self.counts, self.launch, self.target, total)

    @cached_property
    def memory(self):
        """Peak GPU memory per process and its verdict on the target GPU (None for non-train configs)."""
        if self.command != "train":
            return None
        from ..memory.report import memory_report

        return memory_report(self, self.options.get("gpu"))

    @property
    def zero3(self) -> bool:
        return self.deepspeed is not None and self.deepspeed.zero3


class Example(NamedTuple):
    """A config snippet, laid over a minimal valid config unless ``complete``."""

    yaml: str
    complete: bool = False
    options: dict = {}  # lint options (num_gpus, versions, ...); never mutated
    files: dict = {}  # files beside the config the example needs (path -> text), e.g. a model folder


class Rule(NamedTuple):
    code: str
    name: str
    severity: Severity
    summary: str  # one line, for `lf-lint rules`
    what: str
    why: str
    check: Callable[[Context], Iterable[Finding]]
    example: Example | None = None
    use_instead: Example | None = None
    upstream: str | None = None  # the upstream function whose behaviour the rule mirrors
    applies_to: tuple[str, ...] = ("train",)  # commands whose configs it checks
    needs_config: bool = True  # False for rules about the file itself (syntax, encoding)

    def documentation(self) -> str:
        parts = [
            f"# {self.code} {self.name} ({self.severity.value})",
            "",
            self.summary,
            "",
            "## What it does",
            "",
            self.what.strip(),
        ]
        parts += ["", "## Why is this bad?", "", self.why.strip()]
        if self.example is not None:
            parts += ["", "## Example", "", "```yaml", self.example.yaml.strip(), "```"]
        if self.use_instead is not None:
            parts += ["", "## Use instead", "", "```yaml", self.use_instead.yaml.strip(), "```"]
        if self.upstream:
            parts += ["", "## Upstream", "", self.upstream.strip()]
        return "\n".join(parts) + "\n"
