"""The counts cache (dataset/cache.py, counting.py): a second count of unchanged datasets under the same counting
arguments gives exactly what counting gives, without NumPy; any change of data or of an argument counts again."""

from __future__ import annotations

import json

import pytest

from lf_lint.dataset import counting, selection
from lf_lint.engine import LintOptions, lint_file


def _rows(n: int, bad_every: int = 0) -> list[dict]:
    return [{"instruction": f"q{i}", "input": "", "output": "" if bad_every and i % bad_every == 0 else f"a{i}"}
            for i in range(n)]  # fmt: skip


REGISTRY = {
    "a": {"file_name": "a.json"},
    "b": {"file_name": "b.json"},
    "sampled": {"file_name": "b.json", "num_samples": 30},
    "pairs": {"file_name": "p.json", "ranking": True},
}

CASES = [
    "dataset: a",
    "dataset: a,b\nval_size: 0.1",
    "dataset: a,b\nval_size: 0.2\nseed: 7",
    "dataset: a,sampled\nmax_samples: 40",
    "dataset: a,b\nmix_strategy: interleave_under\ninterleave_probs: 0.3,0.7",
    "dataset: a,b\nmix_strategy: interleave_over",
    "dataset: a\neval_dataset: b\neval_strategy: steps\neval_steps: 5",
    "dataset: a\neval_dataset: b,sampled\neval_on_each_dataset: true\neval_strategy: steps",
    "dataset: a\nval_size: 0.5\npredict_with_generate: true\ndo_predict: true",
    "dataset: a,missing",
    "dataset: pairs",
    "dataset: a\nmix_strategy: interleave_once\nstreaming: true\nmax_steps: 10",
    "dataset: a\nnum_samples_unknown_key: 1",
]


def _project(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "dataset_info.json").write_text(json.dumps(REGISTRY))
    (data / "a.json").write_text(json.dumps(_rows(57, bad_every=5)))
    (data / "b.json").write_text(json.dumps(_rows(41, bad_every=7)))
    (data / "p.json").write_text(json.dumps(_rows(3)))


def _lint(tmp_path, extra: str, use_cache: bool = True, release: str = "0.9.5"):
    config = tmp_path / "cfg.yaml"
    config.write_text("model_name_or_path: m\nstage: sft\ndo_train: true\nfinetuning_type: lora\ntemplate: default\n"
                      f"output_dir: o\nper_device_train_batch_size: 2\n{extra}\n")  # fmt: skip
    options = LintOptions(llamafactory_version=release, workdir=tmp_path, use_cache=use_cache)
    return lint_file(config, options)


def _facts(result) -> tuple:
    plan = [repr(value) for value in result.plan] if result.plan is not None else None  # nan == nan in a repr
    return (plan, result.diagnostics)


@pytest.mark.parametrize("release", ["0.9.2", "0.9.5"])
@pytest.mark.parametrize("extra", CASES)
def test_cached_counts_are_the_counts(tmp_path, monkeypatch, extra, release):
    monkeypatch.setenv("LF_LINT_CACHE_DIR", str(tmp_path / "cache"))
    _project(tmp_path)
    counted = _facts(_lint(tmp_path, extra, use_cache=False, release=release))
    assert _facts(_lint(tmp_path, extra, release=release)) == counted  # counts, and keeps them

    def no_numpy():
        raise AssertionError("counted again")

    monkeypatch.setattr(selection, "numpy", no_numpy)
    assert _facts(_lint(tmp_path, extra, release=release)) == counted  # from the cache, without NumPy


def test_a_changed_argument_or_file_counts_again(tmp_path, monkeypatch):
    monkeypatch.setenv("LF_LINT_CACHE_DIR", str(tmp_path / "cache"))
    _project(tmp_path)
    mix = "dataset: a,b\nval_size: 0.1\n"
    first = _facts(_lint(tmp_path, mix + "learning_rate: 1.0e-4"))[0]
    reseeded = _facts(_lint(tmp_path, mix + "seed: 1", use_cache=False))[0]
    calls = []
    real = counting._count
    monkeypatch.setattr(counting, "_count", lambda *a: calls.append(1) or real(*a))
    assert _facts(_lint(tmp_path, mix + "learning_rate: 2.0e-4"))[0] == first and not calls  # counting ignores it
    assert _facts(_lint(tmp_path, mix + "seed: 1"))[0] == reseeded and calls == [1]  # the seed draws the split
    (tmp_path / "data" / "b.json").write_text(json.dumps(_rows(40, bad_every=3)))
    changed = _facts(_lint(tmp_path, mix + "learning_rate: 1.0e-4"))[0]
    assert calls == [1, 1] and changed != first
    monkeypatch.setattr(counting, "_count", real)
    assert changed == _facts(_lint(tmp_path, mix + "learning_rate: 1.0e-4", use_cache=False))[0]
