"""JSON lines as Arrow record batches (arrow_read.py), parsed by pyarrow's JSON parser on worker threads.

Each block holds the lines that start in its ``BLOCK_BYTES`` of the file; several blocks are read
and parsed at once, each worker in its own reused buffer, so memory stays bounded. A block gives
the caller its record batch, the caller's analysis of it (run on the worker too), and the bytes
of the lines the caller will read as Python. pyarrow accepts a few things Python's ``json`` does
not, or reads them differently; each is detected:

* invalid UTF-8 (pyarrow's parser lets some through), a lone ``\\r`` (Python's universal newlines
  make it a line break), several values on one line or one value over several lines: every
  non-blank line must start with ``{`` and end with ``}`` (then every line break lies between
  values) and the block must give one row per non-blank line (``Unsupported`` otherwise);
* ``-NaN``, ``Inf``, ``-Inf``: a block with a value that is not finite is also parsed by Python;
* strings that look like timestamps: such a block is parsed again with those fields as strings.
"""

from __future__ import annotations

import json
import os
import threading
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from .arrow_read import Block, Unsupported
from .files import json_layout

BLOCK_BYTES = 1 << 20  # each block holds the lines that start in its BLOCK_BYTES of the file
SLACK_BYTES = 1 << 16  # read beyond a block's bytes at once, for the end of its last line


class _Parsed(NamedTuple):
    """What a worker makes of one block of JSON lines."""

    batch: object  # None: no row in the block
    analysis: object
    needed: dict  # row -> the bytes of its line, for the rows the caller will read as Python
    numbers: object  # numpy: each row's line number in the block, from 1; None: row i is line i + 1
    lines: int  # lines in the block, blank ones included


def json_blocks(path: Path, workers: int | None, analyse) -> Iterator[Block]:
    """The blocks of one JSON-lines file, in order; ``analyse`` as for arrow_read.read_blocks."""
    from concurrent.futures import ThreadPoolExecutor

    layout, bom = json_layout(path)
    if layout != "lines" or bom:
        raise Unsupported("a JSON array or a byte order mark")
    workers = workers or min(8, _cpus() + 1)  # one more than the cores: the main thread's share is small
    line = 0  # lines before the block
    with open(path, "rb", buffering=0) as handle, ThreadPoolExecutor(workers) as pool:
        size = os.fstat(handle.fileno()).st_size
        pending: deque = deque()
        try:
            for start in range(0, size, BLOCK_BYTES):
                pending.append(pool.submit(_read_and_parse, handle, size, start, analyse))
                while len(pending) > 2 * workers or (pending and pending[0].done()):
                    block, line = _json_block(path, pending.popleft().result(), line)
                    if block is not None:
                        yield block
            while pending:
                block, line = _json_block(path, pending.popleft().result(), line)
                if block is not None:
                    yield block
        finally:
            for future in pending:
                future.cancel()


def _cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _json_block(path: Path, parsed: _Parsed, line: int) -> tuple[Block | None, int]:
    first = line
    if parsed.batch is None:
        return None, line + parsed.lines

    def row(i: int) -> dict:
        try:
            item = json.loads(parsed.needed[i].decode("utf-8"))
        except ValueError:
            raise Unsupported("a line Python's json does not read") from None
        if type(item) is not dict:
            raise Unsupported("not an object")
        return item

    def location(i: int) -> str:
        number = i + 1 if parsed.numbers is None else int(parsed.numbers[i])
        return f"{path}:{first + number}"

    return Block(parsed.batch, row, location, parsed.analysis), line + parsed.lines


def _read_and_parse(handle, size: int, start: int, analyse) -> _Parsed:
    """The block of the file at ``start``, parsed and analysed (on a worker thread, in its own buffer)."""
    owned = _owned_lines(handle, size, start)
    if owned is None:
        return _Parsed(None, None, {}, None, 0)
    buffer, first, end = owned
    view = memoryview(buffer)[first:end]  # nothing returned refers to it: the buffer is the thread's next block's
    batch, starts, ends, numbers, lines = _parse_lines(view, buffer.find(b"\r", first, end) >= 0)
    if batch is None:
        return _Parsed(None, None, {}, None, lines)
    analysis, needed = analyse(batch)
    return _Parsed(batch, analysis, {i: bytes(view[starts[i] : ends[i]]) for i in needed}, numbers, lines)


_LOCAL = threading.local()  # each worker thread's read buffer


def _owned_lines(handle, size: int, start: int):
    """(buffer, first, end): the whole lines that start in ``[start, start + BLOCK_BYTES)`` (a line starts at 0
    or after a line break), the last possibly without its line break at the end of the file, in the thread's
    buffer; None when no line starts there."""
    step, before = BLOCK_BYTES, 1 if start else 0  # the byte before ``start`` says whether a line starts there
    offset = start - before
    buffer, read = _read_at(handle, step + SLACK_BYTES + before, offset, 0)
    first = 0
    if before:
        first = buffer.find(b"\n", 0, min(step, read)) + 1
        if first == 0:
            return None  # inside a line that started in an earlier block
    last = step - 1 + before  # the block's last byte: its last line ends at the next line break
    end = buffer.find(b"\n", last, read)
    while end < 0 and offset + read < size:  # a line longer than the slack
        buffer, more = _read_at(handle, read + step, offset, read)
        if more == read:
            break
        end, read = buffer.find(b"\n", max(last, read), more), more
    end = read if end < 0 else end + 1
    return (buffer, first, end) if first < end else None


def _read_at(handle, size: int, offset: int, kept: int) -> tuple[bytearray, int]:
    """(the thread's buffer, the bytes in it): up to ``size`` bytes of the file at ``offset``, the first ``kept``
    of them already in the buffer (fewer at the end of the file)."""
    buffer = getattr(_LOCAL, "buffer", None)
    if buffer is None or len(buffer) < size:
        grown = bytearray(max(size, 2 * len(buffer or b"")))
        grown[:kept] = memoryview(buffer)[:kept] if kept else b""
        buffer = _LOCAL.buffer = grown
    done = kept
    while done < size:
        with memoryview(buffer) as view:
            got = _read_into(handle, view[done:size], offset + done)
        if got <= 0:
            break
        done += got
    return buffer, done


def _read_into(handle, target, offset: int) -> int:
    if hasattr(os, "preadv"):
        return os.preadv(handle.fileno(), [target], offset)
    if hasattr(os, "pread"):
        data = os.pread(handle.fileno(), len(target), offset)
        target[: len(data)] = data
        return len(data)
    with open(handle.name, "rb") as again:  # Windows: no pread, and a shared handle's position would race
        again.seek(offset)
        return again.readinto(target)


def _parse_lines(view, carriage_returns: bool):
    """(batch, starts, ends, numbers, lines) of one block: its rows, where each row's line starts and ends (before
    its line break) in the block, their line numbers (None: row i is line i + 1), and its lines, blank ones
    included. Raises Unsupported unless its rows are its non-blank lines, one each."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.json as pj

    data = np.frombuffer(view, dtype=np.uint8)
    if data.max() >= 128:  # pyarrow's parser lets some invalid UTF-8 through; Python's decoder does not
        _check_utf8(view)
    ends = np.flatnonzero(np.equal(data, 10, out=_scratch(len(data))))
    if data[-1] != 10:
        ends = np.append(ends, len(data))  # the file's last line, without a line break
    lines = len(ends)
    starts = np.empty_like(ends)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    nonempty = ends > starts
    if carriage_returns:
        crlf = np.zeros(lines, dtype=bool)
        crlf[nonempty] = data[ends[nonempty] - 1] == 13
        if np.count_nonzero(data == 13) != np.count_nonzero(crlf):
            raise Unsupported("a carriage return that does not end a line")
        ends = ends - crlf
        nonempty = ends > starts
    numbers = None
    simple = nonempty.all() and (data[starts] == 123).all() and (data[ends - 1] == 125).all()
    if not simple:
        keep = _object_lines(data, starts, ends)
        numbers = np.flatnonzero(keep) + 1
        starts, ends = starts[keep], ends[keep]
    if len(starts) == 0:
        return None, starts, ends, numbers, lines
    buffer = pa.py_buffer(view)
    options = pj.ReadOptions(use_threads=False, block_size=max(len(data) + 1, 1 << 20))
    try:
        table = pj.read_json(buffer, read_options=options)
        if _has_type(table.schema, pa.types.is_timestamp):
            schema = pa.schema([pa.field(f.name, _without_timestamps(f.type)) for f in table.schema])
            table = pj.read_json(buffer, read_options=options, parse_options=pj.ParseOptions(explicit_schema=schema))
    except Exception as exc:  # pyarrow's parse errors (a UnicodeDecodeError from its message): the reference says it
        raise Unsupported(str(exc)) from None
    if table.num_rows != len(starts):
        raise Unsupported("a line that is not one JSON object")
    batch = table.combine_chunks().to_batches()[0]
    try:
        batch.validate()  # pyarrow 26 builds a broken list<list<null>> from [null, []]
    except pa.ArrowInvalid:
        raise Unsupported("pyarrow built an invalid array") from None
    floats = _has_type(table.schema, pa.types.is_floating)
    if floats and not all(_finite(column) for column in batch.columns):  # -NaN, Inf, -Inf: only pyarrow reads them
        for start, end in zip(starts, ends):
            try:
                json.loads(bytes(view[start:end]).decode("utf-8"))
            except ValueError:
                raise Unsupported("a number Python's json does not read") from None
    return batch, starts, ends, numbers, lines


def _scratch(size: int):
    """The thread's boolean scratch array, at least ``size`` long (fresh memory costs page faults)."""
    import numpy as np

    scratch = getattr(_LOCAL, "scratch", None)
    if scratch is None or len(scratch) < size:
        scratch = _LOCAL.scratch = np.empty(max(size, BLOCK_BYTES + SLACK_BYTES + 1), dtype=bool)
    return scratch[:size]


def _check_utf8(view) -> None:
    """Raises Unsupported unless the block is valid UTF-8 (Arrow's check, as strict as Python's decoder)."""
    import numpy as np
    import pyarrow as pa

    offsets = pa.py_buffer(np.array([0, len(view)], dtype=np.int64).tobytes())  # not pa.array: it imports pandas
    blob = pa.Array.from_buffers(pa.large_binary(), 1, [None, offsets, pa.py_buffer(view)])
    try:
        blob.cast(pa.large_string())
    except pa.ArrowInvalid:
        raise Unsupported("not UTF-8") from None


def _object_lines(data, starts, ends):
    """Which lines hold a row; raises Unsupported unless every line is blank or starts with { and ends with }."""
    import numpy as np

    keep = np.zeros(len(starts), dtype=bool)
    for i, (start, end) in enumerate(zip(starts, ends)):
        text = data[start:end].tobytes().strip(b" \t")
        if not text:
            continue
        if text[:1] != b"{" or text[-1:] != b"}":
            raise Unsupported("a line that is not one JSON object")
        keep[i] = True
    return keep


def _has_type(schema_or_type, test) -> bool:
    """Whether a schema or type holds a type that ``test`` accepts, at any depth."""
    import pyarrow as pa

    if isinstance(schema_or_type, pa.Schema):
        return any(_has_type(f.type, test) for f in schema_or_type)
    kind = schema_or_type
    if test(kind):
        return True
    if pa.types.is_list(kind):
        return _has_type(kind.value_type, test)
    if pa.types.is_struct(kind):
        return any(_has_type(kind.field(i).type, test) for i in range(kind.num_fields))
    return False


def _without_timestamps(kind):
    import pyarrow as pa

    if pa.types.is_timestamp(kind):
        return pa.string()
    if pa.types.is_list(kind):
        return pa.list_(_without_timestamps(kind.value_type))
    if pa.types.is_struct(kind):
        return pa.struct([pa.field(f.name, _without_timestamps(f.type)) for f in kind])
    return kind


def _finite(array) -> bool:
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = array.type
    if pa.types.is_floating(kind):
        return pc.all(pc.is_finite(array)).as_py() is not False
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return _finite(pc.list_flatten(array))
    if pa.types.is_struct(kind):
        return all(_finite(array.field(i)) for i in range(kind.num_fields))
    return True
