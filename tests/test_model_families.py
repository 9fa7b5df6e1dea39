"""The families LLaMA-Factory's main branch added: Qwen3.5 (dense and MoE), Qwen3-Next and Gemma 4, whose layers do
not all run the same token mixer, each catalogued and read from a local config.json alike; and a model lf-lint does
not know, which gets a plain stand-in shape and no other family's notes.

The exact counts below are added up module by module from transformers 5.x's modelling code
(``modeling_qwen3_5.py``, ``modeling_gemma4.py``), apart from lf-lint's own arithmetic.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lf_lint import estimate_memory
from lf_lint.memory.evaluation import kv_cache_bytes
from lf_lint.memory.model import STAND_IN, active_params, catalogue, count_params, find_model, shape_from_config

NOWHERE = Path("/nonexistent-workdir")
NEW_FAMILIES = ("Qwen3.5", "Qwen3.5 MoE", "Qwen3-Next", "Gemma 4")
NEW = sorted({e["key"]: e for e in catalogue().values() if e["family"] in NEW_FAMILIES}.items())

# Qwen/Qwen3.5-27B's config.json (the fields that shape it; github:ai-dynamo/aiconfigurator
# aic-core/src/aiconfigurator_core/model_configs/Qwen--Qwen3.5-27B_config.json)
QWEN35_27B = {
    "architectures": ["Qwen3_5ForConditionalGeneration"], "model_type": "qwen3_5", "tie_word_embeddings": False,
    "text_config": {"model_type": "qwen3_5_text", "attention_bias": False, "attn_output_gate": True,
                    "full_attention_interval": 4, "head_dim": 256, "hidden_size": 5120, "intermediate_size": 17408,
                    "layer_types": ["linear_attention"] * 3 + ["full_attention"], "linear_conv_kernel_dim": 4,
                    "linear_key_head_dim": 128, "linear_num_key_heads": 16, "linear_num_value_heads": 48,
                    "linear_value_head_dim": 128, "mlp_only_layers": [], "mtp_num_hidden_layers": 1,
                    "num_attention_heads": 24, "num_hidden_layers": 64, "num_key_value_heads": 4, "vocab_size": 248320},
    "vision_config": {"deepstack_visual_indexes": [], "depth": 27, "hidden_size": 1152, "in_channels": 3,
                      "intermediate_size": 4304, "model_type": "qwen3_5", "num_heads": 16,
                      "num_position_embeddings": 2304, "out_hidden_size": 5120, "patch_size": 16,
                      "spatial_merge_size": 2, "temporal_patch_size": 2},
}  # fmt: skip
QWEN35_27B["text_config"]["layer_types"] *= 16

# google/gemma-4-31B-it's config.json (NVIDIA's NVFP4 re-save in the same aiconfigurator folder)
GEMMA4_31B = {
    "architectures": ["Gemma4ForConditionalGeneration"], "model_type": "gemma4", "tie_word_embeddings": True,
    "audio_config": None,
    "text_config": {"model_type": "gemma4_text", "attention_bias": False, "attention_k_eq_v": True,
                    "enable_moe_block": False, "global_head_dim": 512, "head_dim": 256, "hidden_size": 5376,
                    "hidden_size_per_layer_input": 0, "intermediate_size": 21504,
                    "layer_types": (["sliding_attention"] * 5 + ["full_attention"]) * 10, "num_attention_heads": 32,
                    "num_experts": None, "num_global_key_value_heads": 4, "num_hidden_layers": 60,
                    "num_key_value_heads": 16, "num_kv_shared_layers": 0, "tie_word_embeddings": True,
                    "top_k_experts": None, "use_double_wide_mlp": False, "vocab_size": 262144},
    "vision_config": {"head_dim": 72, "hidden_size": 1152, "intermediate_size": 4304, "model_type": "gemma4_vision",
                      "num_attention_heads": 16, "num_hidden_layers": 27, "num_key_value_heads": 16, "patch_size": 16,
                      "pooling_kernel_size": 3, "position_embedding_size": 10240},
}  # fmt: skip


def test_qwen35_counts_its_gated_deltanet_layers_and_vision_tower():
    h, v = 5120, 248320
    full_attention = (
        h * 24 * 256 * 2 + 2 * h * 4 * 256 + 24 * 256 * h + 2 * 256
    )  # q (with its gate), k, v, o; q/k norms
    keys, values = 16 * 128, 48 * 128
    delta_net = (
        h * (2 * keys + values)
        + h * values
        + 2 * h * 48  # in_proj_qkv, in_proj_z, in_proj_b, in_proj_a
        + (2 * keys + values) * 4
        + 2 * 48
        + 128
        + values * h
    )  # conv1d, dt_bias + A_log, gated norm, out_proj
    mlp_and_norms = 3 * h * 17408 + 2 * h
    language = 16 * full_attention + 48 * delta_net + 64 * mlp_and_norms + 2 * v * h + h
    w, inner, merged = 1152, 4304, 4 * 1152
    stem = 3 * 2 * 16 * 16 * w + w + 2304 * w  # Conv3d with bias, learned positions
    block = 4 * w + (w * 3 * w + 3 * w) + (w * w + w) + (w * inner + inner) + (inner * w + w)
    merger = 2 * w + (merged * merged + merged) + (merged * h + h)
    shape = shape_from_config(QWEN35_27B)
    assert count_params(shape) == language + stem + 27 * block + merger
    assert shape.vision.params == stem + 27 * block + merger and shape.vision.deepstack == 0
    assert [len(m.layers) for m in shape.mixers] == [48] and shape.attn_output_gate
    # the KV cache: only the 16 full-attention layers keep keys and values
    assert kv_cache_bytes(shape, 1, 1000) == 1000 * 16 * 2 * 4 * 256 * 2


def test_gemma4_counts_its_wider_full_attention_layers():
    h = 5376
    sliding = h * 32 * 256 + 2 * h * 16 * 256 + 32 * 256 * h + 2 * 256
    full = h * 32 * 512 + h * 4 * 512 + 32 * 512 * h + 2 * 512  # the keys serve as values: no v_proj
    language = 50 * sliding + 10 * full + 60 * (3 * h * 21504 + 4 * h) + 262144 * h + h  # tied embeddings
    shape = shape_from_config(GEMMA4_31B)
    assert count_params(shape) - shape.vision.params == language
    assert round(language / 1e8) == 307  # the model card's 30.7B
    w = 1152
    tower = 3 * 16 * 16 * w + 2 * 10240 * w + 27 * (4 * w * w + 2 * 72 + 3 * w * 4304 + 4 * w)
    assert shape.vision.params == tower + w * h  # and the projection into the language model (embed_vision)
    assert find_model("google/gemma-4-31B-it", NOWHERE).params == count_params(shape)


def test_moe_families_active_parameters():
    gemma = find_model("google/gemma-4-26B-A4B-it", NOWHERE).shape
    assert abs(active_params(gemma) - 3.8e9) < 0.05e9  # the card's 3.8B active
    qwen = find_model("Qwen/Qwen3.5-397B-A17B", NOWHERE).shape
    assert abs(active_params(qwen) - 17e9) < 0.5e9


@pytest.mark.parametrize("key, entry", NEW, ids=[k for k, _ in NEW])
def test_new_families_resolve_by_hub_id(key, entry):
    for hub_id in entry["hub_ids"]:
        info = find_model(hub_id, NOWHERE)
        assert info.source.startswith(f"built-in catalogue ({entry['family']}, {key})"), hub_id
        assert info.params == count_params(info.shape) and info.confidence == entry["confidence"]
    assert "activations estimated" in info.source  # its other token mixers are named


def _config_json(entry: dict) -> dict:
    """The entry as a config.json like the published ones (a composite's language model in text_config)."""
    text = {k: entry[k] for k in ("model_type", "hidden_size", "num_hidden_layers", "num_attention_heads",
                                  "num_key_value_heads", "head_dim", "intermediate_size", "vocab_size",
                                  "tie_word_embeddings", "attention_bias")}  # fmt: skip
    text |= entry.get("linear_attention", {}) | entry.get("global_attention", {})
    gemma = entry["model_type"] == "gemma4_text"
    kinds = ("sliding_attention" if gemma else "linear_attention", "full_attention")
    interval = entry["full_attention_interval"]
    text["layer_types"] = [kinds[(i + 1) % interval == 0] for i in range(entry["num_hidden_layers"])]
    moe = entry.get("moe")
    if moe and gemma:
        text |= {
            "enable_moe_block": True,
            "num_experts": moe["num_experts"],
            "top_k_experts": moe["num_experts_per_tok"],
            "moe_intermediate_size": moe["moe_intermediate_size"],
        }
    elif moe:
        text |= {k: moe[k] for k in ("num_experts", "num_experts_per_tok", "moe_intermediate_size",
                                     "shared_expert_intermediate_size")}  # fmt: skip
        del text["intermediate_size"]  # as Qwen3.5's MoE config.json: no dense MLP
    if "vision" not in entry:
        return text
    vision = entry["vision"]["config"] | {"out_hidden_size": entry["hidden_size"]}
    return {"model_type": entry["vision"]["model_type"], "tie_word_embeddings": entry["tie_word_embeddings"],
            "text_config": text, "vision_config": vision}  # fmt: skip


@pytest.mark.parametrize("key, entry", NEW, ids=[k for k, _ in NEW])
def test_new_families_resolve_by_a_local_config(tmp_path, key, entry):
    (tmp_path / key).mkdir()
    (tmp_path / key / "config.json").write_text(json.dumps(_config_json(entry)))
    local, hub = find_model(key, tmp_path), find_model(entry["hub_ids"][0], NOWHERE)
    assert local.source.startswith("config.json at") and local.confidence == "high", local.source
    assert local.params == hub.params
    assert (local.shape.model_type, local.shape.mixers, local.shape.moe, local.shape.attn_output_gate) == (
        hub.shape.model_type, hub.shape.mixers, hub.shape.moe, hub.shape.attn_output_gate)  # fmt: skip


def test_lora_targets_each_kind_of_layer_where_it_is():
    """LoRA ``all`` on Qwen3.5-27B: q/k/v/o in the 16 full-attention layers, the Gated DeltaNet's projections in the
    other 48, the MLP in all 64 (the vision tower is frozen by default)."""
    base = {"model_name_or_path": "Qwen/Qwen3.5-27B", "stage": "sft", "finetuning_type": "lora", "lora_rank": 8,
            "bf16": True, "cutoff_len": 1024, "per_device_train_batch_size": 1}  # fmt: skip
    h = 5120
    full = (h + 12288) + 2 * (h + 1024) + (6144 + h)
    delta_net = (h + 10240) + (h + 6144) + 2 * (h + 48) + (6144 + h)
    mlp = 3 * (h + 17408)
    run = estimate_memory(base, gpu="H100").inputs
    assert run.trainable_params == 8 * (16 * full + 48 * delta_net + 64 * mlp)
    attention_only = estimate_memory(dict(base, lora_target="q_proj,v_proj"), gpu="H100").inputs
    assert attention_only.trainable_params == 8 * 16 * ((h + 12288) + (h + 1024))


@pytest.mark.parametrize(
    "options",
    [
        {"finetuning_type": "full", "deepspeed": {"zero_optimization": {"stage": 3}}},
        {"finetuning_type": "freeze", "freeze_vision_tower": False},
        {"finetuning_type": "lora", "quantization_bit": 4, "eval_strategy": "steps", "predict_with_generate": True},
        {"finetuning_type": "full", "fsdp": "full_shard auto_wrap"},
    ],
)
def test_new_families_estimate_under_every_sharding(options):
    for key, entry in NEW:
        config = {"model_name_or_path": entry["hub_ids"][0], "stage": "sft", "bf16": True, "cutoff_len": 512,
                  "per_device_train_batch_size": 1, **options}  # fmt: skip
        report = estimate_memory(config, gpu="H100", num_gpus=8)
        assert report.estimate.peak > report.inputs.total_params * 2 / 8 / 4, key  # more than its share of weights


def test_a_model_outside_the_catalogue_gets_no_other_familys_notes(tmp_path, monkeypatch):
    """The size in a folder's name once stood for the nearest catalogued model's shape, family and all: a local
    27B model of a type lf-lint does not know was told that Gemma 2 runs eager attention (Gemma 2 27B is the
    catalogued dense model nearest in size)."""
    (tmp_path / "Mystery-27B").mkdir()
    (tmp_path / "Mystery-27B" / "config.json").write_text(json.dumps({"model_type": "mystery_hybrid"}))
    info = find_model("Mystery-27B", tmp_path)
    assert info.shape.model_type == STAND_IN and info.confidence == "low" and info.params == 27e9
    assert "model_type mystery_hybrid) has no hidden_size, num_hidden_layers" in info.source
    assert "a plain decoder sized as" in info.source and "none of its family's specifics apply" in info.source
    assert not (info.shape.qk_norm or info.shape.tied or info.shape.qkv_bias) and info.shape.norms_per_layer == 2
    config = {"model_name_or_path": "Mystery-27B", "stage": "sft", "finetuning_type": "lora", "bf16": True}
    monkeypatch.chdir(tmp_path)
    report = estimate_memory(config, gpu="H100", workdir=tmp_path)
    assert report.inputs.attention == "sdpa" and not any("Gemma" in note for note in report.inputs.notes)
    gemma2 = estimate_memory(dict(config, model_name_or_path="google/gemma-2-27b"), gpu="H100")
    assert gemma2.inputs.attention == "eager" and any("Gemma 2 runs eager" in n for n in gemma2.inputs.notes)
    given = find_model(None, tmp_path, params=27e9)
    assert given.shape.model_type == STAND_IN and "a plain decoder sized as" in given.source


def test_a_known_name_with_an_unreadable_config_says_so(tmp_path):
    (tmp_path / "Qwen3.5-27B").mkdir()
    (tmp_path / "Qwen3.5-27B" / "config.json").write_text(json.dumps({"model_type": "qwen3_5"}))
    info = find_model("Qwen3.5-27B", tmp_path)
    assert info.source.startswith("built-in catalogue (Qwen3.5, qwen3.5-27b)")
    assert f"config.json at {tmp_path / 'Qwen3.5-27B' / 'config.json'} (model_type qwen3_5) has no" in info.source


def test_a_local_config_says_what_lf_lint_does_not_model(tmp_path):
    hybrid = {"model_type": "mystery", "hidden_size": 64, "num_hidden_layers": 4, "num_attention_heads": 4,
              "intermediate_size": 128, "vocab_size": 100, "linear_num_value_heads": 8,
              "layer_types": ["linear_attention", "linear_attention", "linear_attention", "full_attention"]}  # fmt: skip
    (tmp_path / "hybrid").mkdir()
    (tmp_path / "hybrid" / "config.json").write_text(json.dumps(hybrid))
    info = find_model("hybrid", tmp_path)
    assert info.confidence == "medium" and "linear_attention layers are counted as softmax attention" in info.source
    assert info.shape.model_type == "mystery" and not info.shape.mixers
    on_device = dict(GEMMA4_31B, text_config=dict(GEMMA4_31B["text_config"], hidden_size_per_layer_input=256,
                                                  num_kv_shared_layers=20), audio_config={"hidden_size": 1024})  # fmt: skip
    (tmp_path / "e-model").mkdir()
    (tmp_path / "e-model" / "config.json").write_text(json.dumps(on_device))
    info = find_model("e-model", tmp_path)
    assert info.confidence == "medium" and "per-layer embeddings" in info.source
    assert "reuse other layers' keys and values" in info.source and "audio encoder is not counted" in info.source
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "config.json").write_text(json.dumps(dict(hybrid, model_type="llama", layer_types=None,
                                                                    linear_num_value_heads=None)))  # fmt: skip
    assert find_model("plain", tmp_path).confidence == "high"


def test_qwen35_patch_embedding_is_a_conv3d(tmp_path, monkeypatch):
    """LLaMA-Factory 0.9.5 refuses any model with an nn.Conv3d on torch 2.9 (``model/loader.py``): Qwen3.5's vision
    tower embeds patches with one (``Qwen3_5VisionPatchEmbed``), Gemma 4's with an nn.Linear."""
    import contextlib
    import io

    from lf_lint.cli import main

    monkeypatch.chdir(tmp_path)

    def codes(model: str) -> set:
        (tmp_path / "cfg.yaml").write_text(f"model_name_or_path: {model}\nstage: sft\ndo_train: true\ndataset: d\n"
                                           "output_dir: o\nfinetuning_type: lora\n")  # fmt: skip
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            main(["cfg.yaml", "--no-datasets", "--format", "json", "--torch-version", "2.9.0+cu128"])
        return {d["code"] for d in json.loads(out.getvalue())["files"][0]["diagnostics"]}

    assert "LF275" in codes("Qwen/Qwen3.5-9B") and "LF275" in codes("Qwen/Qwen3.5-35B-A3B")
    assert "LF275" not in codes("google/gemma-4-31B-it")


def test_families_of_main_without_a_published_shape_are_named():
    """MiniCPM 5, Hy-MT2, MOSS-VL, ... are in LLaMA-Factory main's model list with no config.json lf-lint could read:
    estimated from the size in the name, saying which family it is, or not at all when the name has no size."""
    from lf_lint import LfLintError, estimate_memory

    base = {"stage": "sft", "do_train": True, "finetuning_type": "lora", "dataset": "d", "output_dir": "o", "bf16": True}
    hy = estimate_memory({**base, "model_name_or_path": "tencent/Hy-MT2-7B"}, llamafactory_version="0.9.6.dev0")
    assert hy.model.params == 7_000_000_000 and hy.model.confidence == "low"
    assert hy.model.source.startswith("Hy-MT2, in LLaMA-Factory main's model list (no published config.json found)")
    with pytest.raises(LfLintError, match=r"MOSS-VL, in LLaMA-Factory main's model list .* give --params"):
        estimate_memory({**base, "model_name_or_path": "OpenMOSS-Team/MOSS-VL-Instruct-0708"})
