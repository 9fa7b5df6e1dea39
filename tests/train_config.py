"""The smallest train config LLaMA-Factory accepts (no file is read for it), as the rule tests lay options over it."""

TRAIN = {
    "model_name_or_path": "Qwen/Qwen3-0.6B",
    "stage": "sft",
    "do_train": True,
    "finetuning_type": "lora",
    "dataset": "identity",
    "template": "default",
    "output_dir": "saves/run",
    "bf16": True,
}
