"""The Hugging Face Trainer's step arithmetic, per transformers release.

Given the number of training examples and the arguments, ``plan_steps`` computes what the
Trainer prints at the start of training (``Total optimization steps``, ``Num Epochs``, ...),
the warmup, logging/eval/save intervals it resolves, the checkpoints it writes and the
optimizer updates it really performs. Each formula mirrors ``Trainer`` code of the cited
releases (trainer.py: ``set_initial_training_values`` / ``_inner_training_loop`` /
``_run_epoch``; trainer_callback.py: ``TrainerState.compute_steps``, ``DefaultFlowCallback``;
training_args.py: ``get_warmup_steps``; accelerate data_loader.py: ``BatchSamplerShard``).

Version-dependent behaviour lives in ``TRAINER_BEHAVIOUR``, one row per range of releases.
"""

from __future__ import annotations

import math
import sys

from .records import Record


class TrainerBehaviour(Record):
    """How one range of transformers releases turns arguments into steps."""

    first: tuple  # first release of the range (major, minor)
    ceil_updates: bool  # updates per epoch rounded up (4.52+, PR #37923) instead of down
    loop: str  # "cumulative" (<=4.45), "chunked" (4.46: cumulative sync, remainder bug), "per-epoch" (4.47-4.51), "consistent" (4.52+)
    zero_max_steps_is_zero: bool  # 4.49+: max_steps 0 means 0 steps, not "use epochs"
    empty_loader_raises: bool  # 4.49+: no batch at all raises when training by epochs
    final_save: str  # which save_strategy also saves at the last step: "any" (4.42-4.46), "not-best" (4.47-4.49), "steps" (4.50+)
    final_eval: bool  # 5.4+: eval_strategy steps also evaluates at the last step
    float_warmup_steps: bool  # 5.0+: warmup_steps below 1 is a ratio; warmup_ratio overwrites warmup_steps


TRAINER_BEHAVIOUR = [
    TrainerBehaviour((4, 45), False, "cumulative", False, False, "any", False, False),
    TrainerBehaviour((4, 46), False, "chunked", False, False, "any", False, False),
    TrainerBehaviour((4, 47), False, "per-epoch", False, False, "not-best", False, False),
    TrainerBehaviour((4, 49), False, "per-epoch", True, True, "not-best", False, False),
    TrainerBehaviour((4, 50), False, "per-epoch", True, True, "steps", False, False),
    TrainerBehaviour((4, 52), True, "consistent", True, True, "steps", False, False),
    TrainerBehaviour((5, 0), True, "consistent", True, True, "steps", False, True),
    TrainerBehaviour((5, 4), True, "consistent", True, True, "steps", True, True),
]


def behaviour(transformers: tuple) -> TrainerBehaviour:
    chosen = TRAINER_BEHAVIOUR[0]
    for row in TRAINER_BEHAVIOUR:
        if tuple(transformers[:2]) >= row.first:
            chosen = row
    return chosen


class StepInputs(Record):
    """The arguments the step arithmetic reads (values as the Trainer holds them)."""

    num_examples: int | None  # None: an iterable (streaming) dataset without a length
    per_device_batch: int
    accumulation: int
    world_size: int = 1
    num_train_epochs: float = 3.0
    max_steps: int = -1
    drop_last: bool = False
    warmup_steps: float = 0
    warmup_ratio: float | None = None
    logging_strategy: str = "steps"
    logging_steps: float = 500
    logging_first_step: bool = False
    eval_strategy: str = "no"
    eval_steps: float | None = None
    eval_delay: float = 0
    eval_on_start: bool = False
    save_strategy: str = "steps"
    save_steps: float = 500


class StepPlan(Record):
    """What the Trainer resolves at the start of training, and what the run then does."""

    num_examples: int  # printed "Num examples" (streaming: total batch x max_steps)
    world_size: int
    per_device_train_batch_size: int
    gradient_accumulation_steps: int
    total_train_batch_size: int
    batches_per_epoch: int | None  # micro-batches per epoch per process (len(train_dataloader))
    update_steps_per_epoch: int  # as the Trainer computes it for max_steps
    num_train_epochs: float  # requested
    epochs_printed: int  # printed "Num Epochs"
    total_steps: int  # printed "Total optimization steps" (state.max_steps)
    warmup_steps: int
    logging_steps: int | None  # state.logging_steps (resolved even when not logging by steps)
    eval_steps: int | None  # state.eval_steps
    save_steps: int | None  # state.save_steps
    checkpoint_steps: tuple[int, ...]  # global steps at which a checkpoint-N directory is written
    eval_steps_at: tuple[int, ...]  # global steps with an evaluation ("steps" strategy), or epoch ends
    optimizer_updates: int  # updates really performed (can be fewer than total_steps on 4.46-4.51)
    epochs_trained: float  # state.epoch at the end of training
    updates_per_epoch_in_loop: int | None  # updates one full epoch really makes
    transformers_family: str

    @property
    def num_checkpoints(self) -> int:
        return len(self.checkpoint_steps)

    @property
    def stops_mid_epoch(self) -> bool:
        return self.epochs_trained + 1e-9 < self.num_train_epochs and self.optimizer_updates > 0


class StepError(ValueError):
    """The Trainer refuses to start with these values (the message is transformers')."""


MOST_SIMULATED = 10_000_000  # loop iterations and listed steps one plan may take (about a second)


class PlanTooLong(StepError):
    """A run too long to plan step by step: millions of epochs to replay or of checkpoints to list (a value that is
    almost certainly a mistake). lf-lint gives no plan rather than a truncated one."""


def steps_passing_modulo(interval: float, total: int) -> tuple[int, ...]:
    """Steps s in 1..total with ``s % interval == 0``, the test loops that read the raw value make (LLaMA-Factory's
    PPO loop, Megatron's): a ratio such as 0.25 passes at every step, 0.1 almost never."""
    if not isinstance(interval, (int, float)) or isinstance(interval, bool) or interval <= 0:
        return ()
    whole = float(interval).is_integer()
    if (total // int(interval) if whole else total) > MOST_SIMULATED:
        raise PlanTooLong(f"{total:,} steps with an interval of {interval:g}: more steps to list than lf-lint plans "
                          f"({MOST_SIMULATED:,})")  # fmt: skip
    if whole:
        return tuple(range(int(interval), total + 1, int(interval)))
    return tuple(s for s in range(1, total + 1) if s % interval == 0)


def _check_size(inputs: StepInputs, rules: TrainerBehaviour, length: int, total: int, epochs: int) -> None:
    """Raise PlanTooLong when simulating the loop (before 4.52: epoch by epoch, micro-batch by micro-batch) and
    listing the epoch ends, checkpoints and evaluations would take more than MOST_SIMULATED steps."""
    epochs = epochs if length else 0  # an empty loader: no epoch is replayed
    per_epoch = {"cumulative": length, "chunked": length, "per-epoch": -(-length // inputs.accumulation)}
    loop = epochs * per_epoch.get(rules.loop, 0)
    listed = epochs if rules.loop != "consistent" else min(epochs, total)
    for value, strategy in ((inputs.save_steps, inputs.save_strategy), (inputs.eval_steps, inputs.eval_strategy)):
        interval = _ratio(value, total) if strategy == "steps" and value else None
        listed += total // interval if interval and interval > 0 else 0
    if loop + listed > MOST_SIMULATED:
        raise PlanTooLong(f"{total:,} optimization steps over {epochs:,} epoch(s): about {loop + listed:,} loop "
                          f"iterations and listed steps to simulate, more than lf-lint plans ({MOST_SIMULATED:,})")  # fmt: skip


def _dataloader_length(n: int, batch: int, world: int, drop_last: bool) -> int:
    """len(train_dataloader) on one process: torch BatchSampler, then accelerate's BatchSamplerShard
    with even_batches=True (transformers 4.31+, accelerate 1.x)."""
    batches = n // batch if drop_last else -(-n // batch)
    if world == 1:
        return batches
    return batches // world if drop_last else -(-batches // world)


def _ratio(value: float | None, total: int) -> int | None:
    """TrainerState.compute_steps: values below 1 are fractions of max_steps, rounded up."""
    if value is None:
        return None
    return math.ceil(total * value) if value < 1 else int(value)


def warmup(inputs: StepInputs, total: int, rules: TrainerBehaviour) -> int:
    """TrainingArguments.get_warmup_steps for the release."""
    if rules.float_warmup_steps:
        steps = inputs.warmup_ratio if inputs.warmup_ratio is not None else inputs.warmup_steps
        return int(steps) if steps >= 1 else math.ceil(total * steps)
    if inputs.warmup_steps > 0:
        return int(inputs.warmup_steps)
    return math.ceil(total * (inputs.warmup_ratio or 0.0))


def plan_steps(inputs: StepInputs, transformers: tuple) -> StepPlan:
    rules = behaviour(transformers)
    b, ga, world = inputs.per_device_batch, inputs.accumulation, inputs.world_size
    total_batch = b * ga * world
    max_steps_arg = inputs.max_steps
    epoch_based = max_steps_arg < 0 if rules.zero_max_steps_is_zero else max_steps_arg <= 0

    if inputs.num_examples is None:  # IterableDataset: only max_steps can drive the run
        if max_steps_arg <= 0:
            raise StepError(
                f"args.max_steps must be set to a positive value if dataloader does not have a length, was {max_steps_arg}"
            )
        total = max_steps_arg
        _check_size(inputs, rules, 0, total, 0)
        run = _Run(total, float("nan"), (), None)  # epochs of a stream are not known in advance
        return _finish(inputs, rules, total_batch, None, total, total, sys.maxsize, run, total * total_batch)

    length = _dataloader_length(inputs.num_examples, b, world, inputs.drop_last)
    if length == 0 and epoch_based and rules.empty_loader_raises:
        raise StepError(
            f"args.max_steps must be set to a positive value if dataloader does not have a length, was {max_steps_arg}"
        )
    if rules.ceil_updates:
        upe = max(length // ga + int(length % ga > 0), 1)
    else:
        upe = max(length // ga, 1)
    if epoch_based:
        total = math.ceil(inputs.num_train_epochs * upe)
    else:
        total = max_steps_arg
    if length == 0 and max_steps_arg > 0 and rules.empty_loader_raises:
        epochs_printed = sys.maxsize
        printed_examples = total_batch * max_steps_arg
    else:
        epochs_printed = (
            (total // upe + int(total % upe > 0)) if max_steps_arg > 0 else math.ceil(inputs.num_train_epochs)
        )
        printed_examples = inputs.num_examples
    _check_size(inputs, rules, length, total, epochs_printed)
    run = _simulate(inputs, rules, length, total, epochs_printed)
    return _finish(inputs, rules, total_batch, length, upe, total, epochs_printed, run, printed_examples)


def _sync_points(length: int, consumed: int, ga: int, rules: TrainerBehaviour, counter: int) -> list[int]:
    """1-based micro-batch positions inside one epoch at which the optimizer steps."""
    if rules.loop in ("cumulative", "chunked"):
        # total_batched_samples % GA == 0, or the last batch of an epoch shorter than GA
        return [s for s in range(1, consumed + 1) if (counter + s) % ga == 0 or (length <= ga and s == length)]
    points = list(range(ga, consumed + 1, ga))  # (step + 1) % GA == 0 or (step + 1) == steps_in_epoch
    if consumed == length and length % ga:
        points.append(length)
    return points


class _Run(Record):
    updates: int
    epoch_float: float
    epoch_ends: tuple[int, ...]  # global step at the end of each epoch entered (on_epoch_end)
    per_epoch: int | None  # updates a full epoch makes in the loop


def _simulate(inputs: StepInputs, rules: TrainerBehaviour, length: int, total: int, epochs: int) -> _Run:
    """Optimizer updates really performed and state.epoch at the end (hf-trainer-steps.md §4.5)."""
    ga = inputs.accumulation
    if length == 0:
        return _Run(0, 0.0, (), 0)
    if rules.loop == "consistent":
        per_epoch = -(-length // ga)
        target = max(total, 1)  # max_steps 0: the first update still happens, then the run stops
        full, rest = divmod(target, per_epoch)
        ends = [per_epoch * (i + 1) for i in range(min(full, epochs))]
        if rest and len(ends) < epochs:
            ends.append(target)
        epoch_float = full + (min(rest * ga, length) / length if rest else 0)
        return _Run(target if ends else 0, epoch_float if ends else 0.0, tuple(ends), per_epoch)
    if rules.loop in ("chunked", "per-epoch"):
        remainder = inputs.num_examples % ga or ga  # the 4.46-4.51 bug: the dataset size, not the loader's
        consumed = min(length, (length // ga) * ga + remainder)
    else:
        consumed = length
    stop_at = max(total, 1) if rules.zero_max_steps_is_zero else total
    done, counter, epoch_float, per_epoch = 0, 0, 0.0, None
    ends: list[int] = []
    for epoch in range(epochs):
        points = _sync_points(length, consumed, ga, rules, counter)
        counter += consumed
        if per_epoch is None:
            per_epoch = len(points)
        if done + len(points) >= stop_at:
            position = points[stop_at - done - 1]
            ends.append(stop_at)
            return _Run(stop_at, epoch + position / length, tuple(ends), per_epoch)
        done += len(points)
        if points:
            epoch_float = epoch + points[-1] / length
        ends.append(done)
    return _Run(done, epoch_float, tuple(ends), per_epoch)


STATE_DEFAULT_STEPS = 500  # TrainerState's logging/eval/save_steps before compute_steps sets them


def _finish(
    inputs: StepInputs,
    rules: TrainerBehaviour,
    total_batch: int,
    length: int | None,
    upe: int,
    total: int,
    epochs_printed: int,
    run: _Run,
    printed_examples: int,
) -> StepPlan:
    # TrainerState.compute_steps resolves all three whatever the strategies (an unset eval_steps keeps 500)
    logging = _ratio(inputs.logging_steps, total)
    eval_value = inputs.eval_steps
    if inputs.eval_strategy == "steps" and not eval_value and inputs.logging_steps and inputs.logging_steps > 0:
        eval_value = inputs.logging_steps  # TrainingArguments.__post_init__ falls back to logging_steps
    evaluation = _ratio(eval_value, total) if eval_value is not None else STATE_DEFAULT_STEPS
    save = _ratio(inputs.save_steps, total)
    saves = _checkpoints(inputs, rules, save, run)
    evals = _evaluations(inputs, rules, evaluation, run)
    return StepPlan(
        num_examples=printed_examples,
        world_size=inputs.world_size,
        per_device_train_batch_size=inputs.per_device_batch,
        gradient_accumulation_steps=inputs.accumulation,
        total_train_batch_size=total_batch,
        batches_per_epoch=length,
        update_steps_per_epoch=upe,
        num_train_epochs=inputs.num_train_epochs,
        epochs_printed=epochs_printed,
        total_steps=total,
        warmup_steps=warmup(inputs, total, rules),
        logging_steps=logging,
        eval_steps=evaluation,
        save_steps=save,
        checkpoint_steps=saves,
        eval_steps_at=evals,
        optimizer_updates=run.updates,
        epochs_trained=round(run.epoch_float, 6),
        updates_per_epoch_in_loop=run.per_epoch,
        transformers_family=rules.loop,
    )


def _checkpoints(inputs: StepInputs, rules: TrainerBehaviour, save: int | None, run: _Run) -> tuple[int, ...]:
    """Global steps with a checkpoint-N directory (DefaultFlowCallback.on_step_end / on_epoch_end)."""
    strategy, updates = inputs.save_strategy, run.updates
    if strategy in ("no", "best") or updates == 0:  # "best": one per new best metric, not knowable in advance
        return ()
    if strategy == "steps":
        steps = list(range(int(save), updates + 1, int(save))) if save and save > 0 else []
    else:
        steps = list(run.epoch_ends)
    final = {"any": True, "not-best": True, "steps": strategy == "steps"}[rules.final_save]
    if final and (not steps or steps[-1] != updates):
        steps.append(updates)
    return tuple(sorted(set(steps)))


def _evaluations(inputs: StepInputs, rules: TrainerBehaviour, evaluation: int | None, run: _Run) -> tuple[int, ...]:
    updates = run.updates
    if inputs.eval_strategy == "steps" and evaluation and evaluation > 0:
        evaluation = int(evaluation)
        steps = [s for s in range(evaluation, updates + 1, evaluation) if s >= inputs.eval_delay]
        if rules.final_eval and updates % evaluation and updates >= inputs.eval_delay:
            steps.append(updates)
        return tuple(steps)
    if inputs.eval_strategy == "epoch":
        return run.epoch_ends
    return ()
