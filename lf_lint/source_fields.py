"""The argument dataclasses of an installed LLaMA-Factory or transformers, read from their source files.

They import torch, so they are never imported: the modules are parsed (pysource.py) and each
dataclass's fields are collected as ``dataclasses.fields`` would (bases in method resolution order,
ClassVar/InitVar/KW_ONLY pseudo-fields left out, ``init=False`` fields kept and marked), each with
the JSON types, choices, default and help tools/extract_fields.py records for fields.json.

``read_llamafactory`` gives the fields of LLaMA-Factory's argument groups (the classes of
``llamafactory.hparams`` and those hparams/parser.py lists in ``_TRAIN_ARGS``, ``_INFER_ARGS``, ...),
following its ``TrainingArguments`` into the installed transformers; ``read_transformers`` those of
``Seq2SeqTrainingArguments``. What cannot be read becomes a problem in the result, never an exception.
"""

from __future__ import annotations

import ast
import re
import sys
from typing import NamedTuple

from .pysource import Packages, Ref, bindings
from .source_types import default_of, factory_default, json_shape

# The groups every release has, and what each command parses when hparams/parser.py does not say.
DEFAULT_COMMANDS = {
    "train": ("ModelArguments", "DataArguments", "TrainingArguments", "FinetuningArguments", "GeneratingArguments"),
    "infer": ("ModelArguments", "DataArguments", "FinetuningArguments", "GeneratingArguments"),
}
PARSER_LISTS = {"train": "_TRAIN_ARGS", "infer": "_INFER_ARGS"}
_PSEUDO_FIELDS = {"typing.ClassVar", "typing_extensions.ClassVar", "dataclasses.InitVar", "dataclasses.KW_ONLY"}


class SourceRead(NamedTuple):
    """What was read: each argument group (a class, named as fields.json names it) and its fields."""

    distribution: str
    groups: dict  # group -> {name: row}; a row has owner, defined_in, type, json_types, choices, default, help, init
    commands: dict  # command -> [group, ...] it parses
    complete: bool  # every class and base of the distribution's own was found: a field not listed does not exist
    problems: tuple  # what could not be read, in words
    files: dict  # path -> [mtime_ns, size] of every file parsed

    def to_json(self) -> dict:
        return dict(self._asdict(), problems=list(self.problems))


class DataclassReader:
    def __init__(self, packages: Packages):
        self.packages = packages
        self.gaps: list[str] = []  # dotted names of bases that could not be read
        self.missing_groups = False
        self._mro: dict[str, list[Ref]] = {}
        self._fields: dict[str, dict] = {}
        self._annotated: dict[str, set[str]] = {}

    def mro(self, ref: Ref) -> list[Ref]:
        if ref.dotted in self._mro:
            return self._mro[ref.dotted]
        self._mro[ref.dotted] = [ref]  # a class that inherits from itself stops here
        if ref.kind != "class":
            return [ref]
        bases = [self._base(ref, expr) for expr in ref.node.bases]
        merged = _c3([self.mro(b) for b in bases] + [bases])
        if merged is None:  # Python would refuse the class; keep the bases in depth-first order
            merged = [r for b in bases for r in self.mro(b)]
        self._mro[ref.dotted] = [ref, *merged]
        return self._mro[ref.dotted]

    def _base(self, ref: Ref, expr: ast.expr) -> Ref:
        target = expr.value if isinstance(expr, ast.Subscript) else expr  # Generic[T]
        found = self.packages.expression(ref.module, target)
        if found is None or found.kind in ("missing", "value", "module", "attribute"):
            name = found.dotted if found is not None else f"{ref.dotted}(<{_unparse(expr)}>)"
            self.gaps.append(name)
            return Ref("missing", name)
        if found.kind == "external" and not _fieldless(found.dotted):
            self.gaps.append(found.dotted)  # a class of a package not read (mcore_adapter): its fields are unknown
        return found

    def is_dataclass(self, ref: Ref) -> bool:
        if ref.kind != "class":
            return False
        for decorator in ref.node.decorator_list:
            target = decorator.func if isinstance(decorator, ast.Call) else decorator
            found = self.packages.expression(ref.module, target)
            if found is not None and found.dotted == "dataclasses.dataclass":
                return True
        return False

    def fields(self, ref: Ref) -> dict[str, tuple[Ref, ast.AnnAssign]]:
        """name -> (the class whose definition wins, its annotated assignment), as ``dataclasses`` collects them."""
        if ref.dotted in self._fields:
            return self._fields[ref.dotted]
        self._fields[ref.dotted] = {}
        found: dict = {}
        for base in reversed(self.mro(ref)[1:]):
            nearest = next((c for c in self.mro(base) if self.is_dataclass(c)), None)
            if nearest is not None:
                found.update(self.fields(nearest))
        if self.is_dataclass(ref):
            for stmt in _annotated(ref.node.body):
                if self._pseudo(ref, stmt.annotation):
                    found.pop(stmt.target.id, None)
                else:
                    found[stmt.target.id] = (ref, stmt)
        self._fields[ref.dotted] = found
        return found

    def _pseudo(self, ref: Ref, annotation: ast.expr) -> bool:
        if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
            try:
                annotation = ast.parse(annotation.value, mode="eval").body
            except (SyntaxError, ValueError, RecursionError):
                return False
        head = annotation.value if isinstance(annotation, ast.Subscript) else annotation
        found = self.packages.expression(ref.module, head)
        return found is not None and found.dotted in _PSEUDO_FIELDS

    def defined_in(self, ref: Ref, name: str) -> Ref:
        """The first class in the MRO that annotates ``name`` (extract_fields.py's ``_defined_in``)."""
        for cls in self.mro(ref):
            if cls.kind != "class":
                continue
            if cls.dotted not in self._annotated:
                self._annotated[cls.dotted] = {s.target.id for s in _annotated(cls.node.body)}
            if name in self._annotated[cls.dotted]:
                return cls
        return ref

    def rows(self, ref: Ref, group: str) -> dict[str, dict]:
        rows = {}
        for name, (cls, stmt) in self.fields(ref).items():
            owner = self.defined_in(ref, name)
            rows[name] = {"group": group, "owner": owner.dotted.split(".")[0], "defined_in": owner.dotted,
                          **_describe(self.packages, cls, stmt)}  # fmt: skip
        return rows


def _describe(packages: Packages, cls: Ref, stmt: ast.AnnAssign) -> dict:
    try:
        json_types, choices = json_shape(packages, cls.module, stmt.annotation)
    except RecursionError:
        json_types, choices = None, None
    default: object = {"required": True}
    init, help_text = True, None
    value, factory = stmt.value, None
    if isinstance(value, ast.Call) and _is_field_call(packages, cls, value):
        keywords = {k.arg: k.value for k in value.keywords if k.arg}
        value, factory = keywords.get("default"), keywords.get("default_factory")
        if isinstance(keywords.get("init"), ast.Constant) and keywords["init"].value is False:
            init = False
        help_text = _help(packages, cls, keywords.get("metadata"))
    if value is not None:
        default = _default(packages, cls, value)
    elif factory is not None:
        default = factory_default(packages, cls.module, factory)
    return {"type": _unparse(stmt.annotation), "json_types": json_types, "choices": choices,
            "default": default, "help": help_text, "init": init}  # fmt: skip


def _default(packages: Packages, cls: Ref, expr: ast.expr) -> object:
    """A default; a bare name is looked up in the class body first (transformers' ``default=default_optim``)."""
    if isinstance(expr, ast.Name):
        local = bindings(cls.node.body).get(expr.id)
        if local is not None and local[0] == "value":
            expr = local[1]
    return default_of(packages, cls.module, expr)


def _is_field_call(packages: Packages, cls: Ref, call: ast.Call) -> bool:
    found = packages.expression(cls.module, call.func)
    return found is not None and found.dotted == "dataclasses.field"


def _help(packages: Packages, cls: Ref, metadata: ast.expr | None) -> str | None:
    entries: dict = {}
    if isinstance(metadata, ast.Dict):
        entries = {k.value: v for k, v in zip(metadata.keys, metadata.values) if isinstance(k, ast.Constant)}
    elif isinstance(metadata, ast.Call) and isinstance(metadata.func, ast.Name) and metadata.func.id == "dict":
        entries = {k.arg: k.value for k in metadata.keywords if k.arg}
    if "help" not in entries:
        return None
    text = default_of(packages, cls.module, entries["help"])
    return text if isinstance(text, str) else None


def _annotated(body: list[ast.stmt]):
    """The class body's annotated names, also those under an ``if``/``try`` in it."""
    for stmt in body:
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            yield stmt
        elif isinstance(stmt, ast.If):
            yield from _annotated(stmt.body)
            yield from _annotated(stmt.orelse)
        elif isinstance(stmt, ast.Try):
            yield from _annotated(stmt.body)
            for handler in stmt.handlers:
                yield from _annotated(handler.body)


def _c3(sequences: list[list[Ref]]) -> list[Ref] | None:
    """C3 linearisation (Python's method resolution order) of the bases' own orders."""
    seqs = [list(s) for s in sequences if s]
    result: list[Ref] = []
    while seqs:
        for seq in seqs:
            head = seq[0]
            if not any(head.dotted in (r.dotted for r in other[1:]) for other in seqs):
                break
        else:
            return None
        result.append(head)
        seqs = [[r for r in s if r.dotted != head.dotted] for s in seqs]
        seqs = [s for s in seqs if s]
    return result


_STDLIB_FALLBACK = frozenset({"builtins", "typing", "typing_extensions", "enum", "abc", "collections", "dataclasses"})


def _fieldless(dotted: str) -> bool:
    """Bases from the standard library (object, Enum, Generic, ABC) add no dataclass fields."""
    top = dotted.split(".")[0]
    return top in getattr(sys, "stdlib_module_names", _STDLIB_FALLBACK) or top == "typing_extensions"


def _unparse(expr: ast.expr) -> str:
    try:
        return ast.unparse(expr)
    except Exception:  # an odd tree is no reason to fail
        return "?"


# ---------------------------------------------------------------- the two distributions


def read_llamafactory(roots: list[str]) -> SourceRead:
    packages = Packages(roots, ("llamafactory", "transformers"))
    if packages.package_dir("llamafactory") is None:
        return SourceRead("llamafactory", {}, {}, False, ("the llamafactory package was not found",), {})
    reader = DataclassReader(packages)
    hparams = packages.module_ref("llamafactory.hparams")
    parser = packages.module("llamafactory.hparams.parser")
    listed = _parser_lists(packages, parser)
    commands = {command: [g for g, _ in listed.get(name) or []] or list(DEFAULT_COMMANDS[command])
                for command, name in PARSER_LISTS.items()}  # fmt: skip
    found = {group: ref for classes in listed.values() for group, ref in classes if ref.kind == "class"}
    required = {name: found.get(name) or packages.member(hparams, name) for name in DEFAULT_COMMANDS["train"]}
    optional = {group: ref for classes in listed.values() for group, ref in classes if group not in required}
    groups, problems = {}, []
    for group, ref in [*required.items(), *optional.items()]:
        if reader.is_dataclass(ref):
            groups[group] = reader.rows(ref, group)
        elif group in required or ref.dotted.split(".")[0] == "llamafactory":
            problems.append(f"{group} was not found as a dataclass ({ref.dotted})")
            reader.missing_groups = True
    return _result("llamafactory", packages, reader, groups, commands, problems)


def read_transformers(roots: list[str]) -> SourceRead:
    packages = Packages(roots, ("transformers",))
    if packages.package_dir("transformers") is None:
        return SourceRead("transformers", {}, {}, False, ("the transformers package was not found",), {})
    reader = DataclassReader(packages)
    ref = packages.member(packages.module_ref("transformers.training_args_seq2seq"), "Seq2SeqTrainingArguments")
    groups, problems = {}, []
    if reader.is_dataclass(ref):
        groups["TrainingArguments"] = reader.rows(ref, "TrainingArguments")
    else:
        problems.append(f"Seq2SeqTrainingArguments was not found as a dataclass ({ref.dotted})")
        reader.missing_groups = True
    return _result("transformers", packages, reader, groups, {"train": ["TrainingArguments"], "infer": []}, problems)


def _parser_lists(packages: Packages, parser) -> dict[str, list[tuple[str, Ref]]]:
    """hparams/parser.py's ``_TRAIN_ARGS = [ModelArguments, ...]`` and the like: list name -> [(group, class)].
    A group is named by its class without leading underscores (``_KTransformersRuntimeArguments``)."""
    found = {}
    for name, binding in parser.bindings.items() if parser is not None else ():
        if not re.fullmatch(r"_[A-Z0-9_]*ARGS", name) or binding[0] != "value":
            continue
        if isinstance(binding[1], (ast.List, ast.Tuple)):
            found[name] = [(e.id.lstrip("_"), packages.resolve(parser, e.id))
                           for e in binding[1].elts if isinstance(e, ast.Name)]  # fmt: skip
    return found


def _result(distribution: str, packages: Packages, reader: DataclassReader, groups, commands, problems) -> SourceRead:
    # Another distribution's gaps (transformers not installed beside LLaMA-Factory) cost only its own fields.
    own_gaps = [g for g in reader.gaps if g.split(".")[0] == distribution or not packages.followed(g)]
    problems = list(dict.fromkeys([*packages.problems, *problems,
                                   *(f"{g} could not be read" for g in dict.fromkeys(reader.gaps))]))  # fmt: skip
    files = {path: list(stat) for path, stat in packages.files.items()}
    complete = not own_gaps and not reader.missing_groups
    return SourceRead(distribution, groups, commands, complete, tuple(problems), files)
