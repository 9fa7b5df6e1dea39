"""The Python API: lint() on paths, YAML text and mappings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
    assert out.strip() == "[]"  # PyYAML too: it is imported only for a config flat_yaml.py does not read


def _blog(tmp_path, rows: int = 1047):
    """The seed example: 1,047 examples, batch 10, accumulation 8, 300 epochs."""
    import json

    data = tmp_path / "data"
    data.mkdir()
    (data / "dataset_info.json").write_text(json.dumps({"blog": {"file_name": "blog.json"}}))
    (data / "blog.json").write_text(
        json.dumps([{"instruction": f"q{i}", "input": "", "output": f"a{i}"} for i in range(rows)])
    )
    config = tmp_path / "cfg.yaml"
    config.write_text(
        "model_name_or_path: m\nstage: sft\ndo_train: true\ndataset: blog\ntemplate: default\noutput_dir: o\nbf16: true\n"
        "per_device_train_batch_size: 10\ngradient_accumulation_steps: 8\nnum_train_epochs: 300\nsave_steps: 0.25\n"
    )
    return config


def test_predict_steps_counts_and_plans(tmp_path):
    from lf_lint import Plan, predict_steps

    config = _blog(tmp_path)
    old = predict_steps(config, transformers_version="4.49.0", llamafactory_version="0.9.2", workdir=tmp_path)
    new = predict_steps(config, transformers_version="4.57.1", llamafactory_version="0.9.5", workdir=tmp_path)
    assert isinstance(new, Plan) and new.exact
    assert (old.num_examples, old.total_steps, new.total_steps) == (1047, 3900, 4200)
    assert old.stops_mid_epoch and old.epochs_trained == pytest.approx(278.609524)
    assert (new.save_steps, new.num_checkpoints, new.checkpoint_steps[-1]) == (1050, 4, 4200)
    eight = predict_steps(
        config, num_gpus=8, transformers_version="4.57.1", llamafactory_version="0.9.5", workdir=tmp_path
    )
    assert (eight.world_size, eight.total_train_batch_size, eight.batches_per_epoch) == (8, 640, 14)
    given = predict_steps(
        config, num_examples=5000, transformers_version="4.57.1", llamafactory_version="0.9.5", workdir=tmp_path
    )
    assert given.num_examples == 5000 and given.exact


def test_plan_object_in_notebooks(tmp_path):
    from lf_lint import predict_steps

    plan = predict_steps(_blog(tmp_path), transformers_version="4.57.1", llamafactory_version="0.9.5", workdir=tmp_path)
    data = plan.to_dict()
    for key in ("num_examples", "num_eval_examples", "world_size", "total_train_batch_size", "batches_per_epoch",
                "update_steps_per_epoch", "total_steps", "warmup_steps", "save_steps", "eval_steps", "logging_steps",
                "num_checkpoints"):  # fmt: skip
        assert data[key] is None or isinstance(data[key], int), key
    assert isinstance(data["num_train_epochs"], float) and data["exact"] is True
    explained = plan.explain()
    assert "1,047 examples / 10 per device = 105 micro-batches per epoch" in explained
    assert (
        "ceil(105 / 8) = 14 optimizer updates per epoch" in explained and "4,200 total optimization steps" in explained
    )
    html = plan._repr_html_()
    assert html.startswith("<table>") and "<td>total_steps</td><td>4200</td>" in html
    assert repr(plan) == "<Plan 4,200 steps: 1,047 examples x 300 epochs, batch 80 (transformers 4.57.1), exact>"


def test_predict_steps_explains_why_not(tmp_path):
    from lf_lint import predict_steps

    config = tmp_path / "cfg.yaml"
    config.write_text(
        "model_name_or_path: m\nstage: sft\ndo_train: true\ndataset: remote\ndataset_dir: data\noutput_dir: o\n"
    )
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "dataset_info.json").write_text('{"remote": {"hf_hub_url": "someone/somedata"}}')
    with pytest.raises(LfLintError, match="--num-examples"):
        predict_steps(config, workdir=tmp_path)
    assert predict_steps(config, workdir=tmp_path, num_examples={"remote": 800}).num_examples == 800


def test_a_schema_only_lint_imports_nothing_heavy():
    """What the first target of benchmarks/lint_speed.py rests on: a schema-only lint of a plain config imports no
    third-party package, and not pathlib either (with urllib.parse and ipaddress, a tenth of such a lint on 3.11)."""
    sample = Path(__file__).resolve().parent.parent / "sample_configs" / "qwen3_lora_sft.yaml"
    heavy = ("yaml", "numpy", "pyarrow", "datasets", "jsonschema", "tokenizers", "pathlib", "argparse", "tomllib")
    probe = (
        "import sys, io, contextlib\nbefore = set(sys.modules)\nfrom lf_lint.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()): main(['--isolated', '--no-datasets', sys.argv[1]])\n"
        f"print(sorted(m for m in {heavy!r} if m in sys.modules and m not in before))"
    )
    done = subprocess.run([sys.executable, "-c", probe, str(sample)], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
