"""The local Hugging Face hub cache (read only here; online.py fills it, and only with `--online`)."""

from __future__ import annotations

import os
from pathlib import Path


def hub_cache_dir(env: dict | None = None) -> Path:
    """``HF_HUB_CACHE``, else ``$HF_HOME/hub``, else ``~/.cache/huggingface/hub`` (huggingface_hub's order)."""
    env = os.environ if env is None else env
    if env.get("HF_HUB_CACHE"):
        return Path(env["HF_HUB_CACHE"])
    home = env.get("HF_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "huggingface")
    return Path(home) / "hub"


def snapshot(kind: str, repo_id: str, env: dict | None = None) -> Path | None:
    """The newest downloaded snapshot of a ``models`` or ``datasets`` repository, if any."""
    snapshots = hub_cache_dir(env) / f"{kind}--{repo_id.replace('/', '--')}" / "snapshots"
    try:
        found = sorted((p for p in snapshots.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:
        return None
    return found[0] if found else None


def model_folders(model_name_or_path: object, workdir: Path, env: dict | None = None) -> list[Path]:
    """Where the files of ``model_name_or_path`` are on this machine: the local folder (relative to the launch
    directory) and the newest snapshot in the Hugging Face cache, those that exist."""
    if not isinstance(model_name_or_path, str) or not model_name_or_path:
        return []
    local = Path(model_name_or_path).expanduser()
    local = local if local.is_absolute() else workdir / local
    folders = [local] if local.is_dir() else []
    cached = snapshot("models", model_name_or_path, env)
    if cached is not None:
        folders.append(cached)
    return folders
