"""LLaMA-Factory's own start-up checks, one rule per check, for releases 0.9.2-0.9.5.

Each rule mirrors a condition of the dataclass ``__post_init__`` methods (hparams/*_args.py),
``hparams/parser.py::get_train_args`` or ``_verify_model_args``, says what LLaMA-Factory prints,
and knows the releases in which the check exists. Conditions see values through ``Args``
(the user's value, or the default when the value is missing or mistyped).
"""

from __future__ import annotations

import os
from collections.abc import Callable

from ..args import Args
from ..diagnostics import Severity
from ..launch import fsdp_loads_on_cpu
from ..versions import releases
from .base import Context, Example, Finding, Rule

ERROR, WARNING, INFO = Severity.ERROR, Severity.WARNING, Severity.INFO
ALL = releases()
FROM_093 = releases("0.9.3")
FROM_094 = releases("0.9.4")
UNTIL_094 = releases(last="0.9.4")


def _range(versions: tuple[str, ...]) -> str:
    return versions[0] if len(versions) == 1 else f"{versions[0]}-{versions[-1]}"


def lf_rule(
    code: str,
    name: str,
    *,
    summary: str,
    what: str,
    why: str,
    upstream: str,
    when: Callable[[Args, Context], object],
    message: str | Callable[[Context], str],
    key: str | Callable[[Context], str | None] | None,
    versions: tuple[str, ...] = ALL,
    severity: Severity = ERROR,
    at: str = "key",
    fix: str | None = None,
    example: Example | None = None,
    use_instead: Example | None = None,
    applies_to: tuple[str, ...] = ("train",),
) -> Rule:
    """A rule that reports one condition LLaMA-Factory checks, with the message it prints."""

    def check(ctx: Context):
        if ctx.target.llamafactory not in versions or not when(ctx.args, ctx):
            return
        text = message(ctx) if callable(message) else message
        if severity is ERROR:
            text = f"LLaMA-Factory {ctx.target.llamafactory} stops with: {text}"
        elif severity is WARNING:
            text = f"LLaMA-Factory warns: {text}"
        where = key(ctx) if callable(key) else key
        yield Finding(text, key=where, at=at, fix=fix)

    return Rule(
        code=code,
        name=name,
        severity=severity,
        summary=summary,
        what=what,
        why=why,
        check=check,
        example=example,
        use_instead=use_instead,
        upstream=f"{upstream} (LLaMA-Factory {_range(versions)}).",
        applies_to=applies_to,
    )


def _set(a: Args, *names: str) -> str | None:
    """The first of ``names`` the config sets (for pointing at it)."""
    return next((n for n in names if a.is_set(n)), None)


def _num(value: object, default: float = 0.0) -> float:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else default


# ----------------------------------------------------------------------------- ModelArguments

MISSING_MODEL = lf_rule(
    "LF201",
    "missing-model",
    summary="No `model_name_or_path`.",
    what="Reports a config without `model_name_or_path` (or with it set to null).",
    why="Every command needs a model; LLaMA-Factory refuses to start without one.",
    upstream="hparams/model_args.py::ModelArguments.__post_init__",
    when=lambda a, ctx: a.model_name_or_path is None,
    message="Please provide `model_name_or_path`.",
    key=None,
    fix="set model_name_or_path to a hub id or a local directory",
    example=Example("stage: sft\ndo_train: true\ndataset: d\noutput_dir: out", complete=True),
    use_instead=Example(
        "model_name_or_path: Qwen/Qwen3-0.6B\nstage: sft\ndo_train: true\ndataset: d\noutput_dir: out\nbf16: true",
        complete=True,
    ),
    applies_to=("train", "infer"),
)

PIXEL_BOUNDS = lf_rule(
    "LF202",
    "pixel-bounds",
    summary="`image_max_pixels` (or `video_max_pixels`) smaller than the minimum.",
    what="Reports `image_max_pixels < image_min_pixels` and `video_max_pixels < video_min_pixels` (defaults included).",
    why="The multimodal processor cannot resize into an empty range; LLaMA-Factory refuses it.",
    upstream="hparams/model_args.py::ProcessorArguments.__post_init__",
    versions=FROM_093,
    when=lambda a, ctx: (
        _num(a.image_max_pixels) < _num(a.image_min_pixels) or _num(a.video_max_pixels) < _num(a.video_min_pixels)
    ),
    message=lambda ctx: (
        "`image_max_pixels` cannot be smaller than `image_min_pixels`."
        if _num(ctx.args.image_max_pixels) < _num(ctx.args.image_min_pixels)
        else "`video_max_pixels` cannot be smaller than `video_min_pixels`."
    ),
    key=lambda ctx: _set(ctx.args, "image_max_pixels", "image_min_pixels", "video_max_pixels", "video_min_pixels"),
    example=Example("image_max_pixels: 1000\nimage_min_pixels: 4096"),
    use_instead=Example("image_max_pixels: 262144\nimage_min_pixels: 4096"),
    applies_to=("train", "infer"),
)

EXPORT_QUANT_DATASET = lf_rule(
    "LF203",
    "export-quantization-dataset",
    summary="`export_quantization_bit` without `export_quantization_dataset`.",
    what="Reports an export quantization bit width without the calibration dataset GPTQ needs.",
    why="LLaMA-Factory refuses the config when the arguments are parsed.",
    upstream="hparams/model_args.py::ExportArguments.__post_init__",
    when=lambda a, ctx: a.export_quantization_bit is not None and a.export_quantization_dataset is None,
    message="Quantization dataset is necessary for exporting.",
    key="export_quantization_bit",
    fix="set export_quantization_dataset (e.g. data/c4_demo.jsonl)",
    applies_to=("train", "infer"),
)

SPLIT_SPECIAL_TOKENS = lf_rule(
    "LF204",
    "split-special-tokens-fast-tokenizer",
    summary="`split_special_tokens` with a fast tokenizer (LLaMA-Factory <= 0.9.4).",
    what="Reports `split_special_tokens: true` while `use_fast_tokenizer` is true (its default).",
    why="Up to 0.9.4 LLaMA-Factory only supports splitting special tokens with slow tokenizers and refuses the "
    "combination; 0.9.5 dropped the check.",
    upstream="hparams/model_args.py::ModelArguments.__post_init__",
    versions=UNTIL_094,
    when=lambda a, ctx: a.split_special_tokens and a.use_fast_tokenizer,
    message="`split_special_tokens` is only supported for slow tokenizers.",
    key="split_special_tokens",
    fix="add use_fast_tokenizer: false",
    example=Example("split_special_tokens: true", options={"llamafactory_version": "0.9.4"}),
    use_instead=Example(
        "split_special_tokens: true\nuse_fast_tokenizer: false", options={"llamafactory_version": "0.9.4"}
    ),
    applies_to=("train", "infer"),
)

# ----------------------------------------------------------------------------- DataArguments

_DATA = "hparams/data_args.py::DataArguments.__post_init__"

VAL_SIZE_WITHOUT_DATASET = lf_rule(
    "LF210",
    "val-size-without-dataset",
    summary="`val_size` without a `dataset` to split.",
    what="Reports `val_size` greater than 0 when no `dataset` is set.",
    why="The validation split is taken from the training datasets; LLaMA-Factory refuses it without them.",
    upstream=_DATA,
    when=lambda a, ctx: a.dataset is None and _num(a.val_size) > 1e-6,
    message="Cannot specify `val_size` if `dataset` is None.",
    key="val_size",
)

VAL_SIZE_WITH_EVAL_DATASET = lf_rule(
    "LF211",
    "val-size-with-eval-dataset",
    summary="Both `val_size` and `eval_dataset`.",
    what="Reports `val_size` greater than 0 together with `eval_dataset`.",
    why="There are two ways to get evaluation data, and LLaMA-Factory accepts only one.",
    upstream=_DATA,
    when=lambda a, ctx: a.eval_dataset is not None and _num(a.val_size) > 1e-6,
    message="Cannot specify `val_size` if `eval_dataset` is not None.",
    key="val_size",
    fix="remove val_size (evaluate on eval_dataset) or remove eval_dataset (split val_size off the training data)",
    example=Example("eval_dataset: identity\nval_size: 0.1"),
    use_instead=Example("eval_dataset: identity"),
)

INTERLEAVE_WITH_CONCAT = lf_rule(
    "LF212",
    "interleave-probs-with-concat",
    summary="`interleave_probs` with `mix_strategy: concat`.",
    what="Reports `interleave_probs` when the datasets are concatenated (the default `mix_strategy`).",
    why="Probabilities only mean something when datasets are interleaved; LLaMA-Factory refuses the config.",
    upstream=_DATA,
    when=lambda a, ctx: a.interleave_probs is not None and a.mix_strategy == "concat",
    message="`interleave_probs` is only valid for interleaved mixing.",
    key="interleave_probs",
    fix="add mix_strategy: interleave_under (or interleave_over)",
    example=Example("dataset: identity,tips\ninterleave_probs: 0.3,0.7"),
    use_instead=Example("dataset: identity,tips\ninterleave_probs: 0.3,0.7\nmix_strategy: interleave_under"),
)


def _probs(a: Args) -> list | None:
    from ..args import split_list

    return split_list(a.interleave_probs)


def _probs_length_message(ctx: Context) -> str:
    a = ctx.args
    if a.dataset is not None and len(a.datasets) != len(_probs(a)):
        return "The length of dataset and interleave probs should be identical."
    return "The length of eval dataset and interleave probs should be identical."


INTERLEAVE_LENGTH = lf_rule(
    "LF213",
    "interleave-probs-length",
    summary="`interleave_probs` does not have one probability per dataset.",
    what="Reports `interleave_probs` whose length differs from the number of `dataset` names (or of "
    "`eval_dataset` names: the same probabilities are used for both).",
    why="LLaMA-Factory refuses the config when the arguments are parsed.",
    upstream=_DATA,
    when=lambda a, ctx: (
        a.interleave_probs is not None
        and a.mix_strategy != "concat"
        and (
            (a.dataset is not None and len(a.datasets) != len(_probs(a)))
            or (a.eval_dataset is not None and len(a.eval_datasets) != len(_probs(a)))
        )
    ),
    message=_probs_length_message,
    key="interleave_probs",
    example=Example("dataset: identity,tips\nmix_strategy: interleave_over\ninterleave_probs: 0.2,0.3,0.5"),
    use_instead=Example("dataset: identity,tips\nmix_strategy: interleave_over\ninterleave_probs: 0.4,0.6"),
)

STREAMING_VAL_SIZE = lf_rule(
    "LF214",
    "streaming-fractional-val-size",
    summary="A fractional `val_size` in streaming mode.",
    what="Reports `streaming: true` with `val_size` between 0 and 1.",
    why="A stream has no length to take a fraction of; LLaMA-Factory requires a number of examples.",
    upstream=_DATA,
    when=lambda a, ctx: a.streaming and 1e-6 < _num(a.val_size) < 1,
    message="Streaming mode should have an integer val size.",
    key="val_size",
    fix="give the number of validation examples, e.g. val_size: 500",
)

STREAMING_MAX_SAMPLES = lf_rule(
    "LF215",
    "streaming-max-samples",
    summary="`max_samples` in streaming mode.",
    what="Reports `max_samples` together with `streaming: true`.",
    why="LLaMA-Factory refuses the combination when the arguments are parsed.",
    upstream=_DATA,
    when=lambda a, ctx: a.streaming and a.max_samples is not None,
    message="`max_samples` is incompatible with `streaming`.",
    key="max_samples",
)

MASK_HISTORY_TRAIN_ON_PROMPT = lf_rule(
    "LF216",
    "mask-history-with-train-on-prompt",
    summary="`mask_history` together with `train_on_prompt`.",
    what="Reports `mask_history: true` and `train_on_prompt: true` in the same config.",
    why="One trains on prompts, the other masks earlier turns; LLaMA-Factory refuses the pair.",
    upstream=_DATA,
    when=lambda a, ctx: a.mask_history and a.train_on_prompt,
    message="`mask_history` is incompatible with `train_on_prompt`.",
    key="mask_history",
    example=Example("mask_history: true\ntrain_on_prompt: true"),
    use_instead=Example("mask_history: true"),
)

# ----------------------------------------------------------------------------- FinetuningArguments

_FT = "hparams/finetuning_args.py::FinetuningArguments.__post_init__"
PPO_EXAMPLE_VERSIONS = {"llamafactory_version": "0.9.3", "transformers_version": "4.51.3"}  # PPO runs there (LF292)

QUANT_BITS = lf_rule(
    "LF220",
    "reference-model-quantization-bits",
    summary="`ref_model_quantization_bit`/`reward_model_quantization_bit` other than 4 or 8.",
    what="Reports quantization bit widths for the reference or reward model that are not 4 or 8.",
    why="LLaMA-Factory asserts the value when the arguments are parsed.",
    upstream=_FT,
    when=lambda a, ctx: (
        a.ref_model_quantization_bit not in (None, 4, 8) or a.reward_model_quantization_bit not in (None, 4, 8)
    ),
    message="AssertionError: We only accept 4-bit or 8-bit quantization.",
    key=lambda ctx: _set(ctx.args, "ref_model_quantization_bit", "reward_model_quantization_bit"),
    at="value",
    applies_to=("train", "infer"),
)

PPO_REWARD_MODEL = lf_rule(
    "LF221",
    "ppo-without-reward-model",
    summary="PPO without a `reward_model`.",
    what="Reports `stage: ppo` without `reward_model`.",
    why="PPO optimises against a reward model; LLaMA-Factory refuses to start without one.",
    upstream=_FT,
    when=lambda a, ctx: a.stage == "ppo" and a.reward_model is None,
    message="`reward_model` is necessary for PPO training.",
    key="stage",
    fix="set reward_model to the output_dir of your reward-model (stage: rm) run",
    example=Example("stage: ppo\nreport_to: none"),
    use_instead=Example("stage: ppo\nreport_to: none\nreward_model: saves/rm", options=PPO_EXAMPLE_VERSIONS),
    applies_to=("train", "infer"),
)


def _reward_type_mismatch(a: Args) -> str | None:
    if a.stage != "ppo":
        return None
    if a.reward_model_type == "lora" and a.finetuning_type != "lora":
        return "lora"
    if a.reward_model_type == "oft" and a.finetuning_type != "oft":
        return "oft"
    return None


PPO_REWARD_TYPE = lf_rule(
    "LF222",
    "ppo-reward-model-type",
    summary="`reward_model_type: lora` for a full or freeze PPO run.",
    what="Reports a LoRA (or OFT) reward model when the PPO policy itself is not trained with LoRA (OFT).",
    why="The reward adapter is loaded onto the policy model, which only works when the policy is an adapter too.",
    upstream=_FT,
    when=lambda a, ctx: (
        _reward_type_mismatch(a) == "lora"
        or (_reward_type_mismatch(a) == "oft" and ctx.target.llamafactory in FROM_094)
    ),
    message=lambda ctx: (
        f"`reward_model_type` cannot be {_reward_type_mismatch(ctx.args)} for Freeze/Full PPO training."
    ),
    key="reward_model_type",
    applies_to=("train", "infer"),
)

DPO_LABEL_SMOOTHING = lf_rule(
    "LF223",
    "dpo-label-smoothing",
    summary="`dpo_label_smoothing` with a DPO loss other than sigmoid.",
    what="Reports `dpo_label_smoothing` above 0 in a DPO run whose `pref_loss` is not `sigmoid`.",
    why="Label smoothing (cDPO) is defined for the sigmoid loss only; LLaMA-Factory refuses other losses.",
    upstream=_FT,
    when=lambda a, ctx: a.stage == "dpo" and a.pref_loss != "sigmoid" and _num(a.dpo_label_smoothing) > 1e-6,
    message="`dpo_label_smoothing` is only valid for sigmoid loss function.",
    key="dpo_label_smoothing",
    example=Example("stage: dpo\npref_loss: ipo\ndpo_label_smoothing: 0.1"),
    use_instead=Example("stage: dpo\npref_loss: sigmoid\ndpo_label_smoothing: 0.1"),
    applies_to=("train", "infer"),
)

LLAMA_PRO_FULL = lf_rule(
    "LF224",
    "llama-pro-full",
    summary="`use_llama_pro` with full fine-tuning.",
    what="Reports `use_llama_pro: true` with `finetuning_type: full`.",
    why="LLaMA Pro trains only the expanded blocks; LLaMA-Factory allows it with freeze or LoRA training only.",
    upstream=_FT,
    when=lambda a, ctx: a.use_llama_pro and a.finetuning_type == "full",
    message="`use_llama_pro` is only valid for Freeze or LoRA training.",
    key="use_llama_pro",
    applies_to=("train", "infer"),
)

LORA_WITH_MEMORY_OPTIMIZERS = lf_rule(
    "LF225",
    "lora-with-galore-apollo-badam",
    summary="LoRA together with GaLore, APOLLO or BAdam.",
    what="Reports `finetuning_type: lora` with `use_galore`, `use_apollo` or `use_badam`.",
    why="These optimisers replace full-parameter training; they cannot be combined with LoRA adapters.",
    upstream=_FT,
    when=lambda a, ctx: a.finetuning_type == "lora" and (a.use_galore or a.use_apollo or a.use_badam),
    message="Cannot use LoRA with GaLore, APOLLO or BAdam together.",
    key=lambda ctx: _set(ctx.args, "use_galore", "use_apollo", "use_badam"),
    example=Example("finetuning_type: lora\nuse_galore: true"),
    use_instead=Example("finetuning_type: full\nuse_galore: true\npure_bf16: true\nbf16: false"),
    applies_to=("train", "infer"),
)

MEMORY_OPTIMIZERS_TOGETHER = lf_rule(
    "LF226",
    "galore-apollo-badam-together",
    summary="More than one of GaLore, APOLLO and BAdam.",
    what="Reports configs that enable two or three of `use_galore`, `use_apollo` and `use_badam`.",
    why="Each replaces the optimiser; LLaMA-Factory accepts only one.",
    upstream=_FT,
    when=lambda a, ctx: sum(bool(x) for x in (a.use_galore, a.use_apollo, a.use_badam)) > 1,
    message="Cannot use GaLore, APOLLO or BAdam together.",
    key=lambda ctx: _set(ctx.args, "use_apollo", "use_badam", "use_galore"),
    applies_to=("train", "infer"),
)

PISSA_STAGE = lf_rule(
    "LF227",
    "pissa-stage",
    summary="PiSSA initialisation in PPO, KTO or DPO with a reference model.",
    what="Reports `pissa_init: true` in PPO or KTO, or in DPO with a loss that uses a reference model "
    "(any `pref_loss` but orpo and simpo).",
    why="PiSSA changes the base weights, which breaks the frozen reference copy those stages rely on.",
    upstream=_FT,
    when=lambda a, ctx: a.pissa_init and (a.stage in ("ppo", "kto") or a.use_ref_model),
    message="Cannot use PiSSA for current training stage.",
    key="pissa_init",
    applies_to=("train", "infer"),
)


def _lora_only_option(a: Args) -> str | None:
    if a.finetuning_type == "lora":
        return None
    for name in ("loraplus_lr_ratio", "use_rslora", "use_dora", "pissa_init"):
        value = a.get(name)
        if (name == "loraplus_lr_ratio" and value is not None) or (name != "loraplus_lr_ratio" and value):
            return name
    return None


LORA_ONLY_OPTION = lf_rule(
    "LF228",
    "lora-only-option",
    summary="A LoRA-only option (`loraplus_lr_ratio`, `use_rslora`, `use_dora`, `pissa_init`) without LoRA.",
    what="Reports LoRA variants and LoRA+ set when `finetuning_type` is not `lora`.",
    why="They configure the LoRA adapter; LLaMA-Factory refuses them for full, freeze and OFT training.",
    upstream=_FT,
    when=lambda a, ctx: _lora_only_option(a) is not None,
    message=lambda ctx: f"`{_lora_only_option(ctx.args)}` is only valid for LoRA training.",
    key=lambda ctx: _lora_only_option(ctx.args),
    example=Example("finetuning_type: full\nuse_dora: true"),
    use_instead=Example("finetuning_type: lora\nuse_dora: true"),
    applies_to=("train", "infer"),
)

# ----------------------------------------------------------------------------- get_train_args

_TRAIN = "hparams/parser.py::get_train_args"


def _sft_only(a: Args) -> str | None:
    if a.stage == "sft":
        return None
    if a.predict_with_generate:
        return "`predict_with_generate` cannot be set as True except SFT."
    if a.neat_packing:
        return "`neat_packing` cannot be set as True except SFT."
    if a.train_on_prompt or a.mask_history:
        return "`train_on_prompt` or `mask_history` cannot be set as True except SFT."
    return None


SFT_ONLY = lf_rule(
    "LF230",
    "sft-only-option",
    summary="`predict_with_generate`, `neat_packing`, `train_on_prompt` or `mask_history` outside SFT.",
    what="Reports options that only the SFT stage implements when `stage` is pt, rm, ppo, dpo or kto.",
    why="LLaMA-Factory refuses them before loading anything.",
    upstream=_TRAIN,
    when=lambda a, ctx: _sft_only(a) is not None,
    message=lambda ctx: _sft_only(ctx.args),
    key=lambda ctx: _set(ctx.args, "predict_with_generate", "neat_packing", "train_on_prompt", "mask_history"),
    example=Example("stage: dpo\ntrain_on_prompt: true"),
    use_instead=Example("stage: dpo"),
)

PREDICT_NEEDS_GENERATE = lf_rule(
    "LF231",
    "predict-needs-generate",
    summary="`do_predict` in SFT without `predict_with_generate`.",
    what="Reports `do_predict: true` in an SFT config without `predict_with_generate: true`.",
    why="LLaMA-Factory saves predictions by generating them; it refuses to predict otherwise.",
    upstream=_TRAIN,
    when=lambda a, ctx: a.stage == "sft" and a.do_predict and not a.predict_with_generate,
    message="Please enable `predict_with_generate` to save model predictions.",
    key="do_predict",
)

RM_PPO_BEST_MODEL = lf_rule(
    "LF232",
    "rm-ppo-load-best-model",
    summary="`load_best_model_at_end` in the RM or PPO stage.",
    what="Reports `load_best_model_at_end: true` with `stage: rm` or `stage: ppo`.",
    why="These stages save value heads and adapters in their own way; LLaMA-Factory refuses the option.",
    upstream=_TRAIN,
    when=lambda a, ctx: a.stage in ("rm", "ppo") and a.load_best_model_at_end,
    message="RM and PPO stages do not support `load_best_model_at_end`.",
    key="load_best_model_at_end",
)

_PPO_LOGGERS = {"0.9.2": ("wandb", "tensorboard"), "0.9.3": ("wandb", "tensorboard"), "0.9.4": ("wandb", "tensorboard")}


def _ppo_problem(a: Args, ctx: Context) -> tuple[str, str] | None:
    if a.stage != "ppo":
        return None
    if not a.do_train:
        return "PPO training does not support evaluation, use the SFT stage to evaluate models.", "do_train"
    if a.shift_attn:
        return "PPO training is incompatible with S^2-Attn.", "shift_attn"
    if a.reward_model_type == "lora" and a.use_kt and ctx.target.lf >= (0, 9, 5):
        return "KTransformers does not support lora reward model.", "use_kt"
    if a.reward_model_type == "lora" and a.use_unsloth:
        return "Unsloth does not support lora reward model.", "use_unsloth"
    report_to = _effective_report_to(a, ctx)
    version = ctx.target.llamafactory
    if version in _PPO_LOGGERS:
        if report_to and report_to[0] not in _PPO_LOGGERS[version]:
            return "PPO only accepts wandb or tensorboard logger.", "report_to"
    elif report_to and any(r not in ("wandb", "tensorboard", "trackio", "none") for r in report_to):
        return "PPO only accepts wandb, tensorboard, or trackio logger.", "report_to"
    return None


def _effective_report_to(a: Args, ctx: Context) -> list[str]:
    """``report_to`` after TrainingArguments: "none" -> [], unset -> "all" on transformers 4.x."""
    if not a.is_set("report_to") or a.raw("report_to") is None:
        return ["all"] if ctx.target.tf < (5, 0) else []
    values = a.report_to
    return [] if values in (["none"],) else values


PPO_CONSTRAINTS = lf_rule(
    "LF233",
    "ppo-constraints",
    summary="A PPO config LLaMA-Factory refuses (evaluation only, S^2-Attn, LoRA reward with Unsloth, loggers).",
    what="Reports PPO configs without `do_train`, with `shift_attn`, with a LoRA reward model under Unsloth or "
    "KTransformers, or logging to something other than wandb/tensorboard (and trackio from 0.9.5). With "
    "transformers 4.x an unset `report_to` means every installed integration, which PPO refuses.",
    why="LLaMA-Factory's PPO trainer supports none of these and stops before loading anything.",
    upstream=_TRAIN,
    when=lambda a, ctx: _ppo_problem(a, ctx) is not None,
    message=lambda ctx: _ppo_problem(ctx.args, ctx)[0],
    key=lambda ctx: _ppo_problem(ctx.args, ctx)[1] if ctx.args.is_set(_ppo_problem(ctx.args, ctx)[1]) else "stage",
    fix="set report_to: none (or wandb/tensorboard)",
    example=Example("stage: ppo\nreward_model: saves/rm\nreport_to: mlflow"),
    use_instead=Example("stage: ppo\nreward_model: saves/rm\nreport_to: none", options=PPO_EXAMPLE_VERSIONS),
)

DEEPSPEED_NEEDS_TORCHRUN = Rule(
    code="LF234",
    name="deepspeed-needs-torchrun",
    severity=ERROR,
    summary="DeepSpeed on a single process without `FORCE_TORCHRUN=1`.",
    what="Reports a `deepspeed` config when the launch is not distributed: one GPU (the default assumption, "
    "or `--num-gpus 1`) and no `FORCE_TORCHRUN`. With an assumed GPU count it is a warning.",
    why="`llamafactory-cli train` only starts torchrun for several GPUs or `FORCE_TORCHRUN=1`; DeepSpeed "
    "needs it, so LLaMA-Factory stops with ``Please use `FORCE_TORCHRUN=1` to launch DeepSpeed training.``",
    check=lambda ctx: (
        [
            Finding(
                f"LLaMA-Factory {ctx.target.llamafactory} stops with ``Please use `FORCE_TORCHRUN=1` to launch DeepSpeed "
                f"training.`` when it runs on {ctx.launch.describe()}",
                key="deepspeed",
                fix="launch with FORCE_TORCHRUN=1 llamafactory-cli train ..., or check with --num-gpus N",
                severity=ERROR if ctx.launch.source != "assumed" else WARNING,
            )
        ]
        if ctx.args.deepspeed is not None and not ctx.launch.distributed
        else []
    ),
    example=Example("deepspeed: {zero_optimization: {stage: 2}}", options={"num_gpus": 1}),
    use_instead=Example("deepspeed: {zero_optimization: {stage: 2}}", options={"num_gpus": 2}),
    upstream=f"{_TRAIN} and launcher.py::launch (LLaMA-Factory 0.9.2-0.9.5).",
)

STREAMING_MAX_STEPS = lf_rule(
    "LF235",
    "streaming-needs-max-steps",
    summary="`streaming: true` without `max_steps`.",
    what="Reports streaming datasets when `max_steps` is not set.",
    why="A stream has no length, so the number of steps cannot be derived from epochs (hiyouga/LLaMA-Factory "
    "#868, #6581). Set `max_steps` to ceil(examples / total batch) x epochs.",
    upstream=_TRAIN,
    when=lambda a, ctx: a.max_steps == -1 and a.streaming,
    message="Please specify `max_steps` in streaming mode.",
    key="streaming",
)

TRAIN_NEEDS_DATASET = lf_rule(
    "LF236",
    "train-needs-dataset",
    summary="`do_train` without a `dataset`.",
    what="Reports `do_train: true` when no `dataset` is named.",
    why="There is nothing to train on; LLaMA-Factory stops.",
    upstream=_TRAIN,
    when=lambda a, ctx: a.do_train and a.dataset is None,
    message="Please specify dataset for training.",
    key="do_train",
    example=Example("model_name_or_path: m\nstage: sft\ndo_train: true\noutput_dir: out", complete=True),
    use_instead=Example(
        "model_name_or_path: m\nstage: sft\ndo_train: true\noutput_dir: out\ndataset: identity\nbf16: true",
        complete=True,
    ),
)


def _eval_data_problem(a: Args, ctx: Context) -> tuple[str, str] | None:
    needs = a.do_eval or a.do_predict
    if ctx.target.llamafactory in FROM_094:
        if (needs or a.predict_with_generate) and a.eval_dataset is None and _num(a.val_size) < 1e-6:
            key = (
                "eval_strategy"
                if a.eval_strategy != "no" and not a.is_set("do_eval")
                else _set(a, "do_eval", "do_predict", "predict_with_generate") or "eval_strategy"
            )
            return "Please make sure eval_dataset be provided or val_size >1e-6", key
        return None
    if needs and a.eval_dataset is None and _num(a.val_size) < 1e-6:
        key = (
            "eval_strategy"
            if a.eval_strategy != "no" and not a.is_set("do_eval")
            else _set(a, "do_eval", "do_predict") or "eval_strategy"
        )
        return "Please specify dataset for evaluation.", key
    if a.predict_with_generate and a.eval_dataset is None:
        return "Cannot use `predict_with_generate` if `eval_dataset` is None.", "predict_with_generate"
    return None


EVAL_NEEDS_DATA = lf_rule(
    "LF237",
    "eval-needs-data",
    summary="Evaluation or prediction without `eval_dataset` or `val_size`.",
    what="Reports `do_eval`, `do_predict`, `predict_with_generate` or any `eval_strategy` other than `no` "
    "(which turns `do_eval` on) when there is neither an `eval_dataset` nor a `val_size`.",
    why="There is no evaluation data; LLaMA-Factory stops (hiyouga/LLaMA-Factory #584).",
    upstream=_TRAIN,
    when=lambda a, ctx: _eval_data_problem(a, ctx) is not None,
    message=lambda ctx: _eval_data_problem(ctx.args, ctx)[0],
    key=lambda ctx: _eval_data_problem(ctx.args, ctx)[1],
    fix="add val_size: 0.1, or eval_dataset: <name>",
    example=Example("eval_strategy: steps\neval_steps: 100"),
    use_instead=Example("eval_strategy: steps\neval_steps: 100\nval_size: 0.1"),
)


def _generate_problem(a: Args, ctx: Context) -> str | None:
    if not a.predict_with_generate:
        return None
    if ctx.zero3:
        return "`predict_with_generate` is incompatible with DeepSpeed ZeRO-3."
    if a.compute_accuracy:
        return "Cannot use `predict_with_generate` and `compute_accuracy` together."
    return None


PREDICT_WITH_GENERATE = lf_rule(
    "LF238",
    "predict-with-generate-conflict",
    summary="`predict_with_generate` with DeepSpeed ZeRO-3 or `compute_accuracy`.",
    what="Reports `predict_with_generate: true` together with a ZeRO-3 DeepSpeed config or `compute_accuracy`.",
    why="Generation cannot run on ZeRO-3-partitioned weights, and accuracy is computed from logits that "
    "generation does not produce; LLaMA-Factory refuses both.",
    upstream=_TRAIN,
    when=lambda a, ctx: _generate_problem(a, ctx) is not None,
    message=lambda ctx: _generate_problem(ctx.args, ctx),
    key="predict_with_generate",
)

DEVICE_MAP_TRAINING = lf_rule(
    "LF239",
    "quantization-device-map-training",
    summary="`quantization_device_map: auto` while training.",
    what="Reports `quantization_device_map: auto` with `do_train: true`.",
    why="A model split across devices by `device_map` cannot be trained by the Trainer; LLaMA-Factory refuses it.",
    upstream=_TRAIN,
    when=lambda a, ctx: a.do_train and a.quantization_device_map == "auto",
    message="Cannot use device map for quantized models in training.",
    key="quantization_device_map",
)


def _zero3_problem(a: Args, ctx: Context) -> tuple[str, str] | None:
    if not ctx.zero3:
        return None
    if a.pissa_init:
        return "Please use scripts/pissa_init.py to initialize PiSSA in DeepSpeed ZeRO-3.", "pissa_init"
    if a.pure_bf16:
        return "`pure_bf16` is incompatible with DeepSpeed ZeRO-3.", "pure_bf16"
    if a.use_unsloth:
        return "Unsloth is incompatible with DeepSpeed ZeRO-3.", "use_unsloth"
    if a.use_kt and ctx.target.lf >= (0, 9, 5):
        return "KTransformers is incompatible with DeepSpeed ZeRO-3.", "use_kt"
    return None


ZERO3_CONFLICT = lf_rule(
    "LF240",
    "zero3-conflict",
    summary="An option LLaMA-Factory cannot combine with DeepSpeed ZeRO-3 (PiSSA, `pure_bf16`, Unsloth, KTransformers).",
    what="Reads the `deepspeed` config (file or inline) and, when it is ZeRO stage 3, reports `pissa_init`, "
    "`pure_bf16`, `use_unsloth` and `use_kt`.",
    why="These need unpartitioned weights at load time; LLaMA-Factory refuses them under ZeRO-3.",
    upstream=_TRAIN,
    when=lambda a, ctx: _zero3_problem(a, ctx) is not None,
    message=lambda ctx: _zero3_problem(ctx.args, ctx)[0],
    key=lambda ctx: _zero3_problem(ctx.args, ctx)[1],
    example=Example(
        "deepspeed: {zero_optimization: {stage: 3}}\npure_bf16: true\nbf16: false", options={"num_gpus": 2}
    ),
    use_instead=Example("deepspeed: {zero_optimization: {stage: 3}}", options={"num_gpus": 2}),
)


def _distributed_problem(a: Args, ctx: Context) -> tuple[str, str] | None:
    if not ctx.launch.distributed:
        return None
    if a.use_galore and a.galore_layerwise:
        return "Distributed training does not support layer-wise GaLore.", "galore_layerwise"
    if a.use_apollo and a.apollo_layerwise:
        return "Distributed training does not support layer-wise APOLLO.", "apollo_layerwise"
    if a.use_badam:
        if a.badam_mode == "ratio":
            return "Radio-based BAdam does not yet support distributed training, use layer-wise BAdam.", "badam_mode"
        if not ctx.zero3:
            return "Layer-wise BAdam only supports DeepSpeed ZeRO-3 training.", "use_badam"
    return None


DISTRIBUTED_OPTIMIZER = lf_rule(
    "LF241",
    "distributed-layerwise-optimizer",
    summary="Layer-wise GaLore/APOLLO or BAdam in a multi-process run LLaMA-Factory refuses.",
    what="For distributed launches (`--num-gpus` > 1, `FORCE_TORCHRUN`), reports layer-wise GaLore or APOLLO, "
    "ratio-mode BAdam, and layer-wise BAdam without DeepSpeed ZeRO-3.",
    why="Their per-layer optimiser hooks do not work with data parallelism; LLaMA-Factory stops at start-up.",
    upstream=_TRAIN,
    when=lambda a, ctx: _distributed_problem(a, ctx) is not None,
    message=lambda ctx: _distributed_problem(ctx.args, ctx)[0],
    key=lambda ctx: _distributed_problem(ctx.args, ctx)[1],
)

DEEPSPEED_MEMORY_OPTIMIZER = lf_rule(
    "LF242",
    "deepspeed-galore-apollo",
    summary="GaLore or APOLLO with DeepSpeed.",
    what="Reports `use_galore` or `use_apollo` together with a `deepspeed` config.",
    why="Both replace the optimiser in a way DeepSpeed does not support; LLaMA-Factory refuses the pair.",
    upstream=_TRAIN,
    when=lambda a, ctx: a.deepspeed is not None and (a.use_galore or a.use_apollo),
    message="GaLore and APOLLO are incompatible with DeepSpeed yet.",
    key=lambda ctx: _set(ctx.args, "use_galore", "use_apollo"),
)

FP8_QUANTIZATION = lf_rule(
    "LF243",
    "fp8-with-quantization",
    summary="FP8 training together with `quantization_bit`.",
    what="Reports `fp8: true` with a quantized model (`quantization_bit`).",
    why="FP8 mixed precision needs full-precision weights to cast; LLaMA-Factory refuses quantized ones.",
    upstream=_TRAIN + " / _verify_model_args",
    versions=FROM_094,
    when=lambda a, ctx: a.fp8 and a.quantization_bit is not None,
    message="FP8 training is not compatible with quantization. Please disable one of them.",
    key="fp8",
)


def _backend_message(ctx: Context) -> str:
    if ctx.target.llamafactory == "0.9.2":
        return "vLLM backend is only available for API, CLI and Web."
    return "vLLM/SGLang backend is only available for API, CLI and Web."


INFER_BACKEND = lf_rule(
    "LF244",
    "infer-backend-in-training",
    summary="`infer_backend` other than `huggingface` in a train config.",
    what="Reports `infer_backend: vllm` (or `sglang`) in a config for `llamafactory-cli train`.",
    why="vLLM and SGLang only serve inference; training refuses them.",
    upstream=_TRAIN,
    when=lambda a, ctx: (
        (a.infer_backend == "vllm")
        if ctx.target.llamafactory == "0.9.2"
        else a.infer_backend not in (None, "huggingface")
    ),
    message=_backend_message,
    key="infer_backend",
    at="value",
)

NEAT_PACKING_TRANSFORMERS = lf_rule(
    "LF245",
    "neat-packing-transformers",
    summary="`neat_packing` with transformers >= 4.53 (LLaMA-Factory 0.9.4).",
    what="Reports `neat_packing: true` when LLaMA-Factory 0.9.4 runs on transformers 4.53 or newer.",
    why="0.9.4's neat packing relies on attention internals that changed in transformers 4.53; it refuses the "
    "combination (0.9.5 reimplemented it).",
    upstream=_TRAIN,
    versions=("0.9.4",),
    when=lambda a, ctx: a.neat_packing and ctx.target.tf >= (4, 53, 0),
    message="Neat packing is incompatible with transformers>=4.53.0.",
    key="neat_packing",
)

TRACKIO_PROJECT = lf_rule(
    "LF246",
    "trackio-needs-project",
    summary="`report_to: trackio` without `project`.",
    what="Reports Trackio logging without the `project` it requires.",
    why="LLaMA-Factory 0.9.5 validates the Trackio arguments at start-up.",
    upstream="hparams/parser.py::_verify_trackio_args",
    versions=releases("0.9.5"),
    when=lambda a, ctx: "trackio" in a.report_to and (ctx.target.tf < (4, 57) or not a.project),
    message=lambda ctx: (
        "AttributeError: 'TrainingArguments' object has no attribute 'project' (the `project` argument "
        "arrived in transformers 4.57)"
        if ctx.target.tf < (4, 57)
        else "`--project` must be specified when using Trackio."
    ),
    key="report_to",
)

# ----------------------------------------------------------------------------- _verify_model_args

_VERIFY = "hparams/parser.py::_verify_model_args"


def _adapters(a: Args) -> list[str]:
    value = a.adapter_name_or_path
    return [p.strip() for p in value.split(",")] if isinstance(value, str) else []


ADAPTER_NEEDS_LORA = lf_rule(
    "LF260",
    "adapter-needs-lora",
    summary="`adapter_name_or_path` without LoRA.",
    what="Reports an adapter to load when `finetuning_type` is not `lora`.",
    why="Adapters are LoRA weights; LLaMA-Factory refuses them for full, freeze and OFT training.",
    upstream=_VERIFY,
    when=lambda a, ctx: a.adapter_name_or_path is not None and a.finetuning_type != "lora",
    message="Adapter is only valid for the LoRA method.",
    key="adapter_name_or_path",
    applies_to=("train", "infer"),
)


def _quantization_problem(a: Args, ctx: Context) -> tuple[str, str] | None:
    if a.quantization_bit is None:
        return None
    allowed = ("lora", "oft") if ctx.target.llamafactory in FROM_094 else ("lora",)
    if a.finetuning_type not in allowed:
        method = "LoRA or OFT method." if len(allowed) == 2 else "LoRA method."
        return f"Quantization is only compatible with the {method}", "quantization_bit"
    if a.pissa_init:
        return "Please use scripts/pissa_init.py to initialize PiSSA for a quantized model.", "pissa_init"
    if a.resize_vocab:
        return "Cannot resize embedding layers of a quantized model.", "resize_vocab"
    if a.adapter_name_or_path is not None and a.create_new_adapter:
        return "Cannot create new adapter upon a quantized model.", "create_new_adapter"
    if a.adapter_name_or_path is not None and len(_adapters(a)) != 1:
        return "Quantized model only accepts a single adapter. Merge them first.", "adapter_name_or_path"
    return None


_QUANTIZE = "model/model_utils/quantization.py::configure_quantization (LLaMA-Factory 0.9.2-0.9.5)"
# on-the-fly quantization: the bit widths each method accepts, and whether it can load sharded (ZeRO-3, FSDP)
_BITS = {"bnb": ((4, 8), "Bitsandbytes only accepts 4-bit or 8-bit quantization."),
         "hqq": ((1, 2, 3, 4, 5, 6, 8), "HQQ only accepts 1/2/3/4/5/6/8-bit quantization."),
         "eetq": ((8,), "EETQ only accepts 8-bit quantization.")}  # fmt: skip


def _method(a: Args) -> str:
    method = str(a.quantization_method or "bnb")
    return "bnb" if method == "bitsandbytes" else method  # 0.9.2 names bitsandbytes in full


def _bits_problem(a: Args, ctx: Context) -> str | None:
    if not isinstance(a.quantization_bit, int) or a.finetuning_type not in ("lora", "oft") or _ptq(ctx) is not None:
        return None  # the other LF261 cases stop earlier; a PTQ checkpoint ignores quantization_bit
    accepted, message = _BITS.get(_method(a), ((a.quantization_bit,), ""))
    return None if a.quantization_bit in accepted else message


QUANT_METHOD_BITS = lf_rule(
    "LF293",
    "quantization-bits-for-method",
    summary="A `quantization_bit` the `quantization_method` does not offer (bitsandbytes: 4 or 8).",
    what="Reports `quantization_bit` values outside what the quantization method accepts: bitsandbytes (the "
    "default) 4 or 8, HQQ 1-6 or 8, EETQ 8.",
    why="LLaMA-Factory checks the width only when it quantizes the model, after the data has been prepared.",
    upstream=_QUANTIZE,
    when=lambda a, ctx: _bits_problem(a, ctx) is not None,
    message=lambda ctx: _bits_problem(ctx.args, ctx),
    key="quantization_bit",
    at="value",
    fix="quantization_bit: 4 (or quantization_method: hqq for other widths)",
    example=Example("quantization_bit: 3"),
    use_instead=Example("quantization_bit: 4"),
    applies_to=("train", "infer"),
)


def _ptq(ctx: Context) -> str | None:
    """The quant_method of a local checkpoint that is already quantized (its config.json's quantization_config)."""
    quantization = ctx.model_config[1].get("quantization_config") if ctx.model_config else None
    return str(quantization.get("quant_method", "")) if isinstance(quantization, dict) and quantization else None


def _sharded_problem(a: Args, ctx: Context) -> str | None:
    sharded = ctx.zero3 or fsdp_loads_on_cpu(a, ctx.launch, ctx.target.tf)  # is_deepspeed_zero3_enabled() or is_fsdp_enabled()
    auto_map = a.quantization_device_map == "auto" and not a.do_train  # training with it stops earlier (LF239)
    if not (sharded or auto_map):
        return None
    ptq = _ptq(ctx)
    if ptq is not None:
        exempt = ("mxfp4", "fp8") if ctx.target.lf >= (0, 9, 4) else ()
        if not sharded or ptq in exempt:
            return None
        return "DeepSpeed ZeRO-3 or FSDP is incompatible with PTQ-quantized models."
    if not isinstance(a.quantization_bit, int) or a.finetuning_type not in ("lora", "oft") or _bits_problem(a, ctx):
        return None
    method = _method(a)
    if method == "bnb" and a.quantization_bit != 4:
        return "Only 4-bit quantized model can use fsdp+qlora or auto device map."
    if method in ("hqq", "eetq") and sharded:
        return f"{method.upper()} quantization is incompatible with DeepSpeed ZeRO-3 or FSDP."
    return None


QUANT_SHARDED = lf_rule(
    "LF294",
    "quantization-under-zero3",
    summary="A quantized model LLaMA-Factory cannot load under DeepSpeed ZeRO-3 or FSDP (8-bit bitsandbytes, HQQ, "
    "EETQ, or an already quantized GPTQ, AWQ, ... checkpoint), or with `quantization_device_map: auto` (8-bit).",
    what="Under DeepSpeed ZeRO-3 (the `deepspeed` config, or the one `--accelerate-config` names), or FSDP that "
    "loads the model sharded (an `--accelerate-config` FSDP file, where `fsdp_cpu_ram_efficient_loading` defaults "
    "to true; or the YAML's `fsdp` with `fsdp_config: {cpu_ram_efficient_loading: true}`, which needs accelerate "
    "to launch from transformers 5), reports bitsandbytes quantization other than 4-bit, HQQ and EETQ, and a local "
    "checkpoint whose config.json has a `quantization_config` (MXFP4 and FP8 are dequantized from 0.9.4 and pass). "
    "In a run that does not train (chat, export, prediction), `quantization_device_map: auto` with 8-bit "
    "bitsandbytes too.",
    why="Only 4-bit bitsandbytes weights can be sharded while loading, or spread over the GPUs by an automatic "
    "device map; LLaMA-Factory stops when it quantizes the model (transformers' `is_deepspeed_zero3_enabled()` or "
    "`is_fsdp_enabled()`, or the device map).",
    upstream=_QUANTIZE,
    when=lambda a, ctx: _sharded_problem(a, ctx) is not None,
    message=lambda ctx: _sharded_problem(ctx.args, ctx),
    key=lambda ctx: "quantization_bit" if ctx.args.is_set("quantization_bit") else "deepspeed",
    fix="quantization_bit: 4 with bitsandbytes, or ZeRO-2",
    example=Example("quantization_bit: 8\ndeepspeed: {zero_optimization: {stage: 3}}", options={"num_gpus": 2}),
    use_instead=Example("quantization_bit: 4\ndeepspeed: {zero_optimization: {stage: 3}}", options={"num_gpus": 2}),
    applies_to=("train", "infer"),
)


QUANTIZATION_CONFLICT = lf_rule(
    "LF261",
    "quantization-conflict",
    summary="Quantization with full/freeze training, PiSSA, `resize_vocab`, a new adapter or several adapters.",
    what="Reports `quantization_bit` with `finetuning_type: full` or `freeze` (OFT is allowed from 0.9.4), "
    "and with `pissa_init`, `resize_vocab`, `create_new_adapter` on an adapter, or more than one adapter.",
    why="Quantized weights cannot be trained directly or resized; QLoRA trains a single adapter on top of them.",
    upstream=_VERIFY,
    when=lambda a, ctx: _quantization_problem(a, ctx) is not None,
    message=lambda ctx: _quantization_problem(ctx.args, ctx)[0],
    key=lambda ctx: _quantization_problem(ctx.args, ctx)[1],
    fix="use finetuning_type: lora for QLoRA, or drop quantization_bit",
    example=Example("finetuning_type: full\nquantization_bit: 4"),
    use_instead=Example("finetuning_type: lora\nquantization_bit: 4\nupcast_layernorm: true"),
    applies_to=("train", "infer"),
)

_ADAPTER = "model/adapter.py::_setup_lora_tuning"


def _creates_adapter(a: Args, ctx: Context) -> bool:
    """A LoRA or OFT training run that creates new adapter weights after the model has loaded (``_setup_lora_tuning``:
    ``is_trainable and adapter_to_resume is None``): no adapter to load, or ``create_new_adapter`` over adapters
    that can be merged (not on a quantized model, under ZeRO-3, KTransformers or Unsloth)."""
    if not a.do_train or str(a.finetuning_type or "lora") not in ("lora", "oft"):
        return False
    if a.adapter_name_or_path is None:
        return True
    quantized = isinstance(a.quantization_bit, int) or _ptq(ctx) is not None
    return bool(a.create_new_adapter) and not (quantized or ctx.zero3 or a.get("use_kt") or a.use_unsloth)


def _dora_quantization(a: Args, ctx: Context) -> str | None:
    """The quantization a DoRA adapter would be created on that is not bitsandbytes (``model.quantization_method``):
    a pre-quantized checkpoint's (MXFP4 and FP8 are dequantized while loading from 0.9.4), else HQQ or EETQ."""
    if a.use_dora is not True or str(a.finetuning_type or "lora") != "lora" or not _creates_adapter(a, ctx):
        return None
    ptq = _ptq(ctx)
    if ptq is not None:
        dequantized = ("mxfp4", "fp8") if ctx.target.lf >= (0, 9, 4) else ()
        return None if ptq in ("bitsandbytes", *dequantized) else ptq
    return _method(a) if isinstance(a.quantization_bit, int) and _method(a) in ("hqq", "eetq") else None


KT_OFT = lf_rule(
    "LF296",
    "ktransformers-oft",
    summary="`use_kt` with `finetuning_type: oft`.",
    what="Reports KTransformers (`use_kt: true`) in a run that creates an OFT adapter.",
    why="KTransformers builds its adapters as LoRA only; LLaMA-Factory checks it when it adds the adapter, after "
    "the model has loaded.",
    upstream=f"{_ADAPTER} (LLaMA-Factory 0.9.5, main).",
    versions=releases("0.9.5"),
    when=lambda a, ctx: a.get("use_kt") is True and a.finetuning_type == "oft" and _creates_adapter(a, ctx),
    message="KTransformers only supports LoRA finetuning.",
    key="finetuning_type",
    at="value",
    fix="finetuning_type: lora",
    example=Example("use_kt: true\nfinetuning_type: oft"),
    use_instead=Example("use_kt: true\nfinetuning_type: lora"),
)

UNSLOTH_OFT = lf_rule(
    "LF297",
    "unsloth-oft",
    summary="`use_unsloth` with `finetuning_type: oft`.",
    what="Reports Unsloth (`use_unsloth: true`) in a run that creates an OFT adapter.",
    why="Unsloth's PEFT model is LoRA only; LLaMA-Factory checks it when it adds the adapter, after the model has "
    "loaded.",
    upstream=f"{_ADAPTER} (LLaMA-Factory 0.9.4 and later).",
    versions=releases("0.9.4"),
    when=lambda a, ctx: a.use_unsloth is True and a.finetuning_type == "oft" and _creates_adapter(a, ctx),
    message="Unsloth is currently not supported for OFT.",
    key="finetuning_type",
    at="value",
    fix="finetuning_type: lora, or drop use_unsloth",
    example=Example("use_unsloth: true\nfinetuning_type: oft"),
    use_instead=Example("use_unsloth: true\nfinetuning_type: lora"),
)

DORA_QUANTIZED = lf_rule(
    "LF298",
    "dora-on-quantized-model",
    summary="`use_dora` on a model quantized other than with bitsandbytes (a GPTQ/AWQ checkpoint, HQQ, EETQ).",
    what="Reports `use_dora: true` when a new LoRA adapter is created on a local checkpoint whose config.json has a "
    "`quantization_config` other than bitsandbytes (MXFP4 and FP8 are dequantized from 0.9.4 and pass), or on "
    "`quantization_bit` with `quantization_method: hqq` or `eetq`.",
    why="PEFT's DoRA needs the base weights it decomposes; LLaMA-Factory refuses every quantization but "
    "bitsandbytes when it adds the adapter, after the model has loaded.",
    upstream=f"{_ADAPTER} (LLaMA-Factory 0.9.2-0.9.5, main).",
    when=lambda a, ctx: _dora_quantization(a, ctx) is not None,
    message="DoRA is not compatible with PTQ-quantized models.",
    key="use_dora",
    fix="drop use_dora, or quantize with bitsandbytes (quantization_bit: 4) from the unquantized model",
    example=Example("use_dora: true\nquantization_bit: 8\nquantization_method: hqq"),
    use_instead=Example("use_dora: true\nquantization_bit: 4"),
)

# ----------------------------------------------------------------------------- warnings

MIXED_PRECISION = lf_rule(
    "LF280",
    "no-mixed-precision",
    summary="Training in full fp32 (neither `bf16` nor `fp16`).",
    what="Reports training configs that set none of `bf16: true`, `fp16: true` and `pure_bf16: true`.",
    why="fp32 training needs about twice the activation memory and is several times slower on GPUs with "
    "tensor cores; LLaMA-Factory prints `We recommend enable mixed precision training.`",
    upstream=_TRAIN,
    severity=WARNING,
    # LF also prints this with pure_bf16 (bf16 weights without autocast); that is not fp32 training
    when=lambda a, ctx: a.do_train and not a.fp16 and not a.bf16 and not a.pure_bf16,
    message="We recommend enable mixed precision training.",
    key=None,
    fix="add bf16: true (Ampere or newer GPUs) or fp16: true",
    example=Example("bf16: false"),
    use_instead=Example("bf16: true"),
)

UPCAST_LAYERNORM = lf_rule(
    "LF281",
    "quantized-without-upcast-layernorm",
    summary="Quantized training without `upcast_layernorm`.",
    what="Reports QLoRA training (`quantization_bit` set) without `upcast_layernorm: true`.",
    why="LLaMA-Factory recommends computing layer norms in fp32 for quantized models for stability.",
    upstream=_TRAIN,
    severity=INFO,
    when=lambda a, ctx: a.do_train and a.quantization_bit is not None and not a.upcast_layernorm,
    message="We recommend enable `upcast_layernorm` in quantized training.",
    key="quantization_bit",
    fix="add upcast_layernorm: true",
)

RESIZE_VOCAB_TARGET = lf_rule(
    "LF282",
    "resize-vocab-without-additional-target",
    summary="LoRA with `resize_vocab` but the embeddings not trainable.",
    what="Reports LoRA training with `resize_vocab: true` and no `additional_target`.",
    why="New token embeddings stay at their random initialisation unless the embedding layers are trained too.",
    upstream=_TRAIN,
    severity=WARNING,
    when=lambda a, ctx: (
        a.do_train
        and a.finetuning_type == "lora"
        and a.quantization_bit is None
        and a.resize_vocab
        and a.additional_target is None
    ),
    message="Remember to add embedding layers to `additional_target` to make the added tokens trainable.",
    key="resize_vocab",
    fix="add additional_target: embed_tokens,lm_head",
)

MEMORY_OPTIMIZER_PRECISION = lf_rule(
    "LF283",
    "galore-apollo-mixed-precision",
    summary="GaLore or APOLLO without `pure_bf16`.",
    what="Reports GaLore/APOLLO training without `pure_bf16: true`.",
    why="With mixed precision the fp32 master weights and optimiser states come back, which defeats the memory "
    "saving these optimisers exist for.",
    upstream=_TRAIN,
    severity=WARNING,
    when=lambda a, ctx: a.do_train and (a.use_galore or a.use_apollo) and not a.pure_bf16,
    message="Using GaLore or APOLLO with mixed precision training may significantly increases GPU memory usage.",
    key=lambda ctx: _set(ctx.args, "use_galore", "use_apollo"),
    fix="add pure_bf16: true (and drop bf16)",
)

FP8_ALL_GATHER = lf_rule(
    "LF284",
    "fp8-all-gather-without-fp8",
    summary="`fp8_enable_fsdp_float8_all_gather` without `fp8`.",
    what="Reports the FSDP float8 all-gather option when `fp8` is off.",
    why="LLaMA-Factory turns `fp8` on by itself in that case, which may not be what you meant.",
    upstream=_TRAIN,
    versions=FROM_094,
    severity=WARNING,
    when=lambda a, ctx: a.fp8_enable_fsdp_float8_all_gather and not a.fp8,
    message="fp8_enable_fsdp_float8_all_gather requires fp8=True. Setting fp8=True.",
    key="fp8_enable_fsdp_float8_all_gather",
)

NEAT_PACKING_WITHOUT_PACKING = lf_rule(
    "LF285",
    "neat-packing-without-packing",
    summary="`neat_packing` without `packing` (LLaMA-Factory 0.9.2).",
    what="Reports `neat_packing: true` without `packing: true` on 0.9.2, which turns packing on itself.",
    why="Neat packing is a variant of packing; 0.9.2 enables packing silently, which changes the example count.",
    upstream=_TRAIN,
    versions=("0.9.2",),
    severity=WARNING,
    when=lambda a, ctx: a.neat_packing and not a.get("packing"),
    message="`neat_packing` requires `packing` is True. Change `packing` to True.",
    key="neat_packing",
)

RESUME_DROPPED = lf_rule(
    "LF286",
    "resume-not-supported",
    summary="`resume_from_checkpoint` in a full/freeze RM or PPO run.",
    what="Reports `resume_from_checkpoint` with `stage: rm` or `ppo` and `finetuning_type: full` or `freeze`.",
    why="LLaMA-Factory cannot resume these runs: it drops the setting and trains from scratch.",
    upstream=_TRAIN,
    severity=WARNING,
    when=lambda a, ctx: (
        a.stage in ("rm", "ppo") and a.finetuning_type in ("full", "freeze") and a.resume_from_checkpoint is not None
    ),
    message="Cannot resume from checkpoint in current stage.",
    key="resume_from_checkpoint",
)


def _output_dir_state(a: Args, ctx: Context) -> str | None:
    """get_train_args' auto-resume block: "refuse", "resume" or None."""
    if a.resume_from_checkpoint is not None or not a.do_train or a.get("overwrite_output_dir"):
        return None
    if a.stage in ("rm", "ppo") and a.finetuning_type in ("full", "freeze"):
        return None
    out = ctx.output_dir
    if out is None or not out.exists:
        return None
    if out.last_checkpoint is None:
        return "refuse" if out.has_weights else None
    return "resume"


OUTPUT_DIR_NOT_EMPTY = lf_rule(
    "LF287",
    "output-dir-not-empty",
    summary="`output_dir` already holds a trained model and `overwrite_output_dir` is not set.",
    what="Looks into `output_dir` (relative to the launch directory): model or adapter weights without any "
    "`checkpoint-N` folder make LLaMA-Factory refuse to start.",
    why="LLaMA-Factory protects finished runs from being overwritten; the check comes after every argument check, "
    "so it is often the last surprise before training.",
    upstream=_TRAIN,
    when=lambda a, ctx: _output_dir_state(a, ctx) == "refuse",
    message="Output directory already exists and is not empty. Please set `overwrite_output_dir`.",
    key="output_dir",
    at="value",
    fix="choose a new output_dir, or add overwrite_output_dir: true",
)

AUTO_RESUME = lf_rule(
    "LF288",
    "auto-resume",
    summary="`output_dir` has checkpoints, so LLaMA-Factory resumes from the last one.",
    what="Reports that `output_dir` already contains `checkpoint-N` folders and neither `overwrite_output_dir` nor "
    "`resume_from_checkpoint` is set.",
    why="LLaMA-Factory then resumes from the newest checkpoint by itself: the old run's step counter, schedule "
    "and save/eval intervals win, and a finished run trains nothing (hiyouga/LLaMA-Factory #9325, #7085, #5195).",
    upstream=_TRAIN,
    severity=INFO,
    when=lambda a, ctx: _output_dir_state(a, ctx) == "resume",
    message=lambda ctx: (
        f"LLaMA-Factory will resume training from {os.path.join(ctx.output_dir.path, ctx.output_dir.last_checkpoint)}"
    ),
    key="output_dir",
    at="value",
    fix="set overwrite_output_dir: true (or change output_dir) to start over",
)

YI_SLOW_TOKENIZER = lf_rule(
    "LF289",
    "yi-slow-tokenizer",
    summary="`template: yi` switches to the slow tokenizer (LLaMA-Factory <= 0.9.4).",
    what="Reports `template: yi` with the fast tokenizer (the default) on 0.9.2-0.9.4.",
    why="LLaMA-Factory turns `use_fast_tokenizer` off for Yi models by itself and says so: tokenization is slower "
    "than you may expect.",
    upstream=_VERIFY,
    versions=UNTIL_094,
    severity=INFO,
    when=lambda a, ctx: a.template == "yi" and a.use_fast_tokenizer,
    message="We should use slow tokenizer for the Yi models. Change `use_fast_tokenizer` to False.",
    key="template",
    applies_to=("train", "infer"),
)

EVAL_ONLY_NOTES = lf_rule(
    "LF290",
    "evaluation-only-run",
    summary="A run that does not train (`do_train` off) in a way LLaMA-Factory warns about.",
    what="Reports evaluation-only runs on a 4/8-bit model, and DPO evaluation without a `ref_model`.",
    why="LLaMA-Factory warns that quantized evaluation scores lower, and that DPO rewards need a reference model.",
    upstream=_TRAIN,
    severity=INFO,
    when=lambda a, ctx: (
        not a.do_train and (a.quantization_bit is not None or (a.stage == "dpo" and a.ref_model is None))
    ),
    message=lambda ctx: (
        "Evaluating model in 4/8-bit mode may cause lower scores."
        if ctx.args.quantization_bit is not None
        else "Specify `ref_model` for computing rewards at evaluation."
    ),
    key=lambda ctx: "quantization_bit" if ctx.args.quantization_bit is not None else "stage",
)

_PPO = "train/ppo/trainer.py::CustomPPOTrainer.__init__"

PPO_EVAL_DATASET = lf_rule(
    "LF291",
    "ppo-with-eval-dataset",
    summary="PPO with an evaluation set (`val_size` or `eval_dataset`).",
    what="Reports `stage: ppo` together with `val_size` above 0 or an `eval_dataset`.",
    why="LLaMA-Factory's PPO trainer has no evaluation loop and refuses an evaluation set when it is built, "
    "after the models have loaded.",
    upstream=_PPO,
    when=lambda a, ctx: a.stage == "ppo" and a.do_train and (_num(a.val_size) > 1e-6 or bool(a.eval_dataset)),
    message="PPOTrainer does not support eval dataset yet.",
    key=lambda ctx: _set(ctx.args, "eval_dataset", "val_size"),
    fix="drop val_size and eval_dataset from the PPO config",
    example=Example("stage: ppo\nreward_model: saves/rm\nval_size: 0.1\nreport_to: none"),
    use_instead=Example("stage: ppo\nreward_model: saves/rm\nreport_to: none", options=PPO_EXAMPLE_VERSIONS),
)

# LLaMA-Factory 0.9.4+ requires trl>=0.18,<=0.24 (its wheel's Requires-Dist) while its PPO trainer requires
# trl>=0.8.6,<=0.9.6 (a check that DISABLE_VERSION_CHECK does not skip).
PPO_TRL_RANGE = ((0, 8, 6), (0, 9, 6))


def _ppo_trl_refused(a: Args, ctx: Context) -> bool:
    if a.stage != "ppo" or not a.do_train:
        return False
    from ..versions import installed_version, parse_version

    trl = installed_version("trl")
    return trl is None or not PPO_TRL_RANGE[0] <= parse_version(trl) <= PPO_TRL_RANGE[1]


PPO_TRL = lf_rule(
    "LF292",
    "ppo-needs-old-trl",
    summary="PPO on LLaMA-Factory 0.9.4+ needs trl 0.8.6-0.9.6, which LLaMA-Factory itself does not allow.",
    what="Reports `stage: ppo` on LLaMA-Factory 0.9.4 and later, unless this environment has trl 0.8.6-0.9.6.",
    why="LLaMA-Factory 0.9.4 and 0.9.5 install trl 0.18-0.24, but their PPO trainer was written for trl's old PPO "
    "API and stops unless trl 0.8.6-0.9.6 is installed: every PPO run on a regular install fails after the models "
    "have loaded.",
    upstream=_PPO,
    versions=FROM_094,
    when=_ppo_trl_refused,
    message="trl>=0.8.6,<=0.9.6 is required for a normal functioning of this module. Incompatible TRL version "
    "detected. LLaMA-Factory ppo requires TRL version >=0.8.6,<=0.9.6.",
    key="stage",
    fix="install trl 0.9.6 in the training environment (against LLaMA-Factory's own pins: set DISABLE_VERSION_CHECK=1), "
    "or run PPO with LLaMA-Factory 0.9.3",
    example=Example("stage: ppo\nreward_model: saves/rm\nreport_to: none", options={"llamafactory_version": "0.9.5"}),
    use_instead=Example("stage: ppo\nreward_model: saves/rm\nreport_to: none", options=PPO_EXAMPLE_VERSIONS),
)

def _refused_transformers(a: Args, ctx: Context) -> bool:
    from ..versions import TRANSFORMERS_CHECK, nearest_llamafactory, satisfies

    required = TRANSFORMERS_CHECK[nearest_llamafactory(ctx.target.llamafactory)]
    return not ctx.launch_env.enabled("DISABLE_VERSION_CHECK") and not satisfies(_release(ctx), required)


def _release(ctx: Context) -> str:
    """The transformers release the run has (a newer one than lf-lint models is checked as itself)."""
    return ctx.options.get("transformers_release") or ctx.target.transformers


def _version_message(ctx: Context) -> str:
    from ..versions import TRANSFORMERS_CHECK, nearest_llamafactory

    requirement = "transformers" + TRANSFORMERS_CHECK[nearest_llamafactory(ctx.target.llamafactory)]
    return (f"ImportError: {requirement} is required for a normal functioning of this module, but found "
            f"transformers=={_release(ctx)}.")  # fmt: skip


VERSION_CHECK = lf_rule(
    "LF295",
    "transformers-version-refused",
    summary="A transformers release the LLaMA-Factory release refuses to start with.",
    what="Compares the targeted transformers release with the range LLaMA-Factory checks when it starts "
    "(`check_dependencies`), unless `DISABLE_VERSION_CHECK=1` is set in the launch environment (or `--env`).",
    why="LLaMA-Factory's main branch allows transformers 4.55-5.8.0 but not 4.57.0 or 5.6.0; 0.9.5 allows "
    "4.55-5.6.0. Every `llamafactory-cli` command stops at import with an ImportError on any other release.",
    upstream="extras/misc.py::check_dependencies, run when hparams/parser.py is imported",
    when=_refused_transformers,
    message=_version_message,
    key=None,
    fix="install a transformers release the range allows, or set DISABLE_VERSION_CHECK=1 to skip the check",
    example=Example("", options={"llamafactory_version": "0.9.6.dev0", "transformers_version": "5.6.0"}),
    use_instead=Example("", options={"llamafactory_version": "0.9.6.dev0", "transformers_version": "5.8.0"}),
    applies_to=("train", "infer"),
)

RULES = [
    VERSION_CHECK, MISSING_MODEL, PIXEL_BOUNDS, EXPORT_QUANT_DATASET, SPLIT_SPECIAL_TOKENS,
    VAL_SIZE_WITHOUT_DATASET, VAL_SIZE_WITH_EVAL_DATASET, INTERLEAVE_WITH_CONCAT, INTERLEAVE_LENGTH,
    STREAMING_VAL_SIZE, STREAMING_MAX_SAMPLES, MASK_HISTORY_TRAIN_ON_PROMPT,
    QUANT_BITS, QUANT_METHOD_BITS, QUANT_SHARDED, PPO_REWARD_MODEL, PPO_REWARD_TYPE, DPO_LABEL_SMOOTHING, LLAMA_PRO_FULL, LORA_WITH_MEMORY_OPTIMIZERS,
    MEMORY_OPTIMIZERS_TOGETHER, PISSA_STAGE, LORA_ONLY_OPTION,
    SFT_ONLY, PREDICT_NEEDS_GENERATE, RM_PPO_BEST_MODEL, PPO_CONSTRAINTS, DEEPSPEED_NEEDS_TORCHRUN, STREAMING_MAX_STEPS,
    TRAIN_NEEDS_DATASET, EVAL_NEEDS_DATA, PREDICT_WITH_GENERATE, DEVICE_MAP_TRAINING, ZERO3_CONFLICT,
    DISTRIBUTED_OPTIMIZER, DEEPSPEED_MEMORY_OPTIMIZER, FP8_QUANTIZATION, INFER_BACKEND, NEAT_PACKING_TRANSFORMERS,
    TRACKIO_PROJECT, ADAPTER_NEEDS_LORA, QUANTIZATION_CONFLICT,
    MIXED_PRECISION, UPCAST_LAYERNORM, RESIZE_VOCAB_TARGET, MEMORY_OPTIMIZER_PRECISION, FP8_ALL_GATHER,
    NEAT_PACKING_WITHOUT_PACKING, RESUME_DROPPED, OUTPUT_DIR_NOT_EMPTY, AUTO_RESUME, YI_SLOW_TOKENIZER, EVAL_ONLY_NOTES,
    PPO_EVAL_DATASET, PPO_TRL, KT_OFT, UNSLOTH_OFT, DORA_QUANTIZED,
]  # fmt: skip
