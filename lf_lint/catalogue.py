"""The built-in model catalogue (lf_lint/data/models.json): which entry a model's hub id names.

The shapes the entries describe are built in memory/model.py; this module only finds entries, so that LF276, which
needs a catalogued model's ``model_type`` and nothing else, does not import the memory model on a schema-only lint.
"""

from __future__ import annotations

from functools import lru_cache

from .datafiles import read_json
from .patterns import LazyPattern

# A quantized upload of a catalogued model (``Qwen2.5-7B-Instruct-AWQ``) has the model's shape.
_QUANT_SUFFIX = LazyPattern(r"[-_.](gptq|awq|gguf|int4|int8|bnb-4bit|4bit|8bit|fp8)([-_.].*)?$")


@lru_cache(maxsize=1)
def catalogue() -> dict[str, dict]:
    """Catalogue entries by lower-cased hub id (and by the id's last part, e.g. ``qwen2.5-7b-instruct``)."""
    by_id: dict[str, dict] = {}
    for entry in read_json("models.json")["models"]:
        for hub_id in entry["hub_ids"] + entry.get("hub_ids_unverified", []):
            by_id.setdefault(hub_id.lower(), entry)
            by_id.setdefault(hub_id.lower().split("/")[-1], entry)
    return by_id


def catalogue_entry(name: str) -> dict | None:
    """The entry ``model_name_or_path`` names: by its hub id, its last part, or the model a quantized upload is of."""
    lowered = name.lower()
    last = lowered.rstrip("/").split("/")[-1]
    found = catalogue()
    return found.get(lowered) or found.get(last) or found.get(_QUANT_SUFFIX.sub("", last))


def config_model_type(entry: dict) -> str:
    """The ``model_type`` of the entry's config.json: its vision-language wrapper's, for a model with a vision tower."""
    vision = entry.get("vision")
    return vision["model_type"] if vision is not None else entry["model_type"]


@lru_cache(maxsize=1)
def without_shape() -> dict[str, dict]:
    """Families of LLaMA-Factory main's model list that lf-lint knows by hub id only (models.json ``without_shape``)."""
    return {hub_id.lower(): entry for entry in read_json("models.json")["without_shape"]["families"]
            for hub_id in entry["hub_ids"]}  # fmt: skip
