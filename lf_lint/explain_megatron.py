"""The step plan of the Megatron launches in words: megatron-bridge's schedule (it prints no Trainer block) and,
for ``--explain``, the derivation of McaTrainer's and megatron-bridge's numbers (megatron_steps.py)."""

from __future__ import annotations

import math

from .plan import Plan
from .steps import behaviour


def _n(value) -> str:
    if value is None:
        return "?"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.6g}"
    return f"{int(value):,}"


def _steps(steps: tuple[int, ...], limit: int = 6) -> str:
    if len(steps) <= limit:
        return ", ".join(f"{x:,}" for x in steps)
    return ", ".join(f"{x:,}" for x in steps[: limit - 1]) + f", ..., {steps[-1]:,}"


def layout_line(plan: Plan) -> str:
    lay = plan.layout
    dp = _n(lay.data_parallel) if lay.data_parallel is not None else "none"
    return f"  Data-parallel size = {dp} ({lay.derivation})"


def micro_batches(plan: Plan) -> int:
    """Megatron's num_microbatches: global batch / (micro-batch x data-parallel size)."""
    s = plan.steps
    return s.total_train_batch_size // (s.per_device_train_batch_size * plan.layout.data_parallel)


def bridge_block(plan: Plan) -> list[str]:
    """megatron-bridge's schedule as LLaMA-Factory builds it (it logs no start-up block of its own)."""
    s = plan.steps
    lines = [
        f"Step plan (megatron-bridge, {plan.target.describe()}, {plan.launch.describe()}):",
        f"  Num examples = {_n(s.num_examples)} (converted rows){'' if plan.exact else '  (estimate)'}",
    ]
    if plan.num_eval_examples is not None:
        lines.append(f"  Num eval examples = {_n(plan.num_eval_examples)} (each evaluation runs 32 global batches)")
    lines += [
        layout_line(plan),
        f"  Global batch size = {_n(s.total_train_batch_size)}",
        f"  Micro-batch size = {_n(s.per_device_train_batch_size)}",
        f"  Micro-batches per iteration = {_n(micro_batches(plan))} (gradient_accumulation_steps = {s.gradient_accumulation_steps})",
        f"  Train iterations = {_n(s.total_steps)} ({s.epochs_trained:g} passes over the data)",
        f"  Warmup iterations = {_n(s.warmup_steps)}",
        f"  Checkpoints = {len(s.checkpoint_steps)}" + (f" at iterations {_steps(s.checkpoint_steps)}" if s.checkpoint_steps else ""),
    ]  # fmt: skip
    if s.eval_steps_at:
        lines.append(f"  Evaluations = {len(s.eval_steps_at)} at iterations {_steps(s.eval_steps_at)}")
    return lines


def explain_megatron(plan: Plan) -> list[str]:
    """The numbered derivation of a McaTrainer or megatron-bridge plan."""
    s, lay = plan.steps, plan.layout
    lines = [f"How {plan.target.describe()} gets these numbers ({plan.launch.describe()}, {plan.trainer}):", ""]
    lines.append(f"1. Examples: {_n(s.num_examples)} ({plan.basis}).")
    lines.append(f"2. Data-parallel size: {lay.derivation} (megatron-core parallel_state.initialize_model_parallel). "
                 "Tensor, pipeline and context parallel ranks share one micro-batch; only the data-parallel ranks "
                 "read different data.")  # fmt: skip
    body = _bridge(plan, s, lay) if lay.engine == "megatron_bridge" else _mca(plan, s, lay)
    lines += [f"{i}. {text}" for i, text in enumerate(body, start=3)]
    lines.append("")
    lines.append(f"Derived from the source of {plan.derived_from}, not run here (it needs GPUs).")
    return lines


def _mca(plan: Plan, s, lay) -> list[str]:
    b, ga, dp = s.per_device_train_batch_size, s.gradient_accumulation_steps, lay.data_parallel
    out = []
    if s.batches_per_epoch is None:
        out.append("The dataset is streamed: it has no length, so max_steps drives the run.")
    else:
        out.append(f"McaTrainer's loader always drops the last partial batch and shards the batches over the {dp} "
                   f"data-parallel ranks: {_n(s.num_examples)} // {b} // {dp} = {_n(s.batches_per_epoch)} "
                   "micro-batches per epoch per rank (dataloader_drop_last is ignored).")  # fmt: skip
        out.append(f"max(floor({_n(s.batches_per_epoch)} / {ga}), 1) = {_n(s.update_steps_per_epoch)} optimizer "
                   "updates per epoch.")  # fmt: skip
        by_epochs = math.ceil(s.num_train_epochs * s.update_steps_per_epoch)
        if s.epochs_printed != math.ceil(s.num_train_epochs) or s.total_steps != by_epochs:
            out.append(f"max_steps = {_n(s.total_steps)} overrides num_train_epochs; Num Epochs = ceil({_n(s.total_steps)} / "
                       f"{_n(s.update_steps_per_epoch)}) = {_n(s.epochs_printed)}.")  # fmt: skip
        else:
            out.append(f"ceil({s.num_train_epochs:g} epochs x {_n(s.update_steps_per_epoch)}) = {_n(s.total_steps)} "
                       "total optimization steps.")  # fmt: skip
    total = f"Total train batch size = {b} x {ga} x {dp} (data-parallel size) = {_n(s.total_train_batch_size)}"
    if lay.expert > 1:
        wrong = b * ga * lay.world_size // (lay.model_parallel * lay.expert)
        total += (f"; dividing by EP as well ({b} x {ga} x {lay.world_size} // (TP x PP x CP x EP = "
                  f"{lay.model_parallel * lay.expert}) = {wrong:,}) undercounts it: expert parallelism splits the "
                  "experts over the data-parallel ranks, each of which still reads its own micro-batches")  # fmt: skip
    out.append(total + ".")
    rule = "warmup_steps if >= 1, else ceil(total x warmup_steps or warmup_ratio)" if behaviour(plan.target.tf).float_warmup_steps else "warmup_steps if > 0, else ceil(total x warmup_ratio)"  # fmt: skip
    out.append(f"Warmup: {_n(s.warmup_steps)} steps ({rule}; megatron-core requires it to be shorter than the run).")
    out.append(f"Intervals (ratios below 1 are ceil(total x ratio)): logging every {_n(s.logging_steps)}, eval every "
               f"{_n(s.eval_steps)}, save every {_n(s.save_steps)} steps; checkpoints: {len(s.checkpoint_steps)}"
               + (f" at {_steps(s.checkpoint_steps)}" if s.checkpoint_steps else "") + ".")  # fmt: skip
    if s.updates_per_epoch_in_loop:
        out.append(f"The loop takes micro-batches from a cyclic iterator: each loop epoch makes "
                   f"{_n(s.batches_per_epoch)} // {ga} + 1 = {_n(s.updates_per_epoch_in_loop)} steps (the last one "
                   f"wraps around to the start of the data), so the {_n(s.total_steps)} steps end at epoch "
                   f"{s.epochs_trained:g} by McaTrainer's count.")  # fmt: skip
    return out


def _bridge(plan: Plan, s, lay) -> list[str]:
    b, ga, dp, ep = s.per_device_train_batch_size, s.gradient_accumulation_steps, lay.data_parallel, lay.expert
    parallel = lay.model_parallel * ep
    out = [f"Global batch = max({b} x {ga} x {lay.world_size} // (TP x PP x CP x EP = {parallel}), {b}) = "
           f"{_n(s.total_train_batch_size)} (b x GA x world // parallel size: config_builder.py::"
           "_compute_train_schedule; extra_config's train.global_batch_size wins)."]  # fmt: skip
    micro = (f"Megatron accumulates {_n(s.total_train_batch_size)} / ({b} x {dp}) = {_n(micro_batches(plan))} "
             "micro-batches per iteration (megatron-core's ConstantNumMicroBatchesCalculator)")  # fmt: skip
    if ep > 1 and micro_batches(plan) != ga:
        micro += (f": the config's gradient_accumulation_steps divided by EP {ep} (EP shares the data-parallel "
                  f"ranks, so the global batch is {ep}x smaller than {b} x {ga} x {dp})")  # fmt: skip
    out.append(micro + ".")
    if plan.num_examples is not None and s.total_steps and s.epochs_trained:
        out.append(f"Train iterations = max_steps if set, else max(1, ceil({_n(s.num_examples)} / "
                   f"{_n(s.total_train_batch_size)} x {s.num_train_epochs:g})) = {_n(s.total_steps)}; they cover "
                   f"{s.epochs_trained:g} passes over the data (Megatron repeats the data to fill them).")  # fmt: skip
    ratio = (
        "on transformers 5 a set warmup_ratio is copied into warmup_steps and handed over as iterations"
        if behaviour(plan.target.tf).float_warmup_steps
        else "else min(int(iterations x warmup_ratio), iterations)"
    )
    out.append(f"Warmup: {_n(s.warmup_steps)} iterations (warmup_steps when positive; {ratio}).")
    out.append(f"Intervals are Megatron's raw tests (step % interval == 0; a ratio below 1 is almost never hit): log "
               f"every {_n(s.logging_steps)}, evaluate every {_n(s.eval_steps)} (eval_steps, else 100; only with a "
               f"validation set, whatever eval_strategy says, and once more at the end), save every "
               f"{_n(s.save_steps)} (whatever save_strategy says) and at the end: {len(s.checkpoint_steps)} "
               "checkpoint(s)" + (f" at {_steps(s.checkpoint_steps)}" if s.checkpoint_steps else "") + ".")  # fmt: skip
    return out
