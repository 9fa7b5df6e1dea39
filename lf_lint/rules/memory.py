"""Findings about GPU memory on the target GPU (``--gpu``): too much, too tight, too little used.

They read the ``memory`` fact (lf_lint/memory/report.py). The numbers are estimates and every
message says so; the accuracy against published measurements is printed by
benchmarks/memory_accuracy.py.
"""

from __future__ import annotations

from ..diagnostics import Severity
from ..steps import plan_steps
from .base import Context, Example, Finding, Rule

ERROR, WARNING, INFO = Severity.ERROR, Severity.WARNING, Severity.INFO
_GPU = {"gpu": "A100-40G"}


def _judged(ctx: Context):
    if ctx.options.get("gpu") is None:  # no target GPU, no verdict (and no need to estimate)
        return None
    report = ctx.memory
    if report is None or report.verdict is None:
        return None
    return report


def batch_and_accumulation(args) -> tuple[int, int]:
    from ..memory.llamafactory import batch_and_accumulation as resolved

    return resolved(args)


def _batch_key(ctx: Context) -> str:
    """Where a finding about the micro-batch points: the batch size, or the model when the default is used."""
    return "per_device_train_batch_size" if ctx.args.is_set("per_device_train_batch_size") else "model_name_or_path"


def _check_oom(ctx: Context):
    report = _judged(ctx)
    if report is None or report.verdict.status != "oom":
        return
    from ..memory.advice import remedies

    v, parts = report.verdict, report.estimate.breakdown()
    biggest = max(parts, key=parts.get)
    batch, accumulation = batch_and_accumulation(ctx.args)
    from ..memory.llamafactory import liger_model_types

    liger = ctx.args.stage in ("pt", "sft") and report.model.shape.model_type in liger_model_types(ctx.target.lf)
    megatron = report.inputs.megatron is not None
    if megatron:  # layouts, the distributed optimizer, recomputation (megatron_advice.py)
        from ..memory.megatron_advice import megatron_remedies

        fixes = megatron_remedies(report, report.gpu)
    else:
        fixes = remedies(report.inputs, batch, accumulation, report.gpu, liger, report.variant)
    sharded = report.inputs.zero_stage == 3 or report.inputs.fsdp
    fix = (
        "; or ".join(f"{r.change} -> est. {r.need_gib:.1f} GiB" for r in fixes)
        if fixes
        else "a larger card"
        if not ctx.args.trains
        else "more GPUs (more data-parallel ranks for the distributed optimizer, room for more tensor or pipeline "
        "parallelism), or a larger card"
        if megatron
        else f"train on more GPUs{'' if sharded else ' with ZeRO-3'}, or a larger card"
    )
    if report.estimate.phase == "model loading":
        why, key = _loading(ctx, report)
        yield Finding(
            f"estimated {v.need_gib:.1f} GiB per GPU while the model loads exceeds the {report.gpu.name}'s "
            f"{v.capacity_gib:g} GiB: {why}; it will run out of memory before training starts",
            key=key,
            at="value",
            fix=fix,
        )
        return
    if report.estimate.phase == "evaluation":
        yield Finding(
            f"estimated {v.need_gib:.1f} GiB per GPU during evaluation exceeds the {report.gpu.name}'s "
            f"{v.capacity_gib:g} GiB: {_eval_batch_text(ctx, report)}; it will run out of memory at the first "
            "evaluation",
            key=_eval_key(ctx),
            at="value",
            fix=fix,
        )
        return
    yield Finding(
        f"estimated peak {v.need_gib:.1f} GiB per GPU exceeds the {report.gpu.name}'s {v.capacity_gib:g} GiB "
        f"(largest part: {biggest.replace('logits', 'logits/loss')} {parts[biggest]:.1f} GiB): it will run out of memory",
        key=_batch_key(ctx),
        at="value",
        fix=fix,
    )


OUT_OF_MEMORY = Rule(
    code="LF601",
    name="out-of-memory",
    severity=ERROR,
    summary="The estimated peak memory per GPU exceeds the target GPU.",
    what="Estimates the peak memory of one training process (weights, gradients, optimizer states, activations at "
    "cutoff_len, logits and loss, buffers) and reports it when it is larger than the GPU given with --gpu, with "
    "the changes that would make it fit. Under DeepSpeed ZeRO-0/1/2 and FSDP the peak can come before training: "
    "every process loads the whole model onto its GPU and LLaMA-Factory casts the trainable weights to fp32 there, "
    "before DeepSpeed casts them back or FSDP shards them; and an evaluation (`eval_strategy`, `do_eval`) runs "
    "`per_device_eval_batch_size` sequences at once, whose logits count whole. Under `USE_MCA=1` and "
    "`USE_MEGATRON_BRIDGE=1` the estimate is Megatron-Core's, pipeline stage by stage (tensor, pipeline, context and "
    "expert parallelism, the distributed optimizer, recomputation, micro-batches in flight), and the changes include "
    "other parallel layouts that Megatron-Core accepts, with the same examples per step.",
    why="An out-of-memory error comes after the model has loaded, often on the longest batch minutes into the "
    "run, on a GPU that is paid for by the hour; one while loading ZeRO-2 or FSDP on many GPUs surprises most, as "
    "the sharded training would fit. So does one at the first evaluation: the Trainer's default eval batch is 8 "
    "sequences, whose logits alone can outweigh a training step.",
    example=Example(
        "model_name_or_path: meta-llama/Meta-Llama-3-8B\nfinetuning_type: full\nper_device_train_batch_size: 4",
        options=_GPU,
    ),
    use_instead=Example(
        "model_name_or_path: meta-llama/Meta-Llama-3-8B\nfinetuning_type: lora\nper_device_train_batch_size: 2",
        options=_GPU,
    ),
    check=_check_oom,
)


def _loading(ctx: Context, report) -> tuple[str, str]:
    """Why loading needs the memory (loading.py), and the key that chose the sharding to point at."""
    framework = "fsdp" if report.inputs.fsdp else "deepspeed"
    why = "every process loads the whole model onto its GPU, the trainable weights cast to fp32, before " + (
        "FSDP shards it" if framework == "fsdp" else "DeepSpeed casts it back"
    )
    return why, framework if ctx.args.is_set(framework) else "model_name_or_path"


def _eval_key(ctx: Context) -> str:
    for key in ("per_device_eval_batch_size", "eval_strategy", "do_eval", "do_predict"):
        if ctx.args.is_set(key):
            return key
    return "model_name_or_path"


def _eval_batch_text(ctx: Context, report) -> str:
    """Why an evaluation needs more than a training step."""
    from ..memory.estimate import GIB

    a, est = ctx.args, report.estimate
    default = "" if a.is_set("per_device_eval_batch_size") else " (the Trainer's default)"
    if a.predict_with_generate:
        beams = f" in {a.num_beams} beams" if isinstance(a.num_beams, int) and a.num_beams > 1 else ""
        text = (f"per_device_eval_batch_size {a.per_device_eval_batch_size}{default} prompts of up to "
                f"{report.inputs.seq_len:,} tokens, each generating up to {a.max_new_tokens} more{beams}, with their "
                f"KV cache ({est.activations / GIB:.1f} GiB)")  # fmt: skip
    else:
        text = (f"per_device_eval_batch_size {a.per_device_eval_batch_size}{default} sequences of up to "
                f"{report.inputs.seq_len:,} tokens in one forward, whose logits and loss take {est.logits / GIB:.1f} GiB")  # fmt: skip
    return text + (f" (the training steps need {est.training / GIB:.1f} GiB)" if a.trains else "")


def _check_tight(ctx: Context):
    report = _judged(ctx)
    if report is None or report.verdict.status != "tight":
        return
    v = report.verdict
    if report.estimate.phase == "model loading":
        from ..memory.advice import loading_remedies

        why, key = _loading(ctx, report)
        changes = [change for change, _ in loading_remedies(report.inputs, report.gpu, report.variant)]
        yield Finding(
            f"estimated {v.need_gib:.1f} GiB per GPU while the model loads is within {v.margin:.0%} of the "
            f"{report.gpu.name}'s {v.capacity_gib:g} GiB: {why}",
            key=key,
            at="value",
            fix="; or ".join(changes),
        )
        return
    if report.estimate.phase == "evaluation":
        yield Finding(
            f"estimated {v.need_gib:.1f} GiB per GPU during evaluation is within {v.margin:.0%} of the "
            f"{report.gpu.name}'s {v.capacity_gib:g} GiB: {_eval_batch_text(ctx, report)}",
            key=_eval_key(ctx),
            at="value",
            fix="lower per_device_eval_batch_size",
        )
        return
    fix = "lower per_device_train_batch_size (raise gradient_accumulation_steps to keep the examples per step), or enable_liger_kernel"
    setup = report.inputs.megatron
    if setup is not None:
        changes = ["lower per_device_train_batch_size (and raise gradient_accumulation_steps)"]
        changes += ["use_distributed_optimizer: true"] if not setup.distributed_optimizer else []
        changes += ["recompute_granularity: full"] if setup.recompute != "full" else []
        fix = ", ".join(changes) + ", or more tensor or pipeline parallelism (lf-lint suggest lists layouts that fit)"
    yield Finding(
        f"estimated peak {v.need_gib:.1f} GiB per GPU is within {v.margin:.0%} of the {report.gpu.name}'s "
        f"{v.capacity_gib:g} GiB: the longest batch or evaluation may run out of memory",
        key=_batch_key(ctx),
        at="value",
        fix=fix,
    )


TIGHT = Rule(
    code="LF602",
    name="memory-tight",
    severity=WARNING,
    summary="The estimated peak memory per GPU is close to the target GPU's capacity.",
    what="Reports an estimate within the safety margin of the GPU (10%, 15% with 4-bit weights, ZeRO-3/FSDP or a "
    "Megatron launch, where estimates are less certain).",
    why="Fragmentation, a longer batch than usual or the evaluation loop can push a run that almost fits over the edge.",
    example=Example(
        "model_name_or_path: meta-llama/Meta-Llama-3-8B\nper_device_train_batch_size: 6\ncutoff_len: 2048\nbf16: true",
        options=_GPU,
    ),
    use_instead=Example(
        "model_name_or_path: meta-llama/Meta-Llama-3-8B\nper_device_train_batch_size: 2\ngradient_accumulation_steps: 3\n"
        "cutoff_len: 2048\nbf16: true",
        options=_GPU,
    ),
    check=_check_tight,
)


def _check_underused(ctx: Context):
    report = _judged(ctx)
    if report is None or report.verdict.status != "fits":
        return
    if not ctx.args.trains:
        yield from _eval_batch_underused(ctx, report)
        return
    from ..memory.advice import bigger_batch

    batch, accumulation = batch_and_accumulation(ctx.args)
    v = report.verdict
    if accumulation > 1:
        better = bigger_batch(report.inputs, batch, accumulation, report.gpu, report.variant, _fill_pipeline(ctx))
        if better is None:
            return
        new_batch, new_accumulation, need = better
        steps = _steps_with(ctx, new_batch, new_accumulation)
        same = f"same {_examples_per_step(ctx, batch, accumulation):,} examples per optimizer step"
        step_text = f", {steps} steps" if steps else ""
        yield Finding(
            f"the micro-batch uses about {_training_gib(report):.0f} of {v.capacity_gib:g} GiB: per_device_train_batch_size {batch} -> {new_batch} and "
            f"gradient_accumulation_steps {accumulation} -> {new_accumulation} keep the {same} (est. {need:.0f} GiB{step_text}) "
            f"with {new_batch // batch}x fewer, larger micro-batches per step, which trains faster",
            key="per_device_train_batch_size"
            if ctx.args.is_set("per_device_train_batch_size")
            else "gradient_accumulation_steps",
            at="value",
            fix=f"per_device_train_batch_size: {new_batch} and gradient_accumulation_steps: {new_accumulation}",
        )
    elif report.largest_batch and report.largest_batch >= 4 * batch:
        yield Finding(
            f"the micro-batch uses about {_training_gib(report):.0f} of {v.capacity_gib:g} GiB; the card could take per_device_train_batch_size "
            f"{report.largest_batch} (more examples per step: revisit learning_rate)",
            key="per_device_train_batch_size"
            if ctx.args.is_set("per_device_train_batch_size")
            else "model_name_or_path",
            at="value",
            severity=INFO,
        )


def _eval_batch_underused(ctx: Context, report):
    """A config that only evaluates or predicts, one small eval batch at a time where the card takes many more."""
    from ..memory.advice import UNDERUSE_TARGET, largest_eval_batch
    from ..memory.estimate import GIB

    a = ctx.args
    current = a.per_device_eval_batch_size
    larger = largest_eval_batch(report.variant, report.gpu, UNDERUSE_TARGET)
    if not isinstance(current, int) or larger is None or larger[0] < 4 * current:
        return
    size, need = larger
    task = "prediction" if a.do_predict else "evaluation"
    yield Finding(f"the {task} uses about {report.estimate.device / GIB:.0f} of {report.verdict.capacity_gib:g} GiB with "
                  f"per_device_eval_batch_size {current}; {size} (est. {need:.0f} GiB) runs {size // current}x fewer, "
                  "larger batches, which is faster", key="per_device_eval_batch_size" if a.is_set("per_device_eval_batch_size")
                  else "model_name_or_path", at="value", fix=f"per_device_eval_batch_size: {size}", severity=INFO)  # fmt: skip


def _fill_pipeline(ctx: Context) -> int:
    """The accumulation a Megatron pipeline needs to keep its bubble small: 2 x PP micro-batches (megatron-bridge's
    GA counts EP as well), 1 without a pipeline."""
    layout = ctx.parallel_layout
    if layout is None or layout.pipeline == 1:
        return 1
    return 2 * layout.pipeline * (layout.expert if layout.engine == "megatron_bridge" else 1)


def _examples_per_step(ctx: Context, batch: int, accumulation: int) -> int:
    """Over all processes: b x GA x world under the Trainer, the data-parallel ranks' under Megatron."""
    layout = ctx.parallel_layout
    if layout is not None and layout.data_parallel:
        from ..memory.megatron_advice import examples_per_step

        return examples_per_step(ctx.args, layout)
    return batch * accumulation * ctx.launch.world_size


def _training_gib(report) -> float:
    """What training needs, in GiB: the estimate's peak, or what follows a loading peak (loading.py)."""
    from ..memory.estimate import GIB

    return (report.estimate.training or report.estimate.device) / GIB


def _steps_with(ctx: Context, batch: int, accumulation: int) -> str | None:
    plan = ctx.plan
    if plan is None or plan.steps is None or plan.trainer != "Trainer":
        return None
    from ..plan import step_inputs

    inputs = step_inputs(ctx.args, plan.num_examples, ctx.launch, ctx.target)._replace(
        per_device_batch=batch, accumulation=accumulation
    )
    try:
        new = plan_steps(inputs, ctx.target.tf).total_steps
    except ValueError:
        return None
    old = plan.steps.total_steps
    return f"{new:,} total" + (" (unchanged)" if new == old else f" instead of {old:,}")


UNDERUSED = Rule(
    code="LF603",
    name="micro-batch-underused",
    severity=WARNING,
    summary="A small micro-batch with gradient accumulation where the GPU could take a larger one.",
    what="When the estimate leaves most of the GPU free and gradient accumulation is above 1, proposes the "
    "largest per-device batch (dividing the examples per step, under 80% of the card) with the matching "
    "accumulation: the same optimizer steps, each made of fewer, larger micro-batches. For a config that only "
    "evaluates or predicts, notes a `per_device_eval_batch_size` at least 4x larger that stays under 80%.",
    why="A micro-batch that fills a tenth of the GPU leaves its compute idle; gradient accumulation then repeats "
    "small forward/backward passes that one larger pass would do faster, for the same result.",
    example=Example(
        "model_name_or_path: Qwen/Qwen2.5-0.5B\nper_device_train_batch_size: 1\ngradient_accumulation_steps: 16\ncutoff_len: 1024",
        options={"gpu": "H100"},
    ),
    use_instead=Example(
        "model_name_or_path: Qwen/Qwen2.5-0.5B\nper_device_train_batch_size: 16\ngradient_accumulation_steps: 1\n"
        "cutoff_len: 1024",
        options={"gpu": "H100"},
    ),
    check=_check_underused,
)


def _check_small_batch(ctx: Context):
    plan = ctx.plan
    if plan is None or plan.steps is None or plan.num_examples is None:
        return
    total = plan.steps.total_train_batch_size
    if total <= 4 and plan.num_examples >= 5000:
        yield Finding(
            f"{total} example(s) per optimizer step for {plan.num_examples:,} examples: {plan.steps.total_steps:,} small, noisy updates",
            key="gradient_accumulation_steps"
            if ctx.args.is_set("gradient_accumulation_steps")
            else "per_device_train_batch_size",
            at="value",
            fix="raise gradient_accumulation_steps (16-64 examples per step is common for fine-tuning)",
        )


SMALL_BATCH = Rule(
    code="LF604",
    name="small-effective-batch",
    severity=INFO,
    summary="Very few examples per optimizer step for a large dataset.",
    what="Reports a total train batch (per-device batch x accumulation x processes) of 4 or less when at least "
    "5,000 examples are trained on.",
    why="Each update then follows a handful of examples: many slow, noisy steps; fine-tuning recipes usually "
    "take 16 to 64 examples per step.",
    example=Example("per_device_train_batch_size: 1\ngradient_accumulation_steps: 2", options={"num_examples": 20000}),
    use_instead=Example(
        "per_device_train_batch_size: 1\ngradient_accumulation_steps: 16", options={"num_examples": 20000}
    ),
    check=_check_small_batch,
)


def _check_bf16(ctx: Context):
    gpu = ctx.options.get("gpu")
    if gpu is None or gpu.bf16:
        return
    a = ctx.args
    if a.bf16:
        yield Finding(f"transformers stops with: Your setup doesn't support bf16/gpu. (the {gpu.name} has no bf16)",
                      key="bf16", at="value", fix="fp16: true instead of bf16: true")  # fmt: skip
    if a.pure_bf16:
        yield Finding(f"LLaMA-Factory stops with: This device does not support `pure_bf16`. (the {gpu.name} has no bf16)",
                      key="pure_bf16", at="value", fix="drop pure_bf16; use fp16: true")  # fmt: skip


BF16_GPU = Rule(
    code="LF605",
    name="bf16-unsupported-gpu",
    severity=ERROR,
    summary="bf16 (or pure_bf16) on a GPU without bf16 (V100, T4, ...).",
    what="Reports `bf16: true` or `pure_bf16: true` when the target GPU (--gpu) has no bf16 support.",
    why="The Trainer refuses bf16 on pre-Ampere GPUs at start-up (`TrainingArguments.__post_init__`), and "
    "LLaMA-Factory refuses pure_bf16 (`hparams/parser.py::get_train_args`).",
    upstream="transformers `TrainingArguments.__post_init__` (4.45-5.6); LLaMA-Factory `get_train_args` (0.9.2-0.9.5).",
    example=Example("bf16: true\nper_device_train_batch_size: 1", options={"gpu": "V100"}),
    use_instead=Example("bf16: false\nfp16: true\nper_device_train_batch_size: 1", options={"gpu": "V100"}),
    check=_check_bf16,
)

RULES = [OUT_OF_MEMORY, TIGHT, UNDERUSED, SMALL_BATCH, BF16_GPU]
