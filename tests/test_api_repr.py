"""What the Python API's objects show in a REPL and in Jupyter: a one-line repr and an escaped HTML table."""

from __future__ import annotations

import json
from html import escape as html_escape
from pathlib import Path

import pytest
from test_api import GOOD, _blog

import lf_lint
from lf_lint import LfLintError, estimate_memory, lint, predict_steps, suggest
from lf_lint.api import lint_result
from lf_lint.cli import main
from lf_lint.memory.advice import duration
from lf_lint.memory.estimate import GIB
from lf_lint.memory.suggest import Suggestion, render_suggestion

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_configs" / "qwen3_lora_sft.yaml"
VERSIONS = {"llamafactory_version": "0.9.5", "transformers_version": "4.57.1"}
SMALL = {  # Qwen2.5-0.5B full tuning, 16 examples per step as 1 x 16
    "model_name_or_path": "Qwen/Qwen2.5-0.5B",
    "stage": "sft",
    "do_train": True,
    "dataset": "d",
    "output_dir": "o",
    "bf16": True,
    "per_device_train_batch_size": 1,
    "gradient_accumulation_steps": 16,
}
WIDTH = 120


def _short(value) -> str:
    text = repr(value)
    assert len(text) <= WIDTH and "\n" not in text, text
    return text


def _escaped(html: str, raw: str) -> None:
    """``raw`` appears in the table only escaped."""
    assert html.startswith("<table>") and html.endswith("</table>")
    assert raw not in html
    assert html_escape(raw) in html


# --- Plan --------------------------------------------------------------------------------------


def test_plan_repr_and_table(tmp_path):
    old = {"transformers_version": "4.49.0", "llamafactory_version": "0.9.2", "workdir": tmp_path}
    config = _blog(tmp_path)
    plan = predict_steps(config, **old)
    assert _short(plan) == (
        "<Plan 3,900 steps: 1,047 examples x 300 epochs (stops at epoch 278.61), batch 80 (transformers 4.49.0), exact>"
    )
    html = plan._repr_html_()
    assert "<td>total_steps</td><td>3900</td>" in html and "<td>num_examples</td><td>1047</td>" in html
    assert "transformers 4.49.0" in html
    # the repr changes nothing else: the JSON object and tuple equality
    again = predict_steps(config, **old)
    assert plan == again == tuple(plan) and plan.to_dict() == again.to_dict()
    assert json.loads(json.dumps(plan.to_dict()))["total_steps"] == 3900
    eight = predict_steps(config, num_gpus=8, **VERSIONS, workdir=tmp_path)
    assert (
        _short(eight)
        == "<Plan 600 steps: 1,047 examples x 300 epochs, batch 640 on 8 GPUs (transformers 4.57.1), exact>"
    )


def test_plan_without_steps_says_why(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "dataset_info.json").write_text(json.dumps({"a<b&c": {"hf_hub_url": "someone/x"}}))
    plan = lint_result({**GOOD, "dataset": "a<b&c"}, workdir=tmp_path, **VERSIONS).plan
    text = _short(plan)
    assert text.startswith("<Plan: no step plan (the number of training examples is unknown (a<b&c: hf hub dataset")
    assert text.endswith("...>")  # the rest of the reason is cut
    _escaped(plan._repr_html_(), "a<b&c: hf hub dataset someone/x")


# --- MemoryReport ------------------------------------------------------------------------------


def test_memory_repr_with_a_gpu():
    report = estimate_memory(SAMPLE, gpu="A100-40G", num_gpus=2, workdir=ROOT, **VERSIONS)
    peak = f"{report.estimate.device / GIB:.1f}"
    assert report.verdict.status == "fits"
    assert _short(report) == f"<Memory {peak} GiB of 39.4 on A100-SXM4-40GB: fits ({report.estimate.phase})>"
    assert len(repr(report)) < 100  # the nested inputs, model and estimate are not in it
    html = report._repr_html_()
    assert "<td>GPU</td><td>A100-SXM4-40GB (39.4 GiB)</td>" in html
    assert f"<td>peak GiB</td><td>{peak} ({report.estimate.phase})</td>" in html
    for name, value in report.estimate.breakdown().items():
        assert f"<td>{name} GiB</td><td>{value:.2f}</td>" in html
    assert "<td>model</td><td>Qwen/Qwen3-0.6B: 0.60B parameters" in html and "fits: " in html
    assert f"<td>largest micro-batch under 80%</td><td>{report.largest_batch}</td>" in html
    # nested parts are no worse: the variant no longer prints an object address and the whole model
    assert _short(report.variant) == (
        "<Variant of Qwen/Qwen3-0.6B: call it with changed arguments for their MemoryInputs>"
    )
    assert report == tuple(report) and report.to_dict()["gpu"] == "A100-SXM4-40GB"


def test_memory_repr_without_a_gpu_and_when_it_does_not_fit():
    report = estimate_memory(SMALL, **VERSIONS)
    peak = report.estimate.device / GIB
    assert _short(report) == f"<Memory {peak:.1f} GiB per GPU ({report.estimate.phase}); no GPU given>"
    assert "<td>GPU</td><td>none given</td>" in report._repr_html_()
    small = estimate_memory(SMALL, gpu_memory=4, **VERSIONS)
    assert small.verdict.status == "oom"
    assert _short(small) == f"<Memory {peak:.1f} GiB of 4 on 4 GiB GPU: does NOT fit ({small.estimate.phase})>"
    assert "<td>verdict</td><td>oom: " in small._repr_html_()


def test_memory_repr_without_an_estimate():
    report = lint_result({**GOOD, "model_name_or_path": "org/a<b&c"}, count_datasets=False, **VERSIONS).memory
    assert report.estimate is None
    text = _short(report)
    assert text.startswith("<Memory: no estimate (no shape known for model 'org/a<b&c': point model_name_or_path")
    _escaped(report._repr_html_(), "no shape known for model 'org/a<b&c'")


# --- Suggestion --------------------------------------------------------------------------------


def test_suggest_returns_the_cli_result(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path("cfg.yaml").write_text("".join(f"{k}: {json.dumps(v)}\n" for k, v in SMALL.items()))
    result = suggest("cfg.yaml", gpu="A10G", num_examples=5000, **VERSIONS)
    assert isinstance(result, Suggestion) and isinstance(lf_lint.suggest(SMALL, gpu="A10G"), Suggestion)
    assert {(c.batch, c.accumulation) for c in result.choices} == {(1, 16), (2, 8), (4, 4), (8, 2), (16, 1)}
    assert result.best is result.choices[0] and result.best.fits and all(c.total_steps for c in result.choices)
    assert (result.current.batch, result.current.accumulation) == (1, 16)
    cli = ["suggest", "cfg.yaml", "--gpu", "A10G", "--num-examples", "5000", "--llamafactory-version", "0.9.5",
           "--transformers-version", "4.57.1"]  # fmt: skip
    assert main(cli) == 0
    assert capsys.readouterr().out == render_suggestion(result)
    assert main([*cli, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(result.to_dict()))
    assert list(result.to_dict())[:2] == ["path", "gpu"] and result.to_dict()["gpu"] == "A10G"


def test_suggestion_repr_and_table(tmp_path):
    folder = tmp_path / "a<b&c"
    folder.mkdir()
    config = folder / "cfg.yaml"
    config.write_text("".join(f"{k}: {json.dumps(v)}\n" for k, v in SMALL.items()))
    result = suggest(config, gpu="A10G", num_examples=5000, **VERSIONS)
    best = result.best
    assert _short(result) == (
        f"<Suggestion A10G, 16 examples/step, 1 GPU: best batch {best.batch} x accum {best.accumulation} "
        f"({best.need_gib:.1f} GiB, {duration(best.hours)}); current 1 x 16>"
    )
    html = result._repr_html_()
    _escaped(html, str(config))
    assert "16 examples per optimizer step on 1 process(es), A10G (22 GiB)" in html
    assert html.count("<tr>") == 1 + len(result.choices)  # the header, then a row per choice
    assert f"<td>{best.batch}</td><td>{best.accumulation}</td><td>{best.need_gib:.1f}</td><td>yes</td>" in html
    assert "<td>1</td><td>16</td>" in html and "<td>current</td>" in html


def test_suggestion_when_nothing_fits_and_with_a_problem():
    tiny = suggest(SMALL, gpu_memory=4, target_batch=4, **VERSIONS)
    least = min(tiny.choices, key=lambda c: c.need_gib)
    assert tiny.best is None and not any(c.fits for c in tiny.choices)
    assert _short(tiny) == (
        f"<Suggestion 4 GiB GPU, 4 examples/step, 1 GPU: none fits 4 GiB; the least, batch {least.batch} x accum "
        f"{least.accumulation}, needs {least.need_gib:.1f} GiB>"
    )
    one = suggest({**SMALL, "gradient_accumulation_steps": 1}, gpu="H100", **VERSIONS)
    (only,) = one.choices
    assert one.best is one.current is only
    head = "<Suggestion H100-SXM-80GB, 1 example/step, 1 GPU: best batch 1 x accum 1"
    assert _short(one) == f"{head} ({only.need_gib:.1f} GiB), the current one>"
    # what the CLI prints for a config with no split to choose
    problem = Suggestion(33, 2, 79.2, (), "33 examples per step cannot be split over 2 processes", path="<x&y>",
                         gpu="H100-SXM-80GB")  # fmt: skip
    assert _short(problem) == (
        "<Suggestion on H100-SXM-80GB: none (33 examples per step cannot be split over 2 processes)>"
    )
    html = problem._repr_html_()
    _escaped(html, "<x&y>")
    assert "no suggestion: 33 examples per step cannot be split over 2 processes" in html


def test_suggest_raises_when_there_is_nothing_to_choose():
    with pytest.raises(LfLintError, match="needs the target GPU"):
        suggest(SMALL)
    with pytest.raises(LfLintError, match="target_batch must be"):
        suggest(SMALL, gpu="H100", target_batch=0)
    with pytest.raises(LfLintError, match="cannot be split over 2 processes"):
        suggest(SMALL, gpu="H100", num_gpus=2, target_batch=33, **VERSIONS)
    with pytest.raises(LfLintError, match=r"does not train \(do_train is not set\)"):
        suggest({**SMALL, "do_train": False, "do_predict": True}, gpu="A100-80G", **VERSIONS)
    with pytest.raises(LfLintError, match="no shape known for model"):
        suggest({**SMALL, "model_name_or_path": "someone/unknown"}, gpu="H100", **VERSIONS)
    with pytest.raises(LfLintError, match="cannot read the config"):
        suggest("model_name_or_path: [m\n", gpu="H100", **VERSIONS)
    with pytest.raises(LfLintError, match="did you mean"):
        suggest(SMALL, gpu="A101")


# --- FileResult and Diagnostic -----------------------------------------------------------------


def test_lint_result_repr_and_table():
    result = lint_result({**GOOD, "num_train_epoch": 3, "learning_rate": "1e-4", "bf16": False},
                         count_datasets=False, **VERSIONS)  # fmt: skip
    assert [d.code for d in result.diagnostics] == ["LF280", "LF101", "LF103"]
    assert _short(result) == "<LintResult <config>: 2 errors, 1 warning, 0 notes>"
    html = result._repr_html_()
    assert "<caption>&lt;config&gt;: 2 errors, 1 warning, 0 notes (LLaMA-Factory 0.9.5, transformers 4.57.1)" in html
    assert "<td>9:1</td><td>LF101</td><td>error</td><td>unknown key `num_train_epoch`" in html
    assert html.count("<tr>") == 1 + 3 + 1  # the header, a row per diagnostic, the memory line
    assert "memory: &lt;Memory " in html
    clean = lint_result(GOOD, count_datasets=False, **VERSIONS)
    assert _short(clean) == "<LintResult <config>: 0 errors, 0 warnings, 0 notes>"
    assert "no problems found" in clean._repr_html_()


def test_lint_result_path_is_escaped_and_cut(tmp_path):
    folder = tmp_path / "a<b&c" / ("deep" * 20)
    folder.mkdir(parents=True)
    config = folder / "cfg.yaml"
    config.write_text("model_name_or_path: m\nstage: sft\ndo_train: true\ndataset: d\noutput_dir: o\nbf16: true\n")
    result = lint_result(config, count_datasets=False, **VERSIONS)
    assert _short(result).endswith("deepdeep/cfg.yaml: 0 errors, 0 warnings, 0 notes>")
    _escaped(result._repr_html_(), str(config))
    export = lint_result({"model_name_or_path": "m", "export_dir": "out", "template": "qwen3"}, **VERSIONS)
    assert [d.code for d in export.diagnostics] == ["LF015"]
    assert _short(export) == "<LintResult <config> (export config): 0 errors, 0 warnings, 1 note>"


def test_diagnostic_repr_and_table():
    (finding,) = lint({**GOOD, "<b&c>": 1}, datasets=False, **VERSIONS)
    text = _short(finding)
    assert text.startswith("<Diagnostic LF101 error <config>:9:1 unknown key `<b&c>`: LLaMA-Factory stops with")
    assert text.endswith("...>") and len(text) == WIDTH
    html = finding._repr_html_()
    _escaped(html, "unknown key `<b&c>`")
    assert "<td>code</td><td>LF101 (" in html and "<td>where</td><td>&lt;config&gt;:9:1</td>" in html
    (short,) = lint({**GOOD, "bf16": False}, datasets=False, **VERSIONS)
    assert repr(short) == (
        "<Diagnostic LF280 warning <config>:1:1 LLaMA-Factory warns: We recommend enable mixed precision training.>"
    )
    # still the same record: equality, JSON and fields
    assert finding == type(finding)(**finding._asdict()) and finding.to_dict()["severity"] == "error"


def test_suggest_is_exported_lazily():
    assert "suggest" in lf_lint.__all__
    from lf_lint import api

    assert lf_lint.suggest is api.suggest
