"""Peak GPU memory of one training process, from the model shape and how it is trained.

``MemoryInputs`` describes a run in framework-neutral terms (bytes per parameter, what is
sharded, sequences per micro-batch, what the loss materialises); llamafactory.py fills it from a
LLaMA-Factory config, and the accuracy benchmark fills it from published runs of other
frameworks. ``estimate`` adds up, per GPU:

    weights + gradients + optimizer states                       (persistent, after ZeRO/FSDP sharding)
  + max(saved activations + max(one layer rebuilt, logits/loss) + backward-only buffers, optimizer-step temporaries)
  + buffers (DDP and ZeRO-3 buckets, 4-bit dequantisation; ZeRO-3's and FSDP's gathered parameters are backward's)
  = allocated; + allocator slack + CUDA context (+ NCCL) = what the device must hold.

Two moments outside the training steps can be higher, and are then the peak: an evaluation (weights, optimizer
states and buffers, no gradients, plus the eval batch's forward: evaluation.py) and loading the model under
DeepSpeed ZeRO-0/1/2 or FSDP, when every GPU holds the whole model cast to fp32 (loading.py).

The activation constants were measured on the Hugging Face Llama decoder layer (transformers 4.49-5.6,
bf16, SDPA) by summing the tensors autograd saves per token and layer (tests/groundtruth/memory_probe.py):
16h (two RMSNorms: fp32 input, normalised copy, weighted output) + attention (q, k, v, output: 4ad + 4kvd
with SDPA's grouped-query path, 10ad when k/v are repeated) + 4a (logsumexp) + 8i (gated MLP) per token, 2h
per checkpointed layer, 6as more with eager attention. The loss holds about 12 bytes per logit element
(bf16 logits, their fp32 copy, log-softmax and its gradient), 20 with DPO's reference pass.
"""

from __future__ import annotations

from typing import NamedTuple

from .model import Shape
from .vision import VisionTraining, patch_bytes

GIB = 1024**3
CUDA_CONTEXT = 0.4 * GIB  # torch's CUDA context with lazy module loading (PyTorch PR #86509), not in torch's counters
NCCL_BUFFERS = 0.5 * GIB  # communicators of a multi-process run
ALLOCATOR_SLACK = 0.07  # reserved exceeds allocated by a few percent of the changing part (PEFT #1469 measurements)


class MemoryInputs(NamedTuple):
    shape: Shape
    total_params: int
    trainable_params: int
    # bytes per parameter as held on the GPU, before sharding
    frozen_bytes: float  # frozen weights not quantized (2 for bf16/fp16)
    quantized_params: int  # frozen params stored in 4/8 bits
    quantized_bytes: float  # bytes per quantized param (0.516 NF4 + double quant)
    trainable_bytes: float  # 4 (fp32 upcast) or 2
    autocast_copy: float  # bf16 copy of fp32 trainable matmul weights kept by autocast's cache (2, or 0)
    grad_bytes: float
    optimizer_bytes: float  # states (+ fp32 master under DeepSpeed) per trainable param
    optimizer_step_temp: float  # per trainable param, alive during optimizer.step (foreach AdamW)
    offloadable_optimizer: bool = False  # paged optimizer states may move to host memory
    world_size: int = 1
    zero_stage: int = 0  # DeepSpeed ZeRO stage (0 = plain data parallel)
    fsdp: bool = False  # FSDP full shard (like ZeRO-3)
    offload_optimizer: bool = False
    offload_params: bool = False
    reference_params: int = 0  # a second (frozen) model: DPO/KTO reference for full/freeze tuning, PPO reward
    reference_bytes: float = 2.0
    # one micro-batch
    sequences: int = 1  # sequences per micro-batch forward (pairwise stages: 2 x batch)
    seq_len: int = 2048
    checkpointing: bool = True
    checkpointed_layers: int | None = None  # None: every layer (freeze tuning checkpoints trainable layers only)
    full_layers: int = 0  # layers recorded without checkpointing (frozen layers after a trainable one)
    residual_bytes: int = 2  # bytes per element of the hidden states between layers (4 when they are fp32)
    attention: str = "sdpa"  # "sdpa" | "fa2" | "eager"
    grouped_kv: bool = False  # k/v kept per KV head (SDPA GQA path without a mask, FlashAttention) instead of repeated
    padding_mask: bool = True  # padded batches: SDPA builds one b x s x s mask
    mask_bytes: int = 1  # 1 (bool, transformers 4.57+) or 2 (bf16 before)
    logits_bytes: float = 12.0  # per logit element at the loss peak (0 with a fused linear cross-entropy)
    logits_sequences: int | None = None  # sequences whose logits are alive at the peak (default: sequences)
    lora_activation_share: float = 0.0  # extra saved activations of LoRA branches, as a share of a layer's
    offload_checkpoints: bool = False  # use_unsloth_gc: layer inputs go to host memory
    ddp_gradient_buckets: bool = False  # plain DDP keeps a second copy of the gradients in its buckets
    bucket_bytes: float = 0.0  # DeepSpeed reduce buckets kept for the whole run (ZeRO-3)
    backward_bytes: float = 0.0  # alive only while backward runs (ZeRO buckets, fresh partitions, gathered parameters)
    step_bytes: float = 0.0  # alive only in the optimizer step, beyond optimizer_step_temp (DeepSpeed, deepspeed.py)
    # FSDP (fsdp.py): the layer(s) gathered beside a layer's recomputation; the gradients, freed when the forward
    # begins, rebuilt in backward; two later moments of backward, beyond what is kept
    unit_bytes: float = 0.0
    gradients_rebuilt: bool = False
    late_backward_bytes: float | None = None  # with one layer recomputed
    end_backward_bytes: float = 0.0
    dequant_bytes: float = 0.0  # bitsandbytes dequantises one weight at a time
    vision: VisionTraining | None = None  # a vision-language model's encoder, when something in it trains
    generation_bytes: float = 0.0  # PPO: KV cache of the rollout
    load_bytes: float = 0.0  # allocated at the peak of loading, when it can exceed training's (loading.py)
    eval_logits: float = 0.0  # an evaluation's forward beyond what is kept (evaluation.py); 0: no evaluation
    eval_activations: float = 0.0
    method: str = "lora"  # full | freeze | lora | oft, or inference (no do_train) (for the report)
    optimizer_name: str = "adamw"
    sharding: str = ""  # how the processes share the model, in words (llamafactory.py)
    notes: tuple[str, ...] = ()
    # a Megatron launch (USE_MCA, USE_MEGATRON_BRIDGE): megatron.MegatronSetup, estimated stage by stage there
    megatron: object = None


class MemoryEstimate(NamedTuple):
    """Per-GPU peak, in bytes, with its parts. ``peak`` is what the device must hold (``device``)."""

    weights: float
    gradients: float
    optimizer: float
    activations: float
    logits: float
    overhead: float  # buffers, temporaries (the optimizer step's, when that is the peak), CUDA context, allocator slack
    allocated: float  # what torch.cuda.max_memory_allocated would report
    reserved: float  # what torch.cuda.max_memory_reserved would report on a card with room to spare
    device: float  # the least the GPU must hold: allocated + allocator slack + CUDA context (and NCCL)
    phase: str  # "forward/backward", "end of backward", "optimizer step", "evaluation" or "model loading"
    notes: tuple[str, ...]
    context: float = 0.0  # CUDA context and NCCL communicators, outside torch's counters
    training: float = 0.0  # when loading or an evaluation is the peak: what the training steps need (as ``device``)

    @property
    def peak(self) -> float:
        return self.device

    def gib(self, name: str = "device") -> float:
        return getattr(self, name) / GIB

    def breakdown(self) -> dict:
        return {
            name: round(getattr(self, name) / GIB, 2)
            for name in ("weights", "gradients", "optimizer", "activations", "logits", "overhead")
        }


def layer_activation_bytes(shape: Shape, attention: str, grouped_kv: bool, seq_len: int) -> float:
    """Bytes autograd keeps per token for one decoder layer run without checkpointing."""
    h, a, kv, d = shape.hidden, shape.heads, shape.kv_heads, shape.head_dim
    attn = 4 * a * d + 4 * kv * d if grouped_kv else 10 * a * d
    if shape.moe is not None:
        mlp = shape.moe.top_k * 8 * shape.moe.expert_intermediate + 4 * shape.moe.experts + 4 * h * shape.moe.top_k
        if shape.moe.shared_intermediate:
            mlp += 8 * shape.moe.shared_intermediate
    else:
        mlp = (8 if shape.gated else 4) * shape.intermediate
    per_token = 16 * h + attn + 4 * a + mlp + 16
    if attention == "eager":
        per_token += 6 * a * seq_len  # attention probabilities (fp32 softmax + bf16 copy)
    if shape.norms_per_layer > 2:
        per_token += 8 * h * (shape.norms_per_layer - 2)
    return per_token


def saved_activations(x: MemoryInputs) -> float:
    """What autograd keeps from the forward pass for backward, logits and loss excluded.

    Measured on CPU with LLaMA-Factory's own model set-up (tests/groundtruth/memory_probe.py): a checkpointed
    layer keeps its input (2h bytes per token, 4h when the residual stream is fp32, as in full tuning under AMP,
    where the upcast embedding makes it so); outside the layers about 4h (20h with an fp32 residual stream).
    """
    shape = x.shape
    tokens = x.sequences * x.seq_len
    per_layer = layer_activation_bytes(shape, x.attention, x.grouped_kv, x.seq_len) * (1 + x.lora_activation_share)
    outside = (20 if x.residual_bytes == 4 else 4) * shape.hidden * tokens
    if x.vision is not None:  # a trained vision encoder's share
        outside += patch_bytes(shape.vision, x.vision, x.checkpointing)[0] * x.vision.patches
    if not x.checkpointing:
        return per_layer * tokens * shape.layers + outside
    kept = shape.layers if x.checkpointed_layers is None else x.checkpointed_layers
    saved = 0 if x.offload_checkpoints else x.residual_bytes * shape.hidden * tokens * kept
    return saved + per_layer * tokens * x.full_layers + outside  # layers autograd still records in full


def estimate(inputs: MemoryInputs) -> MemoryEstimate:
    if inputs.megatron is not None:  # a pipeline stage holds its own layers and micro-batches: megatron.py
        from .megatron import megatron_estimate

        return megatron_estimate(inputs)
    x, shape = inputs, inputs.shape
    world = max(1, x.world_size)
    shard3 = world if (x.zero_stage == 3 or x.fsdp) else 1
    frozen = x.total_params - x.trainable_params - x.quantized_params
    weights = (frozen * x.frozen_bytes + x.quantized_params * x.quantized_bytes) / shard3
    trainable_weights = x.trainable_params * (x.trainable_bytes + x.autocast_copy)
    if x.offload_params:
        trainable_weights, weights = 0.0, 0.0
    weights += trainable_weights / shard3
    weights += x.reference_params * x.reference_bytes / shard3

    grad_shard = world if x.zero_stage >= 2 or x.fsdp else 1
    gradients = x.trainable_params * x.grad_bytes / grad_shard
    optimizer_shard = world if x.zero_stage >= 1 or x.fsdp else 1
    optimizer = 0.0 if x.offload_optimizer else x.trainable_params * x.optimizer_bytes / optimizer_shard
    notes = list(x.notes)
    if x.offloadable_optimizer and optimizer:
        notes.append(
            f"paged optimizer states ({optimizer / GIB:.1f} GiB) can move to host memory when the GPU fills up"
        )

    tokens = x.sequences * x.seq_len
    per_layer = layer_activation_bytes(shape, x.attention, x.grouped_kv, x.seq_len) * (1 + x.lora_activation_share)
    mask = x.sequences * x.seq_len * x.seq_len * x.mask_bytes if (x.padding_mask and x.attention == "sdpa") else 0
    activations = saved_activations(x) + mask
    rebuilt = 2 * per_layer * tokens if x.checkpointing else 0.0  # one layer recomputed in backward, and its gradients
    logit_rows = (x.logits_sequences if x.logits_sequences is not None else x.sequences) * x.seq_len
    logits = logit_rows * shape.vocab * x.logits_bytes
    # the tower's blocks are rebuilt after the language model's backward, while the tower's own inputs are kept
    vision_rebuilt = patch_bytes(shape.vision, x.vision, x.checkpointing)[1] * x.vision.patches if x.vision else 0.0
    transient = max(rebuilt + x.unit_bytes, logits, vision_rebuilt)

    step_temp = x.trainable_params * x.optimizer_step_temp / optimizer_shard + x.step_bytes
    buffers = x.bucket_bytes + x.dequant_bytes + x.generation_bytes
    if x.ddp_gradient_buckets and world > 1:
        buffers += gradients
    absent = gradients if x.gradients_rebuilt else 0.0  # not yet rebuilt when backward begins
    phases = {
        "forward/backward": activations + transient + x.backward_bytes - absent,
        "end of backward": max(
            x.end_backward_bytes, -1.0 if x.late_backward_bytes is None else x.late_backward_bytes + rebuilt
        ),
        "optimizer step": step_temp,
    }
    phase = max(phases, key=phases.get)  # the first of equals: forward/backward
    forward_backward = max(phases["forward/backward"], phases["end of backward"])
    dynamic = max(forward_backward, step_temp) + buffers
    allocated = weights + gradients + optimizer + dynamic
    held = allocated + ALLOCATOR_SLACK * dynamic
    reserved = held
    if x.step_bytes:
        # DeepSpeed's step buffers are single blocks of a partition's size that the segments cached for the
        # activations cannot serve: with room to spare torch keeps both phases' memory reserved. On a full card it
        # frees its cache and goes on (DeepSpeed then logs "pytorch allocator cache flushes"), so the least the
        # device must hold is the larger phase.
        reserved += min(forward_backward, step_temp)
    context = CUDA_CONTEXT + (NCCL_BUFFERS if world > 1 else 0)
    device = held + context
    evaluation = None
    if x.eval_logits or x.eval_activations:  # between steps: no gradients (but ZeRO-3's partition), no activations
        kept_in_eval = weights + optimizer + buffers + (gradients if x.zero_stage == 3 else 0.0)
        eval_dynamic = x.eval_logits + x.eval_activations
        evaluation = kept_in_eval + eval_dynamic * (1 + ALLOCATOR_SLACK)
        if evaluation <= held:
            notes.append(f"an evaluation peaks at {(evaluation + context) / GIB:.1f} GiB")
    if x.load_bytes > max(held, evaluation or 0.0):  # the whole model on the GPU before DeepSpeed or FSDP shrinks it
        notes.append(f"training itself then peaks at {device / GIB:.1f} GiB ({phase})")
        if evaluation is not None and evaluation > held:
            notes.append(f"an evaluation peaks at {(evaluation + context) / GIB:.1f} GiB")
        return MemoryEstimate(
            weights=x.load_bytes,
            gradients=0.0,
            optimizer=0.0,
            activations=0.0,
            logits=0.0,
            overhead=context,
            allocated=x.load_bytes,
            reserved=max(reserved, x.load_bytes),
            device=x.load_bytes + context,
            phase="model loading",
            notes=tuple(notes),
            context=context,
            training=device,
        )
    if evaluation is not None and evaluation > held:
        if x.method != "inference":
            notes.append(f"the training steps peak at {device / GIB:.1f} GiB ({phase})")
        eval_gradients = gradients if x.zero_stage == 3 else 0.0
        shown = weights + eval_gradients + optimizer + x.eval_activations + x.eval_logits
        return MemoryEstimate(
            weights=weights,
            gradients=eval_gradients,
            optimizer=optimizer,
            activations=x.eval_activations,
            logits=x.eval_logits,
            overhead=evaluation + context - shown,
            allocated=kept_in_eval + eval_dynamic,
            reserved=max(reserved, evaluation),
            device=evaluation + context,
            phase="evaluation",
            notes=tuple(notes),
            context=context,
            training=device if x.method != "inference" else 0.0,
        )
    # the parts of the peak: after the activations' peak at the start of backward they and the logits are gone
    early = phase == "forward/backward"
    shown_activations = activations + (rebuilt if rebuilt > logits else 0.0) if early else 0.0
    shown_logits = logits if early and logits >= rebuilt else 0.0
    shown_gradients = gradients - (absent if early else 0.0)
    return MemoryEstimate(
        weights=weights,
        gradients=shown_gradients,
        optimizer=optimizer,
        activations=shown_activations,
        logits=shown_logits,
        overhead=device - (weights + shown_gradients + optimizer + shown_activations + shown_logits),
        allocated=allocated,
        reserved=reserved,
        device=device,
        phase=phase,
        notes=tuple(notes),
        context=context,
    )
