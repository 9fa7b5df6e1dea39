"""The closing lines text formats share: which versions were modelled and what was found."""

from __future__ import annotations

from ..diagnostics import Severity
from ..engine import FileResult


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def versions_line(results: list[FileResult]) -> str:
    seen = []
    for result in results:
        resolution = result.resolution
        text = f"{resolution.target.describe()} ({'installed' if resolution.source == 'environment' else 'from options' if resolution.source == 'option' else 'the newest release on PyPI; none installed'})"
        if text not in seen:
            seen.append(text)
        for note in resolution.notes:
            if note not in seen:
                seen.append(note)
    return "Modelled: " + "; ".join(seen)


def summary_line(results: list[FileResult]) -> str:
    counts = {s: 0 for s in Severity}
    for result in results:
        for d in result.diagnostics:
            counts[d.severity] += 1
    checked = sum(r.command != "other" for r in results)
    skipped = len(results) - checked
    parts = [_plural(counts[Severity.ERROR], "error"), _plural(counts[Severity.WARNING], "warning")]
    if counts[Severity.INFO]:
        parts.append(_plural(counts[Severity.INFO], "note"))
    tail = f" ({skipped} skipped: not LLaMA-Factory configs)" if skipped else ""
    return f"Found {', '.join(parts)} in {_plural(checked, 'config')}{tail}."
