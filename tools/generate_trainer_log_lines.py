#!/usr/bin/env python
"""Record where each release logs the Trainer's start-up block: lf_lint/data/trainer_log_lines.json.

LLaMA-Factory turns on transformers' explicit log format (``[INFO|trainer.py:2406] <time> >> ...``), so a pasted
start-up block carries the line numbers of its ``logger.info`` calls, and those pin the transformers release.
For every final transformers release from lf-lint's oldest supported one through the 5.8 series (yanked ones
too: people installed them before they were yanked), this script downloads the wheel from PyPI (no
dependencies, nothing installed or imported), finds the function that logs ``***** Running training *****``
and records the line of each of the block's ``logger.info`` calls. Releases with identical tables are stored once.

LLaMA-Factory's PPO trainer logs its block through ``logger.info_rank0``, a function its extras/logging.py
attaches to ``logging.Logger``; the record's file and line are that function's ``self.info(...)`` call
(``logging.py:157`` or ``llamafactory.train.ppo.trainer:157`` in 0.9.2), the same for every line of the
block, never trainer.py. That line is recorded per LLaMA-Factory release.

    python tools/generate_trainer_log_lines.py [--cache DIR]
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import subprocess
import sys
import urllib.request
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from lf_lint.versions import OLDEST_TRANSFORMERS, SUPPORTED_LLAMAFACTORY, parse_version  # noqa: E402

OUT = ROOT / "lf_lint" / "data" / "trainer_log_lines.json"
NEWEST_SERIES = (5, 8)  # two minor series past lf-lint's newest supported release, for logs of newer installs
HEADER = "***** Running training *****"
# the start of each message's static text -> the key lf_lint/startup_log.py reads it under
MESSAGES = {
    HEADER: "header",
    "  Num examples = ": "num_examples",
    "  Num Epochs = ": "num_epochs",
    "  Num update steps per epoch = ": "update_steps_per_epoch",
    "  Instantaneous batch size per device = ": "per_device",
    "  Training with DataParallel so batch size has been adjusted to: ": "data_parallel",
    "  Total train batch size (w. parallel, distributed & accumulation) = ": "total_batch",
    "  Gradient Accumulation steps = ": "accumulation",
    "  Total optimization steps = ": "total_steps",
    "  Number of trainable parameters = ": "trainable_params",
}
ALWAYS = {"header", "num_examples", "num_epochs", "per_device", "total_batch", "accumulation", "total_steps"}


def releases(package: str) -> list[str]:
    """Final releases of a package on PyPI, oldest first (the JSON API lists yanked ones too)."""
    with urllib.request.urlopen(f"https://pypi.org/pypi/{package}/json", timeout=60) as response:
        listed = json.load(response)["releases"]
    return sorted((v for v, files in listed.items() if files and re.fullmatch(r"\d+\.\d+\.\d+", v)), key=parse_version)


def wheel(package: str, version: str, cache: Path) -> Path:
    folder = cache / package / version
    if not list(folder.glob("*.whl")):
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary", ":all:",
                        f"{package}=={version}", "-d", str(folder)], check=True)  # fmt: skip
    return next(folder.glob("*.whl"))


def _static_text(node: ast.expr) -> str | None:
    """The literal text of a str or f-string argument, its replacement fields left out."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        text = ""
        for part in node.values:
            if not (isinstance(part, ast.Constant) and isinstance(part.value, str)):
                break  # only the text before the first replacement field names the message
            text += part.value
        return text
    return None


def _logged(function: ast.AST, method: str) -> list[tuple[str, ast.Call]]:
    found = []
    for node in ast.walk(function):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == method
                and getattr(node.func.value, "id", None) == "logger" and node.args):  # fmt: skip
            text = _static_text(node.args[0])
            if text is not None:
                found.append((text, node))
    return found


def block_lines(source: str, where: str) -> dict[str, int] | None:
    """Key -> line of the block's logger.info calls, from the function that logs the header; None if none does."""
    tree = ast.parse(source)
    functions = [f for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))]
    owners = [f for f in functions if any(text == HEADER for text, _ in _logged(f, "info"))]
    if not owners:
        return None
    owner = min(owners, key=lambda f: f.end_lineno - f.lineno)  # the innermost function, not a class around it
    lines: dict[str, int] = {}
    for text, call in _logged(owner, "info"):
        key = next((k for prefix, k in MESSAGES.items() if text.startswith(prefix)), None)
        if key is None:
            continue
        if key in lines:
            raise ValueError(f"{where}: {key} is logged twice in {owner.name}")
        if call.end_lineno != call.lineno:
            raise ValueError(f"{where}:{call.lineno}: a call over several lines; which line does logging report?")
        lines[key] = call.lineno
    if not set(lines) >= ALWAYS:
        raise ValueError(f"{where}: {owner.name} logs no {sorted(ALWAYS - set(lines))}")
    return dict(sorted(lines.items(), key=lambda item: item[1]))


def transformers_table(path: Path) -> dict:
    """{"file": basename, "lines": {...}} for the one module of the wheel that logs the block."""
    found = []
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            if name.startswith("transformers/") and name.endswith(".py"):
                source = archive.read(name).decode("utf-8")
                if HEADER in source and (lines := block_lines(source, f"{path.name}:{name}")):
                    found.append({"file": name.rsplit("/", 1)[-1], "lines": lines})
    if len(found) != 1:
        raise ValueError(f"{path.name}: {len(found)} modules log the start-up block")
    return found[0]


def package_reader(path: Path):
    """A function reading a file of the package by its path inside it: from a wheel, or from a checkout's
    ``src`` folder (a release not on PyPI, such as main)."""
    if path.is_dir():
        return lambda name: (path / name).read_text(encoding="utf-8")

    def read(name: str) -> str:
        with zipfile.ZipFile(path) as archive:
            return archive.read(name).decode("utf-8")

    return read


def ppo_line(path: Path) -> int:
    """The line of ``self.info`` in extras/logging.py's info_rank0, checked to be what the PPO trainer calls."""
    read = package_reader(path)
    trainer = read("llamafactory/train/ppo/trainer.py")
    helpers = ast.parse(read("llamafactory/extras/logging.py"))
    if not any(text == HEADER for text, _ in _logged(ast.parse(trainer), "info_rank0")):
        raise ValueError(f"{path.name}: the PPO trainer no longer logs its header through logger.info_rank0")
    patched = any(isinstance(node, ast.Assign) and ast.unparse(node).replace(" ", "") == "logging.Logger.info_rank0=info_rank0"
                  for node in helpers.body)  # fmt: skip
    function = next((f for f in helpers.body if isinstance(f, ast.FunctionDef) and f.name == "info_rank0"), None)
    if not patched or function is None:
        raise ValueError(f"{path.name}: extras/logging.py no longer attaches info_rank0 to logging.Logger")
    calls = [n for n in ast.walk(function) if isinstance(n, ast.Call) and ast.unparse(n.func) == "self.info"]
    if len(calls) != 1:
        raise ValueError(f"{path.name}: info_rank0 calls self.info {len(calls)} times")
    return calls[0].lineno


def grouped(per_release: dict[str, object]) -> list[dict]:
    """Releases with an identical value share one entry, in release order of the first of each group."""
    groups: list[dict] = []
    for version, value in per_release.items():
        group = next((g for g in groups if g["value"] == value), None)
        if group is None:
            groups.append(group := {"releases": [], "value": value})
        group["releases"].append(version)
    return groups


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=Path("/tmp/lf-lint-wheels"))
    parser.add_argument("--llamafactory-source", action="append", default=[], metavar="VERSION=DIR",
                        help="the `src` folder of a LLaMA-Factory checkout for a release not on PyPI (main)")  # fmt: skip
    args = parser.parse_args()
    sources = dict(item.split("=", 1) for item in args.llamafactory_source)
    low = parse_version(OLDEST_TRANSFORMERS)
    versions = [
        v for v in releases("transformers") if low <= parse_version(v) and parse_version(v)[:2] <= NEWEST_SERIES
    ]
    tables = {v: transformers_table(wheel("transformers", v, args.cache)) for v in versions}
    ppo = {v: ppo_line(Path(sources[v]) if v in sources else wheel("llamafactory", v, args.cache))
           for v in SUPPORTED_LLAMAFACTORY}  # fmt: skip
    data = {
        "about": "Line of each logger.info call of the Trainer's start-up block, per transformers release, read from "
        "the wheels on PyPI; releases with the same lines share an entry. llamafactory_ppo: the line every message of "
        "LLaMA-Factory's PPO block shows (info_rank0 in extras/logging.py). "
        "Written by tools/generate_trainer_log_lines.py.",
        "transformers": [{"releases": g["releases"], **g["value"]} for g in grouped(tables)],
        "llamafactory_ppo": [
            {
                "releases": g["releases"],
                "file": "logging.py",
                "module": "llamafactory.train.ppo.trainer",
                "line": g["value"],
            }
            for g in grouped(ppo)
        ],
    }
    # one entry per line: the file stays short enough to read and to diff
    text = "{\n" + ",\n".join(
        f" {json.dumps(key)}: " + (json.dumps(value) if isinstance(value, str) else
                                  "[\n" + ",\n".join(f"  {json.dumps(entry)}" for entry in value) + "\n ]")
        for key, value in data.items()
    ) + "\n}"  # fmt: skip
    OUT.write_text(text + "\n", encoding="utf-8")
    print(f"{len(versions)} transformers releases ({versions[0]}-{versions[-1]}) in {len(data['transformers'])} tables, "
          f"{len(ppo)} LLaMA-Factory releases in {len(data['llamafactory_ppo'])} -> {OUT.relative_to(ROOT)}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
