"""The column types ``datasets`` gives a table, and the rows it cannot put in one table.

``datasets`` builds one Arrow table per dataset: each column has one type, unified across rows
(and across the files of a folder). A missing value (or a key a row lacks) is null; integers and
floats unify to float; a column that holds strings in one row and numbers, booleans, lists or
objects in another cannot be unified, and ``load_dataset`` stops with ``DatasetGenerationError``.
Nested objects (the messages of a ShareGPT row) unify field by field. ``ColumnTypes`` follows
the same rules on Python values, row by row.
"""

from __future__ import annotations

from typing import NamedTuple

NULL = "null"


def kind_of(value: object):
    """A hashable type signature: "null", "bool", "int", "float", "str", ("list", item) or ("struct", fields)."""
    if value is None:
        return NULL
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, list):
        item = NULL
        for element in value:
            item = unify(item, kind_of(element))
        return ("list", item)
    if isinstance(value, dict):
        return ("struct", tuple(sorted((str(k), kind_of(v)) for k, v in value.items())))
    return type(value).__name__


class Conflict(Exception):
    def __init__(self, first, second):
        super().__init__(f"{describe(first)} and {describe(second)}")
        self.first, self.second = first, second


_MEMO: dict = {}
_SIMPLE = {str: "str", int: "int", float: "float", bool: "bool", type(None): NULL}


def unify(a, b):
    if a == b or b == NULL:
        return a
    if a == NULL:
        return b
    key = (a, b)
    if key in _MEMO:
        result = _MEMO[key]
        if isinstance(result, Conflict):
            raise result
        return result
    try:
        result = _unify(a, b)
    except Conflict as exc:
        _MEMO[key] = exc
        raise
    _MEMO[key] = result
    return result


def _unify(a, b):
    if {a, b} == {"int", "float"}:
        return "float"
    if isinstance(a, tuple) and isinstance(b, tuple) and a[0] == b[0] == "list":
        return ("list", unify(a[1], b[1]))
    if isinstance(a, tuple) and isinstance(b, tuple) and a[0] == b[0] == "struct":
        fields = dict(a[1])
        for name, kind in b[1]:
            fields[name] = unify(fields.get(name, NULL), kind)
        return ("struct", tuple(sorted(fields.items())))
    raise Conflict(a, b)


def describe(kind) -> str:
    if isinstance(kind, tuple):
        return "a list" if kind[0] == "list" else "an object"
    return {"str": "a string", "int": "an integer", "float": "a number", "bool": "a boolean", NULL: "null"}.get(
        kind, kind
    )


def has_field(kind, name: str) -> bool:
    """Whether some object in a (list of) struct column has the field ``name``."""
    if isinstance(kind, tuple) and kind[0] == "list":
        return has_field(kind[1], name)
    return isinstance(kind, tuple) and kind[0] == "struct" and any(n == name for n, _ in kind[1])


class TypeProblem(NamedTuple):
    column: str
    message: str
    location: str


class ColumnTypes:
    """Unified column types of a table, fed one row at a time."""

    def __init__(self) -> None:
        self.kinds: dict[str, object] = {}
        self.first_seen: dict[str, str] = {}
        self.problem: TypeProblem | None = None

    def add(self, row: dict, location) -> None:
        """``location`` is a string or a callable that makes one (only needed for the first sighting or a conflict)."""
        if self.problem is not None:
            return
        kinds = self.kinds
        for column, value in row.items():
            kind = _SIMPLE.get(type(value))
            old = kinds.get(column)
            if kind is not None and (kind == old or (kind == NULL and old is not None)):
                continue  # the common case: nothing new to learn
            if kind is None:
                kind = kind_of(value)
            if old is None:
                kinds[column] = kind
                self.first_seen[column] = location() if callable(location) else location
            elif old != kind:
                try:
                    kinds[column] = unify(old, kind)
                except Conflict as exc:
                    self.problem = TypeProblem(
                        str(column),
                        f"column `{column}` holds {describe(exc.first)} (first at {self.first_seen[column]}) and "
                        f"{describe(exc.second)} here; datasets cannot build one table from it and stops with "
                        "DatasetGenerationError",
                        location() if callable(location) else location,
                    )
                    return

    def __contains__(self, column: object) -> bool:
        return column in self.kinds
