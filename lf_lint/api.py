"""The Python API: ``lint(config, ...)`` for notebooks and scripts.

``config`` may be a path (``str`` or ``pathlib.Path``), the text of a YAML config, or a mapping
(taken as ``run_exp(args=dict)`` takes it: values are used as they are, no YAML typing applies).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from .diagnostics import Diagnostic
from .engine import FileResult, LintOptions, lint_config
from .loading import LoadedConfig, load, load_mapping
from .memory.report import MemoryReport
from .memory.suggest import Suggestion, suggest_config
from .plan import Plan
from .versions import Resolution


class LfLintError(Exception):
    """lf-lint cannot do what was asked (a missing file, a version it cannot read, a bad option)."""


def _options(**kwargs) -> LintOptions:
    overrides = kwargs.pop("overrides", None) or ()
    workdir = kwargs.pop("workdir", None)
    accelerate_config = kwargs.pop("accelerate_config", None)
    env = kwargs.pop("env", None)  # the launch environment's variables over this process's (--env)
    if env is not None:
        kwargs["env_overrides"] = {str(k): str(v) for k, v in dict(env).items()}
    if accelerate_config is not None:
        from .launch import read_accelerate_config

        try:
            kwargs["accelerate"] = read_accelerate_config(Path(accelerate_config))
        except ValueError as exc:
            raise LfLintError(str(exc)) from exc
    num_examples = kwargs.pop("num_examples", None)
    if isinstance(num_examples, Mapping):
        kwargs["num_examples_per_dataset"] = {str(k): int(v) for k, v in num_examples.items()}
    elif num_examples is not None:
        if isinstance(num_examples, bool) or not isinstance(num_examples, int) or num_examples < 0:
            raise LfLintError(
                f"num_examples must be a whole number or a mapping of dataset names to rows, not {num_examples!r}"
            )
        kwargs["num_examples"] = num_examples
    options = LintOptions(
        overrides=tuple(overrides),
        workdir=Path(workdir) if workdir is not None else None,
        ignore=tuple(kwargs.pop("ignore", None) or ()),
        **kwargs,
    )
    try:
        options.resolution()
    except ValueError as exc:
        raise LfLintError(str(exc)) from exc
    return options


def _load(config: str | os.PathLike | Mapping, options: LintOptions, resolution: Resolution) -> LoadedConfig:
    overrides = list(options.overrides)
    if isinstance(config, Mapping):
        return load_mapping(dict(config), resolution.target, overrides=overrides)
    if isinstance(config, os.PathLike) or (
        isinstance(config, str)
        and "\n" not in config
        and config.strip().endswith((".yaml", ".yml", ".json", ".YAML", ".YML", ".JSON"))
    ):
        return load(config, resolution.target, overrides=overrides, max_bytes=options.max_bytes)
    if isinstance(config, str):
        return load("<config>", resolution.target, text=config, overrides=overrides, max_bytes=options.max_bytes)
    raise LfLintError(f"config must be a path, YAML text or a mapping, not {type(config).__name__}")


def lint_result(config: str | os.PathLike | Mapping, **kwargs) -> FileResult:
    """Like ``lint`` but returns the whole result (versions, kind, source lines)."""
    options = _options(**kwargs)
    resolution = options.resolution()
    result = lint_config(_load(config, options, resolution), options, resolution)
    if result.io_failure:
        raise LfLintError(result.diagnostics[0].message)
    return result


def lint(
    config: str | os.PathLike | Mapping,
    *,
    llamafactory_version: str | None = None,
    transformers_version: str | None = None,
    torch_version: str | None = None,
    num_gpus: int | None = None,
    nnodes: int | None = None,
    accelerate_config: str | os.PathLike | None = None,
    env: Mapping[str, str] | None = None,
    workdir: str | os.PathLike | None = None,
    overrides: list[str] | None = None,
    select: list[str] | None = None,
    ignore: list[str] | None = None,
    command: str | None = None,
    datasets: bool = True,
    num_examples: int | Mapping | None = None,
    online: bool = False,
) -> list[Diagnostic]:
    """Check a LLaMA-Factory config and return its diagnostics (errors, warnings and notes).

    >>> from lf_lint import lint
    >>> [d.code for d in lint({"model_name_or_path": "m", "stage": "sft", "do_train": True,
    ...                        "dataset": "d", "output_dir": "o", "bf16": True, "num_train_epoch": 3})]
    ['LF101']
    """
    return lint_result(
        config,
        llamafactory_version=llamafactory_version,
        transformers_version=transformers_version,
        torch_version=torch_version,
        num_gpus=num_gpus,
        nnodes=nnodes,
        accelerate_config=accelerate_config,
        env=env,
        workdir=workdir,
        overrides=overrides,
        select=select,
        ignore=ignore,
        command=command,
        count_datasets=datasets,
        num_examples=num_examples,
        online=online,
        memory=False,  # only the diagnostics are returned: no estimate unless a rule needs one
    ).diagnostics


def predict_steps(
    config: str | os.PathLike | Mapping,
    *,
    num_gpus: int | None = None,
    nnodes: int | None = None,
    accelerate_config: str | os.PathLike | None = None,
    env: Mapping[str, str] | None = None,
    llamafactory_version: str | None = None,
    transformers_version: str | None = None,
    workdir: str | os.PathLike | None = None,
    num_examples: int | Mapping | None = None,
    online: bool = False,
) -> Plan:
    """What the Trainer will print and do for this config, as a ``Plan``.

    ``num_examples`` gives the training examples (an int) or the rows of datasets lf-lint cannot
    count offline (a mapping ``{"name": rows}``); without it the datasets are counted from their
    files. ``online=True`` first downloads hub datasets' data files and the model's tokenizer and
    config into the Hugging Face cache (as ``--online``). ``plan.exact`` is False when a number had
    to be estimated. Raises ``LfLintError`` when no plan can be made (the message says why, e.g. a
    hub dataset that is not cached).

    >>> plan = predict_steps("train.yaml", num_gpus=8)               # doctest: +SKIP
    >>> plan.total_steps, plan.warmup_steps, plan.num_checkpoints     # doctest: +SKIP
    """
    result = lint_result(
        config,
        llamafactory_version=llamafactory_version,
        transformers_version=transformers_version,
        num_gpus=num_gpus,
        nnodes=nnodes,
        accelerate_config=accelerate_config,
        env=env,
        workdir=workdir,
        num_examples=num_examples,
        online=online,
        command="train",
        memory=False,
    )
    plan = result.plan
    if plan is None or plan.steps is None:
        reasons = [d.message for d in result.diagnostics if d.severity.value == "error"][:3]
        why = plan.problem if plan is not None else "; ".join(reasons) or "the config could not be read"
        raise LfLintError(f"no step plan for {result.path}: {why}")
    return plan


def estimate_memory(
    config: str | os.PathLike | Mapping,
    *,
    gpu: str | None = None,
    gpu_memory: float | None = None,
    num_gpus: int | None = None,
    nnodes: int | None = None,
    accelerate_config: str | os.PathLike | None = None,
    env: Mapping[str, str] | None = None,
    llamafactory_version: str | None = None,
    transformers_version: str | None = None,
    workdir: str | os.PathLike | None = None,
    params: float | None = None,
    num_examples: int | Mapping | None = None,
    online: bool = False,
) -> MemoryReport:
    """Peak GPU memory per process for this config, and whether it fits ``gpu``.

    Returns a ``MemoryReport``: ``.estimate.breakdown()`` (GiB by part), ``.verdict`` (None without a
    GPU), ``.largest_batch``, ``.time`` and ``.to_dict()``. The numbers are estimates (see README,
    "Memory estimate"). Raises ``LfLintError`` for an unknown GPU or when the model's shape cannot be
    known (give ``params`` or a local ``model_name_or_path``).

    >>> report = estimate_memory("train.yaml", gpu="A100-80G", num_gpus=4)   # doctest: +SKIP
    >>> report.to_dict()["peak_gib"], report.verdict.status                 # doctest: +SKIP
    """
    from .memory.gpus import GpuError, target_gpu

    try:
        card = target_gpu(gpu, gpu_memory)
    except GpuError as exc:
        raise LfLintError(str(exc)) from exc
    result = lint_result(
        config,
        llamafactory_version=llamafactory_version,
        transformers_version=transformers_version,
        num_gpus=num_gpus,
        nnodes=nnodes,
        accelerate_config=accelerate_config,
        env=env,
        workdir=workdir,
        num_examples=num_examples,
        online=online,
        command="train",
        gpu=card,
        params=params,
    )
    report = result.memory
    if report is None or report.estimate is None:
        raise LfLintError(
            f"no memory estimate for {result.path}: {report.problem if report else 'the config could not be read'}"
        )
    return report


def suggest(
    config: str | os.PathLike | Mapping,
    *,
    gpu: str | None = None,
    gpu_memory: float | None = None,
    num_gpus: int | None = None,
    nnodes: int | None = None,
    target_batch: int | None = None,
    accelerate_config: str | os.PathLike | None = None,
    env: Mapping[str, str] | None = None,
    llamafactory_version: str | None = None,
    transformers_version: str | None = None,
    workdir: str | os.PathLike | None = None,
    overrides: list[str] | None = None,
    params: float | None = None,
    num_examples: int | Mapping | None = None,
    online: bool = False,
) -> Suggestion:
    """The splits of ``target_batch`` examples per optimizer step (default: the config's) into
    per_device_train_batch_size x gradient_accumulation_steps on ``gpu``, best first, as ``lf-lint suggest``.

    Returns a ``Suggestion``: ``.choices`` (each with ``batch``, ``accumulation``, ``need_gib``, ``fits``,
    ``total_steps``, ``hours`` and ``current``), ``.best`` (the first choice, when it fits), ``.current`` and
    ``.to_dict()`` (the JSON of ``lf-lint suggest --format json``). Steps and time need the training examples
    (counted from the datasets, or ``num_examples``); without them they are None. Raises ``LfLintError``
    when there is nothing to choose: no GPU given, an unknown GPU, a model whose shape cannot be known, a
    config that does not train, or a ``target_batch`` the processes cannot share evenly.

    >>> result = suggest("train.yaml", gpu="H100", num_gpus=8, target_batch=64)   # doctest: +SKIP
    >>> result.best.batch, result.best.accumulation, result.best.need_gib         # doctest: +SKIP
    """
    from .memory.gpus import GpuError, target_gpu

    if gpu is None and gpu_memory is None:
        raise LfLintError("suggest needs the target GPU: gpu=NAME or gpu_memory=GIB")
    whole = isinstance(target_batch, int) and not isinstance(target_batch, bool)
    if target_batch is not None and (not whole or target_batch < 1):
        raise LfLintError(f"target_batch must be a whole number of at least 1, not {target_batch!r}")
    try:
        card = target_gpu(gpu, gpu_memory)
    except GpuError as exc:
        raise LfLintError(str(exc)) from exc
    options = _options(
        llamafactory_version=llamafactory_version,
        transformers_version=transformers_version,
        num_gpus=num_gpus,
        nnodes=nnodes,
        accelerate_config=accelerate_config,
        env=env,
        workdir=workdir,
        overrides=overrides,
        num_examples=num_examples,
        online=online,
        gpu=card,
        params=params,
    )
    resolution = options.resolution()
    loaded = _load(config, options, resolution)
    if loaded.data is None:
        why = "; ".join(p.message for p in loaded.problems) or "not a config"
        raise LfLintError(f"{loaded.path}: cannot read the config: {why}")
    result = suggest_config(loaded, options, resolution, target_batch)
    if result.problem:
        raise LfLintError(f"no suggestion for {result.path} on the {result.gpu}: {result.problem}")
    return result
