"""What stops a run after the model has loaded: the adapter set-up (LF296-LF298), the data loader's workers
(LF317) and the early-stopping callback's asserts (LF318)."""

from __future__ import annotations

import json

import pytest
import yaml
from train_config import TRAIN

from lf_lint.engine import LintOptions, lint_file

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


def _checkpoint(tmp_path, quant_method: str | None) -> str:
    """A local model folder whose config.json records ``quant_method`` (None: not quantized)."""
    folder = tmp_path / f"model-{quant_method}"
    folder.mkdir(exist_ok=True)
    config = {"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
              "intermediate_size": 128, "vocab_size": 100}  # fmt: skip
    if quant_method is not None:
        config["quantization_config"] = {"quant_method": quant_method, "bits": 4}
    (folder / "config.json").write_text(json.dumps(config))
    return str(folder)


def test_dora_is_refused_on_every_quantization_but_bitsandbytes(tmp_path):
    dora = {"use_dora": True}
    for method in ("gptq", "awq"):
        assert "LF298" in codes(tmp_path, {**dora, "model_name_or_path": _checkpoint(tmp_path, method)})
    for method in ("bitsandbytes", None):
        assert "LF298" not in codes(tmp_path, {**dora, "model_name_or_path": _checkpoint(tmp_path, method)})
    mxfp4 = {**dora, "model_name_or_path": _checkpoint(tmp_path, "mxfp4")}
    assert "LF298" not in codes(tmp_path, mxfp4)  # dequantized while loading from 0.9.4
    assert "LF298" in codes(tmp_path, mxfp4, llamafactory="0.9.3", transformers="4.51.3")
    assert "LF298" in codes(tmp_path, {**dora, "quantization_bit": 8, "quantization_method": "eetq"})
    assert "LF298" not in codes(tmp_path, {**dora, "quantization_bit": 4})  # QDoRA with bitsandbytes
    gptq = _checkpoint(tmp_path, "gptq")
    resumed = {**dora, "model_name_or_path": gptq, "adapter_name_or_path": "saves/adapter"}  # no new adapter
    assert "LF298" not in codes(tmp_path, resumed)
    assert "LF298" not in codes(tmp_path, {**dora, "model_name_or_path": gptq, "do_train": False, "do_predict": True,
                                           "eval_dataset": "identity", "predict_with_generate": True})  # fmt: skip


def test_ktransformers_and_unsloth_build_lora_adapters_only(tmp_path):
    assert "LF296" in codes(tmp_path, {"use_kt": True, "finetuning_type": "oft"})
    assert "LF296" not in codes(tmp_path, {"use_kt": True})
    assert "LF297" in codes(tmp_path, {"use_unsloth": True, "finetuning_type": "oft"})
    assert "LF297" in codes(tmp_path, {"use_unsloth": True, "finetuning_type": "oft"}, llamafactory="0.9.4")
    assert "LF297" not in codes(tmp_path, {"use_unsloth": True})
    assert "LF297" not in codes(tmp_path, {"use_unsloth": True, "finetuning_type": "oft", "do_train": False,
                                           "do_predict": True, "eval_dataset": "identity"})  # fmt: skip


def test_an_automatic_device_map_takes_4_bit_bitsandbytes_only(tmp_path):
    chat = {"model_name_or_path": "Qwen/Qwen3-0.6B", "template": "qwen3", "finetuning_type": "lora",
            "quantization_device_map": "auto"}  # fmt: skip
    path = tmp_path / "chat.yaml"
    options = LintOptions(count_datasets=False, workdir=tmp_path, llamafactory_version="0.9.5",
                          transformers_version="4.57.1", command="chat")  # fmt: skip
    for bits, refused in ((8, True), (4, False)):
        path.write_text(yaml.safe_dump({**chat, "quantization_bit": bits}))
        assert ("LF294" in {d.code for d in lint_file(path, options).diagnostics}) is refused, bits
    # a training run with a device map stops earlier, on its own check
    found = codes(tmp_path, {"quantization_bit": 8, "quantization_device_map": "auto"})
    assert "LF239" in found and "LF294" not in found
