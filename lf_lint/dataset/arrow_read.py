"""A dataset's files as Arrow record batches, for the column-wise scan (columnar.py).

Each ``Block`` carries a record batch and, for its rows, the dict the row-by-row reader (files.py)
would have made of each and its location, so that every row the column-wise rules are not sure
of is judged exactly as before. Anything that reader models and this one does not raises
``Unsupported``, and the caller reads the files row by row instead (with its diagnostics).

JSON lines are read by json_blocks.py (in blocks, on worker threads; a JSON array or a byte order
mark is the row-by-row reader's); parquet and Arrow files in record batches; CSV files by pandas
as files.py does, each slice of the frame then converted (a column of mixed types is not).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Callable, NamedTuple

from .files import DataFiles, csv_row

PARQUET_BATCH_ROWS = 65536  # rows per record batch of parquet files (as files.py reads them) and of CSV frames


class Unsupported(Exception):
    """Something only the row-by-row reader models."""


class Block(NamedTuple):
    batch: object  # pyarrow.RecordBatch
    row: Callable[[int], dict]  # the row as files.iter_rows gives it (JSON lines: only the rows analyse asked for)
    location: Callable[[int], str]
    analysis: object = None  # what read_blocks' ``analyse`` made of the batch


def read_blocks(files: DataFiles, workers: int | None = None, analyse=None) -> Iterator[Block]:
    """The files' record batches in order. ``analyse(batch)`` runs on each, on the worker threads that parse JSON
    lines (so that the caller's column-wise work runs in parallel too), and returns (its analysis, the indexes of
    the rows the caller will ask ``Block.row`` for)."""
    reader = {"csv": _csv_blocks, "parquet": _parquet_blocks, "arrow": _arrow_blocks}.get(files.builder)
    if reader is None and files.builder != "json":
        raise Unsupported(files.builder)
    analyse = analyse or (lambda batch: (None, range(batch.num_rows)))
    for path in files.paths:
        if reader is None:
            from .json_blocks import json_blocks

            yield from json_blocks(path, workers, analyse)
        else:
            for block in reader(path):
                yield block._replace(analysis=analyse(block.batch)[0])


# ------------------------------------------------------------------------------------------ CSV, parquet, arrow


def _csv_blocks(path: Path) -> Iterator[Block]:
    """pandas reads the file as files.py does; each slice of the frame becomes a record batch (NaN as null)."""
    import pandas as pd
    import pyarrow as pa

    try:
        frame = pd.read_csv(path)
    except Exception as exc:
        raise Unsupported(str(exc)) from None
    if not all(isinstance(name, str) for name in frame.columns):
        raise Unsupported("a column name that is not a string")
    for first in range(0, len(frame), PARQUET_BATCH_ROWS):
        part = frame.iloc[first : first + PARQUET_BATCH_ROWS]
        try:
            table = pa.Table.from_pandas(part, preserve_index=False).combine_chunks()
        except Exception as exc:  # a column of mixed types, an integer beyond 64 bits, ...
            raise Unsupported(str(exc)) from None
        if table.num_rows == 0:
            continue
        batch = table.to_batches()[0]

        def row(i: int, part=part) -> dict:
            return csv_row(part.iloc[i : i + 1].to_dict(orient="records")[0])

        def location(i: int, first=first) -> str:
            return f"{path}[{first + i}]"

        yield Block(batch, row, location)


def _batches(path: Path, batches) -> Iterator[Block]:
    index = 0
    for batch in batches:
        first = index

        def row(i: int, batch=batch) -> dict:
            return batch.slice(i, 1).to_pylist()[0]

        def location(i: int, first=first) -> str:
            return f"{path}[{first + i}]"

        yield Block(batch, row, location)
        index += batch.num_rows


def _parquet_blocks(path: Path) -> Iterator[Block]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
        yield from _batches(path, parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS))
    except Unsupported:
        raise
    except Exception as exc:
        raise Unsupported(str(exc)) from None


def _arrow_blocks(path: Path) -> Iterator[Block]:
    import pyarrow as pa

    try:
        reader = pa.ipc.open_stream(pa.memory_map(str(path)))
        yield from _batches(path, reader)
    except Unsupported:
        raise
    except Exception as exc:
        raise Unsupported(str(exc)) from None
