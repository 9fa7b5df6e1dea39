"""Arrow arrays to NumPy and back, through their buffers.

pyarrow converts Python and NumPy values (``pa.array``, ``pa.scalar``, ``to_numpy`` of a boolean
array, a compute function given a Python scalar) with pandas' help, and imports pandas for it:
0.3 s and 70 MB, more than the column-wise scan of a large file needs for everything else.
These helpers read and build the buffers themselves.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def _bits(buffer, offset: int, length: int):
    bits = np.unpackbits(np.frombuffer(buffer, dtype=np.uint8), bitorder="little")
    return bits[offset : offset + length].astype(bool)


def valid(array):
    """Which values are not null."""
    length, nulls = len(array), array.null_count
    if nulls == 0:
        return np.ones(length, dtype=bool)
    if nulls == length:
        return np.zeros(length, dtype=bool)
    return _bits(array.buffers()[0], array.offset, length)


def true(array):
    """A boolean array's values, null as False."""
    if len(array) == 0 or array.null_count == len(array):
        return np.zeros(len(array), dtype=bool)
    return _bits(array.buffers()[1], array.offset, len(array)) & valid(array)


def offsets(array):
    """The offsets of a (large) list or string array: where each value starts, and where the last ends."""
    kind = array.type
    wide = pa.types.is_large_list(kind) or pa.types.is_large_string(kind)
    values = np.frombuffer(array.buffers()[1], dtype=np.int64 if wide else np.int32)
    return values[array.offset : array.offset + len(array) + 1].astype(np.int64)


def lengths(array):
    """Items of each list (bytes of each string), 0 for null."""
    if len(array) == 0 or array.null_count == len(array):
        return np.zeros(len(array), dtype=np.int64)
    sizes = np.diff(offsets(array))
    sizes[~valid(array)] = 0
    return sizes


def integers(array):
    """An int64 array without nulls (pyarrow.compute.list_parent_indices) as NumPy."""
    return np.frombuffer(array.buffers()[1], dtype=np.int64)[array.offset : array.offset + len(array)]


def mask(values):
    """A NumPy boolean array as an Arrow one (for ``Array.filter``)."""
    packed = np.packbits(np.asarray(values, dtype=bool), bitorder="little")
    return pa.Array.from_buffers(pa.bool_(), len(values), [None, pa.py_buffer(packed.tobytes())])


def strings(values: list[str], kind=None):
    """Python strings as an Arrow string array of type ``kind`` (string, large_string), for
    ``pyarrow.compute.is_in``."""
    encoded = [value.encode("utf-8") for value in values]
    ends = np.cumsum([0] + [len(e) for e in encoded]).astype(np.int32)
    data = pa.py_buffer(b"".join(encoded))
    array = pa.Array.from_buffers(pa.string(), len(values), [None, pa.py_buffer(ends.tobytes()), data])
    return array if kind is None or kind == pa.string() else array.cast(kind)
