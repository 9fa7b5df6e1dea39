"""Step plans of LLaMA-Factory's Megatron and Ray launches (lf_lint/megatron_steps.py, lf_lint/parallel_layout.py).

Nothing here can run without GPUs, so the expected numbers are the formulas read from the source at the recorded
commits, written out again independently below (``mca_expected``, ``bridge_expected``), and worked cases of
LLaMA-Factory's own examples (examples/megatron/qwen3_moe_full.yaml and examples/megatron_bridge/llama3_sft.yaml at
main ff6d4d12e, their shapes copied here):

* mcore_adapter's McaTrainer (alibaba/ROLL 8eb27cc, trainer/trainer.py): data-parallel size = world / (TP x PP x
  CP); batches per rank = (N // b) // dp (drop_last always); updates per epoch = max(batches // GA, 1); total =
  max_steps or ceil(epochs x updates); total batch = b x GA x dp; warmup = transformers' get_warmup_steps.
* megatron-bridge (LLaMA-Factory config_builder.py::_compute_train_schedule): global batch = max(b x GA x world //
  (TP x PP x CP x EP), b); iterations = max_steps or max(1, ceil(N / global batch x epochs)); warmup = warmup_steps
  when positive, else min(int(iterations x warmup_ratio), iterations) (on transformers 5 a set warmup_ratio is
  warmup_steps); megatron-core then needs global batch % (b x dp) == 0.
"""

from __future__ import annotations

import contextlib
import io
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from megatron_examples import QWEN3_MOE

from lf_lint import LfLintError, lint, predict_steps
from lf_lint.api import lint_result
from lf_lint.cli import main
from lf_lint.plan import Plan

MAIN = {"llamafactory_version": "0.9.6.dev0", "transformers_version": "5.8.0"}
MAIN_457 = {"llamafactory_version": "0.9.6.dev0", "transformers_version": "4.57.1"}
BASE = {"model_name_or_path": "Qwen/Qwen3-0.6B", "stage": "sft", "do_train": True, "dataset": "d", "template": "qwen3",
        "output_dir": "o", "bf16": True, "finetuning_type": "full", "save_steps": 100, "logging_steps": 1}  # fmt: skip
MCA, BRIDGE = {"USE_MCA": "1"}, {"USE_MEGATRON_BRIDGE": "1"}

# examples/megatron_bridge/llama3_sft.yaml (main ff6d4d12e)
LLAMA3_BRIDGE = {"model_name_or_path": "meta-llama/Llama-3.2-1B-Instruct", "stage": "sft", "do_train": True,
                 "finetuning_type": "lora", "dataset": "alpaca_en_demo", "template": "llama3", "cutoff_len": 2048,
                 "preprocessing_num_workers": 8, "output_dir": "saves/mbridge/llama3_sft", "logging_steps": 1,
                 "overwrite_output_dir": True, "per_device_train_batch_size": 1, "gradient_accumulation_steps": 1,
                 "num_train_epochs": 3, "max_steps": 1000, "save_steps": 3000, "learning_rate": 5.0e-6,
                 "lr_scheduler_type": "cosine", "warmup_steps": 10, "adam_beta1": 0.9, "adam_beta2": 0.999,
                 "weight_decay": 0.0, "max_grad_norm": 1.0, "bf16": True, "tensor_model_parallel_size": 1,
                 "pipeline_model_parallel_size": 1, "context_parallel_size": 1, "expert_model_parallel_size": 1,
                 "sequence_parallel": False, "use_distributed_optimizer": True, "overlap_param_gather": True,
                 "overlap_grad_reduce": True, "mixed_precision": "bf16_mixed", "use_packed_sequences": False,
                 "export_hf_on_finish": False}  # fmt: skip
ALPACA_ROWS = 999  # data/alpaca_en_demo.json at main ff6d4d12e


@pytest.fixture
def project(tmp_path):
    """A launch directory with an alpaca dataset of the demo's size (every row valid)."""
    data = tmp_path / "data"
    data.mkdir()
    rows = [{"instruction": f"question {i}", "input": "", "output": f"answer {i}"} for i in range(ALPACA_ROWS)]
    (data / "alpaca_en_demo.json").write_text(json.dumps(rows))
    info = {"alpaca_en_demo": {"file_name": "alpaca_en_demo.json"},
            "half_empty": {"file_name": "half_empty.json"}}  # fmt: skip
    half = [{"instruction": f"q {i}", "input": "", "output": None if i % 2 else "a"} for i in range(100)]
    (data / "half_empty.json").write_text(json.dumps(half))
    (data / "dataset_info.json").write_text(json.dumps(info))
    return tmp_path


def plan_for(config: dict, env: dict, gpus: int, n: int | None = None, versions: dict = MAIN, **kw) -> Plan:
    """The plan, also when it has no steps (``problem`` says why)."""
    return lint_result(config, num_gpus=gpus, env=env, num_examples=n, command="train", **versions, **kw).plan


def codes(config: dict, env: dict, gpus: int | None = 8, versions: dict = MAIN, **kw) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for d in lint(config, num_gpus=gpus, env=env, **versions, **kw):
        found.setdefault(d.code, []).append(f"{d.severity.value}: {d.message}")
    return found


def cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = main(list(argv))
    return code, out.getvalue()


# --- the arithmetic, written out independently -------------------------------------------------------------------


def hf_warmup(total: int, warmup_steps: float, warmup_ratio: float | None, tf5: bool) -> int:
    """transformers' TrainingArguments.get_warmup_steps (4.x: warmup_steps wins; 5.x: warmup_ratio replaces it and
    a value below 1 is a ratio, rounded up)."""
    if tf5:
        w = warmup_ratio if warmup_ratio is not None else warmup_steps
        return int(w) if w >= 1 else math.ceil(total * w)
    return int(warmup_steps) if warmup_steps > 0 else math.ceil(total * (warmup_ratio or 0))


def mca_expected(n, b, ga, world, tp, pp, cp, epochs, max_steps, warmup_steps, warmup_ratio, tf5):
    dp = world // (tp * pp * cp)
    batches = (n // b) // dp
    per_epoch = max(batches // ga, 1)
    total = max_steps if max_steps > 0 else math.ceil(epochs * per_epoch)
    printed = (max_steps // per_epoch + (max_steps % per_epoch > 0)) if max_steps > 0 else math.ceil(epochs)
    return {"data_parallel_size": dp, "batches_per_epoch": batches, "update_steps_per_epoch": per_epoch,
            "total_steps": total, "epochs_printed": printed, "total_train_batch_size": b * ga * dp, "num_examples": n,
            "warmup_steps": hf_warmup(total, warmup_steps, warmup_ratio, tf5)}  # fmt: skip


def bridge_expected(n, b, ga, world, tp, pp, cp, ep, epochs, max_steps, warmup_steps, warmup_ratio, tf5):
    gbs = max(b * ga * world // (tp * pp * cp * ep), b)
    total = max_steps if max_steps > 0 else max(1, math.ceil(n / gbs * epochs))
    if tf5 and warmup_ratio is not None:
        warmup_steps, warmup_ratio = warmup_ratio, 0
    if warmup_steps > 0:
        warm = warmup_steps
    elif warmup_ratio:
        warm = min(int(total * warmup_ratio), total)
    else:
        warm = 0
    dp = world // (tp * pp * cp)
    return {"data_parallel_size": dp, "total_train_batch_size": gbs, "total_steps": total, "warmup_steps": warm,
            "num_examples": n, "splits": gbs % (b * dp) == 0}  # fmt: skip


layouts = st.fixed_dictionaries({"tp": st.sampled_from([1, 2, 4]), "pp": st.sampled_from([1, 2, 4]),
                                 "cp": st.sampled_from([1, 2]), "ep": st.sampled_from([1, 2, 4]),
                                 "dp": st.sampled_from([1, 2, 3, 4]), "b": st.integers(1, 8), "ga": st.integers(1, 16),
                                 "n": st.integers(0, 20000), "epochs": st.sampled_from([1, 2, 3, 0.5, 2.5]),
                                 "max_steps": st.sampled_from([-1, -1, 0, 7, 500]),
                                 "warmup": st.sampled_from([(0, None), (10, None), (0, 0.1), (0.05, None), (5, 0.2)]),
                                 "tf5": st.booleans()})  # fmt: skip


def _train_config(d: dict, **extra) -> dict:
    warmup_steps, warmup_ratio = d["warmup"]
    config = {**BASE, "per_device_train_batch_size": d["b"], "gradient_accumulation_steps": d["ga"],
              "num_train_epochs": d["epochs"], "max_steps": d["max_steps"], "tensor_model_parallel_size": d["tp"],
              "pipeline_model_parallel_size": d["pp"], "context_parallel_size": d["cp"], **extra}  # fmt: skip
    if warmup_steps:
        config["warmup_steps"] = warmup_steps
    if warmup_ratio is not None:
        config["warmup_ratio"] = warmup_ratio
    return config


@settings(max_examples=150, deadline=None)
@given(layouts)
def test_mcore_adapter_plans_follow_mctrainer(d):
    """USE_MCA=1: random layouts against McaTrainer._prepare_train_loop's arithmetic."""
    if not d["tf5"] and isinstance(d["warmup"][0], float):
        d["warmup"] = (0, None)  # transformers 4 refuses a float warmup_steps (LF307)
    world = d["tp"] * d["pp"] * d["cp"] * d["dp"]
    if world % (d["tp"] * d["ep"] * d["pp"]):  # megatron-core also needs expert tensor x expert x pipeline to divide
        d["ep"] = 1
    config = _train_config(d, expert_model_parallel_size=d["ep"])
    plan = plan_for(config, MCA, world, d["n"], MAIN if d["tf5"] else MAIN_457)
    want = mca_expected(d["n"], d["b"], d["ga"], world, d["tp"], d["pp"], d["cp"], d["epochs"], d["max_steps"],
                        *d["warmup"], d["tf5"])  # fmt: skip
    got = plan.to_dict()
    assert plan.trainer == "McaTrainer" and got["parallel_layout"]["engine"] == "mca"
    assert {k: got[k] for k in want} == want
    assert got["parallel_layout"]["derivation"].startswith(
        f"{world} processes / (TP {d['tp']} x PP {d['pp']} x CP {d['cp']})"
    )
    # the loop: every step is an update, unless the loader is too short (then the run hangs or divides by zero)
    if want["batches_per_epoch"] >= d["ga"] and want["total_steps"] > 0:
        assert plan.steps.optimizer_updates == want["total_steps"]


@settings(max_examples=150, deadline=None)
@given(layouts)
def test_megatron_bridge_plans_follow_compute_train_schedule(d):
    """USE_MEGATRON_BRIDGE=1: random layouts against _compute_train_schedule and megatron-core's micro-batches."""
    if not d["tf5"] and isinstance(d["warmup"][0], float):
        d["warmup"] = (0, None)
    world = d["tp"] * d["pp"] * d["cp"] * d["ep"] * d["dp"]  # LLaMA-Factory's check: the product with EP divides
    config = _train_config(d, expert_model_parallel_size=d["ep"])
    plan = plan_for(config, BRIDGE, world, d["n"], MAIN if d["tf5"] else MAIN_457)
    want = bridge_expected(d["n"], d["b"], d["ga"], world, d["tp"], d["pp"], d["cp"], d["ep"], d["epochs"],
                           d["max_steps"], *d["warmup"], d["tf5"])  # fmt: skip
    assert plan.trainer == "megatron-bridge"
    if not want.pop("splits"):
        assert plan.steps is None and "is not divisible by micro batch size" in plan.problem
        return
    got = plan.to_dict()
    assert {k: got[k] for k in want} == want
    assert got["gradient_accumulation_steps"] == d["ga"]
    assert got["checkpoint_steps"][-1] == want["total_steps"]  # megatron-bridge saves once more after training


@pytest.mark.parametrize("world, tp, pp, ep", [(8, 3, 1, 1), (8, 1, 3, 1), (6, 2, 1, 4)])
def test_layouts_megatron_core_refuses_have_no_plan(world, tp, pp, ep):
    config = {**BASE, "tensor_model_parallel_size": tp, "pipeline_model_parallel_size": pp,
              "expert_model_parallel_size": ep}  # fmt: skip
    found = codes(config, MCA, world, datasets=False)
    assert any("is not divisible by" in m and m.startswith("error") for m in found["LF265"])
    plan = plan_for(config, MCA, world, 1000)
    if world % (tp * pp):
        assert plan.steps is None and f"world_size ({world}) is not divisible by {tp * pp}" in plan.problem


# --- LLaMA-Factory's own examples --------------------------------------------------------------------------------


def test_qwen3_moe_example_under_mcore_adapter(project):
    """examples/megatron/qwen3_moe_full.yaml says "global batchsize = (8 // 2 // 4) * 8 = 8"; McaTrainer's batch is
    b x GA x data-parallel size = 1 x 8 x (8 / (TP 1 x PP 4 x CP 1)) = 16: EP does not reduce the data-parallel
    ranks."""
    plan = plan_for(QWEN3_MOE, MCA, 8, workdir=project)
    s = plan.steps
    assert (plan.trainer, plan.data_parallel_size, s.total_train_batch_size) == ("McaTrainer", 2, 16)
    assert (s.num_examples, s.batches_per_epoch, s.update_steps_per_epoch, s.total_steps) == (999, 499, 62, 124)
    assert s.checkpoint_steps == (100, 124) and s.epochs_printed == 2
    # the cyclic iterator: a loop epoch makes 499 // 8 + 1 = 63 steps, so step 124 is step 61 of the second
    assert (s.updates_per_epoch_in_loop, s.epochs_trained) == (63, round(1 + 61 / 62, 6))
    layout = plan.to_dict()["parallel_layout"]
    assert (layout["pipeline_model_parallel_size"], layout["expert_model_parallel_size"]) == (4, 2)
    assert layout["use_distributed_optimizer"] and layout["recompute_granularity"] == "full"
    assert "McaTrainer (alibaba/ROLL 8eb27cc)" in plan.to_dict()["derived_from"]


def test_qwen3_moe_example_explained_on_the_command_line(project):
    path = project / "qwen3_moe_full.yaml"
    path.write_text("\n".join(f"{k}: {json.dumps(v)}" for k, v in QWEN3_MOE.items()) + "\n")
    code, text = cli(str(path), "--workdir", str(project), "--num-gpus", "8", "--env", "USE_MCA=1",
                     "--llamafactory-version", "0.9.6.dev0", "--explain")  # fmt: skip
    assert code == 0, text
    assert "Step plan (McaTrainer" in text and "Data-parallel size = 2 (8 processes / (TP 1 x PP 4 x CP 1) = 2" in text
    assert "Total train batch size (w. parallel, distributed & accumulation) = 16" in text
    assert "Total train batch size = 1 x 8 x 2 (data-parallel size) = 16" in text
    assert "dividing by EP as well (1 x 8 x 8 // (TP x PP x CP x EP = 8) = 8) undercounts it" in text
    assert "not run here" in text and "Traceback" not in text
    code, text = cli(str(path), "--workdir", str(project), "--num-gpus", "8", "--env", "USE_MCA=1",
                     "--llamafactory-version", "0.9.6.dev0", "--format", "json")  # fmt: skip
    plan = json.loads(text)["files"][0]["plan"]
    assert (plan["trainer"], plan["data_parallel_size"], plan["total_train_batch_size"]) == ("McaTrainer", 2, 16)
    assert plan["parallel_layout"]["derivation"].startswith("8 processes / (TP 1 x PP 4 x CP 1) = 2")


def test_llama3_example_under_megatron_bridge(project):
    plan = plan_for(LLAMA3_BRIDGE, BRIDGE, 8, workdir=project)
    s = plan.steps
    assert (plan.trainer, plan.data_parallel_size, s.total_train_batch_size, s.total_steps) == (
        "megatron-bridge",
        8,
        8,
        1000,
    )
    assert (s.warmup_steps, s.checkpoint_steps, s.eval_steps_at, s.num_examples) == (10, (1000,), (), 999)
    assert s.epochs_trained == round(1000 * 8 / 999, 6)
    code, text = cli(*_cli_args(project, LLAMA3_BRIDGE, "USE_MEGATRON_BRIDGE=1"), "--explain")
    assert code == 0, text
    assert (
        "Step plan (megatron-bridge" in text and "Global batch size = 8" in text and "Train iterations = 1,000" in text
    )
    assert "Global batch = max(1 x 1 x 8 // (TP x PP x CP x EP = 1), 1) = 8" in text


def _cli_args(project, config: dict, env: str) -> list[str]:
    path = project / "cfg.yaml"
    path.write_text("\n".join(f"{k}: {json.dumps(v)}" for k, v in config.items()) + "\n")
    return [
        str(path),
        "--workdir",
        str(project),
        "--num-gpus",
        "8",
        "--env",
        env,
        "--llamafactory-version",
        "0.9.6.dev0",
    ]


def test_megatron_bridge_counts_converted_rows_not_processed_examples(project):
    """_load_aligned_datasets: no processor runs, so rows without a response still count (the Trainer drops them);
    val_size splits the converted rows."""
    config = {**LLAMA3_BRIDGE, "dataset": "half_empty", "max_steps": -1, "num_train_epochs": 1}
    bridge = plan_for(config, BRIDGE, 8, workdir=project)
    plain = predict_steps({**BASE, "dataset": "half_empty"}, num_gpus=8, workdir=project, **MAIN)
    assert (bridge.num_examples, plain.num_examples) == (100, 50)
    assert bridge.steps.total_steps == math.ceil(100 / 8)
    split = plan_for({**config, "val_size": 0.1}, BRIDGE, 8, workdir=project)
    assert (split.num_examples, split.num_eval_examples) == (90, 10)
    assert split.steps.eval_steps_at == (math.ceil(90 / 8),)  # eval_steps unset: every 100, and once at the end


def test_megatron_bridge_expert_parallelism_shrinks_the_accumulation():
    config = {**LLAMA3_BRIDGE, "gradient_accumulation_steps": 4, "expert_model_parallel_size": 2,
              "model_name_or_path": "Qwen/Qwen3-30B-A3B", "max_steps": -1}  # fmt: skip
    plan = plan_for(config, BRIDGE, 8, 1000)
    assert (plan.steps.total_train_batch_size, plan.steps.total_steps) == (16, math.ceil(1000 / 16 * 3))
    (note,) = codes(config, BRIDGE, num_examples=1000)["LF267"]
    assert note.startswith("info") and "gives 2 micro-batches per iteration" in note
    refused = codes({**config, "gradient_accumulation_steps": 3}, BRIDGE, num_examples=1000)["LF267"]
    assert any("global batch size (12) is not divisible by micro batch size (1) times data parallel size (8)" in m
               for m in refused)  # fmt: skip


def test_megatron_bridge_extra_config_overrides_the_schedule():
    config = {**LLAMA3_BRIDGE, "extra_config": '{"train.train_iters": 5, "logger.log_interval": 1, '
              '"checkpoint.save_interval": 2}'}  # fmt: skip
    s = plan_for(config, BRIDGE, 8, 1000).steps
    assert (s.total_steps, s.checkpoint_steps, s.logging_steps) == (5, (2, 4, 5), 1)


def test_megatron_bridge_reads_intervals_and_warmup_literally():
    config = {**LLAMA3_BRIDGE, "max_steps": 40, "save_steps": 0.25, "logging_steps": 0.1, "warmup_steps": 0,
              "warmup_ratio": 0.1}  # fmt: skip
    plan = plan_for(config, BRIDGE, 8, 1000)
    assert plan.steps.checkpoint_steps == tuple(range(1, 41))  # step % 0.25 == 0 holds at every step
    assert plan.steps.warmup_steps == 0.1  # transformers 5: warmup_ratio became warmup_steps, handed over as is
    found = codes(config, BRIDGE, num_examples=1000)["LF268"]
    assert any("save_steps 0.25" in m and "at every one of the 40 iterations" in m for m in found)
    assert any("logging_steps 0.1" in m and "logs in none of the 40 iterations" in m for m in found)
    assert any("warmup of 0.1 iterations" in m for m in found)
    fixes = [d.fix for d in lint(config, num_gpus=8, env=BRIDGE, num_examples=1000, **MAIN) if d.code == "LF268"]
    assert "warmup_steps: 4 (the iterations the ratio meant)" in fixes
    old = plan_for(config, BRIDGE, 8, 1000, MAIN_457)
    assert old.steps.warmup_steps == 4  # transformers 4: min(int(40 x 0.1), 40)


# --- refusals ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "env, change, code, message",
    [(BRIDGE, {"sequence_parallel": True}, "LF265", "`sequence_parallel` requires `tensor_model_parallel_size` > 1."),
     (MCA, {"virtual_pipeline_model_parallel_size": 2}, "LF265", "should be greater than 1 with interleaved schedule"),
     (BRIDGE, {"tensor_model_parallel_size": 0}, "LF265", "`tensor_model_parallel_size` must be >= 1."),
     (BRIDGE, {"context_parallel_size": 2, "cutoff_len": 1026}, "LF265", "divisible by 2 * context parallel size"),
     (MCA, {"expert_model_parallel_size": 4, "pipeline_model_parallel_size": 4}, "LF265",
      "not divisible by expert_tensor_model_pipeline_parallel size (16)"),
     (MCA, {"pipeline_model_parallel_size": 8}, "LF266", "num_layers should be divisible by pipeline_model_parallel_size"),
     (MCA, {"model_name_or_path": "Qwen/Qwen2-VL-7B-Instruct", "tensor_model_parallel_size": 8}, "LF266",
      "num_attention_heads (28) must be a multiple of tensor_model_parallel_size (8)"),
     (MCA, {"expert_model_parallel_size": 2}, "LF266", "num_moe_experts must be non None to use expert-parallel"),
     (MCA, {"pipeline_model_parallel_size": 2, "virtual_pipeline_model_parallel_size": 4, "gradient_accumulation_steps": 3},
      "LF267", "The remainder of M (the total micro-batches)"),
     (MCA, {"pipeline_model_parallel_size": 4, "virtual_pipeline_model_parallel_size": 7, "gradient_accumulation_steps": 2},
      "LF267", "should range in [PP=4 , M=2]"),
     (MCA, {"lr_scheduler_type": "polynomial"}, "LF268", "lr_scheduler_type polynomial is not supported"),
     (MCA, {"lr_scheduler_type": "warmup_stable_decay"}, "LF268", "wsd_decay_steps is required for WSD"),
     (BRIDGE, {"recompute_granularity": "full"}, "LF265", 'recompute_method must be "block" or "uniform"'),
     (BRIDGE, {"recompute_granularity": "full", "recompute_method": "uniform"}, "LF265",
      "recompute_num_layers must be between 1 and num_layers_per_pipeline_rank"),
     (BRIDGE, {"model_name_or_path": "Qwen/Qwen3-30B-A3B", "tensor_model_parallel_size": 2}, "LF266",
      "MoE and tensor parallelismare enabled without also enabling sequence parallelism"),
     (MCA, {"model_name_or_path": "Qwen/Qwen3-30B-A3B", "tensor_model_parallel_size": 2}, "LF266",
      "MoE and tensor parallelismare enabled without also enabling sequence parallelism")],
)  # fmt: skip
def test_refused_layouts_are_errors_that_name_the_rule(env, change, code, message):
    found = codes({**BASE, **change}, env, datasets=False)
    assert any(message in m and m.startswith("error") for m in found.get(code, [])), found


def test_what_mcore_adapter_mends_itself_is_not_refused():
    """mcore_adapter's McaModelConfig turns sequence parallelism off without tensor parallelism and on with tensor and
    expert parallelism, and fills in full recompute's method and layers (ROLL 8eb27cc), before megatron-core checks."""
    moe = {**BASE, "model_name_or_path": "Qwen/Qwen3-30B-A3B"}
    for change in ({"sequence_parallel": True}, {"recompute_granularity": "full"},
                   {"tensor_model_parallel_size": 2, "expert_model_parallel_size": 2}):  # fmt: skip
        found = codes({**moe, **change}, MCA, datasets=False)
        assert not [m for c in ("LF265", "LF266") for m in found.get(c, []) if m.startswith("error")], (change, found)


def test_experts_that_expert_parallelism_cannot_share():
    config = {**BASE, "model_name_or_path": "Qwen/Qwen3-30B-A3B", "expert_model_parallel_size": 3}
    (message,) = codes(config, MCA, gpus=6, datasets=False)["LF266"]
    assert "has 128 experts, which 3 expert-parallel ranks cannot share" in message and message.startswith("error")
    assert "LF266" not in codes({**config, "expert_model_parallel_size": 2}, MCA, gpus=6, datasets=False)


def test_layers_are_read_from_a_local_config_json(tmp_path):
    model = tmp_path / "tiny"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 6,
                                                   "num_attention_heads": 4, "num_key_value_heads": 2,
                                                   "intermediate_size": 128, "vocab_size": 100}))  # fmt: skip
    config = {**BASE, "model_name_or_path": str(model), "pipeline_model_parallel_size": 4}
    (message,) = codes(config, MCA, datasets=False)["LF266"]
    assert "has 6 layers, split over 4 stages" in message
    assert "LF266" not in codes({**config, "pipeline_model_parallel_size": 2}, MCA, datasets=False)
    # the embedding counted as a layer: 6 + 1 + 1 = 8 splits over 4
    assert "LF266" not in codes({**config, "account_for_embedding_in_pipeline_split": True,
                                 "account_for_loss_in_pipeline_split": True}, MCA, datasets=False)  # fmt: skip


def test_mcore_adapter_loader_too_short_for_the_accumulation():
    config = {
        **BASE,
        "tensor_model_parallel_size": 2,
        "gradient_accumulation_steps": 8,
        "per_device_train_batch_size": 4,
    }
    short = codes(config, MCA, num_examples=100)["LF267"]  # 100 // 4 // 4 = 6 micro-batches per rank
    assert any("ZeroDivisionError" in m and "= 6 micro-batches per rank" in m for m in short)
    empty = codes(config, MCA, num_examples=12)["LF267"]  # 12 // 4 // 4 = 0
    assert any("hangs" in m for m in empty)
    plan = plan_for(config, MCA, 8, 12)
    assert plan.steps.optimizer_updates == 0 and "LF501" not in codes(config, MCA, num_examples=12)


def test_mcore_adapter_warmup_must_be_shorter_than_the_run():
    config = {**BASE, "tensor_model_parallel_size": 2, "warmup_steps": 50, "max_steps": 50}
    (message,) = codes(config, MCA, num_examples=1000)["LF268"]
    assert "lr_warmup_steps < lr_decay_steps" in message and message.startswith("error")
    assert "LF268" not in codes({**config, "warmup_steps": 49}, MCA, num_examples=1000)


def test_an_unknown_launch_makes_world_refusals_notes():
    config = {**BASE, "tensor_model_parallel_size": 2}
    found = codes(config, MCA, gpus=None, datasets=False)
    assert all(m.startswith("info") for m in found["LF265"])


# --- Ray -------------------------------------------------------------------------------------------------------------


def test_ray_workers_are_the_world():
    """USE_RAY=1: LLaMA-Factory starts ray_num_workers workers of one process each (train/tuner.py::
    _ray_training_function; WORLD_SIZE=num_workers), whatever the local process count."""
    config = {**BASE, "per_device_train_batch_size": 2, "gradient_accumulation_steps": 4, "ray_num_workers": 4}
    plan = plan_for(config, {"USE_RAY": "1"}, 8, 1000)
    assert (plan.launch.world_size, plan.data_parallel_size, plan.steps.total_train_batch_size) == (4, 4, 32)
    assert plan.launch.describe() == "4 Ray worker(s) (ray_num_workers)" and plan.to_dict()["parallel_layout"] is None
    unset = plan_for({k: v for k, v in config.items() if k != "ray_num_workers"}, {"USE_RAY": "1"}, 8, 1000)
    assert unset.launch.world_size == 1 and "ray_num_workers unset" in unset.launch.describe()
    without = plan_for(config, {}, 8, 1000)
    assert without.launch.world_size == 8  # ray_num_workers does nothing without USE_RAY


def test_ray_workers_under_megatron_bridge():
    config = {**LLAMA3_BRIDGE, "tensor_model_parallel_size": 2, "ray_num_workers": 4}
    plan = plan_for(config, {**BRIDGE, "USE_RAY": "1"}, 1, 1000)
    assert plan.to_dict()["parallel_layout"]["derivation"] == "4 processes / (TP 2 x PP 1 x CP 1) = 2"


# --- what the other outputs do with these plans ----------------------------------------------------------------------


def test_trainer_plans_keep_their_json_and_gain_the_data_parallel_size():
    plan = predict_steps(BASE, num_gpus=4, num_examples=1000, **MAIN).to_dict()
    assert (plan["data_parallel_size"], plan["parallel_layout"], plan["derived_from"]) == (4, None, None)


def test_unknown_and_streamed_examples():
    with pytest.raises(LfLintError, match="object of type 'IterableDataset' has no len"):
        predict_steps({**LLAMA3_BRIDGE, "streaming": True}, num_gpus=8, env=BRIDGE, **MAIN)
    streamed = plan_for({**BASE, "streaming": True, "max_steps": 30, "tensor_model_parallel_size": 2}, MCA, 8)
    assert (streamed.steps.num_examples, streamed.steps.total_steps) == (30 * 8 * 4, 30)
    with pytest.raises(LfLintError, match="Megatron Bridge only supports the `pt` and `sft` stages"):
        predict_steps({**LLAMA3_BRIDGE, "stage": "dpo"}, num_gpus=8, env=BRIDGE, num_examples=100, **MAIN)


def test_explain_log_reads_a_mcatrainer_block_without_crashing(tmp_path):
    """McaTrainer prints the Trainer's block with its own numbers; explain-log need not explain it, only not crash."""
    log = tmp_path / "train.log"
    log.write_text("***** Running training *****\n  Num examples = 999\n  Num Epochs = 2\n  Instantaneous batch size "
                   "per device = 1\n  Total train batch size (w. parallel, distributed & accumulation) = 16\n  Gradient "
                   "Accumulation steps = 8\n  Total optimization steps = 124\n  Number of trainable parameters = 1\n")  # fmt: skip
    code, text = cli("explain-log", str(log))
    assert code in (0, 1, 2) and "Traceback" not in text


@pytest.mark.parametrize(
    "change, processing_cutoff",
    [({"stage": "pt"}, 1025), ({"stage": "sft"}, 1025), ({"stage": "sft", "packing": True}, 1024),
     ({"stage": "sft", "sequence_packing": True}, 1025), ({"stage": "sft", "neat_packing": True}, 1024)],
)  # fmt: skip
def test_mcore_adapter_builds_its_dataset_one_token_longer(change, processing_cutoff):
    """train/mca/workflow.py: get_dataset runs with cutoff_len + 1 (after DataArguments.__post_init__ took one off
    for an explicit packing); sequence_packing turns on neat_packing, so packing."""
    from lf_lint.api import _load, _options
    from lf_lint.dataset.packed_counts import effective_cutoff
    from lf_lint.engine import make_context
    from lf_lint.megatron_steps import engine_dataset_args

    options = _options(env=MCA, **MAIN)
    resolution = options.resolution()
    ctx = make_context(_load({**BASE, "cutoff_len": 1024, **change}, options, resolution), options, resolution)
    args = engine_dataset_args(ctx.args, ctx.table.arguments)
    assert effective_cutoff(args, ctx.target) == processing_cutoff
    assert args.packing == (change.get("stage") == "pt" or any(k in change for k in ("packing", "sequence_packing",
                                                                                      "neat_packing")))  # fmt: skip
    bridge = engine_dataset_args(ctx.args, "megatron_bridge")
    assert not bridge.packing  # megatron-bridge runs no processor: nothing is packed
