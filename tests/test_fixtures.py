"""Configs modelled on LLaMA-Factory's own examples (clean) and on mistakes people report (flagged).

Each fixture says in its header comments how to lint it (``# options: ...``, lf-lint command-line
options) and what to expect (``# expect: CODE ...``, the exact set of error and warning codes;
``# expect-kind: export``). Good fixtures must have no error and no warning.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lf_lint.cli import main

FIXTURES = Path(__file__).resolve().parent / "fixtures"
JSON_OPTIONS = {"config.json": ["--llamafactory-version", "0.9.4"]}


def _header(path: Path, name: str) -> list[str]:
    match = re.search(rf"^# {name}: (.*)$", path.read_text(), re.M)
    return match.group(1).split() if match else []


def _lint(path: Path, capsys, monkeypatch) -> dict:
    """Lint as a user would from the fixtures folder, where data/ and deepspeed/ are."""
    import json

    monkeypatch.chdir(FIXTURES)
    options = _header(path, "options") if path.suffix != ".json" else JSON_OPTIONS.get(path.name, [])
    main(["--isolated", "--format", "json", *options, str(path.relative_to(FIXTURES))])
    return json.loads(capsys.readouterr().out)["files"][0]


@pytest.mark.parametrize("path", sorted((FIXTURES / "good").glob("*.*")), ids=lambda p: p.name)
def test_good_configs_are_clean(path, capsys, monkeypatch):
    record = _lint(path, capsys, monkeypatch)
    problems = [(d["code"], d["message"]) for d in record["diagnostics"] if d["severity"] != "info"]
    assert problems == []
    assert record["kind"] == (_header(path, "expect-kind") or ["train"])[0]


@pytest.mark.parametrize("path", sorted((FIXTURES / "mistakes").glob("*.yaml")), ids=lambda p: p.name)
def test_mistakes_are_flagged(path, capsys, monkeypatch):
    record = _lint(path, capsys, monkeypatch)
    codes = {d["code"] for d in record["diagnostics"] if d["severity"] != "info"}
    assert codes == set(_header(path, "expect")), record["diagnostics"]


def test_relative_paths_start_at_the_launch_directory(capsys, monkeypatch, tmp_path):
    config = (FIXTURES / "good" / "full_sft_ds3.yaml").read_text()
    (tmp_path / "cfg.yaml").write_text(config)
    monkeypatch.chdir(tmp_path)
    main(["--isolated", "--format", "concise", "--num-gpus", "8", "cfg.yaml"])
    out = capsys.readouterr().out
    assert "LF250" in out and "ds_z3.json not found" in out
    assert "LF402" in out  # no data/dataset_info.json here either
    main(["--isolated", "--format", "concise", "--num-gpus", "8", "--workdir", str(FIXTURES), "cfg.yaml"])
    out = capsys.readouterr().out
    assert "LF250" not in out and "LF402" not in out
