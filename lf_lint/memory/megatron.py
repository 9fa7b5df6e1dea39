"""Megatron-Core's share of one GPU under ``USE_MCA=1`` and ``USE_MEGATRON_BRIDGE=1``, pipeline stage by stage.

Read in megatron-core 0.16.1 (both engines run it), with the formulas of Megatron-LM's
``megatron/training/theoretical_memory_usage.py`` and Korthikanti et al. 2022 ("Reducing Activation Recomputation
in Large Transformer Models", arXiv 2205.05198, sections 4-5) as the frame. Nothing here was measured on a GPU by
lf-lint: benchmarks/megatron_accuracy.py compares it with Megatron-LM's own measured test runs. Per GPU (one
tensor x pipeline x context x expert rank), with t = TP, p = PP, and a pipeline stage's own layers:

* Weights (``param_bytes``: 2 under bf16/fp16, 4 in fp32): column- and row-parallel linears split by t (q/k/v,
  output projection, MLP; key/value heads replicated when t exceeds them), norms and routers whole, each
  expert's linears on one of EP ranks and split by ETP, the embedding on the first stage and the output head on
  the last, vocabulary-parallel (split by t); a tied head is a second, trained copy on the last stage when p > 1.
  Layers per stage: ``transformer_block.get_num_layers_to_build`` (the embedding and the loss count as layers with
  ``account_for_*_in_pipeline_split``). Under the distributed optimizer the weights live in DDP's parameter buffer
  (``param_and_grad_buffer.py``: views, no copy).
* Gradients: DDP's buffer holds one element per trainable parameter of the rank, fp32 with
  ``grad_reduce_in_fp32`` (mcore_adapter sets ``accumulate_allreduce_grads_in_fp32`` under bf16, LLaMA-Factory's
  megatron-bridge config always), else 16-bit; whole, also under the distributed optimizer (it reduce-scatters in
  place). ``ddp_bucket_size`` only splits that buffer for communication: no memory of its own.
* Optimizer: fp32 master weights (4 bytes, none in fp32 training) and Adam's two moments (8; SGD 4) per trainable
  parameter, divided by the data-parallel x context-parallel size for dense parameters and by the
  expert-data-parallel size for expert parameters under the distributed optimizer
  (``distrib_optimizer.py::_build_model_and_main_param_groups``), whole without it
  (``Float16OptimizerWithFloat16Params``). With 16-bit gradients the step makes fp32 copies of them
  (``_copy_model_grads_to_main_grads``: ``.float()``), with fp32 ones it reuses the buffer. Adam is fused (no
  temporaries). Theoretical memory: 18 bytes per parameter, 6 + 12/DP with the distributed optimizer.
* Activations of one micro-batch, per token and layer (bf16, flash/fused attention of Transformer Engine, no
  dropout as in Hugging Face checkpoints): the two norms' inputs and outputs 8h (divided by t under
  ``sequence_parallel``, else whole: the paper's "10 + 24/t"), q, k, v and the attention output 4(a + kv)d/t
  plus the fp32 softmax statistics 4a/t, the MLP's fc1 output and fc2 input 6i/t (fused SwiGLU; 8i/t unfused,
  4i/t ungated). An MoE layer keeps, for each of the k copies of a token its rank computes, the expert input 2h,
  the fc1 output and fc2 input 6i/ETP (10i/ETP without ``bias_activation_fusion``: ``experts.py::bias_act_func``)
  and the routing probability, plus the router's fp32 scores (``moe_router_dtype``). Context parallelism divides
  the tokens by CP. Recompute: ``selective`` drops what its modules keep (core attention: the softmax statistics;
  ``moe``: the MoE layer but its input); ``full`` keeps each recomputed group's input (2h, /t under sequence
  parallelism) and rebuilds one group at a time in backward (``recompute_method`` uniform: groups of
  ``recompute_num_layers``; block: that many layers per stage recomputed, the rest kept in full).
* Micro-batches in flight (``schedules.py::get_pp_rank_microbatches``): stage r of a 1F1B pipeline keeps
  min(p - r, M) micro-batches' activations, so the first keeps p; an interleaved pipeline (VPP v) keeps
  2(p - r - 1) + (v - 1)p + 1 chunks of 1/v of its layers (the penalty 1 + (p - 1)/(pv) of the theoretical
  memory).
* The loss on the last stage, one micro-batch at a time: logits split by t over the vocabulary, 6 bytes per
  element at the peak (``tensor_parallel/cross_entropy.py``: the bf16 logits beside their fp32 copy, worked on in
  place, in forward; the fp32 softmax beside the bf16 gradient in backward). ``cross_entropy_loss_fusion``
  (``fusions/fused_cross_entropy.py``) runs the same steps in functions ``jit_fuser`` compiles
  (``torch.compile``), which return new buffers where the plain code works in place: the fp32 copy and its
  exponent coexist, 10 bytes per element (Megatron-LM's test with the fusion measures one fp32 copy of the
  logits, 0.38 GiB, above its unfused twin: benchmarks/megatron_accuracy.py). mcore_adapter's own fused kernel
  at t = 1 keeps the logits and their gradient, 4 (``parallel_functions/fused_cross_entropy.py``).
* Backward transients: the gradients of one layer's activations (and, with full recompute, the recomputed group),
  one weight's 16-bit gradient before DDP adds it to the fp32 buffer (no ``gradient_accumulation_fusion``:
  mcore_adapter's default, and megatron-bridge's without APEX), the allgather dispatcher's gathered tokens.

Where a rank's peak is: the largest stage, with its own parameters, micro-batches in flight and (last stage) logits.
"""

from __future__ import annotations

from typing import NamedTuple

from ..records import Record
from .estimate import ALLOCATOR_SLACK, CUDA_CONTEXT, GIB, NCCL_BUFFERS, MemoryEstimate
from .model import Shape

VOCAB_PARALLEL_CROSS_ENTROPY = 6.0  # bytes per logit element at the loss's peak (module docstring)
FUSED_CROSS_ENTROPY = 10.0
MCA_FUSED_CROSS_ENTROPY = 4.0


class MegatronSetup(Record):
    """What Megatron-Core builds and keeps on each GPU, read once from the config (megatron_config.py)."""

    engine: str  # "mca" | "megatron_bridge" | "megatron-lm" (the benchmark's runs)
    tensor: int
    pipeline: int
    context: int
    expert: int
    expert_tensor: int
    virtual: int | None
    sequence_parallel: bool
    dense_shard: int  # the distributed optimizer's group for dense parameters: data x context parallel
    expert_shard: int  # ... and for expert parameters: the expert-data-parallel size
    stage_layers: tuple[tuple[int, ...], ...]  # decoder layers of each model chunk of each pipeline rank
    microbatches: int  # per optimizer step and data-parallel rank
    distributed_optimizer: bool = False
    param_bytes: float = 2.0
    grad_bytes: float = 4.0
    master_bytes: float = 4.0  # fp32 master weights (none when the model trains in fp32)
    state_bytes: float = 8.0  # Adam's moments (SGD: 4)
    offload_fraction: float = 0.0  # share of the optimizer in host memory (mcore_adapter optimizer_cpu_offload)
    lora_rank: int = 0  # megatron-bridge LoRA: only the adapters train
    frozen: tuple[str, ...] = ()  # parts that do not train: "language", "vision", "projector"
    recompute: str | None = None  # None | "selective" | "full"
    recompute_method: str = "uniform"
    recompute_layers: int = 1
    recompute_modules: tuple[str, ...] = ("core_attn",)
    logits_bytes: float = VOCAB_PARALLEL_CROSS_ENTROPY
    fused_activation: bool = False
    dispatcher: str = "allgather"
    capacity_factor: float | None = None
    pad_to_capacity: bool = False
    router_bytes: int = 4
    reference: bool = False  # DPO's reference model: the same layout, 16-bit weights
    dropout: bool = False  # hidden dropout keeps a mask per element (Megatron-LM's own GPT defaults)
    flash: bool = True  # False: Megatron's local attention keeps the s x s scores (Korthikanti's 5as)
    position_params: int = 0  # learned position embeddings on the first stage (Megatron-LM's GPT)

    @property
    def sp(self) -> int:
        return self.tensor if self.sequence_parallel else 1


class StageMemory(NamedTuple):
    """Bytes on one GPU of pipeline stage ``stage``."""

    stage: int
    weights: float
    gradients: float
    optimizer: float
    activations: float  # saved for backward, every micro-batch in flight
    transient: float  # backward's: a layer's gradients and recomputation, a weight's 16-bit gradient, dispatch
    logits: float
    step: float  # the optimizer step's temporaries
    in_flight: float  # micro-batches whose activations are kept (a layer-weighted mean over interleaved chunks)
    layers: int


# --- parameters ---------------------------------------------------------------------------------------------------


def _kv_local(shape: Shape, t: int) -> float:
    """Key/value heads on a rank: split by t, or one replicated per rank when t exceeds them."""
    return shape.kv_heads / t if shape.kv_heads >= t else 1.0


def _moe_layer(shape: Shape, index: int) -> bool:
    return shape.moe is not None and index not in shape.moe.dense_layers


def layer_parameters(shape: Shape, index: int, s: MegatronSetup) -> tuple[float, float, float]:
    """(dense, expert, largest) parameters of decoder layer ``index`` on one rank: the attention's linears split by
    TP (key/value heads replicated beyond them), norms and routers whole, experts split by EP and ETP."""
    h, t, d = shape.hidden, s.tensor, shape.head_dim
    q = shape.heads * d * (2 if shape.attn_output_gate else 1)
    kv = _kv_local(shape, t) * d
    attention = h * q / t + 2 * h * kv + shape.heads * d * h / t
    if shape.qkv_bias:
        attention += q / t + 2 * kv
    largest = max(h * (q / t + 2 * kv), shape.heads * d * h / t)
    for mixer in shape.mixers:
        if index in mixer.layers:
            attention = (mixer.params - mixer.other) / t + mixer.other
            largest = max(m.d_in * m.d_out for m in mixer.linears) / t
    attention += 2 * d if shape.qk_norm else 0
    norms = shape.norms_per_layer * h * (2 if shape.norm_bias else 1)
    if not _moe_layer(shape, index):
        width = (3 if shape.gated else 2) * h * shape.intermediate / t
        return attention + norms + width, 0.0, max(largest, (2 if shape.gated else 1) * h * shape.intermediate / t)
    moe = shape.moe
    local = moe.experts / s.expert
    expert = local * (3 if shape.gated else 2) * h * moe.expert_intermediate / s.expert_tensor
    dense = attention + norms + h * moe.experts + moe.router_extra
    if moe.shared_intermediate:
        dense += 3 * h * moe.shared_intermediate / t + (h if moe.shared_gate else 0)
    return dense, expert, max(largest, 2 * h * moe.expert_intermediate / s.expert_tensor)


def lora_parameters(shape: Shape, index: int, s: MegatronSetup) -> tuple[float, float]:
    """(dense, expert) LoRA adapter parameters of one layer on one rank: megatron-bridge's default targets
    linear_qkv, linear_proj, linear_fc1, linear_fc2 (LLaMA-Factory ``_create_peft_config``), each a
    ``ParallelLinearAdapter`` of r x (in + out) / t (``peft/utils.py``: the column-parallel linear_in or the
    row-parallel one, and a column-parallel linear_out); a grouped expert linear has one adapter, split by ETP."""
    r, h, t, d = s.lora_rank, shape.hidden, s.tensor, shape.head_dim
    qkv = h + (shape.heads * (2 if shape.attn_output_gate else 1) + 2 * shape.kv_heads) * d
    dense = r * (qkv + shape.heads * d + h) / t  # linear_qkv, linear_proj
    if not _moe_layer(shape, index):
        i = shape.intermediate
        return dense + r * (h + (2 if shape.gated else 1) * i + i + h) / t, 0.0
    ie = shape.moe.expert_intermediate
    expert = r * (h + 2 * ie + ie + h) / s.expert_tensor
    if shape.moe.shared_intermediate:
        dense += r * (h + 3 * shape.moe.shared_intermediate + h) / t
    return dense, expert


def stage_layers(layers: int, pipeline: int, virtual: int | None = None, embedding: bool = False,
                 loss: bool = False, first: int | None = None, last: int | None = None) -> tuple[tuple[int, ...], ...]:  # fmt: skip
    """Decoder layers of each model chunk of each pipeline rank (one chunk without a virtual pipeline), as
    megatron-core 0.16.1 ``transformer_block.get_num_layers_to_build`` builds them: an even split over PP x VPP
    virtual stages, the embedding and the loss counting as a layer of the first and last virtual stage when
    accounted for (``account_for_*_in_pipeline_split``), or ``num_layers_in_first/last_pipeline_stage`` with the
    rest split evenly over the middle ranks. A remainder the split leaves (LF266 reports it) goes to the first."""
    v = virtual if virtual and pipeline > 1 else 1
    if pipeline > 1 and (first is not None or last is not None):
        middle = layers - (first or 0) - (last or 0)
        inner = pipeline - (first is not None) - (last is not None)
        ranks = [middle // inner + (k < middle % inner) for k in range(inner)] if inner else []
        ranks = ([first] if first is not None else []) + ranks + ([last] if last is not None else [])
        return tuple(tuple(n // v + (j < n % v) for j in range(v)) for n in ranks)
    total = layers + (embedding + loss if pipeline > 1 else 0)
    each = [[total // (pipeline * v)] * v for _ in range(pipeline)]
    if pipeline > 1:
        each[0][0] -= embedding
        each[-1][-1] -= loss
    for k in range(max(0, layers - sum(map(sum, each)))):
        each[k % pipeline][0] += 1
    return tuple(tuple(max(0, n) for n in chunks) for chunks in each)


def chunk_ranges(s: MegatronSetup) -> list[list[range]]:
    """The decoder layers of each model chunk of each rank: virtual stage j x PP + rank holds the next layers."""
    p = s.pipeline
    v = len(s.stage_layers[0])
    out: list[list[range]] = [[range(0)] * v for _ in range(p)]
    start = 0
    for k in range(p * v):
        j, rank = divmod(k, p)
        count = s.stage_layers[rank][j]
        out[rank][j] = range(start, start + count)
        start += count
    return out


def _stage_parameters(shape: Shape, s: MegatronSetup, stage: int, layers: list[int]) -> tuple[float, ...]:
    """(trainable dense, trainable expert, frozen, largest trainable) parameters of one rank of ``stage``."""
    first, last = stage == 0, stage == s.pipeline - 1
    table = shape.vocab * shape.hidden / s.tensor
    dense = expert = largest = 0.0
    frozen = 0.0
    language_frozen = "language" in s.frozen or s.lora_rank > 0
    for i in layers:
        d, e, big = layer_parameters(shape, i, s)
        if language_frozen:
            frozen += d + e
            if s.lora_rank:
                ld, le = lora_parameters(shape, i, s)
                dense, expert = dense + ld, expert + le
        else:
            dense, expert, largest = dense + d, expert + e, max(largest, big)
    outside = 0.0
    if first:
        outside += table + s.position_params
        if shape.vision is not None:
            vision = shape.vision
            parts = ((vision.tower, "vision"), (vision.merger, "projector"))
            for size, name in parts:
                if name in s.frozen:
                    frozen += size / s.tensor
                else:
                    dense += size / s.tensor
    if last:
        outside += shape.hidden * (2 if shape.norm_bias else 1)
        if not shape.tied or s.pipeline > 1:  # a tied head on its own stage is a trained copy of the embedding
            outside += table
    if language_frozen:
        frozen += outside
    else:
        dense += outside
        largest = max(largest, table if (first or last) else 0.0)
    return dense, expert, frozen, largest


def stage_states(shape: Shape, s: MegatronSetup, stage: int, layers: list[int]) -> tuple[float, ...]:
    """(weights, gradients, optimizer, step temporaries, largest trainable) bytes of one rank of ``stage``."""
    dense, expert, frozen, largest = _stage_parameters(shape, s, stage, layers)
    trainable = dense + expert
    weights = (trainable + frozen) * s.param_bytes
    if s.reference:
        weights += (trainable + frozen) * 2.0
    gradients = trainable * s.grad_bytes
    per_param = (s.master_bytes + s.state_bytes) * (1 - s.offload_fraction)
    dense_shard = s.dense_shard if s.distributed_optimizer else 1
    expert_shard = s.expert_shard if s.distributed_optimizer else 1
    optimizer = per_param * (dense / dense_shard + expert / expert_shard)
    step = 0.0
    if s.grad_bytes < 4 and s.master_bytes:  # 16-bit gradients are copied to fp32 for the step
        step = 4.0 * (dense / dense_shard + expert / expert_shard)
    return weights, gradients, optimizer, step, largest


# --- activations --------------------------------------------------------------------------------------------------


def layer_activations(shape: Shape, index: int, s: MegatronSetup, seq_len: int) -> tuple[float, float]:
    """(kept, full) bytes per token of a micro-batch (this context-parallel rank's tokens) for one decoder layer:
    ``full`` without recomputation, ``kept`` with the configured recompute (full recompute is applied per group by
    ``stage_activations``)."""
    h, t, sp, d = shape.hidden, s.tensor, s.sp, shape.head_dim
    a, kv = shape.heads / t, _kv_local(shape, t)
    norms = 8 * h / sp + (2 * h / sp if s.dropout else 0.0)
    core = 4 * a if s.flash else a * seq_len * (5 if s.dropout else 2)  # softmax statistics, or the s x s scores
    attention = (4 * a + 4 * kv) * d + (2 * (a + kv) * d if shape.qk_norm else 0.0)
    modules = set(s.recompute_modules) if s.recompute == "selective" else set()
    full_attention = attention + core
    kept_attention = attention if "core_attn" in modules else full_attention
    if not _moe_layer(shape, index):
        i = shape.intermediate / t
        mlp = (6 if s.fused_activation else 8) * i if shape.gated else 4 * i
        full = norms + full_attention + mlp
        if "mlp" in modules:  # the checkpointed MLP (with its fused norm) keeps only its input
            return norms - 2 * h / sp + kept_attention, full
        return norms + kept_attention + mlp, full
    moe = shape.moe
    copies = moe.top_k * s.expert_tensor / sp  # rows a rank computes per token (SP shard, all-gathered over ETP)
    if s.capacity_factor is not None and s.pad_to_capacity:
        copies *= s.capacity_factor
    ie = moe.expert_intermediate / s.expert_tensor
    act = ((6 if s.fused_activation else 10) if shape.gated else 6) * ie  # an ungated activation is never fused
    kept_act = (4 if shape.gated else 2) * ie if "moe_act" in modules else act
    router = (3 * s.router_bytes + 1) * moe.experts / sp
    shared = 0.0
    if moe.shared_intermediate:
        shared = (6 if s.fused_activation else 8) * moe.shared_intermediate / t
    experts = copies * (2 * h + act + 4) + router + shared
    kept_experts = copies * (2 * h + kept_act + 4) + router + (0.0 if "shared_experts" in modules else shared)
    if "moe" in modules:
        kept_experts = 0.0  # the checkpointed MoE layer keeps its input: the pre-MLP norm's output, in ``norms``
    return norms + kept_attention + kept_experts, norms + full_attention + experts


def in_flight(s: MegatronSetup, stage: int) -> list[int]:
    """Micro-batches whose activations a rank of ``stage`` keeps at once, per model chunk
    (``schedules.py::get_pp_rank_microbatches``): 1F1B keeps its warm-up plus one, min(p - rank, M); an
    interleaved pipeline runs 2(p - rank - 1) + (v - 1)p + 1 chunk forwards before its first backward, p
    micro-batches to a chunk in turn (``microbatch_group_size_per_vp_stage``)."""
    p, m, v = s.pipeline, s.microbatches, len(s.stage_layers[0])
    if p == 1:
        return [1] * v
    if v == 1:
        return [min(p - stage, m)]
    forwards = min(2 * (p - stage - 1) + (v - 1) * p + 1, m * v)
    return [min(m, max(0, forwards - j * p) if j == v - 1 else min(p, max(0, forwards - j * p))) for j in range(v)]


def _chunk_kept(shape: Shape, s: MegatronSetup, layers: range, seq_len: int) -> tuple[float, float, int]:
    """(kept bytes per token, the widest layer's full bytes per token, layers recomputed at once) of one model
    chunk: full recompute keeps a group's input (uniform: groups of n layers; block: the first n layers one by
    one, the rest in full)."""
    h, sp = shape.hidden, s.sp
    kept, full = zip(*(layer_activations(shape, i, s, seq_len) for i in layers)) if len(layers) else ((), ())
    widest = max(full, default=0.0)
    if s.recompute != "full":
        return sum(kept), widest, 0
    n = max(1, s.recompute_layers)
    if s.recompute_method == "block":
        return sum(2 * h / sp if k < n else f for k, f in enumerate(full)), widest, 1
    return 2 * h / sp * -(-len(layers) // n), widest, min(n, len(layers))


def stage_activations(shape: Shape, s: MegatronSetup, stage: int, chunks: list[range], sequences: int,
                      seq_len: int) -> tuple[float, float, float, float]:  # fmt: skip
    """(saved activations, backward transient, logits, micro-batches in flight) of a rank of ``stage``: each
    model chunk's kept bytes times its micro-batches in flight; the transient is one layer's activation
    gradients (with full recompute, also the group being rebuilt)."""
    tokens = sequences * seq_len / s.context
    h, sp = shape.hidden, s.sp
    flights = in_flight(s, stage)
    saved, transient, layers = 0.0, 0.0, 0
    for chunk, flight in zip(chunks, flights):
        kept, widest, group = _chunk_kept(shape, s, chunk, seq_len)
        saved += flight * kept * tokens
        transient = max(transient, (group + 1) * widest * tokens)
        layers += len(chunk)
    if stage == 0 and s.dropout:
        saved += flights[0] * h / sp * tokens  # the embedding's dropout mask
    logits = 0.0
    if stage == s.pipeline - 1:
        saved += 4 * h / sp * tokens  # the final norm's input and output (the head's input), one micro-batch
        logits = tokens * shape.vocab / s.tensor * s.logits_bytes
    moe = any(_moe_layer(shape, i) for chunk in chunks for i in chunk)
    if s.dispatcher == "allgather" and moe and (s.expert > 1 or s.tensor > 1):
        transient += 2 * h * tokens * s.expert * s.tensor / sp  # the tokens every rank of TP x EP gathered
    total = sum(len(c) for c in chunks)
    flight = sum(f * len(c) for c, f in zip(chunks, flights)) / total if total else float(flights[0])
    return saved, transient, logits, flight


def stage_memory(shape: Shape, s: MegatronSetup, sequences: int, seq_len: int) -> list[StageMemory]:
    out = []
    for stage, chunks in enumerate(chunk_ranges(s)):
        layers = [i for chunk in chunks for i in chunk]
        weights, gradients, optimizer, step, largest = stage_states(shape, s, stage, layers)
        saved, transient, logits, flight = stage_activations(shape, s, stage, chunks, sequences, seq_len)
        transient += 2.0 * largest  # a weight's 16-bit gradient before DDP adds it to the buffer
        out.append(StageMemory(stage, weights, gradients, optimizer, saved, transient, logits, step, flight,
                               len(layers)))  # fmt: skip
    return out


def stage_estimate(m: StageMemory, world: int, notes: tuple = ()) -> MemoryEstimate:
    """One stage's ``MemoryEstimate``: the states, plus the larger of backward (activations with a layer's
    gradients or the logits) and the optimizer step."""
    states = m.weights + m.gradients + m.optimizer
    backward = m.activations + max(m.transient, m.logits)
    dynamic = max(backward, m.step)
    allocated = states + dynamic
    held = allocated + ALLOCATOR_SLACK * dynamic
    context = CUDA_CONTEXT + (NCCL_BUFFERS if world > 1 else 0.0)
    early = backward >= m.step
    activations = m.activations + (m.transient if m.transient > m.logits else 0.0) if early else 0.0
    logits = m.logits if early and m.logits >= m.transient else 0.0
    device = held + context
    return MemoryEstimate(
        weights=m.weights, gradients=m.gradients, optimizer=m.optimizer, activations=activations, logits=logits,
        overhead=device - (states + activations + logits), allocated=allocated, reserved=held, device=device,
        phase="forward/backward" if early else "optimizer step", notes=notes, context=context,
    )  # fmt: skip


def megatron_estimate(inputs) -> MemoryEstimate:
    """The peak over the pipeline stages of ``inputs.megatron`` (``estimate`` hands Megatron launches here)."""
    s = inputs.megatron
    stages = stage_memory(inputs.shape, s, inputs.sequences, inputs.seq_len)
    estimates = [stage_estimate(m, inputs.world_size) for m in stages]
    peak = max(range(len(stages)), key=lambda i: estimates[i].device)
    notes = list(inputs.notes)
    if s.pipeline > 1:
        notes.append(_stage_note(s, stages, estimates, peak))
    training = estimates[peak]._replace(notes=tuple(notes))
    return _evaluation(stages[-1], training, inputs.eval_logits) if inputs.eval_logits else training


def stage_peaks(inputs) -> list[float]:
    """Bytes each pipeline stage's GPUs must hold in training (the JSON output's ``stages_gib``)."""
    stages = stage_memory(inputs.shape, inputs.megatron, inputs.sequences, inputs.seq_len)
    return [stage_estimate(m, inputs.world_size).device for m in stages]


def _evaluation(last: StageMemory, training: MemoryEstimate, logits: float) -> MemoryEstimate:
    """An evaluation's forward on the last stage: the states stay, no activations are kept, the eval batch's
    logits are the peak (``inputs.eval_logits``, megatron_config.py). Reported when it exceeds training's."""
    states = last.weights + last.gradients + last.optimizer
    held = states + logits * (1 + ALLOCATOR_SLACK)
    device = held + training.context
    if device <= training.device:
        return training._replace(notes=(*training.notes, f"an evaluation peaks at {device / GIB:.1f} GiB"))
    return MemoryEstimate(
        weights=last.weights, gradients=last.gradients, optimizer=last.optimizer, activations=0.0, logits=logits,
        overhead=device - states - logits, allocated=states + logits, reserved=held, device=device,
        phase="evaluation", context=training.context, training=training.device,
        notes=(*training.notes, f"the training steps peak at {training.device / GIB:.1f} GiB ({training.phase})"),
    )  # fmt: skip


def _stage_note(s: MegatronSetup, stages: list[StageMemory], estimates: list[MemoryEstimate], peak: int) -> str:
    m = stages[peak]
    what = [f"{m.layers} layers"]
    if peak == 0:
        what.insert(0, "the embedding")
    if peak == s.pipeline - 1:
        what.append("the output head and the logits")
    flight = f"{m.in_flight:g} micro-batch{'es' + chr(39) if m.in_flight != 1 else chr(39) + 's'} activations"
    others = ", ".join(f"{e.device / GIB:.1f}" for e in estimates)
    return (f"the peak is on pipeline stage {peak + 1} of {s.pipeline} ({', '.join(what)}; {flight} in flight); "
            f"stages: {others} GiB")  # fmt: skip


def pipeline_efficiency(s: MegatronSetup) -> float:
    """The share of a step the pipeline is busy: M / (M + (p - 1) / v), the 1F1B bubble (interleaved: 1/v of it)."""
    if s.pipeline == 1:
        return 1.0
    return s.microbatches / (s.microbatches + (s.pipeline - 1) / (s.virtual or 1))
