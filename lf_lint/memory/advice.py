"""Will it fit, does it use the card, and how long will it take: verdicts on a memory estimate.

The wall-time figure is an estimate by construction: training FLOPs (forward and backward,
recomputation, the LoRA discount) over the GPU's dense throughput at an assumed utilisation
that grows with the tokens in a micro-batch (Qwen's published A100 profiling: LoRA 25% of peak at
256 tokens per micro-batch, 47% at 2,048). Every result says so.
"""

from __future__ import annotations

from typing import NamedTuple

from .estimate import GIB, MemoryEstimate, MemoryInputs, estimate
from .gpus import Gpu
from .model import Shape, active_params

UNDERUSE_TARGET = 0.80  # a suggested micro-batch leaves a fifth of the card free


def margin(inputs: MemoryInputs) -> float:
    """The share of the card kept free: the estimate is less certain with 4-bit weights, ZeRO-3 and FSDP, and for
    Megatron launches (derived from the source, not measured on LLaMA-Factory runs)."""
    uncertain = inputs.quantized_params or inputs.zero_stage == 3 or inputs.fsdp or inputs.megatron is not None
    return 0.15 if uncertain else 0.10


class Verdict(NamedTuple):
    status: str  # "oom" | "tight" | "fits"
    need_gib: float
    capacity_gib: float
    margin: float

    @property
    def fits(self) -> bool:
        return self.status != "oom"


def verdict(est: MemoryEstimate, inputs: MemoryInputs, gpu: Gpu) -> Verdict:
    need, capacity = est.device / GIB, gpu.memory_gib
    keep = margin(inputs)
    status = "oom" if need > capacity else "tight" if need > capacity * (1 - keep) else "fits"
    return Verdict(status, need, capacity, keep)


def with_batch(inputs: MemoryInputs, batch: int, old_batch: int) -> MemoryInputs:
    """The same run with another per-device micro-batch (sequences scale with it)."""
    scale = batch / old_batch
    logits = inputs.logits_sequences if inputs.logits_sequences is not None else inputs.sequences
    generation = inputs.generation_bytes * scale
    vision = inputs.vision._replace(patches=round(inputs.vision.patches * scale)) if inputs.vision else None
    return inputs._replace(
        sequences=round(inputs.sequences * scale),
        logits_sequences=round(logits * scale),
        generation_bytes=generation,
        vision=vision,
    )


def largest_batch(inputs: MemoryInputs, batch: int, gpu: Gpu, share: float = UNDERUSE_TARGET, limit: int = 1024) -> int:
    """The largest per-device micro-batch whose training estimate stays under ``share`` of the card (0 if none).
    Loading's peak (loading.py) and an evaluation's (evaluation.py) do not change with it: not counted."""
    best, candidate = 0, 1
    inputs = inputs._replace(load_bytes=0.0, eval_logits=0.0, eval_activations=0.0)
    while candidate <= limit:
        if estimate(with_batch(inputs, candidate, batch)).device / GIB > gpu.memory_gib * share:
            break
        best, candidate = candidate, candidate + 1 if candidate < 8 else candidate * 2
    return best


def largest_eval_batch(variant, gpu: Gpu, share: float, limit: int = 128) -> tuple[int, float] | None:
    """(size, GiB): the largest power-of-two ``per_device_eval_batch_size`` whose estimate stays under ``share`` of
    the card, for a config that only evaluates or predicts (None if even 1 does not)."""
    best = None
    size = 1
    while size <= limit:
        need = estimate(variant({"per_device_eval_batch_size": size})).device / GIB
        if need > gpu.memory_gib * share:
            break
        best, size = (size, need), size * 2
    return best


# --- time ------------------------------------------------------------------------------


class TimeEstimate(NamedTuple):
    hours: float
    flops: float
    utilisation: float
    tokens: float
    assumptions: str


def forward_flops_per_token(shape: Shape, params: int, seq_len: int) -> float:
    """A forward pass: 2 FLOPs per matmul weight (the embedding lookup is none) and causal attention."""
    matmul = active_params(shape) - shape.vocab * shape.hidden * (0 if shape.tied else 1) if shape else params
    attention = 2 * shape.layers * seq_len * shape.heads * shape.head_dim if shape else 0
    return 2 * matmul + attention


def flops_per_token(
    shape: Shape, params: int, method: str, checkpointing: bool, seq_len: int, trainable_share: float
) -> float:
    """Training FLOPs per token: forward 2N (+ causal attention), backward 4N for full tuning but only the 2N of
    input gradients when the weights are frozen (LoRA, QLoRA), one more forward with recomputation."""
    forward = forward_flops_per_token(shape, params, seq_len)
    if method == "full":
        backward = 2 * forward
    elif method == "freeze":
        backward = forward * (1 + trainable_share)
    else:
        backward = forward
    return forward + backward + (forward if checkpointing else 0)


def utilisation(tokens_per_microbatch: int, method: str, quantized: bool, offload: bool) -> float:
    peak = 0.45 if method in ("lora", "oft") else 0.40
    value = peak * tokens_per_microbatch / (tokens_per_microbatch + 300)
    if quantized:
        value *= 0.7  # dequantising 4-bit weights in every matmul
    if offload:
        value *= 0.6
    return value


def duration(hours: float) -> str:
    if hours >= 1:
        return f"{hours:,.1f} h"
    minutes = hours * 60
    return f"{minutes:.1f} min" if minutes < 10 else f"{minutes:.0f} min"


def training_time(
    inputs: MemoryInputs,
    gpu: Gpu,
    samples: float,
    batch: int,
    trainable_share: float,
    eval_samples: float = 0.0,
    eval_batch: int = 8,
) -> TimeEstimate | None:
    """Wall time for ``samples`` sequences of ``inputs.seq_len`` tokens on ``inputs.world_size`` GPUs, and
    ``eval_samples`` evaluated sequences (forward only, ``eval_batch`` at a time)."""
    if not gpu.tflops or samples <= 0:
        return None
    tokens = samples * inputs.seq_len
    per_token = flops_per_token(
        inputs.shape, inputs.total_params, inputs.method, inputs.checkpointing, inputs.seq_len, trainable_share
    )
    flops = tokens * per_token
    offload = inputs.offload_optimizer or inputs.offload_params
    util = utilisation(batch * inputs.seq_len, inputs.method, bool(inputs.quantized_params), offload)
    if inputs.megatron is not None:  # the pipeline's bubble
        from .megatron import pipeline_efficiency

        util *= pipeline_efficiency(inputs.megatron)
    throughput = max(1, inputs.world_size) * gpu.tflops * 1e12
    seconds = flops / (throughput * util)
    evaluated = ""
    if eval_samples > 0:
        eval_flops = eval_samples * inputs.seq_len * forward_flops_per_token(inputs.shape, inputs.total_params,
                                                                             inputs.seq_len)  # fmt: skip
        eval_util = utilisation(eval_batch * inputs.seq_len, "full", bool(inputs.quantized_params), offload)
        seconds += eval_flops / (throughput * eval_util)
        flops += eval_flops
        evaluated = f"; {eval_samples:,.0f} evaluated sequences, forward only"
    return TimeEstimate(
        hours=seconds / 3600,
        flops=flops,
        utilisation=util,
        tokens=tokens,
        assumptions=f"{util:.0%} of {gpu.name}'s {gpu.tflops:g} dense TFLOPs, every sequence {inputs.seq_len:,} tokens (an upper bound unless packed)"
        + evaluated
        + ("; the vision encoder's own FLOPs per image not counted" if inputs.shape and inputs.shape.vision else ""),
    )


# --- what to change --------------------------------------------------------------------


class Remedy(NamedTuple):
    change: str  # the config change, in YAML terms
    need_gib: float  # the estimate after it


def remedies(
    inputs: MemoryInputs, batch: int, accumulation: int, gpu: Gpu, liger_possible: bool, variant
) -> list[Remedy]:
    """Changes that bring the estimate under the card's safe share, most effective first. ``variant`` (report.py)
    builds each alternative through the same mapping as the config itself."""
    from ..launch import DeepSpeed
    from .deepspeed import LLAMAFACTORY_ZERO3

    safe = gpu.memory_gib * (1 - margin(inputs))
    options: list[tuple[str, MemoryInputs]] = []
    if inputs.logits_bytes and liger_possible:
        options.append(("enable_liger_kernel: true (no logits in memory)", variant({"enable_liger_kernel": True})))
    for smaller in range(batch - 1, 0, -1):
        if (batch * accumulation) % smaller == 0:
            split = {
                "per_device_train_batch_size": smaller,
                "gradient_accumulation_steps": batch * accumulation // smaller,
            }
            options.append((f"per_device_train_batch_size: {smaller} and gradient_accumulation_steps: "
                            f"{split['gradient_accumulation_steps']} (same examples per step)", variant(split)))  # fmt: skip
            break
    if batch > 1:
        options.append(("per_device_train_batch_size: 1", variant({"per_device_train_batch_size": 1})))
    if not inputs.checkpointing:
        options.append(("disable_gradient_checkpointing: false (recompute activations)",
                        variant({"disable_gradient_checkpointing": False})))  # fmt: skip
    if inputs.method == "full" and inputs.zero_stage == 0 and not inputs.fsdp:
        if inputs.trainable_bytes == 4.0:
            options.append(("pure_bf16: true (bf16 weights and optimizer states)", variant({"pure_bf16": True})))
        if inputs.optimizer_bytes > 2.1:
            options.append(("optim: adamw_8bit (needs bitsandbytes)", variant({"optim": "adamw_8bit"})))
    eval_batch = variant.args.per_device_eval_batch_size if inputs.eval_logits or inputs.eval_activations else None
    if isinstance(eval_batch, int) and eval_batch > 1:  # evaluation.py: the eval batch's logits
        for smaller in sorted({max(1, eval_batch // 2), 1}, reverse=True):
            options.append((f"per_device_eval_batch_size: {smaller}", variant({"per_device_eval_batch_size": smaller})))
    if inputs.load_bytes:  # the whole model on every GPU while it loads (loading.py)
        options += loading_remedies(inputs, gpu, variant)
    if inputs.world_size > 1 and inputs.zero_stage < 3 and not inputs.fsdp:
        zero3 = DeepSpeed("examples/deepspeed/ds_z3_config.json", LLAMAFACTORY_ZERO3)
        options.append(("deepspeed: examples/deepspeed/ds_z3_config.json (shard weights, gradients and optimizer)",
                        variant(deepspeed=zero3)))  # fmt: skip
    if inputs.method in ("lora", "oft", "inference") and not inputs.quantized_params:
        what = "4-bit weights" if inputs.method == "inference" else "QLoRA"
        options.append((f"quantization_bit: 4 ({what})", variant({"quantization_bit": 4})))
    found = []
    for change, changed in options:
        need = estimate(changed).device / GIB
        if need <= safe:
            found.append(Remedy(change, need))
    return sorted(found, key=lambda r: r.need_gib)[:3] if found else []


def loading_remedies(inputs: MemoryInputs, gpu: Gpu, variant) -> list[tuple[str, MemoryInputs]]:
    """Ways to load without the whole fp32-cast model on every GPU; training is the same after them."""
    options = []
    if inputs.fsdp:
        config = variant.args.fsdp_config if isinstance(variant.args.fsdp_config, dict) else {}
        if not isinstance(variant.args.fsdp_config, str):
            options.append(("fsdp_config: {cpu_ram_efficient_loading: true} (rank 0 loads on the CPU, FSDP moves one "
                            "shard at a time)", variant({"fsdp_config": {**config, "cpu_ram_efficient_loading": True}})))  # fmt: skip
    elif inputs.trainable_bytes == 2.0 and gpu.bf16 and variant.args.bf16:  # DeepSpeed's 16-bit weights
        options.append(("pure_bf16: true beside bf16: true (no fp32 cast at load; DeepSpeed keeps its fp32 master "
                        "weights either way)", variant({"pure_bf16": True})))  # fmt: skip
    host = (inputs.total_params + inputs.trainable_params) * 2 / GIB  # 16-bit weights, the trainable ones in fp32
    options.append((f"low_cpu_mem_usage: false (each process loads the model into host memory first: about "
                    f"{host:.0f} GiB of RAM per process)", variant({"low_cpu_mem_usage": False})))  # fmt: skip
    return options


def bigger_batch(
    inputs: MemoryInputs, batch: int, accumulation: int, gpu: Gpu, variant, min_accumulation: int = 1
) -> tuple[int, int, float] | None:
    """(micro-batch, accumulation, GiB): the largest micro-batch that divides the examples per step and stays
    under 80% of the card, when it is at least twice the current one (and leaves ``min_accumulation``: a pipeline
    needs micro-batches to fill its stages)."""
    room = largest_batch(inputs, batch, gpu)
    per_step = batch * accumulation
    for candidate in range(min(room, per_step), batch, -1):
        if per_step % candidate == 0 and candidate >= 2 * batch and per_step // candidate >= min_accumulation:
            split = {"per_device_train_batch_size": candidate, "gradient_accumulation_steps": per_step // candidate}
            return candidate, per_step // candidate, estimate(variant(split)).device / GIB
    return None
