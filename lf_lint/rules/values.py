"""Values LLaMA-Factory accepts at start-up but that cannot be what was meant."""

from __future__ import annotations

from ..diagnostics import Severity
from .base import Context, Example, Finding, Rule

# argument -> (test, what happens); each of these starts without an error
SUSPICIOUS = {
    "val_size": (lambda v: v < 0, "a negative val_size means no validation split at all"),
    "num_train_epochs": (lambda v: v <= 0, "the run ends before its first optimizer step"),
    "cutoff_len": (lambda v: v < 1, "every example is truncated to nothing"),
    "logging_steps": (lambda v: v < 0, "a negative interval never logs"),
    "save_steps": (lambda v: v < 0, "a negative interval never saves a checkpoint"),
    "eval_steps": (lambda v: v < 0, "a negative interval never evaluates"),
    "weight_decay": (lambda v: v < 0, "negative weight decay pushes weights away from zero"),
    "label_smoothing_factor": (lambda v: not 0 <= v < 1, "the targets become meaningless outside [0, 1)"),
    "max_grad_norm": (lambda v: v < 0, "a negative norm silently turns gradient clipping off (use 0 to say so)"),
    "per_device_eval_batch_size": (
        lambda v: v < 1,
        "the first evaluation fails: PyTorch's DataLoader needs a positive batch size",
    ),
    "preprocessing_batch_size": (lambda v: v < 1, "datasets then maps the whole dataset as one batch"),
    "max_steps": (
        lambda v: v == 0,
        "max_steps: 0 means zero steps on transformers >= 4.49, not 'use epochs' (that is -1)",
    ),
}


def _check(ctx: Context):
    for name, (test, consequence) in SUSPICIOUS.items():
        value = ctx.args.raw(name) if ctx.args.is_set(name) else None
        if isinstance(value, (int, float)) and not isinstance(value, bool) and test(value):
            yield Finding(f"`{name}: {value}` starts, but {consequence}", key=name, at="value")


SUSPICIOUS_VALUE = Rule(
    code="LF106",
    name="suspicious-value",
    severity=Severity.WARNING,
    summary="A number LLaMA-Factory accepts but that cannot be what was meant (negative intervals, zero epochs, ...).",
    what="Reports values outside their sensible range that do not stop the run at start-up: a negative "
    "`val_size`, zero or negative epochs, `cutoff_len` below 1, negative logging/save/eval intervals, negative "
    "weight decay or gradient norm, a label smoothing outside [0, 1), an eval batch size below 1.",
    why="The run starts and silently does something else than intended (no validation, no checkpoints, no "
    "clipping), or fails later, at the first evaluation.",
    example=Example("save_steps: -1"),
    use_instead=Example("save_steps: 500"),
    check=_check,
)

RULES = [SUSPICIOUS_VALUE]
