"""Rules about reading the file: syntax, encoding, size, the top level, and YAML 1.1 traps."""

from __future__ import annotations

import re

from ..diagnostics import Severity
from ..loading import _YAML11_FLOAT, STR_TAG, Span, is_date
from .base import Context, Example, Finding, Rule

ERROR, WARNING, INFO = Severity.ERROR, Severity.WARNING, Severity.INFO


def _problems(kinds: tuple[str, ...]):
    def check(ctx: Context):
        for problem in ctx.config.problems:
            if problem.kind in kinds:
                yield Finding(problem.message, span=problem.span)

    return check


UNREADABLE = Rule(
    code="LF001",
    name="unreadable-file",
    severity=ERROR,
    summary="The file cannot be read as a text config (missing, a directory, binary, not UTF-8, or far too large).",
    what="Reports a path that does not exist, is a directory, holds bytes that are not UTF-8 text "
    "(NUL bytes, a binary file), or is far larger than any training config.",
    why="`llamafactory-cli train` opens the file as UTF-8 text (`OmegaConf.load`, or `Path.read_text` before "
    "0.9.4); anything else stops it with a traceback before training starts.",
    check=_problems(("io", "encoding", "too-large")),
    needs_config=False,
    applies_to=("train", "infer", "other"),
)

SYNTAX = Rule(
    code="LF002",
    name="syntax-error",
    severity=ERROR,
    summary="The file is not valid YAML (or JSON).",
    what="Reports the first YAML or JSON syntax error, at the line and column where the parser stopped.",
    why="LLaMA-Factory cannot parse the file, so nothing in it is used.",
    example=Example("learning_rate: [1.0e-4\nstage: sft", complete=True),
    use_instead=Example("learning_rate: 1.0e-4\nstage: sft"),
    check=_problems(("syntax",)),
    needs_config=False,
    applies_to=("train", "infer"),
)

NOT_MAPPING = Rule(
    code="LF003",
    name="not-a-mapping",
    severity=ERROR,
    summary="The top level of the config is a list or a single value, not a mapping.",
    what="Reports a config whose document is a list (`- stage: sft`) or a scalar instead of `key: value` pairs.",
    why="LLaMA-Factory merges the document with the command-line overrides as a mapping; a list fails "
    "with `Cannot merge incompatible container types` (0.9.4+), and older releases misread it as command-line arguments.",
    example=Example("- stage: sft\n- do_train: true", complete=True),
    use_instead=Example("stage: sft\ndo_train: true"),
    check=_problems(("not-mapping",)),
    needs_config=False,
    applies_to=("train", "infer"),
)

EMPTY = Rule(
    code="LF004",
    name="empty-config",
    severity=ERROR,
    summary="The config file is empty.",
    what="Reports a file with no YAML document (empty, or only comments).",
    why="LLaMA-Factory gets no arguments and stops with ``Please provide `model_name_or_path`.`` (0.9.4+) "
    "or by treating the file name as a command-line argument (0.9.2-0.9.3).",
    example=Example("# TODO\n", complete=True),
    use_instead=Example("model_name_or_path: Qwen/Qwen3-0.6B"),
    check=_problems(("empty",)),
    needs_config=False,
    applies_to=("train", "infer"),
)

ALIAS_BOMB = Rule(
    code="LF005",
    name="alias-bomb",
    severity=ERROR,
    summary="YAML anchors and aliases expand the document to an enormous size.",
    what="Counts the values the document would have once every alias (`*name`) is expanded, without expanding "
    "it, and reports documents that grow past 100,000 values or refer to themselves.",
    why="OmegaConf copies every aliased value, so such a file makes LLaMA-Factory hang or run out of memory "
    "(the 'billion laughs' attack).",
    check=_problems(("alias-bomb",)),
    needs_config=False,
    applies_to=("train", "infer"),
)


def _check_duplicates(ctx: Context):
    fatal = ctx.config.semantics.duplicate_keys_fatal
    for dup in ctx.config.duplicates:
        where = "" if not dup.path else f" in `{'.'.join(map(str, dup.path))}`"
        if fatal:
            message = (
                f"duplicate key `{dup.key}`{where} (first at line {dup.first.line}): LLaMA-Factory "
                f"{ctx.target.llamafactory} reads YAML with OmegaConf, which stops with `found duplicate key {dup.key}`"
            )
        else:
            message = (
                f"duplicate key `{dup.key}`{where} (first at line {dup.first.line}): LLaMA-Factory "
                f"{ctx.target.llamafactory} silently keeps this last value and ignores the first"
            )
        yield Finding(message, span=dup.second, severity=ERROR if fatal else WARNING, fix="keep one of the two entries")


DUPLICATE_KEY = Rule(
    code="LF006",
    name="duplicate-key",
    severity=ERROR,
    summary="The same key appears twice in one mapping.",
    what="Reports every key that is repeated in the same mapping, pointing at the second occurrence.",
    why="From LLaMA-Factory 0.9.4 (OmegaConf) a duplicate key is fatal: `found duplicate key`. Up to 0.9.3 "
    "(PyYAML) the last value silently wins, so the first setting you see is not the one used (severity: warning there).",
    example=Example("val_size: 0.1\nval_size: 0.05"),
    use_instead=Example("val_size: 0.05"),
    upstream="OmegaConf `_utils.get_yaml_loader` (LLaMA-Factory >= 0.9.4 reads configs with `OmegaConf.load`); "
    "PyYAML `SafeConstructor.construct_mapping` (<= 0.9.3).",
    check=_check_duplicates,
    applies_to=("train", "infer"),
)


def _expects(ctx: Context, path: tuple, json_type: str) -> bool:
    if len(path) != 1:
        return False
    field = ctx.table.get(path[0])
    return field is not None and field.json_types is not None and json_type in field.json_types


def _check_yaml11_float(ctx: Context):
    pyyaml = ctx.config.semantics.yaml_reader == "pyyaml" and ctx.config.format == "yaml"
    for scalar in ctx.config.scalars:
        if not scalar.plain or scalar.tag != STR_TAG or not _looks_like_exponent_float(scalar.text):
            continue
        if not pyyaml:
            continue
        numeric = _expects(ctx, scalar.path, "number") and not _expects(ctx, scalar.path, "string")
        yield Finding(
            f"`{scalar.text}` is read as the string {scalar.text!r}, not a number, by LLaMA-Factory "
            f"{ctx.target.llamafactory} (PyYAML follows YAML 1.1, where a float needs a decimal point)"
            + (
                "; training then fails in the optimizer with `'<=' not supported between 'float' and 'str'`"
                if numeric
                else ""
            ),
            key=scalar.path,
            at="value",
            span=scalar.span,
            fix=f"write {_with_decimal_point(scalar.text)}",
            severity=ERROR if numeric else WARNING,
        )


def _looks_like_exponent_float(text: str) -> bool:
    from ..loading import _OMEGACONF_FLOAT

    return bool(_OMEGACONF_FLOAT.match(text)) and not _YAML11_FLOAT.match(text)


def _with_decimal_point(text: str) -> str:
    mantissa, _, exponent = text.replace("E", "e").partition("e")
    return f"{mantissa}.0e{exponent}" if "." not in mantissa else text


YAML11_FLOAT = Rule(
    code="LF007",
    name="exponent-float-is-string",
    severity=ERROR,
    summary="`1e-4` without a decimal point is a string for LLaMA-Factory <= 0.9.3.",
    what="Reports unquoted numbers in exponent notation without a decimal point (`1e-4`, `5E5`) when the "
    "targeted LLaMA-Factory reads YAML with PyYAML (0.9.2, 0.9.3).",
    why="PyYAML implements YAML 1.1, whose float pattern requires a `.`: `learning_rate: 1e-4` arrives as the "
    "string `'1e-4'`, `HfArgumentParser` does not convert it, and training crashes in the optimizer "
    "(hiyouga/LLaMA-Factory #4014, #4149). 0.9.4 switched to OmegaConf, which reads it as a float (PR #8505).",
    example=Example("learning_rate: 1e-4", options={"llamafactory_version": "0.9.3"}),
    use_instead=Example("learning_rate: 1.0e-4", options={"llamafactory_version": "0.9.3"}),
    upstream="hparams/parser.py::read_args (`yaml.safe_load` in 0.9.2-0.9.3).",
    check=_check_yaml11_float,
)

_BOOL_WORDS = re.compile(r"^(?:yes|Yes|YES|no|No|NO|on|On|ON|off|Off|OFF)$")


def _check_bool_words(ctx: Context):
    for scalar in ctx.config.scalars:
        if scalar.plain and isinstance(scalar.value, bool) and _BOOL_WORDS.match(scalar.text):
            yield Finding(
                f"`{scalar.text}` is read as {str(scalar.value).lower()} by LLaMA-Factory (YAML 1.1), but as the string "
                f"{scalar.text!r} by editors and YAML 1.2 tools",
                key=scalar.path,
                at="value",
                span=scalar.span,
                fix=f"write {str(scalar.value).lower()}",
            )


YAML11_BOOL = Rule(
    code="LF008",
    name="yes-no-boolean",
    severity=WARNING,
    summary="`yes`/`no`/`on`/`off` are booleans to LLaMA-Factory but strings to most other tools.",
    what="Reports unquoted `yes`, `no`, `on` and `off` (any capitalisation YAML 1.1 accepts).",
    why="LLaMA-Factory's loaders follow YAML 1.1 and turn these into booleans; YAML 1.2 tools (editors, "
    "check-jsonschema, ruamel) keep them as strings, so what you see validated is not what trains. "
    "Where a string was meant (a name that happens to be `on`), LLaMA-Factory receives a boolean.",
    example=Example("do_train: yes"),
    use_instead=Example("do_train: true"),
    check=_check_bool_words,
    applies_to=("train", "infer"),
)

_SEXAGESIMAL = re.compile(r"^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+$")
_OCTAL = re.compile(r"^[-+]?0[0-7_]+$")


def _check_yaml11_numbers(ctx: Context):
    for scalar in ctx.config.scalars:
        if not scalar.plain or isinstance(scalar.value, bool) or not isinstance(scalar.value, int):
            continue
        if _OCTAL.match(scalar.text):
            yield Finding(
                f"`{scalar.text}` has a leading zero, so YAML 1.1 reads it as the octal number {scalar.value}",
                key=scalar.path,
                at="value",
                span=scalar.span,
                fix=f"write {scalar.value} (or {scalar.text.lstrip('0') or '0'} if decimal was meant)",
            )
        elif _SEXAGESIMAL.match(scalar.text):
            yield Finding(
                f"`{scalar.text}` is a base-60 number in YAML 1.1: LLaMA-Factory reads {scalar.value}",
                key=scalar.path,
                at="value",
                span=scalar.span,
                fix=f'quote it ("{scalar.text}") if text was meant',
            )


YAML11_NUMBER = Rule(
    code="LF009",
    name="yaml11-number",
    severity=WARNING,
    summary="A leading zero (octal) or a colon (base 60) changes the number YAML 1.1 reads.",
    what="Reports unquoted integers written as `010` (read as 8) or `1:30` (read as 90).",
    why="LLaMA-Factory's YAML 1.1 loaders read these differently from what most people, and YAML 1.2 tools, expect.",
    example=Example("save_steps: 0500"),
    use_instead=Example("save_steps: 500"),
    check=_check_yaml11_numbers,
    applies_to=("train", "infer"),
)


def _check_dates(ctx: Context):
    if ctx.config.format != "yaml":
        return
    through_omegaconf = ctx.config.semantics.through_omegaconf
    for scalar in ctx.config.scalars:
        if is_date(scalar.value):
            if through_omegaconf:
                message = (
                    f"`{scalar.text}` is read as a date by PyYAML, and LLaMA-Factory {ctx.target.llamafactory} then "
                    "passes it to OmegaConf, which stops with `UnsupportedValueType`"
                )
                severity = ERROR
            else:
                message = f"`{scalar.text}` is read as a date object, not a string, by LLaMA-Factory {ctx.target.llamafactory}"
                severity = WARNING
            yield Finding(
                message,
                key=scalar.path,
                at="value",
                span=scalar.span,
                fix=f'quote it: "{scalar.text}"',
                severity=severity,
            )


DATE_VALUE = Rule(
    code="LF010",
    name="date-value",
    severity=ERROR,
    summary="An unquoted date (`2024-01-01`) becomes a date object for LLaMA-Factory <= 0.9.3.",
    what="Reports unquoted values that PyYAML's YAML 1.1 timestamp rule turns into `datetime.date`.",
    why="LLaMA-Factory 0.9.3 hands the PyYAML result to OmegaConf, which rejects date objects; 0.9.2 passes a "
    "date where a string (`run_name`, `output_dir`) is expected. 0.9.4+ (OmegaConf's loader) keeps it a string.",
    example=Example("run_name: 2024-01-01", options={"llamafactory_version": "0.9.3"}),
    use_instead=Example('run_name: "2024-01-01"', options={"llamafactory_version": "0.9.3"}),
    check=_check_dates,
    applies_to=("train", "infer"),
)

_INTERPOLATION = re.compile(r"\$\{[^}]*\}")


def _check_interpolation(ctx: Context):
    for scalar in ctx.config.scalars:
        if isinstance(scalar.value, str) and _INTERPOLATION.search(scalar.value):
            yield Finding(
                f"`{scalar.value}` is passed to LLaMA-Factory literally: it does not resolve `${{...}}` interpolations "
                "(OmegaConf.to_container(resolve=False))",
                key=scalar.path,
                at="value",
                span=scalar.span,
                fix="write the value itself, or pass it as an override: `llamafactory-cli train cfg.yaml key=value`",
            )


INTERPOLATION = Rule(
    code="LF011",
    name="unresolved-interpolation",
    severity=WARNING,
    summary="`${...}` interpolations are not resolved by LLaMA-Factory.",
    what="Reports string values containing an OmegaConf-style interpolation such as `${oc.env:HOME}/out`.",
    why="LLaMA-Factory converts the config with `OmegaConf.to_container` without `resolve=True`, so the text "
    "`${...}` itself reaches the argument (a directory literally named `${oc.env:HOME}`, or a crash where a "
    "number was expected).",
    example=Example("output_dir: ${oc.env:HOME}/saves/run1"),
    use_instead=Example("output_dir: /home/me/saves/run1"),
    upstream="hparams/parser.py::read_args (0.9.3+).",
    check=_check_interpolation,
    applies_to=("train", "infer"),
)


def _check_json_config(ctx: Context):
    if ctx.config.format == "json" and ctx.config.semantics.json_reader == "broken":
        yield Finding(
            f"LLaMA-Factory {ctx.target.llamafactory} cannot read .json configs: read_args calls `json.load(Path(...))` "
            "and stops with `AttributeError: 'PosixPath' object has no attribute 'read'`",
            span=Span(1, 1, 1, 2),
            fix="save the config as YAML (JSON is valid YAML: renaming the file to .yaml works)",
        )


JSON_CONFIG = Rule(
    code="LF012",
    name="json-config-unsupported",
    severity=ERROR,
    summary="LLaMA-Factory 0.9.5 crashes on `.json` configs.",
    what="Reports a `.json` train config when the targeted LLaMA-Factory cannot load JSON configs.",
    why="Commit 4c1eb922e (#9730, released in 0.9.5) made read_args call `json.load` on a `Path`, which fails "
    "before any argument is read. 0.9.2-0.9.4 read JSON configs.",
    upstream="hparams/parser.py::read_args (0.9.5).",
    check=_check_json_config,
    needs_config=False,
    applies_to=("train", "infer"),
)


def _check_overrides(ctx: Context):
    for problem in ctx.config.problems:
        if problem.kind == "override":
            yield Finding(problem.message)
    if ctx.config.overrides and not ctx.config.semantics.accepts_overrides:
        tokens = " ".join(o.text for o in ctx.config.overrides)
        yield Finding(
            f"LLaMA-Factory {ctx.target.llamafactory} does not accept `key=value` overrides after the config file "
            f"({tokens}): it only reads the file when it is the single argument",
            fix="edit the file instead, or target LLaMA-Factory 0.9.3+",
        )


OVERRIDES = Rule(
    code="LF013",
    name="override-not-applied",
    severity=ERROR,
    summary="A `--set key=value` override cannot be applied the way LLaMA-Factory would.",
    what="Reports overrides the targeted LLaMA-Factory would reject: any override on 0.9.2 (which reads "
    "`cfg.yaml` only when it is the sole argument) and values OmegaConf cannot parse.",
    why="The run you lint would not be the run that starts.",
    upstream="hparams/parser.py::read_args (`len(sys.argv) == 2` in 0.9.2; `OmegaConf.from_cli` from 0.9.3).",
    check=_check_overrides,
    needs_config=False,
    applies_to=("train", "infer"),
)


def _check_suffix(ctx: Context):
    name = ctx.config.path
    if name.lower().endswith((".yaml", ".yml", ".json")) and not name.endswith((".yaml", ".yml", ".json")):
        yield Finding(
            "LLaMA-Factory recognises configs by a lower-case `.yaml`, `.yml` or `.json` suffix; with this name "
            "it treats the path as a command-line argument and stops with `Some specified arguments are not used`",
            span=Span(1, 1, 1, 2),
            fix="rename the file with a lower-case suffix",
        )


SUFFIX = Rule(
    code="LF014",
    name="config-suffix",
    severity=ERROR,
    summary="An upper-case suffix (`.YAML`) is not recognised as a config file.",
    what="Reports config files named `*.YAML`, `*.Yml`, `*.JSON` and similar.",
    why="read_args checks `argv[1].endswith('.yaml')` (and `.yml`, `.json`) case-sensitively; anything else "
    "falls through to argparse, which rejects the file name.",
    upstream="hparams/parser.py::read_args (0.9.2-0.9.5).",
    check=_check_suffix,
    needs_config=False,
    applies_to=("train", "infer"),
)


def _check_kind(ctx: Context):
    notes = {
        "export": "an export config (`llamafactory-cli export`): checked against the arguments of get_infer_args",
        "chat": "an inference config (`llamafactory-cli chat/api/webchat`): checked against the arguments of get_infer_args",
        "v1": "a LLaMA-Factory v1 config (`USE_V1=1`): not checked",
    }
    if ctx.kind in notes:
        yield Finding(
            f"this looks like {notes[ctx.kind]}",
            span=Span(1, 1, 1, 2),
            fix="use --command train to check it as a train config",
        )


CONFIG_KIND = Rule(
    code="LF015",
    name="config-kind",
    severity=INFO,
    summary="The file is not a train config (an export/chat config, or not a LLaMA-Factory file at all).",
    what="Says how lf-lint classified a LLaMA-Factory file that is not a `llamafactory-cli train` config "
    "(an export or chat config, a v1 config) and what it checked. Train configs, export/chat configs, v1 "
    "configs, accelerate and DeepSpeed configs and dataset registries are told apart by their keys; files "
    "that are not LLaMA-Factory configs at all are skipped silently (the summary counts them).",
    why="A pre-commit hook sees every YAML file in a repository; lf-lint must not flag files that are not "
    "LLaMA-Factory train configs, and must check export/chat configs against the arguments those commands accept.",
    check=_check_kind,
    needs_config=False,
    applies_to=("infer", "other"),
)

INTERNAL_ERROR = Rule(
    code="LF000",
    name="internal-error",
    severity=ERROR,
    summary="lf-lint itself failed while checking the config.",
    what="Reported, instead of a traceback, when one of lf-lint's checks raises an unexpected exception; the other "
    "checks still run.",
    why="It is a bug in lf-lint, not in the config. Please report it with the config (LF_LINT_DEBUG=1 shows the "
    "traceback).",
    check=lambda ctx: (),
    needs_config=False,
    applies_to=("train", "infer", "other"),
)

RULES = [
    INTERNAL_ERROR,
    UNREADABLE, SYNTAX, NOT_MAPPING, EMPTY, ALIAS_BOMB, DUPLICATE_KEY, YAML11_FLOAT, YAML11_BOOL, YAML11_NUMBER,
    DATE_VALUE, INTERPOLATION, JSON_CONFIG, OVERRIDES, SUFFIX, CONFIG_KIND,
]  # fmt: skip
