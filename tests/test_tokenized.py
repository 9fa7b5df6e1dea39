"""`tokenized_path`: a dataset saved by LLaMA-Factory replaces the dataset arguments (data/loader.py::get_dataset)."""

from __future__ import annotations

import pytest

from lf_lint.engine import LintOptions, lint_file

datasets = pytest.importorskip("datasets")

CONFIG = """\
model_name_or_path: m
stage: sft
do_train: true
finetuning_type: lora
dataset: missing_dataset
template: default
output_dir: out
bf16: true
per_device_train_batch_size: 4
gradient_accumulation_steps: 2
num_train_epochs: 1
val_size: 0.1
tokenized_path: tokenized
"""


def _lint(tmp_path, text=CONFIG):
    config = tmp_path / "cfg.yaml"
    config.write_text(text)
    options = LintOptions(
        llamafactory_version="0.9.5", transformers_version="4.57.1", workdir=tmp_path, use_cache=False
    )
    return lint_file(config, options)


def _saved(tmp_path, train: int, validation: int | None):
    rows = lambda n: datasets.Dataset.from_dict({"input_ids": [[1, 2, 3]] * n, "labels": [[1, 2, 3]] * n})  # noqa: E731
    if validation is None:
        rows(train).save_to_disk(str(tmp_path / "tokenized"))
    else:
        datasets.DatasetDict({"train": rows(train), "validation": rows(validation)}).save_to_disk(
            str(tmp_path / "tokenized")
        )


def test_saved_dataset_dict_is_what_gets_trained(tmp_path):
    _saved(tmp_path, 1000, 37)
    result = _lint(tmp_path)
    assert (result.plan.num_examples, result.plan.num_eval_examples, result.plan.steps.total_steps) == (1000, 37, 125)
    assert result.plan.exact and "tokenized dataset saved at" in result.plan.basis
    (finding,) = [d for d in result.diagnostics if d.code == "LF413"]
    assert finding.severity.value == "warning" and "dataset, val_size" in finding.message
    assert not [d for d in result.diagnostics if d.code.startswith("LF40")]  # the missing dataset is never read


def test_single_saved_dataset(tmp_path):
    _saved(tmp_path, 333, None)
    result = _lint(tmp_path)
    assert (result.plan.num_examples, result.plan.num_eval_examples) == (333, None)


def test_unreadable_folder_and_streaming(tmp_path):
    (tmp_path / "tokenized").mkdir()
    (tmp_path / "tokenized" / "notes.txt").write_text("not a dataset")
    result = _lint(tmp_path)
    (finding,) = [d for d in result.diagnostics if d.code == "LF413"]
    assert finding.severity.value == "error" and "not a dataset saved by `datasets`" in finding.message
    fresh = tmp_path / "other"
    fresh.mkdir()
    result = _lint(fresh, CONFIG.replace("val_size: 0.1\n", "streaming: true\nmax_steps: 10\n"))
    assert any(d.code == "LF413" and "Turn off `streaming`" in d.message for d in result.diagnostics)
