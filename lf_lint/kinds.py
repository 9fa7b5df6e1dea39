"""Tell a LLaMA-Factory train config from the other YAML/JSON files a repository holds.

The decision uses keys only. Train and inference configs both name a model; a train
config also sets something only training reads (a stage, a dataset, any Trainer argument).
Files without LLaMA-Factory's characteristic keys (accelerate and DeepSpeed configs, the
dataset registry, v1 configs, anything else) are recognised so that a pre-commit hook
running on every YAML file leaves them alone.
"""

from __future__ import annotations

import re

from .patterns import LazyPattern

# Keys that only LLaMA-Factory configs (v0) use; one of them makes a file "ours".
LF_ANCHORS = frozenset({
    "model_name_or_path", "adapter_name_or_path", "stage", "finetuning_type", "dataset", "eval_dataset",
    "dataset_dir", "template", "cutoff_len", "lora_target", "lora_rank", "export_dir", "infer_backend",
    "tokenized_path", "quantization_bit", "pref_beta", "val_size", "max_samples",
})  # fmt: skip
# Keys that mean "this is for `llamafactory-cli train`" (besides any TrainingArguments key).
TRAIN_MARKERS = frozenset({
    "stage", "dataset", "do_train", "do_eval", "do_predict", "output_dir", "val_size", "cutoff_len",
    "per_device_train_batch_size", "gradient_accumulation_steps", "learning_rate", "num_train_epochs",
    "max_steps", "lora_rank", "lora_target", "pref_beta", "packing",
})  # fmt: skip
EXPORT_MARKERS = frozenset({"export_dir", "export_size", "export_device", "export_quantization_bit"})
V1_MARKERS = frozenset({"train_dataset", "micro_batch_size", "model_class", "peft_config", "dist_config"})
ACCELERATE_MARKERS = frozenset(
    {"compute_environment", "distributed_type", "num_machines", "machine_rank", "main_training_function"}
)
DEEPSPEED_MARKERS = frozenset(
    {"zero_optimization", "train_micro_batch_size_per_gpu", "train_batch_size", "zero_allow_untested_optimizer"}
)

_ANCHOR_LINE = LazyPattern(r"^\s*(?:-\s+)?[\"']?(" + "|".join(sorted(LF_ANCHORS)) + r")[\"']?\s*:", re.M)


def classify(data: object) -> str:
    """ "train", "export", "chat", "v1", "accelerate", "deepspeed", "dataset_info" or "other"."""
    if not isinstance(data, dict):
        return "other"
    keys = {k for k in data if isinstance(k, str)}
    if "model_name_or_path" not in keys and (keys & V1_MARKERS or ("model" in keys and "template" in keys)):
        return "v1"
    if keys & LF_ANCHORS:
        if keys & TRAIN_MARKERS:
            return "train"
        if keys & EXPORT_MARKERS:
            return "export"
        return "chat"
    if keys & ACCELERATE_MARKERS:
        return "accelerate"
    if keys & DEEPSPEED_MARKERS:
        return "deepspeed"
    if data and all(
        isinstance(v, dict)
        and ({"file_name", "hf_hub_url", "ms_hub_url", "om_hub_url", "script_url", "cloud_file_name"} & set(v))
        for v in data.values()
    ):
        return "dataset_info"
    return "other"


def looks_like_lf_config(text: str) -> bool:
    """For files that do not parse: does the text set any of LLaMA-Factory's characteristic keys?"""
    return bool(_ANCHOR_LINE.search(text))


def command_for(kind: str) -> str:
    return {"train": "train", "export": "infer", "chat": "infer"}.get(kind, "other")
