#!/usr/bin/env python
"""Record which model types each transformers release can load: lf_lint/data/model_types.json.

For the first and the last release of every minor version in lf-lint's supported range, downloads the wheel
from PyPI (no dependencies, nothing installed or imported) and reads the keys of ``CONFIG_MAPPING_NAMES`` in
``transformers/models/auto/configuration_auto.py``: the ``model_type`` values ``AutoConfig`` knows without
remote code. Run it when the supported range grows::

    python tools/generate_model_types.py [--cache DIR]

tests/test_groundtruth.py checks the result against the installed transformers of each ground-truth env.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from lf_lint.versions import NEWEST_TRANSFORMERS, OLDEST_TRANSFORMERS, parse_version  # noqa: E402

OUT = ROOT / "lf_lint" / "data" / "model_types.json"
MAPPING_FILE = "transformers/models/auto/configuration_auto.py"


def released_versions() -> list[str]:
    """transformers releases on PyPI within the supported range (final releases only)."""
    out = subprocess.run([sys.executable, "-m", "pip", "index", "versions", "transformers"], capture_output=True,
                         text=True, check=True).stdout  # fmt: skip
    listed = re.search(r"Available versions:\s*(.*)", out).group(1).split(", ")
    low, high = parse_version(OLDEST_TRANSFORMERS), parse_version(NEWEST_TRANSFORMERS)
    return sorted(
        (v for v in listed if re.fullmatch(r"\d+\.\d+\.\d+", v) and low <= parse_version(v) <= high), key=parse_version
    )


def first_and_last_of_each_minor(versions: list[str]) -> list[str]:
    by_minor: dict[tuple, list[str]] = {}
    for v in versions:
        by_minor.setdefault(parse_version(v)[:2], []).append(v)
    return sorted({picked for group in by_minor.values() for picked in (group[0], group[-1])}, key=parse_version)


def _keys(node: ast.AST) -> list[str]:
    """String keys of a mapping literal: a dict, a list of pairs, or ``OrderedDict(...)`` / ``dict(**{...})`` of them."""
    if isinstance(node, ast.Dict):
        return [k.value for k in node.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)]
    if isinstance(node, (ast.List, ast.Tuple)):
        return [e.elts[0].value for e in node.elts if isinstance(e, ast.Tuple) and isinstance(e.elts[0], ast.Constant)]
    if isinstance(node, ast.Call):
        return [key for arg in [*node.args, *(k.value for k in node.keywords)] for key in _keys(arg)]
    return []


def _is_mapping(node: ast.AST) -> bool:
    return getattr(node, "id", None) == "CONFIG_MAPPING_NAMES"


def model_types(wheel: Path) -> list[str]:
    """Keys given to CONFIG_MAPPING_NAMES (assigned or ``.update``d) in the auto config modules: 4.x writes it in
    configuration_auto.py, 5.x in auto_mappings.py and extends it in configuration_auto.py."""
    found: list[str] = []
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        for module in (MAPPING_FILE.replace("configuration_auto", "auto_mappings"), MAPPING_FILE):
            if module not in names:
                continue
            for node in ast.walk(ast.parse(archive.read(module).decode("utf-8"))):
                if isinstance(node, ast.Assign) and any(_is_mapping(t) for t in node.targets):
                    found += _keys(node.value)
                elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                      and node.func.attr == "update" and _is_mapping(node.func.value)):  # fmt: skip
                    found += _keys(node)
    if not found:
        raise ValueError(f"no CONFIG_MAPPING_NAMES in {wheel.name}")
    return sorted(set(found))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=Path("/tmp/lf-lint-transformers-wheels"))
    args = parser.parse_args()
    checked = first_and_last_of_each_minor(released_versions())
    seen: dict[str, list[str]] = {}
    for version in checked:
        folder = args.cache / version
        if not list(folder.glob("*.whl")):
            subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", f"transformers=={version}",
                            "-d", str(folder)], check=True)  # fmt: skip
        for model_type in model_types(next(folder.glob("*.whl"))):
            seen.setdefault(model_type, []).append(version)
    newest = checked[-1]
    table = {
        name: {"since": versions[0], **({"until": versions[-1]} if versions[-1] != newest else {})}
        for name, versions in sorted(seen.items())
    }
    OUT.write_text(json.dumps({
        "about": "model_type values transformers' AutoConfig knows (CONFIG_MAPPING_NAMES), by release: the first "
                 "checked release that has it and, if it was removed, the last. Written by tools/generate_model_types.py.",
        "checked": checked,
        "model_types": table,
    }, indent=1) + "\n")  # fmt: skip
    print(f"{len(table)} model types from {len(checked)} releases -> {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
