"""records.Record behaves as typing.NamedTuple does for everything lf-lint uses."""

from __future__ import annotations

import pickle
from typing import NamedTuple

import pytest

from lf_lint.records import Record


class Point(Record):
    """A point."""

    x: int
    y: int = 0
    tags: tuple[str, ...] = ()

    @property
    def norm(self) -> int:
        return abs(self.x) + abs(self.y)

    @classmethod
    def origin(cls) -> Point:
        return cls(0)

    def moved(self, dx: int) -> Point:
        return self._replace(x=self.x + dx)


class TypingPoint(NamedTuple):
    x: int
    y: int = 0
    tags: tuple[str, ...] = ()


def test_a_record_is_the_namedtuple_typing_would_make():
    p = Point(1, y=-2)
    assert p == (1, -2, ()) == TypingPoint(1, -2)
    assert repr(p) == "Point(x=1, y=-2, tags=())"
    assert Point._fields == TypingPoint._fields and Point._field_defaults == TypingPoint._field_defaults
    assert p.norm == 3 and Point.origin() == (0, 0, ()) and p.moved(2).x == 3
    assert p._asdict() == {"x": 1, "y": -2, "tags": ()} and Point._make([5, 6, ("a",)]).tags == ("a",)
    assert Point.__doc__ == "A point." and Point.__module__ == __name__ and Point.__qualname__ == "Point"
    assert Point.__annotations__ == {"x": "int", "y": "int", "tags": "tuple[str, ...]"}
    assert pickle.loads(pickle.dumps(p)) == p and isinstance(p, tuple) and hash(p) == hash((1, -2, ()))


def test_a_field_without_default_after_one_with_a_default_is_refused():
    with pytest.raises(TypeError):

        class Bad(Record):
            a: int = 0
            b: int

    with pytest.raises(AttributeError):

        class Worse(Record):
            a: int

            def _replace(self, **kw):
                return self
