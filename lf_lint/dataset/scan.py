"""Read one dataset's rows once and keep, per row, whether the stage's processor keeps it.

The result is small whatever the file size: a keep-bitmap (one byte per row), the number of
rows per drop reason with the first few locations, the unified column types, and the rows the
converter would crash on. It is what the cache stores.

Two readers produce it. ``scan_rows`` is the reference: every row as a Python dict, judged by the
converter's and the processor's rules one row at a time. A plain count (no ``measure``) first
tries columnar.py, which reads the files as Arrow tables in blocks, keeps the rows the rules
certainly keep with column-wise checks, and hands every other row to the same per-row judge
(``Verdicts``); where a file holds anything the columnar reader does not model, the reference
reads it.
"""

from __future__ import annotations

from typing import NamedTuple

from .columns import ColumnTypes, has_field
from .conversion import SHAPERS, Crash, drop_reason, keeps, required_columns, text_sizes, tools_problem
from .files import DataFiles, ReadError, iter_rows
from .registry import DatasetAttr

KEPT, CRASHED = 0, 255
SAMPLES_PER_REASON = 50  # locations remembered per drop reason
UNMEASURED = 0xFFFFFFFF  # a token measure could not encode this row (sizes column 0)
MEASURE_BATCH = 2048  # rows handed to a token measure at once (it tokenizes them in one batch)


class Scan(NamedTuple):
    rows: int
    codes: bytes  # one byte per row: KEPT, CRASHED, or 1 + the index of its drop reason
    reasons: tuple[str, ...]
    samples: dict  # reason index -> ((row, location), ...): the first rows dropped for it
    crashes: dict  # row -> (location, message): rows the converter fails on
    columns: tuple[str, ...]
    problem: str | None = None  # the table cannot be built, or a column the converter needs is missing
    problem_location: str | None = None
    sizes: bytes = b""  # with measure: per row, two uint32 (array "I"); see scan()
    messages: bytes = b""  # with a per-message token measure: every kept row's message token counts (array "I")
    message_starts: bytes = b""  # where each row's counts start in ``messages`` (array "I", rows + 1 entries)
    most_images: int = 0  # the most images a kept row carries (the memory estimate's bound on a tower's work)
    videos: bool = False  # some kept row carries videos

    def failed(self, problem: str, location: str | None) -> Scan:
        return self._replace(problem=problem, problem_location=location)


def _media_count(row: dict, column: str | None) -> int:
    """Images (or videos) of a row: LLaMA-Factory's converter takes a list, or one path as a list of one."""
    value = row.get(column) if column else None
    if isinstance(value, list):
        return len(value)
    return 1 if value else 0


class Verdicts:
    """The per-row judge: what the converter and the stage's processor make of each row, fed in row order.

    ``judge`` returns the row's code and remembers drop reasons (numbered in order of first appearance),
    their first locations, crashes, and the media of kept rows. ``location`` is a string or a callable that
    makes one (only called for a dropped or crashed row)."""

    def __init__(self, attr: DatasetAttr, processor: str):
        self.attr, self.processor = attr, processor
        self.shape_of = SHAPERS[attr.formatting](attr)
        self.images, self.videos_column = attr.column("images"), attr.column("videos")
        self.reasons: dict[str, int] = {}
        self.samples: dict[int, list] = {}
        self.crashes: dict[int, tuple[str, str]] = {}
        self.most_images, self.videos = 0, False

    def shape(self, index: int, data: dict, location):
        """The converter's shape of the row, or None when it crashes (recorded)."""
        try:
            return self.shape_of(data)
        except Crash as exc:
            self.crashes[index] = (_where(location), str(exc))
            return None

    def judge(self, index: int, data: dict, location, shape=None) -> int:
        if shape is None:
            shape = self.shape(index, data, location)
            if shape is None:
                return CRASHED
        processor = self.processor
        if processor == "pt" and shape.prompt == 0:
            # PretrainDatasetProcessor reads _prompt[0]["content"]: an emptied (broken) row has none
            self.crashes[index] = (
                _where(location),
                f"the pre-training processor needs a prompt and this row has none ({shape.note}): IndexError: list index out of range",
            )
            return CRASHED
        if keeps(processor, shape):
            problem = tools_problem(data, self.attr) if processor != "pt" else None  # kept rows meet the template
            if problem:
                self.crashes[index] = (_where(location), problem)
                return CRASHED
            self.kept_media(_media_count(data, self.images), _media_count(data, self.videos_column) > 0)
            return KEPT
        reason = drop_reason(processor, shape)
        code = self.reasons.setdefault(reason, len(self.reasons))
        seen = self.samples.setdefault(code, [])
        if len(seen) < SAMPLES_PER_REASON:
            seen.append((index, _where(location)))
        return 1 + min(code, 253)

    def kept_media(self, images: int, videos: bool) -> None:
        self.most_images = max(self.most_images, images)
        self.videos = self.videos or videos

    def result(self, codes: bytes, columns: tuple, **extra) -> Scan:
        return Scan(
            rows=len(codes),
            codes=codes,
            reasons=tuple(self.reasons),
            samples={k: tuple(v) for k, v in self.samples.items()},
            crashes=self.crashes,
            columns=columns,
            most_images=self.most_images,
            videos=self.videos,
            **extra,
        )


def _where(location) -> str:
    return location() if callable(location) else location


def scan(files: DataFiles, attr: DatasetAttr, processor: str, measure=False) -> Scan:
    """The scan of these files: column-wise where columnar.py can read them (a plain count), else row by row."""
    if not measure:
        from .columnar import scan_columnar

        result = scan_columnar(files, attr, processor)
        if result is not None:
            return result
    return scan_rows(files, attr, processor, measure)


def scan_rows(files: DataFiles, attr: DatasetAttr, processor: str, measure=False) -> Scan:
    """The reference scan, one row at a time. ``measure`` also records sizes per row, for packing. True: UTF-8
    bytes of the first prompt and of every message. A token measure (tokens.PretrainLengths,
    chat_template.SupervisedLengths): the row's exact token length (UNMEASURED where it cannot be encoded) and
    the UTF-8 bytes of every message; a measure that counts per message (chat_template.SupervisedLengths) also
    fills ``messages``, so that the cut-off applies later."""
    from array import array

    pending: list = []  # (row index, item) waiting for a token measure
    per_message = getattr(measure, "per_message", False)
    messages, starts = array("I"), array("I")  # per_message: starts[i] is set when row i is flushed

    def flush() -> None:
        for (index, _), value in zip(pending, measure.measure([item for _, item in pending])):
            while len(starts) <= index:
                starts.append(len(messages))
            if value is None:
                sizes[2 * index] = UNMEASURED
            elif per_message:
                messages.extend(value)
                sizes[2 * index] = sum(value)
            else:
                sizes[2 * index] = value
        pending.clear()

    verdicts = Verdicts(attr, processor)
    sizes = array("I")
    codes = bytearray()
    types = ColumnTypes()
    try:
        for index, row in enumerate(iter_rows(files)):
            types.add(row.data, lambda row=row: row.location)
            if measure:
                sizes.extend(text_sizes(row.data, attr))
            location = lambda row=row: row.location  # noqa: E731
            shape = verdicts.shape(index, row.data, location)
            if shape is None:
                codes.append(CRASHED)
                continue
            if measure and measure is not True:
                pending.append((index, measure.item(row.data, attr, keeps(processor, shape))))
                if len(pending) >= MEASURE_BATCH:
                    flush()
            codes.append(verdicts.judge(index, row.data, location, shape))
        if pending:
            flush()
        if per_message:
            while len(starts) <= len(codes):
                starts.append(len(messages))
    except ReadError as exc:
        return Scan(0, b"", (), {}, {}, ()).failed(str(exc), exc.location)
    result = verdicts.result(
        bytes(codes),
        tuple(types.kinds),
        sizes=sizes.tobytes(),
        messages=messages.tobytes(),
        message_starts=starts.tobytes(),
    )
    if types.problem is not None:
        return result.failed(types.problem.message, types.problem.location)
    return finish(result, types.kinds, attr, processor)


def finish(result: Scan, kinds: dict, attr: DatasetAttr, processor: str) -> Scan:
    """The table-level checks once every row is read: the columns the converter reads, the message tags."""
    if not result.codes:
        return result
    missing = [c for c in required_columns(attr, processor) if c not in kinds]
    if missing:
        hint = (
            " (a `columns` block sets every column it does not list to None; list all of them)"
            if "columns" in attr.entry
            else ""
        )
        return result.failed(
            f"the converter reads column `{missing[0]}`, which no row has: LLaMA-Factory stops with KeyError: '{missing[0]}'{hint}",
            None,
        )
    if attr.formatting != "alpaca":
        messages_kind = kinds.get(attr.column("messages"))
        for tag in ("role_tag", "content_tag"):
            name = attr.tag(tag)
            if name is None or not has_field(messages_kind, name):
                return result.failed(
                    f"no message has the key `{name}` ({tag}): LLaMA-Factory stops with KeyError: {name!r}", None
                )
    return result
