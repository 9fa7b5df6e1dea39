"""The one diagnostic record every rule produces and every output format renders."""

from __future__ import annotations

from enum import Enum

from .records import Record


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return {"error": 2, "warning": 1, "info": 0}[self.value]


class Diagnostic(Record):
    """One problem (or note) found in one file.

    ``line``/``column`` are 1-based; ``end_line``/``end_column`` delimit the offending
    text (end exclusive). ``fix`` is a human hint ("did you mean ...").
    """

    code: str
    name: str
    severity: Severity
    message: str
    path: str
    line: int
    column: int
    end_line: int
    end_column: int
    fix: str | None = None

    def to_dict(self) -> dict:
        data = self._asdict()
        data["severity"] = self.severity.value
        return data

    @property
    def sort_key(self) -> tuple:
        return (self.path, self.line, self.column, self.code)

    def __repr__(self) -> str:
        from .reprs import bracket, clip_path

        where = f"{clip_path(self.path)}:{self.line}:{self.column}"
        return bracket("Diagnostic", f"{self.code} {self.severity.value} {where} {self.message}")

    def _repr_html_(self) -> str:
        from .reprs import table

        rows = [
            ("code", f"{self.code} ({self.name})"),
            ("severity", self.severity.value),
            ("where", f"{self.path}:{self.line}:{self.column}"),
            ("message", self.message),
        ]
        return table(None, rows + ([("fix", self.fix)] if self.fix else []))
