"""LF317 and LF318: what stops a run once the Trainer starts, after the model has loaded (the data loader's
workers, the early-stopping callback's asserts)."""

from __future__ import annotations

import pytest
import yaml

from lf_lint.engine import LintOptions, lint_file

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
EVALUATED = {"val_size": 0.1, "eval_strategy": "steps", "eval_steps": 10}


def codes(tmp_path, extra: dict, llamafactory: str = "0.9.5", transformers: str = "4.57.1", **options) -> set[str]:
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump({**TRAIN, **extra}))
    options = LintOptions(count_datasets=False, workdir=tmp_path, llamafactory_version=llamafactory,
                          transformers_version=transformers, **options)  # fmt: skip
    return {d.code for d in lint_file(path, options).diagnostics}


def test_persistent_workers_need_workers_wherever_the_trainer_builds_a_loader(tmp_path):
    assert "LF317" in codes(tmp_path, {"dataloader_persistent_workers": True})
    assert "LF317" in codes(tmp_path, {"dataloader_persistent_workers": True, "dataloader_num_workers": 0})
    assert "LF317" not in codes(tmp_path, {"dataloader_persistent_workers": True, "dataloader_num_workers": 1})
    assert "LF317" not in codes(tmp_path, {"dataloader_persistent_workers": False})
    predict = {"do_train": False, "do_predict": True, "predict_with_generate": True, "eval_dataset": "identity"}
    assert "LF317" in codes(tmp_path, {"dataloader_persistent_workers": True, **predict})
    ppo = {"stage": "ppo", "reward_model": "saves/rm", "dataloader_persistent_workers": True}  # TRL's own loader
    assert "LF317" not in codes(tmp_path, ppo)
    assert "LF317" not in codes(tmp_path, {"dataloader_persistent_workers": True}, env_overrides={"USE_MCA": "1"},
                                llamafactory="0.9.6.dev0", transformers="5.8.1")  # fmt: skip


@pytest.mark.parametrize("transformers", ["4.51.3", "4.57.1", "5.6.0"])
def test_early_stopping_needs_a_metric_and_evaluations(tmp_path, transformers):
    assert "LF318" in codes(tmp_path, {"early_stopping_steps": 3}, transformers=transformers)
    assert "LF318" in codes(tmp_path, {"early_stopping_steps": 3, **EVALUATED}, transformers=transformers)
    metric = {"metric_for_best_model": "eval_loss"}
    assert "LF318" in codes(tmp_path, {"early_stopping_steps": 3, **metric}, transformers=transformers)  # no evaluations
    assert "LF318" not in codes(tmp_path, {"early_stopping_steps": 3, **EVALUATED, **metric}, transformers=transformers)
    # load_best_model_at_end and a plateau scheduler make TrainingArguments name "loss"
    best = {"load_best_model_at_end": True, "save_steps": 10}
    assert "LF318" not in codes(tmp_path, {"early_stopping_steps": 3, **EVALUATED, **best}, transformers=transformers)
    plateau = {"lr_scheduler_type": "reduce_lr_on_plateau"}
    assert "LF318" not in codes(tmp_path, {"early_stopping_steps": 3, **EVALUATED, **plateau}, transformers=transformers)
    assert "LF318" not in codes(tmp_path, {"early_stopping_steps": 3, "do_train": False, "do_predict": True,
                                           "eval_dataset": "identity"}, transformers=transformers)  # fmt: skip


def test_early_stopping_is_a_key_of_0_9_3_and_later(tmp_path):
    found = codes(tmp_path, {"early_stopping_steps": 3}, llamafactory="0.9.2", transformers="4.49.0")
    assert "LF318" not in found and "LF102" in found  # 0.9.2 has no such argument
    assert "LF318" in codes(tmp_path, {"early_stopping_steps": 3}, llamafactory="0.9.3", transformers="4.51.3")
