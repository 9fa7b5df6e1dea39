"""Rules about LLaMA-Factory's launch switches (switches.py): which arguments a config is read with, and what the
Megatron launches refuse before training starts."""

from __future__ import annotations

from ..diagnostics import Severity
from ..loading import Span
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
    use_instead=Example("stage: sft", options=_ON_MAIN),
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
    use_instead=Example("tensor_model_parallel_size: 4\npipeline_model_parallel_size: 2", options={**_ON_MAIN, "num_gpus": 8}),
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

RULES = [LAUNCH_SWITCH, BRIDGE_LIMITS, BRIDGE_PARALLEL, MCA_OVERLAP]
