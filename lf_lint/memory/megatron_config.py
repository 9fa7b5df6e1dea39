"""A LLaMA-Factory Megatron config (``USE_MCA=1``, ``USE_MEGATRON_BRIDGE=1``) as ``MemoryInputs`` with a
``MegatronSetup``: what each engine hands Megatron-Core, with its defaults.

* mcore_adapter (alibaba/ROLL 8eb27cc): ``TrainingArguments.__post_init__`` turns on
  ``accumulate_allreduce_grads_in_fp32`` under bf16; ``McaTrainer._prepare_model`` builds DDP with
  ``grad_reduce_in_fp32`` from it, ``create_optimizer`` Megatron's optimizer (``optimizer``: adam; distributed
  only with ``use_distributed_optimizer``, default off); ``McaModelConfig.__post_init__`` recomputes every layer
  for ``recompute_granularity: full`` without a method (uniform, 1), forces sequence parallelism with TP and EP,
  drops it without TP, and routes in fp32 from 32 experts. LLaMA-Factory's workflow (main ff6d4d12e,
  ``train/mca/workflow.py``) trains every parameter whatever ``finetuning_type`` says (only the Qwen-VL families
  freeze their vision tower, projector or language model), pads SFT/DPO batches to a multiple of 64 (to
  ``cutoff_len`` with EP > 1), passes ``gradient_accumulation_steps`` micro-batches per step, and runs DPO with a
  reference model.
* megatron-bridge (LLaMA-Factory main ff6d4d12e ``train/megatron_bridge/config_builder.py``): DDP with
  ``grad_reduce_in_fp32=True``, the distributed optimizer by default, ``bf16_mixed`` precision, LoRA adapters on
  linear_qkv/linear_proj/linear_fc1/linear_fc2; the global batch over micro-batch x data-parallel size gives the
  micro-batches; the provider's cross-entropy fusion (megatron-bridge 0.3.1 ``GPTModelProvider``) and, for Qwen3
  MoE, the alltoall dispatcher and an fp32 router (``Qwen3MoEModelProvider``).
"""

from __future__ import annotations

import math

from ..parallel_layout import ParallelLayout
from .estimate import MemoryInputs
from .llamafactory import batch_and_accumulation, int_or
from .megatron import (
    FUSED_CROSS_ENTROPY,
    MCA_FUSED_CROSS_ENTROPY,
    VOCAB_PARALLEL_CROSS_ENTROPY,
    MegatronSetup,
    stage_layers,
)
from .model import ModelInfo, Shape

QWEN_VL = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl", "qwen3_vl_moe", "qwen3_5", "qwen3_5_moe")  # _freeze_model_parameters


class LayoutError(ValueError):
    """The layout leaves no data-parallel size (LF265 reports it): no estimate."""


def megatron_inputs(args, model: ModelInfo, layout: ParallelLayout) -> MemoryInputs:
    shape = model.shape
    if layout.data_parallel is None or layout.expert_data_parallel is None:
        raise LayoutError(f"the parallel layout does not divide the {layout.world_size} processes (LF265): "
                          "Megatron-Core would not start")  # fmt: skip
    notes: list[str] = []
    bridge = layout.engine == "megatron_bridge"
    tp, ep = layout.tensor, layout.expert
    sp = layout.sequence_parallel
    if not bridge:  # McaModelConfig.__post_init__
        sp = tp > 1 and (sp or ep > 1)
    if shape.moe is not None and tp > 1 and not sp:
        notes.append("megatron-core 0.16 refuses to train an MoE layer with tensor parallelism but no sequence "
                     "parallelism (moe_layer.py: ValueError)")  # fmt: skip
    batch, accumulation = batch_and_accumulation(args)
    precision = _precision(args, layout, notes)
    recompute = _recompute(args, layout, shape, notes)
    training = _training(args, layout, shape, notes)
    moe = _moe(args, layout, shape)
    extra = args.get("additional_configs") if "additional_configs" in args._table else None
    extra = extra if isinstance(extra, dict) else {}
    if isinstance(args.get("pipeline_model_parallel_layout") if "pipeline_model_parallel_layout" in args._table
                  else None, str):  # fmt: skip
        notes.append("pipeline_model_parallel_layout is not modelled: the layers are split evenly")
    setup = MegatronSetup(
        engine=layout.engine, tensor=tp, pipeline=layout.pipeline, context=layout.context, expert=ep,
        expert_tensor=layout.expert_tensor, virtual=layout.virtual_pipeline if layout.pipeline > 1 else None,
        sequence_parallel=sp, dense_shard=layout.data_parallel * layout.context,
        expert_shard=layout.expert_data_parallel,
        stage_layers=stage_layers(shape.layers, layout.pipeline, layout.virtual_pipeline, layout.account_for_embedding,
                                  layout.account_for_loss, _whole(extra.get("num_layers_in_first_pipeline_stage")),
                                  _whole(extra.get("num_layers_in_last_pipeline_stage"))),
        microbatches=_microbatches(layout, batch, accumulation), distributed_optimizer=layout.distributed_optimizer,
        logits_bytes=_cross_entropy(args, bridge, tp),
        fused_activation=bool(args.get("bias_activation_fusion")), **precision, **recompute, **training, **moe,
    )  # fmt: skip
    stage = args.stage
    sequences = batch * (2 if stage == "dpo" else 1)
    cutoff = int_or(args.cutoff_len, 2048)
    seq_len = cutoff if bridge else math.ceil(cutoff / (8 if stage == "pt" else 64)) * (8 if stage == "pt" else 64)
    if shape.mixers:
        notes.append("layers with another token mixer (linear attention) are estimated as softmax attention's")
    notes.append("Megatron-Core's memory is derived from its source, not measured by lf-lint on LLaMA-Factory "
                 "runs (benchmarks/megatron_accuracy.py)")  # fmt: skip
    trainable = _trainable_total(shape, model.params, setup)
    eval_logits = 0.0
    if args.do_eval or str(args.eval_strategy or "no") != "no":  # a forward-only pass: the logits are its peak
        eval_batch = batch if bridge else int_or(args.per_device_eval_batch_size, 8)
        eval_logits = eval_batch * seq_len / layout.context * shape.vocab / tp * setup.logits_bytes
    return MemoryInputs(
        shape=shape, total_params=model.params, trainable_params=trainable, frozen_bytes=setup.param_bytes,
        quantized_params=0, quantized_bytes=2.0, trainable_bytes=setup.param_bytes, autocast_copy=0.0,
        grad_bytes=setup.grad_bytes, optimizer_bytes=setup.master_bytes + setup.state_bytes, optimizer_step_temp=0.0,
        world_size=layout.world_size, sequences=sequences, seq_len=seq_len, checkpointing=setup.recompute == "full",
        logits_bytes=setup.logits_bytes, padding_mask=False, attention="fa2", grouped_kv=True,
        method="lora" if setup.lora_rank else "full", optimizer_name=_optimizer_name(args, setup),
        sharding=describe(setup, layout), notes=tuple(notes), megatron=setup, eval_logits=eval_logits,
    )  # fmt: skip


def _cross_entropy(args, bridge: bool, tp: int) -> float:
    """Bytes per logit element at the loss's peak: megatron-bridge's provider fuses the cross-entropy unless told
    not to; mcore_adapter runs its own fused kernel at TP 1 and megatron-core's otherwise."""
    fused = args.get("cross_entropy_loss_fusion")
    if bridge:
        fused = True if fused is None else fused
    if not fused:
        return VOCAB_PARALLEL_CROSS_ENTROPY
    return MCA_FUSED_CROSS_ENTROPY if (not bridge and tp == 1) else FUSED_CROSS_ENTROPY


def _whole(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _precision(args, layout: ParallelLayout, notes: list) -> dict:
    """Bytes of a weight, a gradient and a master weight."""
    if layout.engine == "megatron_bridge":
        mixed = str(args.get("mixed_precision") or "bf16_mixed")
        if "fp8" in mixed or "fp4" in mixed:
            notes.append(f"mixed_precision {mixed}: estimated as bf16_mixed (FP8 weights and caches not modelled)")
        sixteen = "16" in mixed or "fp8" in mixed or "fp4" in mixed
        grads = 2.0 if mixed.startswith("fp16") else 4.0  # megatron-bridge's fp16 recipes reduce in 16 bits
        return {"param_bytes": 2.0 if sixteen else 4.0, "grad_bytes": grads, "master_bytes": 4.0 if sixteen else 0.0}
    sixteen = bool(args.get("bf16") or args.get("fp16"))
    grads = 4.0 if (layout.grads_in_fp32 or not sixteen) else 2.0
    return {"param_bytes": 2.0 if sixteen else 4.0, "grad_bytes": grads, "master_bytes": 4.0 if sixteen else 0.0}


def _recompute(args, layout: ParallelLayout, shape: Shape, notes: list) -> dict:
    granularity, method, layers = layout.recompute_granularity, layout.recompute_method, layout.recompute_num_layers
    modules = ("core_attn",)
    if layout.engine == "mca":
        raw = args.get("recompute_modules")
        if isinstance(raw, str) and raw.strip():
            modules = tuple(m.strip() for m in raw.split(",") if m.strip())
        if args.get("moe_layer_recompute") and granularity != "full":  # TransformerConfig.__post_init__
            granularity, modules = "selective", (*modules, "moe")
    if granularity == "full" and method is None:
        if layout.engine == "megatron_bridge":
            notes.append("megatron-core stops with: ValueError: Using recompute_granularity: full so "
                         "recompute_method must be \"block\" or \"uniform\" (set recompute_method and "
                         "recompute_num_layers); estimated as uniform, 1")  # fmt: skip
        method, layers = "uniform", layers or 1
    if granularity not in ("full", "selective"):
        granularity = None
    return {"recompute": granularity, "recompute_method": "block" if method == "block" else "uniform",
            "recompute_layers": layers or 1, "recompute_modules": modules}  # fmt: skip


def _microbatches(layout: ParallelLayout, batch: int, accumulation: int) -> int:
    """Micro-batches per step on a data-parallel rank: McaTrainer passes gradient_accumulation_steps; megatron-bridge
    divides LLaMA-Factory's global batch (megatron_steps.bridge_global_batch) by micro-batch x data-parallel size."""
    if layout.engine != "megatron_bridge":
        return accumulation
    from ..megatron_steps import bridge_global_batch

    parallel = layout.model_parallel * layout.expert
    global_batch = bridge_global_batch(batch, accumulation, layout.world_size, parallel)
    return max(1, global_batch // (batch * layout.data_parallel))


def _training(args, layout: ParallelLayout, shape: Shape, notes: list) -> dict:
    """What trains: LoRA adapters (megatron-bridge), the Qwen-VL parts mcore_adapter freezes, DPO's reference."""
    method = str(args.get("finetuning_type") or "lora")
    out: dict = {"lora_rank": 0, "frozen": (), "reference": False}
    if layout.engine == "megatron_bridge":
        if method == "lora":
            out["lora_rank"] = int_or(args.get("lora_rank"), 8)
            notes.append("LoRA's activations are counted as full tuning's (the adapters keep the inputs the frozen "
                         "linears no longer need)")  # fmt: skip
        return out
    if method != "full":
        notes.append(f"mcore_adapter's workflow trains every parameter: finetuning_type {method} is not applied")
    frozen = []
    if shape.model_type in QWEN_VL:
        for key, part in (("freeze_vision_tower", "vision"), ("freeze_multi_modal_projector", "projector"),
                          ("freeze_language_model", "language")):  # fmt: skip
            if args.get(key):
                frozen.append(part)
    if shape.vision is not None:
        notes.append("the vision encoder's activations are not counted (its weights are, on the first stage)")
    out["frozen"] = tuple(frozen)
    out["reference"] = args.stage == "dpo" and bool(args.use_ref_model)
    if str(args.get("optimizer") or "adam") == "sgd":
        out["state_bytes"] = 4.0  # one momentum buffer
    fraction = args.get("optimizer_offload_fraction")
    if args.get("optimizer_cpu_offload") and isinstance(fraction, (int, float)) and 0 < fraction <= 1:
        out["offload_fraction"] = float(fraction)  # HybridDeviceOptimizer: that share of the states on the CPU
    return out


def _moe(args, layout: ParallelLayout, shape: Shape) -> dict:
    if shape.moe is None:
        return {}
    dispatcher = args.get("moe_token_dispatcher_type")
    if dispatcher is None:  # megatron-bridge: the provider's (Qwen3 MoE: alltoall), else megatron-core's allgather
        dispatcher = "alltoall" if shape.model_type in ("qwen3_moe", "qwen3_next") else "allgather"
    capacity = args.get("moe_expert_capacity_factor") if "moe_expert_capacity_factor" in args._table else None
    pad = args.get("moe_pad_expert_input_to_capacity") if "moe_pad_expert_input_to_capacity" in args._table else None
    return {"dispatcher": str(dispatcher), "router_bytes": 4 if shape.moe.experts >= 32 else 2,
            "capacity_factor": float(capacity) if isinstance(capacity, (int, float)) and capacity > 0 else None,
            "pad_to_capacity": bool(pad)}  # fmt: skip


def _trainable_total(shape: Shape, total: int, setup: MegatronSetup) -> int:
    """Trainable parameters of the whole model (the adapters of every layer under LoRA)."""
    if not setup.lora_rank and not setup.frozen:
        return total
    from .megatron import lora_parameters

    whole = setup._replace(tensor=1, expert_tensor=1, expert=1)
    if setup.lora_rank:
        return int(sum(sum(lora_parameters(shape, i, whole)) for i in range(shape.layers)))
    vision = shape.vision
    frozen = 0
    if vision is not None:
        frozen += vision.tower if "vision" in setup.frozen else 0
        frozen += vision.merger if "projector" in setup.frozen else 0
    if "language" in setup.frozen:
        frozen += total - (vision.params if vision else 0)
    return total - frozen


def _optimizer_name(args, setup: MegatronSetup) -> str:
    name = str(args.get("optimizer") or "adam") if setup.engine == "mca" else "adam"
    experts = f" (experts over {setup.expert_shard})" if setup.expert_shard != setup.dense_shard else ""
    over = f"distributed over {setup.dense_shard}{experts}"
    where = over if setup.distributed_optimizer else "not distributed (use_distributed_optimizer is off)"
    master = "fp32 master weights + " if setup.master_bytes else ""
    return f"Megatron {name} ({master}{'2 moments' if name == 'adam' else 'momentum'}, {where})"


def describe(s: MegatronSetup, layout: ParallelLayout) -> str:
    """How the processes share the model, in words."""
    engine = "mcore_adapter" if s.engine == "mca" else "megatron-bridge"
    parts = [f"TP {s.tensor}" + (" (sequence parallel)" if s.sequence_parallel else ""), f"PP {s.pipeline}"
             + (f" (VPP {s.virtual})" if s.virtual else ""), f"CP {s.context}"]  # fmt: skip
    experts = f", EP {s.expert}" + (f" x ETP {s.expert_tensor}" if s.expert_tensor != s.tensor else "")
    recompute = {"full": f"full recompute ({s.recompute_method}, {s.recompute_layers} layer(s))",
                 "selective": f"selective recompute ({', '.join(s.recompute_modules)})", None: "no recompute"}  # fmt: skip
    return (f"Megatron-Core via {engine}: {' x '.join(parts)}{experts if s.expert > 1 else ''} on {layout.world_size} "
            f"processes (data-parallel {layout.data_parallel}); {s.grad_bytes * 8:.0f}-bit gradients; "
            f"{recompute[s.recompute]}; {s.microbatches} micro-batch(es) per step")  # fmt: skip
