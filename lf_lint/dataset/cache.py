"""A small on-disk cache of dataset scans, so unchanged data files are not read twice.

A scan is keyed by the identity of every file (path, size, modification time), the registry
entry's settings that change how rows are read and judged, the processor, and the
LLaMA-Factory release. Entries are JSON (the per-row codes zlib-compressed), written
atomically so parallel pre-commit runs can share the cache. It lives outside the config
repository: ``$LF_LINT_CACHE_DIR``, else ``$XDG_CACHE_HOME/lf-lint``, else ``~/.cache/lf-lint``.

Beside the scans it keeps what counting.py made of them (``load_counts``/``store_counts``): the counts
of one set of datasets under one set of arguments, so that a config whose datasets and counting
arguments did not change is counted without NumPy (its import costs more than the rest of a lint).
Scans are also kept in memory for the rest of the process: a run over many configs that share
datasets reads each entry once.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import zlib
from functools import lru_cache

from ..cache_paths import cache_dir
from .files import DataFiles
from .registry import DatasetAttr
from .scan import Scan

FORMAT = 6  # 3: token measures store exact lengths; 4: tools that are not JSON crash; 5: per-message tokens;
# 6: images per row


def key(files: DataFiles, attr: DatasetAttr, processor: str, llamafactory: str, measure: bool) -> str | None:
    identity = []
    for path in files.paths:
        try:
            stat = path.stat()
        except OSError:
            return None
        identity.append((str(path.resolve()), stat.st_size, stat.st_mtime_ns))
    settings = {
        "files": identity,
        "builder": files.builder,
        "formatting": attr.formatting,
        "ranking": attr.ranking,
        "columns": attr.columns,
        "tags": attr.tags,
        "processor": processor,
        "measure": measure,
        "llamafactory": llamafactory,
        "format": FORMAT,
    }
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()


def load(digest: str) -> Scan | None:
    path = cache_dir() / "scans" / f"{digest}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Scan(
            rows=data["rows"],
            codes=zlib.decompress(base64.b64decode(data["codes"])),
            reasons=tuple(data["reasons"]),
            samples={int(k): tuple(tuple(x) for x in v) for k, v in data["samples"].items()},
            crashes={int(k): tuple(v) for k, v in data["crashes"].items()},
            columns=tuple(data["columns"]),
            problem=data["problem"],
            problem_location=data["problem_location"],
            sizes=zlib.decompress(base64.b64decode(data["sizes"])),
            messages=zlib.decompress(base64.b64decode(data["messages"])),
            message_starts=zlib.decompress(base64.b64decode(data["message_starts"])),
            most_images=int(data["most_images"]),
            videos=bool(data["videos"]),
        )
    except (OSError, ValueError, KeyError, TypeError, zlib.error):
        return None  # missing, from another version, or damaged: scan again


def store(digest: str, scan: Scan) -> None:
    folder = cache_dir() / "scans"
    data = {
        "rows": scan.rows,
        "codes": base64.b64encode(zlib.compress(scan.codes, 6)).decode(),
        "reasons": list(scan.reasons),
        "samples": {str(k): [list(x) for x in v] for k, v in scan.samples.items()},
        "crashes": {str(k): list(v) for k, v in scan.crashes.items()},
        "columns": [str(c) for c in scan.columns],
        "problem": scan.problem,
        "problem_location": scan.problem_location,
        "sizes": base64.b64encode(zlib.compress(scan.sizes, 6)).decode(),
        "messages": base64.b64encode(zlib.compress(scan.messages, 6)).decode(),
        "message_starts": base64.b64encode(zlib.compress(scan.message_starts, 6)).decode(),
        "most_images": scan.most_images,
        "videos": scan.videos,
    }
    _write_atomically(folder, digest, data)


def _write_atomically(folder, digest: str, data: dict) -> None:
    """``folder/<digest>.json``, written whole or not at all (a concurrent reader never sees half a file)."""
    import tempfile  # only when something is written: it imports shutil, random and the compression modules

    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=folder, delete=False, suffix=".tmp", encoding="utf-8") as handle:
            json.dump(data, handle)
        os.replace(handle.name, folder / f"{digest}.json")
    except OSError:
        pass  # a read-only home is no reason to fail a lint


def cached_scan(
    files: DataFiles,
    attr: DatasetAttr,
    processor: str,
    llamafactory: str,
    scanner,
    use_cache: bool = True,
    measure: bool = False,
    keys: list | None = None,
) -> Scan:
    """The scan of ``files``, from the cache when it has one; ``keys`` (a list) gets the scan's cache key (None
    when uncached)."""
    digest = key(files, attr, processor, llamafactory, measure) if use_cache else None
    if keys is not None:
        keys.append(digest)
    if digest is not None:
        hit = _LOADED.get((cache_dir(), digest)) or load(digest)
        if hit is not None:
            _remember(_LOADED, (cache_dir(), digest), hit)
            return hit
    result = scanner(files, attr, processor, measure)
    if digest is not None:
        store(digest, result)
        _remember(_LOADED, (cache_dir(), digest), result)
    return result


# the last entries this process read or wrote, by (cache directory, key): a key names one content of one set of files
_LOADED: dict[tuple, Scan] = {}
_COUNTS: dict[tuple, dict] = {}
_KEPT = 32


def _remember(memory: dict, where: tuple, value) -> None:
    memory.pop(where, None)
    memory[where] = value
    while len(memory) > _KEPT:
        del memory[next(iter(memory))]


# --------------------------------------------------------------------------- counts

COUNTS_FORMAT = 1


def counts_key(parts: list) -> str | None:
    """The key of counting.py's result for ``parts`` (JSON-able facts it was computed from), with the identity of
    the code that computes it; None when a part cannot be written as JSON."""
    try:
        text = json.dumps([COUNTS_FORMAT, code_identity(), parts], sort_keys=True)
    except (TypeError, ValueError):
        return None
    return hashlib.sha256(text.encode()).hexdigest()


@lru_cache(maxsize=1)
def code_identity() -> list:
    """lf-lint's version and the size and modification time of the modules counts depend on: an edited or upgraded
    lf-lint never takes counts made by another."""
    from .. import __version__

    here = os.path.dirname(os.path.abspath(__file__))
    paths = [os.path.join(here, n) for n in sorted(os.listdir(here)) if n.endswith(".py")]
    paths.append(os.path.join(os.path.dirname(here), "versions.py"))
    identity: list = [__version__]
    for path in paths:
        stat = os.stat(path)
        identity.append([os.path.basename(path), stat.st_size, stat.st_mtime_ns])
    return identity


def load_counts(digest: str) -> dict | None:
    """The record ``store_counts`` kept under ``digest`` (in this process, or on disk), or None."""
    record = _COUNTS.get((cache_dir(), digest))
    if record is None:
        try:
            with open(cache_dir() / "counts" / f"{digest}.json", encoding="utf-8") as handle:
                record = json.load(handle)
        except (OSError, ValueError):
            return None  # missing or damaged: count again
        if not isinstance(record, dict):
            return None
    _remember(_COUNTS, (cache_dir(), digest), record)
    return record


def store_counts(digest: str, record: dict) -> None:
    _remember(_COUNTS, (cache_dir(), digest), record)
    _write_atomically(cache_dir() / "counts", digest, record)
