"""Dump the argument dataclasses of an installed LLaMA-Factory / transformers as JSON.

This script runs *inside* an environment that has the real packages installed
(see tools/generate_schema.py, which builds those environments and calls it).
It imports the dataclasses and reads them with ``dataclasses.fields``; nothing
is parsed from source text, so what it records is what ``HfArgumentParser``
sees.

    python tools/extract_fields.py transformers      # Seq2SeqTrainingArguments
    python tools/extract_fields.py llamafactory      # LF's five train groups + templates
    python tools/extract_fields.py templates         # every chat template in full (slots, words, flags)

Standard library only at module level: it must run in any of those environments.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import importlib.metadata
import json
import os
import sys
import typing

os.environ.setdefault("DISABLE_VERSION_CHECK", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

_MISSING = dataclasses.MISSING


def _jsonable(value):
    """Return a JSON value for a default, or a marker dict when it has none."""
    if isinstance(value, enum.Enum):
        return _jsonable(value.value)
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return {"python": repr(value)}
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return {"python": repr(value)}


def _type_text(tp) -> str:
    if isinstance(tp, str):
        return tp
    if isinstance(tp, type) and not typing.get_args(tp):
        if tp.__module__ == "builtins":
            return tp.__name__
        return f"{tp.__module__}.{tp.__qualname__}"
    return str(tp).replace("typing.", "")


_SCALARS = {bool: "boolean", int: "integer", float: "number", str: "string", type(None): "null"}
_CONTAINERS = {dict: "object", list: "array", tuple: "array", set: "array"}


def _value_type(value) -> str:
    return _SCALARS.get(type(value), "string")


def _json_shape(tp):
    """(JSON types a config value may take, allowed values or None) for one annotation.

    Types are None when the annotation admits anything (Any, or a class such as
    GenerationConfig that YAML cannot express). Allowed values are only recorded
    when the dataclass really restricts them: a Literal or Enum, or transformers'
    ``Enum | str`` pattern, whose ``__post_init__`` converts the string to the Enum.
    """
    if isinstance(tp, str):
        return None, None
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is typing.Any:
        return None, None
    if origin is typing.Literal:
        return sorted({_value_type(v) for v in args}), list(args)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        values = [m.value for m in tp]
        return sorted({_value_type(v) for v in values}), values
    if isinstance(tp, type) and tp in _SCALARS:
        return [_SCALARS[tp]], None
    if isinstance(tp, type) and tp.__module__ == "pathlib":
        return ["string"], None
    base = origin if origin is not None else tp
    if base in _CONTAINERS:
        return [_CONTAINERS[base]], None
    if origin is typing.Union or type(tp).__name__ == "UnionType":
        types: set = set()
        members = [a for a in args if a is not type(None)]
        for arg in args:
            sub_types, _ = _json_shape(arg)
            if sub_types is None:
                return None, None
            types.update(sub_types)
        restricting = [
            a
            for a in members
            if typing.get_origin(a) is typing.Literal or (isinstance(a, type) and issubclass(a, enum.Enum))
        ]
        choices = None
        if restricting and len(restricting) == len(members):
            choices = [v for a in restricting for v in _json_shape(a)[1]]
        elif len(restricting) == 1 and isinstance(restricting[0], type) and set(members) == {restricting[0], str}:
            choices = [m.value for m in restricting[0]]
        if choices is not None and len(members) < len(args):
            choices.append(None)
        return sorted(types), choices
    return None, None


def _resolved_hints(cls):
    try:
        return typing.get_type_hints(cls)
    except Exception:
        return {}


def _defined_in(cls, name: str) -> type:
    for klass in cls.__mro__:
        if name in getattr(klass, "__annotations__", {}):
            return klass
    return cls


def describe(cls, group: str) -> list[dict]:
    hints = _resolved_hints(cls)
    rows = []
    for f in dataclasses.fields(cls):
        tp = hints.get(f.name, f.type)
        if f.default is not _MISSING:
            default = _jsonable(f.default)
        elif f.default_factory is not _MISSING:
            try:
                default = _jsonable(f.default_factory())
            except Exception as exc:
                default = {"python": f"<factory failed: {exc!r}>"}
        else:
            default = {"required": True}
        owner = _defined_in(cls, f.name)
        json_types, choices = _json_shape(tp)
        rows.append(
            {
                "group": group,
                "name": f.name,
                "type": _type_text(tp),
                "default": default,
                "json_types": json_types,
                "choices": None if choices is None else [_jsonable(c) for c in choices],
                "help": (f.metadata or {}).get("help"),
                "init": f.init,
                "defined_in": f"{owner.__module__}.{owner.__qualname__}",
            }
        )
    return rows


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def extract_transformers() -> dict:
    import transformers.trainer_utils as tu
    import transformers.training_args as ta
    from transformers import Seq2SeqTrainingArguments

    enums = {}
    for module, name in [
        (tu, "SchedulerType"),
        (tu, "IntervalStrategy"),
        (tu, "SaveStrategy"),
        (tu, "HubStrategy"),
        (tu, "FSDPOption"),
        (ta, "OptimizerNames"),
    ]:
        enum_cls = getattr(module, name, None)
        if enum_cls is not None:
            enums[name] = [m.value for m in enum_cls]
    return {
        "package": "transformers",
        "version": _version("transformers"),
        "fields": describe(Seq2SeqTrainingArguments, "TrainingArguments"),
        "enums": enums,
        "scheduler_kwargs": scheduler_kwargs(),
    }


def scheduler_kwargs() -> dict:
    """For each lr_scheduler_type, the ``lr_scheduler_kwargs`` keys ``get_scheduler`` accepts.

    Probed on the real ``transformers.get_scheduler`` with a one-parameter optimizer: a value
    of None means the kwargs are not passed on (any key is ignored); otherwise the list holds
    every candidate key that does not raise "unexpected keyword argument".
    """
    import inspect

    import torch
    import transformers.optimization as opt
    from transformers.trainer_utils import SchedulerType

    candidates: set[str] = set()
    for func in opt.TYPE_TO_SCHEDULER_FUNCTION.values():
        candidates.update(inspect.signature(func).parameters)
    candidates.update(inspect.signature(torch.optim.lr_scheduler.ReduceLROnPlateau).parameters)
    for name in dir(opt):
        obj = getattr(opt, name)
        if (
            isinstance(obj, type)
            and issubclass(obj, torch.optim.lr_scheduler.LRScheduler)
            and obj.__module__ == opt.__name__
        ):
            candidates.update(inspect.signature(obj).parameters)
    candidates -= {"optimizer", "num_warmup_steps", "num_training_steps", "self", "args", "kwargs"}

    def accepts(scheduler: str, kwargs: dict) -> bool:
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
        try:
            opt.get_scheduler(
                scheduler, optimizer, num_warmup_steps=1, num_training_steps=10, scheduler_specific_kwargs=kwargs
            )
        except TypeError as exc:
            return "unexpected keyword argument" not in str(exc)
        except Exception:
            return True
        return True

    result = {}
    for member in SchedulerType:
        if accepts(member.value, {"__lf_lint_probe__": 1}):
            result[member.value] = None
            continue
        result[member.value] = sorted(key for key in candidates if accepts(member.value, {key: 1}))
    return result


def extract_llamafactory() -> dict:
    from llamafactory import hparams

    groups = ["ModelArguments", "DataArguments", "TrainingArguments", "FinetuningArguments", "GeneratingArguments"]
    fields = []
    for group in groups:
        fields.extend(describe(getattr(hparams, group), group))
    # groups only some releases parse: megatron-bridge's (USE_MEGATRON_BRIDGE=1, main) and the chat/eval parsers'
    # kt_config (main's hparams/parser.py::_KTransformersRuntimeArguments)
    from llamafactory.hparams import parser as parser_module

    optional = {"MegatronBridgeArguments": getattr(hparams, "MegatronBridgeArguments", None),
                "KTransformersRuntimeArguments": getattr(parser_module, "_KTransformersRuntimeArguments", None)}  # fmt: skip
    for group, cls in optional.items():
        if cls is not None:
            fields.extend(describe(cls, group))

    from llamafactory.data import template as template_module

    templates = {}
    for name, tpl in template_module.TEMPLATES.items():
        plugin = getattr(tpl, "mm_plugin", None)
        templates[name] = {
            "efficient_eos": bool(getattr(tpl, "efficient_eos", False)),
            "multimodal": plugin is not None and type(plugin).__name__ != "BasePlugin",
            "reasoning": bool(
                getattr(tpl, "enable_thinking", None) is not None and type(tpl).__name__ == "ReasoningTemplate"
            ),
        }
    try:
        from llamafactory.data.tool_utils import TOOLS

        tools = sorted(TOOLS)
    except Exception:
        tools = None
    return {
        "package": "llamafactory",
        "version": _version("llamafactory"),
        "transformers": _version("transformers"),
        "fields": fields,
        "templates": templates,
        "tool_formats": tools,
        "requires": importlib.metadata.requires("llamafactory") or [],
    }


def _slots(slots) -> list:
    """Formatter slots as JSON: strings stay strings, {"bos_token"} -> {"special": "bos_token"}, {"token": t} stays."""
    out = []
    for slot in slots:
        if isinstance(slot, str):
            out.append(slot)
        elif isinstance(slot, set):
            out.append({"special": sorted(slot)[0]})
        elif isinstance(slot, dict):
            out.append({"token": slot.get("token")})
        else:
            out.append({"python": repr(slot)})
    return out


def extract_templates() -> dict:
    """Every registered chat template as the processors use it (data/template.py::TEMPLATES)."""
    from llamafactory.data import template as template_module

    formatters = ("format_user", "format_assistant", "format_system", "format_function", "format_observation",
                  "format_tools", "format_prefix")  # fmt: skip
    templates = {}
    for name, tpl in template_module.TEMPLATES.items():
        entry = {"class": type(tpl).__name__, "mm_plugin": type(tpl.mm_plugin).__name__}
        for attr in formatters:
            formatter = getattr(tpl, attr)
            entry[attr] = {"kind": type(formatter).__name__, "slots": _slots(formatter.slots),
                           "tool_format": getattr(formatter, "tool_format", None)}  # fmt: skip
        for attr in ("default_system", "stop_words", "thought_words", "tool_call_words", "efficient_eos",
                     "replace_eos", "enable_thinking", "preserve_thinking"):  # fmt: skip
            if hasattr(tpl, attr):
                value = getattr(tpl, attr)
                entry[attr] = list(value) if isinstance(value, tuple) else value
        templates[name] = entry
    from llamafactory.data import tool_utils

    prompts = {k: v for k, v in vars(tool_utils).items() if k.endswith("_TOOL_PROMPT") and isinstance(v, str)}
    return {"version": _version("llamafactory"), "templates": templates, "tool_prompts": prompts}


EXTRACTORS = {"transformers": "extract_transformers", "llamafactory": "extract_llamafactory",
              "templates": "extract_templates"}  # fmt: skip


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in EXTRACTORS:
        print(__doc__, file=sys.stderr)
        return 2
    out = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):  # LLaMA-Factory logs to stdout while importing
        result = globals()[EXTRACTORS[argv[0]]]()
    json.dump(result, out, indent=1, sort_keys=True)
    out.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
