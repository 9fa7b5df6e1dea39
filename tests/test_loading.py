"""The loader must read every value exactly as the targeted LLaMA-Factory release does.

Ground truth here is the real PyYAML ``safe_load`` (LF <= 0.9.3) and the real
``OmegaConf.load`` + ``to_container`` (LF >= 0.9.4), run on the same text.
"""

from __future__ import annotations

import datetime
import math

import pytest
import yaml
from omegaconf import OmegaConf

from lf_lint.loading import READER_SEMANTICS, load, parse_override
from lf_lint.versions import Target

OLD = Target("0.9.3", "4.51.3")
NEW = Target("0.9.5", "4.57.1")

# llamafactory-spec.md §1.3, plus neighbours of each trap.
SCALARS = [
    "1e-4", "1E-4", "5e5", "+1e-4", "-3e-6", "1.0e-4", "5.0e-5", ".5", "3.0", "1_000", "1_000.5", "yes", "no", "on",
    "off", "Yes", "NO", "True", "true", "False", "y", "n", "null", "~", "", "0x10", "010", "0o10", "12:30", "1:30:00",
    "2024-01-01", "2024-01-01 10:00:00", ".inf", "-.inf", ".nan", '"1e-4"', "'yes'", "${x}", "${oc.env:HOME}/a",
    "abc", "1e", "e5", "1.5e3", "0.1", "-0", "+12", "???", "[1, 2]", "{a: 1}", "1e-4 # comment", "'12:30'",
]  # fmt: skip


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


@pytest.mark.parametrize("text", SCALARS)
def test_pyyaml_semantics_match_safe_load(text, tmp_path):
    source = f"value: {text}\n"
    path = tmp_path / "c.yaml"
    path.write_text(source)
    expected = yaml.safe_load(source)["value"]
    got = load(path, OLD).data["value"]
    assert _same(got, expected), (text, got, expected)


@pytest.mark.parametrize("text", SCALARS)
def test_omegaconf_semantics_match_omegaconf_load(text, tmp_path):
    source = f"value: {text}\n"
    path = tmp_path / "c.yaml"
    path.write_text(source)
    expected = OmegaConf.to_container(OmegaConf.merge(OmegaConf.load(path), OmegaConf.from_cli([])))["value"]
    got = load(path, NEW).data["value"]
    assert _same(got, expected), (text, got, expected)


def test_exponent_without_point_differs_between_releases(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("learning_rate: 1e-4\n")
    assert load(path, OLD).data["learning_rate"] == "1e-4"
    assert load(path, NEW).data["learning_rate"] == pytest.approx(1e-4)


def test_dates_are_dates_for_pyyaml_and_strings_for_omegaconf(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("run_name: 2024-01-01\n")
    assert load(path, OLD).data["run_name"] == datetime.date(2024, 1, 1)
    assert load(path, NEW).data["run_name"] == "2024-01-01"


def test_duplicate_keys_recorded_with_both_positions(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("val_size: 0.1\nstage: sft\nval_size: 0.2\n")
    config = load(path, NEW)
    assert [(d.key, d.first.line, d.second.line) for d in config.duplicates] == [("val_size", 1, 3)]
    assert config.data["val_size"] == 0.2  # PyYAML keeps the last; OmegaConf would stop
    with pytest.raises(yaml.constructor.ConstructorError, match="found duplicate key val_size"):
        OmegaConf.load(path)
    assert yaml.safe_load(path.read_text())["val_size"] == 0.2


def test_keys_duplicated_only_through_a_merge_are_not_duplicates(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("base: &b {lora_rank: 8}\nsub:\n  <<: *b\n  lora_rank: 16\n")
    config = load(path, NEW)
    assert config.duplicates == []
    assert OmegaConf.to_container(OmegaConf.load(path))["sub"]["lora_rank"] == 16
    assert config.data["sub"]["lora_rank"] == 16


def test_positions_of_keys_and_values(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("# header\nstage: sft\ndataset:\n  - identity\n  - alpaca_en_demo\n")
    config = load(path, NEW)
    assert (config.key_span(("stage",)).line, config.key_span(("stage",)).column) == (2, 1)
    assert (config.value_span(("stage",)).line, config.value_span(("stage",)).column) == (2, 8)
    assert config.value_span(("dataset", 1)).line == 5
    assert config.value_span(("dataset", 1)).column == 5


def test_json_config_uses_json_semantics_on_old_releases(tmp_path):
    path = tmp_path / "c.json"
    path.write_text('{"learning_rate": 1e-4,\n "stage": "sft"}')
    config = load(path, OLD)
    assert config.data == {"learning_rate": 1e-4, "stage": "sft"}
    assert config.key_span(("stage",)).line == 2


@pytest.mark.parametrize(
    "token",
    [
        "learning_rate=2e-5",
        "x=[1,2]",
        "y=null",
        "z='1e-4'",
        "flag",
        "empty=",
        "a.b=1",
        "--lr=1",
        "s=hello world",
        "t=yes",
    ],
)
def test_override_values_parse_like_omegaconf_from_cli(token):
    expected = OmegaConf.to_container(OmegaConf.from_cli([token]))
    override = parse_override(token, READER_SEMANTICS["0.9.5"])
    got: dict = {}
    node = got
    parts = override.key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = override.value
    assert got == expected


def test_overrides_merge_like_omegaconf(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        "stage: sft\nlearning_rate: 1.0e-4\ndeepspeed: {zero_optimization: {stage: 2}, bf16: {enabled: true}}\n"
    )
    tokens = ["learning_rate=2e-5", "deepspeed.zero_optimization.stage=3", "stage=dpo", "stage=rm"]
    expected = OmegaConf.to_container(OmegaConf.merge(OmegaConf.load(path), OmegaConf.from_cli(tokens)))
    assert load(path, NEW, overrides=tokens).data == expected


def test_alias_bomb_is_refused_without_expanding(tmp_path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 12):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    config = load(path, NEW)
    assert [p.kind for p in config.problems] == ["alias-bomb"]


def test_recursive_alias_is_refused(tmp_path):
    path = tmp_path / "loop.yaml"
    path.write_text("a: &a [*a]\n")
    config = load(path, NEW)
    assert config.problems and config.problems[0].kind in ("alias-bomb", "syntax")
