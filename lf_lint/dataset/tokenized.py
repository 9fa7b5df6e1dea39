"""``tokenized_path``: a dataset LLaMA-Factory saved after preprocessing, loaded instead of ``dataset``.

LLaMA-Factory 0.9.2-0.9.5 (``data/loader.py::get_dataset``): when ``tokenized_path`` is a non-empty
folder it loads it with ``datasets.load_from_disk`` and ignores every other data argument
(``dataset``, ``max_samples``, ``val_size``, ``cutoff_len``, ...); a ``DatasetDict`` gives its
``train`` split to the Trainer and ``validation`` (or ``validation_<name>`` splits) for evaluation.
When the folder does not exist yet it preprocesses as usual and saves the result there.

The rows are counted from the Arrow files' record batches (memory-mapped, no row is decoded).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import NamedTuple


class Tokenized(NamedTuple):
    path: Path
    train: int | None  # rows of the train split (or of the single saved dataset)
    eval: int | None  # rows of the validation split(s)
    problem: str | None = None


def tokenized_folder(value: object, workdir: str | os.PathLike) -> Path | None:
    """The folder when LLaMA-Factory would load from it (``extras/misc.py::has_tokenized_data``)."""
    if not isinstance(value, str) or not value:
        return None
    path = Path(workdir, os.path.expanduser(value))  # an absolute value stays as it is
    return path if path.is_dir() and any(os.scandir(path)) else None


def read_tokenized(path: Path) -> Tokenized:
    try:
        if (path / "dataset_dict.json").is_file():
            splits = json.loads((path / "dataset_dict.json").read_text()).get("splits", [])
            train = _rows(path / "train") if "train" in splits else None
            evals = [_rows(path / s) for s in splits if s == "validation" or s.startswith("validation_")]
            return Tokenized(path, train, sum(evals) if evals else None)
        if (path / "state.json").is_file():
            return Tokenized(path, _rows(path), None)
    except (OSError, ValueError, KeyError) as exc:
        return Tokenized(path, None, None, f"cannot read the saved dataset at {path}: {exc}")
    return Tokenized(
        path, None, None, f"{path} is not a dataset saved by `datasets` (no dataset_dict.json or state.json)"
    )


def _rows(split: Path) -> int:
    import pyarrow as pa

    state = json.loads((split / "state.json").read_text())
    total = 0
    for entry in state.get("_data_files", []):
        with pa.memory_map(str(split / entry["filename"])) as source:
            total += sum(batch.num_rows for batch in pa.ipc.open_stream(source))
    return total
