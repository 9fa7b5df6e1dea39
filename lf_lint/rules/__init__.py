"""The registry of rules: every rule module lists its rules in ``RULES``; this collects them."""

from __future__ import annotations

from . import (
    checkpoint,
    datasets,
    distributed,
    inert_options,
    launch_switches,
    memory,
    plan,
    reading,
    schema_rules,
    templates,
    upstream_lf,
    upstream_transformers,
    values,
)
from .base import Context, Example, Finding, Rule

ALL_RULES: list[Rule] = [
    *reading.RULES,
    *schema_rules.RULES,
    *launch_switches.RULES,
    *values.RULES,
    *upstream_lf.RULES,
    *upstream_transformers.RULES,
    *inert_options.RULES,
    *templates.RULES,
    *checkpoint.RULES,
    *distributed.RULES,
    *datasets.RULES,
    *plan.RULES,
    *memory.RULES,
]
BY_CODE: dict[str, Rule] = {rule.code: rule for rule in ALL_RULES}

assert len(BY_CODE) == len(ALL_RULES), "duplicate rule code"

__all__ = ["ALL_RULES", "BY_CODE", "Context", "Example", "Finding", "Rule"]
