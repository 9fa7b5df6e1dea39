"""The generated schema: valid JSON Schema, shipped files up to date, and the fast validator agrees with jsonschema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lf_lint.schema import (
    TABLES_DIR,
    FieldTable,
    database,
    field_table,
    json_schema,
    release_tables,
    table_problems,
    validate,
)
from lf_lint.versions import DEFAULT_LLAMAFACTORY, SUPPORTED_LLAMAFACTORY, Target, newest_transformers_for

ROOT = Path(__file__).resolve().parent.parent
TARGETS = [Target(v, newest_transformers_for(v)) for v in SUPPORTED_LLAMAFACTORY] + [
    Target("0.9.5", "4.57.1"), Target("0.9.3", "4.45.2"), Target("0.9.4", "4.51.3"),
]  # fmt: skip


@pytest.mark.parametrize("target", TARGETS, ids=str)
def test_schema_is_valid_2020_12(target):
    schema = json_schema(target)
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft7Validator.check_schema({k: v for k, v in schema.items() if k != "$schema"})


@pytest.mark.parametrize("version", SUPPORTED_LLAMAFACTORY)
def test_shipped_editor_schemas_match_the_database(version):
    shipped = json.loads((ROOT / "schemas" / f"llamafactory-{version}.schema.json").read_text())
    assert shipped == json_schema(Target(version, newest_transformers_for(version)))
    default = json.loads((ROOT / "schemas" / "llamafactory.schema.json").read_text())
    assert default == json_schema(
        Target(DEFAULT_LLAMAFACTORY, newest_transformers_for(DEFAULT_LLAMAFACTORY))
    )


def test_shipped_release_tables_match_the_database():
    """lf_lint/data/fields/ is fields.json cut per release (python tools/generate_schema.py --only-tables)."""
    expected = release_tables(database())
    shipped = {path.name: json.loads(path.read_text(encoding="utf-8")) for path in Path(TABLES_DIR).glob("*.json")}
    assert set(shipped) == set(expected)
    for name, table in expected.items():
        assert shipped[name] == table, name


@pytest.mark.parametrize("target", TARGETS, ids=str)
@pytest.mark.parametrize("arguments", ["default", "mca", "megatron_bridge", "kt"])
def test_tables_from_the_shipped_files_equal_those_from_the_database(target, arguments):
    for command in ("train", "infer"):
        if command == "infer" and arguments != "default":
            continue
        shipped = FieldTable(target, command, arguments=arguments)
        assert shipped.fields == FieldTable(target, command, database(), arguments).fields
        assert list(shipped.fields) == list(FieldTable(target, command, database(), arguments).fields)


def test_database_records_its_sources():
    db = database()
    assert set(db["llamafactory_releases"]) == set(SUPPORTED_LLAMAFACTORY)
    assert db["transformers_minors"][0] == "4.45" and db["transformers_minors"][-1] == "5.8"
    for meta in db["llamafactory_releases"].values():
        assert meta["extracted_with_transformers"] and meta["templates"] and meta["requires"]


def test_field_sets_follow_the_releases():
    new = FieldTable(Target("0.9.5", "5.6.0"))
    old = FieldTable(Target("0.9.2", "4.49.0"))
    assert "eval_strategy" in new and "evaluation_strategy" not in new
    assert "evaluation_strategy" in old
    assert "group_by_length" not in new and "group_by_length" in FieldTable(Target("0.9.5", "4.57.1"))
    assert "use_kt" in new and "use_kt" not in old
    assert not new.get("compute_dtype").init  # set by LLaMA-Factory, refused in a config
    assert new.get("warmup_steps").json_types == ("number",) and old.get("warmup_steps").json_types == ("integer",)
    assert new.default("report_to") == "none" and FieldTable(Target("0.9.5", "4.57.1")).default("report_to") is None


# Values shaped like what configs contain, including the wrong shapes.
_values = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 10**6), st.floats(allow_nan=False, width=32),
    st.text(max_size=8), st.sampled_from(["sft", "lora", "cosine", "no", "steps", "adamw_torch", "best", "fa2"]),
    st.lists(st.text(max_size=4), max_size=3), st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)  # fmt: skip
_keys = st.sampled_from(sorted(FieldTable(Target("0.9.5", "5.6.0")).fields) + ["bogus_key", "evaluation_strategy"])


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_keys, _values, max_size=6), st.sampled_from(TARGETS))
def test_fast_validator_agrees_with_jsonschema(config, target):
    schema = json_schema(target)
    fast_failures = {p.key for p in validate(config, schema)}
    reference = jsonschema.Draft202012Validator(schema)
    reference_failures = set()
    for error in reference.iter_errors(config):
        if error.validator == "additionalProperties":
            reference_failures |= {k for k in config if k not in schema["properties"]}
        else:
            reference_failures.add(error.absolute_path[0])
    assert fast_failures == reference_failures
    table = field_table(target)
    assert table_problems(config, table) == validate(config, schema, table)  # the lint's shortcut
