"""Project defaults from ``[tool.lf-lint]`` in the nearest ``pyproject.toml``.

The table uses the long option names with dashes (``llamafactory-version``, ``fail-on``,
``num-gpus``...). Options given on the command line win over it. Relative paths in it
(``workdir``) are relative to the pyproject.toml that sets them.
"""

from __future__ import annotations

import os
import sys

from .records import Record


class SettingsError(ValueError):
    """A [tool.lf-lint] table lf-lint cannot use (reported as a usage error, exit status 2)."""


# option name in [tool.lf-lint] -> (attribute, expected type)
KNOWN = {
    "select": ("select", list),
    "ignore": ("ignore", list),
    "fail-on": ("fail_on", str),
    "format": ("format", str),
    "llamafactory-version": ("llamafactory_version", str),
    "transformers-version": ("transformers_version", str),
    "torch-version": ("torch_version", str),
    "num-gpus": ("num_gpus", int),
    "nnodes": ("nnodes", int),
    "workdir": ("workdir", str),
    "command": ("command", str),
    "exclude": ("exclude", list),
    "gpu": ("gpu", str),
    "gpu-memory": ("gpu_memory", float),
    "params": ("params", float),
    "accelerate-config": ("accelerate_config", str),
    "env": ("env", list),  # ["USE_MCA=1"], or a table {USE_MCA = "1"}
}


class ProjectSettings(Record):
    path: str | None
    values: dict

    def get(self, attribute: str, default=None):
        return self.values.get(attribute, default)


def find_pyproject(start: str | os.PathLike) -> str | None:
    """The nearest pyproject.toml in ``start`` or a folder above it."""
    directory = os.path.realpath(start)
    while True:
        candidate = os.path.join(directory, "pyproject.toml")
        if os.path.isfile(candidate):
            return candidate
        parent = os.path.dirname(directory)
        if parent == directory:
            return None
        directory = parent


def load_settings(path: str | os.PathLike | None) -> ProjectSettings:
    if path is None:
        return ProjectSettings(None, {})
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"cannot read {path}: {exc}") from exc
    if "lf-lint" not in text:
        return ProjectSettings(path, {})  # no [tool.lf-lint]: skip the TOML parser
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on Python 3.9/3.10
        import tomli as tomllib
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path} is not valid TOML: {exc}") from exc
    table = document.get("tool", {}).get("lf-lint")
    if table is None:
        return ProjectSettings(path, {})
    if not isinstance(table, dict):
        raise SettingsError(f"{path}: [tool.lf-lint] must be a table")
    values = {}
    for key, value in table.items():
        if key not in KNOWN:
            raise SettingsError(f"{path}: unknown option `{key}` in [tool.lf-lint] (known: {', '.join(sorted(KNOWN))})")
        attribute, kind = KNOWN[key]
        if key == "env" and isinstance(value, dict):
            value = [f"{name}={'1' if v is True else '0' if v is False else v}" for name, v in value.items()]
        if kind is list and isinstance(value, str):
            value = [value]
        if kind is str and isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise SettingsError(f"{path}: [tool.lf-lint] `{key}` must be a {kind.__name__}, not {value!r}")
        if attribute in ("workdir", "accelerate_config"):
            value = os.path.realpath(os.path.join(os.path.dirname(path), value))
        values[attribute] = value
    return ProjectSettings(path, values)
