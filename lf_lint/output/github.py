"""GitHub Actions workflow commands (``::error file=...::message``), one per diagnostic."""

from __future__ import annotations

from ..engine import FileResult

_LEVEL = {"error": "error", "warning": "warning", "info": "notice"}


def _data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def render(results: list[FileResult], **_: object) -> str:
    out = []
    for result in results:
        for d in result.diagnostics:
            props = ",".join(
                f"{k}={_property(str(v))}"
                for k, v in (
                    ("file", d.path),
                    ("line", d.line),
                    ("col", d.column),
                    ("endLine", d.end_line),
                    ("endColumn", d.end_column),
                    ("title", f"lf-lint {d.code} ({d.name})"),
                )
            )
            message = d.message + (f"\nhelp: {d.fix}" if d.fix else "")
            out.append(f"::{_LEVEL[d.severity.value]} {props}::{_data(message)}")
    return "\n".join(out) + ("\n" if out else "")
