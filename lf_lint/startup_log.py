"""``lf-lint explain-log``, reading: the Trainer's start-up block, or what people paste of it.

A log such as::

    ***** Running training *****
      Num examples = 1,047
      Num Epochs = 300
      Instantaneous batch size per device = 10
      Total train batch size (w. parallel, distributed & accumulation) = 80
      Gradient Accumulation steps = 8
      Total optimization steps = 3,900

is read into a ``StartupLog``. People paste what they have: some of the lines, without the header, with the
logging prefix (``[INFO|trainer.py:2406] <time> >>``), blank lines and prose around them. Any subset is read
and what is missing is recorded. The prefix's line numbers pin the release that wrote the log (``identify``,
from lf_lint/data/trainer_log_lines.json, made by tools/generate_trainer_log_lines.py). The PPO trainer
(LLaMA-Factory's CustomPPOTrainer) logs its own variant, recognised by ``Total training steps``.
log_explanation.py says what produced the numbers.
"""

from __future__ import annotations

import re
from functools import cache
from typing import NamedTuple

from .datafiles import read_json
from .versions import NEWEST_TRANSFORMERS, SUPPORTED_LLAMAFACTORY, parse_version

_NUMBER = r"\s*=\s*(\d[\d,]*)"
_FIELDS = {
    "num_examples": "Num examples" + _NUMBER,
    "num_epochs": r"Num Epochs\s*=\s*(\d[\d,]*(?:\.\d+)?)",  # the PPO trainer prints num_train_epochs as given
    "update_steps_per_epoch": "Num update steps per epoch" + _NUMBER,  # transformers 5.3+
    "per_device": "Instantaneous batch size per device" + _NUMBER,
    "data_parallel": r"Training with DataParallel so batch size has been adjusted to:\s*(\d[\d,]*)",
    "total_batch": r"Total train batch size \(w\. parallel, (?:buffer, )?distributed & accumulation\)" + _NUMBER,
    "accumulation": "Gradient Accumulation steps" + _NUMBER,
    "total_steps": "Total (?:optimization|training) steps" + _NUMBER,
    "trainable_params": "Number of trainable parameters" + _NUMBER,
}
_PATTERNS = {name: re.compile(pattern) for name, pattern in _FIELDS.items()}
LABELS = {
    "num_examples": "Num examples",
    "num_epochs": "Num Epochs",
    "per_device": "Instantaneous batch size per device",
    "total_batch": "Total train batch size",
    "accumulation": "Gradient Accumulation steps",
    "total_steps": "Total optimization steps",
}
_REQUIRED = tuple(LABELS)
_BLOCK_START = "***** Running training *****"
# the evaluation and prediction blocks also log "Num examples", of the evaluation set
_OTHER_BLOCK = re.compile(r"\*{5} Running (?!training \*)")
# The file (or logger) and line a prefix names: transformers' explicit format "[INFO|trainer.py:2406] <time> >> "
# (what LLaMA-Factory turns on; TRANSFORMERS_VERBOSITY=detail: the full path, or in 5.x "INFO [transformers.trainer:1469]"),
# LLaMA Board's running log "[INFO|<time>] trainer.py:2406 >> " and LLaMA-Factory's own "[INFO|<time>] <logger>:157 >> "
# (llamafactory extras/logging.py, 0.9.2-0.9.5). The name starts with a letter, so a time's "10:11:12]" is no match.
_SOURCE = re.compile(r"(?P<name>(?:[^\s\[\]|]*[/\\])?[A-Za-z_][\w.-]*):(?P<line>\d+)(?=\]| >>)")


class LogError(ValueError):
    """The text holds no usable Trainer start-up lines."""


class StartupLog(NamedTuple):
    num_examples: int | None  # None: the line is not in the text
    num_epochs: int | float | None
    per_device: int | None
    total_batch: int | None
    accumulation: int | None
    total_steps: int | None
    trainable_params: int | None
    update_steps_per_epoch: int | None  # logged by transformers 5.3+ only
    ppo: bool  # LLaMA-Factory's PPO trainer ("Total training steps", batch "w. parallel, buffer, ...")
    line: int  # 1-based line of "***** Running training *****", or of the block's first line without it
    blocks: int  # how many start-up blocks the text holds (a resumed run logs one per start)
    missing: tuple[str, ...] = ()  # the block's numbers the text lacks, as the Trainer names them
    sources: tuple[tuple[str, str, int], ...] = ()  # (key, "trainer.py" or "logging.py", line) from the prefixes
    data_parallel: int | None = None  # the batch of one torch.nn.DataParallel process (several GPUs, one process)


class _Entry(NamedTuple):
    key: str  # a _FIELDS name, or "header"
    line: int  # 1-based line of the text
    text: str  # what matched
    value: str | None
    source: tuple[str, int] | None


def _source(prefix: str) -> tuple[str, int] | None:
    """The Trainer's trainer.py or the PPO trainer's logging.py (by file or logger name) and line, from a prefix."""
    matches = list(_SOURCE.finditer(prefix))
    if not matches:
        return None
    match = matches[-1]  # the last one: a path or a message before it may hold a colon too
    name = re.split(r"[/\\]", match.group("name"))[-1]
    if name in ("trainer.py", "transformers.trainer"):
        return "trainer.py", int(match.group("line"))
    if name in ("logging.py", "llamafactory.train.ppo.trainer"):  # the PPO trainer logs through info_rank0
        return "logging.py", int(match.group("line"))
    return None


def _entries(lines: list[str]):
    in_other_block = False
    for number, line in enumerate(lines, 1):
        if _BLOCK_START in line:
            in_other_block = False
            yield _Entry("header", number, _BLOCK_START, None, _source(line[: line.index(_BLOCK_START)]))
            continue
        if _OTHER_BLOCK.search(line):
            in_other_block = True
            continue
        found = next(((key, m) for key, pattern in _PATTERNS.items() if (m := pattern.search(line))), None)
        if found is None:
            in_other_block = in_other_block and (not line.strip() or "Batch size = " in line)
            continue
        key, match = found
        if in_other_block and key == "num_examples":
            continue
        in_other_block = False
        yield _Entry(key, number, match.group(0), match.group(1), _source(line[: match.start()]))


def _blocks(lines: list[str]) -> list[list[_Entry]]:
    """A block starts at the header, or at a line whose number the current block already has."""
    blocks: list[list[_Entry]] = []
    for entry in _entries(lines):
        if not blocks or entry.key == "header" or any(e.key == entry.key for e in blocks[-1]):
            blocks.append([])
        blocks[-1].append(entry)
    return blocks


def decode_log(data: bytes) -> str:
    """A saved log's text: UTF-16 with its byte-order mark (PowerShell's `>` and Tee-Object write it), else UTF-8;
    bytes of another encoding (prose in GBK, say) become replacement characters, the Trainer's ASCII lines stay."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")
    return data.decode("utf-8-sig", errors="replace")


def parse_startup_log(text: str) -> StartupLog:
    found = _blocks(text.splitlines())
    blocks = [block for block in found if any(entry.value is not None for entry in block)]
    if not blocks:
        where = f" (only the header, at line {found[0][0].line})" if found else ""
        raise LogError(
            f"no Trainer start-up numbers{where}: paste the lines the Trainer logs when training starts "
            f"(`{_BLOCK_START}`, `Num examples = ...`, ..., `Total optimization steps = ...`)"
        )
    block = blocks[0]
    values: dict = dict.fromkeys(_FIELDS)
    for entry in block:
        if entry.value is not None:
            number = entry.value.replace(",", "")
            values[entry.key] = float(number) if "." in number else int(number)
    sources = tuple((e.key, *e.source) for e in block if e.source is not None)
    ppo = any("training steps" in e.text or "buffer" in e.text for e in block) or any(
        source == "logging.py" for _, source, _ in sources
    )
    missing = tuple(
        "Total training steps" if ppo and key == "total_steps" else LABELS[key]
        for key in _REQUIRED
        if values[key] is None
    )
    return StartupLog(**values, ppo=ppo, line=block[0].line, blocks=len(blocks), missing=missing, sources=sources)


class Origin(NamedTuple):
    """What the prefixes' line numbers say about the release that wrote the log."""

    package: str  # "transformers", or "LLaMA-Factory" for its PPO trainer
    releases: tuple[str, ...]  # every release whose lines match all the prefixed ones; empty: none does
    summary: str


@cache
def _line_tables() -> dict:
    return read_json("trainer_log_lines.json")


def release_order(package: str) -> list[str]:
    tables = _line_tables()["transformers" if package == "transformers" else "llamafactory_ppo"]
    return sorted((v for table in tables for v in table["releases"]), key=parse_version)


def release_runs(releases, order: list[str]) -> list[list[tuple[int, str]]]:
    """The releases as runs of neighbours in the order they were published: [(position, release), ...] each."""
    wanted = set(releases)
    runs: list[list[tuple[int, str]]] = []
    for index, version in enumerate(order):
        if version in wanted:
            if runs and runs[-1][-1][0] == index - 1:
                runs[-1].append((index, version))
            else:
                runs.append([(index, version)])
    return runs


def run_label(run: list[tuple[int, str]]) -> str:
    return run[0][1] if len(run) == 1 else f"{run[0][1]}-{run[-1][1]}"


def identify(log: StartupLog) -> Origin | None:
    """The releases whose start-up block sits on the lines the prefixes name; None without such prefixes."""
    file = "logging.py" if log.ppo else "trainer.py"
    seen = [(key, line) for key, source, line in log.sources if source == file]
    if not seen:
        return None
    numbers = sorted({line for _, line in seen})
    where = f"{file}:{numbers[0]}" + (f"-{numbers[-1]}" if len(numbers) > 1 else "")
    if log.ppo:
        package, tables = "LLaMA-Factory", _line_tables()["llamafactory_ppo"]
        matched = [v for table in tables if numbers == [table["line"]] for v in table["releases"]]
        where = f"line {where.partition(':')[2]} of the prefixes"
        what = "logger.info_rank0 (extras/logging.py), through which its PPO trainer logs the start-up block"
    else:
        package, tables = "transformers", _line_tables()["transformers"]
        matched = [v for table in tables if all(table["lines"].get(k) == n for k, n in seen) for v in table["releases"]]
        what = "start-up block"
    order = release_order(package)
    if not matched:
        unknown = f"(a newer or patched {package}?)" + (": every supported release is tried" if not log.ppo else "")
        return Origin(package, (), f"{where} matches no {package} release from {order[0]} to {order[-1]} {unknown}")
    labels = [run_label(run) for run in release_runs(matched, order)]
    summary = (
        f"{where} is {package} {labels[0]}'s {what}"
        if len(labels) == 1
        else f"{where} is the {what} of {package} " + ", ".join(labels[:-1]) + f" and {labels[-1]}"
    )
    newest = parse_version(NEWEST_TRANSFORMERS if package == "transformers" else SUPPORTED_LLAMAFACTORY[-1])[:2]
    if package == "transformers" and parse_version(matched[-1])[:2] > newest:
        summary += f" (newer than lf-lint models: read with {NEWEST_TRANSFORMERS}'s step arithmetic)"
    return Origin(package, tuple(sorted(matched, key=parse_version)), summary)
