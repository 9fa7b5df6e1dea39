"""README.md holds the two set-up commands a newcomer needs, and they stay true."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def test_readme_is_a_readable_document():
    text = README.read_text(encoding="utf-8")
    assert len(text) < 100_000  # an edit once blew it up to 16 MB without any test noticing
    lines = [line for line in text.splitlines() if len(line) > 40]
    assert len(lines) - len(set(lines)) < 5  # no paragraph pasted over and over


def test_setup_commands_are_there_and_true():
    text = README.read_text(encoding="utf-8")
    install = re.search(r"pip install -e \. && lf-lint (\S+)", text)
    assert install and (ROOT / install.group(1)).is_file()
    assert "pip install -e '.[test]' && python -m pytest" in text
    assert "pip install -e '.[test]' && python -m pytest" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
