"""`--online`: the only downloads lf-lint makes, and only when asked.

Without a network lf-lint counts hub datasets and finds model shapes and tokenizers from the local
Hugging Face cache (hub_cache.py). ``--online`` fills that cache first, with ``huggingface_hub``
(a dependency of ``datasets``) and into the same place ``datasets`` and ``transformers`` use, so a
later training run finds the files too:

* for each Hugging Face hub dataset (`hf_hub_url`) of `dataset` / `eval_dataset` that is not cached:
  its data files (json, jsonl, csv, parquet, arrow, txt) and any ``*.py`` file, which is never run
  but tells lf-lint the repository needs a loading script;
* for a hub `model_name_or_path` that is not a local folder: config.json and the tokenizer and
  processor files (no weights).

ModelScope and Modelers hub datasets are not fetched. ``HF_HUB_OFFLINE=1`` wins over ``--online``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

from .hub_cache import hub_cache_dir, model_folders, snapshot

DATA_PATTERNS = ["*.json", "*.jsonl", "*.csv", "*.parquet", "*.arrow", "*.txt", "*.py"]
MODEL_FILES = ["config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
               "chat_template.jinja", "processor_config.json", "preprocessor_config.json",
               "video_preprocessor_config.json"]  # fmt: skip


class Fetched(NamedTuple):
    what: str  # "dataset NAME (repo)" or "model REPO"
    path: Path | None  # the snapshot folder, None when the download failed
    problem: str | None = None


def _download(kind: str, repo_id: str, patterns: list[str], env: dict) -> Path:
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(repo_id=repo_id, repo_type=kind, allow_patterns=patterns,
                                  cache_dir=hub_cache_dir(env)))  # fmt: skip


def _fetch(what: str, kind: str, repo_id: str, patterns: list[str], env: dict) -> Fetched:
    if str(env.get("HF_HUB_OFFLINE", "")).lower() in ("1", "true", "yes", "on"):
        return Fetched(what, None, "HF_HUB_OFFLINE is set")
    try:
        return Fetched(what, _download(kind, repo_id, patterns, env))
    except Exception as exc:  # no network, no such repository, a gated one, ...
        return Fetched(what, None, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": "))


def prefetch(args, workdir: Path, env: dict | None = None) -> list[Fetched]:
    """Download what the config needs from the Hugging Face Hub and is not on this machine yet."""
    from .dataset.counting import _dataset_names
    from .dataset.registry import read_registry, resolve

    env = dict(os.environ) if env is None else env
    fetched = []
    model = args.model_name_or_path
    if isinstance(model, str) and model.count("/") == 1 and not model_folders(model, workdir, env):
        fetched.append(_fetch(f"model {model}", "model", model, MODEL_FILES, env))
    names = (_dataset_names(args.dataset) or []) + (_dataset_names(args.eval_dataset) or [])
    if names:
        registry = read_registry(args.dataset_dir if args.dataset_dir is not None else "data", workdir)
        seen = set()
        for resolved in resolve(names, registry, formats=("alpaca", "sharegpt", "openai")):
            attr = resolved.attr
            if attr is None or attr.load_from != "hf_hub" or attr.dataset_name in seen:
                continue
            seen.add(attr.dataset_name)
            if snapshot("datasets", attr.dataset_name, env) is None:
                patterns = [f"{attr.folder}/{p}" for p in DATA_PATTERNS] if attr.folder else DATA_PATTERNS
                fetched.append(_fetch(f"dataset {attr.name} ({attr.dataset_name})", "dataset", attr.dataset_name,
                                      patterns, env))  # fmt: skip
    return fetched
