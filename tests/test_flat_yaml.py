"""flat_yaml.py reads flat configs without PyYAML: whatever it accepts, it must read exactly as PyYAML does."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lf_lint.flat_yaml import read_flat
from lf_lint.loading import READER_SEMANTICS, LoadedConfig
from lf_lint.pyyaml_reader import load_yaml

ROOT = Path(__file__).resolve().parent.parent
SEMANTICS = {"pyyaml": READER_SEMANTICS["0.9.3"], "omegaconf": READER_SEMANTICS["0.9.5"]}


def _read(text: str, reader: str, flat: bool) -> tuple[bool, LoadedConfig]:
    config = LoadedConfig("cfg.yaml", text, "yaml", SEMANTICS[reader])
    if flat:
        return read_flat(config, reader == "omegaconf"), config
    load_yaml(config, SEMANTICS[reader].loader)
    return True, config


def _facts(config: LoadedConfig) -> tuple:
    """Everything a lint reads from a loaded config; repr tells 1 from 1.0 and True, and -0.0 from 0.0."""
    return (
        repr(config.data),
        config.value_spans,
        config.key_spans,
        [(*s[:4], repr(s.value), s.span) for s in config.scalars],
        config.duplicates,
        config.problems,
    )


def _agree(text: str) -> bool:
    """Both readers agree wherever the flat one reads the text; returns whether it did (for either reader)."""
    read_any = False
    for reader in SEMANTICS:
        done, flat = _read(text, reader, flat=True)
        if done:
            read_any = True
            assert _facts(flat) == _facts(_read(text, reader, flat=False)[1]), (reader, text)
    return read_any


def _shipped_yaml() -> list[Path]:
    files = [
        *ROOT.glob("sample_configs/**/*.yaml"),
        *ROOT.glob("tests/fixtures/**/*.yaml"),
        *ROOT.glob("tests/fixtures/**/*.yml"),
    ]
    return sorted(files)


def test_shipped_configs_read_alike():
    read = 0
    for path in _shipped_yaml():
        text = path.read_bytes().decode("utf-8", errors="replace").removeprefix("\ufeff")
        if "\x00" not in text:
            read += _agree(text)
    assert read >= 5  # the flat reader is really used on the sample configs


def test_sample_config_is_flat():
    text = (ROOT / "sample_configs" / "qwen3_lora_sft.yaml").read_text(encoding="utf-8")
    assert _read(text, "omegaconf", flat=True)[0]


@pytest.mark.parametrize(
    "value",
    [
        "1",
        "-1",
        "+7",
        "0",
        "-0",
        "007",
        "1_000",
        "0x1f",
        "0o7",
        "1:30",
        "1.5",
        "-0.0",
        "1.0e-4",
        "1.0e4",
        "1e-4",
        "2E5",
        "1.e3",
        ".5",
        ".inf",
        "-.inf",
        ".nan",
        ".NaN",
        "._",
        ".",
        "./data",
        ".hidden",
        "2024-01-01",
        "2024-01-01 10:00:00",
        "0.9.5",
        "7b",
        "true",
        "True",
        "TRUE",
        "tRue",
        "yes",
        "No",
        "on",
        "OFF",
        "y",
        "n",
        "null",
        "Null",
        "~",
        "~x",
        "none",
        "None",
        "a b",
        "a:b",
        "a: b",
        "a:",
        "a #b",
        "a#b",
        "a  # c",
        "'q'",
        "'it''s'",
        '"q"',
        '"a\\tb"',
        '"x" # c',
        "'x'x",
        '"a # b"',
        "'a: b'",
        "''",
        '""',
        "[a, b]",
        "{a: 1}",
        "&a x",
        "*a",
        "!!str 1",
        "|",
        ">",
        "- a",
        "-a",
        "? a",
        "@a",
        "`a`",
        "%a",
        "${oc.env:HOME}",
        "$x",
        "/abs/path",
        "identity,tips",
        "qwen3_nothink",
        "a, b",
        "é",
        "x # é",
        "x # \u2028",
        "x # \x85",
        "<<",
        "=",
        "x\u00a0y",
        "1.5e+3",
        "-1.5E-3",
        "+.5",
        "1e",
        "e1",
        "0b101",
        "-",
        "+",
        "0.",
        "1.",
        "00.5",
        "0.4,0.6",
        "7b-chat",
        "2024-1-1",
        "2024-01-01x",
        "1.2.3",
        "12:30",
        "1e5x",
        "0x1g",
        "+-1",
        "--a",
    ],
)
def test_values_read_alike(value):
    _agree(f"model_name_or_path: m\nkey: {value}\nother: 1\n")


@pytest.mark.parametrize(
    "text",
    [
        "a: 1\nb: 2\n",
        "a: 1\nb: 2",  # no newline at the end: the pure-Python and C parsers end the mapping differently
        "# head\n\na: 1  # c\n  # indented comment\n\nb: x   \n\n# tail\n",
        "a: 1\na: 2\nb: 3\na: 4\n",  # duplicates: the last wins, each reported
        "a: 1\n  b: 2\n",
        "a:\n  b: 2\n",
        "a:\n- 1\n",
        "a: x\n  continued\n",
        "---\na: 1\n",
        "a: 1\n...\n",
        "%YAML 1.1\n---\na: 1\n",
        "a: 1\r\nb: 2\r\n",
        "a:\t1\n",
        "a : 1\n",
        "a:1\n",
        "true: 1\n",
        "on: 1\n",
        "null: 1\n",
        "1: a\n",
        "a.b-c_d: 1\n",
        "_a: 1\n",
        "a: 1\n# \x07\n",
        "a: 1\n\n\n",
        "",
        "# only a comment\n",
        "a: 1\n#\u4e2d\u6587\u6ce8\u91ca\nb: 2  # \u6ce8\u91ca\n",
        "a: b: c\n",
        "a: 'x' # c\nb: \"y\"  # c\n",
    ],
)
def test_documents_read_alike(text):
    _agree(text)


_KEYS = st.sampled_from(["a", "b", "lr", "model_name_or_path", "x.y", "on", "_k", "k-1"])
_VALUES = st.one_of(
    st.sampled_from(["1", "1.0e-4", "1e-4", "true", "no", "null", "~", "x", "./p", "'q'", '"d"', "0.9.5", ".5"]),
    st.integers(-(10**6), 10**6).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=12),
)
_LINES = st.one_of(
    st.tuples(_KEYS, _VALUES, st.sampled_from(["", "  # c", " #", "#x"])).map(lambda t: f"{t[0]}: {t[1]}{t[2]}"),
    st.sampled_from(["", "# comment", "  # indented", "   ", "  nested: 1"]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_LINES, min_size=1, max_size=8), st.booleans())
def test_generated_documents_read_alike(lines, newline_at_end):
    _agree("\n".join(lines) + ("\n" if newline_at_end else ""))
