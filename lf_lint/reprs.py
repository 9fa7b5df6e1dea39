"""Helpers for the one-line reprs and the Jupyter tables of the objects the Python API returns."""

from __future__ import annotations

import html
from collections.abc import Iterable

WIDTH = 120  # the most characters a repr takes


def one_line(text: object) -> str:
    return " ".join(str(text).split())


def clip(text: object, width: int) -> str:
    """``text`` on one line, cut to ``width`` characters with "..." at the end."""
    text = one_line(text)
    return text if len(text) <= width else text[: max(0, width - 3)].rstrip() + "..."


def clip_path(path: object, width: int = 40) -> str:
    """A path cut from the left, so the file name stays."""
    path = one_line(path)
    return path if len(path) <= width else "..." + path[len(path) - width + 3 :]


def bracket(name: str, text: str, tail: str = "") -> str:
    """``<name text tail>`` within WIDTH characters: ``text`` gives way, ``tail`` stays whole."""
    room = WIDTH - len(name) - len(tail) - 3
    return f"<{name} {clip(text, room)}{tail}>"


def plural(count: int, word: str) -> str:
    return f"{count:,} {word}" if count == 1 else f"{count:,} {word}s"


def _cell(tag: str, value: object, span: int = 1) -> str:
    spanned = f' colspan="{span}"' if span > 1 else ""
    return f"<{tag}{spanned}>{html.escape('' if value is None else str(value))}</{tag}>"


def table(
    caption: str | None,
    rows: Iterable[Iterable[object]],
    header: Iterable[str] | None = None,
    footer: Iterable[str] = (),
) -> str:
    """An HTML table; every text is escaped. ``footer`` lines span the whole width."""
    rows = [list(row) for row in rows]
    header = list(header) if header is not None else None
    width = len(header) if header else max((len(row) for row in rows), default=1)
    parts = ["<table>"]
    if caption is not None:
        parts.append(_cell("caption", caption))
    if header:
        parts.append("<thead><tr>" + "".join(_cell("th", h) for h in header) + "</tr></thead>")
    body = "".join("<tr>" + "".join(_cell("td", v) for v in row) + "</tr>" for row in rows)
    parts.append(f"<tbody>{body}</tbody>")
    footer = list(footer)
    if footer:
        parts.append("<tfoot>" + "".join(f"<tr>{_cell('td', line, width)}</tr>" for line in footer) + "</tfoot>")
    parts.append("</table>")
    return "".join(parts)
