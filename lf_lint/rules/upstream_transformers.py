"""The checks transformers' ``TrainingArguments.__post_init__`` (``_validate_args`` from 5.2) and
``Trainer.__init__`` apply to a config before training starts, per transformers release.

Each rule mirrors one condition of transformers' own code and quotes the message it raises;
the version ranges were read from every minor release's ``training_args.py`` and ``trainer.py``.
"""

from __future__ import annotations

from ..args import Args
from ..diagnostics import Severity
from .base import Context, Example, Finding, Rule

ERROR, WARNING = Severity.ERROR, Severity.WARNING


def _number(value: object) -> float | None:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _steps_values(a: Args) -> dict:
    """logging/eval/save steps after ``__post_init__`` defaults eval_steps to logging_steps."""
    logging = _number(a.logging_steps)
    eval_steps = _number(a.eval_steps)
    if a.eval_strategy == "steps" and not eval_steps and logging and logging > 0:
        eval_steps = logging
    return {"logging": logging, "eval": eval_steps, "save": _number(a.save_steps)}


def _eval_steps_missing(ctx: Context):
    a = ctx.args
    eval_steps = _number(a.eval_steps)
    logging = _number(a.logging_steps)
    if a.eval_strategy == "steps" and not eval_steps and logging is not None and logging <= 0:
        yield Finding(
            "transformers stops with: evaluation strategy steps requires either non-zero --eval_steps or --logging_steps",
            key="eval_strategy",
            fix="set eval_steps (e.g. eval_steps: 100)",
        )


EVAL_STEPS_MISSING = Rule(
    code="LF301",
    name="eval-steps-missing",
    severity=ERROR,
    summary="`eval_strategy: steps` with neither `eval_steps` nor `logging_steps`.",
    what="Reports `eval_strategy: steps` when `eval_steps` is unset or 0 and `logging_steps` is 0.",
    why="transformers falls back from `eval_steps` to `logging_steps`; with both missing it raises at start-up.",
    example=Example("eval_strategy: steps\nlogging_strategy: epoch\nlogging_steps: 0\nval_size: 0.1"),
    use_instead=Example(
        "eval_strategy: steps\neval_steps: 100\nlogging_strategy: epoch\nlogging_steps: 0\nval_size: 0.1"
    ),
    upstream="transformers `TrainingArguments.__post_init__` (4.45-5.6).",
    check=_eval_steps_missing,
)


def _logging_steps_zero(ctx: Context):
    a = ctx.args
    if str(a.logging_strategy or "steps") == "steps" and _number(a.logging_steps) == 0:
        yield Finding(
            "transformers stops with: logging strategy steps requires non-zero --logging_steps",
            key="logging_steps",
            at="value",
            fix="set logging_steps to a positive number, or logging_strategy: no",
        )


LOGGING_STEPS_ZERO = Rule(
    code="LF302",
    name="logging-steps-zero",
    severity=ERROR,
    summary="`logging_steps: 0` while logging by steps.",
    what="Reports `logging_steps: 0` when `logging_strategy` is `steps` (the default).",
    why="transformers refuses it at start-up.",
    example=Example("logging_steps: 0"),
    use_instead=Example("logging_steps: 10"),
    upstream="transformers `TrainingArguments.__post_init__` (4.45-5.6).",
    check=_logging_steps_zero,
)


def _fractional_steps(ctx: Context):
    a = ctx.args
    strategies = {
        "logging": str(a.logging_strategy or "steps"),
        "eval": a.eval_strategy,
        "save": str(a.save_strategy or "steps"),
    }
    for kind, value in _steps_values(a).items():
        if strategies[kind] == "steps" and value is not None and value > 1 and value != int(value):
            yield Finding(
                f"transformers stops with: --{kind}_steps must be an integer if bigger than 1: {value}",
                key=f"{kind}_steps" if ctx.args.is_set(f"{kind}_steps") else "logging_steps",
                at="value",
                fix=f"use a whole number, or a ratio below 1 ({kind}_steps: 0.1 means every 10% of the run)",
            )


FRACTIONAL_STEPS = Rule(
    code="LF303",
    name="fractional-steps",
    severity=ERROR,
    summary="`logging_steps`/`eval_steps`/`save_steps` above 1 that is not a whole number.",
    what="Reports a step interval such as `save_steps: 2.5`. Values below 1 are ratios of the run and fine.",
    why="transformers reads values below 1 as a fraction of the total steps and values above 1 as a number of "
    "steps, which must be whole; anything else stops the run at start-up.",
    example=Example("save_steps: 2.5"),
    use_instead=Example("save_steps: 0.25"),
    upstream="transformers `TrainingArguments.__post_init__` (4.45-5.1), `_validate_args` (5.2-5.6).",
    check=_fractional_steps,
)


def _best_model(ctx: Context):
    a = ctx.args
    if not a.load_best_model_at_end:
        return
    save = str(a.save_strategy or "steps")
    tf = ctx.target.tf
    if save == "best" and tf >= (4, 48):
        return
    if a.eval_strategy != save:
        exempt = ', except when --save_strategy="best",' if tf >= (5, 4) else ""
        yield Finding(
            f"transformers stops with: --load_best_model_at_end requires the save and eval strategy to match{exempt} "
            f"but found eval_strategy {a.eval_strategy!r} and save_strategy {save!r}",
            key="load_best_model_at_end",
            fix=f"set eval_strategy: {save}" if save != "no" else "set both strategies to steps or epoch",
        )
        return
    if a.eval_strategy != "steps":
        return
    steps = _steps_values(a)
    save_steps, eval_steps = steps["save"], steps["eval"]
    if not save_steps or not eval_steps:
        return
    if save_steps > 1:
        save_steps = int(save_steps)
    if eval_steps > 1:
        eval_steps = int(eval_steps)
    if save_steps % eval_steps == 0:
        return
    # transformers <= 4.52 raised the "round multiple" error after the ratio branch unconditionally
    ratio_bug = tf < (4, 53)
    if eval_steps < 1 or save_steps < 1:
        if not (eval_steps < 1 and save_steps < 1):
            message = (
                "--load_best_model_at_end requires the saving steps to be a multiple of the evaluation steps, which "
                f"cannot get guaranteed when mixing ratio and absolute steps for save_steps {save_steps} and eval_steps {eval_steps}."
            )
        elif (save_steps * 1_000_000) % (eval_steps * 1_000_000) != 0:
            message = (
                "--load_best_model_at_end requires the saving steps to be a multiple of the evaluation steps, "
                f"but found {save_steps}, which is not a multiple of {eval_steps}."
            )
        elif ratio_bug:
            message = (
                "--load_best_model_at_end requires the saving steps to be a round multiple of the evaluation steps, "
                f"but found {save_steps}, which is not a round multiple of {eval_steps}. (transformers <= 4.52 "
                "raises this even for ratios that divide evenly; fixed in 4.53)"
            )
        else:
            return
    else:
        message = (
            "--load_best_model_at_end requires the saving steps to be a round multiple of the evaluation steps, "
            f"but found {save_steps}, which is not a round multiple of {eval_steps}."
        )
    yield Finding(
        f"transformers stops with: {message}",
        key="save_steps" if a.is_set("save_steps") else "load_best_model_at_end",
        fix="make save_steps a multiple of eval_steps",
    )


BEST_MODEL = Rule(
    code="LF304",
    name="best-model-save-eval-mismatch",
    severity=ERROR,
    summary="`load_best_model_at_end` with save and eval schedules that do not line up.",
    what="Reports `load_best_model_at_end: true` when the save and eval strategies differ (with the default "
    "`save_strategy: steps`, forgetting `eval_strategy` is enough), or when saving by steps is not a multiple of "
    "evaluating, including the ratio/absolute mix and the ratio bug of transformers <= 4.52.",
    why="The best checkpoint can only be restored if a checkpoint exists at every evaluation; transformers "
    "checks this at start-up and stops.",
    example=Example(
        "load_best_model_at_end: true\neval_strategy: steps\neval_steps: 300\nsave_steps: 500\nval_size: 0.1"
    ),
    use_instead=Example(
        "load_best_model_at_end: true\neval_strategy: steps\neval_steps: 250\nsave_steps: 500\nval_size: 0.1"
    ),
    upstream="transformers `TrainingArguments.__post_init__` (4.45-5.1), `_validate_args` (5.2-5.6).",
    check=_best_model,
)


def _fp16_and_bf16(ctx: Context):
    a = ctx.args
    if a.fp16 and a.bf16:
        yield Finding(
            "transformers stops with: At most one of fp16 and bf16 can be True, but not both",
            key="fp16",
            fix="keep bf16 on GPUs that support it (Ampere or newer), fp16 otherwise",
        )
    if a.fp16_full_eval and a.bf16_full_eval:
        yield Finding(
            "transformers stops with: At most one of fp16 and bf16 can be True for full eval, but not both",
            key="fp16_full_eval",
        )


FP16_AND_BF16 = Rule(
    code="LF305",
    name="fp16-and-bf16",
    severity=ERROR,
    summary="Both `fp16` and `bf16` are enabled.",
    what="Reports `fp16: true` together with `bf16: true` (and the same for `fp16_full_eval`/`bf16_full_eval`).",
    why="Mixed precision uses one half-precision type; transformers refuses both at start-up.",
    example=Example("fp16: true\nbf16: true"),
    use_instead=Example("bf16: true"),
    upstream="transformers `TrainingArguments.__post_init__` (4.45-5.1), `_validate_args` (5.2-5.6).",
    check=_fp16_and_bf16,
)


def _scheduler_needs_eval(ctx: Context):
    a = ctx.args
    needs_eval = {"reduce_lr_on_plateau"} | ({"greedy"} if ctx.target.tf >= (5, 0) else set())
    scheduler = str(a.lr_scheduler_type)
    if scheduler in needs_eval and a.eval_strategy == "no":
        yield Finding(
            f"transformers stops with: lr_scheduler_type {scheduler} requires an eval strategy",
            key="lr_scheduler_type",
            at="value",
            fix="set eval_strategy (and val_size or eval_dataset)",
        )


SCHEDULER_NEEDS_EVAL = Rule(
    code="LF306",
    name="scheduler-needs-eval",
    severity=ERROR,
    summary="`reduce_lr_on_plateau` (or 5.x `greedy`) without evaluation.",
    what="Reports a learning-rate scheduler that reacts to evaluation metrics when `eval_strategy` is `no`.",
    why="The scheduler would never receive a metric; transformers refuses the combination at start-up.",
    example=Example("lr_scheduler_type: reduce_lr_on_plateau"),
    use_instead=Example("lr_scheduler_type: reduce_lr_on_plateau\neval_strategy: epoch\nval_size: 0.1"),
    upstream="transformers `TrainingArguments.__post_init__` (4.45-5.1), `_validate_args` (5.2-5.6).",
    check=_scheduler_needs_eval,
)


def _warmup_values(ctx: Context):
    a = ctx.args
    tf = ctx.target.tf
    steps = a.raw("warmup_steps") if a.is_set("warmup_steps") else None
    ratio = a.raw("warmup_ratio") if a.is_set("warmup_ratio") else None
    if tf < (5, 0):
        if isinstance(ratio, (int, float)) and not isinstance(ratio, bool) and not 0 <= ratio <= 1:
            yield Finding(
                "transformers stops with: warmup_ratio must lie in range [0,1]",
                key="warmup_ratio",
                at="value",
                fix="write the fraction of the run, e.g. warmup_ratio: 0.1",
            )
        if isinstance(steps, float) or (isinstance(steps, int) and not isinstance(steps, bool) and steps < 0):
            hint = (
                f"on transformers 4.x use warmup_ratio: {steps}"
                if isinstance(steps, float) and 0 < steps < 1
                else "use a whole number of steps"
            )
            yield Finding(
                "transformers stops with: warmup_steps must be of type int and must be 0 or a positive integer."
                + (
                    " (a fraction of the run is `warmup_ratio` before transformers 5.0)"
                    if isinstance(steps, float)
                    else ""
                ),
                key="warmup_steps",
                at="value",
                fix=hint,
            )
    else:
        for name, value in (("warmup_steps", steps), ("warmup_ratio", ratio)):
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
                message = (
                    f"Got warmup_steps = {value}, Expected value warmup_steps >= 0"
                    if tf >= (5, 23)
                    else "warmup_steps must be an integer or a float"
                )
                yield Finding(f"transformers stops with: {message}", key=name, at="value")


WARMUP_VALUES = Rule(
    code="LF307",
    name="invalid-warmup",
    severity=ERROR,
    summary="A `warmup_steps` or `warmup_ratio` value transformers refuses.",
    what="Reports a negative or fractional `warmup_steps` on transformers 4.x (a float below 1 is only a ratio "
    "from 5.0), a `warmup_ratio` outside [0, 1] on 4.x, and negative values on 5.x.",
    why="transformers 4.44-4.57 requires an integer `warmup_steps` >= 0 (`warmup_steps: 0.1` stops the run, "
    "hiyouga/LLaMA-Factory #4005, #4133); 5.x accepts floats but not negatives.",
    example=Example("warmup_steps: 0.1", options={"transformers_version": "4.57.1"}),
    use_instead=Example("warmup_ratio: 0.1", options={"transformers_version": "4.57.1"}),
    upstream="transformers `TrainingArguments.__post_init__` (4.45-5.1), `_validate_args` (5.2-5.6).",
    check=_warmup_values,
)


def _prefetch(ctx: Context):
    a = ctx.args
    if a.dataloader_prefetch_factor is not None and a.dataloader_num_workers == 0:
        more = "> 0" if ctx.target.tf >= (5, 2) else "> 1"
        yield Finding(
            "transformers stops with: --dataloader_prefetch_factor can only be set when data is loaded in a different "
            f"process, i.e. when --dataloader_num_workers {more}.",
            key="dataloader_prefetch_factor",
            fix="set dataloader_num_workers, or remove dataloader_prefetch_factor",
        )


PREFETCH = Rule(
    code="LF308",
    name="prefetch-without-workers",
    severity=ERROR,
    summary="`dataloader_prefetch_factor` with `dataloader_num_workers: 0`.",
    what="Reports a prefetch factor when the data loader runs in the main process.",
    why="Prefetching needs worker processes; transformers refuses the combination at start-up.",
    example=Example("dataloader_prefetch_factor: 2"),
    use_instead=Example("dataloader_prefetch_factor: 2\ndataloader_num_workers: 4"),
    upstream="transformers `TrainingArguments.__post_init__` (4.45-5.1), `_validate_args` (5.2-5.6).",
    check=_prefetch,
)


def _trainer_loads_data(ctx: Context) -> bool:
    """The run builds the Hugging Face Trainer's data loaders: a training run of any stage but PPO (TRL's loop builds
    its own), or an evaluation or prediction; the Megatron launches have loaders of their own."""
    a = ctx.args
    if ctx.table.arguments not in ("default", "kt"):
        return False
    return (a.do_train is True and a.stage != "ppo") or a.do_eval is True or a.do_predict is True


def _persistent_workers(ctx: Context):
    a = ctx.args
    if a.dataloader_persistent_workers is True and a.dataloader_num_workers == 0 and _trainer_loads_data(ctx):
        yield Finding(
            "torch stops with: persistent_workers option needs num_workers > 0 (when the Trainer builds its first "
            "data loader, after the model has loaded)",
            key="dataloader_persistent_workers",
            fix="set dataloader_num_workers to 1 or more, or remove dataloader_persistent_workers",
        )


PERSISTENT_WORKERS = Rule(
    code="LF317",
    name="persistent-workers-without-workers",
    severity=ERROR,
    summary="`dataloader_persistent_workers: true` with `dataloader_num_workers: 0`.",
    what="Reports persistent data-loader workers when the data loader runs in the main process (no workers), in "
    "runs that build the Trainer's data loaders (training, except PPO, evaluation or prediction).",
    why="transformers passes `persistent_workers` to every `torch.utils.data.DataLoader` it builds without "
    "checking the workers, and torch refuses the pair. Unlike the prefetch factor (LF308), nothing checks it at "
    "start-up: the run stops in `get_train_dataloader`, after the model has loaded.",
    example=Example("dataloader_persistent_workers: true"),
    use_instead=Example("dataloader_persistent_workers: true\ndataloader_num_workers: 2"),
    upstream="transformers trainer.py `_get_dataloader` / `get_train_dataloader` (4.45-5.8); torch "
    "`DataLoader.__init__`.",
    check=_persistent_workers,
)


def _early_stopping(ctx: Context):
    a = ctx.args
    if "early_stopping_steps" not in ctx.table or a.get("early_stopping_steps") is None:
        return  # LLaMA-Factory 0.9.2 has no such argument (LF102)
    if a.do_train is not True or not _trainer_loads_data(ctx):
        return
    # TrainingArguments.__post_init__ names "loss" when the best model is loaded or the scheduler needs a metric
    needs_metric = {"reduce_lr_on_plateau"} | ({"greedy"} if ctx.target.tf >= (5, 0) else set())
    if (
        a.metric_for_best_model is None
        and not a.load_best_model_at_end
        and str(a.lr_scheduler_type) not in needs_metric
    ):
        message, fix = (
            "EarlyStoppingCallback requires metric_for_best_model to be defined",
            "set metric_for_best_model (eval_loss, or a metric compute_metrics returns)",
        )
    elif a.eval_strategy == "no":
        message, fix = (
            "EarlyStoppingCallback requires IntervalStrategy of steps or epoch",
            "set eval_strategy (and val_size or eval_dataset)",
        )
    else:
        return
    yield Finding(
        f"transformers stops with `AssertionError: {message}` when training begins (after the model and data have "
        "loaded): LLaMA-Factory adds the callback for `early_stopping_steps`",
        key="early_stopping_steps",
        fix=fix,
    )


EARLY_STOPPING = Rule(
    code="LF318",
    name="early-stopping-without-evaluation",
    severity=ERROR,
    summary="`early_stopping_steps` without a metric to watch or without evaluations.",
    what="Reports `early_stopping_steps` in a training run that names no `metric_for_best_model` (neither "
    "`load_best_model_at_end` nor a scheduler that needs one names `loss` for it) or that never evaluates "
    "(`eval_strategy: no`, the default).",
    why="LLaMA-Factory 0.9.3 and later add transformers' `EarlyStoppingCallback(early_stopping_patience="
    "early_stopping_steps)`, whose `on_train_begin` asserts both: the run stops when training begins, after the "
    "model and the datasets have loaded.",
    example=Example("early_stopping_steps: 3"),
    use_instead=Example(
        "early_stopping_steps: 3\nval_size: 0.1\neval_strategy: steps\neval_steps: 0.25\n"
        "metric_for_best_model: eval_loss"
    ),
    upstream="LLaMA-Factory train/tuner.py::_training_function (0.9.3-0.9.5, main); transformers trainer_callback.py "
    "`EarlyStoppingCallback.on_train_begin` (4.45-5.8).",
    check=_early_stopping,
)

_FSDP_OPTIONS = (
    "full_shard",
    "shard_grad_op",
    "no_shard",
    "hybrid_shard",
    "hybrid_shard_zero2",
    "offload",
    "auto_wrap",
)


def _fsdp(ctx: Context):
    value = ctx.args.fsdp
    if value is False and ctx.target.tf_minor == "4.57":
        yield Finding(
            "transformers 4.57 stops with: TypeError: argument of type 'bool' is not iterable (it only "
            "handles `fsdp: true`, a string or a list)",
            key="fsdp",
            at="value",
            fix="remove `fsdp: false`",
        )
        return
    if value is True:
        options = ["full_shard"]
    elif isinstance(value, str):
        options = value.split()
    elif isinstance(value, list):
        options = [str(v) for v in value]
    else:
        return
    unknown = [o for o in options if o not in _FSDP_OPTIONS]
    if unknown:
        yield Finding(
            f"transformers stops with: {unknown[0]!r} is not a valid FSDPOption (valid: {', '.join(_FSDP_OPTIONS)})",
            key="fsdp",
            at="value",
        )
    elif options == ["offload"]:
        yield Finding(
            "transformers stops with: `--fsdp offload` can't work on its own. It needs to be added to `--fsdp "
            "full_shard` or `--fsdp shard_grad_op`.",
            key="fsdp",
            at="value",
            fix='fsdp: "full_shard auto_wrap offload"',
        )
    elif "full_shard" in options and "shard_grad_op" in options:
        yield Finding(
            "transformers stops with: `--fsdp full_shard` is not compatible with `--fsdp shard_grad_op`.",
            key="fsdp",
            at="value",
        )


FSDP_OPTIONS = Rule(
    code="LF309",
    name="invalid-fsdp",
    severity=ERROR,
    summary="An `fsdp` option string transformers refuses.",
    what="Checks the space-separated `fsdp` options: each must be a known FSDPOption, `offload` needs a "
    "sharding strategy, and `full_shard` excludes `shard_grad_op`.",
    why="transformers parses the string into options at start-up and stops on any of these.",
    example=Example('fsdp: "offload"', options={"num_gpus": 2}),
    use_instead=Example('fsdp: "full_shard auto_wrap offload"', options={"num_gpus": 2}),
    upstream="transformers `TrainingArguments.__post_init__` (4.45-5.6).",
    check=_fsdp,
)


def _save_best_needs_metric(ctx: Context):
    a = ctx.args
    if ctx.target.tf >= (4, 47) and str(a.save_strategy) == "best" and not a.metric_for_best_model:
        yield Finding(
            "transformers stops with: `args.metric_for_best_model` must be provided when using 'best' save_strategy or "
            "if `args.load_best_model_at_end` is set to `True`.",
            key="save_strategy",
            at="value",
            fix="set metric_for_best_model (e.g. eval_loss)",
        )
    if ctx.target.tf >= (4, 47) and str(a.save_strategy) == "best" and a.eval_strategy == "no":
        yield Finding(
            "`save_strategy: best` saves only after an evaluation, and `eval_strategy` is `no`: no checkpoint will be written",
            key="save_strategy",
            at="value",
            severity=WARNING,
            fix="set eval_strategy (and val_size or eval_dataset)",
        )


SAVE_BEST = Rule(
    code="LF310",
    name="save-best-needs-metric",
    severity=ERROR,
    summary="`save_strategy: best` without `metric_for_best_model` (or without evaluation).",
    what="Reports `save_strategy: best` with no `metric_for_best_model`, which the Trainer refuses, and warns "
    "when nothing is ever evaluated, so no checkpoint is saved.",
    why="'best' compares an evaluation metric after each evaluation; without a metric the Trainer stops when it "
    "is created, and without evaluations the run saves nothing.",
    example=Example("save_strategy: best\neval_strategy: steps\nval_size: 0.1"),
    use_instead=Example("save_strategy: best\neval_strategy: steps\nval_size: 0.1\nmetric_for_best_model: eval_loss"),
    upstream="transformers `Trainer.__init__` (4.47-5.6).",
    check=_save_best_needs_metric,
)


def _output_dir_required(ctx: Context):
    if ctx.target.tf < (4, 49) and not ctx.args.is_set("output_dir"):
        yield Finding(
            f"transformers {ctx.target.transformers} requires `output_dir` (TrainingArguments.__init__() missing 1 "
            "required positional argument: 'output_dir'); it has a default only from 4.49",
            key=None,
            fix="set output_dir",
        )


OUTPUT_DIR_REQUIRED = Rule(
    code="LF311",
    name="output-dir-required",
    severity=ERROR,
    summary="No `output_dir` on transformers < 4.49.",
    what="Reports a train config without `output_dir` when the targeted transformers has no default for it.",
    why="Before 4.49 `output_dir` is a required argument of `TrainingArguments`; the run stops at start-up.",
    example=Example(
        "model_name_or_path: m\nstage: sft\ndo_train: true\ndataset: d",
        complete=True,
        options={"transformers_version": "4.45.2", "llamafactory_version": "0.9.3"},
    ),
    use_instead=Example(
        "model_name_or_path: m\nstage: sft\ndo_train: true\ndataset: d\noutput_dir: out\nbf16: true",
        complete=True,
        options={"transformers_version": "4.45.2", "llamafactory_version": "0.9.3"},
    ),
    upstream="transformers `TrainingArguments` (4.45-4.48: `output_dir: str` without default).",
    check=_output_dir_required,
)

# (name, replacement, first transformers release with the warning, release that removed the key)
_DEPRECATED = [
    ("evaluation_strategy", "eval_strategy", (4, 41), (4, 51)),
    ("no_cuda", "use_cpu", (4, 36), (5, 0)),
    ("adafactor", "optim: adafactor", (4, 30), (5, 0)),
    ("push_to_hub_token", "hub_token", (4, 30), (5, 0)),
    ("include_inputs_for_metrics", "include_for_metrics", (4, 46), (5, 0)),
    ("fsdp_min_num_params", "fsdp_config.min_num_params", (4, 30), (5, 0)),
    ("fsdp_transformer_layer_cls_to_wrap", "fsdp_config.transformer_layer_cls_to_wrap", (4, 30), (5, 0)),
    ("warmup_ratio", "warmup_steps (a float below 1 is a ratio)", (5, 0), (5, 15)),
]


def _deprecated(ctx: Context):
    tf = ctx.target.tf
    for name, replacement, since, removed in _DEPRECATED:
        if ctx.args.is_set(name) and since <= tf < removed and name in ctx.table:
            message = f"`{name}` is deprecated in transformers {ctx.target.transformers} (removed in {removed[0]}.{removed[1]})"
            severity = None
            if name == "warmup_ratio":
                # LLaMA-Factory 0.9.5 pins transformers <= 5.6, so the removal never reaches its users
                message += "; it still works here, and a float warmup_steps below 1 is the same ratio"
                severity = Severity.INFO
            yield Finding(message, key=name, fix=f"use {replacement}", severity=severity)


DEPRECATED = Rule(
    code="LF312",
    name="deprecated-key",
    severity=WARNING,
    summary="A key transformers still accepts but has deprecated and will remove.",
    what="Reports deprecated TrainingArguments keys that the targeted release still accepts, with the release "
    "that removes them and the replacement (`evaluation_strategy` -> `eval_strategy`, `warmup_ratio` -> "
    "float `warmup_steps` on 5.x).",
    why="The config breaks as soon as transformers is upgraded (hiyouga/LLaMA-Factory #7927), and a deprecated key "
    "can change meaning: on transformers 5.x `warmup_ratio` silently replaces `warmup_steps`.",
    example=Example(
        "model_name_or_path: Qwen/Qwen2.5-0.5B\nevaluation_strategy: steps\nval_size: 0.1",
        options={"transformers_version": "4.49.0", "llamafactory_version": "0.9.2"},
    ),
    use_instead=Example(
        "model_name_or_path: Qwen/Qwen2.5-0.5B\neval_strategy: steps\nval_size: 0.1",
        options={"transformers_version": "4.49.0", "llamafactory_version": "0.9.2"},
    ),
    check=_deprecated,
)

# transformers integration_utils.py INTEGRATION_TO_CALLBACK, per release
_INTEGRATIONS = (
    "azure_ml",
    "comet_ml",
    "mlflow",
    "neptune",
    "tensorboard",
    "wandb",
    "codecarbon",
    "clearml",
    "dagshub",
    "flyte",
    "dvclive",
)


def integrations(tf: tuple) -> tuple[str, ...]:
    extra = (
        (("swanlab",) if tf >= (4, 50) else ())
        + (("trackio",) if tf >= (4, 54) else ())
        + (("kubeflow",) if tf >= (5, 4) else ())
    )
    return _INTEGRATIONS + extra


def _report_to(ctx: Context):
    a = ctx.args
    if not a.is_set("report_to"):
        return
    raw = a.raw("report_to")
    tf = ctx.target.tf
    if raw is None:
        if tf >= (5, 0):
            yield Finding(
                "`report_to: null` becomes [None] on transformers 5.x and the Trainer stops with: None is not "
                "supported",
                key="report_to",
                at="value",
                fix="write report_to: none",
            )
        return
    values = [raw] if isinstance(raw, str) else raw if isinstance(raw, list) else []
    if values in (["none"], ["all"]) and not (values == ["all"] and ctx.target.tf_minor == "5.2"):
        return
    valid = integrations(tf)
    for value in values:
        if value not in valid:
            shown = "all" if value == "all" else value
            yield Finding(
                f"transformers stops when the Trainer is created with: {shown} is not supported, only {', '.join(valid)} are supported."
                + (" (`report_to: all` is not expanded on transformers 5.2)" if value == "all" else ""),
                key="report_to",
                at="value",
                fix=f"did you mean `{_close(str(value), valid)}`?"
                if _close(str(value), valid)
                else "use report_to: none, or an integration above",
            )


def _close(name: str, options: tuple) -> str | None:
    import difflib

    found = difflib.get_close_matches(name.lower(), options, n=1, cutoff=0.7)
    return found[0] if found else None


REPORT_TO = Rule(
    code="LF313",
    name="unknown-report-to",
    severity=ERROR,
    summary="A `report_to` integration the targeted transformers does not know.",
    what="Checks each `report_to` entry against the integrations of the targeted transformers release "
    "(swanlab from 4.50, trackio from 4.54, kubeflow from 5.4), and `report_to: null`, which 5.x turns into [None].",
    why="TrainingArguments accepts any string; the Trainer refuses unknown integrations when it is created, after "
    "the model and data have loaded.",
    example=Example("report_to: tensorbord"),
    use_instead=Example("report_to: tensorboard"),
    upstream="transformers integrations/integration_utils.py::get_reporting_integration_callbacks via `Trainer.__init__` (4.45-5.6).",
    check=_report_to,
)


def _empty_cache_steps(ctx: Context):
    value = ctx.args.raw("torch_empty_cache_steps") if ctx.args.is_set("torch_empty_cache_steps") else None
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    if ctx.target.tf >= (4, 50):
        if not (isinstance(value, int) and value > 0):
            yield Finding(
                f"transformers stops with: `torch_empty_cache_steps` must be an integer bigger than 0, got {value}.",
                key="torch_empty_cache_steps",
                at="value",
            )
    elif value <= 0:
        yield Finding(
            f"`torch_empty_cache_steps: {value}` passes transformers {ctx.target.transformers}'s (buggy) check but "
            "fails at the first step (modulo by zero or a negative interval)",
            key="torch_empty_cache_steps",
            at="value",
            severity=WARNING,
        )


EMPTY_CACHE_STEPS = Rule(
    code="LF314",
    name="invalid-empty-cache-steps",
    severity=ERROR,
    summary="`torch_empty_cache_steps` that is not a positive integer.",
    what="Reports `torch_empty_cache_steps` values transformers 4.50+ refuses (0, negatives, floats); 4.45-4.49 "
    "let them through (their check used `or` instead of `and`), which only moves the failure into training.",
    why="The interval is used as a modulus every step.",
    example=Example("torch_empty_cache_steps: 0"),
    use_instead=Example("torch_empty_cache_steps: 100"),
    upstream="transformers `TrainingArguments.__post_init__` (4.45-5.1), `_validate_args` (5.2-5.6).",
    check=_empty_cache_steps,
)


def _scheduler_kwargs(ctx: Context):
    from ..schema import release_table

    kwargs = ctx.args.raw("lr_scheduler_kwargs") if ctx.args.is_set("lr_scheduler_kwargs") else None
    if isinstance(kwargs, str) and kwargs.lstrip().startswith("{"):
        import json

        try:
            kwargs = json.loads(kwargs)
        except json.JSONDecodeError:
            return
    if not isinstance(kwargs, dict) or not kwargs:
        return
    scheduler = str(ctx.args.lr_scheduler_type)
    accepted_by = release_table("transformers", ctx.target.tf_minor).get("scheduler_kwargs", {})
    if scheduler not in accepted_by:
        return
    accepted = accepted_by[scheduler]
    if accepted is None:
        yield Finding(
            f"`lr_scheduler_kwargs` is ignored: transformers does not pass extra arguments to the {scheduler} scheduler",
            key="lr_scheduler_kwargs",
            severity=WARNING,
        )
        return
    for key in kwargs:
        if key not in accepted:
            takers = sorted(name for name, keys in accepted_by.items() if keys and key in keys)
            hint = f" ({key} belongs to: {', '.join(takers)})" if takers else ""
            yield Finding(
                f"transformers stops when it creates the scheduler with: TypeError: the {scheduler} schedule got an unexpected "
                f"keyword argument '{key}'{hint}",
                key=("lr_scheduler_kwargs", key),
                fix=f"{scheduler} accepts: {', '.join(accepted) or 'nothing'}",
            )


SCHEDULER_KWARGS = Rule(
    code="LF315",
    name="scheduler-kwargs",
    severity=ERROR,
    summary="`lr_scheduler_kwargs` the chosen `lr_scheduler_type` does not take.",
    what="Checks each key of `lr_scheduler_kwargs` against the arguments the scheduler function of "
    "`lr_scheduler_type` accepts in the targeted transformers (probed from the real `get_scheduler` of each "
    "release), and warns when the scheduler ignores them.",
    why="`get_scheduler` passes the mapping on as keyword arguments; an unknown one is a TypeError when the "
    "optimizer and scheduler are created, after the model has loaded.",
    example=Example("lr_scheduler_type: linear\nlr_scheduler_kwargs: {num_cycles: 2}"),
    use_instead=Example("lr_scheduler_type: cosine_with_restarts\nlr_scheduler_kwargs: {num_cycles: 2}"),
    upstream="transformers optimization.py::get_scheduler (4.45-5.6).",
    check=_scheduler_kwargs,
)


RULES = [
    EVAL_STEPS_MISSING, LOGGING_STEPS_ZERO, FRACTIONAL_STEPS, BEST_MODEL, FP16_AND_BF16, SCHEDULER_NEEDS_EVAL,
    WARMUP_VALUES, PREFETCH, FSDP_OPTIONS, SAVE_BEST, OUTPUT_DIR_REQUIRED, DEPRECATED, REPORT_TO, EMPTY_CACHE_STEPS, SCHEDULER_KWARGS,
    PERSISTENT_WORKERS, EARLY_STOPPING,
]  # fmt: skip
