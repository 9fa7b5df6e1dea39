"""Bad input gets a clear diagnostic with a position and the right exit status, never a traceback."""

from __future__ import annotations

import json
import os
import stat

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lf_lint.cli import main

BASE = "model_name_or_path: m\nstage: sft\ndo_train: true\ndataset: d\noutput_dir: out\n"


def run_json(capsys, *argv):
    code = main(["--format", "json", "--isolated", "--no-datasets", *argv])
    out = capsys.readouterr().out
    return code, json.loads(out)["files"]


@pytest.mark.parametrize(
    "content, code, line, column",
    [
        (b"stage: [sft\nmodel_name_or_path: m\n", "LF002", 2, 19),
        (b"", "LF004", 1, 1),
        (b"# only a comment\n", "LF004", 1, 1),
        (b"- stage: sft\n- model_name_or_path: m\n", "LF003", 1, 1),
        (b"model_name_or_path: m\nstage: \xff\xfe sft\n", "LF001", 2, 8),
        (b"model_name_or_path: m\x00\x01\x02", "LF001", 1, 22),
        (b"\xef\xbb\xbfmodel_name_or_path: [", "LF002", 1, 22),
        (b"model_name_or_path: m\nstage:\tsft\n\tx: 1\n", "LF002", 3, 1),
    ],
)
def test_named_bad_files(tmp_path, capsys, content, code, line, column):
    path = tmp_path / "cfg.yaml"
    path.write_bytes(content)
    before = path.read_bytes()
    status, files = run_json(capsys, str(path))
    diagnostics = files[0]["diagnostics"]
    assert status == 1
    assert diagnostics and diagnostics[0]["code"] == code, diagnostics
    assert (diagnostics[0]["line"], diagnostics[0]["column"]) == (line, column)
    assert path.read_bytes() == before


def test_missing_file_and_directory_exit_2(tmp_path, capsys):
    status, files = run_json(capsys, str(tmp_path / "nope.yaml"), str(tmp_path))
    assert status == 2
    assert [f["diagnostics"][0]["code"] for f in files] == ["LF001", "LF001"]
    assert "no such file" in files[0]["diagnostics"][0]["message"]
    assert "directory" in files[1]["diagnostics"][0]["message"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read anything")
def test_unreadable_file_exit_2(tmp_path, capsys):
    path = tmp_path / "cfg.yaml"
    path.write_text(BASE)
    path.chmod(0)
    status, _ = run_json(capsys, str(path))
    path.chmod(stat.S_IRUSR | stat.S_IWUSR)
    assert status == 2


def test_huge_file_is_refused_without_parsing(tmp_path, capsys):
    path = tmp_path / "cfg.yaml"
    with path.open("w") as handle:
        handle.write(BASE)
        handle.write("# padding\n" * 400_000)
    status, files = run_json(capsys, str(path))
    assert status == 1
    assert files[0]["diagnostics"][0]["code"] == "LF001"
    assert "bytes" in files[0]["diagnostics"][0]["message"]


def test_alias_bomb_reported(tmp_path, capsys):
    lines = [BASE, "a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    path = tmp_path / "cfg.yaml"
    path.write_text("\n".join(lines) + "\n")
    status, files = run_json(capsys, str(path))
    assert status == 1
    assert [d["code"] for d in files[0]["diagnostics"]] == ["LF005"]


def test_deeply_nested_document(tmp_path, capsys):
    path = tmp_path / "cfg.yaml"
    path.write_text(BASE + "x: " + "[" * 5000 + "]" * 5000 + "\n")
    status, files = run_json(capsys, str(path))
    assert status == 1
    assert files[0]["diagnostics"][0]["code"] in ("LF002", "LF101")


def test_unrelated_broken_yaml_is_left_alone(tmp_path, capsys):
    path = tmp_path / "docker-compose.yaml"
    path.write_text("services: [web\n")
    status, files = run_json(capsys, str(path))
    assert status == 0
    assert files[0]["kind"] == "other"


# --------------------------------------------------------------------------- fuzzing

_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20),
    st.sampled_from(["1e-4", "yes", "${x}", "2024-01-01", "010", "12:30", "0x1f", ".inf", "???", "sft", "lora"]),
)  # fmt: skip
_keys = st.one_of(
    st.sampled_from(["stage", "dataset", "learning_rate", "val_size", "eval_dataset", "packing", "cutoff_len",
                     "per_device_train_batch_size", "max_steps", "warmup_ratio", "warmup_steps", "save_steps",
                     "eval_strategy", "deepspeed", "quantization_bit", "finetuning_type", "report_to"]),
    st.text(min_size=1, max_size=12),
)  # fmt: skip
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(_keys, _values, max_size=8))
def test_fuzz_structured_configs_never_crash(tmp_path, capsys, config):
    import yaml

    path = tmp_path / "cfg.yaml"
    path.write_text(BASE + yaml.safe_dump(config, allow_unicode=True))
    status = main(["--format", "json", "--isolated", "--no-datasets", str(path)])
    out = capsys.readouterr().out
    assert status in (0, 1)
    json.loads(out)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300))
def test_fuzz_arbitrary_bytes_never_crash(tmp_path, capsys, blob):
    path = tmp_path / "cfg.yaml"
    path.write_bytes(b"model_name_or_path: m\n" + blob)
    status = main(["--format", "json", "--isolated", "--no-datasets", str(path)])
    out = capsys.readouterr().out
    assert status in (0, 1)
    for diagnostic in json.loads(out)["files"][0]["diagnostics"]:
        assert diagnostic["line"] >= 1 and diagnostic["column"] >= 1


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet=st.sampled_from(list("ab:-[]{}&*!|>'\"#%@`\n\t ,?.0e19")), max_size=120))
def test_fuzz_yaml_punctuation_never_crash(tmp_path, capsys, text):
    path = tmp_path / "cfg.yaml"
    path.write_text("stage: sft\n" + text)
    for version in ("0.9.2", "0.9.5"):
        status = main(["--format", "json", "--isolated", "--no-datasets", "--llamafactory-version", version, str(path)])
        out = capsys.readouterr().out
        assert status in (0, 1)
        json.loads(out)
