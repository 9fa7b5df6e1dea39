"""Generated configs for the differential tests against the real LLaMA-Factory.

Standard library only. A case is a config text plus the files it needs (a small dataset
registry), in the format runner.py reads. ``validation_cases`` lays random "mutations" (the
mistakes and the legitimate variations people write) over a valid base config; the real
LLaMA-Factory then decides whether each case starts, and lf-lint must agree.
"""

from __future__ import annotations

import json
import random

MODEL = "__MODEL__"


def alpaca_rows(n: int, start: int = 0) -> list[dict]:
    return [
        {
            "instruction": f"Say the number {i}.",
            "input": "" if i % 3 else f"hint {i % 7}",
            "output": f"The number is {i}.",
        }
        for i in range(start, start + n)
    ]


def ranking_rows(n: int) -> list[dict]:
    return [
        {"instruction": f"Pick one for {i}.", "input": "", "chosen": f"good {i}", "rejected": f"bad {i}"}
        for i in range(n)
    ]


def kto_rows(n: int) -> list[dict]:
    return [{"instruction": f"Rate {i}.", "input": "", "output": f"answer {i}", "label": i % 2 == 0} for i in range(n)]


def base_files() -> dict[str, str]:
    info = {
        "d": {"file_name": "d.json"},
        "e": {"file_name": "e.json"},
        "pref": {
            "file_name": "pref.json",
            "ranking": True,
            "columns": {"prompt": "instruction", "query": "input", "chosen": "chosen", "rejected": "rejected"},
        },
        "kto": {
            "file_name": "kto.json",
            "columns": {"prompt": "instruction", "query": "input", "response": "output", "kto_tag": "label"},
        },
    }
    return {
        "data/dataset_info.json": json.dumps(info),
        "data/d.json": json.dumps(alpaca_rows(101)),
        "data/e.json": json.dumps(alpaca_rows(37, 500)),
        "data/pref.json": json.dumps(ranking_rows(40)),
        "data/kto.json": json.dumps(kto_rows(40)),
    }


BASE = {
    "model_name_or_path": MODEL,
    "stage": "sft",
    "do_train": "true",
    "finetuning_type": "lora",
    "template": "default",
    "dataset": "d",
    "dataset_dir": "data",
    "output_dir": "out",
    "report_to": "none",
    "per_device_train_batch_size": "4",
    "gradient_accumulation_steps": "2",
    "num_train_epochs": "1",
    "cutoff_len": "64",
}

# name -> YAML lines laid over BASE (a key given here replaces BASE's, unless "dup:" marks a duplicate)
MUTATIONS: dict[str, str] = {
    "typo-key": "num_train_epoch: 2",
    "renamed-eval-strategy": "evaluation_strategy: steps\nval_size: 0.1",
    "init-false-key": "compute_dtype: bf16",
    "lr-exponent": "learning_rate: 1e-4",
    "lr-quoted": 'learning_rate: "2e-5"',
    "cutoff-quoted": 'cutoff_len: "64"',
    "stage-typo": "stage: sf",
    "scheduler-typo": "lr_scheduler_type: cosin",
    "finetuning-typo": "finetuning_type: lorra",
    "optim-typo": "optim: adamw",
    "batch-zero": "per_device_train_batch_size: 0",
    "warmup-ratio-big": "warmup_ratio: 1.5",
    "warmup-ratio-negative": "warmup_ratio: -0.1",
    "max-samples-zero": "max_samples: 0",
    "max-samples": "max_samples: 50",
    "val-and-eval": "val_size: 0.1\neval_dataset: e",
    "val-size": "val_size: 0.1",
    "val-size-int": "val_size: 7",
    "val-size-negative": "val_size: -0.5",
    "probs-with-concat": "dataset: d,e\ninterleave_probs: 0.5,0.5",
    "interleave-ok": "dataset: d,e\nmix_strategy: interleave_under\ninterleave_probs: 0.5,0.5",
    "probs-length": "dataset: d,e\nmix_strategy: interleave_over\ninterleave_probs: 0.2,0.3,0.5",
    "streaming-max-samples": "streaming: true\nmax_samples: 10",
    "streaming-no-max-steps": "streaming: true",
    "mask-and-prompt": "mask_history: true\ntrain_on_prompt: true",
    "train-on-prompt": "train_on_prompt: true",
    "quant-full": "quantization_bit: 4\nfinetuning_type: full",
    "adapter-freeze": "adapter_name_or_path: some/adapter\nfinetuning_type: freeze",
    "generate-rm": "predict_with_generate: true\nstage: rm\ndataset: pref",
    "neat-packing-pt": "stage: pt\nneat_packing: true",
    "neat-packing-sft": "neat_packing: true",
    "predict-no-generate": "do_predict: true\nval_size: 0.1",
    "ppo-no-reward": "stage: ppo",
    "dpo-smoothing": "stage: dpo\ndataset: pref\npref_loss: ipo\ndpo_label_smoothing: 0.1",
    "dpo-ok": "stage: dpo\ndataset: pref",
    "rm-ok": "stage: rm\ndataset: pref",
    "kto-ok": "stage: kto\ndataset: kto",
    "pt-ok": "stage: pt",
    "llama-pro-full": "use_llama_pro: true\nfinetuning_type: full",
    "dora-freeze": "finetuning_type: freeze\nuse_dora: true",
    "loraplus-full": "finetuning_type: full\nloraplus_lr_ratio: 16",
    "full-ok": "finetuning_type: full",
    "freeze-ok": "finetuning_type: freeze",
    "eval-no-data": "eval_strategy: steps",
    "best-multiple": "eval_strategy: steps\nval_size: 0.1\nload_best_model_at_end: true\neval_steps: 3\nsave_steps: 5",
    "best-ok": "eval_strategy: steps\nval_size: 0.1\nload_best_model_at_end: true\neval_steps: 5\nsave_steps: 10",
    "best-ratio": "eval_strategy: steps\nval_size: 0.1\nload_best_model_at_end: true\neval_steps: 0.1\nsave_steps: 0.3",
    "best-strategy": "load_best_model_at_end: true\nval_size: 0.1",
    "logging-zero": "logging_steps: 0",
    "save-fraction": "save_steps: 2.5",
    "save-ratio": "save_steps: 0.5",
    "plateau": "lr_scheduler_type: reduce_lr_on_plateau",
    "warmup-steps-float": "warmup_steps: 0.1",
    "warmup-both": "warmup_steps: 3\nwarmup_ratio: 0.1",
    "template-missing": "template: nonexistent_tpl",
    "template-qwen3": "template: qwen3",
    "template-vl": "template: qwen2_vl",
    "template-llava": "template: llava",
    "template-audio": "template: qwen2_audio",
    "efficient-eos-prompt": "template: glm4\ntrain_on_prompt: true",
    "tool-format-missing": "tool_format: nonexistent",
    "vllm": "infer_backend: vllm",
    "ppo-logger": "stage: ppo\nreward_model: some/rm\nreport_to: mlflow",
    "prefetch": "dataloader_prefetch_factor: 2",
    "persistent-workers": "dataloader_persistent_workers: true",  # torch refuses it in get_train_dataloader
    "fp16-bf16": "fp16: true\nbf16: true",
    "fsdp-offload": "fsdp: offload",
    "date-value": "run_name: 2024-01-01",
    "yes-bool": "do_train: yes",
    "interpolation": "run_name: ${oc.env:HOME}",
    "duplicate": "dup:cutoff_len: 32",
    "save-best-no-metric": "save_strategy: best\neval_strategy: steps\neval_steps: 5\nval_size: 0.1",
    "split-special": "split_special_tokens: true",
    "ref-bits": "ref_model_quantization_bit: 2",
    "pixels": "image_max_pixels: 10",
    "device-map": "quantization_device_map: auto",
    "pissa-kto": "pissa_init: true\nstage: kto\ndataset: kto",
    "galore-lora": "use_galore: true",
    "lora-target-list": "lora_target: [q_proj, v_proj]",
    "dataset-list": "dataset: [d, e]",
    "epochs-negative": "num_train_epochs: -1",
    "epochs-fraction": "num_train_epochs: 1.5",
    "max-steps": "max_steps: 7",
    "grad-norm-negative": "max_grad_norm: -1.0",
    "seed-negative": "seed: -1",
    "workers-negative": "dataloader_num_workers: -1",
    "lora-rank-zero": "lora_rank: 0",
    "lora-dropout-big": "lora_dropout: 1.5",
    "cutoff-zero": "cutoff_len: 0",
    "prep-batch-zero": "preprocessing_batch_size: 0",
    "prep-workers-zero": "preprocessing_num_workers: 0",
    "logging-negative": "logging_steps: -5",
    "save-negative": "save_steps: -5",
    "lr-negative": "learning_rate: -1.0",
    "weight-decay-negative": "weight_decay: -0.1",
    "beta-one": "adam_beta1: 1.0",
    "label-smoothing-one": "label_smoothing_factor: 1.0",
    "batch-float": "per_device_train_batch_size: 2.0",
    "accum-float": "gradient_accumulation_steps: 2.0",
    "null-bool": "load_best_model_at_end: null",
    "max-samples-float": "max_samples: 50.0",
    "cutoff-float": "cutoff_len: 64.0",
    "lora-rank-float": "lora_rank: 8.0",
    "seed-float": "seed: 42.0",
    "max-steps-float": "max_steps: 7.0",
    "workers-float": "dataloader_num_workers: 1.0",
    "eval-batch-float": "per_device_eval_batch_size: 2.0\nval_size: 0.1\neval_strategy: epoch",
    "warmup-steps-whole-float": "warmup_steps: 3.0",
    "lora-alpha-float": "lora_alpha: 16.0",
    "no-model": "model_name_or_path: null",
    "report-to-typo": "report_to: tensorbord",
    "report-to-null": "report_to: null",
    "report-to-list": "report_to: [none]",
    "empty-cache-zero": "torch_empty_cache_steps: 0",
    "fsdp-false": "fsdp: false",
    "fsdp-single-process": "fsdp: full_shard",
    "output-dir-weights": "output_dir: done",
    "overwrite-output-dir": "output_dir: done\noverwrite_output_dir: true",
    "optim-sgd": "optim: sgd",
    "deepspeed-missing-file": "deepspeed: no/such/file.json",
    "lr-scheduler-kwargs": "lr_scheduler_kwargs: {num_cycles: 2}",
    "eval-steps-ratio": "eval_strategy: steps\neval_steps: 0.5\nval_size: 0.2",
    "no-dataset": "dataset: null",
}


# files a mutation needs besides the base dataset files
MUTATION_FILES = {
    "output-dir-weights": {"done/adapter_model.safetensors": "not really weights"},
    "overwrite-output-dir": {"done/adapter_model.safetensors": "not really weights"},
}


def render(mapping: dict[str, str], extra: list[str]) -> str:
    return "".join(f"{k}: {v}\n" for k, v in mapping.items()) + "".join(line + "\n" for line in extra)


def build_case(case_id: str, mutation_names: list[str]) -> dict:
    config = dict(BASE)
    extra: list[str] = []
    for name in mutation_names:
        for line in MUTATIONS[name].splitlines():
            if line.startswith("dup:"):
                extra.append(line[4:])
                continue
            key, _, value = line.partition(":")
            config[key.strip()] = value.strip()
    text = render(config, extra)
    files = base_files()
    for name in mutation_names:
        files.update(MUTATION_FILES.get(name, {}))
    return {"id": case_id, "config": text, "config_name": "cfg.yaml", "files": files, "mutations": mutation_names}


def special_cases() -> list[dict]:
    """Cases that differ in how the config reaches LLaMA-Factory, not in its keys."""
    base = build_case("base", [])
    as_json = json.dumps({k: _json_value(v) for k, v in BASE.items()}, indent=1)
    return [
        dict(base, id="json-config", config=as_json, config_name="cfg.json"),
        dict(
            base, id="json-config-typo", config=as_json.replace('"cutoff_len"', '"cutoff_lenn"'), config_name="cfg.json"
        ),
        dict(base, id="override", overrides=["num_train_epochs=2", "learning_rate=2e-5"]),
        dict(base, id="override-typo", overrides=["num_train_epoch=2"]),
        dict(base, id="upper-suffix", config_name="cfg.YAML"),
        dict(base, id="yml-suffix", config_name="cfg.yml"),
    ]


def _json_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def validation_cases(count: int, seed: int = 0) -> list[dict]:
    """Every mutation alone, the special cases, then random pairs, up to ``count`` cases (deterministic)."""
    rng = random.Random(seed)
    names = list(MUTATIONS)
    cases = [build_case("base", [])]
    cases += [build_case(name, [name]) for name in names]
    cases += special_cases()
    while len(cases) < count:
        pair = rng.sample(names, 2)
        keys = [set(_keys(MUTATIONS[n])) for n in pair]
        if keys[0] & keys[1]:
            continue
        cases.append(build_case("+".join(pair), pair))
    return cases[:count]


def _keys(text: str) -> list[str]:
    return [
        line[4:].partition(":")[0] if line.startswith("dup:") else line.partition(":")[0] for line in text.splitlines()
    ]


# ---------------------------------------------------------------------------------------- plan cases


def _alpaca_with_holes(rng: random.Random, n: int, start: int) -> list[dict]:
    rows = alpaca_rows(n, start)
    for i in rng.sample(range(n), k=min(n - 1, rng.choice([0, 0, 1, 3, n // 7]))):
        if rng.random() < 0.5:
            rows[i]["output"] = None
        else:
            rows[i].pop("output")
    return rows


def _sharegpt_with_breaks(rng: random.Random, n: int) -> list[dict]:
    rows = []
    for i in range(n):
        conv = [{"from": "human", "value": f"hello {i}"}, {"from": "gpt", "value": f"hi {i}"}]
        if rng.random() < 0.3:
            conv += [{"from": "human", "value": "more"}, {"from": "gpt", "value": "sure"}]
        if rng.random() < 0.15:
            conv.append({"from": "human", "value": "dangling"})  # odd count: dropped
        if rng.random() < 0.05:
            conv = [{"from": "gpt", "value": "wrong order"}, {"from": "human", "value": "x"}]
        rows.append({"conversations": conv})
    return rows


def plan_cases(count: int, seed: int = 1) -> list[dict]:
    """Random datasets and training arguments, for comparing the numbers the Trainer prints."""
    rng = random.Random(seed)
    cases = []
    for number in range(count):
        stage = rng.choices(["sft", "rm", "dpo", "kto", "pt"], weights=[10, 2, 2, 2, 2])[0]
        sizes = [rng.randint(3, 400) for _ in range(3)]
        info = {
            "a": {"file_name": "a.json"},
            "b": {"file_name": "b.jsonl"},
            "s": {"file_name": "s.json", "formatting": "sharegpt"},
            "p": {
                "file_name": "p.json",
                "ranking": True,
                "columns": {"prompt": "instruction", "query": "input", "chosen": "chosen", "rejected": "rejected"},
            },
            "k": {
                "file_name": "k.json",
                "columns": {"prompt": "instruction", "query": "input", "response": "output", "kto_tag": "label"},
            },
        }
        if rng.random() < 0.2:
            info["a"]["num_samples"] = rng.randint(5, 500)
        files = {
            "data/dataset_info.json": json.dumps(info),
            "data/a.json": json.dumps(_alpaca_with_holes(rng, sizes[0], 0)),
            "data/b.jsonl": "".join(json.dumps(r) + "\n" for r in _alpaca_with_holes(rng, sizes[1], 1000)),
            "data/s.json": json.dumps(_sharegpt_with_breaks(rng, sizes[2])),
            "data/p.json": json.dumps(ranking_rows(rng.randint(3, 300))),
            "data/k.json": json.dumps(kto_rows(rng.randint(4, 300))),
        }
        if stage in ("rm", "dpo"):
            names = ["p"]
        elif stage == "kto":
            names = ["k"]
        else:
            names = rng.sample(["a", "b", "s"], k=rng.choice([1, 1, 2, 3]))
        config = {
            "model_name_or_path": MODEL, "stage": stage, "do_train": "true", "finetuning_type": "lora",
            "template": "default", "dataset": ",".join(names), "dataset_dir": "data", "output_dir": "out",
            "report_to": "none", "cutoff_len": "64", "overwrite_output_dir": "true",
            "per_device_train_batch_size": str(rng.choice([1, 2, 3, 4, 8, 10, 16])),
            "gradient_accumulation_steps": str(rng.choice([1, 2, 3, 4, 8, 16])),
            "seed": str(rng.choice([42, 0, 7, 1234])),
        }  # fmt: skip
        if stage == "pt":
            config["packing"] = "false"
        if rng.random() < 0.25:
            config["max_steps"] = str(rng.randint(1, 60))
        else:
            config["num_train_epochs"] = str(rng.choice([1, 2, 3, 1.5, 0.5, 2.7, 4]))
        if rng.random() < 0.3:
            config["max_samples"] = str(rng.randint(2, 300))
        if rng.random() < 0.3:
            config["val_size"] = str(rng.choice([0.1, 0.2, 0.05, 3, 10, 1]))
            if rng.random() < 0.5:
                config["eval_strategy"] = "steps"
                config["eval_steps"] = str(rng.choice([0.1, 0.25, 5, 1]))
        if rng.random() < 0.2:
            config["dataloader_drop_last"] = "true"
        if len(names) > 1 and rng.random() < 0.5:
            config["mix_strategy"] = rng.choice(["interleave_under", "interleave_over"])
            if rng.random() < 0.6:
                weights = [rng.randint(1, 9) for _ in names]
                config["interleave_probs"] = (
                    ",".join(str(round(w / sum(weights), 6)) for w in weights[:-1])
                    + ","
                    + str(round(1 - sum(round(w / sum(weights), 6) for w in weights[:-1]), 6))
                )
        warmup = rng.random()
        if warmup < 0.3:
            config["warmup_ratio"] = str(rng.choice([0.03, 0.1, 0.5]))
        elif warmup < 0.5:
            config["warmup_steps"] = str(rng.choice([1, 5, 20]))
        if rng.random() < 0.5:
            config["save_steps"] = str(rng.choice([0.1, 0.25, 0.5, 3, 10, 500]))
        if rng.random() < 0.5:
            config["logging_steps"] = str(rng.choice([0.05, 0.2, 1, 7]))
        text = "".join(f"{k}: {v}\n" for k, v in config.items())
        cases.append({"id": f"plan-{number}-{stage}", "config": text, "config_name": "cfg.yaml", "files": files})
    return cases


def multiprocess_cases(count: int, world_size: int, seed: int = 11) -> list[dict]:
    """Plan cases for a torchrun launch of ``world_size`` CPU processes (gloo backend)."""
    cases = plan_cases(count, seed)
    for case in cases:
        case["id"] = case["id"].replace("plan-", f"w{world_size}-")
        case["config"] += "ddp_backend: gloo\n"
        case["world_size"] = world_size
    return cases


def ppo_cases(count: int, seed: int = 21) -> list[dict]:
    """PPO runs (LLaMA-Factory's own PPO trainer); the tiny model doubles as the reward model."""
    rng = random.Random(seed)
    cases = []
    for number in range(count):
        config = {
            "model_name_or_path": MODEL, "reward_model": MODEL, "reward_model_type": "full", "stage": "ppo",
            "do_train": "true", "finetuning_type": "lora", "template": "default", "dataset": "a",
            "dataset_dir": "data", "output_dir": "out", "report_to": "none", "cutoff_len": "32",
            "max_new_tokens": "4", "overwrite_output_dir": "true",
            "per_device_train_batch_size": str(rng.choice([1, 2, 3, 4])),
            "gradient_accumulation_steps": str(rng.choice([1, 2, 4])),
            "ppo_buffer_size": str(rng.choice([1, 1, 2])),
        }  # fmt: skip
        if rng.random() < 0.25:
            config["max_steps"] = str(rng.randint(1, 30))
        else:
            config["num_train_epochs"] = str(rng.choice([1, 2, 1.5, 0.5, 3]))
        if rng.random() < 0.5:
            config["warmup_ratio"] = str(rng.choice([0.1, 0.3]))
        if rng.random() < 0.2:
            config["max_samples"] = str(rng.randint(5, 60))
        if rng.random() < 0.15:
            config["val_size"] = "0.1"  # refused by the PPO trainer (LF291)
        text = "".join(f"{k}: {v}\n" for k, v in config.items())
        files = {
            "data/dataset_info.json": json.dumps({"a": {"file_name": "a.json"}}),
            "data/a.json": json.dumps(_alpaca_with_holes(rng, rng.randint(3, 90), 0)),
        }
        cases.append({"id": f"ppo-{number}", "config": text, "config_name": "cfg.yaml", "files": files})
    return cases


MEMORY_MODELS = {
    "llama-gqa": {"model_type": "llama", "hidden_size": 64, "intermediate_size": 160, "num_hidden_layers": 4,
                  "num_attention_heads": 4, "num_key_value_heads": 2, "tie_word_embeddings": False},
    "llama-tied": {"model_type": "llama", "hidden_size": 48, "intermediate_size": 96, "num_hidden_layers": 3,
                   "num_attention_heads": 4, "num_key_value_heads": 4, "tie_word_embeddings": True},
    "qwen2": {"model_type": "qwen2", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 3,
              "num_attention_heads": 4, "num_key_value_heads": 2, "tie_word_embeddings": False},
    "qwen3": {"model_type": "qwen3", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 3, "head_dim": 32,
              "num_attention_heads": 4, "num_key_value_heads": 2, "tie_word_embeddings": True},
    "mixtral": {"model_type": "mixtral", "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 3,
                "num_attention_heads": 4, "num_key_value_heads": 2, "num_local_experts": 4, "num_experts_per_tok": 2},
    "qwen2-moe": {"model_type": "qwen2_moe", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 3,
                  "num_attention_heads": 4, "num_key_value_heads": 4, "num_experts": 4, "num_experts_per_tok": 2,
                  "moe_intermediate_size": 32, "shared_expert_intermediate_size": 64},
    "gemma2": {"model_type": "gemma2", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 3, "head_dim": 16,
               "num_attention_heads": 4, "num_key_value_heads": 2},
    "phi3": {"model_type": "phi3", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 3,
             "num_attention_heads": 4, "num_key_value_heads": 4, "pad_token_id": 1},
}  # fmt: skip

MEMORY_ARGS = {
    "full": {"finetuning_type": "full"},
    "freeze-last2": {"finetuning_type": "freeze"},
    "freeze-first1-attn": {
        "finetuning_type": "freeze",
        "freeze_trainable_layers": -1,
        "freeze_trainable_modules": "self_attn",
    },
    "freeze-extra": {"finetuning_type": "freeze", "freeze_trainable_layers": 1, "freeze_extra_modules": "embed_tokens"},
    "lora-all": {"finetuning_type": "lora"},
    "lora-qv-r16": {"finetuning_type": "lora", "lora_target": "q_proj,v_proj", "lora_rank": 16},
    "dora": {"finetuning_type": "lora", "use_dora": True, "lora_rank": 4},
    "lora-embed": {"finetuning_type": "lora", "additional_target": "embed_tokens"},
    "llama-pro": {
        "finetuning_type": "freeze",
        "use_llama_pro": True,
        "freeze_trainable_layers": 2,
    },  # 3 layers: refused
}


# Vision-language models: a small vision tower and projector beside the language model (transformers' config names)
_VLM_TEXT = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
}
_MROPE = {"rope_type": "default", "mrope_section": [4, 2, 2]}
# special tokens inside the test tokenizer's vocabulary, so that a forward pass can carry an image
_IMAGE_TOKENS = {"vision_start_token_id": 3, "image_token_id": 4, "video_token_id": 5, "vision_end_token_id": 6}
_QWEN2_MROPE = {"type": "mrope", "mrope_section": [2, 3, 3]}  # what a forward pass needs (the hub configs have it)
_QWEN3_VISION = {
    "depth": 4,
    "hidden_size": 32,
    "intermediate_size": 48,
    "num_heads": 4,
    "out_hidden_size": 64,
    "num_position_embeddings": 36,
    "deepstack_visual_indexes": [1, 2],
}
VLM_MODELS = {
    # the hub's Qwen2-VL and Qwen2.5-VL config.json are flat: the language model's fields at the top level (a
    # text_config naming its own model_type, as transformers 4.57 saves it, replaces the model's when 4.57 loads it)
    "qwen2-vl": {"model_type": "qwen2_vl", **_VLM_TEXT, **_IMAGE_TOKENS, "rope_scaling": _QWEN2_MROPE,
                 "vision_config": {"depth": 2, "embed_dim": 32, "hidden_size": 64, "mlp_ratio": 4, "num_heads": 4}},
    "qwen2.5-vl": {"model_type": "qwen2_5_vl", **_VLM_TEXT, **_IMAGE_TOKENS, "rope_scaling": _QWEN2_MROPE,
                   "vision_config": {"depth": 2, "hidden_size": 32, "intermediate_size": 48, "num_heads": 4,
                                     "out_hidden_size": 64, "fullatt_block_indexes": [1]}},
    "qwen3-vl": {"model_type": "qwen3_vl", **_IMAGE_TOKENS, "vision_config": _QWEN3_VISION,
                 "text_config": dict(_VLM_TEXT, model_type="qwen3_vl_text", head_dim=16, rope_scaling=_MROPE)},
    "qwen3-vl-moe": {"model_type": "qwen3_vl_moe", **_IMAGE_TOKENS, "vision_config": _QWEN3_VISION,
                     "text_config": dict(_VLM_TEXT, model_type="qwen3_vl_moe_text", head_dim=16, rope_scaling=_MROPE,
                                         num_experts=4, num_experts_per_tok=2, moe_intermediate_size=32)},
    "gemma3": {"model_type": "gemma3", "mm_tokens_per_image": 4, "image_token_index": 4, "boi_token_index": 3,
               "eoi_token_index": 6,
               "text_config": dict(_VLM_TEXT, model_type="gemma3_text", head_dim=16),
               "vision_config": {"model_type": "siglip_vision_model", "hidden_size": 32, "intermediate_size": 48,
                                 "num_hidden_layers": 2, "num_attention_heads": 4, "patch_size": 14, "image_size": 112,
                                 "vision_use_head": False}},
}  # fmt: skip
# Qwen2.5-VL's config.json as transformers 4.57 saves it (a fine-tuned or merged checkpoint): the text_config
# names its model_type. transformers 4.49-4.51 cannot load a nested text_config at all (LF279).
VLM_MODELS["qwen2.5-vl-resaved"] = dict(
    VLM_MODELS["qwen2.5-vl"], text_config=dict(_VLM_TEXT, model_type="qwen2_5_vl_text")
)
VLM_ARGS = {
    "full": {"finetuning_type": "full"},
    "full-tower": {"finetuning_type": "full", "freeze_vision_tower": False, "freeze_multi_modal_projector": False},
    "full-projector-only": {"finetuning_type": "full", "freeze_language_model": True,
                            "freeze_multi_modal_projector": False},
    "freeze-last2": {"finetuning_type": "freeze"},
    "freeze-tower": {"finetuning_type": "freeze", "freeze_vision_tower": False, "freeze_multi_modal_projector": False},
    "lora-all": {"finetuning_type": "lora"},
    "lora-qv": {"finetuning_type": "lora", "lora_target": "q_proj,v_proj"},
    "lora-all-tower": {"finetuning_type": "lora", "freeze_vision_tower": False},
    "lora-all-tower-projector": {"finetuning_type": "lora", "freeze_vision_tower": False,
                                 "freeze_multi_modal_projector": False},
    # module names matched below a layer and by substring: the tower's own names next to the language model's
    "full-tower-no-checkpointing": {"finetuning_type": "full", "freeze_vision_tower": False,
                                    "freeze_multi_modal_projector": False, "disable_gradient_checkpointing": True},
    "freeze-tower-mlp": {"finetuning_type": "freeze", "freeze_trainable_modules": "mlp", "freeze_vision_tower": False},
    "lora-named-tower": {"finetuning_type": "lora", "lora_target": "qkv,q_proj,fc1,up_proj", "freeze_vision_tower": False},
}  # fmt: skip


# what a trained vision encoder keeps per image patch: every way of training it, on the three Qwen-VL towers
VISION_ACTIVATION_MODELS = ("qwen2-vl", "qwen2.5-vl", "qwen3-vl", "gemma3")
VISION_ACTIVATION_ARGS = ("full", "full-tower", "full-tower-no-checkpointing", "full-projector-only", "freeze-tower",
                          "lora-all-tower", "lora-all-tower-projector")  # fmt: skip


def image_patches(model_config: dict, grid: list[int]) -> int:
    """Patches of one sequence's images (memory_probe._image_inputs): a Qwen-VL grid, or Gemma 3 images."""
    if model_config["model_type"] == "gemma3":
        vision = model_config["vision_config"]
        return grid[0] * (vision["image_size"] // vision["patch_size"]) ** 2
    return grid[0] * grid[1]


def with_vocab(model_config: dict, vocab: int) -> dict:
    """A model config with the test tokenizer's vocabulary (a composite model's is its text config's)."""
    if isinstance(model_config.get("text_config"), dict):
        return dict(model_config, text_config=dict(model_config["text_config"], vocab_size=vocab))
    return dict(model_config, vocab_size=vocab)


def memory_cases() -> list[dict]:
    """Every model with every way of tuning it, loaded through LLaMA-Factory (memory_probe.py)."""
    cases = []
    for model, config in MEMORY_MODELS.items():
        for name, args in MEMORY_ARGS.items():
            if model == "phi3" and name == "lora-qv-r16":
                args = dict(args, lora_target="qkv_proj")
            case = {"id": f"{model}-{name}", "model_config": config, "args": args}
            if name in ("full", "lora-all", "freeze-last2") and model in ("llama-gqa", "qwen3", "mixtral"):
                case["activation"] = [2, 32]
            cases.append(case)
    wrong_module = {"finetuning_type": "freeze", "freeze_trainable_modules": "q_proj"}
    for model in ("llama-gqa", "qwen3", "gemma2", "mixtral"):  # a LoRA target where freeze tuning wants a layer's child
        cases.append({"id": f"{model}-freeze-wrong-module", "model_config": MEMORY_MODELS[model], "args": wrong_module})
    for model in ("qwen2-vl", "gemma3"):
        cases.append({"id": f"{model}-freeze-wrong-module", "model_config": VLM_MODELS[model], "args": wrong_module})
        cases.append({"id": f"{model}-freeze-wrong-extra", "model_config": VLM_MODELS[model],
                      "args": {"finetuning_type": "freeze", "freeze_extra_modules": "visual"}})  # fmt: skip
    for model, config in VLM_MODELS.items():
        for name, args in VLM_ARGS.items():
            case = {"id": f"{model}-{name}", "model_config": config, "args": args}
            if model in VISION_ACTIVATION_MODELS and name in VISION_ACTIVATION_ARGS:
                grids = [[2], [4]] if model == "gemma3" else [[8, 8], [16, 16]]
                case.update(image_activation=[1, 128], image_grids=grids)
            cases.append(case)
    cases.append({"id": "llava-original-layout", "model_config": ORIGINAL_LLAVA, "args": VLM_ARGS["full"]})
    return cases


# A LLaVA config.json as LLaVA's own repository ships it (LlavaLlamaForCausalLM): LLaMA-Factory refuses it
ORIGINAL_LLAVA = {"model_type": "llava", "architectures": ["LlavaLlamaForCausalLM"],
                  "text_config": dict(_VLM_TEXT, model_type="llama"),
                  "vision_config": {"model_type": "clip_vision_model", "hidden_size": 32, "intermediate_size": 48,
                                    "num_hidden_layers": 2, "num_attention_heads": 4, "image_size": 28,
                                    "patch_size": 14}}  # fmt: skip


def tokenized_cases() -> list[dict]:
    """A first run saves the preprocessed data at tokenized_path; the case then loads it and ignores the dataset
    arguments, which it changes (more rows, another max_samples and val_size)."""
    rows = alpaca_rows(120)
    files = {"data/dataset_info.json": json.dumps({"a": {"file_name": "a.json"}}), "data/a.json": json.dumps(rows)}
    base = {"model_name_or_path": MODEL, "stage": "sft", "do_train": "true", "finetuning_type": "lora", "template": "default",
            "dataset": "a", "dataset_dir": "data", "output_dir": "out", "report_to": "none", "cutoff_len": "64",
            "overwrite_output_dir": "true", "per_device_train_batch_size": "4", "gradient_accumulation_steps": "2",
            "tokenized_path": "tokenized"}  # fmt: skip
    first = dict(base, max_samples="90", val_size="0.1")
    second = dict(base, max_samples="20", val_size="0.5", num_train_epochs="2")
    render_ = lambda c: "".join(f"{k}: {v}\n" for k, v in c.items())  # noqa: E731
    return [
        {
            "id": "tokenized-reload",
            "config": render_(second),
            "prepare": render_(first),
            "config_name": "cfg.yaml",
            "files": files,
            "export": "tokenized",
        }
    ]


PACKING_TEMPLATES = ["default", "llama3", "qwen", "alpaca", "glm4", "llama2", "mistral", "chatml", "gemma", "phi4"]


def packing_cases(count: int, seed: int = 31) -> list[dict]:
    """Token-dependent counts: pre-training blocks and packed SFT, with varying texts, cut-offs and batch sizes of
    the preprocessing map; SFT cases use several chat templates (efficient eos, replaced eos, fused system prompts),
    alpaca or multi-turn ShareGPT data with system prompts, mask_history and val_size."""
    rng = random.Random(seed)
    cases = []

    def words(i: int) -> str:
        return " ".join(
            rng.choice(["alpha", "beta", "gamma", "delta", "number", str(i)]) for _ in range(rng.randint(1, 60))
        )

    for number in range(count):
        stage = "pt" if number % 3 == 0 else "sft"
        sharegpt = stage == "sft" and number % 2 == 1
        rows = []
        for i in range(rng.randint(20, 300)):
            if sharegpt:
                turns = [
                    {"from": side, "value": f"Say {words(i)}."}
                    for _ in range(rng.randint(1, 3))
                    for side in ("human", "gpt")
                ]
                if rng.random() < 0.3:
                    turns.insert(0, {"from": "system", "value": f"You are {words(i)}."})
                rows.append({"conversations": turns})
            else:
                rows.append({"instruction": f"Say {words(i)}.", "input": "", "output": f"The answer is {words(i)}."})
        config = {
            "model_name_or_path": MODEL, "stage": stage, "do_train": "true", "finetuning_type": "lora",
            "template": rng.choice(PACKING_TEMPLATES) if stage == "sft" else "default",
            "dataset": "a", "dataset_dir": "data", "output_dir": "out", "report_to": "none",
            "cutoff_len": str(rng.choice([16, 32, 64, 128])), "overwrite_output_dir": "true",
            "per_device_train_batch_size": str(rng.choice([1, 2, 4])), "gradient_accumulation_steps": "1",
            "preprocessing_batch_size": str(rng.choice([7, 50, 1000])),
        }  # fmt: skip
        if stage == "sft":
            config["packing"] = "true"
            if rng.random() < 0.4:
                config["mask_history"] = "true"
            if rng.random() < 0.3:
                config["val_size"] = "0.2"
        entry = {"file_name": "a.json"}
        if sharegpt:
            entry.update(formatting="sharegpt", columns={"messages": "conversations"})
        files = {"data/dataset_info.json": json.dumps({"a": entry}), "data/a.json": json.dumps(rows)}
        text = "".join(f"{k}: {v}\n" for k, v in config.items())
        cases.append({"id": f"packing-{number}-{stage}", "config": text, "config_name": "cfg.yaml", "files": files})
    return cases


def format_cases(seed: int = 41) -> list[dict]:
    """Every file format LLaMA-Factory reads (csv, parquet, arrow, txt, json lines, a folder of files), with rows
    it drops (empty CSV cells are missing values; null outputs), for sft and pt."""
    rng = random.Random(seed)
    cases = []
    for fmt, ext in (
        ("csv", "csv"),
        ("parquet", "parquet"),
        ("arrow", "arrow"),
        ("text", "txt"),
        ("folder", "parquet"),
    ):
        for stage in ("sft", "pt"):
            n = rng.randint(20, 200)
            rows = [{"instruction": f"Say {i}.", "input": "" if i % 4 else f"ctx {i}", "output": None if i % 7 == 3 else f"It is {i}."}
                    for i in range(n)]  # fmt: skip
            if fmt == "csv":
                for row in rows:
                    row["output"] = row["output"] or ""  # an empty cell: datasets reads it as a missing value
            entry = {"file_name": f"a.{ext}"}
            tables = {f"data/a.{ext}": {"format": fmt, "rows": rows}}
            if fmt == "text":
                tables = {
                    "data/a.txt": {
                        "format": "text",
                        "rows": [{"text": r["instruction"] + " " + (r["output"] or "")} for r in rows],
                    }
                }
                entry["columns"] = {"prompt": "text"}
                if stage == "sft":
                    continue  # plain text has no response column
            if fmt == "folder":
                half = len(rows) // 2
                tables = {"data/parts/p1.parquet": {"format": "parquet", "rows": rows[:half]},
                          "data/parts/p2.parquet": {"format": "parquet", "rows": rows[half:]}}  # fmt: skip
                entry = {"file_name": "parts"}
            config = {
                "model_name_or_path": MODEL, "stage": stage, "do_train": "true", "finetuning_type": "lora", "template": "default",
                "dataset": "a", "dataset_dir": "data", "output_dir": "out", "report_to": "none", "cutoff_len": "64",
                "overwrite_output_dir": "true", "per_device_train_batch_size": "2", "gradient_accumulation_steps": "2",
            }  # fmt: skip
            if stage == "pt":
                config["packing"] = "false"
                if fmt != "text":
                    entry["columns"] = {"prompt": "instruction"}
            text = "".join(f"{k}: {v}\n" for k, v in config.items())
            cases.append({"id": f"format-{fmt}-{stage}", "config": text, "config_name": "cfg.yaml", "tables": tables,
                          "files": {"data/dataset_info.json": json.dumps({"a": entry})}})  # fmt: skip
    return cases


TEMPLATE_WORDS = ["alpha", "beta", "gamma", " delta", "number", "7", "\n", "你好", "<think>\n", "\n</think>\n\n",
                  "<think>", "</think>", "<|im_end|>", "<|eot_id|>", "</s>", "<s>", "{{idx}}", "{{content}}"]  # fmt: skip


TOOLS = [
    {"name": "get_weather", "description": "Weather of a city.",
     "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "The city."},
                                                     "unit": {"type": "string", "enum": ["c", "f"]}},
                    "required": ["city"]}},
    {"type": "function", "function": {"name": "search", "description": "搜索网页",
     "parameters": {"type": "object", "properties": {"terms": {"type": "array", "items": {"type": "string"}}}}}},
]  # fmt: skip


def _call(rng: random.Random, text) -> str:
    """A function-call message: one call or several, sometimes after a thought or inside tool-call words."""
    calls = [
        {"name": "get_weather", "arguments": {"city": text(3), "unit": "c"}},
        {"name": "search", "arguments": {"terms": ["a b", "你好"]}},
    ]
    body = json.dumps(calls[0] if rng.random() < 0.6 else calls, ensure_ascii=False)
    shape = rng.random()
    if shape < 0.2:
        return f"<think>\n{text(5)}\n</think>\n\n{body}"
    if shape < 0.35:
        return f"I will look it up. <tool_call>{body}</tool_call>"
    return body


def template_conversations(count: int, seed: int = 53) -> list[dict]:
    """Conversations in the converter's format: 1-3 turns, observation turns, thoughts, system prompts, tool lists
    (empty, plain and wrapped descriptions), function calls (single, parallel, after a thought, inside tool-call
    words), and text that contains stop words, thought words and slot placeholders."""
    rng = random.Random(seed)

    def text(most: int) -> str:
        return "".join(rng.choice(TEMPLATE_WORDS) + rng.choice(["", " "]) for _ in range(rng.randint(0, most)))

    conversations = []
    for _ in range(count):
        with_tools = rng.random() < 0.3
        messages = []
        for turn in range(rng.randint(1, 3)):
            called = with_tools and messages and messages[-1]["role"] == "function"
            messages.append(
                {"role": "observation" if called or (turn and rng.random() < 0.2) else "user", "content": text(30)}
            )
            if with_tools and rng.random() < 0.5:
                messages.append({"role": "function", "content": _call(rng, text)})
                continue
            answer = text(40)
            if rng.random() < 0.3:
                answer = f"<think>\n{text(10)}\n</think>\n\n{answer}"
            messages.append({"role": "assistant", "content": answer})
        tools = (
            json.dumps(rng.sample(TOOLS, k=rng.randint(1, 2)), ensure_ascii=False)
            if with_tools
            else rng.choice(["", "", "[]"])
        )
        conversations.append({"prompt": messages[:-1], "response": messages[-1:],
                              "system": rng.choice(["", "", text(20)]), "tools": tools})  # fmt: skip
    return conversations


def template_settings(names: list[str], seed: int = 59) -> list[dict]:
    """Every template with the plain tokenizer; a random sample again with the rich tokenizer and other settings."""
    rng = random.Random(seed)
    settings = [{"tokenizer": "plain", "template": name, "cutoff_len": 96} for name in names]
    for name in rng.sample(names, min(len(names), 40)):
        settings.append({"tokenizer": "rich", "template": name, "cutoff_len": rng.choice([24, 64, 1024]),
                         "mask_history": rng.random() < 0.4, "enable_thinking": rng.choice([True, False]),
                         "preserve_thinking": rng.random() < 0.3,
                         "default_system": rng.choice([None, None, "Be brief."]),
                         "tool_format": rng.choice([None, None, "default", "qwen", "llama3", "glm4", "mistral", "qwen3_5", "glm4_moe", "seed_oss", "minimax1", "minimax2", "ling", "lfm2"])})  # fmt: skip
    return settings


def eval_dataset_cases(seed: int = 61) -> list[dict]:
    """`eval_dataset` with one or two names, with and without `eval_on_each_dataset`, max_samples and rows the
    processor drops: the eval counts, merged and per dataset."""
    rng = random.Random(seed)
    cases = []
    for number in range(6):
        info = {
            "a": {"file_name": "a.json"},
            "b": {"file_name": "b.jsonl"},
            "s": {"file_name": "s.json", "formatting": "sharegpt"},
        }
        files = {
            "data/dataset_info.json": json.dumps(info),
            "data/a.json": json.dumps(_alpaca_with_holes(rng, rng.randint(20, 200), 0)),
            "data/b.jsonl": "".join(json.dumps(r) + "\n" for r in _alpaca_with_holes(rng, rng.randint(20, 200), 1000)),
            "data/s.json": json.dumps(_sharegpt_with_breaks(rng, rng.randint(20, 200))),
        }
        config = {
            "model_name_or_path": MODEL, "stage": "sft", "do_train": "true", "finetuning_type": "lora",
            "template": "default", "dataset": "a", "eval_dataset": ",".join(rng.sample(["a", "b", "s"], k=1 + number % 2)),
            "dataset_dir": "data", "output_dir": "out", "report_to": "none", "cutoff_len": "64",
            "overwrite_output_dir": "true", "per_device_train_batch_size": "2", "eval_strategy": "steps", "eval_steps": "5",
        }  # fmt: skip
        if number % 3 != 2:
            config["eval_on_each_dataset"] = "true"
        if rng.random() < 0.5:
            config["max_samples"] = str(rng.randint(10, 150))
        text = "".join(f"{k}: {v}\n" for k, v in config.items())
        cases.append({"id": f"eval-datasets-{number}", "config": text, "config_name": "cfg.yaml", "files": files})
    return cases


def config_cases() -> list[dict]:
    """Model configs for config_probe.py: native types of different ages, custom code (auto_map) with and without
    trust_remote_code, a type no release knows."""
    text = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 100}
    custom = {"model_type": "internlm2", "auto_map": {"AutoConfig": "configuration_internlm2.InternLM2Config"}, **text}
    configs = {
        "llama": {"model_type": "llama", **text},
        "qwen3": {"model_type": "qwen3", **text},  # transformers 4.51
        "gemma3-text": {"model_type": "gemma3_text", **text},  # 4.50
        "glm4": {"model_type": "glm4", **text},  # 4.51.3
        "qwen3-vl": VLM_MODELS["qwen3-vl"],  # 4.57
        "custom-code": custom,
        "native-with-auto-map": {"model_type": "llama", "auto_map": {"AutoConfig": "configuration_x.XConfig"}, **text},
        "unknown": {"model_type": "not_a_model_type", **text},
    }
    cases = [{"id": name, "config": config, "args": {}} for name, config in configs.items()]
    quantized = {"3-bit": {"quantization_bit": 3}, "8-bit": {"quantization_bit": 8},
                 "hqq-7-bit": {"quantization_bit": 7, "quantization_method": "hqq"},
                 "eetq-4-bit": {"quantization_bit": 4, "quantization_method": "eetq"}}  # fmt: skip
    return cases + [{"id": f"llama-{name}", "config": configs["llama"], "args": {"finetuning_type": "lora", **args}}
                    for name, args in quantized.items()]  # fmt: skip
