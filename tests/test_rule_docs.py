"""Every rule documents itself, and its documented examples behave as documented."""

from __future__ import annotations

import pytest
import yaml
from train_config import TRAIN

from lf_lint.engine import LintOptions, lint_file
from lf_lint.rules import ALL_RULES, BY_CODE
from lf_lint.versions import newest_transformers_for

# A minimal config LLaMA-Factory accepts; rule examples are laid over it.
BASE = {**TRAIN, "save_steps": 0.25}
DEFAULT_VERSIONS = {"llamafactory_version": "0.9.5", "transformers_version": "4.57.1"}


def _lint(example, tmp_path, name):
    if example.complete:
        text = example.yaml
    else:
        overlay = yaml.safe_load(example.yaml) or {}
        text = yaml.safe_dump({**BASE, **overlay}, sort_keys=False) if "\n- " not in example.yaml else example.yaml
        if any(line.startswith(("#", " ")) for line in example.yaml.splitlines()) or ": &" in example.yaml:
            text = yaml.safe_dump(BASE, sort_keys=False) + example.yaml + "\n"
        else:
            # keep the example's own text (its YAML spelling matters: 1e-4, yes, duplicates, ...)
            kept = {k: v for k, v in BASE.items() if k not in overlay}
            text = yaml.safe_dump(kept, sort_keys=False) + example.yaml + "\n"
    path = tmp_path / name
    path.write_text(text)
    for relative, content in example.files.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(content)
    versions = dict(DEFAULT_VERSIONS)
    if "llamafactory_version" in example.options:  # as a lint pairs it: the newest transformers that release allows
        versions["transformers_version"] = newest_transformers_for(example.options["llamafactory_version"])
    options = LintOptions(**{"count_datasets": False, "workdir": tmp_path, **versions, **example.options})
    return lint_file(path, options)


@pytest.mark.parametrize("rule", ALL_RULES, ids=lambda r: r.code)
def test_rule_documentation_is_complete(rule):
    doc = rule.documentation()
    assert doc.startswith(f"# {rule.code} {rule.name} ({rule.severity.value})")
    assert rule.what.strip() and rule.why.strip() and rule.summary.strip()
    assert BY_CODE[rule.code] is rule


@pytest.mark.parametrize("rule", [r for r in ALL_RULES if r.example is not None], ids=lambda r: r.code)
def test_example_triggers_the_rule(rule, tmp_path):
    result = lint_file_codes = _lint(rule.example, tmp_path, "example.yaml")
    codes = [d.code for d in lint_file_codes.diagnostics]
    assert rule.code in codes, (rule.code, [(d.code, d.message) for d in result.diagnostics])


@pytest.mark.parametrize("rule", [r for r in ALL_RULES if r.use_instead is not None], ids=lambda r: r.code)
def test_use_instead_is_clean(rule, tmp_path):
    result = _lint(rule.use_instead, tmp_path, "fixed.yaml")
    problems = [(d.code, d.message) for d in result.diagnostics if d.severity.value != "info"]
    assert not problems, (rule.code, problems)


def test_codes_are_unique_and_grouped():
    codes = [r.code for r in ALL_RULES]
    assert len(codes) == len(set(codes))
    assert all(c.startswith("LF") and c[2:].isdigit() and len(c) == 5 for c in codes)
    names = [r.name for r in ALL_RULES]
    assert len(names) == len(set(names))
