"""The memory fact of a lint: model, estimate, verdict on the target GPU, advice, time."""

from __future__ import annotations

from typing import NamedTuple

from .advice import TimeEstimate, Verdict, largest_batch, training_time, verdict
from .estimate import GIB, MemoryEstimate, MemoryInputs, estimate
from .gpus import Gpu
from .inputs import build_inputs
from .llamafactory import batch_and_accumulation
from .megatron_config import LayoutError
from .model import ModelInfo

_SAME = object()


class Variant(NamedTuple):
    """Builds the estimate's inputs again for the config with some arguments changed, or another DeepSpeed config:
    the advice's alternatives go through the same mapping as the config itself."""

    args: object
    model: ModelInfo
    target: object
    launch: object
    deepspeed: object
    images: int | None = None
    engine: str | None = None  # a Megatron launch's arguments ("mca", "megatron_bridge"): its layout is read anew
    workdir: object = None

    def __repr__(self) -> str:
        from ..reprs import bracket

        return bracket("Variant", f"of {self.model.name}: call it with changed arguments for their MemoryInputs")

    def __call__(self, overrides: dict | None = None, deepspeed: object = _SAME) -> MemoryInputs:
        chosen = self.deepspeed if deepspeed is _SAME else deepspeed
        args = self.args.with_values(overrides or {})
        return build_inputs(args, self.model, self.target, self.launch.world_size, chosen, images=self.images,
                            launch=self.launch, layout=self.layout(args))  # fmt: skip

    def layout(self, args=None):
        """The parallel layout of a Megatron launch with ``args`` (default: the config's), else None."""
        if self.engine is None:
            return None
        from ..parallel_layout import read_layout

        return read_layout(args if args is not None else self.args, self.engine, self.launch, self.workdir)


class MemoryReport(NamedTuple):
    model: ModelInfo | None
    inputs: MemoryInputs | None
    estimate: MemoryEstimate | None
    gpu: Gpu | None
    verdict: Verdict | None
    largest_batch: int | None  # the largest micro-batch under 80% of the card
    time: TimeEstimate | None
    problem: str | None = None  # why there is no estimate
    variant: Variant | None = None  # the same run with some arguments (or the DeepSpeed config) changed

    def to_dict(self) -> dict:
        """The ``memory`` object of the JSON output (README: "Machine-readable output")."""
        data: dict = {
            "gpu": self.gpu.name if self.gpu else None,
            "capacity_gib": self.gpu.memory_gib if self.gpu else None,
        }
        if self.estimate is None:
            data.update(peak_gib=None, fits=None, problem=self.problem)
            return data
        est, model = self.estimate, self.model
        data.update(
            peak_gib=round(est.device / GIB, 2),
            allocated_gib=round(est.allocated / GIB, 2),
            breakdown_gib=est.breakdown(),
            phase=est.phase,
            **({"training_peak_gib": round(est.training / GIB, 2)} if est.training else {}),
            fits=self.verdict.fits if self.verdict else None,
            status=self.verdict.status if self.verdict else None,
            margin=self.verdict.margin if self.verdict else None,
            largest_micro_batch=self.largest_batch,
            model={"name": model.name, "params": model.params, "source": model.source, "confidence": model.confidence},
            trainable_params=self.inputs.trainable_params,
            method=self.inputs.method,
            optimizer=self.inputs.optimizer_name,
            sequences_per_micro_batch=self.inputs.sequences,
            seq_len=self.inputs.seq_len,
            world_size=self.inputs.world_size,
            sharding=self.inputs.sharding,
            notes=list(est.notes),
            estimate=True,
        )
        if self.inputs.megatron is not None:
            from .megatron import stage_peaks

            data["stages_gib"] = [round(b / GIB, 2) for b in stage_peaks(self.inputs)]
        if self.time is not None:
            data["time"] = {"hours": round(self.time.hours, 2), "flops": self.time.flops, "utilisation": round(self.time.utilisation, 3),
                            "assumptions": self.time.assumptions}  # fmt: skip
        return data

    def __repr__(self) -> str:
        from ..reprs import bracket

        if self.estimate is None:
            return bracket("Memory:", f"no estimate ({self.problem})")
        est = self.estimate
        if self.verdict is None:
            return bracket("Memory", f"{est.device / GIB:.1f} GiB per GPU ({est.phase}); no GPU given")
        word = {"oom": "does NOT fit", "tight": "tight", "fits": "fits"}[self.verdict.status]
        need = f"{est.device / GIB:.1f} GiB of {self.gpu.memory_gib:g}"
        return bracket("Memory", f"{need} on {self.gpu.name}: {word} ({est.phase})")

    def _repr_html_(self) -> str:
        from ..reprs import table

        return table("Memory per GPU (estimate)", _html_rows(self))


def _html_rows(report: MemoryReport) -> list[tuple[str, object]]:
    gpu = report.gpu
    rows = [("GPU", f"{gpu.name} ({gpu.memory_gib:g} GiB)" if gpu else "none given")]
    if report.estimate is None:
        return rows + [("problem", report.problem)]
    est, inputs, model, v = report.estimate, report.inputs, report.model, report.verdict
    rows.append(("peak GiB", f"{est.device / GIB:.1f} ({est.phase})"))
    if v is not None:
        used = f"{v.need_gib / v.capacity_gib:.0%} of the card used"
        rows.append(("verdict", f"{v.status}: {used}, {v.margin:.0%} kept free"))
    rows += [(f"{name} GiB", f"{value:.2f}") for name, value in est.breakdown().items()]
    rows += [
        ("model", f"{model.name}: {model.params / 1e9:.2f}B parameters ({model.source})"),
        ("model confidence", model.confidence),
        ("method", f"{inputs.method}, {inputs.trainable_params:,} trainable, {inputs.optimizer_name}"),
        ("micro-batch", f"{inputs.sequences} sequence(s) x {inputs.seq_len:,} tokens"),
        ("sharding", inputs.sharding),
    ]
    if report.largest_batch is not None:
        rows.append(("largest micro-batch under 80%", report.largest_batch))
    if report.time is not None:
        from .advice import duration

        rows.append(("time", f"about {duration(report.time.hours)} ({report.time.assumptions})"))
    return rows + [("note", note) for note in est.notes]


def evaluations(args, plan) -> int:
    """Evaluations over the run: each one during training (eval_steps_at) and the one LLaMA-Factory runs after it
    (``do_eval``, which an eval_strategy turns on)."""
    if plan is None or plan.steps is None:
        return 0
    return len(plan.steps.eval_steps_at) + (1 if args.do_eval or str(args.eval_strategy or "no") != "no" else 0)


def evaluated_samples(args, plan) -> tuple[float, int]:
    """(sequences evaluated over the run, the eval batch); none when the eval set's size is unknown."""
    batch = args.per_device_eval_batch_size
    batch = batch if isinstance(batch, int) and batch > 0 else 8
    if plan is None or not plan.num_eval_examples:
        return 0.0, batch
    return float(evaluations(args, plan) * plan.num_eval_examples), batch


def memory_report(ctx, gpu: Gpu | None) -> MemoryReport:
    args = ctx.args
    model = ctx.model_info
    if model is None:
        return MemoryReport(None, None, None, gpu, None, None, None,
                            f"no shape known for model {args.model_name_or_path!r}: point model_name_or_path at a local folder "
                            "with config.json, or give --params (e.g. --params 7e9)")  # fmt: skip
    if model.shape is None:
        return MemoryReport(model, None, None, gpu, None, None, None, f"the model's layer shape is unknown: {model.source}")
    deepspeed = ctx.deepspeed  # the YAML's, or the one `accelerate launch --config_file` sets up
    if deepspeed is not None and deepspeed.launcher and deepspeed.problem:
        return MemoryReport(model, None, None, gpu, None, None, None,
                            f"{deepspeed.launcher} names a DeepSpeed config lf-lint cannot read: {deepspeed.problem}")  # fmt: skip
    deepspeed = deepspeed if deepspeed is not None and deepspeed.config else None
    launched = ctx.launch.accelerate  # FSDP set up by `accelerate launch --config_file`, not the YAML
    if launched is not None and not args.is_set("fsdp") and not args.is_set("deepspeed"):
        args = args.with_values(launched.fsdp_arguments())
    # a vision encoder's work is bounded by the images of the data, when lf-lint read every training dataset
    images = ctx.counts.most_images() if model.shape.vision is not None and ctx.counts is not None else None
    layout = ctx.parallel_layout
    try:
        inputs = build_inputs(args, model, ctx.target, ctx.launch.world_size, deepspeed, images=images,
                              launch=ctx.launch, layout=layout)  # fmt: skip
    except LayoutError as exc:
        return MemoryReport(model, None, None, gpu, None, None, None, str(exc))
    est = estimate(inputs)
    judged = verdict(est, inputs, gpu) if gpu is not None else None
    batch = batch_and_accumulation(args)[0]
    biggest = largest_batch(inputs, batch, gpu) if gpu is not None else None
    time = None
    plan = ctx.plan
    steps = plan.steps if plan is not None else None
    if gpu is not None and steps is not None:
        samples = steps.total_steps * steps.total_train_batch_size
        share = inputs.trainable_params / max(1, inputs.total_params)
        time = training_time(inputs, gpu, samples, batch, share, *evaluated_samples(args, plan))
        if time is not None and evaluations(args, plan) and not plan.num_eval_examples:
            time = time._replace(assumptions=f"{time.assumptions}; the {evaluations(args, plan)} evaluations not "
                                 "counted (the eval set's size is unknown)")  # fmt: skip
    engine = layout.engine if layout is not None else None
    return MemoryReport(model, inputs, est, gpu, judged, biggest, time,
                        variant=Variant(args, model, ctx.target, ctx.launch, deepspeed, images, engine, ctx.workdir))  # fmt: skip
