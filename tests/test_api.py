"""The Python API: lint() on paths, YAML text and mappings."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lf_lint import LfLintError, Severity, lint

GOOD = {
    "model_name_or_path": "Qwen/Qwen3-0.6B",
    "stage": "sft",
    "do_train": True,
    "finetuning_type": "lora",
    "dataset": "identity",
    "template": "qwen3",
    "output_dir": "saves/x",
    "bf16": True,
}


def test_mapping_is_taken_as_run_exp_takes_it():
    assert lint(GOOD, llamafactory_version="0.9.5", transformers_version="4.57.1", datasets=False) == []
    # a string stays a string, whatever YAML would have made of it
    found = lint({**GOOD, "learning_rate": "1e-4"}, llamafactory_version="0.9.5", datasets=False)
    assert [d.code for d in found] == ["LF103"]


def test_yaml_text_uses_the_target_reader():
    text = "model_name_or_path: m\nstage: sft\ndo_train: true\ndataset: d\noutput_dir: o\nbf16: true\nlearning_rate: 1e-4\n"
    assert lint(text, llamafactory_version="0.9.5", datasets=False) == []
    (finding,) = lint(text, llamafactory_version="0.9.3", datasets=False)
    assert (finding.code, finding.severity, finding.line, finding.column) == ("LF007", Severity.ERROR, 7, 16)


def test_path_and_options(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text("model_name_or_path: m\nstage: sft\ndo_train: true\ndataset: d\noutput_dir: o\nbf16: true\n")
    assert lint(path, datasets=False) == []
    assert lint(str(path), overrides=["num_train_epoch=1"], datasets=False)[0].code == "LF101"
    assert lint(path, overrides=["num_train_epoch=1"], ignore=["LF101"], datasets=False) == []


def test_errors_raise_lf_lint_error(tmp_path):
    with pytest.raises(LfLintError, match="no such file"):
        lint(tmp_path / "missing.yaml")
    with pytest.raises(LfLintError, match="not a version"):
        lint(GOOD, llamafactory_version="latest")
    with pytest.raises(LfLintError):
        lint(42)


def test_import_is_light():
    probe = "import sys, lf_lint; lf_lint.lint; print(sorted(m for m in ('yaml', 'datasets', 'jsonschema', 'numpy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['yaml']"
