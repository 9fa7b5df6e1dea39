"""Rules that check each key and value against the generated schema of the targeted versions."""

from __future__ import annotations

from ..diagnostics import Severity
from ..loading import is_date
from ..schema import field_releases
from .base import Context, Example, Finding, Rule
from .inert_options import unmet_need

ERROR, WARNING = Severity.ERROR, Severity.WARNING

# Keys people still copy from old tutorials, and what replaced them.
RENAMED = {
    "evaluation_strategy": "eval_strategy",
    "sft_packing": "packing",
    "max_source_length": "cutoff_len",
    "max_target_length": "cutoff_len",
    "lr": "learning_rate",
    "batch_size": "per_device_train_batch_size",
    "train_batch_size": "per_device_train_batch_size",
    "micro_batch_size": "per_device_train_batch_size",
    "gradient_accumulation": "gradient_accumulation_steps",
    "epochs": "num_train_epochs",
    "model_name": "model_name_or_path",
    "model_path": "model_name_or_path",
    "lora_r": "lora_rank",
    "max_seq_length": "cutoff_len",
    "max_length": "cutoff_len",
}


def _known_elsewhere(name: str) -> str | None:
    """Where a key exists if not in the targeted versions: 'transformers 4.45-4.50', 'LLaMA-Factory 0.9.5'."""
    places = []
    for owner, label in (("transformers_fields", "transformers"), ("llamafactory_fields", "LLaMA-Factory")):
        # the groups a launch switch adds (MegatronBridgeArguments) or only chat parses are not "elsewhere"
        versions = field_releases(owner).get(name)
        if versions:
            places.append(f"{label} {_version_range(versions)}")
    return " and ".join(places) or None


def _version_range(versions: list[str]) -> str:
    return versions[0] if len(versions) == 1 else f"{versions[0]}-{versions[-1]}"


def _suggest(name: str, candidates: list[str]) -> str | None:
    lowered = {c.lower(): c for c in candidates}
    if name.lower() in lowered:
        return lowered[name.lower()]
    import difflib  # only when a name is unknown

    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.75)
    return close[0] if close else None


def _check_unknown(ctx: Context):
    allowed_extra = ctx.launch_env.enabled("ALLOW_EXTRA_ARGS")
    for problem in ctx.schema_problems:
        if problem.kind != "unknown-key":
            continue
        name = problem.key
        field = ctx.table.get(name)
        if field is not None and not field.init:
            yield Finding(
                f"`{name}` is set by LLaMA-Factory itself and cannot be given in a config "
                "(HfArgumentParser reports it as an unused key)",
                key=name,
                fix="remove it",
            )
            continue
        if ctx.command == "infer" and name in _train_only_names(ctx):
            message = f"`{name}` is a training argument; `llamafactory-cli {ctx.kind}` does not accept it"
            yield Finding(message, key=name, fix="remove it, or use this file with `llamafactory-cli train`")
            continue
        switch = _switch_refusing(ctx, name)
        if switch:
            yield Finding(f"`{name}` is not an argument when LLaMA-Factory is launched with {switch}=1 (its "
                          f"{_SWITCH_ARGUMENTS[ctx.table.arguments]} replace LLaMA-Factory's): LLaMA-Factory stops "
                          "with `Some keys are not used by the HfArgumentParser`", key=name,
                          fix=f"remove it, or launch without {switch}")  # fmt: skip
            continue
        if name in RENAMED or _known_elsewhere(name):
            continue  # LF102 explains keys that were renamed or belong to other releases
        suggestion = _suggest(name, ctx.table.accepted())
        message = f"unknown key `{name}`"
        switch = _switch_accepting(ctx, name)
        if switch:
            message += f" ({switch})"
        if allowed_extra:
            yield Finding(
                message + " (ignored: ALLOW_EXTRA_ARGS is set)",
                key=name,
                severity=WARNING,
                fix=f"did you mean `{suggestion}`?" if suggestion else None,
            )
            continue
        yield Finding(
            message + ": LLaMA-Factory stops with `Some keys are not used by the HfArgumentParser`",
            key=name,
            fix=f"did you mean `{suggestion}`?" if suggestion else None,
        )


_SWITCH_ARGUMENTS = {"mca": "mcore_adapter's TrainingArguments", "megatron_bridge": "arguments"}


def _switch_refusing(ctx: Context, name: str) -> str | None:
    """The launch switch the config is read under, when the key is an argument without it (a Seq2Seq argument or
    one of LLaMA-Factory's own TrainingArguments under USE_MCA)."""
    from ..schema import field_table
    from ..switches import ARGUMENT_SWITCHES

    if ctx.command != "train" or ctx.table.arguments == "default" or name not in field_table(ctx.target, "train"):
        return None
    return next(switch for switch, (variant, _) in ARGUMENT_SWITCHES.items() if variant == ctx.table.arguments)


def _switch_accepting(ctx: Context, name: str) -> str | None:
    """Which launch switch's arguments accept a key the config is not read under (switches.py)."""
    from ..schema import field_table
    from ..switches import ARGUMENT_SWITCHES

    if ctx.command != "train":
        return None
    for switch, (variant, first) in ARGUMENT_SWITCHES.items():
        if variant != ctx.table.arguments and ctx.target.lf >= first and name in field_table(ctx.target, "train", variant):
            return f"an argument LLaMA-Factory accepts only when launched with {switch}=1"
    return None


def _train_only_names(ctx: Context) -> set[str]:
    return set(ctx.table_for("train").accepted())


UNKNOWN_KEY = Rule(
    code="LF101",
    name="unknown-key",
    severity=ERROR,
    summary="A key that no argument of the targeted LLaMA-Factory/transformers accepts.",
    what="Reports every key that is not an argument of the command the config is for, with the closest "
    "valid key as a suggestion. Keys that exist in other releases are reported by LF102 instead.",
    why="`HfArgumentParser.parse_dict` refuses unknown keys: LLaMA-Factory stops with `ValueError: Some keys "
    "are not used by the HfArgumentParser: [...]`, after ~20 s of imports and without a line number. With "
    "`ALLOW_EXTRA_ARGS=1` the key is silently ignored instead (severity: warning).",
    example=Example("num_train_epoch: 3"),
    use_instead=Example("num_train_epochs: 3"),
    upstream="transformers `HfArgumentParser.parse_dict(allow_extra_keys=False)`, called by "
    "hparams/parser.py::_parse_train_args (0.9.2-0.9.5).",
    check=_check_unknown,
    applies_to=("train", "infer"),
)


def _check_renamed(ctx: Context):
    for problem in ctx.schema_problems:
        if problem.kind != "unknown-key":
            continue
        name = problem.key
        field = ctx.table.get(name)
        if field is not None and not field.init:
            continue
        if (ctx.command == "infer" and name in _train_only_names(ctx)) or _switch_refusing(ctx, name):
            continue  # LF101 says it is a training argument, or not one under the launch switch
        elsewhere = _known_elsewhere(name)
        replacement = RENAMED.get(name)
        if replacement is None and elsewhere is None:
            continue
        if replacement is not None and replacement not in ctx.table:
            replacement = None
        parts = [f"`{name}` is not an argument of {ctx.table.describe()}"]
        if elsewhere:
            parts.append(f"it exists in {elsewhere}")
        message = "; ".join(parts)
        if replacement:
            message += f"; use `{replacement}`"
            if ctx.args.is_set(replacement):
                message += f" (already set to {ctx.args.raw(replacement)!r})"
        yield Finding(
            message,
            key=name,
            fix=f"rename it to `{replacement}`" if replacement else "remove it, or target a release that has it",
        )


RENAMED_KEY = Rule(
    code="LF102",
    name="renamed-or-removed-key",
    severity=ERROR,
    summary="A key that was renamed or removed, or that only a different release accepts.",
    what="Reports keys that the targeted versions do not accept but other LLaMA-Factory or transformers "
    "releases do (`evaluation_strategy` was removed in transformers 4.51; `group_by_length` in 5.x), and "
    "well-known old names (`sft_packing`, `max_source_length`), naming the key to use instead.",
    why="Configs copied from older tutorials or written for a newer release fail with `Some keys are not "
    "used by the HfArgumentParser` (hiyouga/LLaMA-Factory #7927, #7677, #5328).",
    example=Example(
        "evaluation_strategy: steps\neval_steps: 100\nval_size: 0.1", options={"transformers_version": "4.57.1"}
    ),
    use_instead=Example(
        "eval_strategy: steps\neval_steps: 100\nval_size: 0.1", options={"transformers_version": "4.57.1"}
    ),
    check=_check_renamed,
    applies_to=("train", "infer"),
)


def _check_types(ctx: Context):
    exponent_strings = {s.path for s in ctx.config.scalars if s.plain and isinstance(s.value, str)}
    pyyaml = ctx.config.semantics.yaml_reader == "pyyaml"
    for problem in ctx.schema_problems:
        if problem.kind != "type" or (problem.key in EXPLAINED_ELSEWHERE and isinstance(problem.value, (int, float))):
            continue
        value = problem.value
        if pyyaml and (problem.key,) in exponent_strings and _is_exponent_text(value):
            continue  # LF007 explains YAML 1.1's exponent floats
        if is_date(value):
            continue  # LF010 explains YAML 1.1's dates
        if value is None and problem.field is not None and problem.field.json_types == ("boolean",):
            yield Finding(
                f"`{problem.key}: null` is not a boolean; LLaMA-Factory treats it as false",
                key=problem.key,
                at="value",
                fix=f"write {problem.key}: false",
                severity=WARNING,
            )
            continue
        expected = (
            " or ".join(problem.field.json_types) if problem.field and problem.field.json_types else "another type"
        )
        fix = None
        if isinstance(value, str) and _parses_as_number(value):
            fix = f"remove the quotes: {problem.key}: {value}"
            message = (
                f"`{problem.key}` is the string {value!r}; it must be {_article(expected)}. LLaMA-Factory does not convert "
                "strings from YAML, so the string reaches the trainer and fails there"
            )
        else:
            message = f"`{problem.key}` must be {_article(expected)}, not {_describe(value)}"
        yield Finding(message, key=problem.key, at="value", fix=fix)
    for key, value in ctx.data.items():
        field = ctx.table.get(key) if isinstance(key, str) else None
        if field is None or field.json_types is None or not field.init or key in EXPLAINED_ELSEWHERE:
            continue
        if (
            isinstance(value, float)
            and value.is_integer()
            and "integer" in field.json_types
            and "number" not in field.json_types
        ):
            crash = FLOAT_FAILS_AT_START.get(key)
            if key == "cutoff_len" and ctx.args.packing:
                crash = "packing multiplies lists by it, which fails with `can't multiply sequence by non-int of type 'float'`"
            yield Finding(
                f"`{key}` is the float {value!r}; the argument is an integer and LLaMA-Factory passes the float unchanged"
                + (f": {crash}" if crash else " (accepted at start-up, but code that needs an int may fail later)"),
                key=key,
                at="value",
                fix=f"write {int(value)}",
                severity=None if crash else WARNING,
            )


# Arguments whose numeric type errors a dedicated rule explains better (LF307: warmup_steps is an
# int on transformers 4.x and a float on 5.x).
EXPLAINED_ELSEWHERE = frozenset({"warmup_steps"})

# Integer arguments whose float form stops the run before training (checked against the real
# LLaMA-Factory by the differential tests); other integers take a float and may fail later.
FLOAT_FAILS_AT_START = {
    "per_device_train_batch_size": "PyTorch's DataLoader refuses a float batch size",
    "max_samples": "`range()` refuses it when the dataset is truncated",
    "lora_rank": "PEFT refuses a float rank",
    "seed": "numpy refuses a float seed",
}


def _is_exponent_text(value: object) -> bool:
    from .reading import _looks_like_exponent_float

    return isinstance(value, str) and _looks_like_exponent_float(value)


def _parses_as_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _describe(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (list, dict)):
        return f"a {'list' if isinstance(value, list) else 'mapping'}"
    return f"the {type(value).__name__} {value!r}"


WRONG_TYPE = Rule(
    code="LF103",
    name="wrong-type",
    severity=ERROR,
    summary="A value of the wrong type (a string where a number is expected, a list where a string is...).",
    what="Checks each value against the type of its argument in the targeted release: booleans, integers, "
    "floats, strings, lists and mappings. A float such as `2.0` where an integer is required is reported too.",
    why='`HfArgumentParser.parse_dict` does no type conversion: `learning_rate: "2e-5"` reaches the '
    'optimizer as a string, `cutoff_len: "1024"` crashes the packer, `max_samples: 9000,1000` is a string '
    "(hiyouga/LLaMA-Factory #4149, #6349).",
    example=Example('learning_rate: "2.0e-5"'),
    use_instead=Example("learning_rate: 2.0e-5"),
    upstream="transformers `HfArgumentParser.parse_dict` (no conversion), LLaMA-Factory's dataclasses.",
    check=_check_types,
    applies_to=("train", "infer"),
)


def _check_choices(ctx: Context):
    for problem in ctx.schema_problems:
        if problem.kind != "enum":
            continue
        choices = [c for c in problem.field.choices if c is not None]
        suggestion = _suggest(str(problem.value), [str(c) for c in choices])
        shown = ", ".join(repr(c) for c in choices[:12]) + (", ..." if len(choices) > 12 else "")
        yield Finding(
            f"`{problem.key}: {problem.value}` is not one of the allowed values ({shown})",
            key=problem.key,
            at="value",
            fix=f"did you mean `{suggestion}`?" if suggestion else None,
        )


INVALID_CHOICE = Rule(
    code="LF104",
    name="invalid-choice",
    severity=ERROR,
    summary="A value outside the argument's allowed choices (`stage: sf`, `lr_scheduler_type: cosin`).",
    what="Checks arguments with a fixed set of values (Literal or Enum types) against that set, with the "
    "closest valid value as a suggestion.",
    why="transformers converts `lr_scheduler_type`, `optim`, `eval_strategy`, `save_strategy` and "
    "`logging_strategy` to enums and stops (`X is not a valid SchedulerType`); LLaMA-Factory asserts "
    "`finetuning_type`; an unknown `stage` fails with `Unknown task`; other choices (`pref_loss`, "
    "`mix_strategy`, ...) are not checked at start-up and misbehave later.",
    example=Example("lr_scheduler_type: cosin"),
    use_instead=Example("lr_scheduler_type: cosine"),
    check=_check_choices,
    applies_to=("train", "infer"),
)


def _check_range(ctx: Context):
    for problem in ctx.schema_problems:
        if problem.kind == "range" and unmet_need(problem.key, problem.value, ctx) is None:
            yield Finding(f"`{problem.key}`: {problem.message}", key=problem.key, at="value")


OUT_OF_RANGE = Rule(
    code="LF105",
    name="out-of-range",
    severity=ERROR,
    summary="A number outside the range the argument allows (a zero batch size, a warmup ratio above 1).",
    what="Checks numeric arguments against the bounds LLaMA-Factory, transformers and PyTorch enforce or "
    "need: batch sizes and accumulation at least 1, learning rate and weight decay not negative, Adam betas "
    "in [0, 1), `warmup_ratio` in [0, 1], `max_samples` and `cutoff_len` at least 1, a seed numpy accepts.",
    why="Each of these fails at start-up or in the first step (`batch_size should be a positive integer`, "
    "`warmup_ratio must lie in range [0,1]`, `Invalid learning rate`, a bare `StopIteration` for "
    "`max_samples: 0`). A value the run never uses is not checked by anything (`lora_dropout: 1.5` in freeze "
    "tuning): LF316 reports that it has no effect instead.",
    example=Example("per_device_train_batch_size: 0"),
    use_instead=Example("per_device_train_batch_size: 1"),
    check=_check_range,
    applies_to=("train", "infer"),
)

RULES = [UNKNOWN_KEY, RENAMED_KEY, WRONG_TYPE, INVALID_CHOICE, OUT_OF_RANGE]


def _article(expected: str) -> str:
    return ("an " if expected[:1] in "aeiou" else "a ") + expected
