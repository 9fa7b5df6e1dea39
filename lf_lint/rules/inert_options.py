"""Options that silently do nothing because the option they work with is missing or off.

LLaMA-Factory accepts every argument of its dataclasses in every config, but many of them are only read
on one code path: ``quantization_type`` only when ``quantization_bit: 4`` builds a bitsandbytes config,
``galore_rank`` only when ``use_galore`` creates the GaLore optimizer, ``pref_beta`` only in the DPO and
KTO trainers. Set without what they depend on, they are parsed, kept and never used, and nothing says so.

``INERT`` is the whole rule: for each option, the conditions (``Need``) it takes effect under, per
LLaMA-Factory release where they differ, with the upstream function that reads it. The check reports an
option the config sets explicitly when the first of its needs is not met. Conditions another rule
already reports as an error (``skip``) are left to that rule.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from ..args import Args
from ..diagnostics import Severity
from ..records import Record
from ..versions import nearest_llamafactory, releases
from .base import Context, Example, Finding, Rule

ALL = releases()
UNTIL_093 = releases(last="0.9.3")
UNTIL_094 = releases(last="0.9.4")
FROM_093 = releases("0.9.3")
FROM_094 = releases("0.9.4")
FROM_095 = releases("0.9.5")

Text = "str | Callable[[Args, Context], str]"  # a str.format template, or a function returning one


class Need(Record):
    """A condition an option needs to take effect. The texts are ``str.format`` templates over ``a`` (the
    config's values), ``key`` (the option) and ``lf`` (the release), or functions of (args, context) that
    return such a template."""

    label: str  # for the documentation: what the option needs
    met: Callable[[Args, Context], object]
    unmet: Text  # completes "`key: value` has no effect ..."
    effect: Text  # why it then does nothing
    fix: Text


class Inert(Record):
    """One row of the table: what an option needs in some releases, and where LLaMA-Factory reads it."""

    needs: tuple[Need, ...]
    source: str  # the upstream code that reads the option (LLaMA-Factory unless it names transformers)
    versions: tuple[str, ...] = ALL
    flag: bool = False  # a switch: only its true value asks for anything
    commands: tuple[str, ...] = ("train",)  # "infer": chat/export configs
    skip: Callable[[Args, Context], object] | None = None  # another rule reports this case (as an error)


# ----------------------------------------------------------------------------- conditions


def _ft(a: Args) -> str:
    return str(a.finetuning_type or "lora")


def _method(a: Args) -> str:
    method = str(a.quantization_method or "bnb")
    return "bnb" if method == "bitsandbytes" else method  # 0.9.2 names bitsandbytes in full


def _number(value: object) -> float | None:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _resumes_adapter(a: Args) -> bool:
    """A LoRA training run that loads adapters: the last one is trained on, unless a new one is created
    (model/adapter.py::_setup_lora_tuning, ``is_trainable and not create_new_adapter``)."""
    return _ft(a) == "lora" and a.adapter_name_or_path is not None and a.trains


def _unmergeable(a: Args, ctx: Context) -> str | None:
    """Why LLaMA-Factory cannot merge the loaded adapters (``is_mergeable = False``): it then resumes the
    last adapter even with ``create_new_adapter`` (a quantized model is LF261's error)."""
    if ctx.zero3:
        return "DeepSpeed ZeRO-3"
    if a.use_unsloth:
        return "`use_unsloth`"
    if a.use_kt:
        return "`use_kt`"
    return None


def _ref_stages(a: Args, ctx: Context) -> bool:
    return a.stage in ("dpo", "kto", "ppo")


def _ref_stages_095(a: Args, ctx: Context) -> bool:
    # 0.9.5 train/sft/workflow.py: `if finetuning_args.use_asft_loss: ref_model = create_ref_model(...)`
    return a.stage in ("dpo", "kto", "ppo") or (a.stage == "sft" and bool(a.use_asft_loss))


def _eval_strategy(a: Args) -> str:
    """The evaluation strategy as written: a refused ``evaluation_strategy`` (LF102 on transformers >= 4.51)
    still says what the user meant, and warning about its consequences would only repeat LF102."""
    written = a.raw("evaluation_strategy") if a.is_set("evaluation_strategy") else None
    return str(written) if isinstance(written, str) else a.eval_strategy


def _with_eval_strategy(a: Args, ctx: Context) -> str:
    return f"with `eval_strategy: {_eval_strategy(a)}`"


def _evaluates(a: Args) -> bool:
    return bool(a.get("do_eval")) or _eval_strategy(a) != "no"


def _several_datasets(a: Args, ctx: Context) -> bool:
    return len(a.datasets or []) > 1 or len(a.eval_datasets or []) > 1


def _generates(a: Args, ctx: Context) -> bool:
    # PPO samples with GenerationConfig(**generating_args.to_dict()) (train/ppo/trainer.py); SFT passes them
    # as gen_kwargs to evaluate/predict, which only generate with predict_with_generate (Seq2SeqTrainer)
    return a.stage == "ppo" or (a.stage == "sft" and bool(a.predict_with_generate))


def _stage_need(label: str, stages: tuple[str, ...], effect: str, fix: str) -> Need:
    return Need(label, lambda a, ctx: a.stage in stages, "with `stage: {a.stage}`", effect, fix)


def _switch_need(switch: str, effect: str) -> Need:
    return Need(
        f"`{switch}: true`",
        lambda a, ctx: bool(a.get(switch)),
        f"without `{switch}: true`",
        effect,
        f"add {switch}: true, or remove {{key}}",
    )


QUANT_BIT = Need(
    "`quantization_bit`",
    lambda a, ctx: a.quantization_bit is not None,
    "without `quantization_bit`",
    "LLaMA-Factory loads the model in 16 bits",
    "add quantization_bit: 4",
)
BNB = Need(
    "bitsandbytes",
    lambda a, ctx: _method(a) == "bnb",
    "with `quantization_method: {a.quantization_method}`",
    "only bitsandbytes quantization reads it",
    "remove {key}, or use quantization_method: bnb",
)
FOUR_BIT = Need(
    "`quantization_bit: 4`",
    lambda a, ctx: a.quantization_bit == 4,
    "with `quantization_bit: {a.quantization_bit}`",
    "only 4-bit bitsandbytes quantization reads it",
    "remove {key}, or use quantization_bit: 4",
)
TRAINS = Need(
    "training",
    lambda a, ctx: a.trains,
    "in a run that does not train (`do_train` is off)",
    "LLaMA-Factory only reads it to set the training up",
    "remove {key}, or add do_train: true",
)
LORA = Need(
    "`finetuning_type: lora`",
    lambda a, ctx: _ft(a) == "lora",
    "with `finetuning_type: {a.finetuning_type}`",
    "it configures the LoRA adapter, which only `finetuning_type: lora` trains",
    "remove {key}, or use finetuning_type: lora",
)
LORA_OR_OFT = Need(
    "`finetuning_type: lora` or `oft`",
    lambda a, ctx: _ft(a) in ("lora", "oft"),
    "with `finetuning_type: {a.finetuning_type}`",
    "only LoRA and OFT adapters read it",
    "remove {key}, or use finetuning_type: lora (or oft)",
)
OFT = Need(
    "`finetuning_type: oft`",
    lambda a, ctx: _ft(a) == "oft",
    "with `finetuning_type: {a.finetuning_type}`",
    "it configures the OFT adapter, which only `finetuning_type: oft` trains",
    "remove {key}, or use finetuning_type: oft",
)
NEW_ADAPTER = Need(
    "a new adapter (no `adapter_name_or_path`, or `create_new_adapter`)",
    lambda a, ctx: not (_resumes_adapter(a) and not a.create_new_adapter),
    "with `adapter_name_or_path` and no `create_new_adapter`",
    "LLaMA-Factory resumes training the loaded adapter, which keeps the settings it was saved with",
    lambda a, ctx: (
        "remove {key}"
        if a.quantization_bit is not None  # a new adapter on a quantized model is LF261's error
        else "remove {key}, or add create_new_adapter: true to train a new adapter on top of the merged ones"
    ),
)
MERGEABLE = Need(
    "adapters LLaMA-Factory can merge (not under ZeRO-3, Unsloth or KTransformers)",
    lambda a, ctx: not (_resumes_adapter(a) and a.create_new_adapter and _unmergeable(a, ctx)),
    lambda a, ctx: f"with `adapter_name_or_path` under {_unmergeable(a, ctx)}",
    "LLaMA-Factory cannot merge adapters there, so it resumes training the last one instead of creating a new adapter",
    "remove {key}, or merge the adapters into the model first (llamafactory-cli export)",
)
NEW_ADAPTER_NEEDS_ONE = Need(
    "`adapter_name_or_path`",
    lambda a, ctx: a.adapter_name_or_path is not None,
    "without `adapter_name_or_path`",
    "with no adapter to load, LLaMA-Factory creates a new adapter anyway",
    "remove {key}",
)
ADAPTER_TO_LOAD = Need(
    "`adapter_name_or_path`",
    lambda a, ctx: a.adapter_name_or_path is not None,
    "without `adapter_name_or_path`",
    "it names the subfolder adapters are loaded from, and none is loaded",
    "add adapter_name_or_path, or remove {key}",
)
NO_UNSLOTH = Need(
    "the PEFT path (not Unsloth or KTransformers)",
    lambda a, ctx: not (a.use_unsloth or a.use_kt),
    lambda a, ctx: "with `use_unsloth`" if a.use_unsloth else "with `use_kt`",
    "Unsloth and KTransformers create the LoRA adapter themselves, without PiSSA initialization",
    "remove {key}",
)
PISSA = _switch_need("pissa_init", "only a PiSSA initialization runs the FSVD iterations")
LORAPLUS = Need(
    "`loraplus_lr_ratio`",
    lambda a, ctx: a.loraplus_lr_ratio is not None,
    "without `loraplus_lr_ratio`",
    "only the LoRA+ optimizer reads it",
    "add loraplus_lr_ratio (e.g. 16.0), or remove {key}",
)
FREEZE = Need(
    "`finetuning_type: freeze`",
    lambda a, ctx: _ft(a) == "freeze",
    "with `finetuning_type: {a.finetuning_type}`",
    "only freeze (partial-parameter) tuning reads it",
    "remove {key}, or use finetuning_type: freeze",
)
FREEZE_OR_PRO = Need(
    "`finetuning_type: freeze`, or `use_llama_pro` with LoRA/OFT",
    lambda a, ctx: _ft(a) == "freeze" or (bool(a.use_llama_pro) and _ft(a) in ("lora", "oft")),
    "with `finetuning_type: {a.finetuning_type}`",
    "only freeze tuning, and LLaMA Pro with LoRA or OFT, read it",
    "remove {key}, or use finetuning_type: freeze",
)
NEVER = Need(
    "never read: OFT takes its target modules from `lora_target`",
    lambda a, ctx: False,
    "in LLaMA-Factory {lf}",
    "OFT adapters target the modules named by `lora_target`, and `oft_target` is never read",
    "set lora_target instead; its default, all, targets every linear layer",
)
GALORE = _switch_need("use_galore", "only the GaLore optimizer reads it")
APOLLO = _switch_need("use_apollo", "only the APOLLO optimizer reads it")
BADAM = _switch_need("use_badam", "only the BAdam optimizer reads it")
BADAM_LAYER = Need(
    "`badam_mode: layer`",
    lambda a, ctx: a.badam_mode == "layer",
    "with `badam_mode: {a.badam_mode}`",
    "only layer-wise BAdam reads it",
    "remove {key}, or use badam_mode: layer",
)
BADAM_RATIO = Need(
    "`badam_mode: ratio`",
    lambda a, ctx: a.badam_mode == "ratio",
    "with `badam_mode: {a.badam_mode}`",
    "only ratio-wise BAdam reads it",
    "remove {key}, or use badam_mode: ratio",
)
DPO_KTO = _stage_need("`stage: dpo` or `kto`", ("dpo", "kto"), "only the DPO and KTO trainers read it", "remove {key}")
DPO = _stage_need("`stage: dpo`", ("dpo",), "only the DPO trainer reads it", "remove {key}")
KTO = _stage_need("`stage: kto`", ("kto",), "only the KTO trainer reads it", "remove {key}")
PPO = _stage_need("`stage: ppo`", ("ppo",), "only PPO training reads it", "remove {key}")
SFT = _stage_need("`stage: sft`", ("sft",), "only the SFT trainer reads it", "remove {key}")
SFT_DPO = _stage_need(
    "`stage: sft` or `dpo`", ("sft", "dpo"), "only the SFT and DPO workflows compute it", "remove {key}"
)
PACKING_STAGE = _stage_need(
    "`stage: pt` or `sft`",
    ("pt", "sft"),
    "only pre-training and SFT pack sequences; the pairwise, KTO and PPO processors never do",
    "remove {key}",
)
NOT_PPO = Need(
    "a stage other than ppo",
    lambda a, ctx: a.stage != "ppo",
    "with `stage: ppo`",
    "the PPO trainer builds its own shuffled data loader",
    "remove {key}",
)
REF_LOSS = Need(
    "a DPO loss with a reference model (not orpo or simpo)",
    lambda a, ctx: a.stage != "dpo" or a.pref_loss not in ("orpo", "simpo"),
    "with `pref_loss: {a.pref_loss}`",
    "ORPO and SimPO train without a reference model",
    "remove {key}, or use a pref_loss with a reference model (sigmoid, hinge, ipo)",
)
SIMPO = Need(
    "`pref_loss: simpo`",
    lambda a, ctx: a.pref_loss == "simpo",
    "with `pref_loss: {a.pref_loss}`",
    "only the SimPO loss reads it",
    "remove {key}, or use pref_loss: simpo",
)
REF_STAGE = Need(
    "`stage: dpo`, `kto` or `ppo`",
    _ref_stages,
    "with `stage: {a.stage}`",
    "only DPO, KTO and PPO load a reference model",
    "remove {key}",
)
REF_STAGE_095 = Need(
    "`stage: dpo`, `kto`, `ppo`, or SFT with `use_asft_loss`",
    _ref_stages_095,
    "with `stage: {a.stage}`",
    "only DPO, KTO, PPO and SFT with `use_asft_loss` load a reference model",
    "remove {key}",
)
REF_MODEL = Need(
    "`ref_model`",
    lambda a, ctx: a.ref_model is not None,
    "without `ref_model`",
    "the reference is then the policy model itself (its adapter disabled, or a frozen copy), loaded without it",
    "set ref_model, or remove {key}",
)
REWARD_FULL = Need(
    "`reward_model_type: full`",
    lambda a, ctx: a.reward_model_type == "full",
    "with `reward_model_type: {a.reward_model_type}`",
    "only a full reward model is loaded as a model of its own; a LoRA reward model is an adapter on the policy, "
    "an API one a server",
    "remove {key}, or use reward_model_type: full",
)
ASFT = _switch_need("use_asft_loss", "only the ASFT loss reads it")
EAFT = _switch_need("use_eaft_loss", "only the EAFT loss reads it")
EVALUATES = Need(
    "evaluation",
    lambda a, ctx: _evaluates(a),
    "without evaluation (`eval_strategy: no` and no `do_eval`)",
    "it only acts when the model is evaluated",
    "set eval_strategy: steps (with eval_steps and an eval set), or remove {key}",
)
EVALUATES_OR_PREDICTS = Need(
    "evaluation or prediction",
    lambda a, ctx: _evaluates(a) or bool(a.do_predict),
    "without evaluation or prediction (`eval_strategy: no`, no `do_eval` or `do_predict`)",
    "the run never evaluates or predicts on the evaluation set",
    "set eval_strategy: steps (with eval_steps), do_eval or do_predict, or remove {key}",
)
EVAL_DURING_TRAINING = Need(
    "`eval_strategy` steps or epoch",
    lambda a, ctx: _eval_strategy(a) != "no",
    _with_eval_strategy,
    "it only delays the evaluations run during training",
    "set eval_strategy: steps (with eval_steps), or remove {key}",
)
GENERATION_DURING_TRAINING = Need(
    "`eval_strategy` steps or epoch",
    lambda a, ctx: _eval_strategy(a) != "no",
    _with_eval_strategy,
    "it only sets generation for evaluations during training; the final do_eval/do_predict takes num_beams and "
    "max_new_tokens from the generation arguments",
    "set num_beams / max_new_tokens for the final evaluation, or eval_strategy: steps for evaluations during training",
)
PREDICT_WITH_GENERATE = _switch_need(
    "predict_with_generate", "the Seq2Seq trainer only generates with predict_with_generate"
)
GENERATES = Need(
    "generation (`stage: ppo`, or SFT with `predict_with_generate`)",
    _generates,
    "in a run that never generates text",
    "only PPO and SFT with `predict_with_generate: true` decode with the generation arguments",
    "remove {key}, or add predict_with_generate: true to evaluate or predict by generation",
)
SAMPLING = Need(
    "`do_sample: true`",
    lambda a, ctx: bool(a.do_sample),
    "with `do_sample: false`",
    "greedy and beam search ignore the sampling parameters",
    "remove {key}, or set do_sample: true",
)
BEAMS = Need(
    "`num_beams` above 1",
    lambda a, ctx: (_number(a.num_beams) or 1) > 1,
    "with `num_beams: {a.num_beams}`",
    "the length penalty only scores beam-search candidates",
    "remove {key}, or set num_beams above 1",
)
NO_MAX_NEW_TOKENS = Need(
    "`max_new_tokens` of 0 or less",
    lambda a, ctx: (_number(a.max_new_tokens) or 0) <= 0,
    "while `max_new_tokens` is {a.max_new_tokens}",
    "GeneratingArguments.to_dict drops max_length whenever max_new_tokens is positive",
    "set max_new_tokens instead, or max_new_tokens: 0 to use max_length",
)
PREDICTS = _switch_need("do_predict", "only the predictions written by do_predict are decoded with it")
GRADIENT_CHECKPOINTING = Need(
    "gradient checkpointing (no `disable_gradient_checkpointing`)",
    lambda a, ctx: not a.disable_gradient_checkpointing,
    "with `disable_gradient_checkpointing: true`",
    "it configures LLaMA-Factory's gradient checkpointing, which is off",
    "remove {key}",
)
FP8 = _switch_need("fp8", "only FP8 training reads it")
PROFILER = _switch_need("enable_torch_profiler", "only the torch profiler callback reads it")
SWANLAB = _switch_need("use_swanlab", "only LLaMA-Factory's SwanLab callback reads it")
KTRANSFORMERS = _switch_need("use_kt", "only the KTransformers backend reads it")
STREAMING = _switch_need("streaming", "the shuffle buffer only exists in streaming mode")
NOT_STREAMING = Need(
    "no streaming",
    lambda a, ctx: not a.streaming,
    "with `streaming: true`",
    "streamed datasets are tokenized on the fly, without the datasets cache",
    "remove {key}",
)
EVAL_DATASET = Need(
    "`eval_dataset`",
    lambda a, ctx: a.eval_dataset is not None,
    "without `eval_dataset`",
    "only the datasets eval_dataset names are evaluated one by one; a val_size split is a single set",
    "list the evaluation datasets in eval_dataset, or remove {key}",
)
SEVERAL_DATASETS = Need(
    "several datasets",
    _several_datasets,
    "with a single dataset",
    "LLaMA-Factory only mixes datasets when there are several",
    "remove {key}",
)
NO_TOKENS_CONFIG = Need(
    "no `new_special_tokens_config`",
    lambda a, ctx: a.new_special_tokens_config is None,
    "with `new_special_tokens_config`",
    "the tokens new_special_tokens_config lists replace it (LLaMA-Factory logs a warning)",
    "remove {key}, or list the tokens in the new_special_tokens_config file",
)
INFERENCE_LOAD = Need(
    "a model loaded for inference (no `do_train`)",
    lambda a, ctx: ctx.command == "infer" or not a.do_train,
    "in a training run (`do_train: true`)",
    "LLaMA-Factory only applies it when it loads the model for inference",
    "remove {key}",
)
VLLM = Need(
    "`infer_backend: vllm` (chat/API)",
    lambda a, ctx: ctx.command == "infer" and a.infer_backend == "vllm",
    "without `infer_backend: vllm`",
    "only the vLLM engine of llamafactory-cli chat/api reads it",
    "remove {key}",
)
SGLANG = Need(
    "`infer_backend: sglang` (chat/API)",
    lambda a, ctx: ctx.command == "infer" and a.infer_backend == "sglang",
    "without `infer_backend: sglang`",
    "only the SGLang engine of llamafactory-cli chat/api reads it",
    "remove {key}",
)
EXPORT_QUANTIZATION = Need(
    "`export_quantization_bit`",
    lambda a, ctx: a.export_quantization_bit is not None,
    "without `export_quantization_bit`",
    "only GPTQ quantization at export reads it",
    "add export_quantization_bit: 4, or remove {key}",
)
EVAL_STEPS = Need(
    "`eval_strategy: steps`",
    lambda a, ctx: _eval_strategy(a) == "steps",
    _with_eval_strategy,
    "transformers only evaluates every eval_steps with eval_strategy: steps (nothing is evaluated during training "
    "with `no`)",
    "add eval_strategy: steps (with val_size or eval_dataset), or remove {key}",
)
METRIC = Need(
    "`metric_for_best_model` (or `load_best_model_at_end`)",
    lambda a, ctx: a.metric_for_best_model is not None or bool(a.load_best_model_at_end),
    "without `metric_for_best_model`",
    "transformers only compares checkpoints by a metric",
    "add metric_for_best_model, or remove {key}",
)
PUSH_TO_HUB = _switch_need("push_to_hub", "transformers only creates and uploads to a Hub repository with push_to_hub")


def _not_lora(a: Args, ctx: Context) -> bool:
    return _ft(a) != "lora"  # LF228: LLaMA-Factory refuses the LoRA variants for other methods


def _generation_refused(a: Args, ctx: Context) -> bool:
    # LF231: SFT do_predict without predict_with_generate; LF230: predict_with_generate outside SFT
    if a.stage != "sft":
        return bool(a.predict_with_generate)
    return bool(a.do_predict) and not a.predict_with_generate


def _backend_refused(a: Args, ctx: Context) -> bool:
    # LF244: training refuses an inference backend other than huggingface
    return ctx.command == "train" and a.infer_backend not in (None, "huggingface")


def _no_eval_data(a: Args, ctx: Context) -> bool:
    # LF237: predict_with_generate without eval_dataset or val_size stops LLaMA-Factory
    return a.eval_dataset is None and (_number(a.val_size) or 0.0) < 1e-6


# ----------------------------------------------------------------------------- the table

_QUANT = "model/model_utils/quantization.py::configure_quantization"
_LORA = "model/adapter.py::_setup_lora_tuning"
_FREEZE = "model/adapter.py::_setup_freeze_tuning"
_OPTIM = "train/trainer_utils.py::create_custom_optimizer"
_DPO = "train/dpo/trainer.py::CustomDPOTrainer"
_KTO = "train/kto/trainer.py::CustomKTOTrainer"
_PPO = "train/ppo/trainer.py::CustomPPOTrainer"
_REF = "train/trainer_utils.py::create_ref_model, train/{dpo,kto,ppo}/workflow.py"
_REF_095 = "train/trainer_utils.py::create_ref_model, train/{dpo,kto,ppo,sft}/workflow.py"
_REWARD = "train/trainer_utils.py::create_reward_model"
_SFT_LOSS = "train/sft/trainer.py::CustomSeq2SeqTrainer.__init__"
_GEN = "hparams/generating_args.py::to_dict, train/sft/workflow.py, train/ppo/trainer.py"
_SEQ2SEQ = "transformers trainer_seq2seq.py::Seq2SeqTrainer.evaluate/prediction_step, train/sft/workflow.py"
_GC = "model/model_utils/checkpointing.py::prepare_model_for_training"
_TRAINING_ARGS = "transformers training_args.py / trainer.py"

_LORA_SHAPE = (TRAINS, LORA, NEW_ADAPTER, MERGEABLE)
_LORA_OR_OFT_SHAPE = (TRAINS, LORA_OR_OFT, NEW_ADAPTER, MERGEABLE)


def _one(*rows: Inert) -> tuple[Inert, ...]:
    return rows


def _many(names: str, *rows: Inert) -> dict[str, tuple[Inert, ...]]:
    return {name: rows for name in names.split()}


INERT: dict[str, tuple[Inert, ...]] = {
    # --- on-the-fly quantization: configure_quantization reads these only for `quantization_bit` (bitsandbytes
    # 4-bit for type and double quantization), 0.9.2-0.9.5
    "quantization_method": _one(Inert((QUANT_BIT,), _QUANT, commands=("train", "infer"))),
    **_many(
        "quantization_type double_quantization", Inert((QUANT_BIT, BNB, FOUR_BIT), _QUANT, commands=("train", "infer"))
    ),
    # training with the `auto` device map is LF239's error
    "quantization_device_map": _one(
        Inert(
            (QUANT_BIT, BNB),
            _QUANT,
            commands=("train", "infer"),
            skip=lambda a, ctx: ctx.command == "train" and a.do_train,
        )
    ),
    # --- LoRA: the adapter is only created while training, for finetuning_type lora (and oft from 0.9.4), and
    # not when an adapter is resumed (is_trainable and not create_new_adapter, or not is_mergeable)
    **_many("lora_rank lora_alpha lora_dropout", Inert(_LORA_SHAPE, _LORA)),
    **_many(
        "lora_target additional_target",
        Inert(_LORA_SHAPE, _LORA, versions=UNTIL_093),
        Inert(_LORA_OR_OFT_SHAPE, f"{_LORA} (OFT takes its target_modules from lora_target)", versions=FROM_094),
    ),
    # without LoRA these are LF228's errors; here only the resumed adapter ignores them
    **_many("use_rslora use_dora", Inert((TRAINS, NEW_ADAPTER, MERGEABLE), _LORA, flag=True, skip=_not_lora)),
    "pissa_init": _one(Inert((TRAINS, NEW_ADAPTER, MERGEABLE, NO_UNSLOTH), _LORA, flag=True, skip=_not_lora)),
    "pissa_iter": _one(Inert((TRAINS, LORA, PISSA, NEW_ADAPTER, MERGEABLE, NO_UNSLOTH), _LORA)),
    "loraplus_lr_embedding": _one(Inert((LORAPLUS,), "train/trainer_utils.py::_create_loraplus_optimizer")),
    "create_new_adapter": _one(Inert((TRAINS, NEW_ADAPTER_NEEDS_ONE, MERGEABLE), _LORA, flag=True)),
    "adapter_folder": _one(Inert((ADAPTER_TO_LOAD,), _LORA, commands=("train", "infer"))),
    # --- OFT (0.9.4+): _setup_lora_tuning builds OFTConfig from oft_rank, oft_block_size, module_dropout and
    # lora_target; FinetuningArguments splits oft_target, and nothing reads it
    **_many("oft_rank oft_block_size module_dropout", Inert((TRAINS, OFT), _LORA, versions=FROM_094)),
    "oft_target": _one(Inert((NEVER,), f"{_LORA}; hparams/finetuning_args.py", versions=FROM_094)),
    # --- freeze tuning; LLaMA Pro with LoRA/OFT also reads freeze_trainable_layers (find_expanded_modules)
    "freeze_trainable_layers": _one(Inert((TRAINS, FREEZE_OR_PRO), f"{_FREEZE}, {_LORA}")),
    **_many("freeze_trainable_modules freeze_extra_modules", Inert((TRAINS, FREEZE), _FREEZE)),
    # --- optimizers, created by create_custom_optimizer only for their switch
    **_many(
        "galore_target galore_rank galore_update_interval galore_scale galore_proj_type",
        Inert((GALORE,), f"{_OPTIM}, _create_galore_optimizer"),
    ),
    "galore_layerwise": _one(Inert((GALORE,), f"{_OPTIM}, _create_galore_optimizer", flag=True)),
    **_many(
        "apollo_target apollo_rank apollo_update_interval apollo_scale apollo_proj apollo_proj_type apollo_scale_type",
        Inert((APOLLO,), f"{_OPTIM}, _create_apollo_optimizer"),
    ),
    **_many("apollo_layerwise apollo_scale_front", Inert((APOLLO,), f"{_OPTIM}, _create_apollo_optimizer", flag=True)),
    **_many("badam_mode badam_verbose", Inert((BADAM,), f"{_OPTIM}, _create_badam_optimizer")),
    **_many(
        "badam_start_block badam_switch_mode badam_switch_interval",
        Inert((BADAM, BADAM_LAYER), f"{_OPTIM}, _create_badam_optimizer"),
    ),
    **_many("badam_update_ratio badam_mask_mode", Inert((BADAM, BADAM_RATIO), f"{_OPTIM}, _create_badam_optimizer")),
    # --- preference training
    **_many("pref_beta pref_ftx", Inert((DPO_KTO,), f"{_DPO}, {_KTO}")),
    "pref_loss": _one(Inert((DPO,), _DPO)),
    # non-sigmoid losses in DPO are LF223's error
    "dpo_label_smoothing": _one(Inert((DPO,), _DPO)),
    "pref_bco_weight": _one(Inert((DPO, REF_LOSS), f"{_DPO}.compute_preference_loss", versions=FROM_094)),
    "simpo_gamma": _one(Inert((DPO, SIMPO), f"{_DPO}.simpo_loss")),
    "ld_alpha": _one(Inert((DPO,), f"{_DPO}.concatenated_forward", versions=FROM_093)),
    **_many("kto_chosen_weight kto_rejected_weight", Inert((KTO,), _KTO)),
    **_many(
        "ppo_buffer_size ppo_epochs ppo_score_norm ppo_target ppo_whiten_rewards reward_model reward_model_type",
        Inert((PPO,), f"{_PPO}, {_REWARD}"),
    ),
    **_many("reward_model_adapters reward_model_quantization_bit", Inert((PPO, REWARD_FULL), _REWARD)),
    "ref_model": _one(
        Inert((REF_STAGE, REF_LOSS), _REF, versions=UNTIL_094),
        Inert((REF_STAGE_095, REF_LOSS), _REF_095, versions=FROM_095),
    ),
    **_many(
        "ref_model_adapters ref_model_quantization_bit",
        Inert((REF_STAGE, REF_LOSS, REF_MODEL), _REF, versions=UNTIL_094),
        Inert((REF_STAGE_095, REF_LOSS, REF_MODEL), _REF_095, versions=FROM_095),
    ),
    # --- SFT losses and metrics
    "use_dft_loss": _one(Inert((SFT,), _SFT_LOSS, versions=FROM_094, flag=True)),
    **_many("use_eaft_loss use_asft_loss", Inert((SFT,), _SFT_LOSS, versions=FROM_095, flag=True)),
    "asft_alpha": _one(Inert((SFT, ASFT), _SFT_LOSS, versions=FROM_095)),
    "eaft_alpha": _one(Inert((SFT, EAFT), _SFT_LOSS, versions=FROM_095)),
    # with predict_with_generate it is LF238's error
    "compute_accuracy": _one(Inert((SFT, EVALUATES), "train/sft/workflow.py::run_sft", flag=True)),
    "include_effective_tokens_per_second": _one(
        Inert((TRAINS, SFT_DPO), "train/sft/workflow.py, train/dpo/workflow.py", flag=True)
    ),
    "disable_shuffling": _one(Inert((NOT_PPO,), "train/{pt,sft,rm,dpo,kto}/trainer.py::_get_train_sampler", flag=True)),
    # --- data
    "packing": _one(Inert((PACKING_STAGE,), "data/loader.py::_get_dataset_processor", flag=True)),
    "buffer_size": _one(Inert((STREAMING,), "data/data_utils.py::split_dataset")),
    "overwrite_cache": _one(
        Inert(
            (NOT_STREAMING,), "data/loader.py::_get_preprocessed_dataset, data/converter.py::align_dataset", flag=True
        )
    ),
    "eval_on_each_dataset": _one(Inert((EVAL_DATASET,), "data/loader.py::get_dataset", versions=FROM_093, flag=True)),
    "mix_strategy": _one(Inert((SEVERAL_DATASETS,), "data/data_utils.py::merge_dataset")),
    "add_special_tokens": _one(
        Inert(
            (NO_TOKENS_CONFIG,),
            "hparams/model_args.py::BaseModelArguments.__post_init__",
            versions=FROM_094,
            commands=("train", "infer"),
        )
    ),
    # --- generation: SFT outside predict_with_generate and the stages other than PPO never generate
    # (outside SFT, predict_with_generate is LF230's error; without eval data, LF237's)
    "predict_with_generate": _one(
        Inert(
            (EVALUATES_OR_PREDICTS,),
            "train/sft/workflow.py::run_sft",
            flag=True,
            skip=lambda a, ctx: a.stage != "sft" or _no_eval_data(a, ctx),
        )
    ),
    **_many(
        "do_sample num_beams max_new_tokens repetition_penalty", Inert((GENERATES,), _GEN, skip=_generation_refused)
    ),
    **_many("temperature top_p top_k", Inert((GENERATES, SAMPLING), _GEN, skip=_generation_refused)),
    "length_penalty": _one(Inert((GENERATES, BEAMS), _GEN, skip=_generation_refused)),
    "max_length": _one(Inert((GENERATES, NO_MAX_NEW_TOKENS), _GEN, skip=_generation_refused)),
    "skip_special_tokens": _one(
        Inert(
            (SFT, PREDICT_WITH_GENERATE, PREDICTS), "train/sft/trainer.py::save_predictions", skip=_generation_refused
        )
    ),
    # eval_num_beams becomes generation_num_beams (hparams/parser.py, 0.9.2 train/sft/workflow.py), which
    # Seq2SeqTrainer.evaluate only uses when no num_beams is passed: for evaluations during training
    **_many(
        "eval_num_beams generation_num_beams generation_max_length",
        Inert((SFT, PREDICT_WITH_GENERATE, GENERATION_DURING_TRAINING), _SEQ2SEQ, skip=_generation_refused),
    ),
    # --- model loading
    "use_unsloth_gc": _one(Inert((GRADIENT_CHECKPOINTING,), _GC, flag=True)),
    "use_reentrant_gc": _one(Inert((GRADIENT_CHECKPOINTING,), _GC)),
    "infer_dtype": _one(Inert((INFERENCE_LOAD,), "model/patcher.py::patch_config")),
    "use_cache": _one(Inert((INFERENCE_LOAD,), "model/patcher.py::patch_config", versions=UNTIL_093)),
    "use_kv_cache": _one(
        Inert((INFERENCE_LOAD,), "model/model_utils/kv_cache.py::configure_kv_cache", versions=FROM_094)
    ),
    **_many(
        "vllm_maxlen vllm_gpu_util vllm_enforce_eager vllm_max_lora_rank vllm_config",
        Inert((VLLM,), "chat/vllm_engine.py::VllmEngine", commands=("train", "infer"), skip=_backend_refused),
    ),
    **_many(
        "sglang_maxlen sglang_mem_fraction sglang_tp_size sglang_config sglang_lora_backend",
        Inert(
            (SGLANG,),
            "chat/sglang_engine.py::SGLangEngine",
            versions=FROM_093,
            commands=("train", "infer"),
            skip=_backend_refused,
        ),
    ),
    **_many(
        "export_quantization_dataset export_quantization_nsamples export_quantization_maxlen",
        Inert((EXPORT_QUANTIZATION,), _QUANT, commands=("infer",)),
    ),
    **_many(
        "kt_weight_path kt_expert_checkpoint_path kt_use_lora_experts kt_lora_expert_num "
        "kt_lora_expert_intermediate_size",
        Inert((KTRANSFORMERS,), "hparams/model_args.py::KTransformersArguments.apply_kt_config", versions=FROM_095),
    ),
    # --- callbacks and extras
    "fp8_backend": _one(Inert((FP8,), "train/fp8_utils.py", versions=FROM_094)),
    **_many(
        "profiler_output_dir profiler_wait_steps profiler_warmup_steps profiler_active_steps profiler_repeat "
        "profiler_record_shapes profiler_profile_memory profiler_with_stack",
        Inert(
            (PROFILER,),
            "train/tuner.py::_training_function, train/callbacks.py::TorchProfilerCallback",
            versions=FROM_095,
        ),
    ),
    **_many(
        "swanlab_project swanlab_workspace swanlab_run_name swanlab_mode swanlab_api_key swanlab_logdir",
        Inert((SWANLAB,), "train/trainer_utils.py::get_swanlab_callback"),
    ),
    **_many(
        "swanlab_lark_webhook_url swanlab_lark_secret",
        Inert((SWANLAB,), "train/trainer_utils.py::get_swanlab_callback", versions=FROM_093),
    ),
    # --- the transformers Trainer; eval_strategy defaults to no, so these are easily set without it (save_steps
    # and logging_steps only sit idle after an explicit switch to another save/logging strategy: not reported)
    "eval_steps": _one(Inert((EVAL_STEPS,), f"{_TRAINING_ARGS} (4.45-5.6)", flag=True)),
    "eval_delay": _one(Inert((EVAL_DURING_TRAINING,), f"{_TRAINING_ARGS} (4.45-5.6)", flag=True)),
    **_many(
        "per_device_eval_batch_size eval_accumulation_steps",
        Inert((EVALUATES_OR_PREDICTS,), f"{_TRAINING_ARGS} (4.45-5.6)"),
    ),
    "greater_is_better": _one(Inert((METRIC,), f"{_TRAINING_ARGS} (4.45-5.6)")),
    **_many(
        "hub_model_id hub_strategy hub_private_repo hub_always_push",
        Inert((PUSH_TO_HUB,), f"{_TRAINING_ARGS} (4.45-5.6), train/trainer_utils.py::create_modelcard_and_push"),
    ),
}


# ----------------------------------------------------------------------------- the check


def _show(value: object) -> str:
    """A value as it reads in YAML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def render(text: Text, a: Args, ctx: Context, key: str) -> str:
    """A need's text for this config: a function gives the template, which is then filled in."""
    template = text(a, ctx) if callable(text) else text
    return template.format(a=_Shown(a), key=key, lf=ctx.target.llamafactory)


class _Shown:
    """``Args`` whose values format as YAML (``do_sample: false``, not ``False``)."""

    def __init__(self, args: Args):
        self._args = args

    def __getattr__(self, name: str) -> str:
        return _show(getattr(self._args, name))  # Args' properties normalise as __post_init__ does


def row_for(option: str, ctx: Context) -> Inert | None:
    """The row of ``INERT`` that applies to ``option`` for the targeted release and command."""
    for row in INERT.get(option, ()):
        if nearest_llamafactory(ctx.target.llamafactory) in row.versions and ctx.command in row.commands:
            return row
    return None


def unmet_need(option: str, value: object, ctx: Context) -> Need | None:
    """What ``option: value`` works with and does not have in this run, so that it has no effect; None when it takes
    effect (or the table has no row for it). Out-of-range values of an option without effect are no error (LF105):
    they never reach the code that would refuse them."""
    row = row_for(option, ctx)
    if row is None or (row.flag and not value) or (row.skip is not None and row.skip(ctx.args, ctx)):
        return None
    return next((n for n in row.needs if not n.met(ctx.args, ctx)), None)


def _check(ctx: Context):
    a = ctx.args
    mistyped = {p.key for p in ctx.schema_problems if p.kind in ("type", "enum")}
    for option in INERT:
        if not a.is_set(option) or option not in ctx.table:
            continue  # unset (its default asks for nothing), or unknown to this release (LF101/LF102)
        value = a.raw(option)
        if value is None or option in mistyped:
            continue  # null is the default; a wrongly typed value is LF103's
        need = unmet_need(option, value, ctx)
        if need is None:
            continue
        yield Finding(
            f"`{option}: {_show(value)}` has no effect {render(need.unmet, a, ctx, option)}: "
            f"{render(need.effect, a, ctx, option)}",
            key=option,
            fix=render(need.fix, a, ctx, option),
        )


def _versions(versions: tuple[str, ...]) -> str:
    if versions == ALL:
        return ""
    span = versions[0] if len(versions) == 1 else f"{versions[0]}-{versions[-1]}"
    return f" (LLaMA-Factory {span})"


def _table_text() -> str:
    """The table as documentation: options with the same needs, releases and upstream code on one line."""
    lines: dict[str, list[str]] = {}
    for option, rows in INERT.items():
        for row in rows:
            needs = ", ".join(n.label for n in row.needs if n is not TRAINS)
            line = (NEVER.label if row.needs == (NEVER,) else f"needs {needs}") + _versions(row.versions)
            lines.setdefault(f"{line}; read in {row.source}", []).append(f"`{option}`")
    return "\n".join(f"- {', '.join(options)}: {line}" for line, options in lines.items())


INERT_OPTION = Rule(
    code="LF316",
    name="inert-option",
    severity=Severity.WARNING,
    summary="An option that only takes effect together with another one that is missing or off.",
    what="Reports options the config sets explicitly that the targeted LLaMA-Factory release never reads, "
    "because what they work with is missing or off: `quantization_type` without `quantization_bit`, LoRA "
    "settings for full or freeze tuning or for a resumed adapter, GaLore/APOLLO/BAdam settings without their "
    "switch, preference-loss settings in another stage, generation settings in a run that never generates, "
    "`eval_steps` without `eval_strategy: steps`, and so on. The finding is on the option's key, names what is "
    "missing, and gives the fix. Only keys the config sets are reported (a default asks for nothing), switches "
    "only when on; LoRA, OFT and freeze settings are also reported in runs that do not train. Combinations "
    "LLaMA-Factory refuses are other rules' errors (LF223, LF228, LF230, LF237, LF239, LF261, ...). The table, "
    "read from each release's hparams/*_args.py and the code that uses the options (paths in LLaMA-Factory's "
    "package unless they name transformers):\n\n" + _table_text(),
    why="The run starts and trains without what the option was meant to do, and nothing says so: with "
    "`quantization_type: nf4` and `double_quantization: true` but no `quantization_bit`, LLaMA-Factory loads the "
    "model in 16 bits and the user believes it trains a 4-bit QLoRA (hiyouga/LLaMA-Factory #10367: out of memory "
    "on 3 x L40S).",
    example=Example("quantization_method: bnb\nquantization_type: nf4\ndouble_quantization: true"),
    use_instead=Example(
        "quantization_bit: 4\nquantization_method: bnb\nquantization_type: nf4\ndouble_quantization: true"
    ),
    upstream="The functions named in the table, LLaMA-Factory 0.9.2-0.9.5; transformers 4.45-5.6 "
    "`TrainingArguments` and `Seq2SeqTrainer`.",
    applies_to=("train", "infer"),
    check=_check,
)

RULES = [INERT_OPTION]
