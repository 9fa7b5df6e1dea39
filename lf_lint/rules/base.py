"""What a rule is, what it sees (``Context``) and what it yields (``Finding``).

A rule reads facts from the context and yields findings; it never reads files or prints.
Each rule carries its own documentation (what it does, why, a failing and a passing
example), which ``lf-lint rule CODE`` prints and the test suite runs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from functools import cached_property

from ..args import Args
from ..diagnostics import Severity
from ..launch import DeepSpeed, Launch, OutputDir, read_deepspeed, read_output_dir
from ..loading import LoadedConfig, Span
from ..records import Record
from ..schema import FieldTable, SchemaProblem, field_table, table_problems
from ..switches import LaunchEnv, detect_switch
from ..versions import Target


class Finding(Record):
    """One problem a rule found. ``key`` is the config path it concerns (a str for a top-level key)."""

    message: str
    key: str | tuple | None = None
    at: str = "key"  # point at the "key" or its "value"
    fix: str | None = None
    severity: Severity | None = None  # overrides the rule's default
    span: Span | None = None  # an explicit location instead of ``key``


class Context:
    """Everything known about one config; expensive facts are computed on first use."""

    def __init__(self, config: LoadedConfig, target: Target, command: str, kind: str, workdir: str | os.PathLike, launch: Launch):
        self.config = config
        self.target = target
        self.command = command  # "train" or "infer": whose arguments the config is checked against
        self.kind = kind  # what the file looks like: "train", "export", "chat", ...
        self.workdir = workdir
        self.given_launch = launch  # as the options and environment give it (``launch`` adds the config's Ray workers)
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
    def launch(self) -> Launch:
        """The launch; under ``USE_RAY=1`` its world is the config's ``ray_num_workers`` (default 1): LLaMA-Factory
        starts that many Ray workers of one process and one device each and gives them ``WORLD_SIZE`` (main
        ff6d4d12e and 0.9.5 ``train/tuner.py::_ray_training_function``; 0.9.2-0.9.4 Ray Train's
        ``ScalingConfig(num_workers=ray_num_workers)``, where ``resources_per_worker`` gives a worker more devices
        but not more processes)."""
        launch = self.given_launch
        if launch.ray_workers is None or self.command != "train":
            return launch
        workers = self.data.get("ray_num_workers")  # read by get_ray_args whatever the train arguments are
        if isinstance(workers, int) and not isinstance(workers, bool) and workers >= 1:
            return launch._replace(ray_workers=workers, source="ray")
        return launch

    @cached_property
    def table(self) -> FieldTable:
        use_kt = self.command == "train" and self.data.get("use_kt") is True
        return field_table(self.target, self.command, self.launch_env.arguments(self.target, use_kt), self.installed)

    def table_for(self, command: str) -> FieldTable:
        """Another command's arguments, of the same releases."""
        return field_table(self.target, command, "default", self.installed)

    @cached_property
    def schema_problems(self) -> list[SchemaProblem]:
        return table_problems(self.data, self.table)

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
        return find_model(name if isinstance(name, str) else None, self.workdir, self.options.get("params"))

    @cached_property
    def output_dir(self) -> OutputDir | None:
        return read_output_dir(self.args.get("output_dir"), self.workdir)

    @cached_property
    def counts(self):
        """The examples LLaMA-Factory will train on (None when datasets are not checked)."""
        if self.command != "train" or not self.options.get("count_datasets", True):
            return None
        from ..dataset.counting import count_examples
        from ..megatron_steps import engine_dataset_args

        counts = count_examples(
            engine_dataset_args(self.args, self.table.arguments), self.target, self.workdir, self.args.stage,
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
        from ..megatron_steps import bridge_extra_config
        from ..plan import build_plan

        extra = bridge_extra_config(self.args, self.workdir)[0] if self.table.arguments == "megatron_bridge" else {}
        return build_plan(self.args, self.counts, self.launch, self.target, total, self.parallel_layout, extra)

    @cached_property
    def parallel_layout(self):
        """parallel_layout.ParallelLayout of a Megatron launch (USE_MCA, USE_MEGATRON_BRIDGE), else None."""
        if self.command != "train":
            return None
        from ..parallel_layout import read_layout

        return read_layout(self.args, self.table.arguments, self.launch, self.workdir)

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


class Example(Record):
    """A config snippet, laid over a minimal valid config unless ``complete``."""

    yaml: str
    complete: bool = False
    options: dict = {}  # lint options (num_gpus, versions, ...); never mutated
    files: dict = {}  # files beside the config the example needs (path -> text), e.g. a model folder


class Rule(Record):
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
