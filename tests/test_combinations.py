"""Options combined as users combine them: no internal error, no traceback, whatever the mix.

A property-based test draws train configs from the space of options LLaMA-Factory accepts (every stage, tuning
method, quantization, DoRA, DeepSpeed stage and offload, FSDP, evaluation and prediction, packing, optimizer,
precision, attention, multimodal templates and data, vision-tower freezing), together with target GPUs, process
counts, launchers and release pairs, and runs what a user runs on them: the CLI in every output format, with
``--explain``, ``suggest``, ``explain-log`` on the start-up block the plan predicts, and the Python API. Any LF000,
traceback or exit status other than 0/1/2 fails.

CI draws 150 combinations; a nightly-size run draws thousands::

    LF_LINT_COMBINATIONS=5000 python -m pytest tests/test_combinations.py
"""

from __future__ import annotations

import io
import json
import os
import shutil
from contextlib import redirect_stderr, redirect_stdout
from importlib import resources
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from lf_lint import LfLintError, estimate_memory, lint, predict_steps
from lf_lint.cli import main
from lf_lint.memory.gpus import all_gpus
from lf_lint.memory.model import catalogue

FIXTURES = Path(__file__).parent / "fixtures" / "data"
EXAMPLES = int(os.environ.get("LF_LINT_COMBINATIONS", "150"))

HUB_MODELS = sorted({entry["hub_ids"][0] for entry in catalogue().values()})
OTHER_MODELS = ["my-org/custom-13b-chat", "someone/unnamed-model", "local-llama", "local-qwen2-vl", "missing-folder/"]
TEMPLATES = sorted(json.loads(resources.files("lf_lint").joinpath("data/templates.json").read_text())["templates"])
GPUS = [gpu.name for gpu in all_gpus()]
DATASETS = {"pt": ["c4_demo"], "sft": ["alpaca_en_demo", "identity", "mllm_demo"], "rm": ["dpo_en_demo"],
            "dpo": ["dpo_en_demo"], "kto": ["kto_en_demo"], "ppo": ["alpaca_en_demo", "identity"]}  # fmt: skip
OPTIMIZERS = ["adamw_torch", "adamw_torch_fused", "adamw_8bit", "paged_adamw_8bit", "paged_adamw_32bit", "adafactor",
              "sgd", "lion_32bit", "paged_lion_8bit", "adamw_bnb_8bit", "adamw_apex_fused", "rmsprop"]  # fmt: skip
ZERO = {
    "z0": {"stage": 0},
    "z1": {"stage": 1},
    "z2": {"stage": 2, "overlap_comm": True, "contiguous_gradients": True},
    "z2_offload": {"stage": 2, "offload_optimizer": {"device": "cpu", "pin_memory": True}},
    "z3": {"stage": 3, "stage3_max_reuse_distance": "auto", "stage3_prefetch_bucket_size": "auto"},
    "z3_offload": {"stage": 3, "offload_optimizer": {"device": "cpu"}, "offload_param": {"device": "cpu"}},
}
ACCELERATE = {
    "fsdp": {"distributed_type": "FSDP", "num_processes": 8, "mixed_precision": "bf16",
             "fsdp_config": {"fsdp_auto_wrap_policy": "TRANSFORMER_BASED_WRAP", "fsdp_sharding_strategy": "FULL_SHARD",
                             "fsdp_cpu_ram_efficient_loading": True, "fsdp_offload_params": False}},
    "deepspeed": {"distributed_type": "DEEPSPEED", "num_processes": 4,
                  "deepspeed_config": {"zero_stage": 3, "offload_optimizer_device": "cpu"}},
}  # fmt: skip


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A launch folder: the test datasets plus a multimodal one, DeepSpeed and accelerate configs, and two local
    models (a small Llama with a word-level tokenizer.json, so packing is counted exactly, and a Qwen2-VL shape)."""
    root = tmp_path_factory.mktemp("combinations")
    shutil.copytree(FIXTURES, root / "data")
    info = json.loads((root / "data" / "dataset_info.json").read_text())
    info["mllm_demo"] = {"file_name": "mllm_demo.json", "formatting": "sharegpt",
                         "columns": {"messages": "messages", "images": "images"},
                         "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                                  "assistant_tag": "assistant"}}  # fmt: skip
    (root / "data" / "dataset_info.json").write_text(json.dumps(info))
    rows = [{"messages": [{"role": "user", "content": "<image>" * (i % 3 + 1) + f"What is in picture {i}?"},
                          {"role": "assistant", "content": "A cat. " * (i + 1)}],
             "images": [f"images/{i}-{k}.jpg" for k in range(i % 3 + 1)]} for i in range(12)]  # fmt: skip
    (root / "data" / "mllm_demo.json").write_text(json.dumps(rows))
    for name, section in ZERO.items():
        (root / f"ds_{name}.json").write_text(json.dumps({"train_micro_batch_size_per_gpu": "auto",
                                                          "gradient_accumulation_steps": "auto",
                                                          "bf16": {"enabled": "auto"}, "zero_optimization": section}))  # fmt: skip
    for name, config in ACCELERATE.items():
        (root / f"accelerate_{name}.yaml").write_text(yaml.safe_dump(config))
    llama = root / "local-llama"
    llama.mkdir()
    (llama / "config.json").write_text(json.dumps({
        "model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 256, "intermediate_size": 688,
        "num_hidden_layers": 4, "num_attention_heads": 8, "num_key_value_heads": 4, "vocab_size": 400,
        "tie_word_embeddings": False, "torch_dtype": "bfloat16"}))  # fmt: skip
    _word_tokenizer(llama, [FIXTURES / "alpaca_en_demo.json", FIXTURES / "identity.json"])
    vl = root / "local-qwen2-vl"
    vl.mkdir()
    (vl / "config.json").write_text(json.dumps({
        "model_type": "qwen2_vl", "architectures": ["Qwen2VLForConditionalGeneration"], "hidden_size": 512,
        "intermediate_size": 1024, "num_hidden_layers": 4, "num_attention_heads": 8, "num_key_value_heads": 2,
        "vocab_size": 1000, "tie_word_embeddings": True,
        "vision_config": {"depth": 2, "embed_dim": 128, "hidden_size": 512, "num_heads": 4, "mlp_ratio": 4,
                          "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2, "in_chans": 3}}))  # fmt: skip
    return root


def _word_tokenizer(folder: Path, sources: list[Path]) -> None:
    import tokenizers
    from tokenizers import models, pre_tokenizers

    words = set()
    for source in sources:
        words.update(source.read_text(encoding="utf-8").split())
    vocab = {token: i for i, token in enumerate(["<unk>", "</s>", "<|im_start|>", "<|im_end|>", *sorted(words)[:300]])}
    tokenizer = tokenizers.Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps({"eos_token": "</s>"}))


def maybe(strategy):
    """An option left out (None) or set."""
    return st.one_of(st.none(), strategy)


@st.composite
def configs(draw) -> dict:
    stage = draw(st.sampled_from(sorted(DATASETS)))
    method = draw(st.sampled_from(["lora", "lora", "full", "freeze", "oft"]))
    config = {
        "model_name_or_path": draw(st.one_of(st.sampled_from(HUB_MODELS), st.sampled_from(OTHER_MODELS))),
        "stage": stage,
        "do_train": draw(st.sampled_from([True, True, True, False])),
        "finetuning_type": method,
        "dataset": ",".join(draw(st.lists(st.sampled_from(DATASETS[stage]), min_size=1, max_size=2, unique=True))),
        "dataset_dir": "data",
        "template": draw(st.one_of(st.sampled_from(["qwen3", "llama3", "default", "qwen2_vl"]), st.sampled_from(TEMPLATES))),
        "output_dir": "saves/out",
        "cutoff_len": draw(st.sampled_from([256, 1024, 2048, 4096, 32768])),
        "per_device_train_batch_size": draw(st.sampled_from([1, 2, 4, 8, 16, 64])),
        "gradient_accumulation_steps": draw(st.sampled_from([1, 2, 4, 8, 32])),
        "num_train_epochs": draw(st.sampled_from([1.0, 3.0, 0.5, 2.5])),
        "max_steps": draw(maybe(st.sampled_from([-1, 10, 1000]))),
        "learning_rate": 1.0e-4,
        "warmup_ratio": draw(maybe(st.sampled_from([0.0, 0.1, 1.5]))),
        "warmup_steps": draw(maybe(st.sampled_from([0, 5, 0.05, 10000]))),
        "save_steps": draw(maybe(st.sampled_from([1, 100, 0.25, 100000]))),
        "logging_steps": draw(maybe(st.sampled_from([1, 10, 0.1]))),
        "dataloader_drop_last": draw(maybe(st.booleans())),
        "max_samples": draw(maybe(st.sampled_from([1, 5, 100, 100000]))),
        "packing": draw(maybe(st.booleans())) if stage in ("pt", "sft") else None,
        "neat_packing": draw(maybe(st.booleans())) if stage == "sft" else None,
        "streaming": draw(st.sampled_from([None, None, None, True])),
        "mix_strategy": draw(maybe(st.sampled_from(["concat", "interleave_under", "interleave_over"]))),
        "quantization_bit": draw(maybe(st.sampled_from([4, 8, 2]))),
        "quantization_method": draw(maybe(st.sampled_from(["bnb", "hqq", "eetq"]))),
        "double_quantization": draw(maybe(st.booleans())),
        "use_dora": draw(maybe(st.booleans())) if method == "lora" else None,
        "lora_rank": draw(maybe(st.sampled_from([8, 64]))),
        "lora_target": draw(maybe(st.sampled_from(["all", "q_proj,v_proj", "mlp", "attn"]))),
        "additional_target": draw(maybe(st.sampled_from(["embed_tokens,lm_head", "lm_head"]))),
        "freeze_trainable_layers": draw(maybe(st.sampled_from([2, -2, 100]))) if method == "freeze" else None,
        "freeze_trainable_modules": draw(maybe(st.sampled_from(["all", "mlp", "self_attn,mlp"]))),
        "freeze_extra_modules": draw(maybe(st.sampled_from(["embed_tokens", "lm_head,embed_tokens"]))),
        "freeze_vision_tower": draw(maybe(st.booleans())),
        "freeze_multi_modal_projector": draw(maybe(st.booleans())),
        "freeze_language_model": draw(maybe(st.booleans())),
        "image_max_pixels": draw(maybe(st.sampled_from([65536, 589824, 4000000]))),
        "optim": draw(maybe(st.sampled_from(OPTIMIZERS))),
        "bf16": draw(maybe(st.booleans())),
        "fp16": draw(st.sampled_from([None, None, True])),
        "pure_bf16": draw(st.sampled_from([None, None, True])),
        "flash_attn": draw(maybe(st.sampled_from(["auto", "fa2", "sdpa", "disabled", "fa3"]))),
        "enable_liger_kernel": draw(maybe(st.booleans())),
        "use_unsloth": draw(st.sampled_from([None, None, True])),
        "use_unsloth_gc": draw(st.sampled_from([None, None, True])),
        "disable_gradient_checkpointing": draw(maybe(st.booleans())),
        "torch_compile": draw(st.sampled_from([None, None, True])),
        "low_cpu_mem_usage": draw(st.sampled_from([None, None, False])),
        "preprocessing_num_workers": draw(maybe(st.sampled_from([1, 16]))),
        "dataloader_num_workers": draw(maybe(st.sampled_from([0, 4]))),
        "dataloader_persistent_workers": draw(st.sampled_from([None, None, True])),
        "early_stopping_steps": draw(st.sampled_from([None, None, 3])),
        "metric_for_best_model": draw(st.sampled_from([None, None, "eval_loss"])),
        "load_best_model_at_end": draw(st.sampled_from([None, None, True])),
        "quantization_device_map": draw(st.sampled_from([None, None, None, "auto"])),
    }
    optimizer = draw(st.sampled_from([None, None, None, "use_galore", "use_badam", "use_apollo", "use_adam_mini", "use_muon"]))
    if optimizer:
        config[optimizer] = True
        config["galore_layerwise"] = draw(maybe(st.booleans())) if optimizer == "use_galore" else None
    sharding = draw(st.sampled_from(["none", "none", "inline", *[f"ds_{z}.json" for z in ZERO], "fsdp", "fsdp", "accelerate"]))
    if sharding == "inline":
        config["deepspeed"] = {"zero_optimization": {"stage": draw(st.sampled_from([0, 1, 2, 3]))}}
    elif sharding.startswith("ds_"):
        config["deepspeed"] = sharding
    elif sharding == "fsdp":
        config["fsdp"] = draw(st.sampled_from(["full_shard auto_wrap", "full_shard auto_wrap offload",
                                               "shard_grad_op auto_wrap", "full_shard", "no_shard",
                                               "hybrid_shard auto_wrap"]))  # fmt: skip
        config["fsdp_config"] = draw(st.sampled_from([None, {}, {"cpu_ram_efficient_loading": True},
                                                      {"backward_prefetch": "backward_pre"}, {"version": 2},
                                                      "fsdp_config.json"]))  # fmt: skip
    evaluation = draw(st.sampled_from(["none", "none", "val_size", "eval_dataset", "do_eval", "predict"]))
    if evaluation == "val_size":
        config.update(val_size=draw(st.sampled_from([0.1, 0.5, 3])), eval_strategy=draw(st.sampled_from(["steps", "epoch"])),
                      eval_steps=draw(maybe(st.sampled_from([1, 50, 0.5]))))  # fmt: skip
    elif evaluation == "eval_dataset":
        config.update(eval_dataset=draw(st.sampled_from(DATASETS[stage])), eval_strategy="steps", eval_steps=10)
    elif evaluation == "do_eval":
        config.update(do_eval=True, eval_dataset=draw(st.sampled_from(DATASETS[stage])))
    elif evaluation == "predict":
        config.update(do_predict=True, predict_with_generate=True, eval_dataset=draw(st.sampled_from(DATASETS[stage])),
                      num_beams=draw(maybe(st.sampled_from([1, 4]))), max_new_tokens=draw(maybe(st.sampled_from([16, 8192]))))  # fmt: skip
    config["per_device_eval_batch_size"] = draw(maybe(st.sampled_from([1, 8, 64])))
    if stage in ("dpo", "kto"):
        config.update(pref_loss=draw(maybe(st.sampled_from(["sigmoid", "orpo", "simpo"]))),
                      use_ref_model=draw(maybe(st.booleans())), ref_model=draw(st.sampled_from([None, None, "local-llama"])),
                      ref_model_quantization_bit=draw(st.sampled_from([None, None, 4])))  # fmt: skip
    if stage == "ppo":
        config.update(reward_model="saves/rm", reward_model_type=draw(st.sampled_from(["lora", "full", "api"])),
                      ppo_buffer_size=draw(maybe(st.sampled_from([1, 2]))))  # fmt: skip
    if draw(st.integers(0, 4)) == 0:  # a Megatron launch's keys (mcore_adapter's or megatron-bridge's)
        config.update(tensor_model_parallel_size=draw(st.sampled_from([1, 2, 4])),
                      pipeline_model_parallel_size=draw(st.sampled_from([1, 2, 3])),
                      expert_model_parallel_size=draw(maybe(st.sampled_from([1, 2]))),
                      sequence_parallel=draw(maybe(st.booleans())),
                      use_distributed_optimizer=draw(maybe(st.booleans())),
                      overlap_param_gather=draw(maybe(st.booleans())),
                      mixed_precision=draw(st.sampled_from([None, "bf16_mixed"])),
                      moe_token_dispatcher_type=draw(st.sampled_from([None, "alltoall"])))  # fmt: skip
    if draw(st.integers(0, 9)) == 0:
        config.update(use_kt=True, kt_cpu_activation="retain", kt_config={"kt_backend": "AMXBF16"})
    if draw(st.integers(0, 9)) == 0:
        config.update(ray_num_workers=draw(st.sampled_from([1, 4])))
    return {key: value for key, value in config.items() if value is not None}


@st.composite
def launches(draw) -> list[str]:
    """The command-line options of a launch: GPU, processes, releases, data."""
    argv = ["--gpu", draw(st.sampled_from(GPUS)), "--num-gpus", str(draw(st.sampled_from([1, 2, 4, 8, 64])))]
    if draw(st.booleans()):
        argv += ["--nnodes", str(draw(st.sampled_from([1, 2, 4])))]
    if draw(st.integers(0, 9)) == 0:
        argv += ["--accelerate-config", draw(st.sampled_from(["accelerate_fsdp.yaml", "accelerate_deepspeed.yaml"]))]
    argv += ["--llamafactory-version", draw(st.sampled_from(["0.9.2", "0.9.3", "0.9.4", "0.9.5", "0.9.6.dev0"]))]
    argv += ["--transformers-version",
             draw(st.sampled_from(["4.45.2", "4.49.0", "4.51.3", "4.55.4", "4.57.1", "5.6.0", "5.8.0"]))]  # fmt: skip
    for variable in draw(st.lists(st.sampled_from(["USE_MCA=1", "USE_MEGATRON_BRIDGE=1", "DISABLE_VERSION_CHECK=1",
                                                   "USE_RAY=1", "ALLOW_EXTRA_ARGS=1"]), max_size=2, unique=True)):  # fmt: skip
        argv += ["--env", variable]
    data = draw(st.sampled_from(["counted", "counted", "counted", "given", "none"]))
    if data == "given":
        argv += ["--num-examples", str(draw(st.sampled_from([0, 1, 7, 1000, 52000])))]
    elif data == "none":
        argv += ["--no-datasets"]
    return argv


def _cli(*argv: str) -> tuple[int, str]:
    """Run the CLI in this process: any exception escaping it is a traceback the user would see."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(argv))
    text = out.getvalue() + err.getvalue()
    assert code in (0, 1, 2), (argv, code, text[-2000:])
    assert "Traceback" not in text and "LF000" not in text, text[-4000:]
    return code, text


def _api_options(argv: list[str], workdir: Path) -> dict:
    """The API's keyword arguments for the same launch."""
    options = dict(zip(argv[::2], argv[1::2]))  # every option takes one value
    env = dict(argv[i + 1].split("=", 1) for i in range(0, len(argv), 2) if argv[i] == "--env")
    kwargs = {"num_gpus": int(options["--num-gpus"]), "llamafactory_version": options["--llamafactory-version"],
              "transformers_version": options["--transformers-version"], "workdir": workdir, "env": env}  # fmt: skip
    if "--nnodes" in options:
        kwargs["nnodes"] = int(options["--nnodes"])
    if "--num-examples" in options:
        kwargs["num_examples"] = int(options["--num-examples"])
    return kwargs


def startup_block(plan) -> str:
    """The Trainer's start-up block as a run with this plan would log it."""
    steps = plan.steps
    epochs = steps.epochs_printed
    lines = ["***** Running training *****", f"  Num examples = {steps.num_examples:,}", f"  Num Epochs = {epochs:,}",
             f"  Instantaneous batch size per device = {steps.per_device_train_batch_size:,}",
             f"  Total train batch size (w. parallel, distributed & accumulation) = {steps.total_train_batch_size:,}",
             f"  Gradient Accumulation steps = {steps.gradient_accumulation_steps:,}",
             f"  Total optimization steps = {steps.total_steps:,}"]  # fmt: skip
    return "\n".join(lines) + "\n"


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(config=configs(), launch=launches(), output=st.sampled_from(["full", "concise", "json", "github", "sarif"]),
       explain=st.booleans())  # fmt: skip
def test_no_internal_error_in_any_combination(project, config, launch, output, explain):
    path = project / "cfg.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    launch = [str(project / a) if a.startswith("accelerate_") else a for a in launch]
    common = ["--workdir", str(project), *launch]
    code, text = _cli(str(path), *common, "--format", output, *(["--explain"] if explain else []))
    event(f"lint exit status {code}")
    if output in ("json", "sarif") and code != 2:
        json.loads(text[text.index("{") :])
    _cli("suggest", str(path), *[a for a in common if a != "--no-datasets"])

    kwargs = _api_options(launch, project)
    assert all(d.code != "LF000" for d in lint(config, **kwargs))
    plan = None
    try:
        plan = predict_steps(config, **kwargs)
        event("step plan")
    except LfLintError:
        event("no step plan")
    try:
        event(f"memory peak: {estimate_memory(config, gpu=launch[1], **kwargs).estimate.phase}")
    except LfLintError:
        event("no memory estimate")
    if plan is not None and plan.steps is not None and plan.stage != "ppo":
        log = project / "train.log"
        log.write_text(startup_block(plan))
        _cli("explain-log", str(log))
