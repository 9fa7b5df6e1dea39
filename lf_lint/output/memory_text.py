"""The memory estimate in words, under the step plan of the full format."""

from __future__ import annotations

from ..memory.advice import duration
from ..memory.estimate import GIB
from ..memory.report import MemoryReport


def memory_block(report: MemoryReport) -> list[str]:
    if report.estimate is None:
        return [f"Memory: no estimate: {report.problem}"]
    est, inputs, model = report.estimate, report.inputs, report.model
    head = f"Memory per GPU (estimate): {est.device / GIB:.1f} GiB at the peak ({est.phase})"
    if report.verdict is not None:
        v = report.verdict
        word = {"oom": "does NOT fit", "tight": "tight on", "fits": "fits"}[v.status]
        head += f"; {word} {report.gpu.name} ({v.capacity_gib:g} GiB, {v.need_gib / v.capacity_gib:.0%} used)"
    parts = est.breakdown()
    lines = [
        head,
        "  "
        + " | ".join(f"{name.replace('logits', 'logits/loss')} {value:.1f}" for name, value in parts.items())
        + " GiB",
        f"  model: {model.name}, {model.params / 1e9:.2f}B parameters ({model.source}; {model.confidence} confidence); "
        f"{inputs.method}, {inputs.trainable_params:,} trainable, {inputs.optimizer_name}",
        f"  sharding: {inputs.sharding}",
        "  micro-batch: none (no training)"
        if inputs.method == "inference"
        else f"  micro-batch: {inputs.sequences} sequence(s) x {inputs.seq_len:,} tokens (the longest batch: cutoff_len)"
        + (
            f"; largest micro-batch under 80% of the card: {report.largest_batch or 'none, not even 1'}"
            if report.largest_batch is not None
            else ""
        ),
    ]
    lines += [f"  note: {note}" for note in est.notes]
    if report.time is not None:
        t = report.time
        lines.append(f"  time: about {duration(t.hours)} (estimate: {t.flops:.2e} FLOPs at {t.assumptions})")
    return lines
