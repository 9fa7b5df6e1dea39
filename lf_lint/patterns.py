"""Regular expressions compiled when first used.

Compiling a pattern costs 0.05-0.6 ms, and a schema-only lint takes a few tens of ms in all; many module-level
patterns serve input that most configs never have (dates, suppression comments, a size in a model's name), so the
ones a plain config does not reach wait until something asks (benchmarks/lint_speed.py measures the start-up).
"""

from __future__ import annotations

import re


class LazyPattern:
    """``re.compile(source, flags)``, compiled on the first match, search or substitution."""

    __slots__ = ("_compiled", "flags", "source")

    def __init__(self, source: str, flags: int = 0) -> None:
        self.source = source
        self.flags = flags
        self._compiled: re.Pattern | None = None

    def compiled(self) -> re.Pattern:
        if self._compiled is None:
            self._compiled = re.compile(self.source, self.flags)
        return self._compiled

    def match(self, string: str, *positions: int) -> re.Match | None:
        return self.compiled().match(string, *positions)

    def fullmatch(self, string: str, *positions: int) -> re.Match | None:
        return self.compiled().fullmatch(string, *positions)

    def search(self, string: str, *positions: int) -> re.Match | None:
        return self.compiled().search(string, *positions)

    def finditer(self, string: str, *positions: int):
        return self.compiled().finditer(string, *positions)

    def sub(self, replacement, string: str, count: int = 0) -> str:
        return self.compiled().sub(replacement, string, count)

    def __repr__(self) -> str:
        return f"LazyPattern({self.source!r})"
