"""The step plan in words: the Trainer's start-up block and, for ``--explain``, the derivation."""

from __future__ import annotations

import math

from .plan import Plan
from .steps import behaviour


def _n(value: float | None) -> str:
    if value is None:
        return "?"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.6g}"
    return f"{int(value):,}"


def trainer_block(plan: Plan) -> list[str]:
    """The lines the Trainer logs as ``***** Running training *****``."""
    s = plan.steps
    if s is None:
        return [f"Step plan ({plan.trainer}): not available: {plan.problem}"]
    if plan.trainer == "megatron-bridge":
        from .explain_megatron import bridge_block

        return bridge_block(plan) + _derived(plan)
    approx = "" if plan.exact else "  (estimate)"
    ppo = plan.trainer == "PPOTrainer"  # LLaMA-Factory's own loop logs its block in its own words
    lines = [
        f"Step plan ({plan.trainer}, {plan.target.describe()}, {plan.launch.describe()}):",
        f"  Num examples = {_n(s.num_examples)}{approx}",
    ]
    lines += _per_dataset(plan, "train")
    if plan.num_eval_examples is not None:
        each = " (each eval dataset is evaluated apart: eval_on_each_dataset)" if plan.eval_per_dataset else ""
        lines.append(f"  Num eval examples = {_n(plan.num_eval_examples)}{each}")
        lines += _per_dataset(plan, "eval")
    if plan.layout is not None:
        from .explain_megatron import layout_line

        lines.append(layout_line(plan))
    lines += [
        f"  Num Epochs = {_n(s.epochs_printed)}",
        f"  Instantaneous batch size per device = {_n(s.per_device_train_batch_size)}",
        f"  Total train batch size (w. parallel, {'buffer, ' if ppo else ''}distributed & accumulation) = {_n(s.total_train_batch_size)}",
        f"  Gradient Accumulation steps = {s.gradient_accumulation_steps}",
        f"  Total {'training' if ppo else 'optimization'} steps = {_n(s.total_steps)}",
        f"  Warmup steps = {_n(s.warmup_steps)}",
        f"  Checkpoints = {len(s.checkpoint_steps)}"
        + (f" at steps {_steps_list(s.checkpoint_steps)}" if s.checkpoint_steps else ""),
    ]
    if s.eval_steps_at:
        lines.append(f"  Evaluations = {len(s.eval_steps_at)} at steps {_steps_list(s.eval_steps_at)}")
    if s.optimizer_updates != s.total_steps or s.stops_mid_epoch:
        lines.append(
            f"  Training really ends after {_n(s.optimizer_updates)} updates, at epoch {s.epochs_trained:g} of {s.num_train_epochs:g}"
        )
    if not plan.exact:
        lines.append(f"  Basis: {plan.basis}")
    return lines + _derived(plan)


def _derived(plan: Plan) -> list[str]:
    return [f"  Derived from the source of {plan.derived_from} (not run here)"] if plan.derived_from else []


def _per_dataset(plan: Plan, role: str) -> list[str]:
    """Where the examples come from, when it is not simply every row of one dataset."""
    mine = [d for d in plan.datasets if d.role == role]
    if len(mine) == 1 and mine[0].rows == mine[0].selected == mine[0].examples:
        return []
    lines = []
    for d in mine:
        if d.examples is None:
            lines.append(f"    {d.name}: not counted")
            continue
        taken = "" if d.selected == d.rows else f" ({_n(d.selected)} selected by num_samples/max_samples)"
        lines.append(f"    {d.name}: {_n(d.examples)} valid examples of {_n(d.rows)} rows{taken}")
    return lines


def _steps_list(steps: tuple[int, ...], limit: int = 6) -> str:
    if len(steps) <= limit:
        return ", ".join(f"{x:,}" for x in steps)
    return ", ".join(f"{x:,}" for x in steps[: limit - 1]) + f", ..., {steps[-1]:,}"


def explain_plan(plan: Plan) -> str:
    """Each number of the plan with the arithmetic that produced it."""
    s = plan.steps
    if s is None:
        return f"No step plan: {plan.problem}\n"
    if plan.layout is not None:
        from .explain_megatron import explain_megatron

        return "\n".join(explain_megatron(plan)) + "\n"
    rules = behaviour(plan.target.tf)
    tf = plan.target.transformers
    b, ga, w = s.per_device_train_batch_size, s.gradient_accumulation_steps, s.world_size
    lines = [f"How {plan.target.describe()} gets these numbers ({plan.launch.describe()}):", ""]
    lines.append(f"1. Examples: {_n(s.num_examples)} ({plan.basis}).")
    if s.batches_per_epoch is None:
        lines.append("2. The dataset is streamed: it has no length, so max_steps drives the run.")
    else:
        whole = math.ceil(s.num_examples / b) if plan.trainer == "Trainer" else None
        if plan.trainer == "PPOTrainer":
            lines.append(f"2. PPO takes batches of {b} x {ga} x ppo_buffer_size prompts per process, dropping the last partial one: "
                         f"{_n(s.batches_per_epoch)} batches per epoch per process.")  # fmt: skip
        elif w == 1:
            lines.append(
                f"2. {_n(s.num_examples)} examples / {b} per device = {_n(s.batches_per_epoch)} micro-batches per epoch"
                + (" (the last partial batch is dropped: dataloader_drop_last)" if whole != s.batches_per_epoch else "")
                + "."
            )
        else:
            lines.append(f"2. {_n(s.num_examples)} examples / ({b} per device x {w} processes) = {_n(s.batches_per_epoch)} "
                         "micro-batches per epoch per process (accelerate gives every process the same number of batches).")  # fmt: skip
        if plan.trainer == "Trainer":
            rounding = "ceil" if rules.ceil_updates else "floor"
            other = "floor" if rules.ceil_updates else "ceil"
            exact_div = s.batches_per_epoch % ga == 0
            alt = s.batches_per_epoch // ga if rules.ceil_updates else -(-s.batches_per_epoch // ga)
            note = "" if exact_div else f" ({'before 4.52' if rules.ceil_updates else 'from 4.52'} {other}: {alt})"
            lines.append(f"3. {rounding}({_n(s.batches_per_epoch)} / {ga}) = {_n(s.update_steps_per_epoch)} optimizer updates per epoch on "
                         f"transformers {tf}{note}.")  # fmt: skip
    if s.batches_per_epoch is not None:
        if s.epochs_printed != math.ceil(s.num_train_epochs) or (
            s.total_steps != math.ceil(s.num_train_epochs * s.update_steps_per_epoch)
        ):
            lines.append(f"4. max_steps = {_n(s.total_steps)} overrides num_train_epochs; Num Epochs = ceil({_n(s.total_steps)} / "
                         f"{_n(s.update_steps_per_epoch)}) = {_n(s.epochs_printed)}.")  # fmt: skip
        else:
            lines.append(
                f"4. ceil({s.num_train_epochs:g} epochs x {_n(s.update_steps_per_epoch)}) = {_n(s.total_steps)} total optimization steps."
            )
    lines.append(
        f"5. Total train batch size = {b} x {ga} x {w} = {_n(s.total_train_batch_size)} examples per optimizer step."
    )
    lines.append(
        f"6. Warmup: {_n(s.warmup_steps)} steps ({'warmup_steps if >= 1, else ceil(total x warmup_steps or warmup_ratio)' if rules.float_warmup_steps else 'warmup_steps if > 0, else ceil(total x warmup_ratio)'})."
    )
    lines.append(f"7. Intervals (ratios below 1 are ceil(total x ratio)): logging every {_n(s.logging_steps)}, eval every "
                 f"{_n(s.eval_steps)}, save every {_n(s.save_steps)} steps.")  # fmt: skip
    final = {"any": "any save strategy", "not-best": "save strategies other than best", "steps": "save_strategy steps"}[
        rules.final_save
    ]
    lines.append(f"8. Checkpoints: {len(s.checkpoint_steps)}" + (f" at {_steps_list(s.checkpoint_steps)}" if s.checkpoint_steps else "")
                 + f" (transformers {tf} also saves at the last step for {final}).")  # fmt: skip
    if s.optimizer_updates != s.total_steps or s.stops_mid_epoch:
        lines.append(f"9. The loop really performs {_n(s.optimizer_updates)} updates ({_n(s.updates_per_epoch_in_loop)} per full epoch) "
                     f"and ends at epoch {s.epochs_trained:g} of {s.num_train_epochs:g}.")  # fmt: skip
    return "\n".join(lines) + "\n"
