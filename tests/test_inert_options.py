"""LF316: options that silently do nothing because what they work with is missing or off."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from train_config import TRAIN

from lf_lint.diagnostics import Severity
from lf_lint.engine import LintOptions, lint_file, make_context
from lf_lint.loading import load
from lf_lint.rules import inert_options
from lf_lint.rules.inert_options import INERT, Need, render
from lf_lint.schema import database, field_table
from lf_lint.versions import SUPPORTED_LLAMAFACTORY, Target, newest_transformers_for

# TRAIN (train_config.py) sets none of the table's options.
CHAT = {"model_name_or_path": "Qwen/Qwen3-0.6B", "template": "default", "finetuning_type": "lora"}

# The config of hiyouga/LLaMA-Factory #10367 (Qwen3.5-27B LoRA on 3 x L40S), trimmed: QLoRA settings without
# quantization_bit, so the model is loaded in 16 bits.
ISSUE_10367 = """\
### model
model_name_or_path: Qwen/Qwen3.5-27B
trust_remote_code: true
quantization_method: bnb
quantization_type: nf4
double_quantization: true

### method
stage: sft
do_train: true
finetuning_type: lora
lora_rank: 16
lora_alpha: 32
lora_target: all

### dataset
dataset: identity
template: default
cutoff_len: 4096

### output
output_dir: saves/qwen3.5-27b/lora/sft
per_device_train_batch_size: 1
gradient_accumulation_steps: 8
bf16: true
"""


def _options(release: str, command: str | None = None) -> LintOptions:
    return LintOptions(
        llamafactory_version=release,
        transformers_version=newest_transformers_for(release),
        command=command,
        count_datasets=False,
        memory=False,
        workdir=Path("."),
    )


def _lint(text: str, release: str = "0.9.5", command: str | None = None, name: str = "cfg.yaml"):
    return lint_file(name, _options(release, command), text=text)


def _dump(config: dict) -> str:
    return yaml.safe_dump(config, sort_keys=False)


def _mine(result) -> list:
    return [d for d in result.diagnostics if d.code == "LF316"]


def _line_of(text: str, key: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if line.startswith(f"{key}:"))


# ----------------------------------------------------------------------------- the issue


def test_issue_10367_warns_at_each_qlora_key_with_the_fix():
    found = _mine(_lint(ISSUE_10367))
    assert [(d.line, d.column) for d in found] == [(4, 1), (5, 1), (6, 1)]
    assert all(d.severity is Severity.WARNING for d in found)
    assert all(d.fix == "add quantization_bit: 4" for d in found)
    assert found[1].message == (
        "`quantization_type: nf4` has no effect without `quantization_bit`: LLaMA-Factory loads the model in 16 bits"
    )
    assert found[2].message.startswith("`double_quantization: true` has no effect without `quantization_bit`")


def test_issue_10367_is_clean_with_quantization_bit():
    fixed = ISSUE_10367.replace("quantization_method: bnb", "quantization_bit: 4\nquantization_method: bnb")
    assert _mine(_lint(fixed)) == []


def test_quantization_type_needs_4_bit_bitsandbytes():
    (eight,) = _mine(_lint(_dump({**TRAIN, "quantization_bit": 8, "quantization_type": "fp4"})))
    assert (
        "with `quantization_bit: 8`" in eight.message
        and eight.fix == "remove quantization_type, or use quantization_bit: 4"
    )
    (hqq,) = _mine(
        _lint(_dump({**TRAIN, "quantization_bit": 4, "quantization_method": "hqq", "double_quantization": False}))
    )
    assert "`double_quantization: false` has no effect with `quantization_method: hqq`" in hqq.message


# ----------------------------------------------------------------------------- every row of the table

# For each condition of the table: a config overlay that meets it and one that does not (applied after the
# overlays that meet the conditions before it). None: no config meets it.
CASES: dict[str, tuple[dict | None, dict]] = {
    "QUANT_BIT": ({"quantization_bit": 4}, {"quantization_bit": None}),
    "BNB": ({}, {"quantization_method": "hqq"}),
    "FOUR_BIT": ({"quantization_bit": 4}, {"quantization_bit": 8}),
    "TRAINS": ({"do_train": True}, {"do_train": False, "do_eval": True, "val_size": 0.1}),
    "LORA": ({"finetuning_type": "lora"}, {"finetuning_type": "full"}),
    "LORA_OR_OFT": ({"finetuning_type": "lora"}, {"finetuning_type": "freeze"}),
    "OFT": ({"finetuning_type": "oft"}, {"finetuning_type": "lora"}),
    "NEW_ADAPTER": ({}, {"adapter_name_or_path": "saves/adapter"}),
    "MERGEABLE": ({}, {"adapter_name_or_path": "saves/adapter", "create_new_adapter": True, "use_unsloth": True}),
    "NEW_ADAPTER_NEEDS_ONE": ({"adapter_name_or_path": "saves/adapter"}, {"adapter_name_or_path": None}),
    "ADAPTER_TO_LOAD": ({"adapter_name_or_path": "saves/adapter"}, {}),
    "NO_UNSLOTH": ({}, {"use_unsloth": True}),
    "PISSA": ({"pissa_init": True}, {"pissa_init": False}),
    "LORAPLUS": ({"loraplus_lr_ratio": 16.0}, {}),
    "FREEZE": ({"finetuning_type": "freeze"}, {"finetuning_type": "full"}),
    "FREEZE_OR_PRO": ({"finetuning_type": "freeze"}, {"finetuning_type": "full"}),
    "NEVER": (None, {}),
    "GALORE": ({"use_galore": True}, {}),
    "APOLLO": ({"use_apollo": True}, {}),
    "BADAM": ({"use_badam": True}, {}),
    "BADAM_LAYER": ({"badam_mode": "layer"}, {"badam_mode": "ratio"}),
    "BADAM_RATIO": ({"badam_mode": "ratio"}, {"badam_mode": "layer"}),
    "DPO_KTO": ({"stage": "kto"}, {"stage": "sft"}),
    "DPO": ({"stage": "dpo"}, {"stage": "kto"}),
    "KTO": ({"stage": "kto"}, {"stage": "dpo"}),
    "PPO": ({"stage": "ppo", "reward_model": "saves/rm"}, {"stage": "sft"}),
    "SFT": ({"stage": "sft"}, {"stage": "dpo"}),
    "SFT_DPO": ({"stage": "dpo"}, {"stage": "kto"}),
    "PACKING_STAGE": ({"stage": "pt"}, {"stage": "dpo"}),
    "NOT_PPO": ({"stage": "rm"}, {"stage": "ppo"}),
    "REF_LOSS": ({}, {"stage": "dpo", "pref_loss": "orpo"}),
    "SIMPO": ({"pref_loss": "simpo"}, {"pref_loss": "sigmoid"}),
    "REF_STAGE": ({"stage": "dpo"}, {"stage": "sft"}),
    "REF_STAGE_095": ({"stage": "sft", "use_asft_loss": True}, {"stage": "rm"}),
    "REF_MODEL": ({"ref_model": "saves/ref"}, {}),
    "REWARD_FULL": ({"reward_model_type": "full"}, {"reward_model_type": "lora"}),
    "ASFT": ({"use_asft_loss": True}, {}),
    "EAFT": ({"use_eaft_loss": True}, {}),
    "EVALUATES": ({"eval_strategy": "steps", "eval_steps": 10, "val_size": 0.1}, {}),
    "EVALUATES_OR_PREDICTS": ({"do_eval": True, "val_size": 0.1}, {}),
    "EVAL_DURING_TRAINING": ({"eval_strategy": "epoch", "val_size": 0.1}, {"eval_strategy": "no"}),
    "GENERATION_DURING_TRAINING": ({"eval_strategy": "epoch", "val_size": 0.1}, {"eval_strategy": "no"}),
    "PREDICT_WITH_GENERATE": ({"predict_with_generate": True}, {"predict_with_generate": False}),
    "GENERATES": ({"stage": "ppo", "reward_model": "saves/rm"}, {"stage": "sft"}),
    "SAMPLING": ({"do_sample": True}, {"do_sample": False}),
    "BEAMS": ({"num_beams": 4}, {"num_beams": 1}),
    "NO_MAX_NEW_TOKENS": ({"max_new_tokens": 0}, {"max_new_tokens": 512}),
    "PREDICTS": ({"do_predict": True}, {"do_predict": False}),
    "GRADIENT_CHECKPOINTING": ({}, {"disable_gradient_checkpointing": True}),
    "FP8": ({"fp8": True}, {}),
    "PROFILER": ({"enable_torch_profiler": True}, {}),
    "SWANLAB": ({"use_swanlab": True}, {}),
    "KTRANSFORMERS": ({"use_kt": True}, {}),
    "STREAMING": ({"streaming": True, "max_steps": 10}, {}),
    "NOT_STREAMING": ({}, {"streaming": True, "max_steps": 10}),
    "EVAL_DATASET": ({"eval_dataset": "identity"}, {}),
    "SEVERAL_DATASETS": ({"dataset": "identity,alpaca_en_demo"}, {}),
    "NO_TOKENS_CONFIG": ({}, {"new_special_tokens_config": "tokens.yaml"}),
    "INFERENCE_LOAD": ({"do_train": False, "do_predict": True}, {"do_train": True}),
    "VLLM": ({"infer_backend": "vllm"}, {}),
    "SGLANG": ({"infer_backend": "sglang"}, {}),
    "EXPORT_QUANTIZATION": ({"export_quantization_bit": 4}, {}),
    "EVAL_STEPS": ({"eval_strategy": "steps", "val_size": 0.1}, {"eval_strategy": "epoch"}),
    "METRIC": ({"metric_for_best_model": "eval_loss"}, {}),
    "PUSH_TO_HUB": ({"push_to_hub": True}, {}),
}
# Conditions only a chat/export config can meet.
INFER_ONLY = {"VLLM", "SGLANG"}
# Set around an option so that another rule's case (the row's `skip`) does not hide it.
AROUND = {
    "quantization_device_map": {"do_train": False, "do_predict": True, "predict_with_generate": True, "val_size": 0.1},
    "predict_with_generate": {"val_size": 0.1},
}
# Values for options whose default would be skipped as an off switch or a null.
VALUES = {"eval_steps": 50}

NEED_NAMES = {id(value): name for name, value in vars(inert_options).items() if isinstance(value, Need)}


def _name(need: Need) -> str:
    return NEED_NAMES[id(need)]


def _value(option: str, release: str, command: str) -> object:
    """A value the targeted release accepts: the field's default, else one of its type (a switch is on)."""
    if option in VALUES:
        return VALUES[option]
    field = field_table(Target(release, newest_transformers_for(release)), command).get(option)
    assert field is not None, (option, release, command)
    if field.choices:
        return next(choice for choice in field.choices if choice is not None)
    if field.has_default and field.default not in (None, False, ""):
        return field.default
    types = field.json_types or ("string",)
    for kind, value in (("boolean", True), ("integer", 4), ("number", 0.5), ("string", "x")):
        if kind in types:
            return value
    raise AssertionError((option, types))


def _cases():
    for option, rows in INERT.items():
        for row in rows:
            for release in row.versions:
                for command in row.commands:
                    yield pytest.param(option, row, release, command, id=f"{option}-{release}-{command}")


def _context(text: str, release: str, command: str):
    options = _options(release, "chat" if command == "infer" else None)
    resolution = options.resolution()
    return make_context(load("cfg.yaml", resolution.target, text=text), options, resolution)


@pytest.mark.parametrize(("option", "row", "release", "command"), list(_cases()))
def test_every_row_fires_without_its_enabler_and_not_with_it(option, row, release, command):
    """Each condition of the row in turn is left unmet (the ones before it met): the option is reported at its
    key, for that condition; with every condition met it is not."""
    base = {**(TRAIN if command == "train" else CHAT), **AROUND.get(option, {})}
    value = _value(option, release, command)
    forced = "chat" if command == "infer" else None
    names = [_name(need) for need in row.needs]

    met: dict = {}
    for need, name in zip(row.needs, names):
        text = _dump({**base, **met, **CASES[name][1], option: value})
        found = [d for d in _mine(_lint(text, release, forced)) if d.line == _line_of(text, option)]
        assert len(found) == 1, (name, text, found)
        ctx = _context(text, release, command)
        assert render(need.unmet, ctx.args, ctx, option) in found[0].message, (name, found[0].message)
        assert found[0].column == 1 and found[0].fix
        on = CASES[name][0]
        if on is None or (command == "train" and name in INFER_ONLY):
            return  # nothing meets this condition here: the option never takes effect
        met.update(on)

    text = _dump({**base, **met, option: value})
    assert [d for d in _mine(_lint(text, release, forced)) if d.line == _line_of(text, option)] == [], text


def test_every_condition_has_cases():
    used = {_name(need) for rows in INERT.values() for row in rows for need in row.needs}
    assert used <= set(CASES), used - set(CASES)


def test_rows_name_real_fields_of_their_releases():
    db = database()
    for option, rows in INERT.items():
        seen: set[str] = set()
        for row in rows:
            assert row.versions and set(row.versions) <= set(SUPPORTED_LLAMAFACTORY), option
            assert not seen & set(row.versions), f"{option}: two rows for one release"
            seen |= set(row.versions)
            assert row.source and row.needs, option
            if option in db["llamafactory_fields"]:
                releases = {v for variant in db["llamafactory_fields"][option] for v in variant["versions"]}
                assert set(row.versions) <= releases, (option, row.versions, releases)
            else:
                assert option in db["transformers_fields"], option


# ----------------------------------------------------------------------------- what is not reported


def test_options_left_at_their_defaults_are_not_reported():
    # every enabler is missing (full tuning, no quantization, no evaluation, SFT without generation), but none of
    # the options that would need them is set
    config = {**TRAIN, "finetuning_type": "full", "stage": "sft"}
    for release in SUPPORTED_LLAMAFACTORY:
        assert _mine(_lint(_dump(config), release)) == []
    chat = _lint(_dump(CHAT), "0.9.5", "chat")
    assert _mine(chat) == []


def test_null_and_off_switches_are_not_reported():
    config = {
        **TRAIN,
        "finetuning_type": "full",
        "ref_model": None,
        "quantization_type": None,
        "galore_layerwise": False,
        "packing": False,
        "compute_accuracy": False,
        "eval_steps": 0,
    }
    assert _mine(_lint(_dump({**config, "stage": "dpo"}))) == []


def test_a_value_of_the_wrong_type_is_left_to_the_schema_rules():
    result = _lint(_dump({**TRAIN, "finetuning_type": "full", "lora_rank": "sixteen"}))
    assert "LF103" in {d.code for d in result.diagnostics}
    assert _mine(result) == []


REFUSED = [
    ({"finetuning_type": "full", "use_dora": True}, "LF228"),
    ({"quantization_device_map": "auto"}, "LF239"),
    ({"stage": "dpo", "pref_loss": "hinge", "dpo_label_smoothing": 0.1}, "LF223"),
    ({"predict_with_generate": True}, "LF237"),
    ({"do_predict": True, "eval_dataset": "identity", "temperature": 0.5, "max_new_tokens": 64}, "LF231"),
    ({"stage": "dpo", "predict_with_generate": True, "val_size": 0.1, "num_beams": 4}, "LF230"),
    ({"infer_backend": "vllm", "vllm_maxlen": 8192}, "LF244"),
    ({"quantization_bit": 4, "adapter_name_or_path": "saves/a", "create_new_adapter": True}, "LF261"),
]


@pytest.mark.parametrize(("overlay", "code"), REFUSED, ids=[code for _, code in REFUSED])
def test_combinations_llamafactory_refuses_are_left_to_their_error_rules(overlay, code):
    result = _lint(_dump({**TRAIN, **overlay}))
    assert code in {d.code for d in result.diagnostics}, result.diagnostics
    assert _mine(result) == []


def test_a_refused_evaluation_strategy_does_not_add_warnings():
    # transformers 5 refuses the old name (LF102); the eval_steps next to it are what the user meant
    text = _dump({**TRAIN, "evaluation_strategy": "steps", "eval_steps": 100, "val_size": 0.1})
    result = _lint(text)
    assert "LF102" in {d.code for d in result.diagnostics}
    assert _mine(result) == []


# ----------------------------------------------------------------------------- releases differ


def test_oft_reads_lora_target_and_never_oft_target():
    config = {**TRAIN, "finetuning_type": "oft", "lora_target": "q_proj,v_proj", "oft_target": "all"}
    for release in ("0.9.4", "0.9.5"):
        text = _dump(config)
        (found,) = _mine(_lint(text, release))
        assert found.line == _line_of(text, "oft_target")
        assert found.message.startswith(f"`oft_target: all` has no effect in LLaMA-Factory {release}: ")
        assert found.fix.startswith("set lora_target instead")
    # before 0.9.4 there is no OFT and no oft_target: the key itself is the error
    result = _lint(_dump({**TRAIN, "oft_target": "all"}), "0.9.3")
    assert _mine(result) == [] and {"LF101", "LF102"} & {d.code for d in result.diagnostics}


def test_sft_loads_a_reference_model_for_asft_from_0_9_5():
    config = {**TRAIN, "use_asft_loss": True, "ref_model": "saves/ref", "ref_model_quantization_bit": 4}
    assert _mine(_lint(_dump(config), "0.9.5")) == []
    # 0.9.4 has no ASFT loss: SFT never loads the reference model
    found = _mine(_lint(_dump({**TRAIN, "ref_model": "saves/ref", "ref_model_quantization_bit": 4}), "0.9.4"))
    assert [d.message.split(" has no effect")[0] for d in found] == [
        "`ref_model: saves/ref`",
        "`ref_model_quantization_bit: 4`",
    ]
    assert all("with `stage: sft`" in d.message for d in found)


def test_kv_cache_switch_was_renamed_in_0_9_4():
    old = _mine(_lint(_dump({**TRAIN, "use_cache": False}), "0.9.3"))
    assert [d.message.split(":")[0] for d in old] == ["`use_cache"]
    assert _mine(_lint(_dump({**TRAIN, "use_cache": False}), "0.9.5")) == []  # an unknown key there
    new = _mine(_lint(_dump({**TRAIN, "use_kv_cache": False}), "0.9.5"))
    assert "in a training run (`do_train: true`)" in new[0].message
    assert _mine(_lint(_dump({**TRAIN, "do_train": False, "do_predict": True, "use_kv_cache": False}), "0.9.5")) == []


def test_options_newer_than_the_release_are_not_reported():
    assert _mine(_lint(_dump({**TRAIN, "pref_bco_weight": 0.5}), "0.9.3")) == []
    assert len(_mine(_lint(_dump({**TRAIN, "pref_bco_weight": 0.5}), "0.9.4"))) == 1
    assert _mine(_lint(_dump({**TRAIN, "eval_on_each_dataset": True}), "0.9.2")) == []
    assert len(_mine(_lint(_dump({**TRAIN, "eval_on_each_dataset": True}), "0.9.3"))) == 1


# ----------------------------------------------------------------------------- a few rows read in full


def test_lora_settings_of_a_resumed_adapter():
    config = {**TRAIN, "adapter_name_or_path": "saves/sft", "lora_rank": 16}
    (found,) = _mine(_lint(_dump(config)))
    assert "with `adapter_name_or_path` and no `create_new_adapter`" in found.message
    assert "create_new_adapter: true" in found.fix
    assert _mine(_lint(_dump({**config, "create_new_adapter": True}))) == []
    # a quantized model cannot take a new adapter (LF261): the fix does not suggest one
    (quantized,) = _mine(_lint(_dump({**config, "quantization_bit": 4})))
    assert quantized.fix == "remove lora_rank"
    # under ZeRO-3 the adapters cannot be merged: the last one is resumed even with create_new_adapter
    zero3 = {**config, "create_new_adapter": True, "deepspeed": {"zero_optimization": {"stage": 3}}}
    lora_rank, create_new_adapter = _mine(_lint(_dump(zero3)))
    assert "under DeepSpeed ZeRO-3" in lora_rank.message and "under DeepSpeed ZeRO-3" in create_new_adapter.message


def test_generation_settings_need_a_run_that_generates():
    sampling = {"temperature": 0.7, "max_new_tokens": 256}
    found = _mine(_lint(_dump({**TRAIN, **sampling})))
    assert len(found) == 2 and all("in a run that never generates text" in d.message for d in found)
    generating = {**TRAIN, **sampling, "predict_with_generate": True, "do_predict": True, "eval_dataset": "identity"}
    assert _mine(_lint(_dump(generating))) == []
    (greedy,) = _mine(_lint(_dump({**generating, "do_sample": False})))
    assert greedy.message.startswith("`temperature: 0.7` has no effect with `do_sample: false`")
    (max_length,) = _mine(_lint(_dump({**generating, "max_length": 2048})))
    assert "while `max_new_tokens` is 256" in max_length.message


def test_eval_steps_without_eval_strategy():
    text = _dump({**TRAIN, "val_size": 0.1, "eval_steps": 100})
    (found,) = _mine(_lint(text))
    assert (found.line, found.message.split(":")[0]) == (_line_of(text, "eval_steps"), "`eval_steps")
    assert "with `eval_strategy: no`" in found.message
    assert found.fix.startswith("add eval_strategy: steps")
    assert _mine(_lint(_dump({**TRAIN, "val_size": 0.1, "eval_steps": 100, "eval_strategy": "steps"}))) == []


def test_chat_configs_get_the_model_loading_rows_only():
    text = _dump({**CHAT, "quantization_type": "nf4", "vllm_maxlen": 8192, "lora_rank": 16})
    found = _mine(_lint(text, "0.9.5", "chat"))
    assert [d.message.split(":")[0] for d in found] == ["`quantization_type", "`vllm_maxlen"]
    vllm = _dump({**CHAT, "infer_backend": "vllm", "vllm_maxlen": 8192})
    assert _mine(_lint(vllm, "0.9.5", "chat")) == []


def test_the_old_evaluation_strategy_name_counts_where_transformers_accepts_it():
    # transformers 4.45-4.50 read `evaluation_strategy`; the message names the strategy in effect
    text = _dump({**TRAIN, "evaluation_strategy": "epoch", "eval_steps": 100, "val_size": 0.1})
    options = LintOptions(
        llamafactory_version="0.9.2", transformers_version="4.49.0", count_datasets=False, memory=False
    )
    (found,) = _mine(lint_file("cfg.yaml", options, text=text))
    assert "with `eval_strategy: epoch`" in found.message


def test_a_bound_of_an_option_without_effect_is_not_checked(tmp_path):
    """lora_dropout: 1.5 stops a LoRA run (nn.Dropout), and freeze tuning never builds the dropout: LLaMA-Factory
    trains (the differential accept/reject test's lora-dropout-big+freeze-ok), and LF316 says the value does nothing."""
    path = tmp_path / "cfg.yaml"
    options = LintOptions(count_datasets=False, workdir=tmp_path, llamafactory_version="0.9.5",
                          transformers_version="4.57.1")  # fmt: skip
    for method, expected in (("lora", {"LF105"}), ("freeze", {"LF316"})):
        path.write_text(yaml.safe_dump({**TRAIN, "finetuning_type": method, "lora_dropout": 1.5}))
        found = {d.code for d in lint_file(path, options).diagnostics} & {"LF105", "LF316"}
        assert found == expected, method
