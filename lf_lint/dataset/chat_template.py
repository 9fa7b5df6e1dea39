"""Encode a conversation with LLaMA-Factory's chat template and count the tokens of a packed SFT example.

Packed SFT (``packing`` / ``neat_packing``) fills sequences of ``cutoff_len`` with whole examples,
so the number of sequences depends on each example's token length. That length is what
``SupervisedDatasetProcessor._encode_data_example`` builds: ``Template.encode_multiturn`` turns
the messages into (prompt, response) token pairs through the template's formatter slots, and each
pair is truncated by ``infer_seqlen`` against what is left of the cutoff. Only lengths matter here,
so lf-lint counts tokens per slot element exactly as ``Template._convert_elements_to_ids`` does
and never builds the id lists.

The templates are LLaMA-Factory's own, read from each release (data/templates.json, made by
tools/generate_templates.py). Behaviour that changed between releases, per data/template.py:

* 0.9.3 added ``ReasoningTemplate`` (an empty thought ``<think>\\n\\n</think>\\n\\n`` is added to
  responses without one; in the prompt when ``enable_thinking`` is false), 0.9.4 made the thought
  words ``("<think>\\n", "\\n</think>\\n\\n")`` and compares them stripped, 0.9.5 added
  ``preserve_thinking`` and, with ``mask_history``, keeps only the last turn's thought.
* 0.9.3 added the ``default_system`` argument.

Tool descriptions and function calls are written by tool_formats.py (every tool format but gemma4's);
that format, media and multimodal templates (their plugins need the model's processor) are not encoded
and leave the count an estimate.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from functools import lru_cache
from typing import NamedTuple

from ..datafiles import read_json
from ..versions import nearest_llamafactory, parse_version
from .conversion import Conversation, conversation
from .tool_formats import Unsupported, function_text, tool_text


@lru_cache(maxsize=1)
def _database() -> dict:
    return read_json("templates.json")


def _release_in_data(release: str) -> str:
    """The release whose registry ``release`` has (templates.json holds every supported release)."""
    return nearest_llamafactory(release)


class ChatTemplate(NamedTuple):
    name: str
    release: str  # the LLaMA-Factory release the template was read from
    kind: str  # Template, Llama2Template, ReasoningTemplate, Glm47ReasoningTemplate
    user: list
    assistant: list
    system: list
    observation: list
    prefix: list
    function: list  # format_function's slots
    function_format: str | None  # format_function's tool format
    tools_format: str | None  # format_tools' tool format
    default_system: str
    stop_words: list
    thought_words: tuple
    tool_call_words: tuple | None
    efficient_eos: bool
    replace_eos: bool
    multimodal: bool

    @property
    def reasoning(self) -> bool:
        return self.kind in ("ReasoningTemplate", "Glm47ReasoningTemplate")


def tool_prompts(release: str) -> dict[str, str]:
    """tool_utils.py's prompt texts in that release."""
    release = _release_in_data(release)
    return {name: value for name, runs in _database()["tool_prompts"].items() for value in [_value({"v": runs}, release, "v")]
            if value is not None}  # fmt: skip


def template_names(release: str) -> list[str]:
    release = _release_in_data(release)
    return sorted(n for n, fields in _database()["templates"].items() if _value(fields, release, "class") is not None)


def _value(fields: dict, release: str, field: str):
    for run in fields.get(field, ()):
        if release in run["releases"]:
            return run["value"]
    return None


def load_template(name: str, release: str) -> ChatTemplate | None:
    """The template registered as ``name`` in that LLaMA-Factory release (None: not registered)."""
    release = _release_in_data(release)
    fields = _database()["templates"].get(name)
    if fields is None or _value(fields, release, "class") is None:
        return None

    def get(field, default=None):
        value = _value(fields, release, field)
        return default if value is None else value

    return ChatTemplate(
        name=name,
        release=release,
        kind=get("class"),
        user=get("format_user")["slots"],
        assistant=get("format_assistant")["slots"],
        system=get("format_system")["slots"],
        observation=get("format_observation")["slots"],
        prefix=get("format_prefix")["slots"],
        function=get("format_function")["slots"],
        function_format=get("format_function")["tool_format"],
        tools_format=get("format_tools")["tool_format"],
        default_system=get("default_system", ""),
        stop_words=list(get("stop_words", [])),
        thought_words=tuple(get("thought_words", ("<think>", "</think>"))),
        tool_call_words=tuple(get("tool_call_words")) if get("tool_call_words") else None,
        efficient_eos=bool(get("efficient_eos", False)),
        replace_eos=bool(get("replace_eos", False)),
        multimodal=get("mm_plugin", "BasePlugin") != "BasePlugin",
    )


def apply_slots(slots: list, **values: str) -> list:
    """StringFormatter.apply: each placeholder is replaced once per string slot, in argument order."""
    out = []
    for slot in slots:
        if isinstance(slot, str):
            for key, value in values.items():
                slot = slot.replace("{{" + key + "}}", value, 1)
        out.append(slot)
    return out


class SupervisedLengths:
    """Per-example token lengths of LLaMA-Factory's supervised processor, for one tokenizer, template and settings.

    ``scan`` passes it as ``measure`` and stores each example's per-message token counts (``per_message``), so a
    new ``cutoff_len`` needs no new tokenization: ``length`` truncates them. ``str()`` is the cache key of
    everything the per-message counts depend on (not the cut-off).
    """

    per_message = True

    def __init__(self, tokens, template: ChatTemplate, release: str, data_args: dict):
        self.tokens, self.template, self.release = tokens, template, release
        self.cutoff = int(data_args.get("cutoff_len", 2048))
        self.mask_history = bool(data_args.get("mask_history"))
        self.enable_thinking = data_args.get("enable_thinking", True)
        self.preserve_thinking = bool(data_args.get("preserve_thinking")) and self._at_least("0.9.5")
        default_system = data_args.get("default_system")
        self.default_system = (
            default_system if default_system is not None and self._at_least("0.9.3") else template.default_system
        )
        tool_format = data_args.get("tool_format")
        self.function_slots, self.function_format, self.tools_format = (
            template.function,
            template.function_format,
            template.tools_format,
        )
        if tool_format is not None:  # get_template_and_fix_tokenizer replaces both formatters
            self.function_slots = (
                ["{{content}}"] if template.efficient_eos else ["{{content}}", {"special": "eos_token"}]
            )
            self.function_format = self.tools_format = tool_format
        self.prompts = tool_prompts(release)
        tokens.fix_for_template(template.name, template.stop_words, template.replace_eos)
        self._thought_ids = None
        self.unsupported = 0  # rows that could not be encoded

    def _at_least(self, version: str) -> bool:
        return parse_version(self.release) >= parse_version(version)

    def __str__(self) -> str:
        settings = (self.template.name, self.template.release, self.mask_history, self.enable_thinking,
                    self.preserve_thinking, self.default_system, self.function_format, self.tools_format,
                    datetime.now().strftime("%d %b %Y") if "llama3" in (self.function_format, self.tools_format) else "")  # fmt: skip
        return f"sft-lengths:{self.tokens}:{json.dumps(settings)}"

    # -- the template ------------------------------------------------------------------------------------------

    def _element_tokens(self, elements: list) -> tuple[list[str], int]:
        """(texts to tokenize, tokens of the special slots) of Template._convert_elements_to_ids."""
        texts, fixed = [], 0
        for element in elements:
            if isinstance(element, str):
                if element:
                    texts.append(element)
            elif "token" in element:
                fixed += 1
            elif element.get("special") == "bos_token":
                fixed += self.tokens.bos_token is not None
            elif element.get("special") == "eos_token":
                fixed += self.tokens.eos_token is not None
        return texts, fixed

    def _message_elements(self, index: int, role: str, content: str, system: str | None) -> list:
        """Template._encode for one message; ``system`` None: no system block (no system prompt, no tools)."""
        template = self.template
        elements: list = []
        system_text = ""
        if index == 0:
            elements += template.prefix
            if system is not None:
                if template.kind == "Llama2Template":  # the system prompt is fused into the first user message
                    system_text = apply_slots(template.system, content=system)[0]
                else:
                    elements += apply_slots(template.system, content=system)
        if role == "user":
            if template.kind == "Llama2Template":
                elements += apply_slots(template.user, content=system_text + content)
            else:
                elements += apply_slots(template.user, content=content, idx=str(index // 2))
        elif role == "assistant":
            elements += apply_slots(template.assistant, content=content)
        elif role == "observation":
            elements += apply_slots(template.observation, content=content)
        else:  # Llama2Template passes no thought or tool-call words to the function formatter
            words = {} if template.kind == "Llama2Template" or not self._at_least("0.9.4") else {
                "thought_words": template.thought_words, "tool_call_words": template.tool_call_words}  # fmt: skip
            text = function_text(content, self.function_format, self._at_least, **words)
            elements += apply_slots(self.function_slots, content=text)
        return elements

    def _add_thought(self) -> str:
        first, second = self.template.thought_words
        if not self._at_least("0.9.4"):
            return f"{first}\n\n{second}\n\n"
        if self.template.kind == "Glm47ReasoningTemplate":
            return second
        return first + second

    def _remove_thought(self, content: str) -> str:
        first, second = self.template.thought_words
        pattern = re.compile(f"{re.escape(first)}(.*?){re.escape(second)}", re.DOTALL)
        return re.sub(pattern, "", content).lstrip("\n")

    def _has_thought(self, content: str) -> bool:
        first, second = self.template.thought_words
        if self._at_least("0.9.4"):
            first, second = first.strip(), second.strip()
        return first in content or second in content

    def item(self, row: dict, attr, kept: bool) -> Conversation | None:
        if not kept:
            return None
        try:
            return conversation(row, attr)
        except (TypeError, KeyError, AttributeError, ValueError):  # values the converter itself would choke on
            self.unsupported += 1
            return None

    # -- one example -------------------------------------------------------------------------------------------

    def plan(self, conversation: Conversation) -> tuple[list[list[str]], list[int]]:
        """Per message: the texts to tokenize and the tokens added without tokenizing (special slots, thoughts)."""
        if conversation.has_media:
            raise Unsupported("media")
        tools = conversation.tools
        tool_block = ""
        if tools:  # ToolFormatter.apply: a JSON list of tools; an empty list adds nothing
            try:
                described = json.loads(tools) if isinstance(tools, str) else None
            except ValueError:
                raise Unsupported("tools that are not JSON (LLaMA-Factory stops)") from None
            if not isinstance(described, list):
                raise Unsupported("tools that are not a JSON list")
            if described:
                try:
                    tool_block = tool_text(self.tools_format, described, self.prompts, self._at_least)
                except (KeyError, TypeError, AttributeError, ValueError, IndexError):
                    raise Unsupported("tools LLaMA-Factory cannot describe") from None
        contents = [content for _, content in conversation.messages]
        if not all(isinstance(content, str) for content in contents):
            raise Unsupported("a message that is not text")
        if self.template.multimodal:  # its plugin needs the model's processor, even for text (not modelled)
            raise Unsupported("multimodal template")
        reasoning = self.template.reasoning and self._at_least("0.9.3")
        discard_history = reasoning and self._at_least("0.9.5") and self.mask_history and not self.preserve_thinking
        if reasoning:
            for i in range(1, len(contents), 2):
                if self.enable_thinking is False or (discard_history and i < len(contents) - 2):
                    contents[i] = self._remove_thought(contents[i])
        system = (conversation.system if isinstance(conversation.system, str) else "") or self.default_system
        system_block = system + tool_block if system or tools else None  # an empty tool list still opens it
        texts, fixed = [], []
        for index, ((role, _), content) in enumerate(zip(conversation.messages, contents)):
            message_texts, message_fixed = self._element_tokens(
                self._message_elements(index, role, content, system_block)
            )
            texts.append(message_texts)
            fixed.append(message_fixed)
        if reasoning:
            turns = [len(contents) - 2] if discard_history else range(0, len(contents), 2)
            for i in turns:
                if not self._has_thought(contents[i + 1]):
                    target = i if not self.enable_thinking else i + 1  # in the prompt: no loss on the empty thought
                    fixed[target] += self.thought_tokens()
        return texts, fixed

    def thought_tokens(self) -> int:
        if self._thought_ids is None:
            self._thought_ids = self.tokens.count(self._add_thought())
        return self._thought_ids

    def length(self, message_tokens, cutoff: int | None = None) -> int:
        """len(input_ids) of _encode_data_example, from the token count of each message."""
        cutoff = self.cutoff if cutoff is None else cutoff
        pairs = [(message_tokens[i], message_tokens[i + 1]) for i in range(0, len(message_tokens), 2)]
        if self.mask_history:
            pairs = pairs[::-1]
        total = 1 if self.template.efficient_eos else 0  # the eos token appended at the end is reserved up front
        for source, target in pairs:
            if total >= cutoff:
                break
            source, target = infer_seqlen(source, target, cutoff - total)
            total += source + target
        return total

    def lengths(self, conversations: list[Conversation | None]) -> list[int | None]:
        """Token lengths of a batch of examples at this cut-off (None: not an SFT example, or not encodable)."""
        return [None if counts is None else self.length(counts) for counts in self.measure(conversations)]

    def measure(self, conversations: list[Conversation | None]) -> list[list[int] | None]:
        """Token counts of every message of a batch of examples (None: not an SFT example, or not encodable)."""
        plans: list = []
        batch: list[str] = []
        for example in conversations:
            if example is None:
                plans.append(None)
                continue
            try:
                texts, fixed = self.plan(example)
            except Unsupported:
                self.unsupported += 1
                plans.append(None)
                continue
            plans.append((len(batch), [len(t) for t in texts], fixed))
            for message in texts:
                batch.extend(message)
        counts = self.tokens.counts(batch)
        out: list[int | None] = []
        for entry in plans:
            if entry is None:
                out.append(None)
                continue
            start, sizes, fixed = entry
            message_tokens = []
            for size, extra in zip(sizes, fixed):
                message_tokens.append(sum(counts[start : start + size]) + extra)
                start += size
            out.append(message_tokens)
        return out


def infer_seqlen(source_len: int, target_len: int, cutoff_len: int) -> tuple[int, int]:
    """processor_utils.infer_seqlen (0.9.2-0.9.5): truncate the prompt first unless the response is long."""
    if target_len * 2 < cutoff_len:
        max_target_len = cutoff_len
    elif source_len * 2 < cutoff_len:
        max_target_len = cutoff_len - source_len
    else:
        max_target_len = int(cutoff_len * (target_len / (source_len + target_len)))
    new_target_len = min(max_target_len, target_len)
    new_source_len = min(max(cutoff_len - new_target_len, 0), source_len)
    return new_source_len, new_target_len
