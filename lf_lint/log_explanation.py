"""``lf-lint explain-log``, explaining: what produced the numbers of a start-up block (startup_log.py reads it).

The block fixes the number of processes (total batch / (per-device batch x accumulation)) and leaves two hidden
settings (``dataloader_drop_last`` and the transformers release) and one ambiguity (whole epochs, fractional epochs
or ``max_steps``). Each combination is run through the same step arithmetic as a lint (steps.py), so the
explanation and the prediction cannot disagree. A missing number is filled in per release by the same arithmetic;
when the prefix's line numbers pin the release, only that release's arithmetic is tried.
"""

from __future__ import annotations

import math
import sys
from itertools import groupby
from typing import NamedTuple

from .startup_log import LABELS, LogError, Origin, StartupLog, identify, release_order, release_runs, run_label
from .steps import TRAINER_BEHAVIOUR, StepError, StepInputs, StepPlan, behaviour, plan_steps
from .versions import NEWEST_TRANSFORMERS, OLDEST_TRANSFORMERS, parse_version


class Reading(NamedTuple):
    """One combination of hidden settings that reproduces the log."""

    releases: str  # e.g. "4.52-5.6" or "4.49.0"
    drop_last: bool
    driver: str  # what set the length of the run
    plan: StepPlan | None
    inferred: str = ""  # a number the text lacks, as this reading fills it in


class Report(NamedTuple):
    log: StartupLog
    world_size: int | None
    problems: tuple[str, ...]  # numbers that contradict each other
    readings: tuple[Reading, ...]
    origin: Origin | None = None
    notes: tuple[str, ...] = ()


def explain_startup_log(log: StartupLog) -> Report:
    origin = identify(log)
    report = _explain_ppo(log, origin) if log.ppo else _explain_trainer(log, origin)
    if report.world_size is None and not (report.problems or report.readings or (origin and origin.releases)):
        given = [label for key, label in LABELS.items() if getattr(log, key) is not None]
        raise LogError(
            f"the start-up lines at line {log.line} give only {', '.join(given)}, too little to explain: "
            "lf-lint needs the lines `Instantaneous batch size per device`, `Gradient Accumulation steps` and "
            "`Total train batch size` to count the processes, or the `[INFO|trainer.py:LINE]` prefixes to name the release"
        )
    return report


def _processes(log: StartupLog) -> tuple[int | None, list[str]]:
    if None in (log.per_device, log.accumulation, log.total_batch):
        return None, []
    per_process = log.per_device * log.accumulation
    if per_process == 0 or log.total_batch % per_process:
        return None, [
            f"the total train batch size {log.total_batch:,} is not a multiple of {log.per_device} per device x "
            f"{log.accumulation} accumulation, so no number of processes explains it"
        ]
    if log.total_batch == 0:
        return None, ["a total train batch size of 0 leaves no process to train"]
    return log.total_batch // per_process, []


def _explain_trainer(log: StartupLog, origin: Origin | None) -> Report:
    world, problems = _processes(log)
    if world is None:
        return Report(log, None, tuple(problems), (), origin)
    if log.num_epochs == sys.maxsize:
        return _explain_stream(log, world, origin)
    candidates, notes = _candidates(origin), []
    too_long = [c for c in candidates if _walk(log, world, c) > _MOST_WALKED]
    if too_long:
        candidates = [c for c in candidates if c not in too_long]
        which = "no release" if not candidates else "transformers " + ", ".join(c.label for c in too_long) + " not"
        iterations = max(_walk(log, world, c) for c in too_long)
        notes.append(f"{which} tried: the run is too long to replay (about {iterations:,} loop iterations)")
    readings = []
    for drop_last in (False, True):
        found = [(c, r) for c in candidates if (r := _fill_and_read(log, world, c, drop_last)) is not None]
        readings += _merge(found)
    given = [getattr(log, k) is not None for k in ("num_examples", "num_epochs", "total_steps")]
    if not readings and candidates and sum(given) >= 2:
        named = ", which the line numbers name," if origin and origin.releases else ""
        releases = (
            f"transformers {', '.join(c.label for c in candidates)}{named} does not turn"
            if named or too_long
            else f"no transformers release from {OLDEST_TRANSFORMERS} to {NEWEST_TRANSFORMERS} turns"
        )
        examples = f"{log.num_examples:,} examples" if log.num_examples is not None else "any number of examples"
        epochs = f"{log.num_epochs:,} epoch(s)" if log.num_epochs is not None else "any number of epochs"
        steps = f"{log.total_steps:,} steps" if log.total_steps is not None else "the steps"
        problems.append(
            f"{releases} {examples}, {world} process(es), batch {log.per_device} and accumulation "
            f"{log.accumulation} into {steps} over {epochs}"
            + (f" and {log.update_steps_per_epoch:,} update steps per epoch" if log.update_steps_per_epoch else "")
            + "; was the run resumed from a checkpoint, or is the dataset a stream or the trainer a custom one?"
        )
    return Report(log, world, tuple(problems), tuple(readings), origin, tuple(notes))


_MOST_WALKED = 10_000_000  # iterations plan_steps may make for one candidate (up to a second)


def _walk(log: StartupLog, world: int, candidate: _Candidate) -> int:
    """About how many iterations plan_steps makes to read the log with this release: before 4.52 it simulates the
    training loop, micro-batch by micro-batch (4.45-4.46) or update by update (4.47-4.51), and every release lists
    the steps that save a checkpoint (every 500 by default)."""
    ga, epochs, steps = log.accumulation, log.num_epochs, log.total_steps
    if log.num_examples is not None:
        batches = log.num_examples // (log.per_device * world)
        if epochs is not None:
            steps = epochs * batches / ga
        epochs = epochs if epochs is not None else (steps or 0) * ga / max(batches, 1)
    else:
        batches = ((steps or 0) // max(int(epochs or 1), 1) + 1) * ga
        epochs = (epochs or 1) + 8  # the search for Num examples plans about 8 sizes
    loop = {"cumulative": batches, "chunked": batches, "per-epoch": batches // ga}.get(
        behaviour(candidate.version).loop, 1
    )
    return int(loop * max(epochs, 1) + (steps or 0) / 500)


class _Candidate(NamedTuple):
    label: str  # "4.47-4.51" (a row of the behaviour table) or "4.49.0" (releases the line numbers name)
    version: tuple  # whose arithmetic plan_steps applies
    first: int  # positions in the order the candidates were drawn from: neighbours may merge
    last: int


def _candidates(origin: Origin | None) -> list[_Candidate]:
    if origin is None or not origin.releases:
        return [_Candidate(label, first, index, index) for index, (label, first) in enumerate(_release_ranges())]
    candidates = []
    for run in release_runs(origin.releases, release_order("transformers")):
        rows = groupby(run, key=lambda item: TRAINER_BEHAVIOUR.index(behaviour(parse_version(item[1]))))
        for _, same_rules in rows:
            part = list(same_rules)
            candidates.append(_Candidate(run_label(part), parse_version(part[0][1]), part[0][0], part[-1][0]))
    return candidates


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


def _fill_and_read(log: StartupLog, world: int, candidate: _Candidate, drop_last: bool) -> Reading | None:
    """The candidate's reading of the log; one missing number among examples, epochs and steps is filled in
    by the candidate's own arithmetic."""
    label, version = candidate.label, candidate.version
    if None not in (log.num_examples, log.num_epochs, log.total_steps):
        return _reading(log, world, version, drop_last, label)
    inputs = StepInputs(log.num_examples, log.per_device, log.accumulation, world, drop_last=drop_last)
    try:
        if log.total_steps is None and None not in (log.num_examples, log.num_epochs):
            steps = plan_steps(inputs._replace(num_train_epochs=float(log.num_epochs)), version).total_steps
            reading = _reading(log._replace(total_steps=steps), world, version, drop_last, label)
            return reading and reading._replace(inferred=f"would print Total optimization steps = {steps:,}")
        if log.num_epochs is None and None not in (log.num_examples, log.total_steps) and log.total_steps > 0:
            per_epoch = plan_steps(inputs._replace(num_train_epochs=1.0), version).update_steps_per_epoch
            epochs = -(-log.total_steps // per_epoch)
            reading = _reading(log._replace(num_epochs=epochs), world, version, drop_last, label)
            return reading and reading._replace(inferred=f"would print Num Epochs = {epochs:,}")
    except StepError:
        return None
    if log.num_examples is None and None not in (log.num_epochs, log.total_steps):
        return _examples_range(log, world, candidate, drop_last)
    return None


def _examples_range(log: StartupLog, world: int, candidate: _Candidate, drop_last: bool) -> Reading | None:
    """Num examples is missing: the dataset sizes whose update steps per epoch fit the steps and epochs printed."""
    steps, epochs = log.total_steps, log.num_epochs
    if steps < 1 or epochs < 1 or epochs != int(epochs):
        return None
    # E epochs printed for S steps: (E - 1) x per_epoch < S <= E x per_epoch, by whole epochs, fractional ones or max_steps
    fewest = -(-steps // epochs)
    most = None if epochs == 1 else -(-steps // (epochs - 1)) - 1
    printed = log.update_steps_per_epoch
    if printed is not None:
        if printed < fewest or (most is not None and printed > most):
            return None
        fewest = most = printed
    if most is not None and most < fewest:
        return None
    low = _fewest_examples(log, world, candidate.version, drop_last, fewest)
    high = None if most is None else _fewest_examples(log, world, candidate.version, drop_last, most + 1) - 1
    ends = [n for n in (low, high) if n is not None]
    if high is not None and high < low:
        return None
    checks = [
        _reading(log._replace(num_examples=n), world, candidate.version, drop_last, candidate.label) for n in ends
    ]
    if None in checks:
        return None
    per_epoch = (
        f"{fewest:,}" if fewest == most else f"{fewest:,}-{most:,}" if most is not None else f"{fewest:,} or more"
    )
    examples = f"{low:,}" if low == high else f"{low:,}-{high:,}" if high is not None else f"{low:,} or more"
    by_steps = f"max_steps = {steps:,} or a fractional num_train_epochs"
    if fewest * epochs != steps:
        how = by_steps
    else:
        how = f"num_train_epochs = {epochs:,}" + (
            "" if fewest == most else f" (at {fewest:,} per epoch), or {by_steps}"
        )
    return Reading(
        candidate.label,
        drop_last,
        f"{how}: {per_epoch} update steps per epoch",
        None,
        f"if Num examples was {examples}",
    )


def _fewest_examples(log: StartupLog, world: int, version: tuple, drop_last: bool, per_epoch: int) -> int:
    """The smallest dataset the release turns into at least ``per_epoch`` update steps per epoch (bisection over
    plan_steps: the count never falls as the dataset grows)."""
    inputs = StepInputs(None, log.per_device, log.accumulation, world, 1.0, drop_last=drop_last)

    def reaches(n: int) -> bool:
        try:
            return n > 0 and plan_steps(inputs._replace(num_examples=n), version).update_steps_per_epoch >= per_epoch
        except StepError:
            return False

    batch = log.per_device * world
    low = max(0, ((per_epoch - 1) * log.accumulation - 1) * batch)  # a loader of (per_epoch - 1) x GA - 1 batches
    high = ((per_epoch + 1) * log.accumulation + 1) * batch
    if reaches(low):
        low = 0
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if reaches(middle) else (middle, high)
    return high


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


def _merge(found: list[tuple[_Candidate, Reading]]) -> list[Reading]:
    """Neighbouring candidates that read the log the same way become one line."""
    merged: list[tuple[_Candidate, Reading]] = []
    for candidate, reading in found:
        if merged:
            before, last = merged[-1]
            if before.last + 1 == candidate.first and (last.driver, last.inferred, _outcome(last.plan)) == (
                reading.driver,
                reading.inferred,
                _outcome(reading.plan),
            ):
                first = last.releases.split("-")[0]
                merged[-1] = (
                    before._replace(last=candidate.last),
                    last._replace(releases=f"{first}-{reading.releases.split('-')[-1]}"),
                )
                continue
        merged.append((candidate, reading))
    return [reading for _, reading in merged]


def _outcome(plan: StepPlan | None):
    if plan is None:
        return None
    return plan.batches_per_epoch, plan.update_steps_per_epoch, plan.optimizer_updates, plan.epochs_trained


def _explain_stream(log: StartupLog, world: int, origin: Origin | None) -> Report:
    if None in (log.num_examples, log.total_steps):
        return Report(log, world, (), (), origin)
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
    return Report(log, world, tuple(problems), () if problems else (reading,), origin)


def _explain_ppo(log: StartupLog, origin: Origin | None) -> Report:
    """CustomPPOTrainer.ppo_train (LLaMA-Factory 0.9.2-0.9.5): steps = ceil(epochs x len(dataloader)), the loader
    taking per-device batch x accumulation x ppo_buffer_size prompts per process and dropping the last partial one."""
    problems = []
    if None not in (log.per_device, log.accumulation, log.total_batch):
        per_process = log.per_device * log.accumulation
        if per_process == 0 or log.total_batch % per_process:
            problems.append(
                f"the PPO total batch {log.total_batch:,} is not a multiple of batch {log.per_device} x accumulation {log.accumulation}"
            )
            return Report(log, None, tuple(problems), (), origin)
    if None in (log.num_examples, log.num_epochs, log.total_batch, log.total_steps):
        return Report(log, None, (), (), origin)
    if log.total_batch == 0:
        return Report(log, None, ("a total train batch size of 0 leaves no process to train",), (), origin)
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
            origin,
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
    return Report(log, None, tuple(problems), readings, origin)


def render_report(report: Report, source: str) -> str:
    log = report.log
    lines = [f"{source}:{log.line}: Trainer start-up block" + (" (LLaMA-Factory PPO trainer)" if log.ppo else "")]
    given = [
        (name, getattr(log, key))
        for name, key in [("examples", "num_examples"), ("epochs", "num_epochs"), ("batch", "per_device"),
                          ("accumulation", "accumulation"), ("total batch", "total_batch"), ("total steps", "total_steps")]
        if getattr(log, key) is not None
    ]  # fmt: skip
    lines.append(
        "  " + ", ".join(f"{name} {value:,}" + (" per device" if name == "batch" else "") for name, value in given)
    )
    if log.missing:
        lines.append(f"  missing: {', '.join(log.missing)} (explained as far as the other numbers allow)")
    if report.origin is not None:
        lines.append(f"  release: {report.origin.summary}")
    if log.blocks > 1:
        lines.append(f"  note: the log holds {log.blocks} start-up blocks (a resumed run?); this reads the first")
    lines += [f"  note: {note}" for note in report.notes]
    if report.world_size is not None:
        lines.append(
            f"  processes: {log.total_batch:,} / ({log.per_device} x {log.accumulation}) = {report.world_size}"
            + (
                ""
                if report.world_size == 1
                else f" (GPUs of one DataParallel process, {log.data_parallel:,} per step)"
                if log.data_parallel
                else " (data-parallel processes: GPUs x nodes)"
            )
        )
    for problem in report.problems:
        lines.append(f"  inconsistent: {problem}")
    if report.readings:
        lines.append("  explained by:")
    for reading in report.readings:
        lines.append(f"  - {_describe(reading)}")
    return "\n".join(lines) + "\n"


def _describe(reading: Reading) -> str:
    if reading.releases in ("PPO", "any"):
        return reading.driver
    drop = "dataloader_drop_last: true" if reading.drop_last else "dataloader_drop_last: false"
    head = f"transformers {reading.releases}, {drop}" + (f" ({reading.inferred})" if reading.inferred else "")
    plan = reading.plan
    if plan is None:
        return f"{head}, {reading.driver}"
    text = (
        f"{head}, {reading.driver}: {plan.batches_per_epoch:,} micro-batches per epoch "
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
    origin = report.origin
    return {
        "line": report.log.line,
        "log": {k: v for k, v in report.log._asdict().items() if k not in ("line", "missing", "sources")},
        "missing": list(report.log.missing),
        "release": None
        if origin is None
        else {"package": origin.package, "releases": list(origin.releases), "summary": origin.summary},
        "world_size": report.world_size,
        "consistent": not report.problems,
        "problems": list(report.problems),
        "notes": list(report.notes),
        "explanations": [
            {
                "transformers": r.releases,
                "dataloader_drop_last": r.drop_last,
                "driver": r.driver,
                "inferred": r.inferred or None,
                "batches_per_epoch": r.plan.batches_per_epoch if r.plan else None,
                "update_steps_per_epoch": r.plan.update_steps_per_epoch if r.plan else None,
                "optimizer_updates": r.plan.optimizer_updates if r.plan else None,
                "epochs_trained": r.plan.epochs_trained if r.plan else None,
            }
            for r in report.readings
        ],
    }
