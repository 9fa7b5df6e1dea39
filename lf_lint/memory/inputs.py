"""A LLaMA-Factory config as ``MemoryInputs``, built phase by phase.

Each phase of a run computes its own part of the inputs, and each value has one name:

* ``_weights``: the frozen weights, 16-bit or quantized (bitsandbytes, a pre-quantized checkpoint);
* ``_parameters``: the trainable parameters' dtype, gradients and optimizer states on one GPU, unsharded;
* ``_sharding``: what DeepSpeed ZeRO or FSDP keeps of them per GPU, and the buffers it adds in backward and the step;
* ``_micro_batch``: the training step's activations and logits (sequences, attention, checkpointing, vision tower);
* ``_other_models``: a reference or reward model, PPO's rollout cache;
* ``_loading``: the whole model on every GPU before DeepSpeed ZeRO-0/1/2 or FSDP shrinks it (loading.py);
* ``_evaluation``: the eval batch's forward or generation (evaluation.py).

A Megatron launch (``USE_MCA=1``, ``USE_MEGATRON_BRIDGE=1``) takes its own path (``layout``): Megatron-Core, not
the Trainer, holds the model, and a pipeline stage keeps its own layers, micro-batches in flight and logits, which
these phases (one process, the whole model) cannot express. megatron_config.py reads the config into a
``MegatronSetup`` that ``estimate`` hands to megatron.py.

What each argument means (trainable parameters, optimizer bytes, sequence length) is in llamafactory.py.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from ..launch import Launch, fsdp_loads_on_cpu
from ..versions import Target
from .deepspeed import MASTER_AND_ADAM, zero3_gathered, zero_layout
from .estimate import GIB, MemoryInputs
from .evaluation import EvalForward, eval_forward, generation_forward, kv_cache_bytes
from .fsdp import fsdp_layout
from .llamafactory import (
    INT8,
    NF4_DOUBLE_QUANT,
    NF4_PLAIN,
    batch_and_accumulation,
    int_or,
    largest_trainable,
    liger_model_types,
    low_rank_state_bytes,
    name_list,
    optimizer_bytes,
    sequence_length,
    sequences_per_microbatch,
    trainable_parameters,
)
from .loading import cast_back_peak, fsdp_wrap_peak
from .model import ModelInfo, Shape, fused_experts, layer_params, layer_params_at, linears, module_count
from .vision import VisionTraining, image_patches

# a pre-quantized checkpoint's name (GPTQ/AWQ store about 4.25 bits per weight with their group scales)
_PREQUANTIZED = re.compile(r"gptq|awq|int4|4bit|bnb-4bit", re.IGNORECASE)


class _Run(NamedTuple):
    """What every phase reads: the config, the model and how the processes share it."""

    args: object
    shape: Shape
    target: Target
    stage: str
    method: str  # full | freeze | lora | oft
    total: int  # parameters of the model
    trainable: int  # trainable parameters (adapters and modules_to_save copies included)
    copies: int  # frozen parameters a trainable copy duplicates (LoRA's modules_to_save)
    detail: dict  # trainable_parameters' details (checkpointed layers, LoRA target share, the vision encoder)
    world_size: int
    launch: Launch
    deepspeed: object  # launch.DeepSpeed with a ZeRO stage, or None
    zero: int | None  # the DeepSpeed ZeRO stage, None without DeepSpeed
    fsdp_options: list  # the YAML's fsdp options (none under DeepSpeed)
    fsdp: bool  # FSDP that shards (not no_shard)
    pure: bool  # pure_bf16
    amp: bool  # bf16/fp16 autocast

    @property
    def deepspeed_engine(self) -> bool:
        return self.zero is not None


class _Weights(NamedTuple):
    quantized_params: int  # frozen parameters stored in 4 or 8 bits
    quantized_bytes: float  # bytes per quantized parameter (2.0 when none is)
    bits: int | None  # 4 or 8 when the base weights are quantized
    notes: tuple


class _Parameters(NamedTuple):
    """The trainable parameters on one GPU as the trainer holds them, before DeepSpeed or FSDP shards them."""

    trainable_params: int  # those with gradients and optimizer states at one time (BAdam: one block)
    trainable_bytes: float
    autocast_copy: float
    grad_bytes: float
    optimizer_bytes: float
    optimizer_step_temp: float
    offloadable_optimizer: bool
    optimizer_name: str
    residual_bytes: int
    notes: tuple


class _Sharding(NamedTuple):
    """What each GPU keeps of the trainable parameters' gradients and optimizer states, and the buffers of the engine."""

    description: str
    grad_bytes: float
    optimizer_bytes: float
    offload_optimizer: bool
    offload_params: bool
    bucket_bytes: float
    backward_bytes: float
    step_bytes: float
    unit_bytes: float  # FSDP: the layer(s) gathered beside a layer's recomputation
    gradients_rebuilt: bool  # FSDP frees the gradients when the forward begins
    late_backward_bytes: float | None
    end_backward_bytes: float
    notes: tuple


class _MicroBatch(NamedTuple):
    """One training micro-batch's forward and backward."""

    sequences: int
    logits_sequences: int
    seq_len: int
    checkpointing: bool
    checkpointed_layers: int | None
    full_layers: int
    attention: str
    grouped_kv: bool
    padding_mask: bool
    mask_bytes: int
    logits_bytes: float
    lora_activation_share: float
    offload_checkpoints: bool
    dequant_bytes: float
    vision: VisionTraining | None
    notes: tuple


class _OtherModels(NamedTuple):
    reference_params: int  # a second (frozen) model: DPO/KTO reference, PPO's reward model and reference
    reference_bytes: float
    generation_bytes: float  # PPO's rollout KV cache
    notes: tuple


def build_inputs(
    args,
    model: ModelInfo,
    target: Target,
    world_size: int,
    deepspeed,
    images: int | None = None,
    launch: Launch | None = None,
    layout=None,
) -> MemoryInputs:
    """``images``: the most images one training example carries, when the data was read; ``launch`` how the
    processes start (by default ``world_size`` processes under torchrun); ``layout`` the parallel layout of a
    Megatron launch (``parallel_layout.read_layout``; megatron_config.py raises ``LayoutError`` when it leaves no
    data-parallel size)."""
    if layout is not None:
        from .megatron_config import megatron_inputs

        return megatron_inputs(args, model, layout)
    run = _run(args, model, target, world_size, deepspeed, launch)
    weights = _weights(run)
    parameters = _parameters(run)
    sharding = _sharding(run, weights, parameters)
    batch = _micro_batch(run, weights, parameters, images)
    others = _other_models(run)
    load_bytes, load_notes = _loading(run, weights, others)
    evaluation = _evaluation(run, batch)
    inputs = MemoryInputs(
        sharding=sharding.description,
        shape=run.shape,
        total_params=run.total,
        trainable_params=parameters.trainable_params,
        frozen_bytes=2.0,
        quantized_params=weights.quantized_params,
        quantized_bytes=weights.quantized_bytes,
        trainable_bytes=parameters.trainable_bytes,
        autocast_copy=parameters.autocast_copy,
        grad_bytes=sharding.grad_bytes,
        optimizer_bytes=sharding.optimizer_bytes,
        optimizer_step_temp=parameters.optimizer_step_temp,
        offloadable_optimizer=parameters.offloadable_optimizer,
        world_size=world_size,
        zero_stage=run.zero or 0,
        fsdp=run.fsdp,
        offload_optimizer=sharding.offload_optimizer,
        offload_params=sharding.offload_params,
        reference_params=others.reference_params,
        reference_bytes=others.reference_bytes,
        sequences=batch.sequences,
        seq_len=batch.seq_len,
        checkpointing=batch.checkpointing,
        checkpointed_layers=batch.checkpointed_layers,
        full_layers=batch.full_layers,
        residual_bytes=parameters.residual_bytes,
        attention=batch.attention,
        grouped_kv=batch.grouped_kv,
        padding_mask=batch.padding_mask,
        mask_bytes=batch.mask_bytes,
        logits_bytes=batch.logits_bytes,
        logits_sequences=batch.logits_sequences,
        lora_activation_share=batch.lora_activation_share,
        offload_checkpoints=batch.offload_checkpoints,
        ddp_gradient_buckets=not run.deepspeed_engine and not run.fsdp,
        bucket_bytes=sharding.bucket_bytes,
        backward_bytes=sharding.backward_bytes,
        step_bytes=sharding.step_bytes,
        unit_bytes=sharding.unit_bytes,
        gradients_rebuilt=sharding.gradients_rebuilt,
        late_backward_bytes=sharding.late_backward_bytes,
        end_backward_bytes=sharding.end_backward_bytes,
        dequant_bytes=batch.dequant_bytes,
        vision=batch.vision,
        generation_bytes=others.generation_bytes,
        load_bytes=load_bytes,
        eval_logits=evaluation.logits if evaluation else 0.0,
        eval_activations=evaluation.activations if evaluation else 0.0,
        method=run.method,
        optimizer_name=parameters.optimizer_name,
        notes=(*weights.notes, *parameters.notes, *batch.notes, *others.notes, *sharding.notes, *load_notes),
    )
    return inputs if args.trains else _not_training(inputs)


def _run(args, model: ModelInfo, target: Target, world_size: int, deepspeed, launch: Launch | None) -> _Run:
    trainable, copies, detail = trainable_parameters(args, model.shape, model.params, target)
    zero = deepspeed.zero_stage if deepspeed is not None and deepspeed.zero_stage is not None else None
    fsdp_options = args.fsdp_options if zero is None else []
    pure = bool(args.pure_bf16)
    return _Run(args=args, shape=model.shape, target=target, stage=args.stage, method=detail["method"],
                total=model.params, trainable=trainable, copies=copies, detail=detail, world_size=world_size,
                launch=launch or Launch(world_size, 1, "option"), deepspeed=deepspeed, zero=zero,
                fsdp_options=fsdp_options, fsdp=bool(fsdp_options) and "no_shard" not in fsdp_options, pure=pure,
                amp=bool(args.bf16 or args.fp16) and not pure)  # fmt: skip


def _weights(run: _Run) -> _Weights:
    """bitsandbytes replaces every nn.Linear but the output head (transformers ``integrations/bitsandbytes.py``), a
    vision tower's too; fused experts are not nn.Linear. Embeddings, norms and the head stay 16-bit."""
    args, shape = run.args, run.shape
    bits = args.quantization_bit if isinstance(args.quantization_bit, int) else None
    notes = []
    prequantized = _PREQUANTIZED.search(str(args.model_name_or_path or ""))
    if bits is None and prequantized:
        bits = 4
        notes.append(f"the checkpoint name says it is stored in 4 bits ({prequantized.group(0)}): counted at 4.25 "
                     "bits per weight")  # fmt: skip
    if bits not in (4, 8):
        return _Weights(0, 2.0, bits, tuple(notes))
    modules = linears(shape, fused_experts=fused_experts(shape, run.target.tf), linear_router=run.target.tf < (5, 0, 0))
    quantized = sum(m.d_in * m.d_out * module_count(shape, m) for m in modules)
    if shape.vision is not None:
        v = shape.vision
        quantized += sum(m.d_in * m.d_out for m in v.block_linears) * v.blocks
        quantized += sum(m.d_in * m.d_out for m in v.merger_linears) * (v.deepstack + 1)
    quantized = min(quantized, run.total - run.trainable)
    per_weight = (NF4_DOUBLE_QUANT if args.double_quantization else NF4_PLAIN) if bits == 4 else INT8
    if prequantized and not isinstance(args.quantization_bit, int):
        per_weight = (4 + 32 / 128) / 8
    notes.append(f"{bits}-bit base weights ({per_weight * 8:.2f} bits each); embeddings, norms and the output head "
                 "stay 16-bit")  # fmt: skip
    return _Weights(quantized, per_weight, bits, tuple(notes))


def _parameters(run: _Run) -> _Parameters:
    """LLaMA-Factory casts trainable parameters to fp32 unless ``pure_bf16``, BAdam or ZeRO-3 without quantization
    (``model/adapter.py::init_adapter``); PEFT keeps LoRA adapters in fp32 in every case. DeepSpeed's engine casts
    the module back to 16 bits and keeps its own fp32 master and Adam states (its share per GPU: ``_sharding``)."""
    args, shape, method, trainable = run.args, run.shape, run.method, run.trainable
    notes = []
    trainable_for_state = trainable
    if args.use_badam:
        trainable_for_state = layer_params(shape)[0]
        notes.append("BAdam updates one layer at a time: gradients and optimizer states for that block only")
    if run.deepspeed_engine:
        return _Parameters(trainable_for_state, 2.0, 0.0, 2.0, MASTER_AND_ADAM, 0.0, False,
                           "DeepSpeed fp32 master + Adam", 2, tuple(notes))  # fmt: skip
    upcast = not (run.pure or args.use_badam)
    adapters_fp32 = method in ("lora", "oft")
    trainable_bytes = 4.0 if (upcast or adapters_fp32) else 2.0
    if run.copies and not upcast:
        notes.insert(0, "LoRA adapters stay fp32 (PEFT autocast_adapter_dtype); modules_to_save copies follow "
                        "pure_bf16")  # fmt: skip
    grad_bytes = trainable_bytes
    # an fp32 embedding makes the residual stream between layers fp32
    upcast_embedding = upcast and (method == "full" or "embed_tokens" in name_list(args.freeze_extra_modules))
    optim = str(args.optim or "adamw_torch")
    state, step_temp, paged, optim_name = optimizer_bytes(optim, trainable_bytes, args)
    low_rank = low_rank_state_bytes(args, shape, trainable, run.target, trainable_bytes)
    if low_rank is not None:
        state, step_temp = low_rank, 0.0
        rank = int_or(args.galore_rank if args.use_galore else args.apollo_rank, 16)
        optim_name = f"{'GaLore' if args.use_galore else 'APOLLO'} ({optim}, rank {rank})"
        if args.galore_layerwise if args.use_galore else args.apollo_layerwise:
            grad_bytes = 0.0  # layer-wise updates free each gradient in backward
    # under FSDP autocast meets the 16-bit parameters FSDP gathers: nothing to cast
    autocast_copy = 2.0 if (run.amp and not run.fsdp and trainable_bytes == 4.0) else 0.0
    # autocast caches copies of matmul weights only: not the embedding lookup, unless the output head shares it
    if autocast_copy and method == "full" and not shape.tied:
        autocast_copy *= (trainable - shape.vocab * shape.hidden) / max(1, trainable)
    return _Parameters(trainable_for_state, trainable_bytes, autocast_copy, grad_bytes, state, step_temp, paged,
                       optim_name, 4 if upcast_embedding and not run.pure else 2, tuple(notes))  # fmt: skip


def _sharding(run: _Run, weights: _Weights, parameters: _Parameters) -> _Sharding:
    """DeepSpeed's share (deepspeed.py) or FSDP's (fsdp.py) of one GPU; plain data parallelism keeps everything."""
    args, shape = run.args, run.shape
    layer_bytes = weights.quantized_bytes if weights.quantized_params else 2.0
    if run.deepspeed_engine:
        config = run.deepspeed.config or {}
        section = config.get("zero_optimization") or {}
        offload = run.deepspeed.offloads("optimizer")
        # the optimizer is the Trainer's (args.optim) unless the DeepSpeed config names one (DeepSpeed's fused Adam)
        temp = 0.0 if "optimizer" in config else optimizer_bytes(str(args.optim or "adamw_torch"), 4.0, args)[1]
        layout = zero_layout(section, stage=run.zero, world=run.world_size, trainable=parameters.trainable_params,
                             largest=largest_trainable(shape, run.method, run.copies, run.target), hidden=shape.hidden,
                             accumulation=batch_and_accumulation(args)[1], optimizer_temp=temp,
                             fp16=bool(args.fp16) and not args.bf16, offload_optimizer=offload)  # fmt: skip
        backward = layout.backward_bytes
        if run.zero == 3:
            backward += zero3_gathered(shape, section, checkpointing=not args.disable_gradient_checkpointing,
                                       fused_experts=fused_experts(shape, run.target.tf), layer_bytes=layer_bytes)
        offload_params = run.deepspeed.offloads("param") if run.zero == 3 else False
        return _Sharding(_describe(run.world_size, run.zero, [], offload, offload_params), layout.grad_bytes,
                         layout.optimizer_bytes, offload, offload_params, layout.bucket_bytes, backward,
                         layout.step_bytes, 0.0, False, None, 0.0, ())  # fmt: skip
    notes = []
    if run.fsdp:
        offloaded = "offload" in run.fsdp_options
        grad_bytes = 0.0 if offloaded else parameters.grad_bytes  # sharded gradients go to host memory with the parameters
        extra = name_list(args.freeze_extra_modules) if run.method == "freeze" else []
        root_trains = run.method == "full" or bool(run.copies) or bool({"embed_tokens", "lm_head"} & set(extra))
        config = args.fsdp_config if isinstance(args.fsdp_config, dict) else {}
        if isinstance(args.fsdp_config, str):
            notes.append("fsdp_config is a file lf-lint does not read: FSDP's defaults assumed (no backward prefetch)")
        if str(config.get("version", 1)) == "2":
            notes.append("FSDP2 (version 2) is estimated as FSDP1, which lf-lint measured")
        layout = fsdp_layout(shape, options=run.fsdp_options, config=config, world=run.world_size,
                             trainable_layers=run.method in ("full", "freeze"), trainable_root=root_trains,
                             trainable_head=root_trains, gathered_bytes=2.0 if (run.amp or run.pure) else 4.0,
                             grad_bytes=grad_bytes,
                             layer_bytes=weights.quantized_bytes if weights.quantized_params else None)  # fmt: skip
        return _Sharding(_describe(run.world_size, None, run.fsdp_options, offloaded, offloaded), grad_bytes,
                         parameters.optimizer_bytes, offloaded, offloaded, 0.0, layout.backward_bytes, 0.0,
                         layout.unit_bytes, True, layout.late_bytes, layout.end_bytes, tuple(notes))  # fmt: skip
    if run.fsdp_options:
        notes.append("FSDP no_shard is counted as plain data parallel")
    return _Sharding(_describe(run.world_size, None, run.fsdp_options, False, False), parameters.grad_bytes,
                     parameters.optimizer_bytes, False, False, 0.0, 0.0, 0.0, 0.0, False, None, 0.0, tuple(notes))


def _describe(world: int, zero: int | None, fsdp: list, offload_optimizer: bool, offload_params: bool) -> str:
    """How the processes share the model, in words."""
    processes = f"{world} process{'es' if world > 1 else ''}"
    offloaded = [name for name, on in (("optimizer", offload_optimizer), ("parameters", offload_params)) if on]
    where = f", {' and '.join(offloaded)} offloaded to the CPU" if offloaded else ""
    if zero is not None:
        return f"DeepSpeed ZeRO-{zero} over {processes}{where}"
    if fsdp:
        return f"FSDP {' '.join(fsdp)} over {processes}{where}"
    return f"none: each of {processes} holds the whole model" if world > 1 else "none (one process)"


def _attention(run: _Run) -> tuple[str, tuple]:
    """The attention implementation the model runs (``flash_attn``), and a note where it is not what was asked."""
    flash = str(run.args.flash_attn or "auto")
    attention = {"fa2": "fa2", "disabled": "eager", "eager": "eager"}.get(flash, "sdpa")
    if run.shape.model_type == "gemma2" and flash in ("auto", "fa2"):
        attention = "fa2" if flash == "fa2" else "eager"
        if flash == "auto":
            return attention, ("Gemma 2 runs eager attention unless FlashAttention-2 is installed (flash_attn: fa2)",)
    return attention, ()


def _micro_batch(run: _Run, weights: _Weights, parameters: _Parameters, images: int | None) -> _MicroBatch:
    args, shape, stage, method = run.args, run.shape, run.stage, run.method
    notes = []
    batch = batch_and_accumulation(args)[0]
    kept_sequences, logit_sequences = sequences_per_microbatch(stage, args, batch)
    seq = sequence_length(args, run.target, stage)
    vision = run.detail.get("vision")
    if vision is not None and (vision.blocks or vision.stem or vision.projector):
        patches, basis = image_patches(args.image_max_pixels, shape.vision, seq, images)
        vision = vision._replace(patches=kept_sequences * patches,
                                 fp32=method in ("full", "freeze") and parameters.trainable_bytes == 4.0)  # fmt: skip
        part = "tower" if vision.blocks or vision.stem else "projector"
        if not shape.vision.patches_per_token:
            notes.append(f"the vision {part} trains: its activations for each image are not counted (images' "
                         "tokens are, within cutoff_len)")  # fmt: skip
        else:
            notes.append(f"the vision {part} trains: its activations are counted for {vision.patches:,} image "
                         f"patches per micro-batch ({basis})")  # fmt: skip
    attention, attention_notes = _attention(run)
    notes += attention_notes
    if args.torch_compile:
        notes.append("torch_compile is not modelled: compiled graphs keep their own set of activations (more or fewer)")
    padded = not args.packing
    checkpointing = not args.disable_gradient_checkpointing
    checkpointed, full_layers = None, 0
    if checkpointing and "checkpointed" in run.detail:
        # only layers with trainable parameters are checkpointed; frozen layers after them are recorded in full
        checkpointed, full_layers = run.detail["checkpointed"], run.detail["recorded"]
    liger = bool(args.enable_liger_kernel) and stage in ("pt", "sft") and shape.model_type in liger_model_types(run.target.lf)
    unsloth = bool(args.use_unsloth)
    logits_bytes = 12.0
    if liger or (unsloth and stage in ("pt", "sft")):
        logits_bytes = 0.0
        notes.append("fused linear cross-entropy: the logits are never materialised")
    elif stage == "dpo" and args.use_ref_model:
        logits_bytes = 20.0  # policy's fp32 logits stay alive during the reference forward (CPU-measured)
    elif stage == "rm":
        logits_bytes = 6.0  # the value-head model still computes fp32 LM logits it does not use
    elif stage == "kto":
        logits_bytes = 16.0
    return _MicroBatch(
        sequences=kept_sequences,
        logits_sequences=logit_sequences,
        seq_len=seq,
        checkpointing=checkpointing,
        checkpointed_layers=checkpointed,
        full_layers=full_layers,
        attention=attention,
        grouped_kv=attention == "fa2" or (attention == "sdpa" and not padded and run.target.tf >= (4, 57, 0)),
        padding_mask=padded and attention == "sdpa",
        mask_bytes=1 if run.target.tf >= (4, 57, 0) else 2,
        logits_bytes=logits_bytes,
        lora_activation_share=0.12 * run.detail.get("target_share", 0.0) if method in ("lora", "oft") else 0.0,
        offload_checkpoints=bool(args.use_unsloth_gc) or unsloth,
        # bitsandbytes dequantises one weight at a time
        dequant_bytes=shape.hidden * max(shape.intermediate, shape.hidden) * 2 if weights.bits else 0.0,
        vision=vision,
        notes=tuple(notes),
    )


def _other_models(run: _Run) -> _OtherModels:
    """DPO/KTO with full or freeze tuning (or a ``ref_model``) load a reference model
    (``train/trainer_utils.py::create_ref_model``); PPO a full reward model, a reference for full or freeze tuning,
    and keeps its rollouts' KV cache."""
    args, stage, method = run.args, run.stage, run.method
    notes = []
    reference, reference_bytes = 0, 2.0
    if stage in ("dpo", "kto") and (stage == "kto" or args.use_ref_model) and (method in ("full", "freeze") or args.ref_model):
        reference = run.total
        if args.ref_model and isinstance(args.ref_model_quantization_bit, int):
            reference_bytes = NF4_DOUBLE_QUANT if args.ref_model_quantization_bit == 4 else INT8
        notes.append("a reference model (a second copy of the weights) for DPO/KTO")
    generation = 0.0
    if stage == "ppo":
        if str(args.reward_model_type or "lora") == "full":
            reference += run.total
            notes.append("PPO: a full reward model")
        if method in ("full", "freeze"):
            reference += run.total
        batch = batch_and_accumulation(args)[0]
        tokens = sequence_length(args, run.target, stage) + int_or(args.max_new_tokens, 1024)
        generation = kv_cache_bytes(run.shape, batch, tokens)
        notes.append(f"PPO rollouts: KV cache of {batch} x {tokens} tokens")
    return _OtherModels(reference, reference_bytes, generation, tuple(notes))


def _loading(run: _Run, weights: _Weights, others: _OtherModels) -> tuple[float, tuple]:
    """Bytes on one GPU at the peak of loading (loading.py), when the whole model is loaded onto every GPU before
    DeepSpeed ZeRO-0/1/2 or FSDP shrinks it; 0 when loading cannot be the peak. For inference LLaMA-Factory casts
    nothing: the loaded 16-bit weights are what stays."""
    args, shape, method = run.args, run.shape, run.method
    below_zero3 = run.deepspeed_engine and run.zero < 3
    if not args.trains or not (below_zero3 or run.fsdp) or args.low_cpu_mem_usage is False:
        return 0.0, ()  # without low_cpu_mem_usage LLaMA-Factory gives no device_map: the model loads on the CPU
    if run.fsdp and fsdp_loads_on_cpu(args, run.launch, run.target.tf):
        return 0.0, ()
    cast = not (args.pure_bf16 or args.use_badam)  # init_adapter (ZeRO-3 is not here)
    trainable_bytes = 4.0 if cast else 2.0
    quantized, trainable = weights.quantized_params, run.trainable
    reference = others.reference_params * others.reference_bytes
    loaded = (run.total - trainable - quantized) * 2.0 + quantized * weights.quantized_bytes
    loaded += trainable * trainable_bytes + reference
    peak = cast_back_peak(loaded, largest_trainable(shape, method, run.copies, run.target)) if cast else loaded
    if below_zero3:  # 16-bit weights are what ZeRO-0/1/2 keeps: only a cast of the model itself counts
        peak = peak if cast and method in ("full", "freeze") else 0.0
    else:
        units: list[float] = []
        if "auto_wrap" in args.fsdp_options:
            if shape.vision is not None:
                units += [shape.vision.block * 2.0] * shape.vision.blocks
            layer_bytes = trainable_bytes if method == "full" else weights.quantized_bytes if quantized else 2.0
            adapters = trainable_bytes * trainable / shape.layers if method in ("lora", "oft") else 0.0
            for i in range(shape.layers):
                units.append(layer_params_at(shape, i) * layer_bytes + adapters)
        units.append(max(0.0, loaded - sum(units)))  # the root: what no wrapped unit holds
        peak = max(peak, fsdp_wrap_peak(loaded, units, run.launch.world_size))
    if not peak:
        return 0.0, ()
    how = "before DeepSpeed casts it back" if run.deepspeed_engine else "before FSDP shards it"
    return peak, (f"while the model loads: {peak / GIB:.1f} GiB per GPU (the whole model on every GPU, the "
                  f"trainable weights cast to fp32 by LLaMA-Factory, {how})",)  # fmt: skip


def _evaluation(run: _Run, batch: _MicroBatch) -> EvalForward | None:
    """The largest eval batch's forward (or its generation with ``predict_with_generate``), when the config
    evaluates or predicts; PPO never does."""
    args, shape, stage, attention = run.args, run.shape, run.stage, batch.attention
    evaluates = str(args.eval_strategy or "no") != "no" or args.do_eval or args.do_predict
    if not evaluates or stage == "ppo":
        return None
    eval_batch = int_or(args.per_device_eval_batch_size, 8)
    # a padded batch's mask: bool for SDPA from transformers 4.57, else in the 16-bit dtype; none with FA2
    mask_bytes = 0 if attention == "fa2" else 1 if attention == "sdpa" and run.target.tf >= (4, 57, 0) else 2
    if args.predict_with_generate and stage == "sft":  # no labels: generation, no loss
        # prompts of different lengths always pad the batch: SDPA gets a mask, and so copies the KV heads
        return generation_forward(shape, sequences=eval_batch * max(1, int_or(args.num_beams, 1)),
                                  prompt_len=batch.seq_len, max_new_tokens=int_or(args.max_new_tokens, 1024),
                                  mask_bytes=mask_bytes, repeats_kv=attention != "fa2",
                                  eager=attention == "eager")  # fmt: skip
    # the output head, 16-bit, gathered by ZeRO-3 or FSDP while the logits are computed (FSDP: the embedding too,
    # unless tied: both are in the root unit)
    head = shape.vocab * shape.hidden * 2
    head_gathered = head * (1 if shape.tied else 2) if run.fsdp else head if run.zero == 3 else 0.0
    padded = not args.packing
    return eval_forward(shape, stage="dpo-noref" if stage == "dpo" and not args.use_ref_model else stage,
                        eval_batch=eval_batch, seq_len=batch.seq_len, gathered=head_gathered,
                        mask_bytes=mask_bytes if padded or attention == "eager" else 0,  # eager: always causal
                        eager=attention == "eager")  # fmt: skip


def _not_training(inputs: MemoryInputs) -> MemoryInputs:
    """An evaluation or prediction config (``do_eval``/``do_predict`` without ``do_train``): LLaMA-Factory loads the
    model for inference (no fp32 cast, LoRA adapters merged); only the evaluation's forward comes on top."""
    return inputs._replace(
        trainable_params=0, trainable_bytes=2.0, autocast_copy=0.0, grad_bytes=0.0, optimizer_bytes=0.0,
        optimizer_step_temp=0.0, offloadable_optimizer=False, offload_optimizer=False, sequences=0,
        logits_sequences=0, vision=None, ddp_gradient_buckets=False, bucket_bytes=0.0, backward_bytes=0.0,
        step_bytes=0.0, unit_bytes=0.0, gradients_rebuilt=False, late_backward_bytes=None, end_backward_bytes=0.0,
        generation_bytes=0.0, method="inference", optimizer_name="none (do_train is false)",
        notes=(*inputs.notes, "no training (do_train is false): the 16-bit weights and the evaluation's forward"),
    )  # fmt: skip
