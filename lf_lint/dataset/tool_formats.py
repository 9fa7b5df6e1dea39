"""The text LLaMA-Factory puts in the prompt for tool descriptions and function calls (data/tool_utils.py).

A template's ``format_tools`` turns a row's ``tools`` (a JSON list of function descriptions) into text
that joins the system prompt; its ``format_function`` turns a function-call message (JSON
``{"name", "arguments"}`` or a list of them) into the assistant's text. Each tool format writes them
its own way. lf-lint writes every format but gemma4's (see SUPPORTED; gemma4's templates are
multimodal, which lf-lint does not encode anyway); the prompt texts are read from each release
(data/templates.json) and the code follows tool_utils.py, which 0.9.3 changed (tools given as
``{"type": "function", "function": ...}`` are unwrapped, calls are re-serialised with json.dumps,
llama3 accepts parallel calls). Other formats raise ``Unsupported``.

``FunctionFormatter.apply`` (data/formatter.py) first separates a thought: up to 0.9.3 the greedy
``<think>(.*)</think>``; from 0.9.4 the template's thought words, and a call wrapped in its
tool-call words leaves the text around it in front of the formatted call.
"""

from __future__ import annotations

import json
import re
from datetime import datetime

SUPPORTED = ("default", "qwen", "llama3", "glm4", "mistral", "qwen3_5", "glm4_moe", "seed_oss", "minimax1", "minimax2",
             "ling", "lfm2")  # fmt: skip
PROMPTS = {"default": "DEFAULT_TOOL_PROMPT", "qwen": "QWEN_TOOL_PROMPT", "llama3": "LLAMA3_TOOL_PROMPT",
           "glm4": "GLM4_TOOL_PROMPT", "qwen3_5": "QWEN35_TOOL_PROMPT", "glm4_moe": "GLM4_MOE_TOOL_PROMPT",
           "seed_oss": "SEED_TOOL_PROMPT", "minimax1": "MINIMAX_M1_TOOL_PROMPT", "minimax2": "MINIMAX_M2_TOOL_PROMPT",
           "ling": "LING_TOOL_PROMPT", "lfm2": "LFM2_TOOL_PROMPT"}  # fmt: skip


class Unsupported(Exception):
    """A conversation lf-lint cannot encode exactly."""


def _wrapped(tool: dict, since_0_9_3: bool) -> dict:
    return tool if since_0_9_3 and tool.get("type") == "function" else {"type": "function", "function": tool}


def _unwrapped(tool: dict, since_0_9_3: bool) -> dict:
    return tool.get("function", "") if since_0_9_3 and tool.get("type") == "function" else tool


def _default_tools(tools: list, since_0_9_3: bool) -> tuple[str, list]:
    tool_text, names = "", []
    for tool in tools:
        tool = _unwrapped(tool, since_0_9_3)
        params = ""
        for name, param in tool["parameters"]["properties"].items():
            required = ", required" if name in tool["parameters"].get("required", []) else ""
            enum = ", should be one of [{}]".format(", ".join(param["enum"])) if param.get("enum", None) else ""
            items = (
                ", where each item should be {}".format(param["items"].get("type", ""))
                if param.get("items", None)
                else ""
            )
            params += f"  - {name} ({param.get('type', '')}{required}): {param.get('description', '')}{enum}{items}\n"
        tool_text += (
            f"> Tool Name: {tool['name']}\nTool Description: {tool.get('description', '')}\nTool Args:\n{params}\n"
        )
        names.append(tool["name"])
    return tool_text, names


def tool_text(tool_format: str, tools: list, prompts: dict, release_at_least) -> str:
    """ToolUtils.tool_formatter: the text describing every tool."""
    since_0_9_3 = release_at_least("0.9.3")
    if tool_format == "default":
        text, names = _default_tools(tools, since_0_9_3)
        return prompts[PROMPTS["default"]].format(tool_text=text, tool_names=", ".join(names))
    if tool_format == "qwen":
        text = "".join("\n" + json.dumps(_wrapped(tool, since_0_9_3), ensure_ascii=False) for tool in tools)
        return prompts[PROMPTS["qwen"]].format(tool_text=text)
    if tool_format == "llama3":  # the date of the run goes into the prompt; lf-lint takes today's
        text = "".join(json.dumps(_wrapped(tool, since_0_9_3), indent=4, ensure_ascii=False) + "\n\n" for tool in tools)
        return prompts[PROMPTS["llama3"]].format(date=datetime.now().strftime("%d %b %Y"), tool_text=text)
    if tool_format == "glm4":
        text = ""
        for tool in tools:
            tool = _unwrapped(tool, since_0_9_3)
            body = json.dumps(tool, indent=4, ensure_ascii=False)
            text += f"\n\n## {tool['name']}\n\n{body}\n在调用上述函数时，请使用 Json 格式表示调用的参数。"
        return prompts[PROMPTS["glm4"]].format(tool_text=text)
    if tool_format == "qwen3_5":
        unwrapped = [tool.get("function", tool) if tool.get("type") == "function" else tool for tool in tools]
        text = "".join("\n" + json.dumps(tool, ensure_ascii=False) for tool in unwrapped)
        return prompts[PROMPTS["qwen3_5"]].format(tool_text=text)
    if tool_format == "glm4_moe":
        text = "".join("\n" + json.dumps(_wrapped(tool, since_0_9_3), ensure_ascii=False) for tool in tools)
        return prompts[PROMPTS["glm4_moe"]].format(tool_text=text)
    if tool_format == "seed_oss":
        return prompts[PROMPTS["seed_oss"]].format(tool_text="\n" + json.dumps(tools, ensure_ascii=False))
    if tool_format in ("minimax1", "minimax2"):
        line = "{}\n" if tool_format == "minimax1" else "<tool>{}</tool>\n"
        text = "".join(line.format(json.dumps(_unwrapped(tool, True), ensure_ascii=False)) for tool in tools)
        return prompts[PROMPTS[tool_format]].format(tool_text=text)
    if tool_format == "ling":
        text = "".join("\n" + json.dumps(_wrapped(tool, since_0_9_3), ensure_ascii=False) for tool in tools)
        return prompts[PROMPTS["ling"]].format(tool_text=text) + "\ndetailed thinking off"
    if tool_format == "lfm2":
        unwrapped = [tool.get("function", tool) if tool.get("type") == "function" else tool for tool in tools]
        return prompts[PROMPTS["lfm2"]].format(tool_text=json.dumps(unwrapped, ensure_ascii=False))
    if tool_format == "mistral":
        return (
            "[AVAILABLE_TOOLS] "
            + json.dumps([_wrapped(t, since_0_9_3) for t in tools], ensure_ascii=False)
            + "[/AVAILABLE_TOOLS]"
        )
    raise Unsupported(f"tool format {tool_format}")


def _calls_text(tool_format: str, functions: list[tuple[str, str]], release_at_least) -> str:
    """ToolUtils.function_formatter: (name, arguments as JSON) of each call."""
    since_0_9_3 = release_at_least("0.9.3")
    if tool_format == "default":
        if since_0_9_3:
            return "\n".join(f"Action: {name}\nAction Input: {arguments}" for name, arguments in functions)
        return "".join(f"Action: {name}\nAction Input: {arguments}\n" for name, arguments in functions)
    if tool_format == "qwen" or tool_format == "ling":  # ling writes calls as qwen does
        if since_0_9_3:
            texts = [json.dumps({"name": n, "arguments": json.loads(a)}, ensure_ascii=False) for n, a in functions]
        else:
            texts = [f'{{"name": "{n}", "arguments": {a}}}' for n, a in functions]
        return "\n".join(f"<tool_call>\n{text}\n</tool_call>" for text in texts)
    if tool_format == "llama3":
        if since_0_9_3:
            objects = [{"name": n, "parameters": json.loads(a)} for n, a in functions]
            return json.dumps(objects[0] if len(objects) == 1 else objects, ensure_ascii=False)
        if len(functions) > 1:
            raise Unsupported("Llama-3 does not support parallel functions")
        return f'{{"name": "{functions[0][0]}", "parameters": {functions[0][1]}}}'
    if tool_format == "glm4":
        if len(functions) > 1:
            raise Unsupported("GLM-4 does not support parallel functions")
        return f"{functions[0][0]}\n{functions[0][1]}"
    if tool_format == "minimax1":
        texts = [json.dumps({"name": n, "arguments": json.loads(a)}, ensure_ascii=False) for n, a in functions]
        return "<tool_calls>\n" + "\n".join(texts) + "\n</tool_calls>"
    if tool_format == "lfm2":
        calls = []
        for name, arguments in functions:
            parts = [f'{key}="{value}"' if isinstance(value, str) else f"{key}={json.dumps(value, ensure_ascii=False)}"
                     for key, value in json.loads(arguments).items()]  # fmt: skip
            calls.append(f"{name}({', '.join(parts)})")
        return f"<|tool_call_start|>[{', '.join(calls)}]<|tool_call_end|>"
    if tool_format == "minimax2" and not release_at_least("0.9.5"):
        raise Unsupported("0.9.4's minimax2 function formatter returns nothing (LLaMA-Factory stops)")
    if tool_format in ("qwen3_5", "glm4_moe", "seed_oss", "minimax2"):  # one parameter per line, strings bare
        texts = []
        for name, arguments in functions:
            values = [(key, value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))
                      for key, value in json.loads(arguments).items()]  # fmt: skip
            if tool_format == "qwen3_5":
                body = "".join(f"\n<parameter={key}>\n{value}\n</parameter>" for key, value in values)
                texts.append(f"<tool_call>\n<function={name}>{body}\n</function>\n</tool_call>")
            elif tool_format == "minimax2":
                body = "".join(f'\n<parameter name="{key}">{value}</parameter>' for key, value in values)
                texts.append(f'<invoke name="{name}">{body}\n</invoke>')
            elif tool_format == "glm4_moe":
                body = "".join(f"\n<arg_key>{key}</arg_key>\n<arg_value>{value}</arg_value>" for key, value in values)
                texts.append(f"\n<tool_call>{name}{body}")
            else:
                body = "".join(f"\n<parameter={key}>{value}</parameter>" for key, value in values)
                texts.append(f"\n<seed:tool_call>\n<function={name}{body}\n</function>\n</seed:tool_call>")
        return "\n".join(texts)
    if tool_format == "mistral":
        if since_0_9_3:
            return json.dumps([{"name": n, "arguments": json.loads(a)} for n, a in functions], ensure_ascii=False)
        return "[" + ", ".join(f'{{"name": "{n}", "arguments": {a}}}' for n, a in functions) + "]"
    raise Unsupported(f"tool format {tool_format}")


def _parse_calls(text: str) -> list[tuple[str, str]]:
    calls = json.loads(text)
    if not isinstance(calls, list):
        calls = [calls]
    return [(call["name"], json.dumps(call["arguments"], ensure_ascii=False)) for call in calls]


def function_text(content: str, tool_format: str, release_at_least, thought_words=None, tool_call_words=None) -> str:
    """FunctionFormatter.apply's content: the call formatted, with the thought or text around it kept in front."""
    if tool_format not in SUPPORTED:
        raise Unsupported(f"tool format {tool_format}")
    try:
        if not release_at_least("0.9.4"):
            thought = re.search(r"<think>(.*)</think>", content, re.DOTALL)
            if thought:
                content = content.replace(thought.group(0), "")
            text = _calls_text(tool_format, _parse_calls(content), release_at_least)
            return thought.group(0) + text if thought else text
        call = None
        if tool_call_words and len(tool_call_words) == 2:
            pattern = rf"{re.escape(tool_call_words[0])}(.*?){re.escape(tool_call_words[1])}"
            call = re.search(pattern, content, re.DOTALL)
        if call is not None:
            return content.replace(call.group(0), "") + _calls_text(
                tool_format, _parse_calls(call.group(1)), release_at_least
            )
        thought = None
        if thought_words and len(thought_words) == 2:
            thought = re.search(rf"{re.escape(thought_words[0])}(.*?){re.escape(thought_words[1])}", content, re.DOTALL)
        text = _calls_text(
            tool_format, _parse_calls(content.replace(thought.group(0), "") if thought else content), release_at_least
        )
        return thought.group(0) + text if thought else text
    except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:  # LLaMA-Factory stops on these rows
        raise Unsupported(f"function call LLaMA-Factory cannot format: {exc}") from None
