"""The memory estimate: parameter counts against published sizes, the GPU table, the estimator's
arithmetic against LLaMA-Factory's own rules of thumb, the rules, the command line and the API.

Against the real LLaMA-Factory (parameter counts, trainable parameters, fp32 upcasting and saved
activations as its loader sets them up): tests/test_groundtruth.py. Against published measured
runs: benchmarks/memory_accuracy.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from lf_lint import LfLintError, estimate_memory
from lf_lint.catalogue import catalogue_entry, config_model_type
from lf_lint.cli import main
from lf_lint.memory.advice import bigger_batch, largest_batch, with_batch
from lf_lint.memory.estimate import GIB, estimate, saved_activations
from lf_lint.memory.gpus import find_gpu
from lf_lint.memory.model import active_params, catalogue, count_params, find_model, shape_from_config
from lf_lint.memory.vision import most_image_tokens

ENTRIES = {e["key"]: e for e in catalogue().values()}
NOWHERE = Path("/nonexistent-workdir")  # no local model folder can shadow a hub id


def _published(text: str) -> tuple[float, float] | None:
    """'7.61B' -> (7.61e9, tolerance): half a unit of the last digit given, plus 1%."""
    match = re.match(r"~?\s*([\d,.]+)\s*B", text)
    if not match or "nominal" in text or "," in match.group(1):
        return None
    number = match.group(1)
    decimals = len(number.split(".")[1]) if "." in number else 0
    value = float(number) * 1e9
    return value, 0.5 * 10 ** (9 - decimals) + 0.01 * value


@pytest.mark.parametrize("key", sorted(k for k, e in ENTRIES.items() if e.get("published_params")))
def test_catalogued_counts_match_published_sizes(key):
    entry = ENTRIES[key]
    published = _published(entry["published_params"]["value"])
    if published is None:
        pytest.skip(f"no plain size in {entry['published_params']['value']!r}")
    info = find_model(entry["hub_ids"][0], NOWHERE)
    value, tolerance = published
    counted = info.params
    if entry["published_params"].get("scope") == "language model":  # the card lists the vision encoder apart
        counted -= info.shape.vision.params
    assert abs(counted - value) <= tolerance, (key, counted, entry["published_params"])


@pytest.mark.parametrize(
    "hub_id, exact",
    [
        ("meta-llama/Llama-2-7b-hf", 6_738_415_616),  # the count Meta's and HF's model cards give
        ("meta-llama/Meta-Llama-3-8B", 8_030_261_248),
        ("mistralai/Mistral-7B-v0.1", 7_241_732_096),
        ("internlm/internlm2-7b", 7_737_708_544),  # loaded-weight count reported for the checkpoint
    ],
)
def test_exact_counts(hub_id, exact):
    assert find_model(hub_id, NOWHERE).params == exact


def test_gemma2_non_embedding_counts_match_the_report():
    # Gemma 2 technical report, Table 1 (non-embedding parameters)
    for hub_id, non_embedding in [
        ("google/gemma-2-2b", 2_024_517_888),
        ("google/gemma-2-9b", 8_324_201_984),
        ("google/gemma-2-27b", 26_047_480_320),
    ]:
        info = find_model(hub_id, NOWHERE)
        assert info.params - info.shape.vocab * info.shape.hidden == non_embedding, hub_id


def test_moe_active_parameters():
    info = find_model("Qwen/Qwen3-30B-A3B", NOWHERE)
    assert abs(info.params - 30.5e9) < 0.1e9 and abs(active_params(info.shape) - 3.3e9) < 0.1e9


def test_shape_from_config_json_defaults():
    qwen2 = shape_from_config({"model_type": "qwen2", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                               "num_key_value_heads": 2, "intermediate_size": 128, "vocab_size": 100})  # fmt: skip
    assert qwen2.qkv_bias and not qwen2.tied and qwen2.head_dim == 16
    gemma = shape_from_config({"model_type": "gemma2", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                               "num_key_value_heads": 2, "head_dim": 32, "intermediate_size": 128, "vocab_size": 100})  # fmt: skip
    assert gemma.tied and gemma.norms_per_layer == 4 and gemma.head_dim == 32
    composite = shape_from_config({"model_type": "gemma3", "text_config": {"model_type": "gemma3_text", "hidden_size": 64,
                                   "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 16,
                                   "intermediate_size": 96, "vocab_size": 100}})  # fmt: skip
    assert composite.qk_norm and composite.kv_heads == 1


# Qwen2.5-VL-7B-Instruct's config.json (flat, as on the hub): Qwen2-7B's language model and a 32-block vision tower
QWEN25_VL_7B = {"model_type": "qwen2_5_vl", "hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28,
                "num_attention_heads": 28, "num_key_value_heads": 4, "vocab_size": 152064, "tie_word_embeddings": False,
                "vision_config": {"depth": 32, "hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16,
                                  "out_hidden_size": 3584, "patch_size": 14, "spatial_merge_size": 2,
                                  "temporal_patch_size": 2, "in_chans": 3}}  # fmt: skip


def test_vision_language_models_count_their_vision_tower():
    """The language model counts as Qwen2-7B (7.62B, with q/k/v biases); the vision encoder is the Qwen2-VL
    report's 675M (arXiv 2409.12191, Table 1; Qwen2.5-VL's adds a gated MLP). The tests against the real modelling
    code are in test_groundtruth.py (test_memory_components_match_llamafactory)."""
    shape = shape_from_config(QWEN25_VL_7B)
    text_only = shape_from_config(
        {k: v for k, v in QWEN25_VL_7B.items() if k != "vision_config"} | {"model_type": "qwen2"}
    )
    assert count_params(text_only) == 7_615_616_512 and shape.qkv_bias and shape.model_type == "qwen2_5_vl"
    assert count_params(shape) - count_params(text_only) == shape.vision.params == 676_550_144
    assert count_params(shape) == 8_292_166_656  # the model page's "8.29B"
    qwen2_vl = dict(QWEN25_VL_7B, model_type="qwen2_vl",
                    vision_config={"depth": 32, "embed_dim": 1280, "mlp_ratio": 4, "num_heads": 16, "hidden_size": 3584})  # fmt: skip
    assert round(shape_from_config(qwen2_vl).vision.params / 1e6) == 676  # the report's "675M" truncates 675.76M


def test_catalogued_vision_language_models():
    """Gemma 3's SigLIP encoder is 417M parameters in every size (Gemma 3 report, arXiv 2503.19786, Table 1); the
    Qwen-VL entries count their vision encoder too (Qwen2-VL's published totals are checked with the others)."""
    for size in ("4b", "12b", "27b"):
        vision = find_model(f"google/gemma-3-{size}-it", NOWHERE).shape.vision
        assert round(vision.tower / 1e6) == 417
    assert find_model("google/gemma-3-1b-it", NOWHERE).shape.vision is None  # text-only
    qwen3 = find_model("Qwen/Qwen3-VL-30B-A3B-Instruct", NOWHERE).shape
    assert qwen3.model_type == "qwen3_vl_moe" and qwen3.moe.experts == 128 and qwen3.vision.deepstack == 3
    assert find_model("Qwen/Qwen3-VL-4B-Instruct", NOWHERE).shape.tied


def test_the_catalogue_lookup_names_the_type_the_shape_has():
    """LF276 reads a catalogued model's type without building its shape (catalogue.py): the same entry and type as
    find_model, for every hub id, its last part and a quantized upload of it."""
    for hub_id in catalogue():
        expected = find_model(hub_id, NOWHERE).shape.model_type
        for name in (hub_id, hub_id.upper(), f"{hub_id}-AWQ", f"{hub_id}-GPTQ-Int4"):
            assert config_model_type(catalogue_entry(name)) == expected, name
    assert catalogue_entry("someone/unknown-7b") is None


def test_an_uncounted_vision_encoder_is_named(tmp_path):
    model = tmp_path / "llava"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "llava", "vision_config": {"model_type": "clip_vision_model"},
                                                   "text_config": {"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2,
                                                                   "num_attention_heads": 4, "intermediate_size": 128, "vocab_size": 100}}))  # fmt: skip
    info = find_model("llava", tmp_path)
    assert "the vision encoder of llava is not counted" in info.source and info.confidence == "medium"


def test_conv3d_models_on_torch_2_9(tmp_path, monkeypatch):
    """LF275 takes the torch release from --torch-version, from [tool.lf-lint] torch-version, or from what is
    installed where lf-lint runs; a local config.json's model type or a catalogued vision-language model."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cfg.yaml").write_text("model_name_or_path: Qwen/Qwen3-VL-8B-Instruct\nstage: sft\ndo_train: true\n"
                                       "dataset: d\noutput_dir: o\nfinetuning_type: lora\n")  # fmt: skip

    def codes(*argv):
        return {
            d["code"]
            for d in json.loads(_run("cfg.yaml", "--no-datasets", "--format", "json", *argv))["files"][0]["diagnostics"]
        }

    assert "LF275" in codes("--torch-version", "2.9.0+cu128")
    assert "LF275" not in codes("--torch-version", "2.10.0")
    assert "LF275" not in codes("--torch-version", "2.9.1", "--llamafactory-version", "0.9.4")  # 0.9.5's check
    monkeypatch.setattr("lf_lint.engine.installed_version", lambda name: "2.9.1" if name == "torch" else None)
    assert "LF275" in codes()
    (tmp_path / "gemma").mkdir()  # SigLIP: Conv2d
    (tmp_path / "gemma" / "config.json").write_text(json.dumps({"model_type": "gemma3"}))
    (tmp_path / "cfg.yaml").write_text(
        (tmp_path / "cfg.yaml").read_text().replace("Qwen/Qwen3-VL-8B-Instruct", "gemma")
    )
    assert "LF275" not in codes()


def test_catalogued_remote_code_families_need_trust_remote_code(tmp_path, monkeypatch):
    """InternLM2, Baichuan 2 and ChatGLM ship their own modelling code: transformers knows no such model type."""
    monkeypatch.chdir(tmp_path)
    base = "stage: sft\ndo_train: true\nfinetuning_type: lora\ndataset: d\noutput_dir: o\n"

    def codes(model: str, extra: str = "") -> set:
        (tmp_path / "cfg.yaml").write_text(f"model_name_or_path: {model}\n{base}{extra}")
        return {
            d["code"]
            for d in json.loads(_run("cfg.yaml", "--no-datasets", "--format", "json"))["files"][0]["diagnostics"]
        }

    for model in ("internlm/internlm2-chat-7b", "baichuan-inc/Baichuan2-7B-Chat", "THUDM/glm-4-9b-chat"):
        assert "LF276" in codes(model) and "LF276" not in codes(model, "trust_remote_code: true\n"), model
    assert "LF276" not in codes("Qwen/Qwen2.5-7B-Instruct")


def test_the_data_bounds_a_trained_tower_by_its_images(tmp_path):
    """With the training data read, the tower sees at most the most images of any example, each at most
    image_max_pixels (sides rounded to whole image tokens); the cut-off still caps it, text-only data needs none."""
    (tmp_path / "qwen25vl").mkdir()
    (tmp_path / "qwen25vl" / "config.json").write_text(json.dumps(QWEN25_VL_7B))
    (tmp_path / "data").mkdir()
    rows = [{"messages": [{"role": "user", "content": "<image><image>Compare."}, {"role": "assistant", "content": "Same."}],
             "images": ["a.png", "b.png"]},
            {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]}]  # fmt: skip
    (tmp_path / "data" / "mllm.json").write_text(json.dumps(rows))
    (tmp_path / "data" / "text.json").write_text(json.dumps(rows[1:]))
    info = {"mllm": {"file_name": "mllm.json", "formatting": "sharegpt", "columns": {"messages": "messages", "images": "images"},
                     "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"}}}  # fmt: skip
    info["text"] = dict(info["mllm"], file_name="text.json", columns={"messages": "messages"})
    (tmp_path / "data" / "dataset_info.json").write_text(json.dumps(info))
    base = {"model_name_or_path": "qwen25vl", "stage": "sft", "do_train": True, "finetuning_type": "full", "bf16": True,
            "template": "qwen2_vl", "dataset": "mllm", "output_dir": "o", "per_device_train_batch_size": 1,
            "freeze_vision_tower": False, "cutoff_len": 4096}  # fmt: skip

    def patches(**args) -> int:
        return estimate_memory(dict(base, **args), gpu="H100", workdir=tmp_path).inputs.vision.patches

    # image_max_pixels 768 x 768 by default: 3,009 patches, 3,564 once a long thin image's sides are rounded
    # (the most over every aspect ratio; a check against transformers' own smart_resize is in test_groundtruth.py)
    assert most_image_tokens(768 * 768, 28) == 891
    assert patches() == 2 * 891 * 4
    assert patches(image_max_pixels=256 * 256) == 2 * most_image_tokens(256 * 256, 28) * 4
    assert patches(cutoff_len=1024) == 4 * 1024  # two images would not fit: the cut-off bounds them
    assert patches(dataset="text") == 0
    report = estimate_memory(dict(base), gpu="H100", workdir=tmp_path)
    assert "the data's most images per example (2)" in " ".join(report.estimate.notes)


def test_freeze_module_names_of_moe_and_vision_models(tmp_path, monkeypatch):
    """LF278 knows what freeze tuning accepts for MoE and vision-language layouts too: Mixtral's block is
    `block_sparse_moe` with separate w1/w2/w3 experts before transformers 5 and `mlp` from 5; a Qwen-VL tower adds
    its block children (`attn`, `norm1`) and its stem and projector outside the layers (`proj`, `ln_q`)."""
    monkeypatch.chdir(tmp_path)
    base = "stage: sft\ndo_train: true\nfinetuning_type: freeze\ndataset: d\noutput_dir: o\n"

    def codes(model: str, extra: str, *argv) -> set:
        (tmp_path / "cfg.yaml").write_text(f"model_name_or_path: {model}\n{base}{extra}")
        diagnostics = json.loads(_run("cfg.yaml", "--no-datasets", "--format", "json", *argv))["files"][0][
            "diagnostics"
        ]
        return {d["code"] for d in diagnostics}

    mixtral = "mistralai/Mixtral-8x7B-Instruct-v0.1"
    old, new = ("--transformers-version", "4.57.1"), ("--transformers-version", "5.6.0")
    assert "LF278" not in codes(mixtral, "freeze_trainable_modules: block_sparse_moe,w1\n", *old)
    assert "LF278" in codes(mixtral, "freeze_trainable_modules: block_sparse_moe\n", *new)
    assert "LF278" not in codes(mixtral, "freeze_trainable_modules: mlp,self_attn\n", *new)
    qwen_vl = "Qwen/Qwen2.5-VL-7B-Instruct"
    assert "LF278" not in codes(qwen_vl, "freeze_trainable_modules: attn,norm1\nfreeze_extra_modules: ln_q\n")
    assert "LF278" in codes(qwen_vl, "freeze_trainable_modules: q_proj\n")
    assert "LF278" in codes(qwen_vl, "freeze_extra_modules: visual\n")


def test_vision_tower_frozen_by_default(tmp_path):
    """LLaMA-Factory freezes the vision tower and projector unless told otherwise: they stay 16-bit, with no
    gradients or optimizer states."""
    model = tmp_path / "qwen25vl"
    model.mkdir()
    (model / "config.json").write_text(json.dumps(QWEN25_VL_7B))
    base = {"model_name_or_path": str(model), "finetuning_type": "full", "bf16": True, "cutoff_len": 1024}
    frozen = estimate_memory(base, gpu="H100")
    trained = estimate_memory(dict(base, freeze_vision_tower=False, freeze_multi_modal_projector=False), gpu="H100")
    vision = 676_550_144
    assert frozen.inputs.trainable_params == 7_615_616_512 and trained.inputs.trainable_params == 7_615_616_512 + vision
    assert not frozen.inputs.notes and "vision tower trains" in " ".join(trained.inputs.notes)


@pytest.mark.parametrize("method", ["full", "freeze", "lora"])
def test_a_frozen_language_model_is_recorded_in_full_below_a_trained_projector(tmp_path, method):
    """With freeze_language_model its layers have nothing to train: LLaMA-Factory checkpoints none of them, and
    autograd records each in full when the projector below them trains (LoRA: the tower, as ``lora_target: all``
    never names the projector's linears, ``find_all_linear_modules``); nothing when nothing below trains."""
    model = tmp_path / "qwen25vl"
    model.mkdir(exist_ok=True)
    (model / "config.json").write_text(json.dumps(QWEN25_VL_7B))
    base = {"model_name_or_path": str(model), "finetuning_type": method, "bf16": True, "cutoff_len": 1024,
            "freeze_language_model": True}  # fmt: skip
    below = {"freeze_vision_tower": False} if method == "lora" else {"freeze_multi_modal_projector": False}
    projector = estimate_memory(dict(base, **below)).inputs
    assert (projector.checkpointed_layers, projector.full_layers) == (0, QWEN25_VL_7B["num_hidden_layers"])
    nothing = estimate_memory(base).inputs
    assert (nothing.checkpointed_layers, nothing.full_layers) == (0, 0)


def test_a_trained_vision_tower_keeps_activations_per_patch(tmp_path):
    """Every image token stands for 4 patches, and the longest sequence may be all image tokens: the tower's
    blocks keep their inputs (checkpointed) or everything (not); a frozen tower keeps nothing. Per-patch bytes are
    checked against the real models in tests/test_groundtruth.py."""
    model = tmp_path / "qwen25vl"
    model.mkdir()
    (model / "config.json").write_text(json.dumps(QWEN25_VL_7B))
    base = {
        "model_name_or_path": str(model),
        "finetuning_type": "full",
        "bf16": True,
        "cutoff_len": 1024,
        "per_device_train_batch_size": 1,
    }
    tower = {"freeze_vision_tower": False}

    def vision_bytes(**args) -> float:
        run = estimate_memory(dict(base, **args), gpu="H100").inputs
        return saved_activations(run) - saved_activations(run._replace(vision=None))

    assert vision_bytes() == 0.0
    frozen_run = estimate_memory(base, gpu="H100").inputs
    assert frozen_run.vision is None or not (frozen_run.vision.blocks or frozen_run.vision.projector)
    run = estimate_memory(dict(base, **tower), gpu="H100").inputs
    assert run.vision.patches == 4 * 1024 and run.vision.blocks == 32 and run.vision.stem
    width = 1280  # pixel values + each block's input + the merger (8 x width) and the window reordering (4 x width)
    assert vision_bytes(**tower) == 4096 * (2 * 3 * 2 * 14 * 14 + 32 * 2 * width + 12 * width)
    unchecked = vision_bytes(**tower, disable_gradient_checkpointing=True)
    assert unchecked > 15 * vision_bytes(**tower)  # every block's activations: about 2 MB per patch
    # freeze tuning trains blocks 26 and 27 (the language model's last two layer numbers); blocks 28-31 are frozen
    # but recorded in full, since gradients pass through them
    freeze = estimate_memory(dict(base, finetuning_type="freeze", **tower), gpu="H100").inputs.vision
    assert (freeze.blocks, freeze.recorded, freeze.stem) == (2, 4, False)
    assert estimate_memory(dict(base, freeze_multi_modal_projector=False), gpu="H100").inputs.vision.projector
    assert with_batch(run, 4, 1).vision.patches == 4 * 4096  # a bigger micro-batch, more images (LF603, suggest)
    gemma = estimate_memory({"model_name_or_path": "google/gemma-3-4b-it", "finetuning_type": "lora", "bf16": True,
                             "cutoff_len": 1024, "per_device_train_batch_size": 1, "freeze_vision_tower": False},
                            gpu="H100").inputs  # fmt: skip
    assert gemma.vision.patches == 16 * 1024 and gemma.vision.blocks == 27  # 4,096 patches pooled into 256 tokens


def test_model_sources_in_order(tmp_path, monkeypatch):
    local = tmp_path / "my-model"
    local.mkdir()
    (local / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2,
                                                   "num_attention_heads": 4, "intermediate_size": 128, "vocab_size": 100}))  # fmt: skip
    info = find_model("my-model", tmp_path)
    assert info.source.startswith("config.json at") and info.confidence == "high"
    assert info.params == count_params(info.shape)
    cache = tmp_path / "hf" / "hub" / "models--org--cached-13b" / "snapshots" / "abc"
    cache.mkdir(parents=True)
    (cache / "config.json").write_text((local / "config.json").read_text())
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    assert find_model("org/cached-13b", tmp_path).source.startswith("config.json at")
    assert find_model("Qwen/Qwen2.5-7B-Instruct", tmp_path).source.startswith("built-in catalogue")
    guessed = find_model("someone/mystery-13B-chat", tmp_path)
    assert guessed.confidence == "low" and guessed.params == 13e9
    assert find_model("someone/mystery", tmp_path) is None
    assert find_model("someone/mystery", tmp_path, params=3e9).params == 3e9


@pytest.mark.parametrize(
    "typed, name",
    [("A100-40G", "A100-SXM4-40GB"), ("A100 80GB", "A100-SXM4-80GB"), ("H100", "H100-SXM-80GB"), ("H20", "H20-96GB"),
     ("L40S", "L40S"), ("A10G", "A10G"), ("RTX 4090", "RTX-4090"), ("3090", "RTX-3090"), ("V100-32G", "V100-32GB"),
     ("T4", "T4"), ("MI300X", "MI300X"), ("Ascend 910B", "Ascend-910B"), ("nvidia a100-sxm4-80gb", "A100-SXM4-80GB")],
)  # fmt: skip
def test_gpu_names_people_type(typed, name):
    assert find_gpu(typed).name == name


def _report(yaml: str, **kwargs):
    base = {"model_name_or_path": "meta-llama/Meta-Llama-3-8B", "stage": "sft", "do_train": True, "dataset": "d",
            "output_dir": "o", "bf16": True, "per_device_train_batch_size": 1, "cutoff_len": 1024}  # fmt: skip
    import yaml as pyyaml

    return estimate_memory({**base, **(pyyaml.safe_load(yaml) or {})}, **kwargs)


def test_bytes_per_parameter_match_llamafactory_readme():
    # LLaMA-Factory README "Hardware Requirement": full AMP 18x GB, pure_bf16 8x GB (model states per parameter)
    full = _report("finetuning_type: full").estimate
    params = find_model("meta-llama/Meta-Llama-3-8B", NOWHERE).params
    states = (full.weights + full.gradients + full.optimizer) / params
    embedding = 128256 * 4096 / params  # the embedding lookup has no autocast copy
    assert abs(states - (18 - 2 * embedding)) < 0.01
    pure = _report("finetuning_type: full\npure_bf16: true\nbf16: false").estimate
    assert abs((pure.weights + pure.gradients + pure.optimizer) / params - 8) < 0.01


def test_estimates_move_the_right_way():
    def peak(yaml, **kwargs):
        return _report(yaml, **kwargs).estimate.device

    assert peak("finetuning_type: lora") < peak("finetuning_type: freeze") < peak("finetuning_type: full")
    assert peak("quantization_bit: 4") < peak("finetuning_type: lora")
    assert peak("per_device_train_batch_size: 4") > peak("per_device_train_batch_size: 2")
    assert peak("cutoff_len: 4096") > peak("cutoff_len: 2048")
    assert peak("disable_gradient_checkpointing: true") > peak("finetuning_type: lora")
    assert peak("enable_liger_kernel: true\nper_device_train_batch_size: 4") < peak("per_device_train_batch_size: 4")
    zero3 = {"deepspeed": {"zero_optimization": {"stage": 3}}}
    import yaml

    assert (
        peak("finetuning_type: full\n" + yaml.safe_dump(zero3), num_gpus=8)
        < peak("finetuning_type: full", num_gpus=8) / 4
    )
    assert peak("stage: dpo\nfinetuning_type: full\ndataset: d") > peak("stage: sft\nfinetuning_type: full")


def test_larger_batch_advice_keeps_the_examples_per_step():
    report = _report("model_name_or_path: Qwen/Qwen2.5-0.5B\nper_device_train_batch_size: 1\ngradient_accumulation_steps: 16",
                     gpu="H100")  # fmt: skip
    batch, accumulation, need = bigger_batch(report.inputs, 1, 16, report.gpu, report.variant)
    assert batch * accumulation == 16 and batch >= 2 and need <= 0.8 * 79.2
    assert largest_batch(report.inputs, 1, report.gpu) >= batch
    split = {"per_device_train_batch_size": batch, "gradient_accumulation_steps": accumulation}
    assert estimate(report.variant(split)).device / GIB == pytest.approx(need)
    assert estimate(with_batch(report.inputs, batch, 1)).device / GIB == pytest.approx(
        need
    )  # nothing depends on it here


def test_memory_rules(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "full.yaml").write_text("model_name_or_path: meta-llama/Meta-Llama-3-8B\nstage: sft\ndo_train: true\n"
                                        "finetuning_type: full\ndataset: d\noutput_dir: o\nbf16: true\n")  # fmt: skip
    codes = lambda *argv: [d["code"] for d in json.loads(_run(*argv))["files"][0]["diagnostics"]]  # noqa: E731
    assert "LF601" in codes("full.yaml", "--gpu", "A100-40G", "--no-datasets", "--format", "json")
    assert "LF601" not in codes("full.yaml", "--no-datasets", "--format", "json")  # no GPU, no verdict
    assert "LF605" in codes("full.yaml", "--gpu", "V100", "--no-datasets", "--format", "json")


def _run(*argv) -> str:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main(list(argv))
    return out.getvalue()


def test_json_memory_object(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cfg.yaml").write_text("model_name_or_path: Qwen/Qwen3-0.6B\nstage: sft\ndo_train: true\ndataset: d\n"
                                       "output_dir: o\nbf16: true\nper_device_train_batch_size: 2\n")  # fmt: skip
    memory = json.loads(_run("cfg.yaml", "--gpu", "L40S", "--no-datasets", "--format", "json"))["files"][0]["memory"]
    assert memory["gpu"] == "L40S" and memory["capacity_gib"] == 44.5 and memory["fits"] is True
    assert set(memory["breakdown_gib"]) == {"weights", "gradients", "optimizer", "activations", "logits", "overhead"}
    assert memory["peak_gib"] == pytest.approx(sum(memory["breakdown_gib"].values()), abs=0.05)
    assert memory["model"]["source"].startswith("built-in catalogue")


def test_cli_gpu_errors_and_suggest(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cfg.yaml").write_text("model_name_or_path: Qwen/Qwen2.5-0.5B\nstage: sft\ndo_train: true\ndataset: d\n"
                                       "output_dir: o\nbf16: true\nper_device_train_batch_size: 1\ngradient_accumulation_steps: 16\n")  # fmt: skip
    assert main(["cfg.yaml", "--gpu", "A101"]) == 2
    assert "did you mean" in capsys.readouterr().err
    assert main(["suggest", "cfg.yaml"]) == 2
    assert main(["suggest", "cfg.yaml", "--gpu", "A10G", "--num-examples", "5000"]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if re.match(r"\s+\d+\s+\d+\s", line)]
    assert {(int(r[0]), int(r[1])) for r in rows} == {(1, 16), (2, 8), (4, 4), (8, 2), (16, 1)}
    assert "<- current" in out and "give --num-examples" not in out  # the steps are known
    assert main(["suggest", "cfg.yaml", "--gpu", "A10G", "--no-datasets"]) == 0
    assert "give --num-examples or let lf-lint count the data for steps and time" in capsys.readouterr().out
    assert (
        main(
            [
                "suggest",
                "cfg.yaml",
                "--gpu",
                "H100",
                "--target-batch",
                "32",
                "--format",
                "json",
                "--num-examples",
                "5000",
            ]
        )
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert data["target_batch"] == 32 and all(c["batch"] * c["accumulation"] == 32 for c in data["choices"])
    assert data["choices"][0]["fits"] and all(c["total_steps"] for c in data["choices"])


def test_api_errors():
    with pytest.raises(LfLintError, match="unknown GPU"):
        _report("", gpu="Z9000")
    with pytest.raises(LfLintError, match="no shape known"):
        _report("model_name_or_path: someone/mystery")
    assert _report("model_name_or_path: someone/mystery", params=7e9).model.confidence == "low"
    assert _report("", gpu_memory=24).verdict.capacity_gib == 24


def test_memory_efficient_optimizers():
    def states(yaml):
        report = _report("finetuning_type: full\n" + yaml)
        return report.estimate.optimizer, report.estimate.gradients

    adam, adam_grads = states("")
    galore, galore_grads = states("use_galore: true\ngalore_rank: 128")
    layerwise, layerwise_grads = states("use_galore: true\ngalore_rank: 128\ngalore_layerwise: true")
    assert galore < adam / 4 and galore_grads == adam_grads and layerwise_grads == 0 and layerwise == galore
    badam, badam_grads = states("use_badam: true")
    assert badam < galore and badam_grads < adam_grads / 10
    assert states("optim: adamw_8bit")[0] == pytest.approx(adam * (2 + 8 / 256) / 8)
    assert states("optim: sgd")[0] == 0


def test_gpu_from_pyproject(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text('[tool.lf-lint]\ngpu = "A10G"\ngpu-memory = 20\nparams = 7e9\n')
    (tmp_path / "cfg.yaml").write_text(
        "model_name_or_path: someone/mystery\nstage: sft\ndo_train: true\ndataset: d\noutput_dir: o\nbf16: true\n"
    )
    memory = json.loads(_run("cfg.yaml", "--no-datasets", "--format", "json"))["files"][0]["memory"]
    assert (memory["gpu"], memory["capacity_gib"], memory["model"]["params"]) == ("A10G", 20.0, 7_000_000_000)
    memory = json.loads(_run("cfg.yaml", "--no-datasets", "--format", "json", "--gpu", "H100"))["files"][0]["memory"]
    assert (memory["gpu"], memory["capacity_gib"]) == ("H100-SXM-80GB", 79.2)  # the card named on the command line wins


def test_torch_compile_is_named_as_not_modelled():
    assert any("torch_compile is not modelled" in note for note in _report("torch_compile: true").estimate.notes)
    assert not any("torch_compile" in note for note in _report("finetuning_type: lora").estimate.notes)


def test_deepspeed_step_is_the_peak_on_few_gpus():
    """ZeRO-2 on one GPU: the optimizer step (flattened 16-bit gradients and their fp32 copy, 6 bytes per parameter)
    outweighs a 1,024-token micro-batch; the breakdown then holds no activations or logits, and still adds up."""
    zero2 = "finetuning_type: full\ndeepspeed: {zero_optimization: {stage: 2}}"
    one = _report(zero2, num_gpus=1).estimate
    params = find_model("meta-llama/Meta-Llama-3-8B", NOWHERE).params
    assert one.phase == "optimizer step"
    assert one.activations == one.logits == 0.0
    assert sum(one.breakdown().values()) == pytest.approx(one.device / GIB, abs=0.05)
    assert (one.weights + one.gradients + one.optimizer) / params == pytest.approx(16.0)  # 2 + 2 + 12, nothing sharded
    assert one.allocated - (one.weights + one.gradients + one.optimizer) >= 6 * params  # the step's temporaries
    eight = _report(zero2, num_gpus=8).estimate
    assert (eight.weights + eight.gradients + eight.optimizer) / params == pytest.approx(2 + 14 / 8)


def test_fsdp_parts_and_phases():
    """FSDP (lf_lint/memory/fsdp.py, measured in tests/test_groundtruth.py): fp32 parameters, gradients and Adam
    sharded, no autocast copies; Llama 3's large embeddings make the root's end of backward the peak for a short
    micro-batch; the gradients are not yet rebuilt at the start of backward; shard_grad_op keeps every layer
    gathered through the backward; LoRA gathers frozen layers only. (With ``low_cpu_mem_usage: false`` the model
    loads on the CPU: loading, test_loading_peaks, is not the peak.)"""
    full = (
        "finetuning_type: full\ncutoff_len: 512\nper_device_train_batch_size: 1\nfsdp: full_shard auto_wrap\n"
        "low_cpu_mem_usage: false"
    )
    params = find_model("meta-llama/Meta-Llama-3-8B", NOWHERE).params
    short = _report(full, num_gpus=8).estimate
    assert short.phase == "end of backward"
    assert (short.weights + short.gradients + short.optimizer) / params == pytest.approx(16 / 8)  # no autocast copy
    assert sum(short.breakdown().values()) == pytest.approx(short.device / GIB, abs=0.05)
    root = 2 * 128256 * 4096 + 4096
    assert short.allocated - 16 / 8 * params == pytest.approx(6 * root - 4 * root / 8, rel=1e-6)
    long = _report(full.replace("cutoff_len: 512", "cutoff_len: 8192"), num_gpus=8).estimate
    assert long.phase == "forward/backward" and long.gradients == 0.0  # freed at the forward, rebuilt in backward
    long_yaml = full.replace("cutoff_len: 512", "cutoff_len: 8192")
    zero2_like = _report(long_yaml.replace("full_shard", "shard_grad_op"), num_gpus=8).estimate
    layer = (params - root) // 32
    assert zero2_like.allocated - long.allocated == pytest.approx(2 * 31 * layer)  # the other layers stay gathered
    lora = _report(long_yaml.replace("finetuning_type: full", "finetuning_type: lora"), num_gpus=8).estimate
    assert lora.phase == "forward/backward" and lora.gradients < 0.01 * GIB


def test_advice_estimates_go_through_the_same_mapping(tmp_path, monkeypatch):
    """The remedies' and suggest's figures are the estimates of the changed config itself: ZeRO-3 as LLaMA-Factory's
    example file has it, and a DeepSpeed ZeRO-2 split whose accumulation changes (a fresh gradient partition per
    later micro-batch, deepspeed.py)."""
    from lf_lint.memory.deepspeed import LLAMAFACTORY_ZERO3

    monkeypatch.chdir(tmp_path)
    full = "finetuning_type: full\nper_device_train_batch_size: 2\ngradient_accumulation_steps: 4"
    (tmp_path / "full.yaml").write_text(
        "model_name_or_path: meta-llama/Meta-Llama-3-8B\nstage: sft\ndo_train: true\ndataset: d\noutput_dir: o\n"
        f"bf16: true\ncutoff_len: 1024\n{full}\n"
    )
    found = json.loads(_run("full.yaml", "--gpu", "A100-40G", "--num-gpus", "8", "--no-datasets", "--format", "json"))
    oom = next(d for d in found["files"][0]["diagnostics"] if d["code"] == "LF601")
    zero3 = re.search(
        r"ds_z3_config\.json \(shard weights, gradients and optimizer\) -> est\. ([\d.]+) GiB", oom["fix"]
    )
    direct = _report(f"{full}\ndeepspeed: {json.dumps(LLAMAFACTORY_ZERO3)}", num_gpus=8, gpu="A100-40G")
    assert zero3 and float(zero3.group(1)) == pytest.approx(direct.estimate.device / GIB, abs=0.05)

    zero2 = full + "\ndeepspeed: {zero_optimization: {stage: 2}}"
    report = _report(zero2, num_gpus=2)
    one = report.variant({"per_device_train_batch_size": 8, "gradient_accumulation_steps": 1})
    assert one.backward_bytes == _report(zero2.replace("2\ngradient_accumulation_steps: 4", "8\ngradient_accumulation_steps: 1"),
                                         num_gpus=2).inputs.backward_bytes  # fmt: skip
    assert one.backward_bytes < report.inputs.backward_bytes  # no fresh partition without accumulation


ACCELERATE_FSDP = """compute_environment: LOCAL_MACHINE
distributed_type: FSDP
fsdp_config:
  fsdp_auto_wrap_policy: TRANSFORMER_BASED_WRAP
  fsdp_backward_prefetch: BACKWARD_PRE
  fsdp_offload_params: false
  fsdp_sharding_strategy: FULL_SHARD
  fsdp_use_orig_params: true
mixed_precision: bf16
num_machines: 1
num_processes: 4
"""


def test_quantization_under_fsdp_that_loads_sharded(tmp_path, monkeypatch):
    """LF294 under FSDP: transformers' is_fsdp_enabled() needs ACCELERATE_USE_FSDP and FSDP_CPU_RAM_EFFICIENT_LOADING.
    An accelerate FSDP launch sets both (its cpu_ram_efficient_loading defaults to true); a YAML `fsdp` sets the
    second from fsdp_config (default false), and the first only before transformers 5."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "fsdp.yaml").write_text(ACCELERATE_FSDP)
    (tmp_path / "no-efficient.yaml").write_text(
        ACCELERATE_FSDP.replace("fsdp_config:\n", "fsdp_config:\n  fsdp_cpu_ram_efficient_loading: false\n")
    )
    base = "model_name_or_path: meta-llama/Meta-Llama-3-8B\nstage: sft\ndo_train: true\nfinetuning_type: lora\ndataset: d\noutput_dir: o\n"

    def codes(extra: str, *argv) -> set:
        (tmp_path / "cfg.yaml").write_text(base + extra)
        diagnostics = json.loads(_run("cfg.yaml", "--no-datasets", "--format", "json", *argv))["files"][0][
            "diagnostics"
        ]
        return {d["code"] for d in diagnostics}

    assert "LF294" in codes("quantization_bit: 8\n", "--accelerate-config", "fsdp.yaml")
    assert "LF294" not in codes("quantization_bit: 4\n", "--accelerate-config", "fsdp.yaml")
    assert "LF294" not in codes("quantization_bit: 8\n", "--accelerate-config", "no-efficient.yaml")
    yaml_fsdp = 'quantization_bit: 8\nfsdp: full_shard auto_wrap\nfsdp_config: {"cpu_ram_efficient_loading": true}\n'
    assert "LF294" in codes(yaml_fsdp, "--num-gpus", "2", "--transformers-version", "4.57.1")
    assert "LF294" not in codes(yaml_fsdp, "--num-gpus", "2", "--transformers-version", "5.6.0")  # torchrun
    assert "LF294" not in codes("quantization_bit: 8\nfsdp: full_shard auto_wrap\n", "--num-gpus", "2")


def test_accelerate_config_sets_the_launch_and_the_sharding(tmp_path, monkeypatch, capsys):
    """`accelerate launch --config_file`: its processes, and FSDP or DeepSpeed as the Trainer then sets them up,
    estimated as the same settings written in the YAML would be."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cfg.yaml").write_text("model_name_or_path: meta-llama/Meta-Llama-3-8B\nstage: sft\ndo_train: true\n"
                                       "finetuning_type: full\ndataset: d\noutput_dir: o\nbf16: true\ncutoff_len: 1024\n")  # fmt: skip
    (tmp_path / "fsdp.yaml").write_text(ACCELERATE_FSDP)
    (tmp_path / "zero3.yaml").write_text(
        "distributed_type: DEEPSPEED\ndeepspeed_config:\n  zero_stage: 3\nnum_processes: 4\n"
    )

    def memory(*argv):
        return json.loads(_run("cfg.yaml", "--no-datasets", "--format", "json", *argv))["files"][0]["memory"]

    launched = memory("--accelerate-config", "fsdp.yaml")
    written = memory(  # accelerate's fsdp_cpu_ram_efficient_loading is on by default: the model loads on the CPU
        "--num-gpus",
        "4",
        "--set",
        "fsdp=full_shard auto_wrap",
        "--set",
        'fsdp_config={"backward_prefetch": "backward_pre"}',
        "--set",
        "low_cpu_mem_usage=false",
    )
    assert launched["world_size"] == 4 and launched == written
    assert memory("--accelerate-config", "zero3.yaml") == memory(
        "--num-gpus", "4", "--set", 'deepspeed={"zero_optimization": {"stage": 3}}'
    )
    (tmp_path / "missing.yaml").write_text(
        "distributed_type: DEEPSPEED\ndeepspeed_config:\n  deepspeed_config_file: nowhere.json\n"
    )
    assert "nowhere.json" in memory("--accelerate-config", "missing.yaml")["problem"]
    (tmp_path / "bad.yaml").write_text("distributed_type: FSDP\nnum_processes: [4\n")
    assert main(["cfg.yaml", "--accelerate-config", "bad.yaml"]) == 2
    assert "bad.yaml:3:1: the accelerate config is not valid YAML" in capsys.readouterr().err
    with pytest.raises(LfLintError, match="not an accelerate config"):
        estimate_memory(str(tmp_path / "cfg.yaml"), accelerate_config=tmp_path / "cfg.yaml")
    report = estimate_memory(str(tmp_path / "cfg.yaml"), accelerate_config=tmp_path / "fsdp.yaml")
    assert report.to_dict() == launched
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "pyproject.toml").write_text('[tool.lf-lint]\naccelerate-config = "../fsdp.yaml"\n')
    (tmp_path / "sub" / "cfg.yaml").write_text((tmp_path / "cfg.yaml").read_text())
    monkeypatch.chdir(tmp_path / "sub")  # the path is relative to the pyproject.toml that names it
    assert memory() == launched


def test_rules_check_the_deepspeed_config_accelerate_launches_with(tmp_path, monkeypatch):
    """The DeepSpeed config an accelerate config names is checked like the YAML's `deepspeed` (transformers checks
    both the same way): a missing file (LF250), values that contradict the arguments (LF251), and ZeRO-3's
    incompatibilities. The YAML's own `deepspeed` wins, as in TrainingArguments."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cfg.yaml").write_text("model_name_or_path: m\nstage: sft\ndo_train: true\nfinetuning_type: lora\n"
                                       "dataset: d\noutput_dir: o\nper_device_train_batch_size: 2\npure_bf16: true\n")  # fmt: skip
    (tmp_path / "ds.json").write_text('{"train_micro_batch_size_per_gpu": 4, "zero_optimization": {"stage": 3}}')
    for name, file in (("named.yaml", "ds.json"), ("missing.yaml", "nowhere.json")):
        (tmp_path / name).write_text(f"distributed_type: DEEPSPEED\ndeepspeed_config:\n  deepspeed_config_file: {file}\n"
                                     "num_processes: 2\n")  # fmt: skip

    def codes(*argv):
        found = json.loads(_run("cfg.yaml", "--no-datasets", "--format", "json", *argv))["files"][0]["diagnostics"]
        return {d["code"]: d["message"] for d in found}

    named = codes("--accelerate-config", "named.yaml")
    assert "train_micro_batch_size_per_gpu=4 vs hf per_device_train_batch_size=2" in named["LF251"]
    assert "named.yaml launches with (ds.json)" in named["LF251"]
    assert "`pure_bf16` is incompatible with DeepSpeed ZeRO-3." in " ".join(named.values())
    assert "nowhere.json not found" in codes("--accelerate-config", "missing.yaml")["LF250"]
    assert "LF251" not in codes()  # no accelerate config: no DeepSpeed
    (tmp_path / "cfg.yaml").write_text(
        (tmp_path / "cfg.yaml").read_text() + "deepspeed: {zero_optimization: {stage: 2}}\n"
    )
    assert not {"LF250", "LF251"} & set(codes("--accelerate-config", "missing.yaml"))  # the YAML's wins


def test_zero3_keeps_gathered_what_it_reuses_soon():
    """ZeRO-3 (deepspeed.py, zero3_gathered; measured in tests/test_groundtruth.py): with LLaMA-Factory's
    stage3_max_reuse_distance of 1e9 a small model's last layers stay gathered from forward into backward, an 8B
    model's do not (the output head alone is 0.5e9 parameters, passed twice); without gradient checkpointing autograd
    keeps every layer's gathered weights."""
    from lf_lint.memory.deepspeed import LLAMAFACTORY_ZERO3, zero3_gathered
    from lf_lint.memory.model import layer_params

    section = LLAMAFACTORY_ZERO3["zero_optimization"]
    small = find_model("Qwen/Qwen2.5-0.5B", NOWHERE).shape
    big = find_model("meta-llama/Meta-Llama-3-8B", NOWHERE).shape
    for shape in (small, big):
        layer, head = layer_params(shape)[0], shape.vocab * shape.hidden
        prefetch = 0.9 * shape.hidden**2
        least = 2 * (layer + head + min(prefetch, layer))  # the layer being recomputed, the head, what is prefetched
        gathered = zero3_gathered(shape, section, checkpointing=True, fused_experts=False)
        if shape is big:
            assert gathered == pytest.approx(least)
        else:
            assert gathered > least + 2 * 10 * layer  # at least ten more layers stay gathered
        assert zero3_gathered(shape, {**section, "stage3_max_reuse_distance": 0}, checkpointing=True,
                              fused_experts=False) == pytest.approx(least)  # fmt: skip
        everything = zero3_gathered(shape, section, checkpointing=False, fused_experts=False)
        assert everything >= least + 2 * (shape.layers - 1) * layer


def test_loading_peaks():
    """Every process loads the whole model onto its GPU and LLaMA-Factory casts the trainable weights to fp32 there
    before DeepSpeed ZeRO-0/1/2 casts them back or FSDP shards them (lf_lint/memory/loading.py, measured in
    tests/test_groundtruth.py): on many GPUs that, not training, is the peak."""
    from lf_lint.memory.estimate import CUDA_CONTEXT, NCCL_BUFFERS

    params = find_model("meta-llama/Meta-Llama-3-8B", NOWHERE).params
    embedding = 128256 * 4096
    zero2 = "finetuning_type: full\ndeepspeed: {zero_optimization: {stage: 2}}"
    many = _report(zero2, num_gpus=64)
    assert many.estimate.phase == "model loading"
    assert many.estimate.device == pytest.approx(4 * params + 2 * embedding + CUDA_CONTEXT + NCCL_BUFFERS)
    assert many.estimate.breakdown()["weights"] == pytest.approx((4 * params + 2 * embedding) / GIB, abs=0.01)
    assert 0 < many.estimate.training < many.estimate.device
    assert many.to_dict()["training_peak_gib"] == round(many.estimate.training / GIB, 2)
    assert any("training itself then peaks" in note for note in many.estimate.notes)
    few = _report(zero2, num_gpus=8).estimate  # 2 + 14/8 bytes per parameter and the step's buffers: training's peak
    assert few.phase == "optimizer step" and any("while the model loads" in note for note in few.notes)
    # no fp32 cast, or no whole model on the GPU: loading is not counted at all
    for change in ("pure_bf16: true", "low_cpu_mem_usage: false", "finetuning_type: lora"):
        report = _report(f"{zero2}\n{change}", num_gpus=64).estimate
        assert report.phase != "model loading", change
    lora = _report(zero2.replace("full", "lora"), num_gpus=64).estimate
    assert not any("while the model loads" in note for note in lora.notes)  # 16-bit base: what ZeRO-2 keeps anyway
    zero3 = _report("finetuning_type: full\ndeepspeed: {zero_optimization: {stage: 3}}", num_gpus=64).estimate
    assert not any("while the model loads" in note for note in zero3.notes)

    fsdp = "finetuning_type: full\nfsdp: full_shard auto_wrap"
    yaml_fsdp = _report(fsdp, num_gpus=8, transformers_version="4.57.1").estimate
    assert yaml_fsdp.phase == "model loading"
    efficient = fsdp + "\nfsdp_config: {cpu_ram_efficient_loading: true}"
    assert _report(efficient, num_gpus=8, transformers_version="4.57.1").estimate.phase != "model loading"
    # transformers 5 leaves ACCELERATE_USE_FSDP to accelerate: a YAML fsdp then loads whole onto every GPU anyway
    assert _report(efficient, num_gpus=8, transformers_version="5.6.0").estimate.phase == "model loading"


def test_loading_peak_rules(tmp_path, monkeypatch):
    """LF601/LF602 name loading as the moment memory runs out, point at the sharding setting, and offer the changes
    that load differently; LF603 judges the micro-batch by what training needs."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cfg.yaml").write_text(
        "model_name_or_path: meta-llama/Meta-Llama-3-8B\nstage: sft\ndo_train: true\nfinetuning_type: full\n"
        "dataset: d\noutput_dir: o\nbf16: true\ncutoff_len: 1024\nper_device_train_batch_size: 1\n"
        "gradient_accumulation_steps: 8\nfsdp: full_shard auto_wrap\n"
    )
    out = _run("cfg.yaml", "--no-datasets", "--num-gpus", "8", "--gpu-memory", "28", "--transformers-version", "4.57.1")
    assert "error[LF601] estimated" in out and "while the model loads exceeds" in out
    assert "cfg.yaml:11:7" in out  # fsdp
    assert "fsdp_config: {cpu_ram_efficient_loading: true}" in out and "low_cpu_mem_usage: false" in out
    out = _run("cfg.yaml", "--no-datasets", "--num-gpus", "8", "--gpu", "A100-40G", "--transformers-version", "4.57.1")
    assert "warning[LF603] the micro-batch uses about 22 of 39.4 GiB" in out
    (tmp_path / "zero2.yaml").write_text(
        (tmp_path / "cfg.yaml").read_text().replace("fsdp: full_shard auto_wrap", "deepspeed: ds.json")
    )
    (tmp_path / "ds.json").write_text('{"zero_optimization": {"stage": 2}}')
    out = _run("zero2.yaml", "--no-datasets", "--num-gpus", "64", "--gpu-memory", "34")
    assert "warning[LF602] estimated" in out and "while the model loads is within" in out
    assert "pure_bf16: true beside bf16: true" in out


def test_evaluation_peak(tmp_path, monkeypatch):
    """An evaluation runs per_device_eval_batch_size sequences (the Trainer's default 8) in one forward whose logits
    and loss take 10 bytes per element (lf_lint/memory/evaluation.py, measured in tests/test_groundtruth.py); it
    holds the weights and optimizer states but no gradients or saved activations."""
    qwen = ("model_name_or_path: Qwen/Qwen2.5-7B-Instruct\nfinetuning_type: lora\nlora_target: all\ncutoff_len: 2048\n"
            "per_device_train_batch_size: 2\nval_size: 0.1\neval_strategy: steps\neval_steps: 100")  # fmt: skip
    report = _report(qwen, gpu="A100-40G")
    est = report.estimate
    assert est.phase == "evaluation" and report.verdict.status == "oom"
    assert est.logits == pytest.approx(8 * 2048 * 152064 * 10)
    assert est.gradients == 0.0 and 0 < est.training < est.device
    assert report.to_dict()["training_peak_gib"] == round(est.training / GIB, 2)
    one = _report(qwen + "\nper_device_eval_batch_size: 1").estimate
    assert one.phase == "forward/backward" and any("an evaluation peaks at" in note for note in one.notes)
    never = _report(qwen.replace("eval_strategy: steps", "eval_strategy: 'no'")).estimate
    assert not any("evaluation" in note for note in never.notes)
    after_training = _report(qwen.replace("eval_strategy: steps", "do_eval: true")).estimate
    assert after_training.phase == "evaluation"
    # Liger skips the logits in training only; pairwise stages evaluate chosen and rejected together
    liger = _report(qwen + "\nenable_liger_kernel: true").estimate
    assert liger.logits == est.logits
    dpo = _report(qwen + "\nstage: dpo\nper_device_eval_batch_size: 1").inputs  # the policy's logits stay
    assert dpo.eval_logits == pytest.approx(2 * 2048 * 152064 * 16)  # through the reference forward
    simpo = _report(qwen + "\nstage: dpo\npref_loss: simpo\nper_device_eval_batch_size: 1").inputs
    assert simpo.eval_logits == pytest.approx(2 * 2048 * 152064 * 12)

    monkeypatch.chdir(tmp_path)
    (tmp_path / "cfg.yaml").write_text(
        "stage: sft\ndo_train: true\ndataset: d\noutput_dir: o\nbf16: true\n" + qwen + "\n"
    )
    out = _run("cfg.yaml", "--no-datasets", "--gpu", "A100-40G")
    assert "error[LF601] estimated 39.9 GiB per GPU during evaluation" in out
    assert "per_device_eval_batch_size 8 (the Trainer's default)" in out and "cfg.yaml:12:16" in out  # eval_strategy
    assert "per_device_eval_batch_size: 1 -> est." in out
    assert "(an evaluation needs 39.9 GiB whatever the split)" in _run(
        "suggest", "cfg.yaml", "--no-datasets", "--gpu", "A100-40G"
    )


@pytest.mark.parametrize(
    "sharding",
    ["", "deepspeed: {zero_optimization: {stage: 2}}", "deepspeed: {zero_optimization: {stage: 3}}",
     "fsdp: full_shard auto_wrap", "fsdp: shard_grad_op auto_wrap\nfinetuning_type: full"],
)  # fmt: skip
def test_an_evaluation_leaves_the_training_step_as_it_was(sharding):
    """Each phase computes its own part of the inputs (lf_lint/memory/inputs.py): an evaluation adds its forward
    and changes nothing of the training step. (One name once held FSDP's layout and then the output head an
    evaluation gathers: ZeRO-3 and FSDP with an eval set crashed, and plain data parallelism with one lost its
    gradients at the peak.)"""
    config = "model_name_or_path: Qwen/Qwen2.5-7B-Instruct\nfinetuning_type: lora\n" + sharding
    train = _report(config, num_gpus=8, gpu="H100")
    evaluated = _report(config + "\nval_size: 0.1\neval_strategy: steps\neval_steps: 10", num_gpus=8, gpu="H100")
    assert evaluated.inputs.eval_logits > 0 and evaluated.inputs.eval_activations > 0
    assert evaluated.inputs._replace(eval_logits=0.0, eval_activations=0.0) == train.inputs
    assert evaluated.estimate.device >= train.estimate.device
    assert evaluated.inputs.gradients_rebuilt == ("fsdp" in sharding)


def test_tied_output_head_gets_an_autocast_copy():
    """Under AMP, full tuning casts fp32 matmul weights to bf16 in autocast's cache: the embedding lookup needs no
    copy, but an output head tied to the embedding is a matmul (measured in evaluation, tests/test_groundtruth.py)."""
    tied = _report("model_name_or_path: Qwen/Qwen2.5-0.5B\nfinetuning_type: full").inputs
    untied = _report("finetuning_type: full").inputs
    assert tied.shape.tied and tied.autocast_copy == 2.0
    assert not untied.shape.tied and untied.autocast_copy < 2.0


def test_training_time_counts_the_evaluations(tmp_path):
    """Every evaluation (during training, and LLaMA-Factory's after it) runs the eval set forward: the time estimate
    adds its FLOPs, and says so; with the eval set's size unknown it says they are not counted."""
    data = tmp_path / "data"
    data.mkdir()
    rows = [{"instruction": f"q {i}", "input": "", "output": f"a {i}"} for i in range(100)]
    (data / "rows.json").write_text(json.dumps(rows))
    (data / "dataset_info.json").write_text(json.dumps({"rows": {"file_name": "rows.json"}}))
    base = {"model_name_or_path": "Qwen/Qwen2.5-7B-Instruct", "stage": "sft", "do_train": True, "dataset": "rows",
            "dataset_dir": str(data), "template": "qwen", "output_dir": "o", "finetuning_type": "lora", "bf16": True,
            "cutoff_len": 1024, "per_device_train_batch_size": 2, "val_size": 0.2}  # fmt: skip
    quiet = estimate_memory({**base, "eval_strategy": "no"}, gpu="A100-80G", workdir=tmp_path)
    evaluated = estimate_memory({**base, "eval_strategy": "steps", "eval_steps": 10}, gpu="A100-80G", workdir=tmp_path)
    # 80 examples, 3 epochs, batch 2: 120 steps, evaluations at 10, 20, ..., 120 and one after training, of 20 each
    assert "260 evaluated sequences, forward only" in evaluated.time.assumptions
    assert evaluated.time.hours > quiet.time.hours and evaluated.time.flops > quiet.time.flops
    unknown = _report(
        "model_name_or_path: Qwen/Qwen2.5-7B-Instruct\nval_size: 0.1\neval_strategy: steps", gpu="A100-80G",
        num_examples=1000,
    )  # fmt: skip
    assert "evaluations not counted (the eval set's size is unknown)" in unknown.time.assumptions


def test_evaluation_that_generates():
    """With predict_with_generate an evaluation generates without labels: no loss over the logits, but a KV cache
    that grows to max_new_tokens - 1 beyond the prompt; at the last step SDPA copies a layer's 4 KV heads to all 28
    query heads (a padded batch has a mask), FA2 only grows each layer's keys, then values (lf_lint/memory/evaluation.py)."""
    from lf_lint.memory.evaluation import kv_cache_bytes

    qwen = ("model_name_or_path: Qwen/Qwen2.5-7B-Instruct\nfinetuning_type: lora\ncutoff_len: 2048\n"
            "val_size: 0.1\neval_strategy: steps\npredict_with_generate: true")  # fmt: skip
    inputs = _report(qwen).inputs
    assert inputs.eval_logits == 0.0  # the prompt's forward (8 x 2,048 tokens' MLP intermediates) is the peak
    assert inputs.eval_activations > kv_cache_bytes(inputs.shape, 8, 2048 + 1024)
    longer = _report(qwen + "\nmax_new_tokens: 8192").inputs  # the last decoding step is
    cache = kv_cache_bytes(inputs.shape, 8, 2048 + 8191)
    assert cache == 8 * 10239 * 28 * 2 * 4 * 128 * 2
    layer_keys = cache / 28 / 2
    kept = 8 * 10240 * 16 + 8 * 152064 * 6  # token ids and attention mask, the last logits in bf16 and fp32
    assert longer.eval_activations == pytest.approx(cache + layer_keys * 2 * 7 + kept)
    fa2 = _report(qwen + "\nmax_new_tokens: 8192\nflash_attn: fa2").inputs
    assert fa2.eval_activations == pytest.approx(cache + layer_keys + kept)
    beams = _report(qwen + "\nmax_new_tokens: 8192\nnum_beams: 2\nflash_attn: fa2").inputs
    assert beams.eval_activations == pytest.approx(2 * (cache + layer_keys + kept))


def test_a_config_that_does_not_train(tmp_path, monkeypatch):
    """do_train: false (an evaluation or prediction run through `llamafactory-cli train`): the 16-bit weights and the
    evaluation's forward, no optimizer, no training micro-batch, and no advice about one."""
    predict = ("model_name_or_path: meta-llama/Meta-Llama-3-8B-Instruct\nadapter_name_or_path: saves/lora\n"
               "finetuning_type: lora\ndo_train: false\ndo_predict: true\npredict_with_generate: true\n"
               "eval_dataset: d\ncutoff_len: 2048\nper_device_eval_batch_size: 1")  # fmt: skip
    report = _report(predict, gpu="A100-40G")
    inputs, est = report.inputs, report.estimate
    assert inputs.method == "inference" and inputs.trainable_params == 0 and inputs.sequences == 0
    params = find_model("meta-llama/Meta-Llama-3-8B", NOWHERE).params
    assert est.phase == "evaluation" and est.optimizer == est.gradients == 0.0
    assert est.weights == pytest.approx(2 * params)
    assert not any("training steps" in note for note in est.notes)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cfg.yaml").write_text("stage: sft\noutput_dir: o\ntemplate: llama3\n" + predict + "\n")
    out = _run("cfg.yaml", "--no-datasets", "--gpu", "T4")
    assert "micro-batch: none (no training)" in out and "LF603" not in out
    assert "error[LF601] estimated 15.9 GiB per GPU during evaluation" in out
    assert "quantization_bit: 4 (4-bit weights) -> est." in out and "training steps need" not in out
    # suggest: no micro-batch to split, but the largest eval batch that fits
    fitting = [size for size in (1, 2, 4, 8, 16, 32, 64, 128)
               if _report(predict.replace("batch_size: 1", f"batch_size: {size}"), gpu="A100-80G").verdict.status == "fits"]  # fmt: skip
    assert 1 < max(fitting) < 128
    out = _run("suggest", "cfg.yaml", "--gpu", "A100-80G", "--no-datasets")
    assert (
        "no suggestion: the config does not train (do_train is not set), so there is no micro-batch to split; " in out
    )
    assert (
        f"prediction needs 15.9 GiB per GPU with per_device_eval_batch_size 1; the largest power of two that fits is {max(fitting)}"
        in out
    )
    assert "does not fit even with 1" in _run("suggest", "cfg.yaml", "--gpu", "T4", "--no-datasets")
    # LF603 as a note: an eval batch at least 4x larger that stays under 80% of the card
    comfortable = max(size for size in fitting if _report(predict.replace("batch_size: 1", f"batch_size: {size}"),
                                                          gpu="A100-80G").estimate.device / GIB <= 0.8 * 79.15)  # fmt: skip
    out = _run("cfg.yaml", "--no-datasets", "--gpu", "A100-80G")
    assert (
        f"info[LF603] the prediction uses about 16 of 79.15 GiB with per_device_eval_batch_size 1; {comfortable} (est."
        in out
    )
    assert f"help: per_device_eval_batch_size: {comfortable}" in out


def test_liger_fuses_the_loss_of_the_model_types_each_release_patches():
    """apply_liger_kernel's list grows release by release: Qwen3 from 0.9.3, Qwen3-Next and Qwen3.5 from 0.9.5,
    the Qwen3.5 MoE on main; other types keep their logits (``Current model does not support liger kernel.``)."""

    def logits(model: str, llamafactory: str) -> float:
        config = f"model_name_or_path: {model}\nenable_liger_kernel: true"
        return _report(config, llamafactory_version=llamafactory).estimate.logits

    assert logits("Qwen/Qwen3-8B", "0.9.2") > 0 and logits("Qwen/Qwen3-8B", "0.9.3") == 0
    assert logits("Qwen/Qwen3-Next-80B-A3B-Instruct", "0.9.4") > 0
    assert logits("Qwen/Qwen3-Next-80B-A3B-Instruct", "0.9.5") == 0
    assert logits("Qwen/Qwen3.5-9B", "0.9.5") == 0
    assert logits("Qwen/Qwen3.5-35B-A3B", "0.9.5") > 0 and logits("Qwen/Qwen3.5-35B-A3B", "0.9.6.dev0") == 0
    assert logits("meta-llama/Meta-Llama-3-8B", "0.9.2") == 0
