"""Rules about the model checkpoint on this machine: what its config.json makes LLaMA-Factory do.

Only a model folder that exists here (``model_name_or_path``, or its Hugging Face cache snapshot) is read;
nothing is downloaded.
"""

from __future__ import annotations

import json
from functools import lru_cache

from ..args import split_list
from ..catalogue import catalogue_entry, config_model_type
from ..datafiles import read_json
from ..diagnostics import Severity
from ..versions import newest_transformers_for, parse_version
from .base import Context, Example, Finding, Rule

ERROR, WARNING = Severity.ERROR, Severity.WARNING

# transformers 4.57.0-4.57.6 only: these configs hand attribute reads to their text config (``__getattribute__``)
_DELEGATING = {"qwen2_vl": "Qwen2VL", "qwen2_5_vl": "Qwen2_5_VL"}


def _nested_config(ctx: Context) -> tuple[str, dict] | None:
    """(where, config.json) of a local Qwen2-VL / Qwen2.5-VL checkpoint whose language model is a text_config."""
    found = ctx.model_config
    if found and found[1].get("model_type") in _DELEGATING and isinstance(found[1].get("text_config"), dict):
        return found
    return None


def _check_misread(ctx: Context):
    if tuple(ctx.target.tf[:2]) != (4, 57):
        return
    found = _nested_config(ctx)
    if found is None:
        return
    where, config = found
    model_type, lf = config["model_type"], ctx.target.llamafactory
    if ctx.target.lf < (0, 9, 5):
        yield Finding(
            f"transformers {ctx.target.transformers} reads the attributes of this {model_type} config from its "
            f"text_config ({where}), where `architectures` is unset: LLaMA-Factory {lf} stops while loading the model "
            "with `TypeError: argument of type 'NoneType' is not iterable` (patch_config)",
            key="model_name_or_path",
            at="value",
            fix="use LLaMA-Factory 0.9.5 or a transformers release other than 4.57",
        )
        return
    text_type = config["text_config"].get("model_type")
    if not text_type:
        return
    method = str(ctx.args.finetuning_type or "lora")
    lora_all = method == "lora" and split_list(ctx.args.lora_target or "all") == ["all"]
    read_as = (
        f"transformers {ctx.target.transformers} reads this checkpoint's model_type from its text_config "
        f"(`{text_type}`, {where}), so LLaMA-Factory {lf} does not see a vision-language model"
    )
    if lora_all:
        yield Finding(
            f"{read_as}: `lora_target: all` then also names the vision tower's modules, and PEFT stops while loading "
            f"with `Target module {_DELEGATING[model_type]}VisionBlock(...) is not supported`",
            key="lora_target" if ctx.args.is_set("lora_target") else "finetuning_type",
            at="value",
            fix=f'delete `"model_type": "{text_type}"` inside text_config in {where} (transformers rebuilds the '
            "same text config), or use a transformers release other than 4.57",
        )
    elif method in ("full", "freeze"):
        yield Finding(
            f"{read_as}: freeze_vision_tower and freeze_multi_modal_projector do nothing, and the vision tower and "
            f"projector train with the language model ({method} tuning)",
            key="finetuning_type",
            at="value",
            severity=WARNING,
            fix=f'delete `"model_type": "{text_type}"` inside text_config in {where}, or use a transformers release '
            "other than 4.57",
        )


_TEXT = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 100}
_RESAVED = {  # as transformers 4.57 saves it
    "qwen25vl/config.json": json.dumps(
        {
            "model_type": "qwen2_5_vl",
            "vision_config": {"depth": 2},
            "text_config": {"model_type": "qwen2_5_vl_text", **_TEXT},
        }
    )
}
_FLAT = {
    "qwen25vl/config.json": json.dumps({"model_type": "qwen2_5_vl", "vision_config": {"depth": 2}, **_TEXT})
}  # the hub's

VISION_MODEL_MISREAD = Rule(
    code="LF273",
    name="vision-model-config-misread",
    severity=ERROR,
    summary="A Qwen2-VL/Qwen2.5-VL config.json that transformers 4.57 misreads: a load failure, or no frozen tower.",
    what="For a local Qwen2-VL or Qwen2.5-VL checkpoint whose config.json keeps the language model in a "
    "`text_config` (as transformers 4.57 saves it, e.g. a fine-tuned or merged model), targeting transformers "
    "4.57: with LLaMA-Factory 0.9.4 the model does not load; with 0.9.5, when the text_config names its own "
    "`model_type`, `lora_target: all` does not load either, and full or freeze tuning train the vision encoder "
    "whatever `freeze_vision_tower` says (a warning).",
    why="transformers 4.57's Qwen2-VL and Qwen2.5-VL configs answer every attribute their text config holds "
    "from it. `config.architectures` is then None (LLaMA-Factory 0.9.4's patch_config iterates it) and "
    "`config.model_type` is `qwen2_5_vl_text`, a type LLaMA-Factory's vision-language table does not know: "
    "nothing is frozen, and `all` collects the merger's layers `0` and `2` as target names, which PEFT also "
    "matches to the vision blocks numbered 0 and 2. Measured with the real releases (tests/test_groundtruth.py); "
    "transformers 4.56 and 5.x read these files correctly.",
    example=Example("model_name_or_path: qwen25vl\nfinetuning_type: lora\nlora_target: all", files=_RESAVED),
    use_instead=Example("model_name_or_path: qwen25vl\nfinetuning_type: lora\nlora_target: all", files=_FLAT),
    upstream="transformers 4.57 Qwen2VLConfig/Qwen2_5_VLConfig.__getattribute__; LLaMA-Factory model_utils/visual.py "
    "(COMPOSITE_MODELS) and model/patcher.py::patch_config (0.9.4-0.9.5).",
    check=_check_misread,
)


def _check_nested_too_new(ctx: Context):
    if ctx.target.tf >= (4, 52, 0):
        return
    found = _nested_config(ctx)
    if found is None:
        return
    where, config = found
    # the first code that reads the text_config as a config object: LLaMA-Factory's configure_kv_cache (0.9.3+),
    # else transformers' GenerationConfig.from_model_config while building the model
    error = "'dict' object has no attribute " + ("'use_cache'" if ctx.target.lf >= (0, 9, 3) else "'to_dict'")
    yield Finding(
        f"this {config['model_type']} config.json keeps its language model in a text_config ({where}), as "
        f"transformers 4.52 and later save it; transformers {ctx.target.transformers} reads that as a plain dict "
        f"(and the language model's size from its defaults): LLaMA-Factory {ctx.target.llamafactory} stops while "
        f"loading the model with `AttributeError: {error}`",
        key="model_name_or_path",
        at="value",
        fix="use transformers 4.52 or later, or move the fields inside text_config to the top level of config.json "
        "(without its model_type), as the hub's own Qwen-VL config.json files have them",
    )


_OLD = {"llamafactory_version": "0.9.3", "transformers_version": "4.51.3"}
NESTED_CONFIG_TOO_NEW = Rule(
    code="LF279",
    name="vision-config-too-new",
    severity=ERROR,
    summary="A Qwen2-VL/Qwen2.5-VL config.json with a text_config, which transformers before 4.52 cannot load.",
    what="For a local Qwen2-VL or Qwen2.5-VL checkpoint whose config.json keeps the language model in a "
    "`text_config` (a model fine-tuned, merged or re-saved with transformers 4.52 or later), targeting an earlier "
    "transformers release.",
    why="Before 4.52 these configs have no text config of their own: the nested one stays a plain dict, the "
    "language model's fields take their defaults, and the first code that treats the dict as a config stops: "
    "LLaMA-Factory's KV-cache set-up (0.9.3 and later) or transformers' generation config (0.9.2). Measured with "
    "the real releases (tests/test_groundtruth.py).",
    example=Example("model_name_or_path: qwen25vl\nfinetuning_type: lora", files=_RESAVED, options=_OLD),
    use_instead=Example("model_name_or_path: qwen25vl\nfinetuning_type: lora", files=_FLAT, options=_OLD),
    upstream="transformers 4.49-4.51 Qwen2VLConfig/Qwen2_5_VLConfig; LLaMA-Factory model_utils/kv_cache.py::"
    "configure_kv_cache (0.9.3-0.9.5); transformers GenerationConfig.from_model_config (0.9.2).",
    check=_check_nested_too_new,
)

# model/patcher.py::patch_config: checkpoints in their authors' original (remote-code) layout, refused by name
_ORIGINAL_LAYOUTS = {
    "LlavaLlamaForCausalLM": ((0, 9, 2), "Please download llava models with hf-compatible format: https://huggingface.co/llava-hf"),
    "InternVLChatModel": ((0, 9, 3), "Please download the internvl models in a Hugging Face–compatible format (for example, "
                          "https://huggingface.co/OpenGVLab/InternVL3-8B-hf)."),
}  # fmt: skip


def _check_original_layout(ctx: Context):
    found = ctx.model_config
    architectures = found[1].get("architectures") if found else None
    if not isinstance(architectures, list):
        return
    for name, (since, message) in _ORIGINAL_LAYOUTS.items():
        if name in architectures and ctx.target.lf >= since:
            yield Finding(
                f"the model at {found[0]} is a {name} checkpoint: LLaMA-Factory {ctx.target.llamafactory} stops while "
                f"loading it with `{message}`",
                key="model_name_or_path",
                at="value",
                fix="use the checkpoint's Hugging Face-format release (the *-hf repositories)",
            )


_ORIGINAL_LLAVA = {
    "llava-v1.5-7b/config.json": json.dumps({"model_type": "llava", "architectures": ["LlavaLlamaForCausalLM"]})
}
_HF_LLAVA = {
    "llava-1.5-7b-hf/config.json": json.dumps(
        {"model_type": "llava", "architectures": ["LlavaForConditionalGeneration"]}
    )
}

ORIGINAL_LAYOUT = Rule(
    code="LF274",
    name="checkpoint-not-in-hf-format",
    severity=ERROR,
    summary="A local LLaVA or InternVL checkpoint in its original layout, which LLaMA-Factory refuses.",
    what="Reads the `architectures` of a local model's config.json and reports `LlavaLlamaForCausalLM` (LLaVA's "
    "original repository layout) and, from LLaMA-Factory 0.9.3, `InternVLChatModel` (InternVL's remote-code "
    "layout).",
    why="LLaMA-Factory trains the Hugging Face ports of these models (llava-hf/..., OpenGVLab/InternVL3-*-hf) and "
    "stops with a request to download them after reading the config. (Without `trust_remote_code: true`, "
    "transformers already stops at an InternVL config, asking for it.)",
    example=Example("model_name_or_path: llava-v1.5-7b", files=_ORIGINAL_LLAVA),
    use_instead=Example("model_name_or_path: llava-1.5-7b-hf", files=_HF_LLAVA),
    upstream="model/patcher.py::patch_config (LLaMA-Factory 0.9.2-0.9.5).",
    check=_check_original_layout,
    applies_to=("train", "infer"),
)

# model types whose transformers modelling code (4.57) builds an nn.Conv3d (video patch embeddings)
CONV3D_MODEL_TYPES = {"qwen2_vl", "qwen2_5_vl", "qwen3_vl", "qwen3_vl_moe", "glm4v", "glm4v_moe", "qwen2_5_omni",
                      "qwen2_5_omni_thinker", "qwen3_omni_moe", "qwen3_omni_moe_thinker", "emu3",
                      "qwen3_5", "qwen3_5_moe"}  # fmt: skip


def _model_type(ctx: Context) -> str | None:
    """The model's type: its local config.json's, else a catalogued vision-language model's."""
    found = ctx.model_config
    if found is not None:
        return found[1].get("model_type")
    info = ctx.model_info
    return info.shape.model_type if info is not None and info.shape is not None and info.shape.vision else None


def _check_conv3d_torch(ctx: Context):
    torch = ctx.options.get("torch")
    if not torch or ctx.target.lf < (0, 9, 5):
        return
    from ..versions import VersionError

    try:
        version = parse_version(torch)
    except VersionError:
        return
    if not (2, 9, 0) <= version < (2, 10, 0):
        return
    model_type = _model_type(ctx)
    if model_type in CONV3D_MODEL_TYPES:
        yield Finding(
            f"{model_type} has a Conv3D patch embedding and the run uses torch {torch}: LLaMA-Factory "
            f"{ctx.target.llamafactory} stops after loading the model with `Unsupported torch version detected: "
            "torch 2.9.x with Conv3D. This combination is known to cause severe performance regression.`",
            key="model_name_or_path",
            at="value",
            fix="use torch 2.8 or 2.10 and newer (pytorch/pytorch#166122)",
        )


CONV3D_TORCH = Rule(
    code="LF275",
    name="conv3d-model-on-torch-2.9",
    severity=ERROR,
    summary="A model with a Conv3D layer (Qwen2-VL, Qwen2.5-VL, Qwen3-VL, GLM-4V, ...) on torch 2.9.x.",
    what="With the torch release the run uses (`--torch-version`, else the one installed where lf-lint runs), "
    "reports torch 2.9.x for a model whose modelling code has an nn.Conv3d: the model type of a local config.json "
    "or of a catalogued vision-language model.",
    why="LLaMA-Factory 0.9.5 refuses the combination after loading the model: Conv3D on torch 2.9 is known to "
    "be many times slower (pytorch/pytorch#166122).",
    example=Example("model_name_or_path: Qwen/Qwen2.5-VL-7B-Instruct", options={"torch_version": "2.9.1"}),
    use_instead=Example("model_name_or_path: Qwen/Qwen2.5-VL-7B-Instruct", options={"torch_version": "2.8.0"}),
    upstream="model/loader.py::load_model (LLaMA-Factory 0.9.5).",
    check=_check_conv3d_torch,
    applies_to=("train", "infer"),
)


@lru_cache(maxsize=1)
def _model_types() -> dict:
    """lf_lint/data/model_types.json (tools/generate_model_types.py): model types by transformers release."""
    return read_json("model_types.json")["model_types"]


def _known(model_type: str, tf: tuple) -> bool:
    release = _model_types().get(model_type)
    return release is not None and parse_version(release["since"]) <= tf <= parse_version(release.get("until", "99"))


def _check_model_type(ctx: Context):
    found = ctx.model_config
    if found is not None:
        where, config = found
        model_type, custom = config.get("model_type"), "AutoConfig" in (config.get("auto_map") or {})
    else:  # a catalogued hub model: its type; one no release knows is a remote-code family (InternLM2, ...)
        where, model_type = None, _catalogued_type(ctx)
        custom = isinstance(model_type, str) and model_type not in _model_types()
    if not isinstance(model_type, str) or _known(model_type, ctx.target.tf):
        return
    tf = ctx.target.transformers
    release = _model_types().get(model_type)
    if custom:
        if ctx.args.trust_remote_code is not True:
            yield Finding(
                f"{where or ctx.args.model_name_or_path} is model_type `{model_type}`, which transformers {tf} does "
                "not know, and brings its own code (auto_map): transformers stops while loading it and asks for "
                "`trust_remote_code=True`",
                key="trust_remote_code" if ctx.args.is_set("trust_remote_code") else "model_name_or_path",
                at="value",
                fix="trust_remote_code: true (after reading the model's code: it runs on the training machine)",
            )
        return
    if release is not None and ctx.target.tf < parse_version(release["since"]):
        newest = newest_transformers_for(ctx.target.llamafactory)
        fix = f"use transformers {release['since']} or newer" + (
            f" (LLaMA-Factory {ctx.target.llamafactory} allows up to {newest}: a newer LLaMA-Factory too)"
            if parse_version(newest) < parse_version(release["since"])
            else ""
        )
    elif release is not None:
        fix = f"use transformers {release['until']} or older (later releases removed `{model_type}`)"
    else:
        fix = "check model_type in the model's config.json; a model newer than transformers 5.6 needs a newer release"
    yield Finding(
        f"{where or ctx.args.model_name_or_path} is model_type `{model_type}`, which transformers {tf} does not "
        "know: it stops while loading with `The checkpoint you are trying to load has model type "
        f"`{model_type}` but Transformers does not recognize this architecture.`",
        key="model_name_or_path",
        at="value",
        fix=fix,
    )


def _catalogued_type(ctx: Context) -> str | None:
    """The model type of a catalogued hub model, else None (found as memory.model.find_model finds it, without
    building its shape)."""
    name = ctx.args.model_name_or_path
    entry = catalogue_entry(name) if isinstance(name, str) and name else None
    return config_model_type(entry) if entry is not None else None


UNKNOWN_MODEL_TYPE = Rule(
    code="LF276",
    name="model-type-unknown-to-transformers",
    severity=ERROR,
    summary="A model whose model_type the targeted transformers release cannot load (too old, or remote code "
    "without `trust_remote_code`).",
    what="Checks the model_type of a local config.json, or of a catalogued hub model, against the model types "
    "each transformers release knows (lf_lint/data/model_types.json, read from every supported release). A type "
    "it does not know is an error, with the first release that has it; a config that brings its own code "
    "(`auto_map`) needs `trust_remote_code: true` instead.",
    why="LLaMA-Factory loads the config with AutoConfig, which stops on a type it does not recognize, e.g. Qwen3 "
    "before transformers 4.51 (LLaMA-Factory 0.9.2 allows at most 4.49), and refuses custom code unless "
    "trust_remote_code is set (LLaMA-Factory's default is false).",
    example=Example(
        "model_name_or_path: Qwen/Qwen3-8B", options={"llamafactory_version": "0.9.2", "transformers_version": "4.49.0"}
    ),
    use_instead=Example(
        "model_name_or_path: Qwen/Qwen2.5-7B",
        options={"llamafactory_version": "0.9.2", "transformers_version": "4.49.0"},
    ),
    upstream="model/loader.py::load_config (LLaMA-Factory 0.9.2-0.9.5); transformers AutoConfig.from_pretrained.",
    check=_check_model_type,
    applies_to=("train", "infer"),
)


def _layers(config: dict) -> int | None:
    """num_hidden_layers of the language model (a composite model's text_config), as freeze tuning reads it."""
    text = config.get("text_config") if isinstance(config.get("text_config"), dict) else config
    layers = text.get("num_hidden_layers", config.get("num_hidden_layers"))
    return layers if isinstance(layers, int) and not isinstance(layers, bool) else None


def _check_llama_pro(ctx: Context):
    a = ctx.args
    if not a.use_llama_pro or a.finetuning_type not in ("freeze", "lora") or ctx.model_config is None:
        return
    layers, n = _layers(ctx.model_config[1]), a.freeze_trainable_layers
    if layers is None or not isinstance(n, int) or isinstance(n, bool):
        return
    if n == 0:
        message = "ZeroDivisionError: integer modulo by zero"
    elif layers % n:
        message = f"`num_layers` {layers} should be divisible by `num_layer_trainable` {n}."
    else:
        return
    yield Finding(
        f"LLaMA Pro trains every ({layers} / freeze_trainable_layers)-th layer of the expanded model "
        f"({ctx.model_config[0]}): LLaMA-Factory {ctx.target.llamafactory} stops while setting up the "
        f"{a.finetuning_type} tuning with `{message}`",
        key="freeze_trainable_layers" if a.is_set("freeze_trainable_layers") else "use_llama_pro",
        at="value",
        fix=f"freeze_trainable_layers: the number of layers the expansion added (a divisor of {layers})",
    )


_EXPANDED = {"llama3-8b-pro/config.json": json.dumps({"model_type": "llama", "num_hidden_layers": 40})}

LLAMA_PRO_STRIDE = Rule(
    code="LF277",
    name="llama-pro-layer-stride",
    severity=ERROR,
    summary="`use_llama_pro` with a `freeze_trainable_layers` that does not divide the model's layers.",
    what="For a local model, checks that `freeze_trainable_layers` (the blocks the LLaMA Pro expansion added) "
    "divides its `num_hidden_layers`, with freeze or LoRA tuning.",
    why="LLaMA Pro trains every (layers / n)-th block; LLaMA-Factory refuses a count that does not divide the "
    "layers when it sets the tuning up, after the model has loaded.",
    example=Example(
        "finetuning_type: freeze\nuse_llama_pro: true\nfreeze_trainable_layers: 3\nmodel_name_or_path: llama3-8b-pro",
        files=_EXPANDED,
    ),
    use_instead=Example(
        "finetuning_type: freeze\nuse_llama_pro: true\nfreeze_trainable_layers: 8\nmodel_name_or_path: llama3-8b-pro",
        files=_EXPANDED,
    ),
    upstream="model/adapter.py::_setup_freeze_tuning, model_utils/misc.py::find_expanded_modules "
    "(LLaMA-Factory 0.9.2-0.9.5).",
    check=_check_llama_pro,
)


def _check_freeze_modules(ctx: Context):
    a = ctx.args
    if a.finetuning_type != "freeze" or not (a.is_set("freeze_trainable_modules") or a.is_set("freeze_extra_modules")):
        return
    from ..memory.model import freeze_module_names

    info = ctx.model_info
    names = freeze_module_names(info.shape, ctx.target.tf) if info is not None and info.shape is not None else None
    if names is None or info.confidence == "low":
        return
    for key, accepted, skip in (
        ("freeze_trainable_modules", names[0], "all"),
        ("freeze_extra_modules", names[1], None),
    ):
        wrong = [n for n in split_list(a.get(key)) or [] if n != skip and n not in accepted]
        if wrong:
            yield Finding(
                f"LLaMA-Factory {ctx.target.llamafactory} stops while setting up freeze tuning with `Module {wrong[0]} "
                f"is not found, please choose from {', '.join(sorted(accepted))}` ({info.shape.model_type}: "
                f"{'the children of a decoder layer' if skip else 'the modules outside the layers'})",
                key=key,
                at="value",
                fix=f"{key}: one of {', '.join(sorted(accepted))}" + (" (or all)" if skip else ""),
            )
            return  # LLaMA-Factory stops at the first


FREEZE_MODULES = Rule(
    code="LF278",
    name="freeze-module-not-found",
    severity=ERROR,
    summary="A `freeze_trainable_modules` or `freeze_extra_modules` name the model does not have.",
    what="For models whose layout lf-lint knows exactly (Llama, Qwen2, Qwen3, Phi-3, Gemma 2/3, Mixtral, "
    "Qwen2-MoE, Qwen3-MoE, Qwen2-VL, Qwen2.5-VL, Qwen3-VL and models of those types, from a local config.json or "
    "the catalogue), checks `freeze_trainable_modules` against the children of a decoder layer (`self_attn`, "
    "`mlp`, the norms; Mixtral's `block_sparse_moe` before transformers 5; an MoE expert's linears while they are "
    "separate modules; a vision block's children) and `freeze_extra_modules` against the modules outside the "
    "layers (`embed_tokens`, `norm`, an untied `lm_head`, a vision encoder's stem and projector).",
    why="Freeze tuning selects whole sub-modules by name, not linears: `q_proj` (a LoRA target) is not one. "
    "LLaMA-Factory checks the names only after loading the model.",
    example=Example("finetuning_type: freeze\nfreeze_trainable_modules: q_proj,v_proj"),
    use_instead=Example("finetuning_type: freeze\nfreeze_trainable_modules: self_attn"),
    upstream="model/adapter.py::_setup_freeze_tuning (LLaMA-Factory 0.9.2-0.9.5).",
    check=_check_freeze_modules,
)

RULES = [
    VISION_MODEL_MISREAD,
    NESTED_CONFIG_TOO_NEW,
    ORIGINAL_LAYOUT,
    CONV3D_TORCH,
    UNKNOWN_MODEL_TYPE,
    LLAMA_PRO_STRIDE,
    FREEZE_MODULES,
]
