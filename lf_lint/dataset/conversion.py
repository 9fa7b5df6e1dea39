"""What LLaMA-Factory's converters make of each row, and which rows each stage's processor drops.

Mirrors data/converter.py (Alpaca/ShareGPT/OpenAI converters, unchanged 0.9.2-0.9.5 apart from
OpenAI arriving in 0.9.4) and the keep/drop predicate of each processor in
data/processor/*.py: a row survives SFT when its prompt has an odd number of messages and its
response exactly one; pairwise (rm, dpo) and feedback (kto) need two responses; the
unsupervised processor (ppo, and sft evaluation with ``predict_with_generate``) only needs an
odd prompt; pre-training never drops. Converters never remove rows: a broken ShareGPT row is
emptied and dropped by the processor.
"""

from __future__ import annotations

import json
from typing import NamedTuple

from .registry import DatasetAttr


class Shape(NamedTuple):
    """The converter's output for one row, reduced to what the processors look at."""

    prompt: int  # len(_prompt)
    response: int  # len(_response)
    note: str | None  # why the row has this shape, when it is not the ordinary one


class Crash(Exception):
    """A row the converter itself fails on (LLaMA-Factory stops with a traceback)."""


# processor kinds: the stage passed to get_dataset, and whether sft evaluation generates
def keeps(kind: str, shape: Shape) -> bool:
    if kind == "sft":
        return shape.prompt % 2 == 1 and shape.response == 1
    if kind in ("rm", "kto"):
        return shape.prompt % 2 == 1 and shape.response >= 2
    if kind == "unsupervised":
        return shape.prompt % 2 == 1
    return True  # pt


def drop_reason(kind: str, shape: Shape) -> str:
    if shape.note:
        return shape.note
    if shape.prompt % 2 == 0:
        return "no prompt"
    if kind == "sft":
        return "no single response"
    return "fewer than two responses (needs chosen and rejected, or a KTO tag)"


def _kind_name(value: object) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", list: "a list", dict: "an object"}.get(
        type(value), type(value).__name__
    )


def alpaca_shaper(attr: DatasetAttr):
    history, kto_tag = attr.column("history"), attr.column("kto_tag")
    chosen, rejected, response, ranking = (
        attr.column("chosen"),
        attr.column("rejected"),
        attr.column("response"),
        attr.ranking,
    )
    single = Shape(1, 1, "has a single response" if ranking else None)

    def shape(row: dict) -> Shape:
        prompt = 1
        if history and isinstance(row.get(history), list):
            for pair in row[history]:
                if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                    raise Crash(
                        f"`{history}` must hold [question, answer] pairs, got {pair!r} (ValueError while unpacking)"
                    )
            prompt += 2 * len(row[history])
        if kto_tag and isinstance(row.get(kto_tag), bool):
            return Shape(prompt, 2, "has a KTO tag")
        if ranking and isinstance(row.get(chosen), str) and isinstance(row.get(rejected), str):
            return Shape(prompt, 2, None)
        value = row.get(response) if response else None
        if type(value) is str:
            return single if prompt == 1 else Shape(prompt, 1, single.note)
        if ranking:
            shown = ", ".join(
                f"`{c}` is {_kind_name(row.get(c))}"
                for c in (chosen, rejected)
                if c and not isinstance(row.get(c), str)
            )
            return Shape(prompt, 0, f"chosen/rejected are not both strings ({shown or 'columns not configured'})")
        if not response:
            return Shape(prompt, 0, "no response column is configured")
        return Shape(prompt, 0, f"`{response}` is {_kind_name(value)}, not a string")

    return shape


def _message_roles(messages: list, attr: DatasetAttr) -> tuple[list, str]:
    """ShareGPT: (aligned roles, system) after taking a leading system message off."""
    role_tag = attr.tag("role_tag")
    system_tag = attr.tag("system_tag")
    if system_tag and messages and _get(messages[0], role_tag) == system_tag:
        messages = messages[1:]
    return messages, ""


def _get(message: object, key: str | None) -> object:
    if not isinstance(message, dict):
        raise Crash(f"a message must be an object, got {message!r}")
    return message.get(key)


def sharegpt_shaper(attr: DatasetAttr):
    return lambda row: sharegpt_shape(row, attr)


def openai_shaper(attr: DatasetAttr):
    return lambda row: openai_shape(row, attr)


def sharegpt_shape(row: dict, attr: DatasetAttr) -> Shape:
    column = attr.column("messages")
    messages = row.get(column) if column else None
    if not isinstance(messages, list):
        raise Crash(
            f"`{column}` is {_kind_name(messages)}, not a list of messages (TypeError in the ShareGPT converter)"
        )
    messages, _ = _message_roles(messages, attr)
    role_tag = attr.tag("role_tag")
    odd = (attr.tag("user_tag"), attr.tag("observation_tag"))
    even = (attr.tag("assistant_tag"), attr.tag("function_tag"))
    broken = None
    count = 0
    for index, message in enumerate(messages):
        role = _get(message, role_tag)
        if role not in (odd, even)[index % 2]:
            expected = "/".join(str(t) for t in (odd, even)[index % 2] if t)
            broken = f"message {index + 1} has role {role!r} where {expected} is expected"
            break
        count += 1
    if broken is None and ((not attr.ranking and count % 2 != 0) or (attr.ranking and count % 2 == 0)):
        parity = "an odd" if count % 2 else "an even"
        broken = f"{parity} number of messages ({count})" + (
            "" if attr.ranking else "; a conversation must end with the assistant"
        )
    if broken is not None:
        return Shape(0, 0, broken)
    return _pairwise_or_single(row, attr, count)


def _pairwise_or_single(row: dict, attr: DatasetAttr, count: int) -> Shape:
    kto_tag = attr.column("kto_tag")
    if kto_tag and isinstance(row.get(kto_tag), bool):
        return Shape(count - 1, 2, "has a KTO tag")
    chosen, rejected = attr.column("chosen"), attr.column("rejected")
    if attr.ranking and isinstance(row.get(chosen), dict) and isinstance(row.get(rejected), dict):
        return Shape(count, 2, None)  # chosen/rejected roles are checked but the row is kept anyway (LF bug)
    if count == 0:
        return Shape(0, 0, "no messages")
    note = "chosen/rejected are not both objects" if attr.ranking else None
    return Shape(count - 1, 1, note)


def openai_shape(row: dict, attr: DatasetAttr) -> Shape:
    column = attr.column("messages")
    messages = row.get(column) if column else None
    if not isinstance(messages, list):
        raise Crash(f"`{column}` is {_kind_name(messages)}, not a list of messages")
    messages, _ = _message_roles(messages, attr)
    role_tag = attr.tag("role_tag")
    tags = {attr.tag(t): r for t, r in (("user_tag", "user"), ("assistant_tag", "assistant"), ("observation_tag", "observation"),
                                          ("function_tag", "function"), ("system_tag", "system"))}  # fmt: skip
    roles: list[str] = []
    pending_tool = False
    for message in messages:
        role = _get(message, role_tag)
        if role in (attr.tag("assistant_tag"), attr.tag("function_tag")) and message.get("tool_calls"):
            role = attr.tag("function_tag")
        if role == attr.tag("observation_tag"):
            pending_tool = True
            continue
        if pending_tool:
            roles.append("observation")
            pending_tool = False
        if role not in tags:
            raise Crash(f"role {role!r} is not one of the configured tags (KeyError in the OpenAI converter)")
        roles.append(tags[role])
    accept = (("user", "observation"), ("assistant", "function"))
    for index, role in enumerate(roles):
        if role not in accept[index % 2]:
            return Shape(0, 0, f"message {index + 1} has role {role!r} where {'/'.join(accept[index % 2])} is expected")
    count = len(roles)
    if (not attr.ranking and count % 2 != 0) or (attr.ranking and count % 2 == 0):
        return Shape(0, 0, f"{'an odd' if count % 2 else 'an even'} number of messages ({count})")
    return _pairwise_or_single(row, attr, count)


SHAPERS = {
    "alpaca": alpaca_shaper,
    "sharegpt": sharegpt_shaper,
    "openai": openai_shaper,
}  # formatting -> shaper factory


def _utf8(value: object) -> int:
    return len(value.encode("utf-8")) if isinstance(value, str) else 0


def text_sizes(row: dict, attr: DatasetAttr) -> tuple[int, int]:
    """(bytes of the first prompt message, bytes of every message and the system prompt): what the
    pre-training and supervised processors tokenize, for estimating token counts without a tokenizer."""
    if attr.formatting == "alpaca":
        history = row.get(attr.column("history")) if attr.column("history") else None
        pieces = [row.get(attr.column(r)) for r in ("prompt", "query", "response", "system") if attr.column(r)]
        if isinstance(history, list):
            pairs = [x for pair in history if isinstance(pair, (list, tuple)) for x in pair]
            first = _utf8(pairs[0]) if pairs else 0
            return first, sum(map(_utf8, pieces)) + sum(map(_utf8, pairs))
        prompt = "\n".join(p for p in (row.get(attr.column("prompt")) if attr.column("prompt") else None,
                                          row.get(attr.column("query")) if attr.column("query") else None) if p and isinstance(p, str))  # fmt: skip
        return _utf8(prompt), sum(map(_utf8, pieces))
    messages = row.get(attr.column("messages")) if attr.column("messages") else None
    content = attr.tag("content_tag")
    texts = [m.get(content) for m in messages if isinstance(m, dict)] if isinstance(messages, list) else []
    return (_utf8(texts[0]) if texts else 0), sum(map(_utf8, texts)) + _utf8(
        row.get(attr.column("system")) if attr.column("system") else None
    )


def first_prompt_text(row: dict, attr: DatasetAttr) -> str:
    """``_prompt[0]["content"]`` as LLaMA-Factory's converters build it: what the pre-training processor tokenizes."""
    if attr.formatting == "alpaca":
        history = row.get(attr.column("history")) if attr.column("history") else None
        if isinstance(history, list) and history and isinstance(history[0], (list, tuple)) and history[0]:
            return str(history[0][0])
        parts = [row.get(attr.column(r)) for r in ("prompt", "query") if attr.column(r)]
        return "\n".join(p for p in parts if p and isinstance(p, str))
    messages = row.get(attr.column("messages")) if attr.column("messages") else None
    if not isinstance(messages, list):
        return ""
    role, content, system = attr.tag("role_tag"), attr.tag("content_tag"), attr.tag("system_tag")
    if messages and isinstance(messages[0], dict) and system and messages[0].get(role) == system:
        messages = messages[1:]  # the converter takes a leading system message out of the conversation
    first = messages[0] if messages and isinstance(messages[0], dict) else {}
    value = first.get(content)
    return value if isinstance(value, str) else ""


def tools_problem(row: dict, attr: DatasetAttr) -> str | None:
    """Why the template's ToolFormatter stops on this row's `tools` (data/formatter.py), if it does."""
    column = attr.column("tools")
    value = row.get(column) if column else None
    if not isinstance(value, str) or not value:
        return None
    try:
        json.loads(value)
    except ValueError:
        return (
            f"`{column}` is not JSON: LLaMA-Factory stops with `RuntimeError: Invalid JSON format in tool description`"
        )
    return None


def required_columns(attr: DatasetAttr, kind: str) -> list[str]:
    """Columns the converter reads from every row: each must exist in the table (KeyError otherwise)."""
    if attr.formatting == "alpaca":
        roles = ["prompt", "query", "history", "kto_tag", "system", "tools", "images", "videos", "audios"]
        if attr.ranking:
            roles += ["chosen", "rejected"]
        else:
            roles += ["response"]
    else:
        roles = ["messages", "kto_tag", "system", "tools", "images", "videos", "audios"]
        if attr.ranking:
            roles += ["chosen", "rejected"]
    return [name for name in (attr.column(r) for r in roles) if name]


class Conversation(NamedTuple):
    """What the supervised processor receives for one row (``_prompt + _response``, ``_system``, ``_tools``)."""

    messages: tuple[tuple[str, object], ...]  # (role, content): user/assistant/observation/function
    system: object
    tools: object
    has_media: bool


def _media(row: dict, attr: DatasetAttr) -> bool:
    return any(attr.column(kind) and row.get(attr.column(kind)) for kind in ("images", "videos", "audios"))


def conversation(row: dict, attr: DatasetAttr) -> Conversation:
    """The converter's messages for a row the SFT processor keeps (converter.py, 0.9.2-0.9.5)."""
    column = attr.column
    if attr.formatting == "alpaca":
        messages: list[tuple[str, object]] = []
        history = row.get(column("history")) if column("history") else None
        if isinstance(history, list):
            for question, answer in history:
                messages += [("user", question), ("assistant", answer)]
        query = [row[column(c)] for c in ("prompt", "query") if column(c) and row.get(column(c))]
        messages.append(("user", "\n".join(query)))
        messages.append(("assistant", row.get(column("response"))))
        system = row.get(column("system")) if column("system") else ""
        tools = row.get(column("tools")) if column("tools") else ""
        return Conversation(tuple(messages), system, tools, _media(row, attr))
    role_tag, content_tag, system_tag = attr.tag("role_tag"), attr.tag("content_tag"), attr.tag("system_tag")
    raw = row.get(column("messages"))
    system = row.get(column("system"), "") if column("system") else ""
    if system_tag and raw and raw[0].get(role_tag) == system_tag:
        system, raw = raw[0].get(content_tag), raw[1:]
    roles = {attr.tag("user_tag"): "user", attr.tag("assistant_tag"): "assistant",
             attr.tag("observation_tag"): "observation", attr.tag("function_tag"): "function"}  # fmt: skip
    tools = row.get(column("tools"), "") if column("tools") else ""
    if attr.formatting == "sharegpt":
        messages = [(roles[m.get(role_tag)], m.get(content_tag)) for m in raw]
        return Conversation(tuple(messages), system, tools, _media(row, attr))
    messages, pending = [], []  # openai: tool results merge into one observation; tool calls become function
    for message in raw:
        role, content = message.get(role_tag), message.get(content_tag)
        if role in (attr.tag("assistant_tag"), attr.tag("function_tag")) and message.get("tool_calls"):
            content, role = (
                json.dumps([t["function"] for t in message["tool_calls"]], ensure_ascii=False),
                attr.tag("function_tag"),
            )
        if role == attr.tag("observation_tag"):
            pending.append(content)
            continue
        if pending:
            messages.append(("observation", "\n</tool_response>\n<tool_response>\n".join(pending)))
            pending = []
        messages.append((roles[role], content))
    if isinstance(tools, (dict, list)):
        tools = json.dumps(tools, ensure_ascii=False)
    if not system:  # 0.9.4+ OpenAIDatasetConverter adds a "detailed thinking" system prompt
        system = "detailed thinking off" if not tools else system
    elif not tools:
        if "detailed thinking on" not in system and "detailed thinking off" not in system:
            system += "\ndetailed thinking off"
    else:
        system += "\n"
    return Conversation(tuple(messages), system, tools, _media(row, attr))
