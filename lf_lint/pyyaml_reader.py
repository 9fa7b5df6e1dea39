"""Configs read with PyYAML, keeping positions (loading.py's reader for everything flat_yaml.py does not read).

The document is composed once with PyYAML (the C parser when available) using a resolver that copies the
target release's loader, values are constructed with PyYAML's own constructor, and every key and value
gets a span. Imported only when a file needs it: importing PyYAML costs more than a schema-only lint.
"""

from __future__ import annotations

from functools import cache

import yaml

from .loading import (
    _OMEGACONF_FLOAT,
    MAX_EXPANDED_NODES,
    START,
    STR_TAG,
    Duplicate,
    LoadedConfig,
    LoadProblem,
    Scalar,
    Span,
    _value_at,
)

YAMLError = yaml.YAMLError


@cache
def loader_class(reader: str) -> type:
    """PyYAML's safe loader as the release reads YAML: "pyyaml" (``yaml.safe_load``, LLaMA-Factory <= 0.9.3) or
    "omegaconf" (``OmegaConf.load``, >= 0.9.4: its float resolver, no timestamps; duplicates reported apart)."""
    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    if reader == "pyyaml":
        return type("_PyYamlLoader", (base,), {})
    loader = type("_OmegaConfLoader", (base,), {})
    loader.add_implicit_resolver("tag:yaml.org,2002:float", _OMEGACONF_FLOAT, list("-+0123456789."))
    loader.yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in loader.yaml_implicit_resolvers.items()
    }
    return loader


def load_value(text: str, reader: str) -> object:
    """One value as the release's YAML loader reads it (``key=value`` overrides: OmegaConf's)."""
    return yaml.load(text, Loader=loader_class(reader))


def dump(mapping: dict) -> str:
    return yaml.safe_dump(mapping, sort_keys=False, allow_unicode=True)


def record_mapping_positions(config: LoadedConfig) -> None:
    """Positions of a mapping given as Python values, from its YAML rendering (``config.text``)."""
    loader = loader_class("pyyaml")(config.text)
    try:
        node = loader.get_single_node()
        if node is not None:
            _record_positions(node, (), config, set(), record_scalars=False)
    finally:
        loader.dispose()


def record_json_positions(config: LoadedConfig) -> None:
    """Positions (and duplicate keys) of a JSON config read by ``json.loads``, from composing it as YAML."""
    loader = loader_class("pyyaml")(config.text)
    try:
        node = loader.get_single_node()
        if node is not None and _expanded_size(node) <= MAX_EXPANDED_NODES:
            _find_duplicates(node, (), config)
            _record_positions(node, (), config, set(), record_scalars=False)
    except yaml.YAMLError:
        pass  # valid JSON that PyYAML cannot compose: values are right, positions fall back to line 1
    finally:
        loader.dispose()


def problem_from_yaml_error(exc: yaml.YAMLError) -> LoadProblem:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    span = Span.at(mark.line + 1, mark.column + 1) if mark is not None else START
    if isinstance(exc, yaml.reader.ReaderError):
        return LoadProblem("encoding", f"unreadable character: {exc.reason}", span)
    parts = [p for p in (getattr(exc, "context", None), getattr(exc, "problem", None)) if p]
    message = ", ".join(parts) if parts else str(exc).splitlines()[0]
    return LoadProblem("syntax", f"YAML syntax error: {message}", span)


def load_yaml(config: LoadedConfig, loader_cls: type) -> None:
    loader = loader_cls(config.text)
    try:
        try:
            node = loader.get_single_node()
            if node is None:
                config.problems.append(LoadProblem("empty", "the file is empty: it sets no arguments at all"))
                return
            size = _expanded_size(node)
            if size > MAX_EXPANDED_NODES:
                config.problems.append(
                    LoadProblem(
                        "alias-bomb",
                        f"YAML aliases expand this document to more than {MAX_EXPANDED_NODES:,} values "
                        "(an 'alias bomb'); LLaMA-Factory would hang copying it",
                        Span.of_node(node),
                    )
                )
                return
            _find_duplicates(node, (), config)
            data = loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        problem = problem_from_yaml_error(exc)
        config.problems.append(LoadProblem(problem.kind, problem.message, _clamp(problem.span, config.text)))
        return
    except RecursionError:
        config.problems.append(LoadProblem("syntax", "the document is nested too deeply to be a config"))
        return
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else f"a single {type(data).__name__} value"
        config.problems.append(
            LoadProblem(
                "not-mapping",
                f"the top level is {kind}; a config must be a mapping of argument names to values",
                Span.of_node(node),
            )
        )
        return
    config.data = data
    _record_positions(node, (), config, set())


def _clamp(span: Span, text: str) -> Span:
    """Errors at the end of the stream point after the last line; show them at its end instead."""
    lines = text.splitlines() or [""]
    if span.line <= len(lines):
        return span
    return Span.at(len(lines), len(lines[-1]) + 1)


def _expanded_size(root: yaml.Node) -> int:
    """Number of values the document has once aliases are expanded (computed without expanding)."""
    memo: dict[int, int] = {}
    # iterative post-order so deep documents cannot exhaust the stack
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    on_path: set[int] = set()
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            children = _children(node)
            memo[key] = min(1 + sum(memo.get(id(c), 1) for c in children), MAX_EXPANDED_NODES + 1)
            continue
        if key in memo:
            continue
        if key in on_path:  # a recursive alias expands without end
            memo[key] = MAX_EXPANDED_NODES + 1
            continue
        on_path.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in _children(node) if id(c) not in memo)
    return memo[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _find_duplicates(node: yaml.Node, path: tuple, config: LoadedConfig, depth: int = 0) -> None:
    # OmegaConf's loader compares the keys of each mapping's own entries (before '<<' merges),
    # and only keys that resolved to plain strings.
    if depth > 64:
        return
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag == STR_TAG:
                if key_node.value in seen:
                    config.duplicates.append(
                        Duplicate(path, key_node.value, Span.of_node(seen[key_node.value]), Span.of_node(key_node))
                    )
                seen[key_node.value] = key_node
                _find_duplicates(value_node, path + (key_node.value,), config, depth + 1)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _find_duplicates(item, path + (index,), config, depth + 1)


def _scalar_key(node: yaml.Node) -> object:
    if isinstance(node, yaml.ScalarNode):
        if node.tag == STR_TAG:
            return node.value
        try:
            return loader_class("pyyaml")("").construct_object(node)
        except yaml.YAMLError:
            return node.value
    return None


def _record_positions(
    node: yaml.Node, path: tuple, config: LoadedConfig, seen: set, record_scalars: bool = True
) -> None:
    """Spans of every value (and key) below ``node``; shared (aliased) nodes are visited once."""
    stack = [(node, path)]
    while stack:
        current, current_path = stack.pop()
        config.value_spans.setdefault(current_path, Span.of_node(current))
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, yaml.MappingNode):
            for key_node, value_node in current.value:
                key = _scalar_key(key_node)
                if key is None:
                    continue
                child = current_path + (key,)
                config.key_spans[child] = Span.of_node(key_node)  # the last duplicate wins, like the value
                config.value_spans.pop(child, None)
                stack.append((value_node, child))
        elif isinstance(current, yaml.SequenceNode):
            stack.extend((item, current_path + (i,)) for i, item in enumerate(current.value))
        elif record_scalars and isinstance(current, yaml.ScalarNode):
            config.scalars.append(
                Scalar(
                    current_path,
                    current.value,
                    current.style in (None, ""),
                    current.tag,
                    _value_at(config.data, current_path),
                    Span.of_node(current),
                )
            )
