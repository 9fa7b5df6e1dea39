"""The target GPU: ``--gpu NAME`` as people type it, or ``--gpu-memory GIB``."""

from __future__ import annotations

import difflib
import re
from functools import lru_cache
from typing import NamedTuple

from ..datafiles import read_json


class Gpu(NamedTuple):
    name: str
    memory_gib: float  # as torch reports the device (a little below the marketed size)
    bf16: bool
    tflops: float  # dense bf16 (fp16 where the card has no bf16) tensor throughput
    flash_attn2: bool = True
    confidence: str = "medium"
    note: str = ""


class GpuError(ValueError):
    pass


_NOISE = re.compile(r"^(nvidia|tesla|geforce|amd|huawei)")


def _key(text: str) -> str:
    key = re.sub(r"[^a-z0-9.]", "", text.lower()).replace("gib", "g").replace("gb", "g")
    while _NOISE.match(key):
        key = _NOISE.sub("", key)
    return key


@lru_cache(maxsize=1)
def _table() -> tuple[list[Gpu], dict[str, Gpu]]:
    data = read_json("gpus.json")
    gpus, by_key = [], {}
    for row in data["gpus"]:
        tflops = row["bf16_tflops"] or row["fp16_tflops"]
        gpu = Gpu(
            row["name"], row["memory_gib"], row["bf16"], tflops, row["flash_attn2"], row["confidence"], row["note"]
        )
        gpus.append(gpu)
        for alias in [row["name"], *row["aliases"]]:
            by_key.setdefault(_key(alias), gpu)
            by_key.setdefault(_key(alias).replace("rtx", ""), gpu)
    return gpus, by_key


def all_gpus() -> list[Gpu]:
    return list(_table()[0])


def find_gpu(name: str) -> Gpu:
    """A GPU by any usual spelling: ``A100-40G``, ``a100 80gb``, ``H100``, ``RTX 4090``, ``v100-32g``, ``910B``."""
    by_key = _table()[1]
    key = _key(name)
    for candidate in (key, key.replace("rtx", ""), key.replace("sxm", "").replace("pcie", "")):
        if candidate in by_key:
            return by_key[candidate]
    close = difflib.get_close_matches(key, list(by_key), n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(sorted({by_key[c].name for c in close}))}?" if close else ""
    raise GpuError(f"unknown GPU {name!r}{hint} (see `lf-lint gpus`, or give --gpu-memory GIB)")


def gpu_with_memory(gib: float, name: str | None = None) -> Gpu:
    """A GPU known only by its memory (``--gpu-memory 24``): no throughput, bf16 assumed."""
    if not gib > 0:
        raise GpuError(f"--gpu-memory must be a positive number of GiB, not {gib!r}")
    return Gpu(name or f"{gib:g} GiB GPU", float(gib), True, 0.0, True, "given", "memory given with --gpu-memory")


def target_gpu(name: str | None, memory_gib: float | None) -> Gpu | None:
    """The card of ``--gpu NAME`` / ``--gpu-memory GIB``: a named card with other memory when both are given."""
    if memory_gib is not None:
        sized = gpu_with_memory(memory_gib)
        return find_gpu(name)._replace(memory_gib=sized.memory_gib) if name else sized
    return find_gpu(name) if name else None
