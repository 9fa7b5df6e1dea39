"""`--online`: the Hugging Face cache is filled before counting, and only when asked.

The download itself (huggingface_hub.snapshot_download) is replaced by one that writes the snapshot layout
the hub cache has; this machine has no route to the Hub.
"""

from __future__ import annotations

import json

import pytest

from lf_lint import online
from lf_lint.engine import LintOptions, lint_file

ROWS = [{"instruction": f"q{i}", "input": "", "output": "a" if i % 5 else None} for i in range(40)]


@pytest.fixture
def hub(tmp_path, monkeypatch):
    cache = tmp_path / "hf"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    calls = []

    def fake_download(kind, repo_id, patterns, env):
        calls.append((kind, repo_id, tuple(patterns)))
        snapshot = cache / f"{kind}s--{repo_id.replace('/', '--')}" / "snapshots" / "abc123"
        snapshot.mkdir(parents=True)
        if kind == "dataset":
            (snapshot / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
        else:
            (snapshot / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 64,
                                                              "num_hidden_layers": 2, "num_attention_heads": 4,
                                                              "intermediate_size": 128, "vocab_size": 100}))  # fmt: skip
        return snapshot

    monkeypatch.setattr(online, "_download", fake_download)
    return calls


def lint(tmp_path, online_flag: bool):
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    (data / "dataset_info.json").write_text(json.dumps({"hub": {"hf_hub_url": "someone/qa"}}))
    (tmp_path / "cfg.yaml").write_text("model_name_or_path: someone/tiny-llama\nstage: sft\ndo_train: true\n"
                                       "finetuning_type: lora\ndataset: hub\ntemplate: default\noutput_dir: o\n")  # fmt: skip
    options = LintOptions(llamafactory_version="0.9.5", transformers_version="4.57.1", workdir=tmp_path,
                          use_cache=False, online=online_flag)  # fmt: skip
    return lint_file(tmp_path / "cfg.yaml", options)


def test_nothing_is_downloaded_unless_asked(tmp_path, hub):
    result = lint(tmp_path, False)
    assert hub == [] and result.plan.num_examples is None
    (uncounted,) = [d for d in result.diagnostics if d.code == "LF411"]
    assert "--online" in (uncounted.fix or "")


def test_online_fills_the_cache_then_counts(tmp_path, hub):
    result = lint(tmp_path, True)
    assert [(kind, repo) for kind, repo, _ in hub] == [("model", "someone/tiny-llama"), ("dataset", "someone/qa")]
    assert "*.py" in hub[1][2] and not any(p.endswith(".safetensors") for p in hub[0][2])  # scripts seen, no weights
    assert result.plan.exact and result.plan.num_examples == 32  # every fifth row has no response
    notes = [d.message for d in result.diagnostics if d.code == "LF415"]
    assert len(notes) == 2 and all("downloaded" in n for n in notes)
    assert result.memory is not None and "config.json at" in result.memory.model.source
    hub.clear()
    lint(tmp_path, True)
    assert hub == []  # already cached: nothing to download


def test_download_failures_are_reported(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)

    def no_network(*args):
        raise ConnectionError("Name or service not known")

    monkeypatch.setattr(online, "_download", no_network)
    result = lint(tmp_path, True)
    problems = [d.message for d in result.diagnostics if d.code == "LF415"]
    assert len(problems) == 2 and all("could not download" in p and "ConnectionError" in p for p in problems)
    assert result.plan.num_examples is None


def test_hf_hub_offline_wins(tmp_path, hub, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = lint(tmp_path, True)
    assert hub == [] and any("HF_HUB_OFFLINE" in d.message for d in result.diagnostics if d.code == "LF415")
