"""What a dataclass field's annotation and default say, read from source (see pysource.py).

``shape`` turns an annotation into the JSON types a config value may take and the values it is
restricted to, with the conventions of tools/extract_fields.py (which reads the imported classes):
a Literal or an Enum restricts the values, ``Enum | str`` too (transformers converts the string),
``Optional`` adds null, and a class YAML cannot express (``torch.dtype``, ``GenerationConfig``)
allows anything. ``constant`` evaluates a default as far as literals, module constants and enum
members go.
"""

from __future__ import annotations

import ast

from .pysource import Module, Packages, Ref

_SCALARS = {"bool": "boolean", "int": "integer", "float": "number", "str": "string"}
_CONTAINERS = {"dict": "object", "list": "array", "tuple": "array", "set": "array",
               "Dict": "object", "List": "array", "Tuple": "array", "Set": "array"}  # fmt: skip
_TYPING = ("typing.", "typing_extensions.")
_ENUM_BASES = {"enum.Enum", "enum.IntEnum", "enum.StrEnum", "enum.Flag", "enum.IntFlag", "enum.ReprEnum"}
_UNKNOWN = object()


class Shape:
    """One annotation term: kind is "scalar"/"container" (with a JSON type), "literal"/"enum" (with
    values), "union" (with members) or "any"."""

    def __init__(
        self, kind: str, json_type: str | None = None, values: list | None = None, members: list | None = None
    ):
        self.kind, self.json_type, self.values, self.members = kind, json_type, values, members


ANY = Shape("any")
NULL = Shape("scalar", "null")


def json_shape(packages: Packages, module: Module, annotation: ast.expr) -> tuple[list | None, list | None]:
    """(JSON types, allowed values) of an annotation; (None, None) when any value may do."""
    return _summary(_term(packages, module, annotation, 0))


def _summary(term: Shape) -> tuple[list | None, list | None]:
    if term.kind == "any":
        return None, None
    if term.kind in ("scalar", "container"):
        return [term.json_type], None
    if term.kind in ("literal", "enum"):
        return sorted({_value_type(v) for v in term.values}), list(term.values)
    members = [m for m in term.members if not _is_null(m)]
    types: set = set()
    for member in term.members:
        member_types, _ = _summary(member)
        if member_types is None:
            return None, None
        types.update(member_types)
    restricting = [m for m in members if m.kind in ("literal", "enum")]
    choices = None
    if restricting and len(restricting) == len(members):
        choices = [v for m in restricting for v in m.values]
    elif len(restricting) == 1 and restricting[0].kind == "enum" and len(members) == 2:
        other = next(m for m in members if m is not restricting[0])
        if other.kind == "scalar" and other.json_type == "string":  # transformers' `IntervalStrategy | str`
            choices = list(restricting[0].values)
    if choices is not None and len(members) < len(term.members):
        choices.append(None)
    return sorted(types), choices


def _is_null(term: Shape) -> bool:
    return term.kind == "scalar" and term.json_type == "null"


def _value_type(value: object) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number"}.get(type(value), "string")


def _term(packages: Packages, module: Module, expr: ast.expr, depth: int) -> Shape:
    if depth > 20:
        return ANY
    if isinstance(expr, ast.Constant):
        if expr.value is None:
            return NULL
        if isinstance(expr.value, str):  # a forward reference: "Optional[int]"
            try:
                parsed = ast.parse(expr.value, mode="eval").body
            except (SyntaxError, ValueError, RecursionError):
                return ANY
            return _term(packages, module, parsed, depth + 1)
        return ANY
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.BitOr):
        return _union([_term(packages, module, side, depth + 1) for side in (expr.left, expr.right)])
    if isinstance(expr, ast.Subscript):
        return _subscript(packages, module, expr, depth)
    ref = packages.expression(module, expr)
    return ANY if ref is None else _named(packages, ref, depth)


def _named(packages: Packages, ref: Ref, depth: int) -> Shape:
    name = ref.dotted
    if ref.kind == "external":
        short = name.rsplit(".", 1)[-1]
        if name.startswith("builtins.") and short in _SCALARS:
            return Shape("scalar", _SCALARS[short])
        if name.startswith(("builtins.", *_TYPING)) and short in _CONTAINERS:
            return Shape("container", _CONTAINERS[short])
        if name.startswith("pathlib."):
            return Shape("scalar", "string")
        if name == "builtins.None":
            return NULL
        return ANY
    if ref.kind == "class":
        values = enum_values(packages, ref)
        return Shape("enum", values=values) if values else ANY
    if ref.kind == "value" and isinstance(ref.node, ast.expr):  # a type alias: Role = Literal["a", "b"]
        return _term(packages, ref.module, ref.node, depth + 1)
    return ANY


def _subscript(packages: Packages, module: Module, expr: ast.Subscript, depth: int) -> Shape:
    head = packages.expression(module, expr.value)
    if head is None:
        return ANY
    args = expr.slice.elts if isinstance(expr.slice, ast.Tuple) else [expr.slice]
    short = head.dotted.rsplit(".", 1)[-1]
    typing = head.kind == "external" and head.dotted.startswith(_TYPING)
    if typing and short == "Literal":
        values = [constant(packages, module, arg) for arg in args]
        return ANY if any(v is _UNKNOWN for v in values) else Shape("literal", values=values)
    if typing and short == "Optional":
        return _union([_term(packages, module, args[0], depth + 1), NULL])
    if typing and short == "Union":
        return _union([_term(packages, module, arg, depth + 1) for arg in args])
    if typing and short == "Annotated":
        return _term(packages, module, args[0], depth + 1)
    return _named(packages, head, depth)  # list[str], Dict[str, Any]: the container


def _union(members: list[Shape]) -> Shape:
    flat: list[Shape] = []
    for member in members:
        for item in member.members if member.kind == "union" else [member]:
            if not any(_same(item, seen) for seen in flat):
                flat.append(item)
    return flat[0] if len(flat) == 1 else Shape("union", members=flat)


def _same(a: Shape, b: Shape) -> bool:
    return (a.kind, a.json_type, a.values) == (b.kind, b.json_type, b.values) and a.kind != "union"


# ---------------------------------------------------------------- enums


def enum_values(packages: Packages, ref: Ref, depth: int = 0) -> list | None:
    """The member values of an Enum class read from source, or None when it is not an Enum or a
    value cannot be read (``auto()`` outside StrEnum, computed values)."""
    kind = _enum_kind(packages, ref, depth)
    if kind is None:
        return None
    values: list = []
    for stmt in ref.node.body:
        if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)):
            continue
        name = stmt.targets[0].id
        if name.startswith("_"):
            continue
        if isinstance(stmt.value, ast.Call) and _is_auto(packages, ref.module, stmt.value) and kind == "enum.StrEnum":
            value = name.lower()
        else:
            value = constant(packages, ref.module, stmt.value)
        if value is _UNKNOWN or isinstance(value, (dict, list)):
            return None
        if value not in values:  # a repeated value is an alias, not a member
            values.append(value)
    return values or None


def _enum_kind(packages: Packages, ref: Ref, depth: int) -> str | None:
    if depth > 10 or ref.kind != "class" or not isinstance(ref.node, ast.ClassDef):
        return None
    for base in ref.node.bases:
        found = packages.expression(ref.module, base)
        if found is None:
            continue
        if found.kind == "external" and found.dotted in _ENUM_BASES:
            return found.dotted
        inherited = _enum_kind(packages, found, depth + 1)
        if inherited is not None:
            return inherited
    return None


def _is_auto(packages: Packages, module: Module, call: ast.Call) -> bool:
    ref = packages.expression(module, call.func)
    return ref is not None and ref.dotted == "enum.auto"


# ---------------------------------------------------------------- constants


def constant(packages: Packages, module: Module, expr: ast.expr, depth: int = 0) -> object:
    """The value of a constant expression as JSON would hold it, or ``_UNKNOWN``."""
    if depth > 20:
        return _UNKNOWN
    if isinstance(expr, ast.Constant):
        value = expr.value
        if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
            return _UNKNOWN
        return value if value is None or isinstance(value, (bool, int, float, str)) else _UNKNOWN
    if isinstance(expr, (ast.List, ast.Tuple)):
        items = [constant(packages, module, e, depth + 1) for e in expr.elts]
        return _UNKNOWN if any(i is _UNKNOWN for i in items) else items
    if isinstance(expr, ast.Dict):
        keys = [constant(packages, module, k, depth + 1) if k is not None else _UNKNOWN for k in expr.keys]
        values = [constant(packages, module, v, depth + 1) for v in expr.values]
        if any(x is _UNKNOWN for x in keys + values):
            return _UNKNOWN
        return {str(k): v for k, v in zip(keys, values)}
    if isinstance(expr, ast.UnaryOp) and isinstance(expr.op, (ast.USub, ast.UAdd)):
        value = constant(packages, module, expr.operand, depth + 1)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return -value if isinstance(expr.op, ast.USub) else value
        return _UNKNOWN
    if isinstance(expr, ast.BinOp):
        return _arithmetic(packages, module, expr, depth)
    if isinstance(expr, (ast.Name, ast.Attribute)):
        ref = packages.expression(module, expr)
        if ref is None:
            return _UNKNOWN
        if ref.kind == "value" and isinstance(ref.node, ast.expr):
            return constant(packages, ref.module, ref.node, depth + 1)
        if ref.kind == "attribute":  # an enum member: IntervalStrategy.STEPS
            return _member_value(packages, ref, depth)
    return _UNKNOWN


def _arithmetic(packages: Packages, module: Module, expr: ast.BinOp, depth: int) -> object:
    left = constant(packages, module, expr.left, depth + 1)
    right = constant(packages, module, expr.right, depth + 1)
    if isinstance(left, str) and isinstance(right, str) and isinstance(expr.op, ast.Add):
        return left + right
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (left, right))
    operations = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b}
    if numbers and type(expr.op) in operations:
        return operations[type(expr.op)](left, right)
    return _UNKNOWN


def _member_value(packages: Packages, ref: Ref, depth: int) -> object:
    owner = Ref("class", ref.dotted.rsplit(".", 1)[0], ref.module, ref.node)
    if _enum_kind(packages, owner, 0) is None:
        return _UNKNOWN
    member = ref.dotted.rsplit(".", 1)[-1]
    for stmt in ref.node.body:
        if isinstance(stmt, ast.Assign) and any(isinstance(t, ast.Name) and t.id == member for t in stmt.targets):
            if isinstance(stmt.value, ast.Call) and _is_auto(packages, ref.module, stmt.value):
                return member.lower() if _enum_kind(packages, owner, 0) == "enum.StrEnum" else _UNKNOWN
            return constant(packages, ref.module, stmt.value, depth + 1)
    return _UNKNOWN


def default_of(packages: Packages, module: Module, expr: ast.expr) -> object:
    """A default as fields.json records it: the value, or ``{"python": source}`` when it cannot be read."""
    value = constant(packages, module, expr)
    return _marker(expr) if value is _UNKNOWN else value


def factory_default(packages: Packages, module: Module, expr: ast.expr) -> object:
    """What ``default_factory=expr`` produces: ``list`` -> [], ``lambda: [...]`` -> its value."""
    if isinstance(expr, ast.Lambda) and not expr.args.args:
        return default_of(packages, module, expr.body)
    ref = packages.expression(module, expr)
    if ref is not None and ref.kind == "external":
        made = {"builtins.list": [], "builtins.dict": {}, "builtins.tuple": []}.get(ref.dotted, _UNKNOWN)
        if made is not _UNKNOWN:
            return made
    return {"python": f"<factory {_source(expr)}>"}


def _marker(expr: ast.expr) -> dict:
    return {"python": _source(expr)}


def _source(expr: ast.expr) -> str:
    try:
        return ast.unparse(expr)
    except Exception:  # ast.unparse of an odd tree is no reason to fail
        return "?"


def is_unknown(value: object) -> bool:
    return value is _UNKNOWN
