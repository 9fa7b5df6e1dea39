"""Where an installed top-level package's folder is, found as the import system would find it (nothing imported)."""

from __future__ import annotations

import os
from pathlib import Path


def find_package_dir(top: str, roots: list[str]) -> Path | None:
    """The directory of an installed top-level package, as the import system would find it: the first
    ``sys.path`` entry holding ``top/__init__.py``, else a setuptools editable install's path mapping."""
    for root in roots:
        candidate = Path(root) / top
        if (candidate / "__init__.py").is_file():
            return candidate
    for root in roots:
        mapped = _editable_mapping(root, top)
        if mapped is not None:
            return mapped
    return None


def _editable_mapping(root: str, top: str) -> Path | None:
    """setuptools' editable installs map packages to folders in ``__editable___*_finder.py`` (``MAPPING``)."""
    try:
        names = [n for n in os.listdir(root) if n.startswith("__editable__") and n.endswith("_finder.py")]
    except OSError:
        return None
    if not names:
        return None
    import ast  # only for these files: the common path stays free of parsing

    from .pysource import bindings

    for name in names:
        try:
            tree = ast.parse(Path(root, name).read_bytes())
        except (OSError, SyntaxError, ValueError, RecursionError):
            continue
        binding = bindings(tree.body).get("MAPPING")
        if binding is None or binding[0] != "value":
            continue
        try:
            mapping = ast.literal_eval(binding[1])
        except (ValueError, TypeError, SyntaxError, RecursionError):
            continue
        folder = mapping.get(top) if isinstance(mapping, dict) else None
        if isinstance(folder, str) and Path(folder, "__init__.py").is_file():
            return Path(folder)
    return None
