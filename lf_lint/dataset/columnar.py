"""The scan of scan.py, column-wise: pyarrow.compute decides which rows are certainly kept.

For each block of rows (arrow_read.py) the converter's and the processor's rules are evaluated
on whole columns, and only for the rows they certainly keep: an alpaca row with a string
response (and proper history pairs), a ShareGPT/OpenAI conversation whose roles alternate as
the tags say, with the parity, chosen/rejected or KTO tag the stage needs, tools that are
JSON, media that can be counted. Every other row, kept or not, goes through the row-by-row
judge (scan.Verdicts) in row order, so drop reasons, their numbering, locations and crashes
are the reference's. Column types are unified per block from the values as columns.py does
row by row; a conflict, or anything the blocks cannot model, returns None and the caller scans
row by row (which reports it).
"""

from __future__ import annotations

import os

from .arrow_read import Unsupported, read_blocks
from .columns import NULL, Conflict, unify
from .files import DataFiles, json_layout
from .registry import DatasetAttr
from .scan import KEPT, Scan, Verdicts, finish

_RESPONSE_NEEDED = {"sft": "one", "rm": "two", "kto": "two"}  # unsupervised and pt keep any response count
# Below this many bytes of files the row-by-row scan is as fast: JSON lines are judged at about 120 MB/s one by
# one and 500 MB/s column-wise on 2 cores, and pyarrow's import costs about 0.1 s; the other readers import
# pyarrow (or pandas, which imports it) anyway, and their rows are denser.
MIN_BYTES = {"json": 8 << 20, "csv": 1 << 20, "parquet": 1 << 20, "arrow": 1 << 20}


def scan_columnar(
    files: DataFiles, attr: DatasetAttr, processor: str, workers: int | None = None, min_bytes: int | None = None
) -> Scan | None:
    """The scan, or None when only the row-by-row reader models these files or this registry entry, or when the
    files are smaller than ``min_bytes`` (MIN_BYTES of their builder) together."""
    if not _modelled(files, attr) or not _large(files, MIN_BYTES[files.builder] if min_bytes is None else min_bytes):
        return None
    try:
        return _scan(files, attr, processor, workers)
    except Unsupported:
        return None
    except Exception:  # a bug here: the row-by-row scan is the reference (tests set LF_LINT_DEBUG to see it)
        if os.environ.get("LF_LINT_DEBUG"):
            raise
        return None


def _large(files: DataFiles, min_bytes: int) -> bool:
    total = 0
    for path in files.paths:
        try:
            total += path.stat().st_size
        except OSError:
            return False
        if total >= min_bytes:
            return True
    return total >= min_bytes


def _modelled(files: DataFiles, attr: DatasetAttr) -> bool:
    if files.builder not in ("json", "csv", "parquet", "arrow"):
        return False  # text files: one column, read row by row
    if attr.formatting not in ("alpaca", "sharegpt", "openai"):
        return False
    if files.builder == "json" and any(json_layout(path) != ("lines", False) for path in files.paths):
        return False  # a JSON array, or a byte order mark (the reference reports it)
    if not all(value is None or isinstance(value, str) for value in (*attr.columns.values(), *attr.tags.values())):
        return False
    if attr.formatting == "openai":  # tool calls and tool results rename roles: sound only with distinct tags
        tags = [attr.tag(t) for t in ("user_tag", "assistant_tag", "observation_tag", "function_tag", "system_tag")]
        return all(tags) and len(set(tags)) == len(tags)
    return True


def _scan(files: DataFiles, attr: DatasetAttr, processor: str, workers: int | None) -> Scan:
    import numpy as np

    def analyse(batch):  # per block, on the reader's worker threads where it has them; the judge reads the rest
        kept, images, videos = certainly_kept(batch, attr, processor)
        return (batch_kinds(batch), kept, images, videos), np.flatnonzero(~kept).tolist()

    verdicts = Verdicts(attr, processor)
    kinds: dict = {}
    codes = bytearray()
    index = 0
    for block in read_blocks(files, workers, analyse):
        rows = block.batch.num_rows
        if rows == 0:
            continue
        block_kinds, kept, images, videos = block.analysis
        _add_kinds(kinds, block_kinds)
        block_codes = np.full(rows, KEPT, dtype=np.uint8)
        for i in np.flatnonzero(~kept).tolist():  # in row order: reasons are numbered as they first appear
            block_codes[i] = verdicts.judge(index + i, block.row(i), lambda i=i, block=block: block.location(i))
        if kept.any():
            verdicts.kept_media(int(images[kept].max()), bool(videos[kept].any()))
        codes += block_codes.tobytes()
        index += rows
    return finish(verdicts.result(bytes(codes), tuple(kinds)), kinds, attr, processor)


# ------------------------------------------------------------------------------------------ column types


def batch_kinds(batch) -> list:
    """(column, kind) of a batch's columns, in order: what ColumnTypes learns from its rows."""
    names = batch.schema.names
    if len(set(names)) != len(names):
        raise Unsupported("duplicate column names")
    return [(name, value_kind(column)) for name, column in zip(names, batch.columns)] if batch.num_rows else []


def _add_kinds(kinds: dict, block_kinds: list) -> None:
    for name, kind in block_kinds:
        try:
            kinds[name] = unify(kinds[name], kind) if name in kinds else kind
        except Conflict:
            raise Unsupported("a column type conflict") from None


def value_kind(array):
    """columns.kind_of of the values, unified: what ColumnTypes learns from these rows."""
    import pyarrow as pa

    if len(array) == 0 or array.null_count == len(array):
        return NULL
    kind = array.type
    if pa.types.is_boolean(kind):
        return "bool"
    if pa.types.is_integer(kind):
        return "int"
    if pa.types.is_float32(kind) or pa.types.is_float64(kind):
        return "float"
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return "str"
    if _is_list(kind):
        import pyarrow.compute as pc

        return ("list", value_kind(pc.list_flatten(array)))
    if pa.types.is_struct(kind):
        names = [kind.field(i).name for i in range(kind.num_fields)]
        if len(set(names)) != len(names):
            raise Unsupported("duplicate field names")
        valid = array.is_valid() if array.null_count else None
        fields = []
        for i, name in enumerate(names):
            child = array.field(i)
            fields.append((name, value_kind(child.filter(valid) if valid is not None else child)))
        return ("struct", tuple(sorted(fields)))
    raise Unsupported(f"values of type {kind}")


def _is_list(kind) -> bool:
    import pyarrow as pa

    return pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind)


# ------------------------------------------------------------------------------------------ rules


class _Columns:
    """Per-row facts about a batch's columns, as NumPy arrays (arrow_numpy.py: without pandas)."""

    def __init__(self, batch):
        self.batch, self.n = batch, batch.num_rows

    def get(self, name: str | None):
        if not name:
            return None
        index = self.batch.schema.get_field_index(name)
        return self.batch.column(index) if index >= 0 else None

    def valid_if(self, name: str | None, test):
        """Rows whose value is not null and of a type ``test`` accepts (isinstance on the Python value)."""
        import numpy as np

        from .arrow_numpy import valid

        array = self.get(name)
        if array is None or not test(array.type):
            return np.zeros(self.n, dtype=bool)
        return valid(array)


def _string(kind) -> bool:
    import pyarrow as pa

    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def _boolean(kind) -> bool:
    import pyarrow as pa

    return pa.types.is_boolean(kind)


def _struct(kind) -> bool:
    import pyarrow as pa

    return pa.types.is_struct(kind)


def _offset_list(kind) -> bool:
    """A list type with offsets (fixed-size lists are lists in Python too, but rows holding one go to the judge)."""
    import pyarrow as pa

    return pa.types.is_list(kind) or pa.types.is_large_list(kind)


def certainly_kept(batch, attr: DatasetAttr, processor: str):
    """(kept, images, videos): which rows the rules certainly keep (numpy bool), and for those rows the images
    (int) and whether videos come with them, as scan.Verdicts would count them."""
    columns = _Columns(batch)
    regular, prompt, response = (_alpaca if attr.formatting == "alpaca" else _conversation)(columns, attr)
    kept = regular & (prompt % 2 == 1)  # numpy's % is Python's: a prompt of -1 is odd, as in conversion.keeps
    needed = _RESPONSE_NEEDED.get(processor)
    if needed == "one":
        kept &= response == 1
    elif needed == "two":
        kept &= response >= 2
    if processor != "pt":
        kept &= _tools_are_json(columns, attr.column("tools"), kept)
    images, counted = _media(columns, attr.column("images"))
    videos, counted_videos = _media(columns, attr.column("videos"))
    kept &= counted & counted_videos
    return kept, images, videos > 0


def _alpaca(columns: _Columns, attr: DatasetAttr):
    """(regular, prompt, response): the rows whose shape is computed here (the rest go to the judge), and the
    converter's message counts of those rows. The prompt is 1 + 2 per history pair: odd whatever the history,
    but a history entry that is not a pair crashes the converter."""
    import numpy as np
    import pyarrow as pa

    from .arrow_numpy import integers, lengths, valid

    n = columns.n
    regular, prompt = np.ones(n, dtype=bool), np.ones(n, dtype=np.int64)
    history = columns.get(attr.column("history"))
    if history is not None and pa.types.is_fixed_size_list(history.type):
        regular &= ~valid(history)
    elif history is not None and _offset_list(history.type):
        nonempty = lengths(history) > 0
        if nonempty.any():
            import pyarrow.compute as pc

            if _offset_list(history.type.value_type):  # every pair must be a list of two
                pairs = pc.list_flatten(history)
                good = valid(pairs) & (lengths(pairs) == 2)
                regular[integers(pc.list_parent_indices(history))[~good]] = False
            else:
                regular &= ~nonempty
    response = np.zeros(n, dtype=np.int64)
    if attr.column("response"):
        response[columns.valid_if(attr.column("response"), _string)] = 1
    if attr.ranking:
        both = columns.valid_if(attr.column("chosen"), _string) & columns.valid_if(attr.column("rejected"), _string)
        response[both] = 2
    response[columns.valid_if(attr.column("kto_tag"), _boolean)] = 2
    return regular, prompt, response


def _conversation(columns: _Columns, attr: DatasetAttr):
    """ShareGPT and OpenAI: (regular, prompt, response) as for alpaca; regular rows are those whose messages all
    alternate as the tags say, with the parity the data needs. For OpenAI (distinct tags) a row without tool
    results has one role per message, and a tool call turns an assistant or function message into a function
    message, which alternates the same."""
    import numpy as np
    import pyarrow.compute as pc

    from .arrow_numpy import integers, lengths, strings, true, valid

    n = columns.n
    messages = columns.get(attr.column("messages"))
    nothing = np.zeros(n, dtype=bool), np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
    if messages is None or not _offset_list(messages.type) or not _struct(messages.type.value_type):
        return nothing
    role_tag, system_tag = attr.tag("role_tag"), attr.tag("system_tag")
    item = messages.type.value_type
    if role_tag is None or item.get_field_index(role_tag) < 0 or not _string(item.field(role_tag).type):
        return nothing
    count = lengths(messages)
    flat = pc.list_flatten(messages)
    parents = integers(pc.list_parent_indices(messages))
    position = np.arange(len(flat)) - (np.cumsum(count) - count)[parents]
    roles = flat.field(role_tag)
    present = valid(flat) & valid(roles)
    shift = np.zeros(n, dtype=np.int64)  # a leading system message leaves the conversation
    if system_tag:
        system = present & (position == 0) & true(pc.is_in(roles, value_set=strings([system_tag], roles.type)))
        shift[parents[system]] = 1
    position = position - shift[parents]
    if attr.formatting == "openai":
        odd, even = [attr.tag("user_tag")], [attr.tag("assistant_tag"), attr.tag("function_tag")]
    else:
        odd = [attr.tag("user_tag"), attr.tag("observation_tag")]
        even = [attr.tag("assistant_tag"), attr.tag("function_tag")]
    in_odd = true(pc.is_in(roles, value_set=strings([t for t in odd if t is not None], roles.type)))
    in_even = true(pc.is_in(roles, value_set=strings([t for t in even if t is not None], roles.type)))
    good = present & ((position < 0) | np.where(position % 2 == 0, in_odd, in_even))
    count = count - shift
    regular = valid(messages)
    regular[parents[~good]] = False
    regular &= count % 2 == (1 if attr.ranking else 0)
    kto = columns.valid_if(attr.column("kto_tag"), _boolean)
    pair = (
        columns.valid_if(attr.column("chosen"), _struct) & columns.valid_if(attr.column("rejected"), _struct)
        if attr.ranking
        else np.zeros(n, dtype=bool)
    )
    # conversion._pairwise_or_single
    prompt = np.where(kto, count - 1, np.where(pair, count, np.where(count == 0, 0, count - 1)))
    response = np.where(kto | pair, 2, np.where(count == 0, 0, 1))
    return regular, prompt, response


def _tools_are_json(columns: _Columns, name: str | None, kept):
    """False for the kept rows whose tools are a non-empty string that is not JSON (the template stops on it)."""
    import json

    import numpy as np

    from .arrow_numpy import lengths, mask

    ok = np.ones(columns.n, dtype=bool)
    tools = columns.get(name)
    if tools is None or not _string(tools.type):
        return ok
    candidates = kept & (lengths(tools) > 0)
    if not candidates.any():
        return ok
    for row, value in zip(np.flatnonzero(candidates).tolist(), tools.filter(mask(candidates)).to_pylist()):
        try:
            json.loads(value)
        except ValueError:
            ok[row] = False
    return ok


def _media(columns: _Columns, name: str | None):
    """(count, counted): Verdicts' media count per row (a list's length, else 1 for a truthy value), and where it
    was counted here (other rows go to the judge)."""
    import numpy as np
    import pyarrow as pa

    from .arrow_numpy import lengths, true, valid

    n = columns.n
    array = columns.get(name)
    count, counted = np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool)
    if array is None or pa.types.is_null(array.type):
        return count, counted
    if _offset_list(array.type):
        return lengths(array), counted
    if _string(array.type):
        return (lengths(array) > 0).astype(np.int64), counted
    if _boolean(array.type):
        return true(array).astype(np.int64), counted
    return count, ~valid(array)
