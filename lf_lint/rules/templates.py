"""Rules about the chat template: its name, `train_on_prompt` support, and the tool format.

LLaMA-Factory checks these in data/template.py::get_template_and_fix_tokenizer, after loading
the tokenizer and before preprocessing; the template names of each release come from its
``TEMPLATES`` registry (recorded in the argument database by tools/generate_schema.py).
"""

from __future__ import annotations

from ..diagnostics import Severity
from ..schema import database, release_facts
from .base import Context, Example, Finding, Rule
from .schema_rules import _suggest

ERROR = Severity.ERROR


def _templates(ctx: Context) -> dict:
    return release_facts(ctx.target.llamafactory)["templates"]


def _check_template(ctx: Context):
    name = ctx.args.template
    if not isinstance(name, str):
        return
    templates = _templates(ctx)
    if name not in templates:
        elsewhere = [v for v, meta in database()["llamafactory_releases"].items() if name in meta["templates"]]
        suggestion = _suggest(name, sorted(templates))
        hint = f" (it exists in LLaMA-Factory {', '.join(elsewhere)})" if elsewhere else ""
        yield Finding(
            f"LLaMA-Factory {ctx.target.llamafactory} stops with: Template {name} does not exist.{hint}",
            key="template",
            at="value",
            fix=f"did you mean `{suggestion}`?"
            if suggestion
            else "see `template` in LLaMA-Factory's README for the list",
        )
    elif ctx.args.train_on_prompt and templates[name]["efficient_eos"]:
        yield Finding(
            f"LLaMA-Factory {ctx.target.llamafactory} stops with: Current template does not support `train_on_prompt`. "
            f"(`{name}` appends its eos token efficiently, which leaves no prompt labels to train on)",
            key="train_on_prompt",
        )


UNKNOWN_TEMPLATE = Rule(
    code="LF270",
    name="unknown-template",
    severity=ERROR,
    summary="A `template` the targeted LLaMA-Factory does not have (or one that refuses `train_on_prompt`).",
    what="Checks `template` against the template registry of the targeted release, with the closest name as a "
    "suggestion and the releases that do have it; also reports `train_on_prompt` with templates that use an "
    "efficient end-of-sequence token (glm4, gemma2, yi_vl, ...).",
    why="LLaMA-Factory looks the template up only after loading the tokenizer, so a wrong name costs a model "
    "download and then stops with `Template X does not exist.` (hiyouga/LLaMA-Factory #5453, #7894, #9759).",
    example=Example("template: qwen2"),
    use_instead=Example("template: qwen"),
    upstream="data/template.py::get_template_and_fix_tokenizer (LLaMA-Factory 0.9.2-0.9.5).",
    check=_check_template,
    applies_to=("train", "infer"),
)


def _check_tool_format(ctx: Context):
    name = ctx.args.tool_format
    if not isinstance(name, str):
        return
    formats = release_facts(ctx.target.llamafactory)["tool_formats"] or []
    if formats and name not in formats:
        suggestion = _suggest(name, formats)
        yield Finding(
            f"LLaMA-Factory {ctx.target.llamafactory} stops with: Tool utils `{name}` not found. (known: {', '.join(formats)})",
            key="tool_format",
            at="value",
            fix=f"did you mean `{suggestion}`?" if suggestion else None,
        )


UNKNOWN_TOOL_FORMAT = Rule(
    code="LF271",
    name="unknown-tool-format",
    severity=ERROR,
    summary="A `tool_format` the targeted LLaMA-Factory does not have.",
    what="Checks `tool_format` against the tool formats of the targeted release.",
    why="LLaMA-Factory builds the function-call formatter when it loads the template and stops on an unknown name.",
    example=Example("tool_format: qwen3"),
    use_instead=Example("tool_format: qwen"),
    upstream="data/tool_utils.py::get_tool_utils (LLaMA-Factory 0.9.2-0.9.5).",
    check=_check_tool_format,
    applies_to=("train", "infer"),
)

# what AutoProcessor needs to build a processor; without any of them LLaMA-Factory's load_tokenizer gets the
# tokenizer back (or an error) and drops it: processor = None
PROCESSOR_FILES = ("processor_config.json", "preprocessor_config.json", "video_preprocessor_config.json")


_TEXT_MODEL = {"Qwen2-7B-Instruct/config.json": '{"model_type": "qwen2"}'}  # a text-only checkpoint


def _check_processor(ctx: Context):
    name = ctx.args.template
    meta = _templates(ctx).get(name) if isinstance(name, str) else None
    if not meta or not meta["multimodal"] or ctx.args.stage == "pt":  # pre-training never calls the plugin
        return
    from ..hub_cache import model_folders

    folders = [f for f in model_folders(ctx.args.model_name_or_path, ctx.workdir) if (f / "config.json").is_file()]
    if not folders or any((folder / f).is_file() for folder in folders for f in PROCESSOR_FILES):
        return  # not on this machine (unknown), or a multimodal checkpoint
    yield Finding(
        f"`{name}` is a multimodal template, and the model at {folders[0]} has no processor ({', '.join(PROCESSOR_FILES)}): "
        f"LLaMA-Factory {ctx.target.llamafactory} stops at the first example with `Processor was not found, please "
        "check and update your model file.` (`Audio feature extractor was not found` for audio templates), even for "
        "text-only data",
        key="template",
        at="value",
        fix="use the text template of this model family (the name without `_vl`/`_audio`), or a multimodal checkpoint",
    )


TEMPLATE_WITHOUT_PROCESSOR = Rule(
    code="LF272",
    name="multimodal-template-without-processor",
    severity=ERROR,
    summary="A multimodal `template` with a local model that has no processor.",
    what="Checks, for a model folder on this machine, that a multimodal template (qwen2_vl, llava, qwen2_audio, ...) "
    "comes with the processor its plugin needs: one of processor_config.json, preprocessor_config.json, "
    "video_preprocessor_config.json.",
    why="LLaMA-Factory drops what AutoProcessor returns for a text-only checkpoint (the tokenizer) and the "
    "multimodal plugin then refuses every example, text-only ones included, after the model has loaded.",
    example=Example("model_name_or_path: ./Qwen2-7B-Instruct\ntemplate: qwen2_vl", files=_TEXT_MODEL),
    use_instead=Example("model_name_or_path: ./Qwen2-7B-Instruct\ntemplate: qwen", files=_TEXT_MODEL),
    upstream="model/loader.py::load_tokenizer, data/mm_plugin.py::BasePlugin._validate_input (LLaMA-Factory 0.9.2-0.9.5).",
    check=_check_processor,
    applies_to=("train",),
)

RULES = [UNKNOWN_TEMPLATE, UNKNOWN_TOOL_FORMAT, TEMPLATE_WITHOUT_PROCESSOR]
