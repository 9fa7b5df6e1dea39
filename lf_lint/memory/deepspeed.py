"""DeepSpeed's ZeRO optimizer: what it keeps on each GPU, and in which phase of a training step.

Read in DeepSpeed 0.14-0.16.9 (LLaMA-Factory 0.9.2-0.9.5 accept up to 0.16.9): ``runtime/zero/stage_1_and_2.py``,
``stage3.py``, ``bf16_optimizer.py``, ``fp16/fused_optimizer.py``; and measured with DeepSpeed 0.16.9 on CPU, every
allocation traced (tests/groundtruth/deepspeed_probe.py). Per trainable parameter, with w data-parallel processes:

* Kept (stages 1-3): the 16-bit weights (2 bytes; sharded at stage 3), the fp32 master copy and Adam's two moments
  (12, sharded), the 16-bit gradients (2: whole at stage 1 while micro-batches accumulate, sharded from stage 2).
* Backward only (stages 1 and 2, ``backward``/``_release_ipg_buffers``): one ``reduce_bucket_size`` bucket of 16-bit
  elements, two with ``overlap_comm``. At stage 2 every micro-batch after the first of an accumulation writes its
  gradients into a fresh partition before adding them to the first (2/w more); at stage 1 the partition is allocated
  at the accumulation boundary while the whole gradients still exist (2/w).
* In backward (stages 2 and 3), autograd's whole gradient of a parameter exists until DeepSpeed copies it into its
  bucket: the largest one (2 bytes x its elements) meets the gradient partition, which is allocated at the first copy.
* Stage 3 keeps its one bucket, and its gradient partition, for the whole run.
* The optimizer step (``step``): the gradient norm converts each parameter's gradient slice to float64 (8 bytes
  times the largest slice), then the partition is flattened (2/w) and converted to fp32 (4/w) before the 16-bit
  gradients are freed; the optimizer's own temporary then comes on top of the fp32 gradient (foreach AdamW: 4/w).
  Stage 3 flattens and steps one sub-group (``sub_group_size`` elements) at a time and keeps its 16-bit gradients.
* Stage 0 under bf16 (``BF16_Optimizer``): fp32 master and Adam sharded (12/w), a 16-bit gradient and an fp32
  gradient accumulator kept whole (6), a second 16-bit gradient while backward runs (2), and 4/w (or the
  optimizer's temporary, if larger) in the step. Stage 0 under fp16 (``FP16_Optimizer``): master and Adam whole
  (12), the 16-bit gradients (2) and, while backward runs, their flattened copy for the all-reduce (2); the step
  converts them to one fp32 gradient (4) and adds the optimizer's temporary on top.

With the optimizer offloaded (``offload_optimizer``) the states, the fp32 gradients and the step live in host memory.
"""

from __future__ import annotations

from typing import NamedTuple

from .model import Shape, linears

MASTER_AND_ADAM = 12.0  # fp32 master weights + Adam's exp_avg and exp_avg_sq
# LLaMA-Factory 0.9.5's examples/deepspeed/ds_z3_config.json, what the advice suggests for ZeRO-3
LLAMAFACTORY_ZERO3 = {
    "train_batch_size": "auto", "train_micro_batch_size_per_gpu": "auto", "gradient_accumulation_steps": "auto",
    "gradient_clipping": "auto", "zero_allow_untested_optimizer": True, "bf16": {"enabled": "auto"},
    "fp16": {"enabled": "auto", "loss_scale": 0, "loss_scale_window": 1000, "initial_scale_power": 16, "hysteresis": 2,
             "min_loss_scale": 1},
    "zero_optimization": {"stage": 3, "overlap_comm": False, "contiguous_gradients": True, "sub_group_size": 1e9,
                          "reduce_bucket_size": "auto", "stage3_prefetch_bucket_size": "auto",
                          "stage3_param_persistence_threshold": "auto", "stage3_max_live_parameters": 1e9,
                          "stage3_max_reuse_distance": 1e9, "stage3_gather_16bit_weights_on_model_save": True},
}  # fmt: skip
HALF = 2.0


class ZeroLayout(NamedTuple):
    """DeepSpeed's share of one GPU. Per-parameter bytes are as ``estimate`` shards them (by ZeRO stage);
    the others are bytes per GPU."""

    grad_bytes: float
    optimizer_bytes: float
    bucket_bytes: float  # kept for the whole run
    backward_bytes: float  # alive only while backward runs
    step_bytes: float  # alive only during the optimizer step, beyond what is kept


def largest_parameter(shape: Shape, fused_experts: bool) -> int:
    """Elements of the largest single parameter tensor: the embedding (or output head), unless transformers 5.x
    fuses an MoE layer's experts into one larger tensor."""
    largest = shape.vocab * shape.hidden
    if fused_experts and shape.moe is not None:
        largest = max(largest, shape.moe.experts * 2 * shape.moe.expert_intermediate * shape.hidden)
    return largest


def _number(value: object, default: float, auto: float | None = None) -> float:
    if value == "auto" and auto is not None:
        return auto
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return default


def zero_layout(
    section: dict,
    *,
    stage: int,
    world: int,
    trainable: int,
    largest: int,
    hidden: int,
    accumulation: int,
    optimizer_temp: float,
    fp16: bool = False,
    offload_optimizer: bool = False,
) -> ZeroLayout:
    """``section`` is the config's ``zero_optimization``; ``optimizer_temp`` the optimizer's step temporary in bytes
    per fp32 element (4 for the foreach AdamW, 0 fused); ``largest`` from ``largest_parameter``."""
    world = max(1, world)
    share = trainable / world  # elements of one process's partition
    if stage == 0:
        if fp16:
            step = 0.0 if offload_optimizer else trainable * (4.0 + optimizer_temp)
            return ZeroLayout(HALF, MASTER_AND_ADAM, 0.0, HALF * trainable, step)
        step = 0.0 if offload_optimizer else max(4.0, optimizer_temp) * share
        return ZeroLayout(6.0, MASTER_AND_ADAM / world, 0.0, HALF * trainable, step)

    # "auto" is what the Hugging Face integration fills in: hidden_size squared
    bucket = _number(section.get("reduce_bucket_size", 5e8), 5e8, auto=float(hidden * hidden)) * HALF
    if stage == 3:
        sub_group = _number(section.get("sub_group_size", 1e9), 1e9)
        slice_ = min(share, sub_group)
        norm = 8.0 * min(largest, share)
        step = 0.0 if offload_optimizer else max(norm, slice_ * max(6.0, 4.0 + optimizer_temp))
        return ZeroLayout(HALF, MASTER_AND_ADAM, bucket, HALF * largest, step)

    buckets = bucket * (2 if section.get("overlap_comm", False) else 1)
    fresh_partition = HALF * share if (stage == 1 or accumulation > 1) else 0.0
    norm = 8.0 * min(largest, share)
    # with the 16-bit gradient partition counted as kept: + flat copy and fp32 copy, or (16-bit freed) fp32 + temporary
    step = 0.0 if offload_optimizer else max(norm, share * max(6.0, 2.0 + optimizer_temp))
    if stage == 1:  # the whole gradients counted as kept are down to this process's partition by the step
        step = max(0.0, step - HALF * (trainable - share))
    copying = HALF * largest if stage == 2 else 0.0  # stage 1 accumulates into the parameters' own .grad
    return ZeroLayout(HALF, MASTER_AND_ADAM, 0.0, buckets + fresh_partition + copying, step)


def _layer_modules(shape: Shape, moe_layer: bool, fused_experts: bool, index: int = 0) -> list[int]:
    """Parameters of each module of decoder layer ``index`` that holds parameters directly (ZeRO-3 gathers per
    module)."""
    modules = [shape.hidden * (2 if shape.norm_bias else 1)] * shape.norms_per_layer
    linear_router = False  # a router that stays an nn.Linear beside fused experts (Gemma 4)
    for m in linears(shape, fused_experts=fused_experts, layer=index):
        if m.expert and not moe_layer:
            continue
        linear_router |= fused_experts and m.expert
        modules += [m.d_in * m.d_out + (m.d_out if m.bias else 0)] * (
            m.per_layer if not fused_experts or not m.expert else 1
        )
    if shape.moe is not None and moe_layer and fused_experts:
        experts = shape.moe.experts * 3 * shape.hidden * shape.moe.expert_intermediate
        modules += [experts] + ([] if linear_router else [shape.hidden * shape.moe.experts])  # and the router
    elif shape.moe is not None and not moe_layer:
        modules += [shape.hidden * shape.intermediate] * (3 if shape.gated else 2)
    mixer = next((mixer for mixer in shape.mixers if index in mixer.layers), None)
    if mixer is not None:
        modules.append(mixer.other)  # its norms, convolution and biases, counted as one module
    elif shape.qk_norm:
        modules += [shape.head_dim] * 2
    return modules


def zero3_gathered(
    shape: Shape, section: dict, *, checkpointing: bool, fused_experts: bool, layer_bytes: float = HALF
) -> float:
    """Bytes of 16-bit parameters ZeRO-3 holds gathered, whole, on each GPU when backward begins.

    DeepSpeed 0.16 (``partitioned_param_coordinator.py``: ``__params_to_release``) releases a module's parameters
    after use unless the module recurs in the step's trace within ``stage3_max_reuse_distance`` parameters. With
    gradient checkpointing the trace runs forward, then backward with each layer recomputed and then
    back-propagated; a module of layer k recurs after 3 x (the layers after k) + 2 x (head + final norm) + (the
    rest of layer k) parameters, so on a small model many late layers stay gathered from forward into backward.
    Without checkpointing autograd keeps every layer's gathered weights for backward. On top: the layer being
    recomputed, the output head, and what the prefetcher gathers ahead (``stage3_prefetch_bucket_size``).
    ``stage3_max_live_parameters`` only bounds prefetching (measured: no effect on what stays). ``layer_bytes``: what
    a gathered layer parameter takes (QLoRA's packed 4-bit weights: about half a byte)."""
    reuse = _number(section.get("stage3_max_reuse_distance", 1e9), 1e9)
    prefetch = _number(section.get("stage3_prefetch_bucket_size", 5e7), 5e7, auto=0.9 * shape.hidden**2)
    dense = set(shape.moe.dense_layers) if shape.moe else set(range(shape.layers))
    layers = [_layer_modules(shape, i not in dense, fused_experts, i) for i in range(shape.layers)]
    sizes = [sum(modules) for modules in layers]
    head, edges = shape.vocab * shape.hidden, 2 * shape.hidden  # the final norm, passed twice
    retained = 0.0
    if not checkpointing:
        retained = sum(sizes[:-1])
    else:
        later = sizes[-1]
        for k in range(shape.layers - 2, -1, -1):
            distance = 3 * later + 2 * head + edges + sizes[k]
            retained += sum(x for x in layers[k] if distance - x < reuse)
            later += sizes[k]
    embedding = 0.0
    if not shape.tied and 3 * sum(sizes) + 2 * head + edges < reuse:
        embedding = head  # the input embedding, used again at the end of backward
    return layer_bytes * (max(sizes) + retained + min(prefetch, max(sizes))) + HALF * (head + embedding)
