"""Rules about DeepSpeed and FSDP set-ups that transformers refuses before or at the start of training."""

from __future__ import annotations

from ..diagnostics import Severity
from .base import Context, Example, Finding, Rule

ERROR, WARNING = Severity.ERROR, Severity.WARNING


def _check_readable(ctx: Context):
    ds = ctx.deepspeed
    if ds is not None and ds.problem:
        if ds.launcher is not None:  # accelerate's DeepSpeedPlugin reads it when the run starts
            yield Finding(
                f"{ds.describe()}: {ds.problem}; accelerate stops before training starts",
                fix=f"point deepspeed_config_file in {ds.launcher} at the JSON file, relative to the directory you "
                "launch from (see --workdir)",
            )
            return
        yield Finding(
            f"{ds.problem}; transformers stops with: Expected a string path to an existing deepspeed config, or a "
            "dictionary, or a base64 encoded string.",
            key="deepspeed",
            at="value",
            fix="point `deepspeed` at the JSON file relative to the directory you launch from (see --workdir)",
        )


DEEPSPEED_UNREADABLE = Rule(
    code="LF250",
    name="deepspeed-config-unreadable",
    severity=ERROR,
    summary="The `deepspeed` config file is missing or not valid JSON.",
    what="Reads the file named by `deepspeed` (relative to the launch directory, `--workdir`), or by the "
    "`deepspeed_config_file` of the `--accelerate-config` file when the YAML has no `deepspeed`, and reports a "
    "missing file, unreadable JSON, or a top level that is not an object.",
    why="transformers loads it while parsing the arguments and stops; relative paths are a common trap when "
    "the run is launched from another directory.",
    example=Example("deepspeed: no/such/ds_z3_config.json", options={"num_gpus": 2}),
    use_instead=Example("deepspeed: {zero_optimization: {stage: 3}}", options={"num_gpus": 2}),
    upstream="transformers `HfTrainerDeepSpeedConfig` via accelerate `HfDeepSpeedConfig` (4.45-5.6).",
    check=_check_readable,
)


def _node(config: dict, dotted: str):
    *parents, leaf = dotted.split(".")
    for part in parents:
        config = config.get(part)
        if not isinstance(config, dict):
            return None, leaf
    return config, leaf


def deepspeed_mismatches(ctx: Context) -> list[str]:
    """transformers' ``HfTrainerDeepSpeedConfig.trainer_config_process``: values that are neither "auto" nor equal."""
    ds, a = ctx.deepspeed, ctx.args
    if ds is None or ds.config is None:
        return []
    batch, accumulation = a.per_device_train_batch_size, a.gradient_accumulation_steps
    fp16 = bool(a.fp16 or a.fp16_full_eval)
    pairs = [
        ("train_micro_batch_size_per_gpu", batch, "per_device_train_batch_size", not a.auto_find_batch_size),
        ("gradient_accumulation_steps", accumulation, "gradient_accumulation_steps", True),
        (
            "train_batch_size",
            ctx.launch.world_size * batch * accumulation,
            "train_batch_size (calculated)",
            not a.auto_find_batch_size,
        ),
        ("gradient_clipping", a.max_grad_norm, "max_grad_norm", True),
        ("optimizer.params.lr", a.learning_rate, "learning_rate", True),
        ("optimizer.params.betas", [a.adam_beta1, a.adam_beta2], "adam_beta1+adam_beta2", True),
        ("optimizer.params.eps", a.adam_epsilon, "adam_epsilon", True),
        ("optimizer.params.weight_decay", a.weight_decay, "weight_decay", True),
        ("scheduler.params.warmup_max_lr", a.learning_rate, "learning_rate", True),
        ("bf16.enabled", bool(a.bf16 or a.bf16_full_eval), "bf16|bf16_full_eval", True),
    ]
    if ctx.target.tf >= (5, 0):
        pairs.append(("fp16.enabled", fp16, "fp16|fp16_full_eval", True))
    else:
        apex = fp16 and a.fp16_backend == "apex"
        pairs += [
            ("fp16.enabled", fp16 and not apex, "fp16|fp16_full_eval+fp16_backend(amp)", True),
            ("amp.enabled", apex, "fp16+fp16_backend(apex)", True),
            ("amp.opt_level", a.fp16_opt_level, "fp16_opt_level", True),
        ]
    found = []
    for ds_key, hf_value, hf_key, must_match in pairs:
        node, leaf = _node(ds.config, ds_key)
        if node is None or not must_match:
            continue
        value = node.get(leaf)
        if value is not None and value != "auto" and value != hf_value:
            found.append(f"ds {ds_key}={value} vs hf {hf_key}={hf_value}")
    return found


def _check_mismatch(ctx: Context):
    mismatches = deepspeed_mismatches(ctx)
    if mismatches:
        yield Finding(
            (f"in {ctx.deepspeed.describe()}: " if ctx.deepspeed.launcher else "")
            + "transformers stops at the start of training with: Please correct the following DeepSpeed config values "
            "that mismatch TrainingArguments values: "
            + "; ".join(mismatches)
            + (
                f" (world size {ctx.launch.world_size}: {ctx.launch.describe()})"
                if any("train_batch_size" in m for m in mismatches)
                else ""
            ),
            key="deepspeed",
            at="value",
            fix='set these DeepSpeed values to "auto"',
        )


DEEPSPEED_MISMATCH = Rule(
    code="LF251",
    name="deepspeed-config-mismatch",
    severity=ERROR,
    summary="A DeepSpeed config value that contradicts the training arguments (batch size, accumulation, lr, ...).",
    what="Compares the DeepSpeed config with the training arguments the way transformers does: micro-batch, "
    "accumulation, total batch (world size x micro-batch x accumulation), gradient clipping, optimizer lr/betas/"
    'eps/weight decay, scheduler peak lr, and fp16/bf16. Values set to "auto" are filled in and never differ. '
    "A DeepSpeed config set up by `--accelerate-config` is checked the same way (the Trainer propagates the "
    "arguments to accelerate's DeepSpeed plugin).",
    why="transformers records every mismatch while parsing and raises them all when training starts, after the "
    "model and data have loaded (`Please correct the following DeepSpeed config values ...`).",
    example=Example(
        "deepspeed: {train_micro_batch_size_per_gpu: 4, zero_optimization: {stage: 2}}\nper_device_train_batch_size: 2",
        options={"num_gpus": 2},
    ),
    use_instead=Example(
        'deepspeed: {train_micro_batch_size_per_gpu: "auto", zero_optimization: {stage: 2}}\nper_device_train_batch_size: 2',
        options={"num_gpus": 2},
    ),
    upstream="transformers integrations/deepspeed.py::HfTrainerDeepSpeedConfig.trainer_config_process and "
    "trainer_config_finalize (4.45-5.6).",
    check=_check_mismatch,
)


def _check_combinations(ctx: Context):
    a = ctx.args
    fsdp = a.fsdp_options
    if fsdp and a.deepspeed is not None:
        yield Finding(
            "transformers stops with: Using --fsdp xxx together with --deepspeed is not possible, deactivate one of those flags.",
            key="fsdp",
        )
    elif fsdp and not ctx.launch.distributed:
        yield Finding(
            f"transformers stops with: Using fsdp only works in distributed training. (when it runs on {ctx.launch.describe()})",
            key="fsdp",
            severity=ERROR if ctx.launch.source != "assumed" else WARNING,
            fix="launch on several GPUs (or with FORCE_TORCHRUN=1); check with --num-gpus N",
        )
    if a.save_only_model and a.load_best_model_at_end and (fsdp or a.deepspeed is not None):
        wrapper = "FSDP" if fsdp else "DeepSpeed"
        yield Finding(
            f"transformers stops with: {wrapper} can't be used with `save_only_model` along with `load_best_model_at_end`.",
            key="save_only_model",
        )
    if a.auto_find_batch_size and ctx.zero3:
        yield Finding(
            "transformers stops with: `auto_find_batch_size` isn't supported yet with DeepSpeed Zero-3. Please consider "
            "using Zero-2, Zero-1, or FSDP",
            key="auto_find_batch_size",
        )


TRAINER_COMBINATIONS = Rule(
    code="LF252",
    name="sharding-conflict",
    severity=ERROR,
    summary="FSDP together with DeepSpeed, FSDP on one process, or options the Trainer refuses with them.",
    what="Reports `fsdp` together with `deepspeed`, `fsdp` on a single process, `save_only_model` with "
    "`load_best_model_at_end` under FSDP or DeepSpeed, and `auto_find_batch_size` under ZeRO-3.",
    why="The Trainer refuses each of these when it is created, after the model has been loaded.",
    example=Example('fsdp: "full_shard"\ndeepspeed: {zero_optimization: {stage: 2}}', options={"num_gpus": 2}),
    use_instead=Example('fsdp: "full_shard auto_wrap"', options={"num_gpus": 2}),
    upstream="transformers `Trainer.__init__` and `create_accelerator_and_postprocess` (4.45-5.6).",
    check=_check_combinations,
)


def _check_wrapping(ctx: Context):
    options = ctx.args.fsdp_options
    sharded = [o for o in options if o in ("full_shard", "shard_grad_op", "hybrid_shard", "hybrid_shard_zero2")]
    config = ctx.args.fsdp_config if isinstance(ctx.args.fsdp_config, dict) else {}
    if sharded and "auto_wrap" not in options and not config.get("xla"):
        yield Finding(
            f"`fsdp: {' '.join(options)}` without `auto_wrap`: the whole model is one FSDP unit, so every parameter "
            "is gathered for the whole forward and backward and only gradients and optimizer states stay sharded",
            key="fsdp",
            at="value",
            fix=f'fsdp: "{" ".join(options + ["auto_wrap"])}" (each decoder layer becomes its own unit)',
        )


FSDP_UNWRAPPED = Rule(
    code="LF253",
    name="fsdp-without-auto-wrap",
    severity=WARNING,
    summary="`fsdp` shards the model without `auto_wrap`: one unit, gathered whole.",
    what="Reports an `fsdp` value with a sharding strategy (`full_shard`, `shard_grad_op`, `hybrid_shard`...) "
    "but without `auto_wrap`.",
    why="transformers passes the wrapping policy to accelerate only for `auto_wrap`; otherwise accelerate's policy "
    "is NO_WRAP and FSDP wraps the whole model as one unit. Every forward and backward then gathers all "
    "parameters on each GPU, so the weights' memory is not sharded when it matters, and large models run out "
    "of memory that would fit with one unit per decoder layer.",
    example=Example('fsdp: "full_shard"', options={"num_gpus": 2}),
    use_instead=Example('fsdp: "full_shard auto_wrap"', options={"num_gpus": 2}),
    upstream="transformers `TrainingArguments.__post_init__` (FSDP_AUTO_WRAP_POLICY, 4.45-5.6) and accelerate "
    "`FullyShardedDataParallelPlugin` (auto_wrap_policy defaults to NO_WRAP, 1.x).",
    check=_check_wrapping,
)

RULES = [DEEPSPEED_UNREADABLE, DEEPSPEED_MISMATCH, TRAINER_COMBINATIONS, FSDP_UNWRAPPED]
