"""Resolve dataset names the way LLaMA-Factory does: through ``<dataset_dir>/dataset_info.json``.

Mirrors data/parser.py (``DatasetAttr``, ``get_dataset_list``), identical in 0.9.2-0.9.5 apart
from the ``openai`` formatting (0.9.4+) and ``cloud_file_name`` (0.9.3+). A ``columns`` or
``tags`` block replaces *every* column or tag it does not list with None, not with the default.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import NamedTuple

DATA_CONFIG = "dataset_info.json"
COLUMN_NAMES = (
    "prompt",
    "query",
    "response",
    "history",
    "messages",
    "system",
    "tools",
    "images",
    "videos",
    "audios",
    "chosen",
    "rejected",
    "kto_tag",
)
TAG_NAMES = ("role_tag", "content_tag", "user_tag", "assistant_tag", "observation_tag", "function_tag", "system_tag")
DEFAULT_COLUMNS = {"prompt": "instruction", "query": "input", "response": "output", "messages": "conversations"}
DEFAULT_TAGS = {
    "role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt",
    "observation_tag": "observation", "function_tag": "function_call", "system_tag": "system",
}  # fmt: skip
KNOWN_ENTRY_KEYS = {
    "hf_hub_url", "ms_hub_url", "om_hub_url", "script_url", "cloud_file_name", "file_name", "formatting", "ranking",
    "subset", "split", "folder", "num_samples", "columns", "tags",
}  # fmt: skip


class DatasetAttr(NamedTuple):
    """One registry entry as LLaMA-Factory reads it."""

    name: str  # the name used in `dataset:`
    load_from: str  # "file", "hf_hub", "ms_hub", "om_hub", "script", "cloud_file"
    dataset_name: str  # file_name, hub id, script or cloud path
    formatting: str = "alpaca"
    ranking: bool = False
    subset: str | None = None
    split: str = "train"
    folder: str | None = None
    num_samples: int | None = None
    columns: dict = {}  # column role -> column name (None: not used)
    tags: dict = {}
    entry: dict = {}  # the raw registry entry

    def column(self, role: str) -> str | None:
        return self.columns.get(role)

    def tag(self, role: str) -> str | None:
        return self.tags.get(role)


class Registry(NamedTuple):
    """The registry found for a config: where it is, what it holds, or why it could not be read."""

    path: Path | None  # dataset_info.json (None: ONLINE, or a REMOTE registry that lf-lint does not download)
    entries: dict | None
    mode: str  # "local", "online", "remote"
    problem: str | None = None


def dataset_dir_path(dataset_dir: str, workdir: str | os.PathLike) -> Path:
    return Path(workdir, os.path.expanduser(dataset_dir))  # an absolute dataset_dir stays as it is


def read_registry(dataset_dir: object, workdir: str | os.PathLike) -> Registry:
    if isinstance(dataset_dir, dict):
        return Registry(None, dataset_dir, "local")
    dataset_dir = str(dataset_dir if dataset_dir is not None else "data")
    if dataset_dir == "ONLINE":
        return Registry(None, None, "online")
    if dataset_dir.startswith("REMOTE:"):
        return Registry(None, None, "remote", f"the registry is downloaded from the hub dataset {dataset_dir[7:]}")
    path = dataset_dir_path(dataset_dir, workdir) / DATA_CONFIG
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Registry(
            path, None, "local", f"Cannot open {path} due to [Errno 2] No such file or directory: '{path}'."
        )
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return Registry(path, None, "local", f"Cannot open {path} due to {exc}.")
    try:
        entries = json.loads(text)
    except json.JSONDecodeError as exc:
        return Registry(
            path, None, "local", f"{path} is not valid JSON ({exc.msg}, line {exc.lineno} column {exc.colno})"
        )
    if not isinstance(entries, dict):
        return Registry(path, None, "local", f"{path} must hold a JSON object of dataset entries")
    return Registry(path, entries, "local")


class Resolved(NamedTuple):
    name: str
    attr: DatasetAttr | None
    problem: str | None = None  # LLaMA-Factory's error for this name


def attr_from_entry(name: str, entry: dict, *, formats: tuple[str, ...]) -> Resolved:
    """``get_dataset_list`` for one registered name."""
    if not isinstance(entry, dict):
        return Resolved(name, None, f"the entry of {name} in {DATA_CONFIG} must be a JSON object")
    if "hf_hub_url" in entry or "ms_hub_url" in entry or "om_hub_url" in entry:
        # USE_MODELSCOPE_HUB / USE_OPENMIND_HUB pick the other hubs first; lf-lint models the HF default
        if "ms_hub_url" in entry and ("hf_hub_url" not in entry or _env("USE_MODELSCOPE_HUB")):
            load_from, dataset_name = "ms_hub", entry["ms_hub_url"]
        elif "om_hub_url" in entry and ("hf_hub_url" not in entry or _env("USE_OPENMIND_HUB")):
            load_from, dataset_name = "om_hub", entry["om_hub_url"]
        else:
            load_from, dataset_name = "hf_hub", entry["hf_hub_url"]
    elif "script_url" in entry:
        load_from, dataset_name = "script", entry["script_url"]
    elif "cloud_file_name" in entry:
        load_from, dataset_name = "cloud_file", entry["cloud_file_name"]
    elif "file_name" in entry:
        load_from, dataset_name = "file", entry["file_name"]
    else:
        return Resolved(name, None, f"KeyError: 'file_name' (the entry of {name} names no file_name and no hub url)")
    formatting = entry.get("formatting", "alpaca")
    if formatting not in formats:
        return Resolved(name, None, f"Dataset converter {formatting} not found.")
    if "columns" in entry:
        block = entry["columns"] if isinstance(entry["columns"], dict) else {}
        columns = {role: block.get(role) for role in COLUMN_NAMES}
    else:
        columns = {role: DEFAULT_COLUMNS.get(role) for role in COLUMN_NAMES}
    if "tags" in entry:
        block = entry["tags"] if isinstance(entry["tags"], dict) else {}
        tags = {role: block.get(role) for role in TAG_NAMES}
    else:
        tags = dict(DEFAULT_TAGS)
    attr = DatasetAttr(
        name=name,
        load_from=load_from,
        dataset_name=dataset_name,
        formatting=formatting,
        ranking=entry.get("ranking", False),
        subset=entry.get("subset"),
        split=entry.get("split", "train"),
        folder=entry.get("folder"),
        num_samples=entry.get("num_samples"),
        columns=columns,
        tags=tags,
        entry=entry,
    )
    return Resolved(name, attr)


def resolve(names: list, registry: Registry, *, formats: tuple[str, ...]) -> list[Resolved]:
    if registry.mode == "online":
        hub = "ms_hub" if _env("USE_MODELSCOPE_HUB") else "om_hub" if _env("USE_OPENMIND_HUB") else "hf_hub"
        return [
            Resolved(str(n), DatasetAttr(str(n), hub, str(n), columns=dict(DEFAULT_COLUMNS), tags=dict(DEFAULT_TAGS)))
            for n in names
        ]
    if registry.entries is None:
        return [Resolved(str(n), None, registry.problem) for n in names]
    out = []
    for name in names:
        if not isinstance(name, str) or name not in registry.entries:
            out.append(Resolved(str(name), None, f"Undefined dataset {name} in {DATA_CONFIG}."))
        else:
            out.append(attr_from_entry(name, registry.entries[name], formats=formats))
    return out


def _env(name: str) -> bool:
    return os.environ.get(name, "0").strip().lower() in ("true", "y", "1")
