"""``Record``: the class syntax of ``typing.NamedTuple`` at the cost of ``collections.namedtuple``.

``typing.NamedTuple`` compiles every field's annotation (a string, under ``from __future__ import annotations``)
into a ``ForwardRef`` when the class is made: about 0.3 ms for a class of eight fields on the development
machine, three times what the namedtuple costs, and a lint makes dozens of these classes at start-up. A Record
keeps its annotations as written; everything else is the namedtuple's (fields, defaults, ``_replace``,
``_asdict``, pickling, equality with tuples), with the class body's methods, properties and docstring.

    class Span(Record):
        line: int
        column: int = 1
"""

from __future__ import annotations

from collections import namedtuple

_PROHIBITED = frozenset({"__new__", "__init__", "__slots__", "__getnewargs__", "_fields", "_field_defaults", "_make",
                         "_replace", "_asdict", "_source"})  # fmt: skip
_SPECIAL = frozenset({"__module__", "__name__", "__annotations__"})


class _RecordMeta(type):
    def __new__(mcs, name: str, bases: tuple, namespace: dict):
        if not bases:  # Record itself
            return super().__new__(mcs, name, bases, namespace)
        annotations = namespace.get("__annotations__", {})
        fields = list(annotations)
        defaults = [namespace[field] for field in fields if field in namespace]
        if any(field not in namespace for field in fields[len(fields) - len(defaults) :]):
            raise TypeError(f"{name}: a field without a default follows one with a default")
        record = namedtuple(name, fields, defaults=defaults, module=namespace["__module__"])
        record.__annotations__ = dict(annotations)
        for key, value in namespace.items():
            if key in _PROHIBITED:
                raise AttributeError(f"cannot overwrite Record attribute {key}")
            if key not in _SPECIAL and key not in fields:
                setattr(record, key, value)
        return record


class Record(metaclass=_RecordMeta):
    """Subclass it as ``typing.NamedTuple``: annotated fields, then the ones with defaults."""
