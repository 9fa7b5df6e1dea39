"""The shape of the model being fine-tuned, and its parameter counts.

A shape comes from, in order: a local ``config.json`` (``model_name_or_path`` as a folder, or
the Hugging Face cache), the built-in catalogue of popular families (lf_lint/data/models.json,
matched by hub id), the size in the name ("Qwen2.5-7B" -> 7B, low confidence) or ``--params``.
Counts follow the Hugging Face modelling code: q/k/v/o projections (biases for Qwen2, q/k norms
for Qwen3 and Gemma 3), a gated MLP (gate/up/down) or a mixture of experts, RMSNorm weights
(LayerNorm weight+bias), the embedding and, unless tied, the output head.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import NamedTuple

from ..hub_cache import snapshot


class Moe(NamedTuple):
    experts: int
    top_k: int
    expert_intermediate: int
    shared_intermediate: int = 0  # Qwen2-MoE shared expert
    shared_gate: bool = False
    dense_layers: tuple[int, ...] = ()  # layers with a plain MLP (mlp_only_layers, first_k_dense, sparse step)


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


class ModelInfo(NamedTuple):
    """A shape and where it came from (``source``), or only a parameter count when no shape is known."""

    name: str
    shape: Shape | None
    params: int  # total parameters
    source: str  # how the shape or count was found, in words
    confidence: str  # "high" (config.json), "medium"/"high" (catalogue), "low" (name or --params)
    published: str | None = None


class Linear(NamedTuple):
    """One kind of nn.Linear in a decoder layer (name as the module is called, LoRA's suffix match)."""

    name: str
    d_in: int
    d_out: int
    per_layer: int  # how many such modules a layer holds (experts)
    bias: bool = False
    expert: bool = False  # inside an MoE expert (or its router)


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


def linears(shape: Shape, fused_experts: bool = False) -> list[Linear]:
    """The nn.Linear modules of one decoder layer. ``fused_experts``: transformers 5.x keeps MoE experts as
    3-D parameters (not nn.Linear: LoRA's ``all`` and bitsandbytes skip them)."""
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
    return layers + embedding + head + final_norm


def active_params(shape: Shape) -> int:
    """Parameters a token goes through (MoE: top-k experts), for FLOPs."""
    if shape.moe is None:
        return count_params(shape)
    moe = shape.moe
    unused = (moe.experts - moe.top_k) * 3 * shape.hidden * moe.expert_intermediate
    return count_params(shape) - unused * (shape.layers - len(moe.dense_layers))


# --- where shapes come from -----------------------------------------------------------------


def shape_from_config(config: dict) -> Shape:
    """A Shape from a Hugging Face config.json (composite models: their ``text_config``)."""
    cfg = config.get("text_config") if isinstance(config.get("text_config"), dict) else config
    model_type = str(cfg.get("model_type") or config.get("model_type") or "")

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
    tied = bool(first("tie_word_embeddings", default=_TIED_BY_DEFAULT.get(model_type, False)))
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
        model_type=model_type,
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
    return Shape(
        model_type=entry["model_type"],
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
    )


@lru_cache(maxsize=1)
def catalogue() -> dict[str, dict]:
    """Catalogue entries by lower-cased hub id (and by the id's last part, e.g. ``qwen2.5-7b-instruct``)."""
    data = json.loads(resources.files("lf_lint").joinpath("data/models.json").read_text(encoding="utf-8"))
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
            shape = shape_from_config(json.loads(config_path.read_text(encoding="utf-8")))
            return ModelInfo(name, shape, count_params(shape), f"config.json at {config_path}", "high")
        except (OSError, ValueError, TypeError, KeyError):
            pass  # an unreadable config: fall back to the catalogue
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
