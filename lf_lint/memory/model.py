"""The shape of the model being fine-tuned, and its parameter counts.

A shape comes from, in order: a local ``config.json`` (``model_name_or_path`` as a folder, or
the Hugging Face cache), the built-in catalogue of popular families (lf_lint/data/models.json,
matched by hub id), the size in the name ("Qwen2.5-7B" -> 7B, low confidence) or ``--params``; the last two
with a stand-in shape of no family (``_stand_in``), so that no family's notes or behaviour apply to them.
Counts follow the Hugging Face modelling code: q/k/v/o projections (biases for Qwen2, q/k norms
for Qwen3 and Gemma 3), a gated MLP (gate/up/down) or a mixture of experts, RMSNorm weights
(LayerNorm weight+bias), the embedding and, unless tied, the output head. Qwen2-VL, Qwen2.5-VL, Qwen3-VL
(and its MoE) and Gemma 3 add a vision tower and a projector (``Vision``), counted as their transformers
modelling code builds them (4.49-5.6, checked in tests against the real models).

Some families run another token mixer in part of their layers (``Mixer``): Qwen3-Next and Qwen3.5 a Gated
DeltaNet (linear attention) in three layers of four, Gemma 4 a wider attention with shared keys and values in
its full-attention layers. Their parameters and linears are counted layer by layer as transformers 5.x builds
them (``modeling_qwen3_next.py``, ``modeling_qwen3_5*.py``, ``modeling_gemma4.py``); activations, measured on
softmax attention, are estimated as the shape's own attention for every layer (``ModelInfo.source`` says so).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from ..catalogue import catalogue, catalogue_entry, without_shape
from ..hub_cache import snapshot
from ..patterns import LazyPattern
from ..records import Record


class Moe(Record):
    experts: int
    top_k: int
    expert_intermediate: int
    shared_intermediate: int = 0  # Qwen2-MoE shared expert
    shared_gate: bool = False
    dense_layers: tuple[int, ...] = ()  # layers with a plain MLP (mlp_only_layers, first_k_dense, sparse step)
    router_extra: int = 0  # a router's parameters beside its projection (Gemma 4: a scale per hidden unit and expert)


class Linear(Record):
    """One kind of nn.Linear in a decoder layer (name as the module is called, LoRA's suffix match)."""

    name: str
    d_in: int
    d_out: int
    per_layer: int  # how many such modules a layer holds (experts)
    bias: bool = False
    expert: bool = False  # inside an MoE expert (or its router)
    layers: int | None = None  # decoder layers that hold it, where not all of them (or all MoE layers) do
    parent: str = ""  # the layer's child that holds it, where not self_attn (q/k/v/o) or mlp: "linear_attn"

    @property
    def params(self) -> int:
        return self.per_layer * (self.d_in * self.d_out + (self.d_out if self.bias else 0))


class Mixer(Record):
    """The token mixer of some decoder layers, where it is not the shape's own attention: a Gated DeltaNet
    (``linear_attention``: Qwen3-Next, Qwen3.5) or attention of another width (``attention``: Gemma 4's
    full-attention layers, with a 512-wide head and keys that serve as values)."""

    kind: str  # "linear_attention" or "attention"
    layers: tuple[int, ...]  # the decoder layers that run it
    linears: tuple[Linear, ...]  # its nn.Linear modules
    other: int = 0  # its parameters outside them (q/k norms; a convolution, decay and step biases, a gated norm)
    kv_heads: int = 0  # attention: the key/value heads and their width, for the KV cache
    head_dim: int = 0

    @property
    def params(self) -> int:
        return sum(m.params for m in self.linears) + self.other


class Vision(Record):
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


class Shape(Record):
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
    attn_output_gate: bool = False  # q_proj also projects a gate for the attention output (Qwen3-Next, Qwen3.5)
    mixers: tuple[Mixer, ...] = ()  # other token mixers in some layers (their layers skip the attention above)


class ModelInfo(Record):
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


# Routers that stay an nn.Linear when transformers 5.x fuses the experts, by model_type: (name, the child holding it)
_LINEAR_ROUTERS = {"gemma4": ("proj", "router"), "gemma4_text": ("proj", "router")}


def linears(
    shape: Shape, fused_experts: bool = False, linear_router: bool | None = None, layer: int | None = None
) -> list[Linear]:
    """The nn.Linear modules of the decoder layers: every kind (a module that only some layers hold says how many,
    ``Linear.layers``; ``module_count`` counts them), or with ``layer`` the attention (or other token mixer) of
    that layer beside the MLP's or MoE's modules. ``fused_experts``: transformers 5.x keeps MoE experts as
    3-D parameters (not nn.Linear: LoRA's ``all`` and bitsandbytes skip them); its routers are not nn.Linear
    either (but Gemma 4's), while the 4.x models in ``_FUSED_BEFORE_5`` keep an nn.Linear router (``linear_router``)."""
    h, a, kv, d = shape.hidden, shape.heads, shape.kv_heads, shape.head_dim
    qkv, o, up, down = _NAMES.get(shape.model_type, _DEFAULT_NAMES)
    out: list[Linear] = []
    mixed = {i for mixer in shape.mixers for i in mixer.layers}
    attention_layers = shape.layers - len(mixed)
    if (layer is None and attention_layers) or (layer is not None and layer not in mixed):
        held = attention_layers if mixed and layer is None else None
        q = a * d * (2 if shape.attn_output_gate else 1)  # the output gate doubles the query projection
        qkv_names = qkv.split(",")
        if len(qkv_names) == 3:
            out += [Linear(qkv_names[0], h, q, 1, shape.qkv_bias, layers=held),
                    Linear(qkv_names[1], h, kv * d, 1, shape.qkv_bias, layers=held),
                    Linear(qkv_names[2], h, kv * d, 1, shape.qkv_bias, layers=held)]  # fmt: skip
        else:
            out.append(Linear(qkv, h, q + 2 * kv * d, 1, shape.qkv_bias, layers=held))
        out.append(Linear(o, a * d, h, 1, layers=held))
    for mixer in shape.mixers:
        if layer is None:
            out += mixer.linears
        elif layer in mixer.layers:
            out += [m._replace(layers=None) for m in mixer.linears]
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
    router, router_parent = _LINEAR_ROUTERS.get(shape.model_type, ("gate", ""))
    if not fused_experts:
        gate_name, up_name, down_name = _EXPERT_NAMES.get(shape.model_type, ("gate_proj", "up_proj", "down_proj"))
        out += [Linear(gate_name, h, width, moe.experts, expert=True), Linear(up_name, h, width, moe.experts, expert=True),
                Linear(down_name, width, h, moe.experts, expert=True)]  # fmt: skip
    if not fused_experts or linear_router or shape.model_type in _LINEAR_ROUTERS:
        out.append(Linear(router, h, moe.experts, 1, expert=True, parent=router_parent))
    if moe.shared_intermediate:
        out += [Linear("gate_proj", h, moe.shared_intermediate, 1), Linear("up_proj", h, moe.shared_intermediate, 1),
                Linear("down_proj", moe.shared_intermediate, h, 1)]  # fmt: skip
        if moe.shared_gate:
            out.append(Linear("shared_expert_gate", h, 1, 1))
    return out


def module_count(shape: Shape, m: Linear) -> int:
    """How many modules like ``m`` (one of ``linears(shape)``) the language model holds."""
    if m.layers is not None:
        return m.per_layer * m.layers
    moe_layers = shape.layers - len(shape.moe.dense_layers) if shape.moe else 0
    return m.per_layer * (moe_layers if m.expert else shape.layers)


def attention_params(shape: Shape) -> int:
    """Parameters of one layer's own attention (q/k/v/o with their biases, the output gate, q/k norms)."""
    h, a, kv, d = shape.hidden, shape.heads, shape.kv_heads, shape.head_dim
    q = a * d * (2 if shape.attn_output_gate else 1)
    attention = h * q + 2 * h * kv * d + a * d * h
    if shape.qkv_bias:
        attention += q + 2 * kv * d
    if shape.qk_norm:
        attention += 2 * d
    return attention


def layer_params(shape: Shape) -> tuple[int, int]:
    """(parameters of a dense layer, parameters of an MoE layer) including norms and biases, for layers that run
    the shape's own attention (``layer_params_at``: any layer)."""
    h = shape.hidden
    attention = attention_params(shape)
    norms = shape.norms_per_layer * h * (2 if shape.norm_bias else 1)
    mlp = (3 if shape.gated else 2) * h * shape.intermediate
    dense = attention + mlp + norms
    if shape.moe is None:
        return dense, dense
    moe = shape.moe
    experts = moe.experts * 3 * h * moe.expert_intermediate + h * moe.experts + moe.router_extra
    if moe.shared_intermediate:
        experts += 3 * h * moe.shared_intermediate + (h if moe.shared_gate else 0)
    return dense, attention + experts + norms


def layer_params_at(shape: Shape, index: int) -> int:
    """Parameters of decoder layer ``index``: its attention or other token mixer, its MLP or MoE, its norms."""
    dense, sparse = layer_params(shape)
    params = sparse if shape.moe is not None and index not in shape.moe.dense_layers else dense
    for mixer in shape.mixers:
        if index in mixer.layers:
            return params - attention_params(shape) + mixer.params
    return params


def kv_widths(shape: Shape) -> tuple[int, int]:
    """(key elements per token summed over the layers, the most of one layer): what a KV cache keeps of each
    token, keys and values alike. A Gated DeltaNet layer keeps a fixed-size state instead."""
    own = shape.kv_heads * shape.head_dim
    total, widest = (shape.layers - sum(len(m.layers) for m in shape.mixers)) * own, own
    for mixer in shape.mixers:
        if mixer.kind == "attention":
            total += len(mixer.layers) * mixer.kv_heads * mixer.head_dim
            widest = max(widest, mixer.kv_heads * mixer.head_dim)
    return total, widest


def count_params(shape: Shape) -> int:
    if shape.mixers:
        layers = sum(layer_params_at(shape, i) for i in range(shape.layers))
    else:
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
    """The vision encoder of a Qwen-VL, Qwen3.5, Gemma 3 or Gemma 4 config.json's ``vision_config`` (defaults:
    transformers' config classes; Gemma 3 pools each image into ``mm_tokens_per_image`` tokens)."""

    def linear(name: str, d_in: int, d_out: int) -> Linear:
        return Linear(name, d_in, d_out, 1, bias=True)

    if model_type == "gemma4":  # RMSNorms, unbiased q/k/v/o (nn.Linear inside a clippable wrapper), a gated MLP
        width, depth, patch = v.get("hidden_size", 768), v.get("num_hidden_layers", 16), v.get("patch_size", 16)
        heads, head_dim = v.get("num_attention_heads", 12), v.get("head_dim", 64)
        kv, inner = v.get("num_key_value_heads", 12), v.get("intermediate_size", 3072)
        block_linears = tuple(
            Linear(f"{name}.linear", d_in, d_out, 1)
            for name, d_in, d_out in (("self_attn.q_proj", width, heads * head_dim), ("self_attn.k_proj", width, kv * head_dim),
                                      ("self_attn.v_proj", width, kv * head_dim), ("self_attn.o_proj", heads * head_dim, width),
                                      ("mlp.gate_proj", width, inner), ("mlp.up_proj", width, inner), ("mlp.down_proj", inner, width))
        )  # fmt: skip
        projection = Linear("embedding_projection", width, text_hidden, 1)  # the projector (model.embed_vision)
        return Vision(
            model_type=model_type,
            # the patch projection (no bias) and a learned table of x and y positions
            stem=3 * patch * patch * width + 2 * v.get("position_embedding_size", 10240) * width,
            positions=0,
            blocks=depth,
            block=4 * width + 2 * head_dim + sum(m.params for m in block_linears),  # 4 norms, q/k norms (v's unscaled)
            block_linears=block_linears,
            deepstack=0,
            deepstack_merger=0,
            merger=projection.params,  # its pre-projection RMSNorm has no weight
            merger_linears=(projection,),
            width=width,
            inner=inner,
            patch_values=3 * patch * patch,
            patches_per_token=0,  # its activations were not measured (vision.py): not counted
        )

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
    qwen3 = model_type in ("qwen3_vl", "qwen3_vl_moe", "qwen3_5", "qwen3_5_moe")  # Qwen3.5: no deepstack mergers
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
        deepstack=len(v.get("deepstack_visual_indexes", [] if "3_5" in model_type else [8, 16, 24])) if qwen3 else 0,
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
                  "qwen3_vl": "qwen3", "qwen3_vl_text": "qwen3", "qwen3_vl_moe": "qwen3_moe", "qwen3_vl_moe_text": "qwen3_moe",
                  "qwen3_5": "qwen3_5_text", "qwen3_5_moe": "qwen3_5_moe_text", "gemma4": "gemma4_text"}  # fmt: skip
# Text model types that run a Gated DeltaNet in the layers that are not full attention (a value: True where the
# input projections are fused, Qwen3-Next's in_proj_qkvz and in_proj_ba), every fourth layer full by default.
_LINEAR_ATTENTION = {"qwen3_next": True, "qwen3_5_text": False, "qwen3_5_moe_text": False}
_QK_NORM = {"qwen3", "qwen3_moe", "gemma3", "gemma3_text", "olmo2", "qwen3_next", "qwen3_5_text", "qwen3_5_moe_text",
            "gemma4_text"}  # fmt: skip
_SHARED_EXPERT_GATE = {"qwen2_moe", "qwen3_next", "qwen3_5_moe_text"}


def _full_attention_layers(fields: dict, layers: int, every: int, last: bool = False) -> tuple[int, ...]:
    """The layers that run full attention: as ``layer_types`` names them, else every ``full_attention_interval``-th
    (``every`` by default; Gemma 4 also makes the last one full)."""
    types = fields.get("layer_types")
    if isinstance(types, list) and len(types) == layers:
        return tuple(i for i, kind in enumerate(types) if kind == "full_attention")
    interval = int(fields.get("full_attention_interval") or every)
    return tuple(i for i in range(layers) if (i + 1) % interval == 0 or (last and i == layers - 1))


def _gated_delta_net(fields: dict, hidden: int, layers: tuple[int, ...], fused: bool) -> Mixer:
    """Qwen3-Next's and Qwen3.5's linear attention (``Qwen3_5GatedDeltaNet``): q/k/v, output-gate and decay
    projections, a depthwise convolution over q/k/v, per-head step biases and decay rates, a gated RMSNorm over
    each value head, the output projection (defaults: transformers' config classes)."""
    key_heads, value_heads = int(fields.get("linear_num_key_heads", 16)), int(fields.get("linear_num_value_heads", 32))
    keys = key_heads * int(fields.get("linear_key_head_dim", 128))
    value_dim = int(fields.get("linear_value_head_dim", 128))
    values, n = value_heads * value_dim, len(layers)

    def linear(name: str, d_in: int, d_out: int) -> Linear:
        return Linear(name, d_in, d_out, 1, layers=n, parent="linear_attn")

    if fused:
        projections = [
            linear("in_proj_qkvz", hidden, 2 * keys + 2 * values),
            linear("in_proj_ba", hidden, 2 * value_heads),
        ]
    else:
        projections = [linear("in_proj_qkv", hidden, 2 * keys + values), linear("in_proj_z", hidden, values),
                       linear("in_proj_b", hidden, value_heads), linear("in_proj_a", hidden, value_heads)]  # fmt: skip
    convolution = (2 * keys + values) * int(fields.get("linear_conv_kernel_dim", 4))
    return Mixer("linear_attention", layers, (*projections, linear("out_proj", values, hidden)),
                 other=convolution + 2 * value_heads + value_dim)  # fmt: skip


def _global_attention(fields: dict, hidden: int, heads: int, kv: int, layers: tuple[int, ...], bias: bool) -> Mixer:
    """Gemma 4's full-attention layers (``Gemma4TextAttention``): heads of ``global_head_dim``, with
    ``attention_k_eq_v`` fewer key heads (``num_global_key_value_heads``) that also serve as values (no v_proj)."""
    width = int(fields.get("global_head_dim") or 512)
    shared = bool(fields.get("attention_k_eq_v", False))
    if shared and fields.get("num_global_key_value_heads"):
        kv = int(fields["num_global_key_value_heads"])
    n = len(layers)
    modules = [
        Linear("q_proj", hidden, heads * width, 1, bias, layers=n),
        Linear("k_proj", hidden, kv * width, 1, bias, layers=n),
    ]
    if not shared:
        modules.append(Linear("v_proj", hidden, kv * width, 1, bias, layers=n))
    modules.append(Linear("o_proj", heads * width, hidden, 1, bias, layers=n))
    return Mixer("attention", layers, tuple(modules), other=2 * width, kv_heads=kv, head_dim=width)  # q/k norms


def _mixers(
    text_type: str, fields: dict, hidden: int, heads: int, kv: int, layers: int, bias: bool
) -> tuple[Mixer, ...]:
    """The layers whose token mixer is not the shape's own attention, in config.json terms (``fields``)."""
    if text_type in _LINEAR_ATTENTION:
        full = _full_attention_layers(fields, layers, 4)
        linear = tuple(i for i in range(layers) if i not in full)
        return (_gated_delta_net(fields, hidden, linear, _LINEAR_ATTENTION[text_type]),) if linear else ()
    if text_type == "gemma4_text":  # the shape's own attention is the sliding-window layers'
        full = _full_attention_layers(fields, layers, 6, last=True)
        return (_global_attention(fields, hidden, heads, kv, full, bias),) if full else ()
    return ()


def unmodelled(config: dict) -> list[str]:
    """What lf-lint does not count or model in a config.json, one clause each (empty when it models all of it)."""
    cfg = config.get("text_config") if isinstance(config.get("text_config"), dict) else config
    text_type = _TEXT_MODEL_AS.get(str(cfg.get("model_type") or config.get("model_type") or ""),
                                   str(cfg.get("model_type") or config.get("model_type") or ""))  # fmt: skip
    missing = []
    kinds = {k for k in cfg.get("layer_types") or [] if isinstance(k, str)}
    handled = {"full_attention"} | ({"linear_attention"} if text_type in _LINEAR_ATTENTION else set())
    handled |= {"sliding_attention"}  # a window changes no parameter (activations: as full attention)
    if kinds - handled:
        missing.append(f"its {', '.join(sorted(kinds - handled))} layers are counted as softmax attention")
    elif cfg.get("linear_num_value_heads") and text_type not in _LINEAR_ATTENTION:
        missing.append("its linear-attention layers are counted as softmax attention")
    if cfg.get("hidden_size_per_layer_input"):
        missing.append("its per-layer embeddings (hidden_size_per_layer_input) are not counted")
    if cfg.get("num_kv_shared_layers"):
        missing.append("its layers that reuse other layers' keys and values are counted with their own")
    if isinstance(config.get("audio_config"), dict):
        missing.append("its audio encoder is not counted")
    return missing


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
    experts = first("num_experts", "num_local_experts", "n_routed_experts")
    if model_type == "gemma4_text" and not cfg.get("enable_moe_block"):
        experts = None
    expert_width = first("moe_intermediate_size")
    # Qwen3.5's MoE config has no intermediate_size (no layer has a dense MLP): its experts' width stands in
    default_width = int(expert_width) if model_type == "qwen3_5_moe_text" and expert_width else 4 * hidden
    intermediate = int(first("intermediate_size", "ffn_hidden_size", "n_inner", default=default_width))
    if model_type == "qwen":
        intermediate //= 2  # Qwen (v1) remote code: each of w1 and w2 is intermediate_size / 2 wide
    vocab = int(first("vocab_size", "padded_vocab_size"))
    if model_type == "chatglm" and cfg.get("padded_vocab_size"):
        vocab = int(cfg["padded_vocab_size"])
    tied = bool(
        first("tie_word_embeddings", default=config.get("tie_word_embeddings", _TIED_BY_DEFAULT.get(model_type, False)))
    )
    bias = bool(first("attention_bias", "add_qkv_bias", default=model_type in ("qwen", "qwen2", "qwen2_moe")))
    moe = None
    if experts:
        sparse_step = int(first("decoder_sparse_step", default=1) or 1)
        only = set(first("mlp_only_layers", default=[]) or [])
        first_dense = int(first("first_k_dense_replace", default=0) or 0)
        dense_layers = tuple(i for i in range(layers) if i in only or i < first_dense or (i + 1) % sparse_step)
        gemma4 = model_type == "gemma4_text"  # a dense MLP beside the experts, a router with scales
        moe = Moe(
            experts=int(experts),
            top_k=int(first("num_experts_per_tok", "top_k_experts", default=2)),
            expert_intermediate=int(expert_width or intermediate),
            shared_intermediate=intermediate
            if gemma4
            else int(first("shared_expert_intermediate_size", default=0) or 0),
            shared_gate=model_type in _SHARED_EXPERT_GATE,
            dense_layers=dense_layers,
            router_extra=hidden + int(experts) if gemma4 else 0,
        )
    norms = (
        1
        if model_type == "phi"
        else 4
        if model_type in ("gemma2", "gemma3", "gemma3_text", "glm4", "gemma4_text")
        else 2
    )
    if model_type == "gemma4_text" and moe is not None:
        norms += 3  # the MoE block's own pre- and post-norms
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
        qk_norm=model_type in _QK_NORM,
        norm_bias=model_type in ("phi3small", "gpt_neox", "phi", "falcon", "stablelm"),
        norms_per_layer=norms,
        gated=model_type not in ("phi", "gpt_neox", "falcon", "gpt2", "starcoder2"),
        moe=moe,
        vision=vision,
        attn_output_gate=model_type in _LINEAR_ATTENTION,  # q_proj projects a gate too (every release)
        mixers=_mixers(model_type, cfg, hidden, heads, kv, layers, bias),
    )


# PretrainedConfig defaults tie_word_embeddings to True; these classes override it.
_TIED_BY_DEFAULT = {"falcon": True, "gemma": True, "gemma2": True, "gemma3": True, "gemma3_text": True, "llama": False, "mistral": False,
                    "mixtral": False, "qwen2": False, "qwen3": False, "qwen2_moe": False, "qwen3_moe": False, "phi3": False,
                    "gemma4_text": True, "qwen3_next": False, "qwen3_5_text": False, "qwen3_5_moe_text": False}  # fmt: skip


def _catalogue_shape(entry: dict) -> Shape:
    """A catalogue entry's Shape. Beside the fields every entry has, in config.json's terms: ``attn_output_gate``,
    ``full_attention_interval`` with ``linear_attention`` (the Gated DeltaNet's fields) or ``global_attention``
    (Gemma 4's full-attention layers), and the MoE's fields."""
    text_type = entry["model_type"]
    layers, hidden = entry["num_hidden_layers"], entry["hidden_size"]
    moe = entry.get("moe")
    if moe:
        step = moe.get("decoder_sparse_step") or 1
        only = set(moe.get("mlp_only_layers") or [])
        first_dense = moe.get("first_k_dense") or 0
        gemma4 = text_type == "gemma4_text"
        moe = Moe(
            experts=moe["num_experts"],
            top_k=moe["num_experts_per_tok"],
            expert_intermediate=moe["moe_intermediate_size"],
            shared_intermediate=entry["intermediate_size"]
            if gemma4
            else moe.get("shared_expert_intermediate_size") or 0,
            shared_gate=bool(moe.get("shared_expert_gate")),
            dense_layers=tuple(i for i in range(layers) if i in only or i < first_dense or (i + 1) % step),
            router_extra=hidden + moe["num_experts"] if gemma4 else 0,
        )
    vision = entry.get("vision")
    if vision is not None:  # a vision-language model: its language model's fields, and its vision_config
        vision = _vision_from_config(vision["model_type"], vision["config"], hidden)
    fields = {**(entry.get("linear_attention") or {}), **(entry.get("global_attention") or {}),
              "full_attention_interval": entry.get("full_attention_interval")}  # fmt: skip
    heads, kv = entry["num_attention_heads"], entry["num_key_value_heads"]
    return Shape(
        model_type=vision.model_type if vision else text_type,
        hidden=hidden,
        layers=layers,
        heads=heads,
        kv_heads=kv,
        head_dim=entry.get("head_dim") or hidden // heads,
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
        attn_output_gate=bool(entry.get("attn_output_gate")),
        mixers=_mixers(text_type, fields, hidden, heads, kv, layers, entry["attention_bias"]),
    )


def hf_cache_config(model_id: str, env: dict | None = None) -> Path | None:
    """config.json of ``model_id`` in the local Hugging Face hub cache, if it was downloaded before."""
    found = snapshot("models", model_id, env)
    return found / "config.json" if found is not None and (found / "config.json").is_file() else None


_SIZE = LazyPattern(r"(?<![\d.])(\d+(?:\.\d+)?)\s*([bm])(?![a-z])", re.IGNORECASE)


def find_model(
    name: str | None, workdir: str | os.PathLike, params: float | None = None, env: dict | None = None
) -> ModelInfo | None:
    """The shape of ``model_name_or_path`` as far as lf-lint can know it without a download."""
    if not name:
        return _given(params, "(no model_name_or_path)") if params else None
    local = Path(workdir, os.path.expanduser(name))  # an absolute name stays as it is
    config_path = local / "config.json" if local.is_dir() else None
    if config_path is None or not config_path.is_file():
        config_path = hf_cache_config(name, env)
    unread = ""  # why a config.json that exists gave no shape
    if config_path is not None and config_path.is_file():
        try:
            config = json.loads(config_path.read_text(encoding="utf-8"))
            shape = shape_from_config(config)
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            unread = f"config.json at {config_path} {_unreadable(config_path, exc)}"  # fall back to the catalogue
        else:
            return _from_config(name, config, shape, config_path)
    entry = catalogue_entry(name)
    after = f"; {unread}" if unread else ""
    if entry is not None:
        shape = _catalogue_shape(entry)
        published = (entry.get("published_params") or {}).get("value")
        return ModelInfo(
            name,
            shape,
            count_params(shape),
            f"built-in catalogue ({entry['family']}, {entry['key']}){_mixer_note(shape)}{after}",
            entry["confidence"],
            published,
        )
    if params:
        return _given(params, name, after)
    known = without_shape().get(name.lower().rstrip("/"))
    family = f"{known['family']}, in LLaMA-Factory main's model list ({known['why']}); " if known else ""
    match = _SIZE.search(name.split("/")[-1].replace("x", " x "))
    if match and not re.search(r"\d+\s*x\s*\d", name.lower()):
        value = float(match.group(1)) * (1e9 if match.group(2).lower() == "b" else 1e6)
        shape, assumed = _stand_in(value)
        return ModelInfo(name, shape, int(value), f"{family}the size in the name ({match.group(0)}); {assumed}{after}",
                         "low")  # fmt: skip
    if known:  # a family lf-lint knows by name only, and no size to go by
        return ModelInfo(name, None, 0, f"{family}no size in its name: give --params or a local config.json", "low")
    return None


def _unreadable(path: Path, exc: Exception) -> str:
    """Why a config.json gave no shape, in words."""
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return f"could not be read ({exc.__class__.__name__})"
    if not isinstance(config, dict):
        return "is not a JSON object"
    cfg = config.get("text_config") if isinstance(config.get("text_config"), dict) else config
    lacking = [
        key for key in ("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size") if key not in cfg
    ]
    kind = f"(model_type {config.get('model_type')}) " if config.get("model_type") else ""
    return f"{kind}has no {', '.join(lacking)}" if lacking else f"{kind}could not be read ({exc.__class__.__name__})"


def _from_config(name: str, config: dict, shape: Shape, path: Path) -> ModelInfo:
    """A local config.json's model, with what lf-lint does not count or model in it."""
    missing = unmodelled(config)
    if isinstance(config.get("vision_config"), dict) and shape.vision is None:
        missing.insert(0, f"the language model only: the vision encoder of {config.get('model_type')} is not counted")
    source = f"config.json at {path}{_mixer_note(shape)}{''.join(f'; {clause}' for clause in missing)}"
    return ModelInfo(name, shape, count_params(shape), source, "medium" if missing else "high")


def _mixer_note(shape: Shape) -> str:
    """What lf-lint estimates of the layers that run another token mixer, in words (empty without any)."""
    notes = []
    for mixer in shape.mixers:
        if mixer.kind == "linear_attention":
            notes.append(f"{len(mixer.layers)} of its {shape.layers} layers run a Gated DeltaNet (linear attention): "
                         "their parameters are counted, their activations estimated as full attention's")  # fmt: skip
        else:
            notes.append(f"its {len(mixer.layers)} full-attention layers have {mixer.head_dim}-wide heads: their "
                         f"parameters are counted, their activations estimated as the other layers' attention's")  # fmt: skip
    return "".join(f"; {note}" for note in notes)


def _given(params: float, name: str, after: str = "") -> ModelInfo:
    shape, assumed = _stand_in(params)
    return ModelInfo(name, shape, int(params), f"--params {params / 1e9:g}B; {assumed}{after}", "low")


STAND_IN = "stand-in"  # the model_type of a shape lf-lint assumed: no family's notes or behaviour apply to it


def _stand_in(params: float) -> tuple[Shape, str]:
    """A stand-in for activations when only a count is known, and what it assumes in words: the layer sizes and
    vocabulary of the catalogue's dense, plain-attention model closest in size, as a plain decoder (a gated MLP,
    two RMSNorms per layer, no biases or q/k norms, untied embeddings) of no family."""
    best = None
    for entry in {id(e): e for e in catalogue().values()}.values():
        if (
            entry.get("moe")
            or entry["confidence"] != "high"
            or entry.get("linear_attention")
            or entry.get("global_attention")
        ):
            continue
        shape = _catalogue_shape(entry)
        gap = abs(count_params(shape) - params)
        if best is None or gap < best[0]:
            best = (gap, shape, entry)
    _, shape, entry = best
    plain = Shape(STAND_IN, shape.hidden, shape.layers, shape.heads, shape.kv_heads, shape.head_dim, shape.intermediate,
                  shape.vocab)  # fmt: skip
    assumed = (f"layer shape assumed: a plain decoder sized as {entry['family']} {entry['key']} (hidden {shape.hidden:,}, "
               f"{shape.layers} layers, {shape.heads} heads, {shape.kv_heads} KV heads, MLP {shape.intermediate:,}, "
               f"vocabulary {shape.vocab:,}), the catalogued dense model nearest in size; none of its family's "
               "specifics apply")  # fmt: skip
    return plain, assumed
