"""Read a config file the way the targeted LLaMA-Factory release reads it, keeping positions.

LLaMA-Factory's ``read_args`` changed between releases (parser.py in each):

* 0.9.2 reads YAML with PyYAML ``yaml.safe_load`` (YAML 1.1: ``1e-4`` is a *string*,
  a duplicate key silently keeps the last value) and accepts no ``key=value`` overrides.
* 0.9.3 still uses ``yaml.safe_load`` but merges the result with
  ``OmegaConf.from_cli(argv[2:])``, so values also pass through OmegaConf.
* 0.9.4 and 0.9.5 read YAML with ``OmegaConf.load``: OmegaConf's loader adds a float
  resolver (``1e-4`` is a float), drops the timestamp resolver (dates stay strings) and
  rejects duplicate keys. ``${...}`` interpolations are not resolved
  (``to_container(resolve=False)``).
* ``.json`` configs: ``json.loads`` in 0.9.2/0.9.3, ``OmegaConf.load`` in 0.9.4, and a
  crash in 0.9.5 (``json.load(Path(...))``).

We compose the document once with PyYAML (the C parser when available) using a resolver
that copies the target's loader, construct values with PyYAML's own constructor, and
record a span for every key and value (pyyaml_reader.py). A flat config (one ``key: value``
per line, as LLaMA-Factory's examples are) is read with the same result without importing
PyYAML (flat_yaml.py). Nothing here imports omegaconf.
"""

from __future__ import annotations

import json
import os
import re
import sys

from .flat_yaml import read_flat
from .patterns import LazyPattern
from .records import Record
from .versions import Target

MAX_FILE_BYTES = 2 * 1024 * 1024  # a training config is a few KB; anything this big is not one
MAX_EXPANDED_NODES = 100_000  # YAML aliases expanded beyond this are an "alias bomb"

# OmegaConf 2.x ``_utils.get_yaml_loader``: YAML 1.1 floats plus exponent-only forms.
_OMEGACONF_FLOAT = re.compile(
    r"""^(?:
     [-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+][0-9]+)?
    |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)
# What YAML 1.1 reads as a float; a plain scalar matching OmegaConf's regex but not this
# one is a float for LF >= 0.9.4 and a string for LF <= 0.9.3.
_YAML11_FLOAT = LazyPattern(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?
    |\.[0-9_]+(?:[eE][-+][0-9]+)?
    |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)

STR_TAG = "tag:yaml.org,2002:str"


class ReaderSemantics(Record):
    """How one LLaMA-Factory release turns a config file into the dict it parses."""

    yaml_reader: str  # "pyyaml" or "omegaconf"
    duplicate_keys_fatal: bool
    through_omegaconf: bool  # values pass OmegaConf.create/merge (its value-type rules apply)
    accepts_overrides: bool  # `llamafactory-cli train cfg.yaml key=value`
    json_reader: str  # "json", "omegaconf" or "broken"

    @property
    def loader(self) -> type:
        from .pyyaml_reader import loader_class

        return loader_class(self.yaml_reader)


# One row per LLaMA-Factory release (hparams/parser.py::read_args of that release).
READER_SEMANTICS = {
    "0.9.2": ReaderSemantics("pyyaml", False, False, False, "json"),
    "0.9.3": ReaderSemantics("pyyaml", False, True, True, "json"),
    "0.9.4": ReaderSemantics("omegaconf", True, True, True, "omegaconf"),
    "0.9.5": ReaderSemantics("omegaconf", True, True, True, "broken"),
    "0.9.6.dev0": ReaderSemantics("omegaconf", True, True, True, "broken"),  # main: read_args as in 0.9.5
}


class Span(Record):
    """A 1-based region of the source text."""

    line: int
    column: int
    end_line: int
    end_column: int

    @classmethod
    def of_node(cls, node) -> Span:
        """The span of a PyYAML node."""
        start, end = node.start_mark, node.end_mark
        return cls(start.line + 1, start.column + 1, end.line + 1, end.column + 1)

    @classmethod
    def at(cls, line: int, column: int, width: int = 1) -> Span:
        return cls(line, column, line, column + max(width, 1))


START = Span(1, 1, 1, 1)


def is_date(value: object) -> bool:
    """A ``datetime.date`` or ``datetime.datetime`` (what YAML 1.1 timestamps become), asked without importing
    datetime: no value can be one before something imported it."""
    datetime = sys.modules.get("datetime")
    return datetime is not None and isinstance(value, datetime.date)


class Scalar(Record):
    """A scalar as written in the file, with what the target's reader made of it."""

    path: tuple
    text: str
    plain: bool  # unquoted, so YAML's implicit typing applied
    tag: str
    value: object
    span: Span


class Duplicate(Record):
    path: tuple  # the mapping that holds the key
    key: str
    first: Span
    second: Span


class LoadProblem(Record):
    """The file could not be read as a config: kind is a loader rule's topic."""

    kind: str  # "io", "syntax", "encoding", "too-large", "alias-bomb", "not-mapping", "empty", "unsupported-value"
    message: str
    span: Span = START


class Override(Record):
    """One ``--set key=value`` (``llamafactory-cli train cfg.yaml key=value``)."""

    text: str
    key: str
    value: object


class LoadedConfig:
    """A config as LLaMA-Factory will receive it, with positions for every key and value."""

    def __init__(self, path: str, text: str, format: str, semantics: ReaderSemantics, problems: list | None = None):
        self.path = path
        self.text = text
        self.format = format  # "yaml" or "json"
        self.semantics = semantics
        self.data: dict | None = None
        self.value_spans: dict[tuple, Span] = {}
        self.key_spans: dict[tuple, Span] = {}
        self.scalars: list[Scalar] = []
        self.duplicates: list[Duplicate] = []
        self.problems: list[LoadProblem] = problems or []
        self.overrides: list[Override] = []

    @property
    def lines(self) -> list[str]:
        return self.text.splitlines()

    def key_span(self, path: tuple) -> Span:
        return self.key_spans.get(path) or self.value_spans.get(path) or self._nearest(path)

    def value_span(self, path: tuple) -> Span:
        return self.value_spans.get(path) or self.key_spans.get(path) or self._nearest(path)

    def _nearest(self, path: tuple) -> Span:
        while path:
            path = path[:-1]
            if path in self.value_spans:
                return self.value_spans[path]
        return START

    def overridden(self, key: str) -> Override | None:
        for override in reversed(self.overrides):
            if override.key == key:
                return override
        return None


# --------------------------------------------------------------------------- reading


def read_text(path: str | os.PathLike, max_bytes: int = MAX_FILE_BYTES) -> tuple[str | None, LoadProblem | None]:
    """File text decoded as UTF-8 (what ``OmegaConf.load`` and ``Path.read_text`` use), or the problem."""
    try:
        if os.path.isdir(path):
            return None, LoadProblem("io", f"{path} is a directory, not a config file")
        size = os.stat(path).st_size
        if size > max_bytes:
            return None, LoadProblem(
                "too-large", f"file is {size:,} bytes; a training config is a few KB (limit {max_bytes:,} bytes)"
            )
        with open(path, "rb") as handle:
            raw = handle.read()
    except FileNotFoundError:
        return None, LoadProblem("io", f"{path}: no such file")
    except OSError as exc:
        return None, LoadProblem("io", f"{path}: cannot read ({exc.strerror or exc})")
    return decode(raw)


def decode(raw: bytes) -> tuple[str | None, LoadProblem | None]:
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        return None, LoadProblem(
            "encoding",
            f"byte 0x{raw[exc.start]:02x} at offset {exc.start} is not valid UTF-8 "
            "(LLaMA-Factory reads configs as UTF-8; is this a binary file?)",
            Span.at(line, column),
        )
    return text, None


def load(
    path: str | os.PathLike,
    target: Target,
    *,
    text: str | None = None,
    overrides: list[str] | None = None,
    max_bytes: int = MAX_FILE_BYTES,
) -> LoadedConfig:
    """Load ``path`` (or ``text`` shown as ``path``) as ``target``'s LLaMA-Factory would."""
    semantics = READER_SEMANTICS[target.llamafactory]
    name = str(path)
    fmt = "json" if name.endswith(".json") else "yaml"
    if text is None:
        text, problem = read_text(path, max_bytes)
        if problem is not None:
            return LoadedConfig(name, "", fmt, semantics, problems=[problem])
    config = LoadedConfig(name, text, fmt, semantics)
    if "\x00" in text:
        index = text.index("\x00")
        line = text.count("\n", 0, index) + 1
        column = index - (text.rfind("\n", 0, index) + 1) + 1
        config.problems.append(
            LoadProblem("encoding", "NUL byte in the file: this is not a text config", Span.at(line, column))
        )
        return config
    if fmt == "json" and semantics.json_reader == "json":
        _load_json(config)
    elif not (fmt == "yaml" and read_flat(config, semantics.yaml_reader == "omegaconf")):
        from .pyyaml_reader import load_yaml

        load_yaml(config, semantics.loader)
    if config.data is not None and overrides:
        _apply_overrides(config, overrides)
    return config


def load_mapping(
    mapping: dict, target: Target, *, name: str = "<config>", overrides: list[str] | None = None
) -> LoadedConfig:
    """A config given as a Python mapping (the API): the values are taken as they are, as
    ``run_exp(args=dict)`` takes them; positions come from a YAML rendering of the mapping."""
    import copy

    from .pyyaml_reader import dump, record_mapping_positions

    semantics = READER_SEMANTICS[target.llamafactory]
    config = LoadedConfig(name, dump(mapping), "yaml", semantics)
    config.data = copy.deepcopy(mapping)
    record_mapping_positions(config)
    if overrides:
        _apply_overrides(config, overrides)
    return config


def _load_json(config: LoadedConfig) -> None:
    """``json.loads`` semantics (LF 0.9.2/0.9.3); positions come from composing the JSON as YAML."""
    pairs_seen: list[tuple[str, int]] = []

    def hook(pairs):
        counts: dict = {}
        for key, _ in pairs:
            counts[key] = counts.get(key, 0) + 1
        pairs_seen.extend((k, c) for k, c in counts.items() if c > 1)
        return dict(pairs)

    try:
        data = json.loads(config.text, object_pairs_hook=hook)
    except json.JSONDecodeError as exc:
        config.problems.append(LoadProblem("syntax", f"JSON syntax error: {exc.msg}", Span.at(exc.lineno, exc.colno)))
        return
    except RecursionError:
        config.problems.append(LoadProblem("syntax", "the document is nested too deeply to be a config"))
        return
    if not isinstance(data, dict):
        config.problems.append(LoadProblem("not-mapping", "the top level of the JSON is not an object"))
        return
    config.data = data
    from .pyyaml_reader import record_json_positions

    record_json_positions(config)


def _value_at(data: object, path: tuple) -> object:
    for part in path:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


# --------------------------------------------------------------------------- overrides


def parse_override(text: str, semantics: ReaderSemantics) -> Override:
    """One ``key=value`` token as ``OmegaConf.from_cli`` reads it (value parsed by OmegaConf's YAML loader)."""
    index = text.find("=")
    if index == -1:
        return Override(text, text, None)
    key, raw = text[:index], text[index + 1 :]
    if not raw:
        return Override(text, key, None)
    from .pyyaml_reader import load_value

    return Override(text, key, load_value(raw, "omegaconf"))


def _apply_overrides(config: LoadedConfig, tokens: list[str]) -> None:
    from .pyyaml_reader import YAMLError, problem_from_yaml_error

    for token in tokens:
        try:
            override = parse_override(token, config.semantics)
        except YAMLError as exc:
            problem = problem_from_yaml_error(exc)
            config.problems.append(LoadProblem("override", f"--set {token}: {problem.message}"))
            continue
        config.overrides.append(override)
        parts = override.key.split(".")
        target = config.data
        for part in parts[:-1]:
            if not isinstance(target.get(part), dict):
                target[part] = {}
            target = target[part]
        old = target.get(parts[-1])
        if isinstance(old, dict) and isinstance(override.value, dict):
            _deep_merge(old, override.value)
        else:
            target[parts[-1]] = override.value
        path = tuple(parts)
        config.value_spans.pop(path, None)
        config.scalars = [s for s in config.scalars if s.path[: len(path)] != path]


def _deep_merge(base: dict, extra: dict) -> None:
    for key, value in extra.items():
        if isinstance(base.get(key), dict) and isinstance(value, dict):
            _deep_merge(base[key], value)
        else:
            base[key] = value
