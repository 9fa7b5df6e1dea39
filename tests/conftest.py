"""Test-wide settings: a private dataset-scan cache, and the ground-truth match rates in the summary."""

from __future__ import annotations

import pytest

MATCH_RATES: list[str] = []


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Keep dataset scans of the tests out of the user's cache (dataset/cache.py)."""
    patch = pytest.MonkeyPatch()
    patch.setenv("LF_LINT_CACHE_DIR", str(tmp_path_factory.mktemp("lf-lint-cache")))
    yield
    patch.undo()


def pytest_terminal_summary(terminalreporter):
    if MATCH_RATES:
        terminalreporter.section("agreement with the real LLaMA-Factory")
        for line in MATCH_RATES:
            terminalreporter.write_line(line)


@pytest.fixture(autouse=True, scope="session")
def _debug_internal_errors():
    """In tests, a bug in a rule raises instead of becoming an LF000 diagnostic."""
    patch = pytest.MonkeyPatch()
    patch.setenv("LF_LINT_DEBUG", "1")
    yield
    patch.undo()
