"""Inline suppressions: ``# lf-lint: disable=CODE[,CODE]`` and ``# lf-lint: disable-file=CODE``.

``disable`` silences the listed codes (or prefixes, like ``LF5``) for diagnostics on
that line; ``disable-file`` silences them for the whole file, wherever it is written.
"""

from __future__ import annotations

from .patterns import LazyPattern

_DIRECTIVE = LazyPattern(r"(?:^|\s)#\s*lf-lint:\s*(disable|disable-file)\s*=\s*([A-Za-z0-9_,\s-]+?)\s*(?:#|$)")


class Suppressions:
    def __init__(self) -> None:
        self.by_line: dict[int, set[str]] = {}
        self.whole_file: set[str] = set()

    def silences(self, code: str, line: int) -> bool:
        codes = self.whole_file | self.by_line.get(line, set())
        return any(matches(code, selector) for selector in codes)


def matches(code: str, selector: str) -> bool:
    """``LF1`` selects LF101..LF199; ``ALL`` selects everything."""
    selector = selector.upper()
    return selector == "ALL" or code.upper().startswith(selector)


def parse(text: str) -> Suppressions:
    found = Suppressions()
    if "lf-lint:" not in text:
        return found
    for number, line in enumerate(text.splitlines(), start=1):
        if "lf-lint:" not in line:
            continue
        for match in _DIRECTIVE.finditer(line):
            codes = {c.strip().upper() for c in match.group(2).split(",") if c.strip()}
            if match.group(1) == "disable-file":
                found.whole_file |= codes
            else:
                found.by_line.setdefault(number, set()).update(codes)
    return found
