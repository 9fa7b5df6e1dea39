"""``Record``: the class syntax of ``typing.NamedTuple``, at a fraction of its cost to define.

``typing.NamedTuple`` compiles every field's annotation (a string, under ``from __future__ import annotations``)
into a ``ForwardRef`` when the class is made, and ``collections.namedtuple`` compiles a ``__new__`` for each
class; a lint defines dozens of these classes at start-up, and the two together cost a tenth of a schema-only
lint (benchmarks/lint_speed.py). A Record is a tuple subclass with the namedtuple's interface (fields, defaults,
``_replace``, ``_asdict``, ``_make``, pickling, equality with tuples, the repr) whose methods and one ``__new__``
are shared by every Record, plus the class body's methods, properties and docstring. Annotations stay as written.

    class Span(Record):
        line: int
        column: int = 1
"""

from __future__ import annotations

from types import GenericAlias

try:  # the field descriptor namedtuple uses (CPython); an itemgetter property elsewhere
    from _collections import _tuplegetter
except ImportError:  # pragma: no cover
    from operator import itemgetter

    def _tuplegetter(index: int, doc: str) -> property:
        return property(itemgetter(index), doc=doc)


_PROHIBITED = frozenset({"__new__", "__init__", "__slots__", "__getnewargs__", "_fields", "_field_defaults", "_make",
                         "_replace", "_asdict", "_source", "_defaults"})  # fmt: skip


class _RecordMeta(type):
    def __new__(mcs, name: str, bases: tuple, namespace: dict):
        if not bases:  # Record itself
            return super().__new__(mcs, name, bases, namespace)
        annotations = namespace.get("__annotations__", {})
        fields = tuple(annotations)
        defaults = {field: namespace[field] for field in fields if field in namespace}
        if any(field not in defaults for field in fields[len(fields) - len(defaults) :]):
            raise TypeError(f"{name}: a field without a default follows one with a default")
        clash = _PROHIBITED.intersection(namespace)
        if clash:
            raise AttributeError(f"cannot overwrite Record attribute {sorted(clash)[0]}")
        body = {key: value for key, value in namespace.items() if key not in defaults}
        body.update(__slots__=(), _fields=fields, _field_defaults=defaults, _defaults=tuple(defaults.values()),
                    __match_args__=fields)
        body.setdefault("__doc__", f"{name}({', '.join(fields)})")
        for index, field in enumerate(fields):
            body[field] = _tuplegetter(index, f"Alias for field number {index}")
        return type(name, (_RecordTuple,), body)


class _RecordTuple(tuple):
    """What every Record class shares (the methods ``collections.namedtuple`` writes into each class)."""

    __slots__ = ()
    _fields: tuple[str, ...] = ()
    _field_defaults: dict = {}

    _defaults: tuple = ()  # the defaults of the last fields, in order

    def __new__(cls, *args, **kwargs):
        if not kwargs:
            missing = len(cls._fields) - len(args)
            if missing == 0:
                return tuple.__new__(cls, args)
            if 0 < missing <= len(cls._defaults):
                return tuple.__new__(cls, args + cls._defaults[-missing:])
        return tuple.__new__(cls, _bind(cls, args, kwargs))

    @classmethod
    def _make(cls, iterable):
        made = tuple.__new__(cls, iterable)
        if len(made) != len(cls._fields):
            raise TypeError(f"Expected {len(cls._fields)} arguments, got {len(made)}")
        return made

    def _replace(self, **changes):
        made = self._make(map(changes.pop, self._fields, self))
        if changes:
            raise ValueError(f"Got unexpected field names: {list(changes)!r}")
        return made

    def _asdict(self) -> dict:
        return dict(zip(self._fields, self))

    def __repr__(self) -> str:
        values = ", ".join(f"{field}={value!r}" for field, value in zip(self._fields, self))
        return f"{type(self).__name__}({values})"

    def __getnewargs__(self) -> tuple:
        return tuple(self)

    __class_getitem__ = classmethod(GenericAlias)


def _bind(cls, args: tuple, kwargs: dict) -> list:
    """The field values of ``cls(*args, **kwargs)``, with the errors a function of those parameters would raise."""
    fields = cls._fields
    if len(args) > len(fields):
        raise TypeError(f"{cls.__name__}() takes {len(fields)} positional arguments but {len(args)} were given")
    values = list(args)
    defaults = cls._field_defaults
    for field in fields[len(args) :]:
        if field in kwargs:
            values.append(kwargs.pop(field))
        elif field in defaults:
            values.append(defaults[field])
        else:
            missing = [f for f in fields[len(values) :] if f not in kwargs and f not in defaults]
            raise TypeError(f"{cls.__name__}() missing {len(missing)} required argument(s): {', '.join(map(repr, missing))}")
    for name in kwargs:
        if name in fields:
            raise TypeError(f"{cls.__name__}() got multiple values for argument {name!r}")
        raise TypeError(f"{cls.__name__}() got an unexpected keyword argument {name!r}")
    return values


class Record(metaclass=_RecordMeta):
    """Subclass it as ``typing.NamedTuple``: annotated fields, then the ones with defaults."""
