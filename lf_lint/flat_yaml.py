"""Flat configs read without PyYAML, with the result PyYAML gives.

Importing PyYAML costs more than the rest of a schema-only lint. Most configs (all of LLaMA-Factory's
examples) are one block mapping of ``key: value`` lines with plain or simply quoted scalars, which
need none of it. ``read_flat`` reads exactly such a file and records what loading.py records from
PyYAML's nodes: the values as the release's loader resolves and constructs them (YAML 1.1 for
``yaml.safe_load``, OmegaConf's float resolver and no timestamps for ``OmegaConf.load``), the span of
every key and value, the scalars and the duplicate keys. Anything it is not sure of (nested values,
empty values, anchors, tags, flow collections, multi-line or escaped scalars, numbers in any notation but
plain decimals and exponents, dates, tabs, CR line ends, non-ASCII outside comments, a last line without
its newline) makes it return False, and the file goes to PyYAML. tests/test_flat_yaml.py checks that both
agree.
"""

from __future__ import annotations

import re

from .patterns import LazyPattern

_KEY = re.compile(r"([A-Za-z_][A-Za-z0-9_.\-]*):(?: +|$)")
_INT = re.compile(r"[-+]?(?:0|[1-9][0-9]*)")
_FLOAT = re.compile(r"[-+]?[0-9]+\.[0-9]+(?:[eE][-+][0-9]+)?")  # a float to YAML 1.1 and OmegaConf alike
_EXPONENT = LazyPattern(r"[-+]?[0-9]+(?:\.[0-9]+)?[eE][-+]?[0-9]+")  # a float to OmegaConf only (``1e-4``)
_BOOLS = {
    **dict.fromkeys(("yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"), True),
    **dict.fromkeys(("no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"), False),
}
_NULLS = frozenset({"null", "Null", "NULL", "~"})
_PLAIN_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_/$~.+-")
_MAX_PAIRS = 49_999  # loading.MAX_EXPANDED_NODES: 1 + 2 x pairs values

STR, INT, FLOAT = "tag:yaml.org,2002:str", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"
BOOL, NULL = "tag:yaml.org,2002:bool", "tag:yaml.org,2002:null"


class _NotFlat(Exception):
    pass


def read_flat(config, omegaconf: bool) -> bool:
    """Fill ``config`` (a loading.LoadedConfig) as PyYAML would, if its text is a flat mapping; False otherwise.
    ``omegaconf``: read as ``OmegaConf.load`` does (LLaMA-Factory 0.9.4+), else as ``yaml.safe_load``."""
    try:
        entries = _entries(config.text, omegaconf)
    except _NotFlat:
        return False
    if not entries or len(entries) > _MAX_PAIRS:
        return False
    _record(config, entries)
    return True


def _entries(text: str, omegaconf: bool) -> list[tuple]:
    """(line, key, (text, plain, tag, value, column, end_column)) of every ``key: value`` line."""
    if not text.endswith("\n") or "\t" in text or "\r" in text:
        raise _NotFlat
    entries = []
    for number, line in enumerate(text.split("\n")[:-1]):
        if not line or line[0] == " " or line[0] == "#":
            body = line.lstrip(" ")
            if body and body[0] != "#":
                raise _NotFlat  # an indented value: nested, or a scalar running on
            _check_comment(body)
            continue
        match = _KEY.match(line)
        if match is None or match.group(1) in _BOOLS or match.group(1) in _NULLS or len(match.group(1)) > 1000:
            raise _NotFlat  # not a key, a key PyYAML would not read as a string, or too long for a simple key
        entries.append((number, match.group(1), _value(line, match.end(), omegaconf)))
    return entries


def _check_comment(comment: str) -> None:
    if not comment.isprintable():  # what YAML refuses (control characters, line separators) or might
        raise _NotFlat


def _value(line: str, start: int, omegaconf: bool) -> tuple:
    if start == len(line) or line[start] == "#":
        raise _NotFlat  # an empty value (null), or one on the next lines
    quote = line[start]
    if quote in "'\"":
        end = line.find(quote, start + 1)
        if end == -1:
            raise _NotFlat
        text, rest = line[start + 1 : end], line[end + 1 :]
        if (quote == '"' and "\\" in text) or not text.isascii() or not text.isprintable():
            raise _NotFlat
        if rest.strip(" "):
            if not rest.startswith(" ") or rest.lstrip(" ")[0] != "#":
                raise _NotFlat
            _check_comment(rest)
        return text, False, STR, text, start, end + 1
    comment = line.find(" #", start)
    text = (line[start:] if comment == -1 else line[start:comment]).rstrip(" ")
    if comment != -1:
        _check_comment(line[comment:])
    if not text.isascii() or not text.isprintable() or ": " in text or text.endswith(":"):
        raise _NotFlat
    tag, value = _resolve(text, omegaconf)
    return text, True, tag, value, start, start + len(text)


def _resolve(text: str, omegaconf: bool) -> tuple[str, object]:
    """The tag and value of a plain scalar (yaml.resolver.Resolver's implicit resolvers, SafeConstructor)."""
    first = text[0]
    if first not in _PLAIN_START or text == "-" or text.startswith("- "):
        raise _NotFlat  # an indicator (anchor, alias, tag, flow collection, block scalar, sequence entry, ...)
    if text in _BOOLS:
        return BOOL, _BOOLS[text]
    if text in _NULLS:
        return NULL, None
    if first in "0123456789+-":
        if _INT.fullmatch(text):
            return INT, int(text)
        if _FLOAT.fullmatch(text):
            return FLOAT, float(text)
        if _EXPONENT.fullmatch(text):
            return (FLOAT, float(text)) if omegaconf else (STR, text)
        if _numeric_to_yaml(text, omegaconf):
            raise _NotFlat  # octal, hex, sexagesimal, underscores, timestamps, ...
        return STR, text  # a version, a list of numbers, a size: "0.9.5", "0.4,0.6", "7b"
    if first == "." and len(text) > 1 and text[1] in "0123456789_iInN":
        raise _NotFlat  # .5, .inf, .nan and their kin
    return STR, text


def _numeric_to_yaml(text: str, omegaconf: bool) -> bool:
    """Whether a resolver of the release's loader could take ``text`` for something else than a string: PyYAML's
    int, float and timestamp (any ``dddd-`` start) resolvers, and OmegaConf's float resolver."""
    from .loading import _OMEGACONF_FLOAT, _YAML11_FLOAT

    if _YAML11_INT.match(text) or _YAML11_FLOAT.match(text) or (omegaconf and _OMEGACONF_FLOAT.match(text)):
        return True
    return not omegaconf and _TIMESTAMP_START.match(text) is not None


# yaml.resolver.Resolver's int (YAML 1.1), and the start every timestamp it resolves has
_YAML11_INT = LazyPattern(
    r"""^(?:[-+]?0b[0-1_]+
    |[-+]?0[0-7_]+
    |[-+]?(?:0|[1-9][0-9_]*)
    |[-+]?0x[0-9a-fA-F_]+
    |[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$""",
    re.X,
)
_TIMESTAMP_START = LazyPattern(r"[0-9][0-9][0-9][0-9]-")


def _record(config, entries: list[tuple]) -> None:
    """What loading._load_yaml records: data (the last duplicate wins), spans, scalars and duplicates."""
    from .loading import Duplicate, Scalar, Span

    data: dict = {}
    previous: dict[str, Span] = {}
    for number, key, (_, _, _, value, _, _) in entries:
        span = Span(number + 1, 1, number + 1, len(key) + 1)
        if key in previous:
            config.duplicates.append(Duplicate((), key, previous[key], span))
        previous[key] = span
        config.key_spans[(key,)] = span
        data[key] = value
    config.data = data
    end_line = config.text.count("\n")
    config.value_spans[()] = Span(entries[0][0] + 1, 1, end_line + 1, 1)
    for number, key, (text, plain, tag, _, column, end) in reversed(entries):  # PyYAML's nodes are walked last first
        span = Span(number + 1, column + 1, number + 1, end + 1)
        config.value_spans.setdefault((key,), span)
        config.scalars.append(Scalar((key,), text, plain, tag, data[key], span))
