"""``lf-lint explain-log``: read the Trainer's start-up block and say what produced its numbers.

A log such as::

    ***** Running training *****
      Num examples = 1,047
      Num Epochs = 300
      Instantaneous batch size per device = 10
      Total train batch size (w. parallel, distributed & accumulation) = 80
      Gradient Accumulation steps = 8
      Total optimization steps = 3,900

fixes the number of processes (total batch / (per-device batch x accumulation)) and leaves two
hidden settings (``dataloader_drop_last`` and the transformers release) and one ambiguity
(whole epochs, fractional epochs or ``max_steps``). Each combination is run through the same
step arithmetic as a lint (steps.py), so the explanation and the prediction cannot disagree.
The PPO trainer (LLaMA-Factory's CustomPPOTrainer) logs its own variant, recognised by
``Total training steps``.
"""

from __future__ import annotations

import math
import re
import sys
from typing import NamedTuple

from .steps import TRAINER_BEHAVIOUR, StepError, StepInputs, StepPlan, plan_steps
from .versions import NEWEST_TRANSFORMERS, OLDEST_TRANSFORMERS, parse_version

_FIELDS = {
    "num_examples": r"Num examples = ([\d,]+)",
    "num_epochs": r"Num Epochs = ([\d,]+(?:\.\d+)?)",  # the PPO trainer prints num_train_epochs as given
    "update_steps_per_epoch": r"Num update steps per epoch = ([\d,]+)",  # transformers 5.x
    "per_device": r"Instantaneous batch size per device = ([\d,]+)",
    "total_batch": r"Total train batch size \(w\. parallel, (?:buffer, )?distributed & accumulation\) = ([\d,]+)",
    "accumulation": r"Gradient Accumulation steps = ([\d,]+)",
    "total_steps": r"Total (?:optimization|training) steps = ([\d,]+)",
    "trainable_params": r"Number of trainable parameters = ([\d,]+)",
}
_REQUIRED = ("num_examples", "num_epochs", "per_device", "total_batch", "accumulation", "total_steps")
_BLOCK_START = "***** Running training *****"


class LogError(ValueError):
    """The text holds no complete Trainer start-up block."""


class StartupLog(NamedTuple):
    num_examples: int
    num_epochs: int | float
    per_device: int
    total_batch: int
    accumulation: int
    total_steps: int
    trainable_params: int | None
    update_steps_per_epoch: int | None  # logged by transformers 5.x only
    ppo: bool  # LLaMA-Factory's PPO trainer ("Total training steps", batch "w. parallel, buffer, ...")
    line: int  # 1-based line of "***** Running training *****"
    blocks: int  # how many start-up blocks the text holds (a resumed run logs one per start)


def parse_startup_log(text: str) -> StartupLog:
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if _BLOCK_START in line]
    if not starts:
        raise LogError(f"no `{_BLOCK_START}` line: paste the block the Trainer logs when training starts")
    first = starts[0]
    block = "\n".join(lines[first : first + 16])
    values: dict = {}
    for name, pattern in _FIELDS.items():
        match = re.search(pattern, block)
        number = match.group(1).replace(",", "") if match else None
        values[name] = None if number is None else float(number) if "." in number else int(number)
    missing = [name for name in _REQUIRED if values[name] is None]
    if missing:
        raise LogError(
            f"the start-up block at line {first + 1} lacks: " + ", ".join(m.replace("_", " ") for m in missing)
        )
    return StartupLog(**values, ppo="Total training steps" in block, line=first + 1, blocks=len(starts))


class Reading(NamedTuple):
    """One combination of hidden settings that reproduces the log."""

    releases: str  # e.g. "transformers 4.52-5.6"
    drop_last: bool
    driver: str  # what set the length of the run
    plan: StepPlan | None


class Report(NamedTuple):
    log: StartupLog
    world_size: int | None
    problems: tuple[str, ...]  # numbers that contradict each other
    readings: tuple[Reading, ...]


def explain_startup_log(log: StartupLog) -> Report:
    if log.ppo:
        return _explain_ppo(log)
    per_process = log.per_device * log.accumulation
    problems = []
    world = None
    if per_process == 0 or log.total_batch % per_process:
        problems.append(
            f"the total train batch size {log.total_batch:,} is not a multiple of {log.per_device} per device x "
            f"{log.accumulation} accumulation, so no number of processes explains it"
        )
    else:
        world = log.total_batch // per_process
    if world is None:
        return Report(log, None, tuple(problems), ())
    if log.num_epochs == sys.maxsize:
        return _explain_stream(log, world)
    readings = []
    for drop_last in (False, True):
        found = [
            (index, _reading(log, world, first, drop_last, label))
            for index, (label, first) in enumerate(_release_ranges())
        ]
        readings += _merge([(index, reading) for index, reading in found if reading is not None])
    if not readings:
        problems.append(
            f"no transformers release from {OLDEST_TRANSFORMERS} to {NEWEST_TRANSFORMERS} turns {log.num_examples:,} examples, "
            f"{world} process(es), batch {log.per_device} and accumulation {log.accumulation} into "
            f"{log.total_steps:,} steps over {log.num_epochs:,} epoch(s); was the run resumed from a checkpoint, "
            "or is the dataset a stream or the trainer a custom one?"
        )
    return Report(log, world, tuple(problems), tuple(readings))


def _release_ranges() -> list[tuple[str, tuple]]:
    """(label, first release) for each row of the Trainer behaviour table."""
    rows = [row.first for row in TRAINER_BEHAVIOUR]
    last_minor = {4: 57}  # 4.57 was the last 4.x release before 5.0
    newest = parse_version(NEWEST_TRANSFORMERS)[:2]
    ranges = []
    for index, first in enumerate(rows):
        if index + 1 < len(rows):
            following = rows[index + 1]
            last = (following[0], following[1] - 1) if following[1] > 0 else (first[0], last_minor[first[0]])
        else:
            last = newest
        label = f"{first[0]}.{first[1]}"
        if last != first:
            label += f"-{last[0]}.{last[1]}"
        ranges.append((label, first))
    return ranges


def _reading(log: StartupLog, world: int, transformers: tuple, drop_last: bool, releases: str) -> Reading | None:
    base = StepInputs(
        num_examples=log.num_examples,
        per_device_batch=log.per_device,
        accumulation=log.accumulation,
        world_size=world,
        num_train_epochs=float(log.num_epochs),
        drop_last=drop_last,
    )
    try:
        by_epochs = plan_steps(base, transformers)
    except StepError:
        return None
    if _matches(by_epochs, log):
        return Reading(
            releases,
            drop_last,
            f"num_train_epochs = {log.num_epochs:,} (or max_steps = {log.total_steps:,})",
            by_epochs,
        )
    upe = by_epochs.update_steps_per_epoch
    if (log.num_epochs - 1) * upe < log.total_steps <= log.num_epochs * upe:
        low, high = (log.total_steps - 1) / upe, log.total_steps / upe
        fractional = plan_steps(base._replace(num_train_epochs=(log.total_steps - 0.5) / upe), transformers)
        if _matches(fractional, log):
            return Reading(
                releases,
                drop_last,
                f"max_steps = {log.total_steps:,}, or a fractional num_train_epochs above {low:.4g} and at most {high:.4g}",
                fractional,
            )
    return None


def _matches(plan: StepPlan, log: StartupLog) -> bool:
    printed_upe = log.update_steps_per_epoch is None or log.update_steps_per_epoch == plan.update_steps_per_epoch
    return (plan.total_steps, plan.epochs_printed, plan.num_examples) == (
        log.total_steps,
        log.num_epochs,
        log.num_examples,
    ) and printed_upe


def _merge(found: list[tuple[int, Reading]]) -> list[Reading]:
    """Neighbouring release ranges that read the log the same way become one line."""
    merged: list[tuple[int, Reading]] = []
    for index, reading in found:
        if merged:
            last_index, last = merged[-1]
            if last_index == index - 1 and (last.driver, _outcome(last.plan)) == (
                reading.driver,
                _outcome(reading.plan),
            ):
                first = last.releases.split("-")[0]
                merged[-1] = (index, last._replace(releases=f"{first}-{reading.releases.split('-')[-1]}"))
                continue
        merged.append((index, reading))
    return [reading for _, reading in merged]


def _outcome(plan: StepPlan | None):
    if plan is None:
        return None
    return plan.batches_per_epoch, plan.update_steps_per_epoch, plan.optimizer_updates, plan.epochs_trained


def _explain_stream(log: StartupLog, world: int) -> Report:
    problems = []
    steps_from_examples = log.num_examples / log.total_batch
    if steps_from_examples != log.total_steps:
        problems.append(
            f"a streamed dataset logs Num examples = total batch x max_steps = {log.total_batch * log.total_steps:,}, "
            f"not {log.num_examples:,}"
        )
    reading = Reading(
        "any",
        False,
        f"max_steps = {log.total_steps:,} (the dataset has no length: it is streamed, or the data loader has no batch)",
        None,
    )
    return Report(log, world, tuple(problems), () if problems else (reading,))


def _explain_ppo(log: StartupLog) -> Report:
    """CustomPPOTrainer.ppo_train (LLaMA-Factory 0.9.2-0.9.5): steps = ceil(epochs x len(dataloader)), the loader
    taking per-device batch x accumulation x ppo_buffer_size prompts per process and dropping the last partial one."""
    per_process = log.per_device * log.accumulation
    problems = []
    if per_process == 0 or log.total_batch % per_process:
        problems.append(
            f"the PPO total batch {log.total_batch:,} is not a multiple of batch {log.per_device} x accumulation {log.accumulation}"
        )
        return Report(log, None, tuple(problems), ())
    if log.num_epochs == sys.maxsize:
        if log.num_examples != log.total_batch * log.total_steps:
            problems.append(
                f"with max_steps the PPO trainer logs Num examples = total batch x max_steps = {log.total_batch * log.total_steps:,}"
            )
        return Report(
            log,
            None,
            tuple(problems),
            () if problems else (Reading("PPO", True, f"max_steps = {log.total_steps:,}", None),),
        )
    batches = log.num_examples // log.total_batch
    expected = math.ceil(log.num_epochs * batches)
    if expected == log.total_steps:
        readings = (Reading("PPO", True, f"num_train_epochs = {log.num_epochs:,}", None),)
    elif (log.num_epochs - 1) * batches < log.total_steps <= log.num_epochs * batches:
        readings = (
            Reading("PPO", True, f"a fractional num_train_epochs of about {log.total_steps / batches:.4g}", None),
        )
    else:
        problems.append(
            f"{log.num_examples:,} prompts // {log.total_batch:,} per step = {batches:,} steps per epoch, "
            f"x {log.num_epochs:,} epoch(s) = {expected:,}, not {log.total_steps:,}"
        )
        readings = ()
    return Report(log, None, tuple(problems), readings)


def render_report(report: Report, source: str) -> str:
    log = report.log
    lines = [f"{source}:{log.line}: Trainer start-up block" + (" (LLaMA-Factory PPO trainer)" if log.ppo else "")]
    lines.append(
        f"  examples {log.num_examples:,}, epochs {log.num_epochs:,}, batch {log.per_device} per device, "
        f"accumulation {log.accumulation}, total batch {log.total_batch:,}, total steps {log.total_steps:,}"
    )
    if log.blocks > 1:
        lines.append(f"  note: the log holds {log.blocks} start-up blocks (a resumed run?); this reads the first")
    if report.world_size is not None:
        lines.append(
            f"  processes: {log.total_batch:,} / ({log.per_device} x {log.accumulation}) = {report.world_size}"
            + ("" if report.world_size == 1 else " (data-parallel processes: GPUs x nodes)")
        )
    for problem in report.problems:
        lines.append(f"  inconsistent: {problem}")
    if report.readings:
        lines.append("  explained by:")
    for reading in report.readings:
        lines.append(f"  - {_describe(reading)}")
    return "\n".join(lines) + "\n"


def _describe(reading: Reading) -> str:
    if reading.releases == "PPO":
        return reading.driver
    if reading.plan is None:
        return reading.driver
    plan = reading.plan
    drop = "dataloader_drop_last: true" if reading.drop_last else "dataloader_drop_last: false"
    text = (
        f"transformers {reading.releases}, {drop}, {reading.driver}: {plan.batches_per_epoch:,} micro-batches per epoch "
        f"per process, {plan.update_steps_per_epoch:,} update steps per epoch as the Trainer counts them"
    )
    if plan.optimizer_updates != plan.total_steps or plan.stops_mid_epoch:
        per_epoch = (
            f" ({plan.updates_per_epoch_in_loop} per epoch)"
            if plan.transformers_family in ("per-epoch", "consistent")
            else ""
        )
        text += (
            f"; the run really makes {plan.optimizer_updates:,} optimizer updates{per_epoch} "
            f"and stops at epoch {plan.epochs_trained:g} of {plan.num_train_epochs:g}"
        )
    return text


def report_to_dict(report: Report) -> dict:
    return {
        "line": report.log.line,
        "log": {k: v for k, v in report.log._asdict().items() if k not in ("line",)},
        "world_size": report.world_size,
        "consistent": not report.problems,
        "problems": list(report.problems),
        "explanations": [
            {
                "transformers": r.releases,
                "dataloader_drop_last": r.drop_last,
                "driver": r.driver,
                "batches_per_epoch": r.plan.batches_per_epoch if r.plan else None,
                "update_steps_per_epoch": r.plan.update_steps_per_epoch if r.plan else None,
                "optimizer_updates": r.plan.optimizer_updates if r.plan else None,
                "epochs_trained": r.plan.epochs_trained if r.plan else None,
            }
            for r in report.readings
        ],
    }
