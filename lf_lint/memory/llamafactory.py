"""What each LLaMA-Factory argument does to the bytes on the GPU (inputs.py puts them together as ``MemoryInputs``).

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
from typing import NamedTuple

from ..versions import Target, parse_version
from .deepspeed import largest_parameter
from .model import Shape, fused_experts, layer_params_at, linears, module_count, read_as_text_model
from .vision import VisionTraining

# bitsandbytes NF4, blocksize 64, fp32 absmax; double quantization stores the absmax in 8 bits with an
# fp32 constant per 256 blocks (QLoRA paper §3; bitsandbytes functional.quantize_4bit).
NF4_DOUBLE_QUANT = (4 + 8 / 64 + 32 / (64 * 256)) / 8
NF4_PLAIN = (4 + 32 / 64) / 8
INT8 = 1.0
# model/model_utils/liger_kernel.py::apply_liger_kernel: the model types each release patches (others get "Current
# model does not support liger kernel." and keep their logits), as (first release, types it adds); gpt_oss needs a
# liger-kernel that has apply_liger_kernel_to_gpt_oss (0.8.5 on PyPI does).
_LIGER_ADDED = (
    ("0.9.2", ("gemma", "gemma2", "llama", "mistral", "mixtral", "mllama", "phi3", "qwen2", "qwen2_vl", "qwen2_5_vl")),
    ("0.9.3", ("gemma3", "gemma3_text", "glm4", "granite", "llava", "olmo2", "paligemma", "qwen3", "qwen3_moe")),
    ("0.9.4", ("glm4v", "gpt_oss")),
    ("0.9.5", ("glm", "qwen3_next", "qwen3_5")),
    ("0.9.6.dev0", ("qwen3_5_moe",)),
)


def liger_model_types(llamafactory: tuple) -> frozenset[str]:
    """The model types whose losses ``enable_liger_kernel`` fuses in the LLaMA-Factory release ``llamafactory``."""
    return frozenset(t for first, types in _LIGER_ADDED if parse_version(first) <= llamafactory for t in types)
PAIRWISE = {"rm", "dpo"}


def int_or(value: object, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def name_list(value: object) -> list[str]:
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
        frozen = _frozen(args)
        result = _composite_trainable(args, shape, total, target, method, frozen, target.lf < (0, 9, 3))
        return _through_frozen_language(result, shape.layers) if frozen.language else result
    return _text_trainable(args, shape, total, target, method)


def _through_frozen_language(result: tuple[int, int, dict], layers: int) -> tuple[int, int, dict]:
    """A frozen language model's layers have nothing to train: LLaMA-Factory checkpoints none of them
    (``model_utils/checkpointing.py`` wraps only modules with trainable parameters), and autograd records each in
    full when a part of the vision encoder below them trains (``checkpointed``/``recorded`` as freeze tuning's)."""
    trainable, copies, details = result
    vision = details.get("vision")
    below = vision is not None and bool(vision.blocks or vision.stem or vision.projector)
    return trainable, copies, dict(details, checkpointed=0, recorded=layers if below else 0)


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
        modules = name_list(args.freeze_trainable_modules) or ["all"]
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
    rank = int_or(args.lora_rank, 8)
    targets = name_list(args.lora_target) or ["all"]
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
    if m.parent:
        return f"{m.parent}.{m.name}"
    return f"self_attn.{m.name}" if m.name in ("q_proj", "k_proj", "v_proj", "o_proj") else f"mlp.{m.name}"


def _freeze_indices(args, layers: int) -> list[int]:
    """The layers ``_setup_freeze_tuning`` trains: the last ``freeze_trainable_layers`` (the first when negative)."""
    n = int_or(args.freeze_trainable_layers, 2)
    count = min(abs(n), layers) if n else 0
    return list(range(layers - count, layers) if n > 0 else range(count))


def _text_trainable(args, shape: Shape, total: int, target: Target, method: str) -> tuple[int, int, dict]:
    fused = fused_experts(shape, target.tf)
    if method == "full":
        return total, 0, {"method": "full"}
    if method == "freeze":
        layers = shape.layers
        indices = _freeze_indices(args, layers)
        moe_layers = set(range(layers)) - set(shape.moe.dense_layers) if shape.moe else set()
        modules = name_list(args.freeze_trainable_modules) or ["all"]
        per_layer = []
        for index in indices:
            full = layer_params_at(shape, index)  # its attention or other token mixer, its MLP or MoE
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
        extra = name_list(args.freeze_extra_modules)
        if "embed_tokens" in extra or "wte" in extra:
            trainable += shape.vocab * shape.hidden
        if "lm_head" in extra and not shape.tied:
            trainable += shape.vocab * shape.hidden
        first = min(indices, default=layers)
        after = [i for i in range(first, layers) if i not in with_trainable]  # frozen, but gradients flow through them
        return trainable, 0, {"method": "freeze", "checkpointed": len(with_trainable), "recorded": len(after)}
    # lora (and oft, counted the same way: a small adapter on the targeted linears)
    rank = int_or(args.lora_rank, 8)
    targets = name_list(args.lora_target) or ["all"]
    modules = linears(shape, fused_experts=fused, linear_router=target.tf < (5, 0, 0))
    if shape.vision is not None:  # LLaMA-Factory matches a composite model's module names by substring
        chosen = [m for m in modules if targets == ["all"] or any(t in _qualified(m) for t in targets)]
    else:
        chosen = modules if targets == ["all"] else [m for m in modules if m.name in targets]
    adapter = 0
    for m in chosen:
        per = rank * (m.d_in + m.d_out) + (m.d_out if args.use_dora else 0)
        adapter += per * module_count(shape, m)
    copies = 0
    extra = name_list(args.additional_target)
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
    cutoff = int_or(args.cutoff_len, 2048)
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
    rank = int_or(args.galore_rank if args.use_galore else args.apollo_rank, 16)
    targets = name_list(args.galore_target if args.use_galore else args.apollo_target) or ["all"]
    modules = linears(shape, fused_experts=fused_experts(shape, target.tf))
    chosen = (
        modules if targets in (["all"], ["mlp", "attn"], ["attn", "mlp"]) else [m for m in modules if m.name in targets]
    )
    projected = full = 0
    for m in chosen:
        count = module_count(shape, m)
        projected += count * rank * (2 * min(m.d_in, m.d_out) + max(m.d_in, m.d_out))
        full += count * m.d_in * m.d_out
    rest = max(0, trainable - full)
    return (4 * projected + 2 * param_bytes * rest) / max(1, trainable)


def largest_trainable(shape: Shape, method: str, copies: int, target: Target) -> int:
    """Elements of the largest trainable tensor (DeepSpeed's gradient norm copies each one to float64)."""
    if method == "full" or copies:
        return largest_parameter(shape, fused_experts=fused_experts(shape, target.tf))
    if method == "freeze":
        return shape.hidden * max(shape.intermediate, shape.hidden)
    return 0  # adapters: far smaller than the flattened partition
