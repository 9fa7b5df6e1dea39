"""Hub datasets (`hf_hub_url`) are counted from the local Hugging Face cache when they were downloaded before;
lf-lint never downloads and never runs a loading script."""

from __future__ import annotations

import json

from lf_lint.engine import LintOptions, lint_file

CONFIG = """\
model_name_or_path: m
stage: sft
do_train: true
finetuning_type: lora
dataset: remote
dataset_dir: data
template: default
output_dir: out
bf16: true
per_device_train_batch_size: 2
num_train_epochs: 1
"""


def _setup(tmp_path, monkeypatch, files: dict, entry: dict | None = None):
    snapshot = tmp_path / "hf" / "hub" / "datasets--someone--somedata" / "snapshots" / "0123abc"
    for name, rows in files.items():
        path = snapshot / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rows if isinstance(rows, str) else "".join(json.dumps(r) + "\n" for r in rows))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    (tmp_path / "data").mkdir(parents=True, exist_ok=True)
    (tmp_path / "data" / "dataset_info.json").write_text(
        json.dumps({"remote": entry or {"hf_hub_url": "someone/somedata"}})
    )
    (tmp_path / "cfg.yaml").write_text(CONFIG)
    return lint_file(
        tmp_path / "cfg.yaml",
        LintOptions(llamafactory_version="0.9.5", transformers_version="4.57.1", workdir=tmp_path, use_cache=False),
    )


def rows(n, start=0):
    return [
        {"instruction": f"q{i}", "input": "", "output": f"a{i}" if i % 10 else None} for i in range(start, start + n)
    ]


def test_cached_train_split_is_counted(tmp_path, monkeypatch):
    result = _setup(tmp_path, monkeypatch, {"data/train-00000-of-00002.jsonl": rows(50), "data/train-00001-of-00002.jsonl": rows(50, 50),
                                            "data/test-00000-of-00001.jsonl": rows(30), "README.md": "# card"})  # fmt: skip
    assert result.plan.num_examples == 90 and result.plan.exact  # 100 train rows, every tenth has no response
    assert "0123abc" in result.plan.basis


def test_files_without_split_names_are_all_train(tmp_path, monkeypatch):
    assert _setup(tmp_path, monkeypatch, {"part1.jsonl": rows(20), "part2.jsonl": rows(20, 20)}).plan.num_examples == 36


def test_not_cached_or_a_script_is_not_counted(tmp_path, monkeypatch):
    result = _setup(tmp_path, monkeypatch, {"somedata.py": "raise SystemExit", "train.jsonl": rows(10)})
    assert result.plan.steps is None
    assert any(d.code == "LF403" and "loading script" in d.message for d in result.diagnostics)
    other = _setup(tmp_path / "x", monkeypatch, {}, {"hf_hub_url": "nobody/nothing"})
    assert other.plan.steps is None and any(d.code == "LF411" for d in other.diagnostics)
