"""The shape of the model being fine-tuned, and its parameter counts.

A shape comes from, in order: a local ``config.json`` (``model_name_or_path`` as a folder, or
the Hugging Face cache), the built-in catalogue of popular families (lf_lint/data/models.json,
matched by hub id), the size in the name ("Qwen2.5-7B" -> 7B, low confidence) or ``--params``.
Counts follow the Hugging Face modelling code: q/k/v/o projections (biases for Qwen2, q/k norms
for Qwen3 and Gemma 3), a gated MLP (gate/up/down) or a mixture of experts, RMSNorm weights
(LayerNorm weight+bias), the embedding and, unless tied, the output head. Qwen2-VL, Qwen2.5-VL, Qwen3-VL
(and its MoE) and Gemma 3 add a vision tower and a projector (``Vision``), counted as their transformers
modelling code builds them (4.49-5.6, checked in tests against the real models).
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

from ..datafiles import read_json
from ..hub_cache import snapshot


class Moe(NamedTuple):
    experts: int
    top_k: int
    expert_intermediate: int
    shared_intermediate: int = 0  # Qwen2-MoE shared expert
    shared_gate: bool = False
    dense_layers: tuple[int, ...] = ()  # layers with a plain MLP (mlp_only_layers, first_k_dense, sparse step)


class Linear(NamedTuple):
    """One kind of nn.Linear in a decoder layer (name as the module is called, LoRA's suffix match)."""

    name: str
    d_in: int
    d_out: int
    per_layer: int  # how many such modules a layer holds (experts)
    bias: bool = False
    expert: bool = False  # inside an MoE expert (or its router)

    @property
    def params(self) -> int:
        return self.per_layer * (self.d_in * self.d_out + (self.d_out if self.bias else 0))


class Vision(NamedTuple):
    """A vision-language model's vision encoder as LLaMA-Factory splits it (``model_utils/visual.py``,
    ``COMPOSITE_MODELS``, 0.9.5): the tower (``vision_model_keys``: patch and position embeddings, the numbered
    blocks, Qwen3-VL's numbered deepstack mergers) and the projector (``projector_keys``: the merger)."""

    model_type: str  # the composite model's: qwen2_vl, qwen2_5_vl, qwen3_vl, qwen3_vl_moe, gemma3
    stem: int  # patch embedding (and position embedding)
    positions: int  # Qwen3-VL's learned position embedding (a tower key from LLaMA-Factory 0.9.5)
    blocks: int
    block: int  # parameters of one block
    block_linears: tuple[
        Linear, ...
    ]  # named below the block ("attn.qkv", "mlp.fc1"): LoRA and freeze tuning match these
    deepstack: int  # Qwen3-VL's mergers fed by intermediate blocks (numbered 0.., like the blocks)
    deepstack_merger: int
    merger: int  # the projector
    merger_linears: tuple[Linear, ...]  # a merger's linears, named below it (the deepstack mergers have the same)
    text_type: str | None = None  # the model_type config.json's text_config names, if it names one
    # what the activations of a trained tower depend on (vision.patch_bytes)
    width: int = 0  # a block's hidden size
    inner: int = 0  # its MLP's intermediate size
    patch_values: int = 0  # pixel values per patch (channels x temporal patch x patch x patch)
    patches_per_token: int = 0  # patches merged into one image token of the language model (0: not modelled)
    token_pixels: int = 0  # pixels along the side of one image token (patch size x spatial merge)
    patches_per_image: int = 0  # a fixed image size's patches (Gemma 3); 0 where images keep their aspect

    @property
    def tower(self) -> int:
        return self.stem + self.blocks * self.block + self.deepstack * self.deepstack_merger

    @property
    def params(self) -> int:
        return self.tower + self.merger


class Shape(NamedTuple):
    """What memory and FLOPs depend on (Hugging Face config.json terms)."""

    model_type: str
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    tied: bool = False
    qkv_bias: bool = False
    qk_norm: bool = False
    norms_per_layer: int = 2
    norm_bias: bool = False
    gated: bool = True
    moe: Moe | None = None
    vision: Vision | None = None


class ModelInfo(NamedTuple):
    """A shape and where it came from (``source``), or only a parameter count when no shape is known."""

    name: str
    shape: Shape | None
    params: int  # total parameters
    source: str  # how the shape or count was found, in words
    confidence: str  # "high" (config.json), "medium"/"high" (catalogue), "low" (name or --params)
    published: str | None = None


# Module names by model_type: the attention and MLP projections as modeling_<type>.py names them.
_NAMES = {
    "phi3": ("qkv_proj", "o_proj", "gate_up_proj", "down_proj"),
    "internlm2": ("wqkv", "wo", "w1,w3", "w2"),
    "baichuan": ("W_pack", "o_proj", "gate_proj,up_proj", "down_proj"),
    "chatglm": ("query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"),
    "glm4": ("q_proj,k_proj,v_proj", "o_proj", "gate_up_proj", "down_proj"),
}
_DEFAULT_NAMES = ("q_proj,k_proj,v_proj", "o_proj", "gate_proj,up_proj", "down_proj")
_EXPERT_NAMES = {"mixtral": ("w1", "w3", "w2")}


def read_as_text_model(shape: Shape, tf: tuple) -> bool:
    """transformers 4.57's Qwen2-VL and Qwen2.5-VL configs hand every attribute their text config holds to it
    (``__getattribute__``, 4.57.0-4.57.6 only). A text_config that names its own model_type, as 4.57 saves it,
    then makes the model's ``model_type`` read ``qwen2_vl_text`` / ``qwen2_5_vl_text``, and LLaMA-Factory does
    not treat the checkpoint as a vision-language model (nothing in the vision encoder is frozen)."""
    vision = shape.vision
    return (
        vision is not None
        and vision.text_type is not None
        and vision.model_type in ("qwen2_vl", "qwen2_5_vl")
        and tuple(tf[:2]) == (4, 57)
    )


# Decoder layers whose parameters sit in exactly these children (measured through LLaMA-Factory's loader)
_LAYER_CHILDREN = {"llama": (), "qwen2": (), "qwen3": (), "phi3": (), "qwen2_moe": (), "qwen3_moe": (), "mixtral": (),
                   "gemma2": ("pre_feedforward_layernorm", "post_feedforward_layernorm"),
                   "gemma3": ("pre_feedforward_layernorm", "post_feedforward_layernorm")}  # fmt: skip
# A vision encoder's names: (what its numbered blocks and mergers add to a layer's children, what it adds outside
# the layers). Qwen2-VL's projector is an nn.Sequential whose ``mlp.0`` adds "weight" and "bias".
_VISION_NAMES = {
    "qwen2_vl": ({"attn", "mlp", "norm1", "norm2", "weight", "bias"}, {"ln_q", "proj"}),
    "qwen2_5_vl": ({"attn", "mlp", "norm1", "norm2", "weight", "bias"}, {"ln_q", "proj"}),
    "qwen3_vl": ({"attn", "mlp", "norm1", "norm2", "norm", "linear_fc1", "linear_fc2"},
                 {"linear_fc1", "linear_fc2", "norm", "pos_embed", "proj"}),
    "qwen3_vl_moe": ({"attn", "mlp", "norm1", "norm2", "norm", "linear_fc1", "linear_fc2"},
                     {"linear_fc1", "linear_fc2", "norm", "pos_embed", "proj"}),
    "gemma3": ({"self_attn", "mlp", "layer_norm1", "layer_norm2"},
               {"mm_soft_emb_norm", "multi_modal_projector", "patch_embedding", "position_embedding", "post_layernorm"}),
}  # fmt: skip


def freeze_module_names(shape: Shape, tf: tuple) -> tuple[set[str], set[str]] | None:
    """The names freeze tuning accepts (``_setup_freeze_tuning``, LLaMA-Factory 0.9.2-0.9.5): what follows a
    ``.0.`` (or ``.1.``) in a parameter's name for ``freeze_trainable_modules`` (a decoder layer's children, an
    MoE layer's expert linears while they are nn.Linear, a vision encoder's block children), and the module that
    holds an unnumbered parameter for ``freeze_extra_modules`` (embeddings, final norm, an untied output head, a
    vision encoder's stem and projector). None where the layout is not known exactly."""
    text_type = _TEXT_MODEL_AS.get(shape.model_type, shape.model_type) if shape.vision else shape.model_type
    if text_type not in _LAYER_CHILDREN or (shape.vision is not None and shape.vision.model_type not in _VISION_NAMES):
        return None
    block = "block_sparse_moe" if text_type == "mixtral" and tf < (5, 0, 0) else "mlp"  # renamed in transformers 5
    hidden = {"self_attn", block, "input_layernorm", "post_attention_layernorm", *_LAYER_CHILDREN[text_type]}
    if shape.moe is not None and not fused_experts(shape, tf):
        hidden |= {m.name for m in linears(shape) if m.expert and m.name != "gate"}  # an expert's own linears
    outside = {"embed_tokens", "norm"} | (set() if shape.tied else {"lm_head"})
    if shape.vision is not None:
        block_names, stem_names = _VISION_NAMES[shape.vision.model_type]
        hidden, outside = hidden | block_names, outside | stem_names
    return hidden, outside


# MoE models whose transformers 4.x code already keeps the experts as 3-D parameters, with an nn.Linear router
_FUSED_BEFORE_5 = {"qwen3_vl_moe"}


def fused_experts(shape: Shape, tf: tuple) -> bool:
    """Whether the MoE experts are 3-D parameters rather than nn.Linear modules (transformers 5.x fuses them all)."""
    return tf >= (5, 0, 0) or shape.model_type in _FUSED_BEFORE_5


def linears(shape: Shape, fused_experts: bool = False, linear_router: bool | None = None) -> list[Linear]:
    """The nn.Linear modules of one decoder layer. ``fused_experts``: transformers 5.x keeps MoE experts as
    3-D parameters (not nn.Linear: LoRA's ``all`` and bitsandbytes skip them); its routers are not nn.Linear
    either, while the 4.x models in ``_FUSED_BEFORE_5`` keep an nn.Linear router (``linear_router``)."""
    h, a, kv, d = shape.hidden, shape.heads, shape.kv_heads, shape.head_dim
    qkv, o, up, down = _NAMES.get(shape.model_type, _DEFAULT_NAMES)
    out: list[Linear] = []
    qkv_names = qkv.split(",")
    if len(qkv_names) == 3:
        out += [Linear(qkv_names[0], h, a * d, 1, shape.qkv_bias), Linear(qkv_names[1], h, kv * d, 1, shape.qkv_bias),
                Linear(qkv_names[2], h, kv * d, 1, shape.qkv_bias)]  # fmt: skip
    else:
        out.append(Linear(qkv, h, (a + 2 * kv) * d, 1, shape.qkv_bias))
    out.append(Linear(o, a * d, h, 1))
    width = shape.moe.expert_intermediate if shape.moe else shape.intermediate
    up_names = up.split(",") if shape.gated else up.split(",")[-1:]
    if shape.moe is None:
        if len(up_names) == 1 and shape.gated:
            out.append(Linear(up_names[0], h, 2 * width, 1))  # fused gate_up
        else:
            out += [Linear(n, h, width, 1) for n in up_names]
        out.append(Linear(down, width, h, 1))
        return out
    moe = shape.moe
    if not fused_experts:
        gate_name, up_name, down_name = _EXPERT_NAMES.get(shape.model_type, ("gate_proj", "up_proj", "down_proj"))
        out += [Linear(gate_name, h, width, moe.experts, expert=True), Linear(up_name, h, width, moe.experts, expert=True),
                Linear(down_name, width, h, moe.experts, expert=True), Linear("gate", h, moe.experts, 1, expert=True)]  # fmt: skip
    elif linear_router:
        out.append(Linear("gate", h, moe.experts, 1, expert=True))
    if moe.shared_intermediate:
        out += [Linear("gate_proj", h, moe.shared_intermediate, 1), Linear("up_proj", h, moe.shared_intermediate, 1),
                Linear("down_proj", moe.shared_intermediate, h, 1)]  # fmt: skip
        if moe.shared_gate:
            out.append(Linear("shared_expert_gate", h, 1, 1))
    return out


def layer_params(shape: Shape) -> tuple[int, int]:
    """(parameters of a dense layer, parameters of an MoE layer) including norms and biases."""
    h, a, kv, d = shape.hidden, shape.heads, shape.kv_heads, shape.head_dim
    attention = h * a * d + 2 * h * kv * d + a * d * h
    if shape.qkv_bias:
        attention += a * d + 2 * kv * d
    if shape.qk_norm:
        attention += 2 * d
    norms = shape.norms_per_layer * h * (2 if shape.norm_bias else 1)
    mlp = (3 if shape.gated else 2) * h * shape.intermediate
    dense = attention + mlp + norms
    if shape.moe is None:
        return dense, dense
    moe = shape.moe
    experts = moe.experts * 3 * h * moe.expert_intermediate + h * moe.experts
    if moe.shared_intermediate:
        experts += 3 * h * moe.shared_intermediate + (h if moe.shared_gate else 0)
    return dense, attention + experts + norms


def count_params(shape: Shape) -> int:
    dense, sparse = layer_params(shape)
    moe_layers = 0 if shape.moe is None else shape.layers - len(shape.moe.dense_layers)
    layers = dense * (shape.layers - moe_layers) + sparse * moe_layers
    embedding = shape.vocab * shape.hidden
    head = 0 if shape.tied else embedding
    final_norm = shape.hidden * (2 if shape.norm_bias else 1)
    return layers + embedding + head + final_norm + (shape.vision.params if shape.vision else 0)


def active_params(shape: Shape) -> int:
    """Parameters a text token goes through (MoE: top-k experts; not a vision encoder), for FLOPs."""
    language = count_params(shape) - (shape.vision.params if shape.vision else 0)
    if shape.moe is None:
        return language
    moe = shape.moe
    unused = (moe.experts - moe.top_k) * 3 * shape.hidden * moe.expert_intermediate
    return language - unused * (shape.layers - len(moe.dense_layers))


# --- where shapes come from -----------------------------------------------------------------


def _vision_from_config(model_type: str, v: dict, text_hidden: int, tokens_per_image: int = 256) -> Vision | None:
    """The vision encoder of a Qwen-VL or Gemma 3 config.json's ``vision_config`` (defaults: transformers' config
    classes; Gemma 3 pools each image into ``mm_tokens_per_image`` tokens)."""

    def linear(name: str, d_in: int, d_out: int) -> Linear:
        return Linear(name, d_in, d_out, 1, bias=True)

    if model_type == "gemma3":  # SigLIP: LayerNorms, biased q/k/v/out and fc1/fc2; no pooling head
        width, depth, patch = v.get("hidden_size", 1152), v.get("num_hidden_layers", 27), v.get("patch_size", 14)
        inner, patches = v.get("intermediate_size", 4304), (v.get("image_size", 896) // patch) ** 2
        block_linears = (*(linear(f"self_attn.{n}", width, width) for n in ("q_proj", "k_proj", "v_proj", "out_proj")),
                         linear("mlp.fc1", width, inner), linear("mlp.fc2", inner, width))  # fmt: skip
        return Vision(
            model_type=model_type,
            stem=v.get("num_channels", 3) * patch * patch * width + width + patches * width + 2 * width,
            positions=0,
            blocks=depth,
            block=4 * width + sum(m.params for m in block_linears),
            block_linears=block_linears,
            deepstack=0,
            deepstack_merger=0,
            merger=width * text_hidden + width,  # a projection matrix (not an nn.Linear) and an RMSNorm
            merger_linears=(),
            width=width,
            inner=inner,
            patch_values=v.get("num_channels", 3) * patch * patch,
            patches_per_token=max(1, patches // max(1, tokens_per_image)),
            patches_per_image=patches,
        )
    qwen3 = model_type in ("qwen3_vl", "qwen3_vl_moe")
    if model_type == "qwen2_vl":  # LayerNorm; fc1/fc2 MLP of mlp_ratio; the merger (mlp.0, mlp.2) into hidden_size
        width, depth, patch, out = v.get("embed_dim", 1280), v.get("depth", 32), v.get("patch_size", 14), v.get("hidden_size", 3584)  # fmt: skip
        inner = int(width * v.get("mlp_ratio", 4))
        mlp, norm = [linear("mlp.fc1", width, inner), linear("mlp.fc2", inner, width)], 2 * width
    elif model_type == "qwen2_5_vl":  # RMSNorm; a gated MLP with biases
        width, depth, patch, out = v.get("hidden_size", 3584), v.get("depth", 32), v.get("patch_size", 14), v.get("out_hidden_size", 3584)  # fmt: skip
        inner = v.get("intermediate_size", 3420)
        mlp = [
            linear("mlp.gate_proj", width, inner),
            linear("mlp.up_proj", width, inner),
            linear("mlp.down_proj", inner, width),
        ]
        norm = width
    elif qwen3:  # LayerNorm; a patch embedding bias, learned positions, deepstack mergers
        width, depth, patch, out = v.get("hidden_size", 1152), v.get("depth", 27), v.get("patch_size", 16), v.get("out_hidden_size", 3584)  # fmt: skip
        inner = v.get("intermediate_size", 4304)
        mlp, norm = [linear("mlp.linear_fc1", width, inner), linear("mlp.linear_fc2", inner, width)], 2 * width
    else:
        return None
    channels, temporal, merge = v.get("in_channels", v.get("in_chans", 3)), v.get("temporal_patch_size", 2), v.get("spatial_merge_size", 2)  # fmt: skip
    positions = v.get("num_position_embeddings", 2304) * width if qwen3 else 0
    block_linears = (linear("attn.qkv", width, 3 * width), linear("attn.proj", width, width), *mlp)
    merged = merge * merge * width  # the merger's input: spatial_merge_size^2 patches side by side
    names = ("linear_fc1", "linear_fc2") if qwen3 else ("mlp.0", "mlp.2")
    merger_linears = (linear(names[0], merged, merged), linear(names[1], merged, out))
    return Vision(
        model_type=model_type,
        stem=channels * temporal * patch * patch * width + (width if qwen3 else 0) + positions,
        positions=positions,
        blocks=depth,
        block=2 * norm + sum(m.params for m in block_linears),
        block_linears=block_linears,
        deepstack=len(v.get("deepstack_visual_indexes", [8, 16, 24])) if qwen3 else 0,
        deepstack_merger=2 * merged + sum(m.params for m in merger_linears),  # its LayerNorm is after the merge
        merger=norm + sum(m.params for m in merger_linears),
        merger_linears=merger_linears,
        width=width,
        inner=inner,
        patch_values=channels * temporal * patch * patch,
        patches_per_token=merge * merge,
        token_pixels=patch * merge,
    )


# The language model of a vision-language model behaves as this text-only type (biases, q/k norms, MoE layout).
_TEXT_MODEL_AS = {"qwen2_vl": "qwen2", "qwen2_vl_text": "qwen2", "qwen2_5_vl": "qwen2", "qwen2_5_vl_text": "qwen2",
                  "qwen3_vl": "qwen3", "qwen3_vl_text": "qwen3", "qwen3_vl_moe": "qwen3_moe", "qwen3_vl_moe_text": "qwen3_moe"}  # fmt: skip


def shape_from_config(config: dict) -> Shape:
    """A Shape from a Hugging Face config.json (composite models: their ``text_config``)."""
    cfg = config.get("text_config") if isinstance(config.get("text_config"), dict) else config
    vision_config = config.get("vision_config")
    vision = None
    if isinstance(vision_config, dict):
        text_hidden = int(cfg.get("hidden_size") or 0)
        tokens_per_image = int(config.get("mm_tokens_per_image") or 256)
        vision = _vision_from_config(str(config.get("model_type")), vision_config, text_hidden, tokens_per_image)
        if vision is not None and cfg is not config and cfg.get("model_type"):
            vision = vision._replace(text_type=str(cfg["model_type"]))
    text_type = str(cfg.get("model_type") or config.get("model_type") or "")
    model_type = _TEXT_MODEL_AS.get(text_type, text_type)  # for the language model's layout below

    def first(*names, default=None):
        for name in names:
            if cfg.get(name) is not None:
                return cfg[name]
        return default

    hidden = int(first("hidden_size", "n_embd", "d_model"))
    heads = int(first("num_attention_heads", "n_head"))
    layers = int(first("num_hidden_layers", "num_layers", "n_layer"))
    kv = int(first("num_key_value_heads", "multi_query_group_num", default=heads))
    if model_type == "chatglm" and not cfg.get("multi_query_attention", True):
        kv = heads
    head_dim = int(first("head_dim", "kv_channels", default=hidden // heads))
    intermediate = int(first("intermediate_size", "ffn_hidden_size", "n_inner", default=4 * hidden))
    if model_type == "qwen":
        intermediate //= 2  # Qwen (v1) remote code: each of w1 and w2 is intermediate_size / 2 wide
    vocab = int(first("vocab_size", "padded_vocab_size"))
    if model_type == "chatglm" and cfg.get("padded_vocab_size"):
        vocab = int(cfg["padded_vocab_size"])
    tied = bool(
        first("tie_word_embeddings", default=config.get("tie_word_embeddings", _TIED_BY_DEFAULT.get(model_type, False)))
    )
    bias = bool(first("attention_bias", "add_qkv_bias", default=model_type in ("qwen", "qwen2", "qwen2_moe")))
    experts = first("num_experts", "num_local_experts", "n_routed_experts")
    moe = None
    if experts:
        sparse_step = int(first("decoder_sparse_step", default=1) or 1)
        only = set(first("mlp_only_layers", default=[]) or [])
        first_dense = int(first("first_k_dense_replace", default=0) or 0)
        dense_layers = tuple(i for i in range(layers) if i in only or i < first_dense or (i + 1) % sparse_step)
        moe = Moe(
            experts=int(experts),
            top_k=int(first("num_experts_per_tok", default=2)),
            expert_intermediate=int(first("moe_intermediate_size", default=intermediate)),
            shared_intermediate=int(first("shared_expert_intermediate_size", default=0) or 0),
            shared_gate=model_type == "qwen2_moe",
            dense_layers=dense_layers,
        )
    return Shape(
        model_type=vision.model_type if vision else text_type,
        hidden=hidden,
        layers=layers,
        heads=heads,
        kv_heads=kv,
        head_dim=head_dim,
        intermediate=intermediate,
        vocab=vocab,
        tied=tied,
        qkv_bias=bias,
        qk_norm=model_type in ("qwen3", "qwen3_moe", "gemma3", "gemma3_text", "olmo2"),
        norm_bias=model_type in ("phi3small", "gpt_neox", "phi", "falcon", "stablelm"),
        norms_per_layer=1
        if model_type == "phi"
        else 4
        if model_type in ("gemma2", "gemma3", "gemma3_text", "glm4")
        else 2,
        gated=model_type not in ("phi", "gpt_neox", "falcon", "gpt2", "starcoder2"),
        moe=moe,
        vision=vision,
    )


# PretrainedConfig defaults tie_word_embeddings to True; these classes override it.
_TIED_BY_DEFAULT = {"falcon": True, "gemma": True, "gemma2": True, "gemma3": True, "gemma3_text": True, "llama": False, "mistral": False,
                    "mixtral": False, "qwen2": False, "qwen3": False, "qwen2_moe": False, "qwen3_moe": False, "phi3": False}  # fmt: skip


def _catalogue_shape(entry: dict) -> Shape:
    moe = entry.get("moe")
    if moe:
        layers = entry["num_hidden_layers"]
        step = moe.get("decoder_sparse_step") or 1
        only = set(moe.get("mlp_only_layers") or [])
        first_dense = moe.get("first_k_dense") or 0
        moe = Moe(
            experts=moe["num_experts"],
            top_k=moe["num_experts_per_tok"],
            expert_intermediate=moe["moe_intermediate_size"],
            shared_intermediate=moe.get("shared_expert_intermediate_size") or 0,
            shared_gate=bool(moe.get("shared_expert_gate")),
            dense_layers=tuple(i for i in range(layers) if i in only or i < first_dense or (i + 1) % step),
        )
    vision = entry.get("vision")
    if vision is not None:  # a vision-language model: its language model's fields, and its vision_config
        vision = _vision_from_config(vision["model_type"], vision["config"], entry["hidden_size"])
    return Shape(
        model_type=vision.model_type if vision else entry["model_type"],
        hidden=entry["hidden_size"],
        layers=entry["num_hidden_layers"],
        heads=entry["num_attention_heads"],
        kv_heads=entry["num_key_value_heads"],
        head_dim=entry.get("head_dim") or entry["hidden_size"] // entry["num_attention_heads"],
        intermediate=entry["intermediate_size"],
        vocab=entry["vocab_size"],
        tied=entry["tie_word_embeddings"],
        qkv_bias=entry["attention_bias"],
        qk_norm=entry["qk_norm"],
        norms_per_layer=entry["norms_per_layer"],
        norm_bias=entry["norm_bias"],
        gated=entry["gated_mlp"],
        moe=moe,
        vision=vision,
    )


@lru_cache(maxsize=1)
def catalogue() -> dict[str, dict]:
    """Catalogue entries by lower-cased hub id (and by the id's last part, e.g. ``qwen2.5-7b-instruct``)."""
    data = read_json("models.json")
    by_id: dict[str, dict] = {}
    for entry in data["models"]:
        for hub_id in entry["hub_ids"] + entry.get("hub_ids_unverified", []):
            by_id.setdefault(hub_id.lower(), entry)
            by_id.setdefault(hub_id.lower().split("/")[-1], entry)
    return by_id


def hf_cache_config(model_id: str, env: dict | None = None) -> Path | None:
    """config.json of ``model_id`` in the local Hugging Face hub cache, if it was downloaded before."""
    found = snapshot("models", model_id, env)
    return found / "config.json" if found is not None and (found / "config.json").is_file() else None


_QUANT_SUFFIX = re.compile(r"[-_.](gptq|awq|gguf|int4|int8|bnb-4bit|4bit|8bit|fp8)([-_.].*)?$")
_SIZE = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)\s*([bm])(?![a-z])", re.IGNORECASE)


def find_model(
    name: str | None, workdir: Path, params: float | None = None, env: dict | None = None
) -> ModelInfo | None:
    """The shape of ``model_name_or_path`` as far as lf-lint can know it without a download."""
    if not name:
        return _given(params, "(no model_name_or_path)") if params else None
    local = Path(name).expanduser()
    if not local.is_absolute():
        local = workdir / local
    config_path = local / "config.json" if local.is_dir() else None
    if config_path is None or not config_path.is_file():
        config_path = hf_cache_config(name, env)
    if config_path is not None and config_path.is_file():
        try:
            config = json.loads(config_path.read_text(encoding="utf-8"))
            shape = shape_from_config(config)
        except (OSError, ValueError, TypeError, KeyError):
            pass  # an unreadable config: fall back to the catalogue
        else:
            if isinstance(config.get("vision_config"), dict) and shape.vision is None:
                return ModelInfo(name, shape, count_params(shape), f"config.json at {config_path}; the language model "
                                 f"only: the vision encoder of {config.get('model_type')} is not counted", "medium")  # fmt: skip
            return ModelInfo(name, shape, count_params(shape), f"config.json at {config_path}", "high")
    base = _QUANT_SUFFIX.sub("", name.lower().rstrip("/").split("/")[-1])  # a quantized upload of a catalogued model
    entry = (
        catalogue().get(name.lower())
        or catalogue().get(name.lower().rstrip("/").split("/")[-1])
        or catalogue().get(base)
    )
    if entry is not None:
        shape = _catalogue_shape(entry)
        published = (entry.get("published_params") or {}).get("value")
        return ModelInfo(
            name,
            shape,
            count_params(shape),
            f"built-in catalogue ({entry['family']}, {entry['key']})",
            entry["confidence"],
            published,
        )
    if params:
        return _given(params, name)
    match = _SIZE.search(name.split("/")[-1].replace("x", " x "))
    if match and not re.search(r"\d+\s*x\s*\d", name.lower()):
        value = float(match.group(1)) * (1e9 if match.group(2).lower() == "b" else 1e6)
        nearest = _nearest_shape(value)
        return ModelInfo(
            name, nearest, int(value), f"the size in the name ({match.group(0)}); layer shape of a similar model", "low"
        )
    return None


def _given(params: float, name: str) -> ModelInfo:
    return ModelInfo(
        name, _nearest_shape(params), int(params), f"--params {params / 1e9:g}B; layer shape of a similar model", "low"
    )


def _nearest_shape(params: float) -> Shape:
    """The dense catalogue model closest in size, scaled: a stand-in for activations when only a count is known."""
    best = None
    for entry in {id(e): e for e in catalogue().values()}.values():
        if entry.get("moe") or entry["confidence"] != "high":
            continue
        shape = _catalogue_shape(entry)
        gap = abs(count_params(shape) - params)
        if best is None or gap < best[0]:
            best = (gap, shape)
    return best[1]
