"""One line per diagnostic: ``path:line:col: CODE [severity] message (hint)``."""

from __future__ import annotations

from ..engine import FileResult
from .summary import summary_line, versions_line


def render(results: list[FileResult], **_: object) -> str:
    out = []
    for result in results:
        for d in result.diagnostics:
            hint = f" ({d.fix})" if d.fix else ""
            out.append(f"{d.path}:{d.line}:{d.column}: {d.code} [{d.severity.value}] {d.message}{hint}")
    out.append(versions_line(results))
    out.append(summary_line(results))
    return "\n".join(out) + "\n"
