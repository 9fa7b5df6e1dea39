"""Find a dataset's files and read their rows the way ``datasets.load_dataset`` builds the table.

data/loader.py::_load_single_dataset (0.9.2-0.9.5): ``file_name`` is a file or a folder under
``dataset_dir``; a folder contributes every entry of ``os.listdir`` in that order; the builder
comes from the first file's extension (``FILEEXT2TYPE``) and every file must map to the same one.

Row semantics follow the ``datasets`` builders: JSON lines skip blank lines, a JSON array gives
one row per element (through pandas), a single JSON object is one row; CSV goes through pandas
(types inferred per column, empty cells are missing); parquet and arrow keep their schema; text
files give one row per line in column ``text``. Each row is reported with a location for
diagnostics: ``file:line`` for JSON lines and text, the row index otherwise.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from ..hub_cache import snapshot

FILEEXT2TYPE = {"arrow": "arrow", "csv": "csv", "json": "json", "jsonl": "json", "parquet": "parquet", "txt": "text"}


class DataFiles(NamedTuple):
    paths: tuple[Path, ...]
    builder: str | None
    problem: str | None = None


def locate(dataset_dir: Path, file_name: str) -> DataFiles:
    local = dataset_dir / file_name
    if local.is_dir():
        try:
            paths = tuple(local / name for name in os.listdir(local))
        except OSError as exc:
            return DataFiles((), None, f"cannot list {local}: {exc.strerror}")
        if not paths:
            return DataFiles(
                (), None, f"the folder {local} is empty (LLaMA-Factory stops with IndexError: list index out of range)"
            )
    elif local.is_file():
        paths = (local,)
    else:
        return DataFiles((), None, f"File {local} not found.")
    builder = FILEEXT2TYPE.get(paths[0].suffix[1:])
    if builder is None:
        return DataFiles(paths, None, "Allowed file types: {}.".format(",".join(FILEEXT2TYPE)))
    odd = [p for p in paths if FILEEXT2TYPE.get(p.suffix[1:]) != builder]
    if odd:
        return DataFiles(
            paths, builder, f"File types should be identical. ({odd[0].name} is not {builder} like {paths[0].name})"
        )
    return DataFiles(paths, builder)


# datasets' default split patterns (data_files.py: KEYWORDS_IN_FILENAME_BASE_PATTERNS / IN_DIR_NAME): a file
# or folder name holding "train" as a word, e.g. train.json, data/train-00000-of-00002.parquet, train/part.jsonl
_TRAIN_NAME = re.compile(r"(^|[-._ /])(train|training)([-._ 0-9/]|$)")
_OTHER_SPLITS = re.compile(r"(^|[-._ /])(test|testing|eval|evaluation|valid|validation|dev)([-._ 0-9/]|$)")


def locate_in_hub_cache(repo_id: str, folder: str | None, env: dict | None = None) -> DataFiles | None:
    """The train files ``load_dataset(repo_id, data_dir=folder)`` would read, from the local hub cache.

    None when the repository is not cached; a problem when it holds a loading script (never run) or
    no data file lf-lint can read. Files are picked with ``datasets``' default split patterns: the files
    named for the train split when any file names a split, else every data file.
    """
    found = snapshot("datasets", repo_id, env)
    if found is None:
        return None
    root = found / folder if folder else found
    if any(root.glob("*.py")):
        return DataFiles((), None, f"the cached hub dataset {repo_id} has a loading script, which lf-lint never runs")
    files = sorted(
        p for p in root.rglob("*") if p.is_file() and p.suffix[1:] in FILEEXT2TYPE and not p.name.startswith(".")
    )
    relative = {p: p.relative_to(root).as_posix().lower() for p in files}
    if any(_TRAIN_NAME.search(r) or _OTHER_SPLITS.search(r) for r in relative.values()):
        files = [p for p in files if _TRAIN_NAME.search(relative[p])]
    if not files:
        return DataFiles((), None, f"no train data file in the cached hub dataset {repo_id} ({root})")
    builder = FILEEXT2TYPE[files[0].suffix[1:]]
    if any(FILEEXT2TYPE[p.suffix[1:]] != builder for p in files):
        return DataFiles(tuple(files), None, f"the cached hub dataset {repo_id} mixes file types")
    return DataFiles(tuple(files), builder)


class ReadError(Exception):
    """A file ``datasets`` cannot turn into a table: the message says why and where."""

    def __init__(self, message: str, location: str):
        super().__init__(message)
        self.location = location


class Row(NamedTuple):
    """A row and where it is: ``path:position`` with a line number (JSON lines, text) or ``path[index]``."""

    path: Path
    position: int
    by_line: bool
    data: dict

    @property
    def location(self) -> str:
        return f"{self.path}:{self.position}" if self.by_line else f"{self.path}[{self.position}]"


def iter_rows(files: DataFiles) -> Iterator[Row]:
    reader = {"json": _json_rows, "csv": _csv_rows, "parquet": _parquet_rows, "arrow": _arrow_rows, "text": _text_rows}[
        files.builder
    ]
    for path in files.paths:
        yield from reader(path)


# ------------------------------------------------------------------------------------------ JSON


def _decode_error(path: Path, exc: Exception, line: int | None = None) -> ReadError:
    where = f"{path}:{line}" if line else str(path)
    return ReadError(f"not valid JSON ({exc})", where)


def json_layout(path: Path) -> tuple[str, bool]:
    """("array" or "lines", whether the file starts with a UTF-8 byte order mark): how ``_json_rows`` reads it."""
    with open(path, "rb") as handle:
        head = handle.read(4096).lstrip()
    bom = head.startswith(b"\xef\xbb\xbf")
    if bom:
        head = head[3:].lstrip()
    return ("array" if head.startswith(b"[") else "lines"), bom


def _json_rows(path: Path) -> Iterator[Row]:
    if json_layout(path)[0] == "array":
        yield from _json_array_rows(path)
    else:
        yield from _json_lines_rows(path)


def _json_array_rows(path: Path) -> Iterator[Row]:
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ReadError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", str(path)) from None
    except json.JSONDecodeError as exc:
        raise ReadError(f"not valid JSON: {exc.msg}", f"{path}:{exc.lineno}:{exc.colno}") from None
    if not data:
        raise ReadError(
            'the JSON array is empty: datasets stops with `Instruction "train" corresponds to no data!`', str(path)
        )
    for index, item in enumerate(data):
        if not isinstance(item, dict):
            item = {"text": item}  # pandas names the single column 0, datasets renames it "text"
        yield Row(path, index, False, item)


_DECODE = json.JSONDecoder().raw_decode


def _json_lines_rows(path: Path) -> Iterator[Row]:
    number = 0
    try:
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                start = 0 if line[:1] == "{" else len(line) - len(line.lstrip())
                if start == len(line):
                    continue  # datasets skips blank lines
                try:
                    item, end = _DECODE(line, start)
                except json.JSONDecodeError as exc:
                    raise ReadError(
                        f"not valid JSON on this line ({exc.msg}, column {exc.colno}); a JSON lines file needs one "
                        "complete object per line, and a pretty-printed JSON file must be an array",
                        f"{path}:{number}",
                    ) from None
                if end < len(line) and line[end:].strip():
                    raise ReadError("more than one JSON value on this line", f"{path}:{number}")
                if type(item) is not dict:
                    raise ReadError(
                        f"a JSON lines row must be an object, not {type(item).__name__}", f"{path}:{number}"
                    )
                yield Row(path, number, True, item)
    except UnicodeDecodeError as exc:
        raise ReadError(f"not UTF-8 text ({exc.reason})", f"{path}:{number + 1}") from None


# ------------------------------------------------------------------------------------------ other builders


def _csv_rows(path: Path) -> Iterator[Row]:
    import pandas as pd  # datasets' csv builder reads with pandas; its type inference decides what a cell is

    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ReadError(f"cannot be read as CSV ({exc})", str(path)) from None
    for index, record in enumerate(frame.to_dict(orient="records")):
        yield Row(path, index, False, csv_row(record))


def csv_row(record: dict) -> dict:
    """A record of ``DataFrame.to_dict(orient="records")`` as datasets gives it: NaN is missing, values are Python's."""
    return {k: (None if _is_nan(v) else _plain(v)) for k, v in record.items()}


def _is_nan(value: object) -> bool:
    return isinstance(value, float) and value != value


def _plain(value: object) -> object:
    item = getattr(value, "item", None)  # numpy scalars -> Python
    return item() if callable(item) else value


def _parquet_rows(path: Path) -> Iterator[Row]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:
        raise ReadError(f"cannot be read as parquet ({exc})", str(path)) from None
    index = 0
    for batch in parquet.iter_batches():
        for record in batch.to_pylist():
            yield Row(path, index, False, record)
            index += 1


def _arrow_rows(path: Path) -> Iterator[Row]:
    import pyarrow as pa

    try:
        reader = pa.ipc.open_stream(pa.memory_map(str(path)))
    except Exception as exc:
        raise ReadError(f"cannot be read as an Arrow stream ({exc})", str(path)) from None
    index = 0
    for batch in reader:
        for record in batch.to_pylist():
            yield Row(path, index, False, record)
            index += 1


def _text_rows(path: Path) -> Iterator[Row]:
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ReadError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", str(path)) from None
    for number, line in enumerate(text.splitlines(), start=1):
        yield Row(path, number, True, {"text": line})


def metadata_row_count(files: DataFiles) -> int | None:
    """Row count without reading rows, where the format stores it (parquet footers)."""
    if files.builder != "parquet":
        return None
    import pyarrow.parquet as pq

    try:
        return sum(pq.ParquetFile(p).metadata.num_rows for p in files.paths)
    except Exception:
        return None
