"""A LLaMA-Factory config as ``MemoryInputs``: what each argument does to the bytes on the GPU.

Facts mirrored here, checked in the code of LLaMA-Factory 0.9.2-0.9.5, PEFT 0.12-0.18,
transformers 4.49-5.6 and DeepSpeed 0.14-0.16.9 (and, where marked, measured on CPU in tests):

* ``model/adapter.py::init_adapter``: trainable parameters are cast to fp32 unless ``pure_bf16``,
  ``use_badam`` or DeepSpeed ZeRO-3 without quantization. PEFT (``autocast_adapter_dtype``) keeps
  LoRA/DoRA adapters in fp32 in every case. Frozen weights stay 16-bit.
* ``_setup_freeze_tuning``: the last ``freeze_trainable_layers`` layers (the first ones when
  negative), whole or by ``freeze_trainable_modules``, plus ``freeze_extra_modules``.
* ``model_utils/misc.py::find_all_linear_modules``: ``lora_target: all`` is every nn.Linear except
  the output head, which includes MoE experts and routers up to transformers 4.57 (5.x fuses them).
* ``model_utils/quantization.py``: NF4 with double quantization by default (4.127 bits per weight);
  embeddings, norms and the output head stay 16-bit; 5.x fused experts are not quantized.
* ``model_utils/checkpointing.py``: gradient checkpointing is on unless disabled, and wraps only
  layers with trainable parameters; ``use_unsloth_gc`` keeps the checkpoints in host memory.
* DeepSpeed (``runtime/engine.py``, ``zero/stage_1_and_2.py``, ``stage3.py``): the module is cast to
  bf16 (or fp16); what its ZeRO optimizer keeps, and when, is in deepspeed.py.
* Data collators (``train/*/workflow.py``): pairwise stages (rm, dpo, orpo, simpo) run chosen and
  rejected in one forward (2 x batch); KTO adds a no-grad KL batch; sft pads to a multiple of 8.
* ``train/trainer_utils.py::create_ref_model``: DPO/KTO with full or freeze tuning load a second
  copy of the model; with LoRA the reference is the model with its adapter disabled.
* ``model_utils/liger_kernel.py``: Liger's fused linear cross-entropy (no logits) only for pt/sft.
"""

from __future__ import annotations

import math
import re
from typing import NamedTuple

from ..launch import Launch, fsdp_loads_on_cpu
from ..versions import Target
from .deepspeed import MASTER_AND_ADAM, largest_parameter, zero3_gathered, zero_layout
from .estimate import GIB, MemoryInputs
from .evaluation import eval_forward, generation_forward, kv_cache_bytes
from .fsdp import fsdp_layout
from .loading import cast_back_peak, fsdp_wrap_peak
from .model import ModelInfo, Shape, fused_experts, layer_params, linears, read_as_text_model
from .vision import VisionTraining, image_patches

# bitsandbytes NF4, blocksize 64, fp32 absmax; double quantization stores the absmax in 8 bits with an
# fp32 constant per 256 blocks (QLoRA paper §3; bitsandbytes functional.quantize_4bit).
NF4_DOUBLE_QUANT = (4 + 8 / 64 + 32 / (64 * 256)) / 8
NF4_PLAIN = (4 + 32 / 64) / 8
INT8 = 1.0
LIGER_MODEL_TYPES = {"gemma", "gemma2", "llama", "mistral", "mixtral", "mllama", "phi3", "qwen2", "qwen2_vl", "qwen2_5_vl",
                     "gemma3", "gemma3_text", "glm4", "granite", "llava", "olmo2", "paligemma", "qwen3", "qwen3_moe"}  # fmt: skip
PAIRWISE = {"rm", "dpo"}


def _int(value: object, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _names(value: object) -> list[str]:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, list):
        return [str(v).strip() for v in value]
    return []


def batch_and_accumulation(args) -> tuple[int, int]:
    """per_device_train_batch_size and gradient_accumulation_steps as the Trainer will use them (defaults for unusable values)."""

    def positive(value, default: int) -> int:
        return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else default

    return positive(args.per_device_train_batch_size, 8), positive(args.gradient_accumulation_steps, 1)


class _Frozen(NamedTuple):
    """Which parts of a vision-language model LLaMA-Factory keeps frozen (``get_forbidden_modules``)."""

    tower: bool
    projector: bool
    language: bool


def _frozen(args) -> _Frozen:
    return _Frozen(args.freeze_vision_tower is not False, args.freeze_multi_modal_projector is not False,
                   bool(args.freeze_language_model))  # fmt: skip


def trainable_parameters(args, shape: Shape, total: int, target: Target) -> tuple[int, int, dict]:
    """(trainable parameters, frozen parameters that a trainable copy duplicates, details)."""
    method = str(args.finetuning_type or "lora")
    if shape.vision is not None and method in ("full", "freeze", "lora", "oft"):
        if read_as_text_model(shape, target.tf):  # nothing is frozen, the projector's linears match by index
            return _composite_trainable(args, shape, total, target, method, _Frozen(False, False, False), True)
        return _composite_trainable(args, shape, total, target, method, _frozen(args), target.lf < (0, 9, 3))
    return _text_trainable(args, shape, total, target, method)


def _composite_trainable(
    args, shape: Shape, total: int, target: Target, method: str, frozen: _Frozen, projector_by_index: bool
) -> tuple[int, int, dict]:
    """A vision-language model: the language model as ``_text_trainable`` counts it, unless frozen, and the parts of
    the vision encoder LLaMA-Factory leaves trainable. Full tuning trains what is not frozen; freeze tuning also
    matches the tower's blocks (and Qwen3-VL's deepstack mergers) by their index (``.{i}.``), and trains the
    projector when it is not frozen (0.9.2: only its linears whose name is a trained index); LoRA targets module
    names that contain a target (``patch_target_modules``)."""
    vision = shape.vision
    language = total - vision.params
    # LLaMA-Factory 0.9.4 does not name Qwen3-VL's position embedding among the tower's keys: it is never frozen
    tower = vision.tower - (vision.positions if target.lf < (0, 9, 5) else 0)
    if method == "full":
        trainable = total - frozen.tower * tower - frozen.projector * vision.merger - frozen.language * language
        blocks = 0 if frozen.tower else vision.blocks
        training = VisionTraining(blocks, 0, stem=not frozen.tower, projector=not frozen.projector, fp32=False)
        return trainable, 0, {"method": "full", "vision": training}
    text = (0, 0, {"method": method}) if frozen.language else _text_trainable(args, shape, language, target, method)
    trainable, copies, details = text
    if method == "freeze":
        modules = _names(args.freeze_trainable_modules) or ["all"]
        indices = _freeze_indices(args, shape.layers)
        trained_blocks = []
        if not frozen.tower:  # ".{i}.{module}" also names block i's module (its linears; norms are negligible)
            per_block = (
                vision.block
                if modules == ["all"]
                else sum(m.params for m in vision.block_linears if m.name.split(".")[0] in modules)
            )
            trained_blocks = [i for i in indices if i < vision.blocks] if per_block else []
            trainable += per_block * len(trained_blocks)
            if modules == ["all"]:
                trainable += vision.deepstack_merger * sum(1 for i in indices if i < vision.deepstack)
        projector = 0
        if not frozen.projector and not projector_by_index:
            projector = vision.merger
        elif not frozen.projector and modules == ["all"]:  # ".{i}." also names the projector's layer i
            projector = sum(m.params for m in vision.merger_linears if _index(m.name) in indices)
        # frozen blocks after the first trained one run without checkpointing, recorded in full
        recorded = vision.blocks - min(trained_blocks, default=vision.blocks) - len(trained_blocks)
        details = dict(details, vision=VisionTraining(len(trained_blocks), recorded, False, projector > 0, False))
        return trainable + projector, copies, details
    # LoRA: LLaMA-Factory turns the targets into every module name that contains one of them
    rank = _int(args.lora_rank, 8)
    targets = _names(args.lora_target) or ["all"]
    if targets == ["all"]:  # find_all_linear_modules: the last name of every linear not frozen (nor the projector)
        modules = linears(shape, fused_experts=fused_experts(shape, target.tf), linear_router=target.tf < (5, 0, 0))
        if not frozen.tower:
            modules += [*vision.block_linears, *(vision.merger_linears if vision.deepstack else ())]
        targets = [m.name.split(".")[-1] for m in modules]

    def adapters(modules: tuple, path: str, count: int) -> int:
        chosen = [m for m in modules if any(t in f"{path}.{m.name}" for t in targets)]
        return count * sum(rank * (m.d_in + m.d_out) + (m.d_out if args.use_dora else 0) for m in chosen)

    tower_adapter = projector_adapter = 0
    if not frozen.tower:
        tower_adapter += adapters(vision.block_linears, "vision.blocks.N", vision.blocks)
        tower_adapter += adapters(vision.merger_linears, "vision.deepstack_merger_list.N", vision.deepstack)
    if not frozen.projector:
        projector_adapter = adapters(vision.merger_linears, "vision.merger", 1)
    vision_adapter = tower_adapter + projector_adapter
    training = VisionTraining(vision.blocks if tower_adapter else 0, 0, False, projector_adapter > 0, False)
    return trainable + vision_adapter, copies, dict(details, adapter=details.get("adapter", 0) + vision_adapter,
                                                    vision=training)  # fmt: skip


def _index(name: str) -> int | None:
    """The number a module is called by (the projector's ``mlp.0``, ``mlp.2``), if it has one."""
    last = name.split(".")[-1]
    return int(last) if last.isdigit() else None


def _qualified(m) -> str:
    """A vision-language model's language model linear, named below its layer (what a LoRA target is matched
    against)."""
    return f"self_attn.{m.name}" if m.name in ("q_proj", "k_proj", "v_proj", "o_proj") else f"mlp.{m.name}"


def _freeze_indices(args, layers: int) -> list[int]:
    """The layers ``_setup_freeze_tuning`` trains: the last ``freeze_trainable_layers`` (the first when negative)."""
    n = _int(args.freeze_trainable_layers, 2)
    count = min(abs(n), layers) if n else 0
    return list(range(layers - count, layers) if n > 0 else range(count))


def _text_trainable(args, shape: Shape, total: int, target: Target, method: str) -> tuple[int, int, dict]:
    dense, sparse = layer_params(shape)
    fused = fused_experts(shape, target.tf)
    if method == "full":
        return total, 0, {"method": "full"}
    if method == "freeze":
        layers = shape.layers
        indices = _freeze_indices(args, layers)
        moe_layers = set(range(layers)) - set(shape.moe.dense_layers) if shape.moe else set()
        modules = _names(args.freeze_trainable_modules) or ["all"]
        per_layer = []
        for index in indices:
            full = sparse if index in moe_layers else dense
            if modules == ["all"]:
                per_layer.append(full)
            else:
                per_layer.append(_module_share(shape, modules, full, index in moe_layers))
        trainable = sum(per_layer)
        if shape.moe is not None and not fused and modules == ["all"]:
            # LLaMA-Factory selects parameters by the substring ".{index}.", which also matches expert `index`
            # of every other MoE layer (transformers 4.x keeps experts as numbered nn.Linear modules)
            expert = 3 * shape.hidden * shape.moe.expert_intermediate
            picked = [i for i in indices if i < shape.moe.experts]
            quirk = [layer for layer in moe_layers if layer not in indices] if picked else []
            trainable += expert * len(quirk) * len(picked)
            with_trainable = sorted(set(indices) | set(quirk))
        else:
            with_trainable = indices
        extra = _names(args.freeze_extra_modules)
        if "embed_tokens" in extra or "wte" in extra:
            trainable += shape.vocab * shape.hidden
        if "lm_head" in extra and not shape.tied:
            trainable += shape.vocab * shape.hidden
        first = min(indices, default=layers)
        after = [i for i in range(first, layers) if i not in with_trainable]  # frozen, but gradients flow through them
        return trainable, 0, {"method": "freeze", "checkpointed": len(with_trainable), "recorded": len(after)}
    # lora (and oft, counted the same way: a small adapter on the targeted linears)
    rank = _int(args.lora_rank, 8)
    targets = _names(args.lora_target) or ["all"]
    modules = linears(shape, fused_experts=fused, linear_router=target.tf < (5, 0, 0))
    if shape.vision is not None:  # LLaMA-Factory matches a composite model's module names by substring
        chosen = [m for m in modules if targets == ["all"] or any(t in _qualified(m) for t in targets)]
    else:
        chosen = modules if targets == ["all"] else [m for m in modules if m.name in targets]
    moe_layers = shape.layers - (len(shape.moe.dense_layers) if shape.moe else shape.layers)
    adapter = 0
    for m in chosen:
        per = rank * (m.d_in + m.d_out) + (m.d_out if args.use_dora else 0)
        layers = moe_layers if m.expert else shape.layers
        adapter += per * m.per_layer * layers
    copies = 0
    extra = _names(args.additional_target)
    if args.resize_vocab and not extra:
        extra = ["embed_tokens", "lm_head"]
    if "embed_tokens" in extra:
        copies += shape.vocab * shape.hidden
    if "lm_head" in extra:
        copies += shape.vocab * shape.hidden
    share = sum(m.d_in for m in chosen if not m.expert) / max(1, sum(m.d_in for m in modules if not m.expert))
    return adapter + copies, copies, {"method": method, "adapter": adapter, "copies": copies, "target_share": share}


def _module_share(shape: Shape, modules: list[str], full: int, moe: bool) -> int:
    """Parameters of one layer's named sub-modules (self_attn / mlp), for freeze_trainable_modules."""
    h, a, kv, d = shape.hidden, shape.heads, shape.kv_heads, shape.head_dim
    attention = h * a * d + 2 * h * kv * d + a * d * h
    attention += (a * d + 2 * kv * d if shape.qkv_bias else 0) + (2 * d if shape.qk_norm else 0)
    mlp = full - attention - shape.norms_per_layer * h
    total = 0
    for name in modules:
        if "attn" in name or "attention" in name:
            total += attention
        elif "mlp" in name or "feed_forward" in name or "experts" in name:
            total += mlp
    return total or full


def sequences_per_microbatch(stage: str, args, batch: int) -> tuple[int, int]:
    """(sequences whose activations are kept for backward, sequences whose logits are alive at the peak)."""
    if stage in PAIRWISE:
        return 2 * batch, 2 * batch
    if stage == "kto":
        return batch, 2 * batch  # the KL batch is forwarded without gradients
    return batch, batch


def sequence_length(args, target: Target, stage: str) -> int:
    """Tokens per sequence of the longest micro-batch: cutoff_len (rounded to a multiple of 8 where the
    collator pads so: RM, DPO and KTO always, SFT only with do_train (0.9.2-0.9.5 ``train/*/workflow.py``);
    0.9.2 packs SFT rows of cutoff_len + 1)."""
    cutoff = _int(args.cutoff_len, 2048)
    if stage == "pt":
        return cutoff
    if args.packing and target.llamafactory == "0.9.2":
        return math.ceil((cutoff + 1) / 8) * 8
    rounded = stage in ("rm", "dpo", "kto") or (stage == "sft" and args.trains)
    return math.ceil(cutoff / 8) * 8 if rounded else cutoff


def optimizer_bytes(optim: str, param_bytes: float, args) -> tuple[float, float, bool, str]:
    """(state bytes per trainable param, step temporary per param, states are paged, description)."""
    if args.use_badam:
        return 2 * param_bytes, 0.0, False, "BAdam (states of the active block only)"
    if args.use_adam_mini:
        return param_bytes + 0.01, 0.0, False, "Adam-mini (one second moment per block)"
    if args.use_muon:
        return param_bytes, 0.0, False, "Muon (one momentum buffer)"
    if "8bit" in optim:
        return 2 + 8 / 256, 0.0, optim.startswith("paged"), optim
    if optim.startswith("paged_adamw") or optim.startswith("paged_lion"):
        per = 4 if "lion" in optim else 8
        return per, 0.0, True, optim
    if optim in ("sgd",):
        return 0.0, 0.0, False, "SGD without momentum"
    if optim.startswith("adafactor"):
        return 0.05, 0.0, False, "Adafactor (factored second moments)"
    if "lion" in optim:
        return param_bytes, 0.0, False, optim
    temp = param_bytes if optim in ("adamw_torch", "adamw_hf", "adamw_torch_npu_fused") else 0.0
    return 2 * param_bytes, temp, False, optim


def low_rank_state_bytes(args, shape: Shape, trainable: int, target: Target, param_bytes: float) -> float | None:
    """GaLore / APOLLO (``train/trainer_utils.py::_create_galore_optimizer``): the targeted linear weights keep
    Adam states for their gradient projected to rank r (2 x r x min(m, n)) plus the projector (r x max(m, n));
    every other trainable parameter keeps full Adam states. Bytes per trainable parameter, on average."""
    if not (args.use_galore or args.use_apollo):
        return None
    rank = _int(args.galore_rank if args.use_galore else args.apollo_rank, 16)
    targets = _names(args.galore_target if args.use_galore else args.apollo_target) or ["all"]
    modules = linears(shape, fused_experts=fused_experts(shape, target.tf))
    chosen = (
        modules if targets in (["all"], ["mlp", "attn"], ["attn", "mlp"]) else [m for m in modules if m.name in targets]
    )
    moe_layers = shape.layers - (len(shape.moe.dense_layers) if shape.moe else shape.layers)
    projected = full = 0
    for m in chosen:
        count = m.per_layer * (moe_layers if m.expert else shape.layers)
        projected += count * rank * (2 * min(m.d_in, m.d_out) + max(m.d_in, m.d_out))
        full += count * m.d_in * m.d_out
    rest = max(0, trainable - full)
    return (4 * projected + 2 * param_bytes * rest) / max(1, trainable)


def _largest_trainable(shape: Shape, method: str, copies: int, target: Target) -> int:
    """Elements of the largest trainable tensor (DeepSpeed's gradient norm copies each one to float64)."""
    if method == "full" or copies:
        return largest_parameter(shape, fused_experts=fused_experts(shape, target.tf))
    if method == "freeze":
        return shape.hidden * max(shape.intermediate, shape.hidden)
    return 0  # adapters: far smaller than the flattened partition


def _load_peak(
    args,
    shape: Shape,
    target: Target,
    launch: Launch,
    deepspeed_below_zero3: bool,
    fsdp: bool,
    *,
    method: str,
    total: int,
    trainable: int,
    quantized: int,
    quant_bytes: float,
    reference: float,
    largest_cast: int,
) -> float:
    """Bytes on one GPU at the peak of loading (loading.py), when the whole model is loaded onto every GPU before
    DeepSpeed ZeRO-0/1/2 or FSDP shrinks it; 0 when loading cannot be the peak."""
    if not (deepspeed_below_zero3 or fsdp) or args.low_cpu_mem_usage is False:
        return 0.0  # without low_cpu_mem_usage LLaMA-Factory gives no device_map: the model loads on the CPU
    if fsdp and fsdp_loads_on_cpu(args, launch, target.tf):
        return 0.0
    cast = not (args.pure_bf16 or args.use_badam)  # init_adapter (ZeRO-3 is not here)
    trainable_bytes = 4.0 if cast else 2.0
    loaded = (total - trainable - quantized) * 2.0 + quantized * quant_bytes + trainable * trainable_bytes + reference
    peak = cast_back_peak(loaded, largest_cast) if cast else loaded
    if deepspeed_below_zero3:  # 16-bit weights are what ZeRO-0/1/2 keeps: only a cast of the model itself counts
        return peak if cast and method in ("full", "freeze") else 0.0
    units: list[float] = []
    if "auto_wrap" in args.fsdp_options:
        if shape.vision is not None:
            units += [shape.vision.block * 2.0] * shape.vision.blocks
        dense, sparse = layer_params(shape)
        layer_bytes = trainable_bytes if method == "full" else quant_bytes if quantized else 2.0
        adapters = trainable_bytes * trainable / shape.layers if method in ("lora", "oft") else 0.0
        for i in range(shape.layers):
            moe_layer = shape.moe is not None and i not in shape.moe.dense_layers
            units.append((sparse if moe_layer else dense) * layer_bytes + adapters)
    units.append(max(0.0, loaded - sum(units)))  # the root: what no wrapped unit holds
    return max(peak, fsdp_wrap_peak(loaded, units, launch.world_size))


def _sharding(world: int, zero: int | None, fsdp: list[str], offload_optimizer: bool, offload_params: bool) -> str:
    processes = f"{world} process{'es' if world > 1 else ''}"
    offloaded = [name for name, on in (("optimizer", offload_optimizer), ("parameters", offload_params)) if on]
    where = f", {' and '.join(offloaded)} offloaded to the CPU" if offloaded else ""
    if zero is not None:
        return f"DeepSpeed ZeRO-{zero} over {processes}{where}"
    if fsdp:
        return f"FSDP {' '.join(fsdp)} over {processes}{where}"
    return f"none: each of {processes} holds the whole model" if world > 1 else "none (one process)"


def build_inputs(
    args,
    model: ModelInfo,
    target: Target,
    world_size: int,
    deepspeed,
    images: int | None = None,
    launch: Launch | None = None,
) -> MemoryInputs:
    """``images``: the most images one training example carries, when the data was read; ``launch`` how the
    processes start (by default ``world_size`` processes under torchrun)."""
    shape = model.shape
    stage = args.stage
    total = model.params
    trainable, copies, detail = trainable_parameters(args, shape, total, target)
    method = detail["method"]
    quant_bits = args.quantization_bit if isinstance(args.quantization_bit, int) else None
    zero = deepspeed.zero_stage if deepspeed is not None and deepspeed.zero_stage is not None else None
    fsdp_with = args.fsdp_options if zero is None else []
    fsdp = bool(fsdp_with) and "no_shard" not in fsdp_with
    pure = bool(args.pure_bf16)
    amp = bool(args.bf16 or args.fp16) and not pure
    notes = []

    # frozen and quantized weights
    quantized = 0
    quant_bytes = 2.0
    prequantized = re.search(r"gptq|awq|int4|4bit|bnb-4bit", str(args.model_name_or_path or ""), re.IGNORECASE)
    if quant_bits is None and prequantized:
        quant_bits = 4  # a checkpoint stored in 4 bits (GPTQ/AWQ: about 4.25 bits with group scales)
        notes.append(
            f"the checkpoint name says it is stored in 4 bits ({prequantized.group(0)}): counted at 4.25 bits per weight"
        )
    if quant_bits in (4, 8):
        # bitsandbytes replaces every nn.Linear but the output head (transformers integrations/bitsandbytes.py),
        # a vision tower's too; fused experts are not nn.Linear
        modules = linears(shape, fused_experts=fused_experts(shape, target.tf), linear_router=target.tf < (5, 0, 0))
        moe_layers = shape.layers - len(shape.moe.dense_layers) if shape.moe else 0
        quantized = sum(m.d_in * m.d_out * m.per_layer * (moe_layers if m.expert else shape.layers) for m in modules)
        if shape.vision is not None:
            v = shape.vision
            quantized += sum(m.d_in * m.d_out for m in v.block_linears) * v.blocks
            quantized += sum(m.d_in * m.d_out for m in v.merger_linears) * (v.deepstack + 1)
        quantized = min(quantized, total - trainable)
        quant_bytes = (NF4_DOUBLE_QUANT if args.double_quantization else NF4_PLAIN) if quant_bits == 4 else INT8
        if prequantized and not isinstance(args.quantization_bit, int):
            quant_bytes = (4 + 32 / 128) / 8
        notes.append(
            f"{quant_bits}-bit base weights ({quant_bytes * 8:.2f} bits each); embeddings, norms and the output head stay 16-bit"
        )

    # the trainable parameters: dtype, gradients, optimizer
    deepspeed_engine = zero is not None
    adapters_fp32 = method in ("lora", "oft") and not deepspeed_engine
    upcast_embedding = False  # an fp32 embedding makes the residual stream between layers fp32
    if deepspeed_engine:
        trainable_bytes, grad_bytes, state = 2.0, 2.0, MASTER_AND_ADAM  # zero_layout below has the rest
        step_temp, paged, optim_name = 0.0, False, "DeepSpeed fp32 master + Adam"
    else:
        upcast = not (pure or args.use_badam or (zero == 3 and quant_bits is None))
        trainable_bytes = 4.0 if (upcast or adapters_fp32) else 2.0
        if copies and not upcast:
            notes.append(
                "LoRA adapters stay fp32 (PEFT autocast_adapter_dtype); modules_to_save copies follow pure_bf16"
            )
        grad_bytes = trainable_bytes
        upcast_embedding = upcast and (method == "full" or "embed_tokens" in _names(args.freeze_extra_modules))
        optim = str(args.optim or "adamw_torch")
        state, step_temp, paged, optim_name = optimizer_bytes(optim, trainable_bytes, args)
        low_rank = low_rank_state_bytes(args, shape, trainable, target, trainable_bytes)
        if low_rank is not None:
            state, step_temp = low_rank, 0.0
            optim_name = f"{'GaLore' if args.use_galore else 'APOLLO'} ({optim}, rank {_int(args.galore_rank if args.use_galore else args.apollo_rank, 16)})"
            if args.galore_layerwise if args.use_galore else args.apollo_layerwise:
                grad_bytes = 0.0  # layer-wise updates free each gradient in backward
    # under FSDP autocast meets the 16-bit parameters FSDP gathers: nothing to cast
    autocast_copy = 2.0 if (amp and not deepspeed_engine and not fsdp and trainable_bytes == 4.0) else 0.0
    # autocast caches copies of matmul weights only: not the embedding lookup, unless the output head shares it
    if autocast_copy and method == "full" and not shape.tied:
        autocast_copy *= (trainable - shape.vocab * shape.hidden) / max(1, trainable)
    if args.use_badam:
        block = layer_params(shape)[0]
        notes.append("BAdam updates one layer at a time: gradients and optimizer states for that block only")
        trainable_for_state = block
    else:
        trainable_for_state = trainable

    # activations
    batch = batch_and_accumulation(args)[0]
    kept_sequences, logit_sequences = sequences_per_microbatch(stage, args, batch)
    seq = sequence_length(args, target, stage)
    vision = detail.get("vision")
    if vision is not None and (vision.blocks or vision.stem or vision.projector):
        patches, basis = image_patches(args.image_max_pixels, shape.vision, seq, images)
        vision = vision._replace(patches=kept_sequences * patches,
                                 fp32=method in ("full", "freeze") and trainable_bytes == 4.0)  # fmt: skip
        part = "tower" if vision.blocks or vision.stem else "projector"
        if not shape.vision.patches_per_token:
            notes.append(f"the vision {part} trains: its activations for each image are not counted (images' "
                         "tokens are, within cutoff_len)")  # fmt: skip
        else:
            notes.append(f"the vision {part} trains: its activations are counted for {vision.patches:,} image "
                         f"patches per micro-batch ({basis})")  # fmt: skip
    flash = str(args.flash_attn or "auto")
    attention = {"fa2": "fa2", "disabled": "eager", "eager": "eager"}.get(flash, "sdpa")
    if shape.model_type == "gemma2" and flash in ("auto", "fa2"):
        attention = "fa2" if flash == "fa2" else "eager"
        if flash == "auto":
            notes.append("Gemma 2 runs eager attention unless FlashAttention-2 is installed (flash_attn: fa2)")
    if args.torch_compile:
        notes.append("torch_compile is not modelled: compiled graphs keep their own set of activations (more or fewer)")
    padded = not args.packing
    grouped = attention == "fa2" or (attention == "sdpa" and not padded and target.tf >= (4, 57, 0))
    checkpointing = not args.disable_gradient_checkpointing
    checkpointed = None
    full_layers = 0
    if method == "freeze" and checkpointing:
        # only layers with trainable parameters are checkpointed; frozen layers after them are recorded in full
        checkpointed, full_layers = detail["checkpointed"], detail["recorded"]
    liger = bool(args.enable_liger_kernel) and stage in ("pt", "sft") and shape.model_type in LIGER_MODEL_TYPES
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

    # a second model
    reference, reference_bytes = 0, 2.0
    if (
        stage in ("dpo", "kto")
        and (stage == "kto" or args.use_ref_model)
        and (method in ("full", "freeze") or args.ref_model)
    ):
        reference = total
        if args.ref_model and isinstance(args.ref_model_quantization_bit, int):
            reference_bytes = NF4_DOUBLE_QUANT if args.ref_model_quantization_bit == 4 else INT8
        notes.append("a reference model (a second copy of the weights) for DPO/KTO")
    generation = 0.0
    if stage == "ppo":
        if str(args.reward_model_type or "lora") == "full":
            reference += total
            notes.append("PPO: a full reward model")
        if method in ("full", "freeze"):
            reference += total
        max_new = _int(args.max_new_tokens, 1024)
        generation = kv_cache_bytes(shape, batch, seq + max_new)
        notes.append(f"PPO rollouts: KV cache of {batch} x {seq + max_new} tokens")

    # buffers
    bucket = backward = step = 0.0
    gathered = None
    offload = deepspeed.offloads("optimizer") if deepspeed_engine else False
    if deepspeed_engine:
        section = (deepspeed.config or {}).get("zero_optimization") or {}
        # the optimizer is the Trainer's (args.optim) unless the DeepSpeed config names one (DeepSpeed's fused Adam)
        fused = "optimizer" in (deepspeed.config or {})
        temp = 0.0 if fused else optimizer_bytes(str(args.optim or "adamw_torch"), 4.0, args)[1]
        layout = zero_layout(section, stage=zero, world=world_size, trainable=trainable_for_state,
                             largest=_largest_trainable(shape, method, copies, target), hidden=shape.hidden,
                             accumulation=batch_and_accumulation(args)[1], optimizer_temp=temp,
                             fp16=bool(args.fp16) and not args.bf16, offload_optimizer=offload)  # fmt: skip
        grad_bytes, state = layout.grad_bytes, layout.optimizer_bytes
        bucket, backward, step = layout.bucket_bytes, layout.backward_bytes, layout.step_bytes
        if zero == 3:
            backward += zero3_gathered(shape, section, checkpointing=not args.disable_gradient_checkpointing,
                                       fused_experts=fused_experts(shape, target.tf),
                                       layer_bytes=quant_bytes if quantized else 2.0)  # fmt: skip
    elif fsdp:
        if "offload" in fsdp_with:
            grad_bytes = 0.0  # sharded gradients go to host memory with the parameters
        extra = _names(args.freeze_extra_modules) if method == "freeze" else []
        root_trains = method == "full" or bool(copies) or bool({"embed_tokens", "lm_head"} & set(extra))
        config = args.fsdp_config if isinstance(args.fsdp_config, dict) else {}
        if isinstance(args.fsdp_config, str):
            notes.append("fsdp_config is a file lf-lint does not read: FSDP's defaults assumed (no backward prefetch)")
        if str(config.get("version", 1)) == "2":
            notes.append("FSDP2 (version 2) is estimated as FSDP1, which lf-lint measured")
        gathered = fsdp_layout(shape, options=fsdp_with, config=config, world=world_size,
                               trainable_layers=method in ("full", "freeze"), trainable_root=root_trains,
                               trainable_head=root_trains, gathered_bytes=2.0 if (amp or pure) else 4.0,
                               grad_bytes=grad_bytes, layer_bytes=quant_bytes if quantized else None)  # fmt: skip
        backward = gathered.backward_bytes
    elif fsdp_with:
        notes.append("FSDP no_shard is counted as plain data parallel")
    dequant = shape.hidden * max(shape.intermediate, shape.hidden) * 2 if quant_bits else 0.0

    loading = 0.0
    if args.trains:  # for inference LLaMA-Factory casts nothing: the loaded 16-bit weights are what stays
        loading = _load_peak(args, shape, target, launch or Launch(world_size, 1, "option"),
                             deepspeed_engine and zero < 3, fsdp, method=method, total=total, trainable=trainable,
                             quantized=quantized, quant_bytes=quant_bytes, reference=reference * reference_bytes,
                             largest_cast=_largest_trainable(shape, method, copies, target))  # fmt: skip
    if loading:
        how = "before DeepSpeed casts it back" if deepspeed_engine else "before FSDP shards it"
        notes.append(f"while the model loads: {loading / GIB:.1f} GiB per GPU (the whole model on every GPU, the "
                     f"trainable weights cast to fp32 by LLaMA-Factory, {how})")  # fmt: skip
    evaluation = None
    evaluates = str(args.eval_strategy or "no") != "no" or args.do_eval or args.do_predict
    if evaluates and stage != "ppo":
        eval_batch = _int(args.per_device_eval_batch_size, 8)
        head = shape.vocab * shape.hidden * 2  # 16-bit, gathered while the logits are computed
        gathered = head * (1 if shape.tied else 2) if fsdp else head if zero == 3 else 0.0
        # a padded batch's mask: bool for SDPA from transformers 4.57, else in the 16-bit dtype; none with FA2
        mask_bytes = 0 if attention == "fa2" else 1 if attention == "sdpa" and target.tf >= (4, 57, 0) else 2
        if args.predict_with_generate and stage == "sft":  # no labels: generation, no loss
            # prompts of different lengths always pad the batch: SDPA gets a mask, and so copies the KV heads
            evaluation = generation_forward(shape, sequences=eval_batch * max(1, _int(args.num_beams, 1)),
                                            prompt_len=seq, max_new_tokens=_int(args.max_new_tokens, 1024),
                                            mask_bytes=mask_bytes, repeats_kv=attention != "fa2",
                                            eager=attention == "eager")  # fmt: skip
        else:
            evaluation = eval_forward(shape, stage="dpo-noref" if stage == "dpo" and not args.use_ref_model else stage,
                                      eval_batch=eval_batch, seq_len=seq, gathered=gathered,
                                      mask_bytes=mask_bytes if padded or attention == "eager" else 0,  # eager: causal
                                      eager=attention == "eager")  # fmt: skip
    lora_share = 0.12 * detail.get("target_share", 0.0) if method in ("lora", "oft") else 0.0
    offload_params = deepspeed.offloads("param") if deepspeed_engine and zero == 3 else False
    if fsdp and "offload" in fsdp_with:
        offload = offload_params = True
    inputs = MemoryInputs(
        sharding=_sharding(world_size, zero, fsdp_with, offload, offload_params),
        shape=shape,
        total_params=total,
        trainable_params=trainable_for_state,
        frozen_bytes=2.0,
        quantized_params=quantized,
        quantized_bytes=quant_bytes,
        trainable_bytes=trainable_bytes,
        autocast_copy=autocast_copy,
        grad_bytes=grad_bytes,
        optimizer_bytes=state,
        optimizer_step_temp=step_temp,
        offloadable_optimizer=paged,
        world_size=world_size,
        zero_stage=zero or 0,
        fsdp=fsdp,
        offload_optimizer=offload,
        offload_params=offload_params,
        reference_params=reference,
        reference_bytes=reference_bytes,
        sequences=kept_sequences,
        seq_len=seq,
        checkpointing=checkpointing,
        checkpointed_layers=checkpointed,
        full_layers=full_layers,
        residual_bytes=4 if upcast_embedding and not pure else 2,
        attention=attention,
        grouped_kv=grouped,
        padding_mask=padded and attention == "sdpa",
        mask_bytes=1 if target.tf >= (4, 57, 0) else 2,
        logits_bytes=logits_bytes,
        logits_sequences=logit_sequences,
        lora_activation_share=lora_share,
        offload_checkpoints=bool(args.use_unsloth_gc) or unsloth,
        ddp_gradient_buckets=not deepspeed_engine and not fsdp,
        bucket_bytes=bucket,
        backward_bytes=backward,
        step_bytes=step,
        unit_bytes=gathered.unit_bytes if gathered else 0.0,
        gradients_rebuilt=gathered is not None,
        late_backward_bytes=gathered.late_bytes if gathered else None,
        end_backward_bytes=gathered.end_bytes if gathered else 0.0,
        dequant_bytes=dequant,
        vision=vision,
        generation_bytes=generation,
        load_bytes=loading,
        eval_logits=evaluation.logits if evaluation else 0.0,
        eval_activations=evaluation.activations if evaluation else 0.0,
        method=method,
        optimizer_name=optim_name,
        notes=tuple(notes),
    )
    return inputs if args.trains else _not_training(inputs)


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
