"""Rules about LLaMA-Factory's launch switches (switches.py): which arguments a config is read with, and what the
Megatron launches refuse before training starts."""

from __future__ import annotations

from ..diagnostics import Severity
from ..loading import Span
from ..parallel_layout import SIZES
from ..records import Record
from ..schema import field_table
from ..switches import ARGUMENT_SWITCHES
from .base import Context, Example, Finding, Rule

ERROR, WARNING, INFO = Severity.ERROR, Severity.WARNING, Severity.INFO
_ON_MAIN = {"llamafactory_version": "0.9.6.dev0", "env_overrides": {"USE_MEGATRON_BRIDGE": "1"}}
_WITH_MCA = {"llamafactory_version": "0.9.5", "env_overrides": {"USE_MCA": "1"}}
_WHAT_SWITCH_READS = {"mca": "mcore_adapter's TrainingArguments (Megatron-Core)", "megatron_bridge": "MegatronBridgeArguments"}


def _check_switch(ctx: Context):
    env, target = ctx.launch_env, ctx.target
    if env.detected:
        variant = ARGUMENT_SWITCHES[env.detected][0]
        default = set(field_table(target, "train").accepted())
        keys = [k for k in ctx.data if isinstance(k, str) and k not in default and k in ctx.table]
        shown = ", ".join(f"`{k}`" for k in keys[:4]) + (f" and {len(keys) - 4} more" if len(keys) > 4 else "")
        yield Finding(f"{shown} {'is an argument' if len(keys) == 1 else 'are arguments'} of {_WHAT_SWITCH_READS[variant]}: "
                      f"checked as a config launched with {env.detected}=1", key=keys[0],
                      fix=f"say so with --env {env.detected}=1 (or env = [\"{env.detected}=1\"] in [tool.lf-lint]); "
                      f"without it LLaMA-Factory stops on these keys")  # fmt: skip
        return
    for name, (_variant, first) in ARGUMENT_SWITCHES.items():
        if env.enabled(name) and target.lf < first:
            yield Finding(f"{name}=1 has no effect on LLaMA-Factory {target.llamafactory} (it arrived in "
                          f"{'.'.join(map(str, first))}): the config is read with LLaMA-Factory's own arguments",
                          span=Span(1, 1, 1, 2))  # fmt: skip
    if env.enabled("USE_MCA") and env.enabled("USE_MEGATRON_BRIDGE") and target.lf >= ARGUMENT_SWITCHES["USE_MEGATRON_BRIDGE"][1]:
        yield Finding("USE_MCA=1 and USE_MEGATRON_BRIDGE=1 are both set: LLaMA-Factory takes USE_MCA and trains with "
                      "mcore_adapter", span=Span(1, 1, 1, 2), fix="unset one of them")  # fmt: skip


LAUNCH_SWITCH = Rule(
    code="LF107",
    name="launch-switch",
    severity=INFO,
    summary="The config is read under a launch switch (USE_MCA, USE_MEGATRON_BRIDGE) it was written for, or a "
    "switch does nothing.",
    what="Says when a train config's keys are arguments of one launch switch only (mcore_adapter's Megatron-Core "
    "arguments under `USE_MCA=1`, `MegatronBridgeArguments` under `USE_MEGATRON_BRIDGE=1`) and lf-lint therefore "
    "checked it as launched with that switch; and when a switch set in the environment (or with `--env`) has no "
    "effect on the targeted release.",
    why="The same config is valid under `USE_MCA=1` and refused without it (`Some keys are not used by the "
    "HfArgumentParser`). A pre-commit hook runs without the launch environment: the note says what was assumed "
    "and how to state it.",
    example=Example("tensor_model_parallel_size: 2\nuse_distributed_optimizer: true", options={"llamafactory_version": "0.9.5"}),
    use_instead=Example("tensor_model_parallel_size: 2\nuse_distributed_optimizer: true",
                        options={"llamafactory_version": "0.9.5", "env_overrides": {"USE_MCA": "1"}}),
    upstream="hparams/parser.py::get_train_args (USE_MCA from 0.9.4, USE_MEGATRON_BRIDGE on main).",
    check=_check_switch,
)


def _bridge(ctx: Context) -> bool:
    return ctx.table.arguments == "megatron_bridge"


def _check_bridge_limits(ctx: Context):
    """hparams/parser.py::get_train_args on main (ff6d4d12e), in its order."""
    if not _bridge(ctx):
        return
    a = ctx.args
    problems = [
        (a.use_hyper_parallel, "Megatron Bridge cannot be used together with MCA or HyperParallel.", "use_hyper_parallel"),
        (a.stage not in ("pt", "sft"), "Megatron Bridge only supports the `pt` and `sft` stages.", "stage"),
        (str(a.finetuning_type or "lora") not in ("full", "lora"), "Megatron Bridge only supports `full` and `lora` finetuning.", "finetuning_type"),
        (a.quantization_bit is not None, "Quantized models are not supported with Megatron Bridge.", "quantization_bit"),
        (a.deepspeed is not None, "Megatron Bridge is incompatible with DeepSpeed.", "deepspeed"),
    ]  # fmt: skip
    for refused, message, key in problems:
        if refused:
            yield Finding(f"LLaMA-Factory {ctx.target.llamafactory} stops with: {message}",
                          key=key if ctx.args.is_set(key) else None, at="value" if ctx.args.is_set(key) else "key")  # fmt: skip
            return  # the first check that fails stops the run


BRIDGE_LIMITS = Rule(
    code="LF262",
    name="megatron-bridge-limits",
    severity=ERROR,
    summary="A stage, tuning method, quantization or DeepSpeed that megatron-bridge refuses (`USE_MEGATRON_BRIDGE=1`).",
    what="Under `USE_MEGATRON_BRIDGE=1`, reports the settings LLaMA-Factory's start-up refuses for megatron-bridge: "
    "stages other than `pt` and `sft`, tuning methods other than `full` and `lora`, `quantization_bit`, "
    "`deepspeed`, and `use_hyper_parallel`.",
    why="LLaMA-Factory checks them after loading its arguments and stops with the first one that fails.",
    example=Example("stage: dpo", options=_ON_MAIN),
    use_instead=Example("stage: sft\nsave_steps: 100", options=_ON_MAIN),
    upstream="hparams/parser.py::get_train_args (LLaMA-Factory main at ff6d4d12e).",
    check=_check_bridge_limits,
)


def _parallel_size(a) -> tuple[int, list[str]]:
    """TP x PP x CP x EP, and the keys set among them (MegatronBridgeArguments' defaults are 1)."""
    keys = ["tensor_model_parallel_size", "pipeline_model_parallel_size", "context_parallel_size",
            "expert_model_parallel_size"]  # fmt: skip
    size = 1
    for key in keys:
        value = a.get(key)
        size *= value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 1
    return size, [k for k in keys if a.is_set(k)]


def _check_bridge_parallel(ctx: Context):
    """_validate_megatron_bridge_parallel_args (main, ff6d4d12e)."""
    if not _bridge(ctx):
        return
    size, keys = _parallel_size(ctx.args)
    world = ctx.launch.world_size
    if size > world:
        message = f"Total Megatron Bridge parallel size ({size}) exceeds `world_size` ({world})."
    elif world % size:
        message = f"Total Megatron Bridge parallel size ({size}) must divide `world_size` ({world})."
    else:
        return
    key = keys[-1] if keys else None
    if ctx.launch.source == "assumed":
        yield Finding(f"with {world} process (assumed; set --num-gpus), LLaMA-Factory would stop with: {message}",
                      key=key, at="value", severity=INFO, fix="give the launch with --num-gpus / --nnodes")  # fmt: skip
        return
    yield Finding(f"LLaMA-Factory {ctx.target.llamafactory} stops with: {message}", key=key, at="value",
                  fix=f"make tensor x pipeline x context x expert parallel sizes divide the {world} processes")  # fmt: skip


BRIDGE_PARALLEL = Rule(
    code="LF263",
    name="megatron-bridge-parallel-size",
    severity=ERROR,
    summary="Megatron-bridge parallel sizes that exceed or do not divide the world size (`USE_MEGATRON_BRIDGE=1`).",
    what="Multiplies `tensor_model_parallel_size`, `pipeline_model_parallel_size`, `context_parallel_size` and "
    "`expert_model_parallel_size` and compares the product with the processes of the launch.",
    why="LLaMA-Factory refuses a layout whose parallel size exceeds or does not divide `world_size` at start-up.",
    example=Example("tensor_model_parallel_size: 4\npipeline_model_parallel_size: 4", options={**_ON_MAIN, "num_gpus": 8}),
    use_instead=Example("tensor_model_parallel_size: 4\npipeline_model_parallel_size: 2\nsave_steps: 100",
                        options={**_ON_MAIN, "num_gpus": 8}),
    upstream="hparams/parser.py::_validate_megatron_bridge_parallel_args (LLaMA-Factory main at ff6d4d12e).",
    check=_check_bridge_parallel,
)


def _check_mca_overlap(ctx: Context):
    """mcore_adapter ``MegatronArguments.__post_init__`` asserts (alibaba/ROLL, data/mcore_adapter_fields.json's
    commit)."""
    if ctx.table.arguments != "mca" or not ctx.args.get("overlap_param_gather"):
        return
    if not ctx.args.get("use_distributed_optimizer"):
        yield Finding("mcore_adapter stops with: AssertionError: --overlap_param_gather only supported with distributed "
                      "optimizer", key="overlap_param_gather", fix="add use_distributed_optimizer: true")  # fmt: skip
    elif not ctx.args.get("overlap_grad_reduce"):
        yield Finding("mcore_adapter stops with: AssertionError: --overlap_grad_reduce should be turned on when using "
                      "--overlap_param_gather", key="overlap_param_gather", fix="add overlap_grad_reduce: true")  # fmt: skip


MCA_OVERLAP = Rule(
    code="LF264",
    name="mca-overlap-param-gather",
    severity=ERROR,
    summary="`overlap_param_gather` without the distributed optimizer or `overlap_grad_reduce` (`USE_MCA=1`).",
    what="Under `USE_MCA=1`, reports `overlap_param_gather: true` without `use_distributed_optimizer: true`, or "
    "without `overlap_grad_reduce: true`.",
    why="mcore_adapter asserts both when its arguments are built, before the model loads.",
    example=Example("overlap_param_gather: true\ntensor_model_parallel_size: 2", options=_WITH_MCA),
    use_instead=Example("overlap_param_gather: true\nuse_distributed_optimizer: true\noverlap_grad_reduce: true\n"
                        "tensor_model_parallel_size: 2", options=_WITH_MCA),
    upstream="mcore_adapter `MegatronArguments.__post_init__` (alibaba/ROLL).",
    check=_check_mca_overlap,
)



# --- the Megatron launches' layouts and schedules (parallel_layout.py, megatron_steps.py) ---------------------------
_MCA_8 = {"llamafactory_version": "0.9.6.dev0", "env_overrides": {"USE_MCA": "1"}, "num_gpus": 8}
_BRIDGE_8 = {**_ON_MAIN, "num_gpus": 8}


def _who(lay) -> str:
    return "LLaMA-Factory" if lay.engine == "megatron_bridge" else "megatron-core"


def _stops(ctx: Context, who: str, message: str, key: str | None, fix: str, on_world: bool = False) -> Finding:
    """A start-up refusal; one that depends on the process count is a note while the launch is only assumed."""
    if on_world and ctx.launch.source == "assumed":
        return Finding(f"with {ctx.launch.world_size} process (assumed; set --num-gpus), {who} would stop with: "
                       f"{message}", key=key, at="value", severity=INFO, fix="give the launch with --num-gpus / --nnodes")  # fmt: skip
    return Finding(f"{who} stops with: {message}", key=key, at="value" if key else "key", fix=fix)


def _set_key(ctx: Context, *names: str) -> str | None:
    return next((name for name in reversed(names) if ctx.args.is_set(name)), None)


def _check_layout(ctx: Context):
    """MegatronBridgeArguments.__post_init__ (main ff6d4d12e); megatron-core 0.15.0-0.16.1
    parallel_state.initialize_model_parallel and ModelParallelConfig.__post_init__; megatron-bridge 0.3.1
    ConfigContainer.validate (context parallel)."""
    lay = ctx.parallel_layout
    if lay is None:
        return
    bridge = lay.engine == "megatron_bridge"
    for name in lay.invalid:
        message = f"ValueError: `{name}` must be >= 1{' when set' if 'virtual' in name else ''}."
        yield _stops(ctx, "LLaMA-Factory", message, name, "a whole number of at least 1") if bridge else Finding(
            f"`{name}` must be a whole number of at least 1: megatron-core divides the processes by it", key=name,
            at="value", fix="a whole number of at least 1")  # fmt: skip
    if lay.invalid:
        return
    # (mcore_adapter turns sequence parallelism off itself without tensor parallelism, with a warning:
    # McaModelConfig.__post_init__ at ROLL 8eb27cc, before megatron-core's own check)
    if bridge and lay.sequence_parallel and lay.tensor <= 1:
        yield _stops(ctx, _who(lay), "ValueError: `sequence_parallel` requires `tensor_model_parallel_size` > 1.",
                     "sequence_parallel", "sequence_parallel: false, or tensor parallelism")  # fmt: skip
    if lay.virtual_pipeline is not None and lay.pipeline <= 1:
        yield _stops(ctx, "megatron-core", "RuntimeError: pipeline-model-parallel size should be greater than 1 with "
                     "interleaved schedule", "virtual_pipeline_model_parallel_size",
                     "remove virtual_pipeline_model_parallel_size, or set pipeline_model_parallel_size above 1")  # fmt: skip
    cutoff = ctx.args.cutoff_len
    if bridge and lay.context > 1 and isinstance(cutoff, int) and cutoff % (2 * lay.context):
        yield _stops(ctx, "megatron-bridge", "AssertionError: Sequence length must be divisible by 2 * context parallel "
                     "size if context parallel is used.", "cutoff_len" if ctx.args.is_set("cutoff_len") else
                     "context_parallel_size", f"cutoff_len: {cutoff - cutoff % (2 * lay.context)} (a multiple of "
                     f"2 x {lay.context}; megatron-bridge's seq_length is cutoff_len)")  # fmt: skip
    if bridge:  # the world: LLaMA-Factory's own, stricter check comes first (LF263)
        yield from _bridge_recompute(ctx, lay)
        return
    world, experts = lay.world_size, lay.expert_tensor * lay.expert * lay.pipeline
    if world % lay.model_parallel:
        yield _stops(ctx, "megatron-core", f"RuntimeError: world_size ({world}) is not divisible by {lay.model_parallel}",
                     _set_key(ctx, *SIZES[:3]), f"make tensor x pipeline x context parallel sizes divide the {world} "
                     "processes", on_world=True)  # fmt: skip
    elif world % experts:
        yield _stops(ctx, "megatron-core", f"RuntimeError: world_size ({world}) is not divisible by "
                     f"expert_tensor_model_pipeline_parallel size ({experts})", _set_key(ctx, "expert_model_parallel_size"),
                     f"make expert tensor x expert x pipeline parallel sizes divide the {world} processes", on_world=True)  # fmt: skip


def _bridge_recompute(ctx: Context, lay):
    """megatron-core 0.16.1 TransformerConfig.__post_init__: megatron-bridge hands LLaMA-Factory's recompute settings
    to the model provider as they are (main ff6d4d12e config_builder.py, _apply_optional_provider_attr), with no
    defaults for the method or the layers (mcore_adapter fills in uniform, 1)."""
    granularity, method, layers = lay.recompute_granularity, lay.recompute_method, lay.recompute_num_layers
    if granularity == "full" and method is None:
        yield _stops(ctx, "megatron-core", 'ValueError: Using recompute_granularity: full so recompute_method must be '
                     '"block" or "uniform"', "recompute_granularity", "add recompute_method: uniform and "
                     "recompute_num_layers: 1")  # fmt: skip
    elif granularity == "full" and layers is None:
        yield _stops(ctx, "megatron-core", "ValueError: When using recompute_granularity: full recompute_num_layers "
                     "must be between 1 and num_layers_per_pipeline_rank", "recompute_method",
                     "add recompute_num_layers: 1")  # fmt: skip
    elif granularity == "selective" and layers is not None:
        yield _stops(ctx, "megatron-core", "ValueError: When using recompute_granularity: selective "
                     "recompute_num_layers must be None.", "recompute_num_layers", "remove recompute_num_layers")  # fmt: skip


MEGATRON_LAYOUT = Rule(
    code="LF265",
    name="megatron-parallel-layout",
    severity=ERROR,
    summary="A Megatron parallel layout that mcore_adapter, megatron-bridge or Megatron-Core refuses at start-up.",
    what="Under `USE_MCA=1` or `USE_MEGATRON_BRIDGE=1`, reports parallel sizes below 1, `sequence_parallel` without "
    "tensor parallelism, `virtual_pipeline_model_parallel_size` without pipeline parallelism, a `cutoff_len` that "
    "context parallelism cannot split (megatron-bridge), recompute settings Megatron-Core refuses (megatron-bridge "
    "passes them on without defaults: `recompute_granularity: full` needs `recompute_method` and "
    "`recompute_num_layers`), and, under `USE_MCA=1`, a process count that tensor x pipeline x context parallel sizes "
    "(or expert tensor x expert x pipeline) do not divide.",
    why="Megatron-Core checks the layout when it initialises its process groups and model config, after the "
    "processes have started and the model is being loaded.",
    example=Example("tensor_model_parallel_size: 3", options=_MCA_8),
    use_instead=Example("tensor_model_parallel_size: 2\nsequence_parallel: true", options=_MCA_8),
    upstream="megatron-core `parallel_state.initialize_model_parallel`, `ModelParallelConfig.__post_init__` "
    "(0.15.0-0.16.1); LLaMA-Factory main `MegatronBridgeArguments.__post_init__` (ff6d4d12e); megatron-bridge 0.3.1 "
    "`ConfigContainer.validate`.",
    check=_check_layout,
)


def _check_model_split(ctx: Context):
    """megatron-core 0.16.1 TransformerConfig.__post_init__ (heads, query groups, experts), transformer_block.py::
    get_num_layers_to_build (layers per pipeline stage), moe/moe_layer.py (experts per expert-parallel rank)."""
    lay = ctx.parallel_layout
    if lay is None or lay.invalid:
        return
    info = ctx.model_info
    shape = info.shape if info is not None else None
    if shape is None:
        return
    model = f"{info.name} ({info.source.split(' (')[0]})"
    if shape.heads % lay.tensor:
        yield _stops(ctx, "megatron-core", f"ValueError: num_attention_heads ({shape.heads}) must be a multiple of "
                     f"tensor_model_parallel_size ({lay.tensor}).", _set_key(ctx, "tensor_model_parallel_size"),
                     f"a tensor parallel size that divides the {shape.heads} attention heads of {model}")  # fmt: skip
    elif shape.kv_heads % lay.tensor and lay.tensor % shape.kv_heads:
        yield _stops(ctx, "megatron-core", f"ValueError: num_query_groups ({shape.kv_heads}) must be a multiple or "
                     f"divisor of tensor_model_parallel_size ({lay.tensor}).", _set_key(ctx, "tensor_model_parallel_size"),
                     f"a tensor parallel size that divides or is a multiple of the {shape.kv_heads} key/value heads of {model}")  # fmt: skip
    elif shape.kv_heads % lay.tensor:  # 0.15.x (mcore_adapter accepts >= 0.15) still asked for a multiple
        yield Finding(f"megatron-core 0.15 stops with: ValueError: num_query_groups ({shape.kv_heads}) must be a "
                      f"multiple of tensor_model_parallel_size ({lay.tensor}) (0.16 also accepts a divisor)",
                      key=_set_key(ctx, "tensor_model_parallel_size"), at="value", severity=INFO,
                      fix="megatron-core 0.16 or later, or a tensor parallel size that divides the key/value heads")  # fmt: skip
    custom = ctx.args.get("pipeline_model_parallel_layout") if "pipeline_model_parallel_layout" in ctx.table else None
    uneven = "num_layers_in_" in str(ctx.args.get("additional_configs") if "additional_configs" in ctx.table else "")
    layers = shape.layers + int(lay.account_for_embedding) + int(lay.account_for_loss)
    if lay.pipeline > 1 and not custom and not uneven:
        if layers % lay.pipeline:
            yield _stops(ctx, "megatron-core", "AssertionError: num_layers should be divisible by "
                         f"pipeline_model_parallel_size ({model} has {layers} layers, split over {lay.pipeline} stages)",
                         _set_key(ctx, "pipeline_model_parallel_size"), f"a pipeline parallel size that divides {layers}")  # fmt: skip
        elif lay.virtual_pipeline and (layers // lay.pipeline) % lay.virtual_pipeline:
            yield _stops(ctx, "megatron-core", f"AssertionError: num_layers_per_pipeline_rank {layers // lay.pipeline} "
                         f"should be divisible by vp_size {lay.virtual_pipeline}", "virtual_pipeline_model_parallel_size",
                         f"a virtual pipeline size that divides {layers // lay.pipeline}")  # fmt: skip
    if lay.expert > 1 and shape.moe is None and shape.layers:
        yield _stops(ctx, "megatron-core", f"ValueError: num_moe_experts must be non None to use expert-parallel. "
                     f"({model} is not a mixture of experts)", "expert_model_parallel_size", "expert_model_parallel_size: 1")  # fmt: skip
    elif lay.expert > 1 and shape.moe.experts % lay.expert:
        yield _stops(ctx, "megatron-core", f"AssertionError (moe_layer.py: num_moe_experts % ep_size == 0): "
                     f"{model} has {shape.moe.experts} experts, which {lay.expert} expert-parallel ranks cannot share",
                     "expert_model_parallel_size", f"an expert parallel size that divides {shape.moe.experts}")  # fmt: skip
    forced = lay.engine == "mca" and lay.expert > 1  # mcore_adapter turns it on itself with TP and EP (McaModelConfig)
    if shape.moe is not None and lay.tensor > 1 and not lay.sequence_parallel and not forced:
        # moe/moe_layer.py MoELayer.forward (megatron-core 0.16.1), at the first training step
        yield _stops(ctx, "megatron-core", "ValueError: During training, performance may degrade if MoE and tensor "
                     "parallelismare enabled without also enabling sequence parallelism.", "sequence_parallel"
                     if ctx.args.is_set("sequence_parallel") else "tensor_model_parallel_size", "sequence_parallel: true")  # fmt: skip


MEGATRON_MODEL_SPLIT = Rule(
    code="LF266",
    name="megatron-model-split",
    severity=ERROR,
    summary="Parallel sizes that do not divide the model's heads, layers or experts (`USE_MCA=1`, `USE_MEGATRON_BRIDGE=1`).",
    what="Compares the layout with the model's shape (its local config.json, or lf-lint's catalogue): attention "
    "heads and key/value heads against tensor parallelism, layers (plus the embedding and loss when "
    "`account_for_*_in_pipeline_split`) against pipeline and virtual pipeline parallelism, experts against expert "
    "parallelism.",
    why="Megatron-Core asserts these while it builds the model, after the checkpoint conversion and the process "
    "groups: minutes of GPU time before the error.",
    example=Example("pipeline_model_parallel_size: 8", options=_MCA_8),  # Qwen3-0.6B: 28 layers
    use_instead=Example("pipeline_model_parallel_size: 4", options=_MCA_8),
    upstream="megatron-core `TransformerConfig.__post_init__`, `transformer_block.get_num_layers_to_build`, "
    "`moe_layer.BaseMoELayer` (0.16.1).",
    check=_check_model_split,
)


class _Micro(Record):
    count: int | None  # micro-batches per optimizer step (None: the global batch does not split)
    global_batch: int
    micro_batch: int
    how: str  # how they were found, in words


def _micro_batches(ctx: Context, lay) -> _Micro | None:
    """Megatron's micro-batches per optimizer step: mcore_adapter passes ``gradient_accumulation_steps``
    (McaTrainer.training_step); megatron-bridge divides the global batch LLaMA-Factory computed by micro-batch x
    data-parallel size (megatron-core ConstantNumMicroBatchesCalculator). None when the sizes are unusable."""
    from ..megatron_steps import bridge_global_batch

    a = ctx.args
    b, ga = a.per_device_train_batch_size, a.gradient_accumulation_steps
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in (b, ga)):
        return None
    if lay.engine == "mca":
        return _Micro(ga, b * ga * (lay.data_parallel or 1), b, f"gradient_accumulation_steps {ga}")
    parallel = lay.model_parallel * lay.expert
    if lay.world_size % parallel:  # LF263
        return None
    gbs = bridge_global_batch(b, ga, lay.world_size, parallel)
    plan = ctx.plan
    if plan is not None and plan.steps is not None:  # extra_config may set the batch sizes
        b, gbs = plan.steps.per_device_train_batch_size, plan.steps.total_train_batch_size
    how = (f"global batch {gbs} (max({a.per_device_train_batch_size} x {ga} x {lay.world_size} // (TP x PP x CP x "
           f"EP = {parallel}), {a.per_device_train_batch_size})) / ({b} x data-parallel size {lay.data_parallel})")  # fmt: skip
    split = gbs % (b * lay.data_parallel) == 0
    return _Micro(gbs // (b * lay.data_parallel) if split else None, gbs, b, how)


def _check_megatron_batches(ctx: Context):
    """megatron-core ConstantNumMicroBatchesCalculator (megatron-bridge) and schedules.py::
    forward_backward_pipelining_with_interleaving (0.15.0-0.16.1): the micro-batches of one step."""
    lay = ctx.parallel_layout
    micro = _micro_batches(ctx, lay) if lay is not None and not lay.invalid else None
    if micro is None:
        return
    ga, bridge = ctx.args.gradient_accumulation_steps, lay.engine == "megatron_bridge"
    if micro.count is None:
        yield _stops(ctx, "megatron-core", f"AssertionError: global batch size ({micro.global_batch}) is not divisible "
                     f"by micro batch size ({micro.micro_batch}) times data parallel size ({lay.data_parallel}) "
                     f"({micro.how.split(' / (')[0]})", "gradient_accumulation_steps",
                     f"gradient_accumulation_steps a multiple of expert_model_parallel_size {lay.expert}: LLaMA-Factory "
                     "divides the global batch by it", on_world=True)  # fmt: skip
        return
    if bridge and micro.count != ga:
        yield Finding(f"gradient_accumulation_steps {ga} gives {micro.count} micro-batches per iteration "
                      f"({micro.how}): LLaMA-Factory divides the global batch by expert_model_parallel_size "
                      f"{lay.expert} too, although expert parallelism shares the data-parallel ranks",
                      key="gradient_accumulation_steps", at="value", severity=INFO,
                      fix=f"gradient_accumulation_steps: {ga * lay.expert} for {ga} micro-batches per iteration")  # fmt: skip
    count, pp = micro.count, lay.pipeline
    if lay.virtual_pipeline and pp > 1 and (count < pp or count % pp):
        if count < pp:  # the message as megatron-core writes it (no space before "should")
            message = f"ValueError: The number of contiguous micro-batches in a virtual pipeline stageshould range in [PP={pp} , M={count}]"
        else:
            message = (f"RuntimeError: The remainder of M (the total micro-batches) divided by N (number of contiguous "
                       f"micro-batches in a virtual pipeline stage) should be 0, or larger than or equal to the "
                       f"pipeline-parallel size, but it is {count % pp}.")  # fmt: skip
        yield _stops(ctx, "megatron-core", f"{message} (M: {micro.how}; N: the pipeline size {pp})",
                     "gradient_accumulation_steps", f"micro-batches per step that are a multiple of the pipeline size "
                     f"{pp}, or no virtual pipeline", on_world=bridge)  # fmt: skip


def _check_mca_loader(ctx: Context):
    """McaTrainer (alibaba/ROLL 8eb27cc, trainer/trainer.py): _get_train_cyclic_iterator (802-806) never yields from
    an empty loader; _inner_training_loop divides by len(loader) // GA (889)."""
    plan = ctx.plan
    if plan is None or plan.steps is None or plan.layout is None or plan.layout.engine != "mca":
        return
    s, dp = plan.steps, plan.layout.data_parallel
    length, ga, b = s.batches_per_epoch, s.gradient_accumulation_steps, s.per_device_train_batch_size
    if length is None or s.total_steps <= 0:
        return
    per_rank = f"{s.num_examples:,} examples // {b} per batch // {dp} data-parallel ranks = {length:,} micro-batches per rank"
    if length == 0:
        yield Finding(f"McaTrainer's data loader has no batch ({per_rank}; the last partial batch is always dropped): "
                      "it prints its start-up block and then hangs, its cyclic iterator never yields",
                      key="per_device_train_batch_size", at="value", fix="more data, a smaller "
                      "per_device_train_batch_size or fewer data-parallel ranks")  # fmt: skip
    elif length < ga:
        yield Finding(f"McaTrainer stops with: ZeroDivisionError: division by zero after its first update "
                      f"({per_rank}, fewer than gradient_accumulation_steps {ga}: state.epoch divides by "
                      f"{length} // {ga} = 0)", key="gradient_accumulation_steps", at="value",
                      fix=f"gradient_accumulation_steps: {length} or less")  # fmt: skip


def _check_batches(ctx: Context):
    from .plan import on_plan

    yield from _check_megatron_batches(ctx)
    yield from on_plan(_check_mca_loader)(ctx)


MEGATRON_BATCHES = Rule(
    code="LF267",
    name="megatron-micro-batches",
    severity=ERROR,
    summary="Micro-batches a Megatron launch cannot run: a global batch megatron-core cannot split, an interleaved "
    "pipeline without enough micro-batches, McaTrainer with fewer batches than accumulation steps.",
    what="Under `USE_MEGATRON_BRIDGE=1`, reports a global batch (LLaMA-Factory's b x GA x world // (TP x PP x CP x "
    "EP)) that micro-batch x data-parallel size does not divide, and notes when expert parallelism shrinks the "
    "micro-batches per iteration below `gradient_accumulation_steps`. With a virtual pipeline, reports micro-batches "
    "per step that are fewer than, or not a multiple of, the pipeline size. Under `USE_MCA=1`, reports a data loader "
    "with no batch on a data-parallel rank (the run hangs) or with fewer batches than `gradient_accumulation_steps` "
    "(it stops after its first update).",
    why="Megatron-Core checks the micro-batches when the run starts (megatron-bridge) or at the first step "
    "(interleaved schedule); McaTrainer's loop hangs or divides by zero. None of this shows before the GPUs run.",
    example=Example("gradient_accumulation_steps: 1\nexpert_model_parallel_size: 2\nmodel_name_or_path: Qwen/Qwen3-30B-A3B\n"
                    "finetuning_type: full", options=_BRIDGE_8),
    use_instead=Example("gradient_accumulation_steps: 2\nexpert_model_parallel_size: 2\nmodel_name_or_path: Qwen/Qwen3-30B-A3B\n"
                        "finetuning_type: full\nsave_steps: 100", options=_BRIDGE_8),
    upstream="megatron-core `ConstantNumMicroBatchesCalculator`, `forward_backward_pipelining_with_interleaving` "
    "(0.15.0-0.16.1); LLaMA-Factory main `config_builder._compute_train_schedule` (ff6d4d12e); mcore_adapter "
    "`McaTrainer._inner_training_loop` (alibaba/ROLL 8eb27cc).",
    check=_check_batches,
)

# mcore_adapter trainer/utils.py::get_megatron_lr_scheduler: the Trainer's names Megatron knows
_MCA_SCHEDULERS = {"constant_with_warmup": "constant", "inverse_sqrt": "inverse-square-root", "cosine_with_min_lr":
                   "cosine", "cosine_warmup_with_min_lr": "cosine", "warmup_stable_decay": "WSD"}  # fmt: skip


def _check_schedule(ctx: Context):
    lay = ctx.parallel_layout
    if lay is None:
        return
    yield from (_mca_schedule(ctx) if lay.engine == "mca" else _bridge_schedule(ctx))


def _mca_schedule(ctx: Context):
    """mcore_adapter get_megatron_lr_scheduler (trainer/utils.py:149-189, alibaba/ROLL 8eb27cc) and megatron-core
    OptimizerParamScheduler.__init__ (asserts lr_decay_steps > 0 and lr_warmup_steps < lr_decay_steps)."""
    a = ctx.args
    kind = str(getattr(a.lr_scheduler_type, "value", a.lr_scheduler_type) or "linear")
    style = _MCA_SCHEDULERS.get(kind, kind)
    kwargs = a.lr_scheduler_kwargs if isinstance(a.lr_scheduler_kwargs, dict) else {}
    if style not in ("constant", "cosine", "linear", "inverse-square-root", "WSD"):
        yield Finding(f"mcore_adapter stops with: ValueError: lr_scheduler_type {kind} is not supported",
                      key="lr_scheduler_type", at="value", fix="linear, cosine, constant, constant_with_warmup, "
                      "inverse_sqrt, cosine_with_min_lr or warmup_stable_decay")  # fmt: skip
        return
    if style == "WSD" and kwargs.get("wsd_decay_steps") is None:
        yield Finding("mcore_adapter stops with: AssertionError: wsd_decay_steps is required for WSD",
                      key="lr_scheduler_type", at="value", fix="lr_scheduler_kwargs: {wsd_decay_steps: N}")  # fmt: skip
    plan = ctx.plan
    if plan is None or plan.steps is None or plan.layout is None:
        return
    s = plan.steps
    decay = kwargs.get("lr_decay_steps", s.total_steps)
    if isinstance(decay, (int, float)) and s.warmup_steps >= decay:
        yield Finding(f"megatron-core stops with: AssertionError (OptimizerParamScheduler: lr_warmup_steps < "
                      f"lr_decay_steps): {s.warmup_steps:,} warmup steps and {decay:,} decay steps",
                      key=_set_key(ctx, "warmup_ratio", "warmup_steps"), at="value",
                      fix="a warmup shorter than the run, e.g. warmup_ratio: 0.03")  # fmt: skip


def _bridge_schedule(ctx: Context):
    """config_builder.py::_resolve_warmup_steps and _create_base_config (main ff6d4d12e): Megatron tests the
    intervals as given (megatron-bridge 0.3.1 training/train.py: ``step % interval == 0``)."""
    plan, a = ctx.plan, ctx.args
    steps = plan.steps if plan is not None and plan.layout is not None else None
    if steps is not None and 0 < steps.warmup_steps < 1:
        meant = max(1, round(steps.total_steps * steps.warmup_steps))
        why = "transformers 5 copies warmup_ratio into warmup_steps and " if a.is_set("warmup_ratio") else ""
        yield Finding(f"megatron-bridge is handed a warmup of {steps.warmup_steps:g} iterations ({why}LLaMA-Factory "
                      "passes warmup_steps on as iterations): one iteration at learning rate 0, then the peak, no "
                      "ramp", key=_set_key(ctx, "warmup_steps", "warmup_ratio"), at="value", severity=WARNING,
                      fix=f"warmup_steps: {meant} (the iterations the ratio meant)")  # fmt: skip
    from ..steps import PlanTooLong, steps_passing_modulo

    for name, verb in (("save_steps", "saves a checkpoint"), ("logging_steps", "logs"), ("eval_steps", "evaluates")):
        value = a.get(name)
        if not (a.is_set(name) and isinstance(value, float) and 0 < value < 1):
            continue
        try:
            hits = len(steps_passing_modulo(value, steps.total_steps)) if steps is not None else None
        except PlanTooLong:
            hits = None
        if hits is None:
            outcome, meant = "only where that holds exactly (every step for 0.5 or 0.25, almost never for 0.1)", "a whole number"
        else:
            total = steps.total_steps
            outcome = (f"at every one of the {total:,} iterations" if hits == total else f"{hits:,} time(s) in {total:,} "
                       "iterations" if hits else f"in none of the {total:,} iterations")  # fmt: skip
            meant = f"{name}: {max(1, round(total * value)):,}"
        yield Finding(f"megatron-bridge does not read {name} {value:g} as a ratio: Megatron tests step % {value:g} == 0, "
                      f"so it {verb} {outcome}", key=name, at="value", severity=WARNING,
                      fix=f"{meant} (the iterations the ratio meant)")  # fmt: skip


MEGATRON_SCHEDULE = Rule(
    code="LF268",
    name="megatron-schedule",
    severity=ERROR,
    summary="Learning-rate schedules and intervals the Megatron launches refuse or misread.",
    what="Under `USE_MCA=1`, reports `lr_scheduler_type`s mcore_adapter does not map to Megatron (and WSD without "
    "`wsd_decay_steps`), and a warmup that is not shorter than the run (errors). Under `USE_MEGATRON_BRIDGE=1`, "
    "warns about a warmup below one iteration (on transformers 5 `warmup_ratio` becomes exactly that) and about "
    "ratio `save_steps`, `logging_steps` and `eval_steps`, which Megatron takes literally.",
    why="mcore_adapter builds Megatron's own scheduler, which asserts what the Trainer allows; megatron-bridge gets the "
    "Trainer's values without the Trainer's ratio semantics.",
    example=Example("lr_scheduler_type: cosine_with_restarts", options=_MCA_8),
    use_instead=Example("lr_scheduler_type: cosine", options=_MCA_8),
    upstream="mcore_adapter `get_megatron_lr_scheduler` (alibaba/ROLL 8eb27cc); megatron-core "
    "`OptimizerParamScheduler`; LLaMA-Factory main `config_builder._resolve_warmup_steps` (ff6d4d12e).",
    check=_check_schedule,
)

RULES = [LAUNCH_SWITCH, BRIDGE_LIMITS, BRIDGE_PARALLEL, MCA_OVERLAP, MEGATRON_LAYOUT, MEGATRON_MODEL_SPLIT,
         MEGATRON_BATCHES, MEGATRON_SCHEDULE]  # fmt: skip
