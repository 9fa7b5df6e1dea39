"""The default, human format: each diagnostic with its source line, a caret and a hint."""

from __future__ import annotations

from ..engine import FileResult
from .summary import summary_line, versions_line


def _frame(lines: list[str], line: int, column: int, end_line: int, end_column: int) -> list[str]:
    if not 1 <= line <= len(lines):
        return []
    text = lines[line - 1].rstrip("\n").expandtabs(1)
    width = len(str(line))
    stop = end_column if end_line == line else len(text) + 1
    carets = max(1, min(stop, len(text) + 1) - column)
    pad = " " * width
    return [
        f" {pad} |",
        f" {line} | {text}",
        f" {pad} | {' ' * (column - 1)}{'^' * carets}",
    ]


def render(results: list[FileResult], explain: bool = False, **_: object) -> str:
    out: list[str] = []
    for result in results:
        if result.plan is not None:
            from ..explain import trainer_block

            out.append(f"{result.path}:")
            out.extend(trainer_block(result.plan))
            if explain:
                out.append(result.plan.explain())
            out.append("")
        if result.memory is not None and (result.memory.gpu is not None or explain):
            from .memory_text import memory_block

            out.extend(memory_block(result.memory))
            out.append("")
        for d in result.diagnostics:
            out.append(f"{d.severity.value}[{d.code}] {d.message}")
            out.append(f"  --> {d.path}:{d.line}:{d.column}")
            out.extend(_frame(result.lines, d.line, d.column, d.end_line, d.end_column))
            if d.fix:
                out.append(f"  = help: {d.fix}")
            out.append("")
    out.append(versions_line(results))
    out.append(summary_line(results))
    return "\n".join(out) + "\n"
