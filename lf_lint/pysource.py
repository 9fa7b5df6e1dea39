"""A static view of installed Python packages: modules found on ``sys.path`` and parsed with ``ast``.

Names are followed through ``import`` statements into other modules of the packages being read
(``from .model_args import ModelArguments``, ``from transformers import Seq2SeqTrainingArguments``);
nothing is imported or executed. Anything outside those packages (the standard library, torch)
stays a dotted name such as ``typing.Optional`` or ``torch.dtype``.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import NamedTuple

from .package_dirs import find_package_dir


class Ref(NamedTuple):
    """What a name stands for.

    ``kind`` is "class" (``node`` is its ClassDef), "attribute" (a name in a class body, such as an
    enum member; ``node`` is the class), "module", "value" (``node`` is the assigned expression or
    function), "external" (outside the packages being read: ``dotted`` is all there is) or "missing"
    (inside them, but not found).
    """

    kind: str
    dotted: str
    module: Module | None = None
    node: ast.AST | None = None


class Module:
    def __init__(self, name: str, path: Path, is_package: bool, tree: ast.Module):
        self.name = name
        self.path = path
        self.is_package = is_package
        self.tree = tree
        self.bindings = bindings(tree.body)

    def absolute(self, target: str | None, level: int) -> str:
        """The absolute module name of a (possibly relative) ``from`` import."""
        if not level:
            return target or ""
        parts = self.name.split(".")
        keep = len(parts) - level + (1 if self.is_package else 0)
        base = ".".join(parts[: max(keep, 0)])
        return f"{base}.{target}" if target and base else (target or base)


def bindings(body: list[ast.stmt]) -> dict[str, tuple]:
    """Module-level names and what binds them. Later statements win, so in ``if X: A = m else: A = n``
    the ``else`` branch (the usual, non-optional path) wins; in ``try/except ImportError`` the ``try``
    body wins over its fallback."""
    found: dict[str, tuple] = {}
    for stmt in body:
        if isinstance(stmt, ast.ClassDef):
            found[stmt.name] = ("class", stmt)
        elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found[stmt.name] = ("function", stmt)
        elif isinstance(stmt, ast.ImportFrom):
            for alias in stmt.names:
                if alias.name != "*":
                    found[alias.asname or alias.name] = ("from", stmt.module, stmt.level, alias.name)
        elif isinstance(stmt, ast.Import):
            for alias in stmt.names:
                if alias.asname:
                    found[alias.asname] = ("import", alias.name)
                else:
                    top = alias.name.split(".")[0]
                    found[top] = ("import", top)
        elif isinstance(stmt, ast.Assign):
            for target in stmt.targets:
                if isinstance(target, ast.Name):
                    found[target.id] = ("value", stmt.value)
        elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value is not None:
            found[stmt.target.id] = ("value", stmt.value)
        elif isinstance(stmt, ast.If):
            found.update(bindings(stmt.body))
            found.update(bindings(stmt.orelse))
        elif isinstance(stmt, ast.Try):
            main = bindings(stmt.body)
            for handler in stmt.handlers:
                for name, binding in bindings(handler.body).items():
                    main.setdefault(name, binding)
            found.update(main)
            found.update(bindings(stmt.orelse))
            found.update(bindings(stmt.finalbody))
    return found


MAX_DEPTH = 40  # import chains and aliases deeper than this are given up on


class Packages:
    """Modules of some top-level packages, found on ``roots`` (sys.path entries) and parsed on demand."""

    def __init__(self, roots: list[str], packages: tuple[str, ...]):
        self.roots = [r or "." for r in roots]
        self.packages = packages
        self.files: dict[str, tuple[int, int]] = {}  # every file read: path -> (mtime_ns, size)
        self.problems: list[str] = []
        self._dirs: dict[str, Path | None] = {}
        self._modules: dict[str, Module | None] = {}

    def package_dir(self, top: str) -> Path | None:
        if top not in self._dirs:
            self._dirs[top] = find_package_dir(top, self.roots)
        return self._dirs[top]

    def module(self, name: str) -> Module | None:
        if name not in self._modules:
            self._modules[name] = self._load(name)
        return self._modules[name]

    def _load(self, name: str) -> Module | None:
        top, *rest = name.split(".")
        if top not in self.packages:
            return None
        base = self.package_dir(top)
        if base is None:
            return None
        folder = base.joinpath(*rest)
        candidates = [(folder / "__init__.py", True)] + ([(folder.with_suffix(".py"), False)] if rest else [])
        for path, is_package in candidates:
            if path.is_file():
                return self._parse(name, path, is_package)
        return None

    def _parse(self, name: str, path: Path, is_package: bool) -> Module | None:
        try:
            stat = path.stat()
            self.files[str(path)] = (stat.st_mtime_ns, stat.st_size)
            tree = ast.parse(path.read_bytes(), filename=str(path))
        except (OSError, SyntaxError, ValueError, RecursionError, MemoryError) as exc:
            self.problems.append(f"{name} ({path.name}) cannot be read: {_reason(exc)}")
            return None
        return Module(name, path, is_package, tree)

    def followed(self, dotted: str) -> bool:
        return dotted.split(".")[0] in self.packages

    # ---- names

    def resolve(self, module: Module, name: str, depth: int = 0) -> Ref:
        """What ``name`` stands for at the top level of ``module``."""
        binding = module.bindings.get(name)
        if depth > MAX_DEPTH:
            return Ref("missing", f"{module.name}.{name}")
        if binding is None:
            return Ref("external", f"builtins.{name}")
        kind = binding[0]
        if kind == "class":
            return Ref("class", f"{module.name}.{name}", module, binding[1])
        if kind == "function":
            return Ref("value", f"{module.name}.{name}", module, binding[1])
        if kind == "import":
            return self.module_ref(binding[1])
        if kind == "from":
            source = module.absolute(binding[1], binding[2])
            return self.member(self.module_ref(source), binding[3], depth + 1)
        value = binding[1]
        if isinstance(value, (ast.Name, ast.Attribute)):  # an alias: Base = Seq2SeqTrainingArguments
            return self.expression(module, value, depth + 1) or Ref("value", f"{module.name}.{name}", module, value)
        return Ref("value", f"{module.name}.{name}", module, value)

    def module_ref(self, dotted: str) -> Ref:
        if not self.followed(dotted):
            return Ref("external", dotted)
        found = self.module(dotted)
        return Ref("module", dotted, found) if found is not None else Ref("missing", dotted)

    def member(self, ref: Ref, name: str, depth: int = 0) -> Ref:
        """``ref.name``: a module's name or submodule, a class's attribute, an external's dotted name."""
        dotted = f"{ref.dotted}.{name}"
        if ref.kind == "module" and ref.module is not None:
            if name in ref.module.bindings:
                return self.resolve(ref.module, name, depth)
            if ref.module.is_package:
                sub = self.module_ref(dotted)
                if sub.kind == "module":
                    return sub
            return Ref("missing", dotted)
        if ref.kind == "class":
            return Ref("attribute", dotted, ref.module, ref.node)
        return Ref(ref.kind if ref.kind in ("external", "missing") else "missing", dotted)

    def expression(self, module: Module, expr: ast.expr, depth: int = 0) -> Ref | None:
        """What a Name or dotted Attribute expression stands for (None for other expressions)."""
        if isinstance(expr, ast.Name):
            return self.resolve(module, expr.id, depth)
        if isinstance(expr, ast.Attribute):
            base = self.expression(module, expr.value, depth + 1)
            return None if base is None else self.member(base, expr.attr, depth + 1)
        return None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError):
        return f"{exc.msg} at line {exc.lineno}"
    return f"{type(exc).__name__}: {exc}"
