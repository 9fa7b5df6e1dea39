"""The local Hugging Face hub cache (read only here; online.py fills it, and only with `--online`).

Folders are looked for with ``os.path`` and become ``pathlib.Path`` objects only when they exist: most lints name a
hub model that is not cached, and pathlib's import is a tenth of a schema-only lint (benchmarks/lint_speed.py).
"""

from __future__ import annotations

import os


def hub_cache_dir(env: dict | None = None) -> str:
    """``HF_HUB_CACHE``, else ``$HF_HOME/hub``, else ``~/.cache/huggingface/hub`` (huggingface_hub's order)."""
    env = os.environ if env is None else env
    if env.get("HF_HUB_CACHE"):
        return env["HF_HUB_CACHE"]
    home = env.get("HF_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "huggingface")
    return os.path.join(home, "hub")


def snapshot(kind: str, repo_id: str, env: dict | None = None):
    """The newest downloaded snapshot of a ``models`` or ``datasets`` repository (a ``pathlib.Path``), if any."""
    snapshots = os.path.join(hub_cache_dir(env), f"{kind}--{repo_id.replace('/', '--')}", "snapshots")
    try:
        found = [entry for entry in os.scandir(snapshots) if entry.is_dir()]
    except (OSError, ValueError):  # ValueError: a NUL byte in the id
        return None
    if not found:
        return None
    from pathlib import Path

    return Path(max(found, key=lambda entry: entry.stat().st_mtime).path)


def model_folders(model_name_or_path: object, workdir: str | os.PathLike, env: dict | None = None) -> list:
    """Where the files of ``model_name_or_path`` are on this machine (``pathlib.Path`` folders): the local folder
    (relative to the launch directory) and the newest snapshot in the Hugging Face cache, those that exist."""
    if not isinstance(model_name_or_path, str) or not model_name_or_path:
        return []
    local = os.path.join(workdir, os.path.expanduser(model_name_or_path))  # an absolute path stays as it is
    folders = []
    if os.path.isdir(local):
        from pathlib import Path

        folders.append(Path(local))
    cached = snapshot("models", model_name_or_path, env)
    if cached is not None:
        folders.append(cached)
    return folders
