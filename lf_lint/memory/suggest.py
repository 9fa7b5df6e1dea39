"""``lf-lint suggest``: (micro-batch, accumulation) choices for the same examples per optimizer step."""

from __future__ import annotations

from typing import NamedTuple

from ..steps import StepError, plan_steps
from .advice import duration, largest_eval_batch, margin, training_time
from .estimate import GIB, estimate
from .llamafactory import batch_and_accumulation
from .report import evaluated_samples


class Choice(NamedTuple):
    batch: int  # per_device_train_batch_size
    accumulation: int  # gradient_accumulation_steps
    need_gib: float
    fits: bool
    total_steps: int | None
    hours: float | None
    current: bool


class LayoutChoice(NamedTuple):
    """Another parallel layout of a Megatron launch, with the same examples per step (megatron_advice.py)."""

    layout: str  # e.g. "TP 2 (SP) x PP 4 x CP 1, EP 2"
    change: str  # in YAML terms
    need_gib: float
    fits: bool


class Suggestion(NamedTuple):
    """The splits of the examples per optimizer step into micro-batch x accumulation on a GPU, best first."""

    target_batch: int  # examples per optimizer step, all processes
    world_size: int
    capacity_gib: float
    choices: tuple[Choice, ...]  # best first
    problem: str | None = None
    floor: str | None = None  # a peak no split changes (an evaluation, loading), in words
    path: str = ""  # the config
    gpu: str = ""  # the GPU's name
    data_parallel: int | None = None  # a Megatron launch's data-parallel size: the split is per data-parallel rank
    layouts: tuple[LayoutChoice, ...] = ()  # a Megatron launch's other parallel layouts, fitting ones first

    @property
    def best(self) -> Choice | None:
        """The first choice, when it fits."""
        return self.choices[0] if self.choices and self.choices[0].fits else None

    @property
    def current(self) -> Choice | None:
        """The config's own split (None when target_batch is not the config's)."""
        return next((c for c in self.choices if c.current), None)

    def to_dict(self) -> dict:
        """The JSON output of ``lf-lint suggest --format json``."""
        data = self._asdict()
        path, gpu = data.pop("path"), data.pop("gpu")
        return {"path": path, "gpu": gpu, **data, "choices": [c._asdict() for c in self.choices],
                "layouts": [c._asdict() for c in self.layouts]}  # fmt: skip

    def __repr__(self) -> str:
        from ..reprs import bracket, plural

        if self.problem:
            return bracket("Suggestion", f"on {self.gpu}: none ({self.problem})")
        head = f"{self.gpu}, {plural(self.target_batch, 'example')}/step, {plural(self.world_size, 'GPU')}: "
        best, current = self.best, self.current
        if best is None:
            least = min(self.choices, key=lambda c: c.need_gib)
            text = f"none fits {self.capacity_gib:g} GiB; the least, batch {least.batch} x accum {least.accumulation}, "
            text += f"needs {least.need_gib:.1f} GiB"
            fitting = [c for c in self.layouts if c.fits]
            if fitting:
                text += f"; {len(fitting)} other parallel layout(s) fit, e.g. {fitting[0].layout}"
        else:
            hours = f", {duration(best.hours)}" if best.hours is not None else ""
            text = f"best batch {best.batch} x accum {best.accumulation} ({best.need_gib:.1f} GiB{hours})"
            if best.current:
                text += ", the current one"
            elif current is not None:
                text += f"; current {current.batch} x {current.accumulation}"
        return bracket("Suggestion", head + text)

    def _repr_html_(self) -> str:
        from ..reprs import table

        caption = (f"{self.path}: {self.target_batch:,} examples per optimizer step on {self.world_size} process(es), "
                   f"{self.gpu} ({self.capacity_gib:g} GiB)")  # fmt: skip
        header = ("batch", "accumulation", "est. GiB", "fits", "total steps", "est. time", "")
        notes = [f"no suggestion: {self.problem}"] if self.problem else []
        notes += [f"layout {c.layout}: {c.need_gib:.1f} GiB ({'fits' if c.fits else 'does not fit'}): {c.change}"
                  for c in self.layouts]  # fmt: skip
        return table(caption, map(_cells, self.choices), header, notes + ([self.floor] if self.floor else []))


def _cells(c: Choice) -> tuple:
    steps = "?" if c.total_steps is None else f"{c.total_steps:,}"
    hours = "?" if c.hours is None else duration(c.hours)
    return (
        c.batch,
        c.accumulation,
        f"{c.need_gib:.1f}",
        "yes" if c.fits else "no",
        steps,
        hours,
        "current" if c.current else "",
    )


def suggest_config(config, options, resolution, target_batch: int | None = None) -> Suggestion:
    """``suggest`` for a loaded config with its lint options: the ``lf-lint suggest`` command and the API's."""
    from ..engine import make_context

    return suggest(make_context(config, options, resolution), target_batch)


def suggest(ctx, target_batch: int | None = None) -> Suggestion:
    """Every split of ``target_batch`` (default: the config's) into micro-batch x accumulation x processes,
    with its memory estimate, step count and time; fitting choices first, the fastest first."""
    gpu = ctx.options.get("gpu")
    return _splits(ctx, gpu, target_batch)._replace(path=ctx.config.path, gpu=gpu.name)


def _splits(ctx, gpu, target_batch: int | None) -> Suggestion:
    report = ctx.memory
    if report is not None and report.inputs is not None and report.inputs.megatron is not None and ctx.args.trains:
        return _megatron_splits(ctx, gpu, target_batch)
    a, world = ctx.args, ctx.launch.world_size
    batch, accumulation = batch_and_accumulation(a)
    total = target_batch or batch * accumulation * world
    if report is None or report.estimate is None:
        return Suggestion(total, world, gpu.memory_gib, (), report.problem if report else "not a train config")
    if not a.trains:
        return Suggestion(total, world, gpu.memory_gib, (), _not_training(report, gpu))
    if total % world:
        return Suggestion(
            total, world, gpu.memory_gib, (), f"{total} examples per step cannot be split over {world} processes"
        )
    per_process = total // world
    plan = ctx.plan
    safe = gpu.memory_gib * (1 - margin(report.inputs))
    share = report.inputs.trainable_params / max(1, report.inputs.total_params)
    choices = []
    for micro in (d for d in range(1, per_process + 1) if per_process % d == 0):
        inputs = report.variant(
            {"per_device_train_batch_size": micro, "gradient_accumulation_steps": per_process // micro}
        )
        need = estimate(inputs).device / GIB
        steps = _total_steps(ctx, plan, micro, per_process // micro)
        hours = None
        if steps is not None:
            timing = training_time(inputs, gpu, steps * total, micro, share, *evaluated_samples(ctx.args, plan))
            hours = timing.hours if timing else None
        choices.append(
            Choice(
                micro,
                per_process // micro,
                need,
                need <= safe,
                steps,
                hours,
                (micro, per_process // micro) == (batch, accumulation),
            )
        )
    choices.sort(key=lambda c: (not c.fits, c.hours if c.hours is not None else 0.0, c.accumulation))
    est = report.estimate
    floor = None
    if est.phase in ("evaluation", "model loading"):
        floor = f"{'an evaluation' if est.phase == 'evaluation' else 'loading the model'} needs {est.device / GIB:.1f} GiB whatever the split"
    return Suggestion(total, world, gpu.memory_gib, tuple(choices), floor=floor)


def _megatron_splits(ctx, gpu, target_batch: int | None) -> Suggestion:
    """A Megatron launch splits the examples per step over its data-parallel ranks (McaTrainer: b x GA per rank;
    megatron-bridge: LLaMA-Factory's global batch, whose GA also counts expert parallelism), then lists other
    layouts (megatron_advice.py)."""
    from .megatron_advice import examples_per_step, layout_choices

    report = ctx.memory
    layout = report.variant.layout()
    world, dp = layout.world_size, layout.data_parallel
    total = target_batch or examples_per_step(ctx.args, layout)
    if total % dp:
        return Suggestion(total, world, gpu.memory_gib, (), f"{total} examples per step cannot be split over "
                          f"{dp} data-parallel ranks", data_parallel=dp)  # fmt: skip
    per_rank = total // dp
    batch, accumulation = batch_and_accumulation(ctx.args)
    safe = gpu.memory_gib * (1 - margin(report.inputs))
    share = report.inputs.trainable_params / max(1, report.inputs.total_params)
    experts = layout.expert if layout.engine == "megatron_bridge" else 1  # LLaMA-Factory divides by EP too
    choices = []
    for micro in (d for d in range(1, per_rank + 1) if per_rank % d == 0):
        split = {"per_device_train_batch_size": micro, "gradient_accumulation_steps": per_rank // micro * experts}
        inputs = report.variant(split)
        need = estimate(inputs).device / GIB
        steps = _megatron_steps(ctx, split)
        hours = None
        if steps is not None:
            timing = training_time(inputs, gpu, steps * total, micro, share, *evaluated_samples(ctx.args, ctx.plan))
            hours = timing.hours if timing else None
        current = (micro, split["gradient_accumulation_steps"]) == (batch, accumulation)
        choices.append(Choice(micro, split["gradient_accumulation_steps"], need, need <= safe, steps, hours, current))
    choices.sort(key=lambda c: (not c.fits, c.hours if c.hours is not None else 0.0, c.accumulation))
    layouts = tuple(LayoutChoice(e.proposal.layout, e.proposal.change, e.need_gib, e.fits)
                    for e in layout_choices(report, gpu))  # fmt: skip
    return Suggestion(total, world, gpu.memory_gib, tuple(choices), data_parallel=dp, layouts=layouts)


def _megatron_steps(ctx, split: dict) -> int | None:
    """Total steps of the Megatron engine's own loop with another split (megatron_steps.py)."""
    plan = ctx.plan
    if plan is None or plan.steps is None:
        return None
    from ..megatron_steps import bridge_extra_config
    from ..plan import build_plan

    args = ctx.args.with_values(split)
    layout = ctx.memory.variant.layout(args)
    extra = bridge_extra_config(args, ctx.workdir)[0] if layout.engine == "megatron_bridge" else {}
    changed = build_plan(args, ctx.counts, ctx.launch, ctx.target, ctx.options.get("num_examples"), layout, extra)
    return changed.steps.total_steps if changed.steps is not None else None


def _not_training(report, gpu) -> str:
    """Why a config that only evaluates or predicts has no split to choose, and the eval batch that fits."""
    args = report.variant.args
    task = "prediction" if args.do_predict else "evaluation"
    fitting = largest_eval_batch(report.variant, gpu, 1 - margin(report.inputs))
    text = (f"the config does not train (do_train is not set), so there is no micro-batch to split; its "
            f"{task} needs {report.estimate.device / GIB:.1f} GiB per GPU with per_device_eval_batch_size "
            f"{args.per_device_eval_batch_size}")  # fmt: skip
    if fitting is None:
        return text + ", and does not fit even with 1"
    return text + f"; the largest power of two that fits is {fitting[0]}"


def _total_steps(ctx, plan, micro: int, accumulation: int) -> int | None:
    if plan is None or plan.steps is None or plan.trainer != "Trainer":
        return None
    from ..plan import step_inputs

    inputs = step_inputs(ctx.args, plan.num_examples, ctx.launch, ctx.target)._replace(
        per_device_batch=micro, accumulation=accumulation
    )
    try:
        return plan_steps(inputs, ctx.target.tf).total_steps
    except StepError:
        return None


def _current_batch(suggestion: Suggestion) -> str:
    current = suggestion.current
    return str(current.batch) if current is not None else "of the config"


def render_suggestion(suggestion: Suggestion) -> str:
    path, gpu_name = suggestion.path, suggestion.gpu
    ranks = f" (data-parallel size {suggestion.data_parallel})" if suggestion.data_parallel else ""
    head = (f"{path}: {suggestion.target_batch:,} examples per optimizer step on {suggestion.world_size} process(es)"
            f"{ranks}, {gpu_name} ({suggestion.capacity_gib:g} GiB)")  # fmt: skip
    if suggestion.problem:
        return f"{path} on the {gpu_name} ({suggestion.capacity_gib:g} GiB): no suggestion: {suggestion.problem}\n"
    lines = [
        head,
        "  batch  accum  est. GiB  fits  total steps  est. time",
        "  -----  -----  --------  ----  -----------  ---------",
    ]
    for c in suggestion.choices:
        steps = f"{c.total_steps:,}" if c.total_steps is not None else "?"
        hours = duration(c.hours) if c.hours is not None else "?"
        mark = "  <- current" if c.current else ""
        lines.append(
            f"  {c.batch:>5}  {c.accumulation:>5}  {c.need_gib:>8.1f}  {'yes' if c.fits else 'no':>4}  {steps:>11}  {hours:>9}{mark}"
        )
    if suggestion.floor:
        lines.append(f"  ({suggestion.floor})")
    if suggestion.layouts:
        lines.append(f"  other layouts at per_device_train_batch_size {_current_batch(suggestion)} (the same examples "
                     "per step):")  # fmt: skip
        for c in suggestion.layouts:
            lines.append(f"    {c.layout:<28} {c.need_gib:>6.1f} GiB  {'fits' if c.fits else 'no':>4}  {c.change}")
    unknown = any(c.total_steps is None for c in suggestion.choices)
    lines.append("  (memory and time are estimates: the longest batch at cutoff_len; time at an assumed utilisation"
                 + ("; give --num-examples or let lf-lint count the data for steps and time)" if unknown else ")"))  # fmt: skip
    return "\n".join(lines) + "\n"
