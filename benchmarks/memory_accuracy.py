#!/usr/bin/env python
"""How close lf-lint's memory estimate comes to published, measured peak memory.

Each row of benchmarks/data/memory_measurements.csv is a fine-tuning run somebody measured and
published (the ``citation`` column says where: file, commit and line, or issue). The script
describes each run to the estimator in its own framework's terms (LitGPT and torchtune train in
pure bf16 with chunked losses; the Hugging Face Trainer with autocast; LLaMA-Factory rows go
through lf-lint's own config mapping), compares the estimate with the number in the source's
measurement basis (allocated, reserved, or what nvidia-smi shows) and prints, per source and
overall, the median and worst relative error, plus the fit/out-of-memory verdict on rows that
record one.

Rows whose sequence length is only a cap (padding to the longest sample of short data) are
kept apart: the estimate assumes the longest batch, so there it must be an upper bound of the
measurement (reported as "bound held").

    python benchmarks/memory_accuracy.py [--rows]
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from error_table import print_error_table  # noqa: E402

from lf_lint.memory.advice import margin  # noqa: E402
from lf_lint.memory.deepspeed import largest_parameter, zero3_gathered, zero_layout  # noqa: E402
from lf_lint.memory.estimate import GIB, MemoryInputs, estimate  # noqa: E402
from lf_lint.memory.fsdp import fsdp_layout  # noqa: E402
from lf_lint.memory.gpus import find_gpu, gpu_with_memory  # noqa: E402
from lf_lint.memory.llamafactory import NF4_DOUBLE_QUANT, NF4_PLAIN, trainable_parameters  # noqa: E402
from lf_lint.memory.model import catalogue, count_params, find_model, shape_from_config  # noqa: E402
from lf_lint.versions import Target  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"

# torchtune README memory table (rows are cumulative, see the citations): the techniques each row runs with
TORCHTUNE = {
    "tt-01": set(), "tt-02": {"compile"}, "tt-03": {"compile", "chunked-ce"}, "tt-04": {"compile", "chunked-ce", "ac"},
    "tt-05": {"compile", "chunked-ce", "ac", "optimizer-in-backward"},
    "tt-06": {"compile", "chunked-ce", "ac", "optimizer-in-backward", "offload-activations", "adamw-8bit"},
    "tt-07": {"compile", "chunked-ce", "ac", "offload-activations"}, "tt-08": {"compile", "chunked-ce", "ac", "offload-activations"},
}  # fmt: skip
# bitsandbytes 4-bit runs measure above the packed weights (quantization state, dequantization buffers): calibrated on
# LitGPT's Llama-2-7B LoRA/QLoRA pair (lg-06/lg-07, same settings otherwise), checked on the other QLoRA rows
BNB_OVERHEAD = 0.35
TARGET = Target("0.9.5", "4.57.1")  # transformers <5: MoE experts are nn.Linear, as in every measured run

# what a source's "lora_targets" column means in Hugging Face module names
TARGETS = {
    "q,v": "q_proj,v_proj", "q_proj,v_proj": "q_proj,v_proj", "q,v (fused qkv)": "all-attention-qkv",
    "all-linear": "all", "q,k,v,o,gate,up,down": "all", "c_attn,c_proj,w1,w2": "all",
    "q,k,v,o,mlp,lm_head": "all", "q_proj,v_proj,output_proj": "q_proj,v_proj,o_proj,gate_proj,up_proj,down_proj",
}  # fmt: skip


def load_rows() -> list[dict]:
    with open(DATA / "memory_measurements.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def model_info(model_id: str):
    extra = json.loads((DATA / "memory_models.json").read_text())
    for entry in extra["models"]:
        if model_id in entry["hub_ids"]:
            shape = shape_from_config(entry["config"])
            return shape, entry["params"] or count_params(shape)
    found = find_model(model_id, ROOT)
    if found is None or found.confidence == "low" or model_id.lower() not in catalogue():
        return None, None
    return found.shape, found.params


def gpu_for(name: str):
    return gpu_with_memory(float(name)) if re.fullmatch(r"[\d.]+", name) else find_gpu(name)


def lora_count(shape, rank: int, targets: str, method: str) -> int:
    target = TARGETS.get(targets, targets)
    if target == "all-attention-qkv":
        target = "q_proj,k_proj,v_proj,qkv_proj,query_key_value"
    args = SimpleNamespace(finetuning_type="lora", lora_rank=rank, lora_target=target, use_dora=False, additional_target=None,
                           resize_vocab=False)  # fmt: skip
    return trainable_parameters(args, shape, count_params(shape), TARGET)[0] if method in ("lora", "qlora") else 0


def inputs_for(row: dict, shape, params: int) -> MemoryInputs:
    """The run as the estimator sees it, in the terms of the framework that measured it."""
    framework, method = row["framework"], row["method"]
    world = int(row["gpus"] or 1)
    zero = int(row["zero_stage"] or 0)
    notes = row["notes"]
    fsdp = zero == 3 and (framework in ("litgpt", "torchtune") or "FSDP" in notes)
    zero_stage = 0 if fsdp else zero
    b, seq = int(row["micro_batch"]), int(row["seq_len"])
    # LitGPT checkpoints only under FSDP; a source that does not say is taken to use the Trainer's checkpointing
    checkpointing = row["grad_ckpt"] in ("true", "unknown") or (framework == "litgpt" and world > 1)
    quant = int(row["quant_bits"] or 0)
    rank = int(row["lora_rank"] or 8)
    trainable = params if method == "full" else lora_count(shape, rank, row["lora_targets"], method)
    if framework == "hf-bf16" and method == "lora" and "Chat" not in row["model_id"]:
        trainable += (
            2 * shape.vocab * shape.hidden
        )  # Qwen's finetune.py trains wte and lm_head of base models ("LoRA (emb)")
    linear_share = 1 - shape.vocab * shape.hidden * (1 if shape.tied else 2) / params
    quantized = int((params - trainable) * linear_share) if quant else 0
    quant_bytes = (
        (NF4_PLAIN if "no double quant" in notes or "bnb.nf4;" in notes else NF4_DOUBLE_QUANT) if quant == 4 else 1.0
    )
    if "Int4" in row["model_id"]:  # GPTQ checkpoints: 4 bits + a scale and zero per 128 weights
        quant_bytes = (4 + 32 / 128) / 8
    pure = row["precision"] == "pure_bf16"
    lora = method in ("lora", "qlora")
    values = dict(shape=shape, total_params=params + (trainable if lora else 0), trainable_params=trainable, frozen_bytes=2.0,
                  quantized_params=quantized, quantized_bytes=quant_bytes, world_size=world, zero_stage=zero_stage, fsdp=fsdp,
                  sequences=b, seq_len=seq, checkpointing=checkpointing, attention="fa2" if row["attention"] == "fa2" else "sdpa",
                  grouped_kv=row["attention"] == "fa2" or row["packing"] == "yes", padding_mask=row["packing"] != "yes",
                  method="lora" if lora else method)  # fmt: skip
    if framework in ("litgpt", "torchtune", "peft-harness") and pure:
        # everything bf16 (LitGPT bf16-true, torchtune dtype bf16, the PEFT harness without AMP); torch AdamW keeps
        # its states in the parameter's dtype; PEFT (not LitGPT/torchtune) keeps adapters in fp32
        adapter_bytes = 4.0 if (framework == "peft-harness" and lora) else 2.0
        # torch.optim.AdamW runs its foreach kernel (a parameter-sized temporary at each step) unless fused: torchtune fuses
        temp = 0.0 if framework == "torchtune" else adapter_bytes
        values.update(trainable_bytes=adapter_bytes, autocast_copy=0.0, grad_bytes=adapter_bytes, optimizer_bytes=2 * adapter_bytes,
                      optimizer_step_temp=temp, logits_bytes=12.0)  # fmt: skip
        if framework == "litgpt":
            values.update(logits_bytes=6.0)  # lm_head in chunks of 128 positions + chunked cross-entropy
        if "paged" in row["optimizer"].lower() or "PagedAdamW" in notes:
            values.update(offloadable_optimizer=True, optimizer_bytes=8.0)
    elif framework == "torchtune":
        values.update(
            trainable_bytes=2.0,
            autocast_copy=0.0,
            grad_bytes=2.0,
            optimizer_bytes=4.0,
            optimizer_step_temp=0.0,
            logits_bytes=12.0,
        )
    else:  # the Hugging Face Trainer with bf16/fp16 autocast, model loaded in 16 bits (no fp32 upcast outside PEFT)
        adapter_fp32 = lora and framework != "hf-bf16"  # PEFT >= 0.12 upcasts adapters; Qwen's 2023 scripts predate it
        tb = 4.0 if adapter_fp32 else 2.0
        # the Trainer's default optimizer before transformers 4.57 is the foreach adamw_torch (a parameter-sized temporary)
        values.update(trainable_bytes=tb, autocast_copy=2.0 if adapter_fp32 else 0.0, grad_bytes=tb, optimizer_bytes=2 * tb,
                      optimizer_step_temp=tb, logits_bytes=12.0, ddp_gradient_buckets=zero == 0)  # fmt: skip
        if zero in (1, 2, 3) and not fsdp:
            # the sources' DeepSpeed files: 5e8-element buckets; the Trainer's foreach AdamW steps the fp32 partition
            layout = zero_layout({"reduce_bucket_size": 5e8, "sub_group_size": 1e9}, stage=zero, world=world,
                                 trainable=trainable, largest=largest_parameter(shape, False) if method == "full" else 0,
                                 hidden=shape.hidden, accumulation=1, optimizer_temp=4.0)  # fmt: skip
            values.update(
                trainable_bytes=2.0,
                autocast_copy=0.0,
                grad_bytes=layout.grad_bytes,
                optimizer_bytes=layout.optimizer_bytes,
                bucket_bytes=layout.bucket_bytes,
                backward_bytes=layout.backward_bytes,
                step_bytes=layout.step_bytes,
                optimizer_step_temp=0.0,
            )
            if framework == "hf-bf16":
                # DeepSpeed runs without autocast: Qwen's own loss then stays in 16 bits (autocast would run the
                # cross-entropy in fp32; transformers' own causal-LM loss upcasts explicitly, so not for hf-amp)
                values["logits_bytes"] = 8.0
            if zero == 3:  # what stays gathered into backward (the sources' files keep DeepSpeed's reuse distance)
                values["backward_bytes"] += zero3_gathered(shape, {}, checkpointing=checkpointing, fused_experts=False,
                                                           layer_bytes=quant_bytes if quant else 2.0)  # fmt: skip
        if fsdp:  # accelerate's FSDP1, as for LLaMA-Factory (lf_lint/memory/fsdp.py); the PEFT recipe prefetches
            layout = fsdp_layout(shape, options=["full_shard", "auto_wrap"], config={"backward_prefetch": "backward_pre"},
                                 world=world, trainable_layers=method == "full", trainable_root=method == "full",
                                 trainable_head=method == "full", gathered_bytes=2.0, grad_bytes=tb,
                                 layer_bytes=quant_bytes if quant else None)  # fmt: skip
            values.update(unit_bytes=layout.unit_bytes, backward_bytes=layout.backward_bytes, gradients_rebuilt=True,
                          late_backward_bytes=layout.late_bytes, end_backward_bytes=layout.end_bytes,
                          ddp_gradient_buckets=False, autocast_copy=0.0)  # fmt: skip
            if "fp32" in notes:
                values.update(frozen_bytes=4.0)
    if framework == "torchtune":
        techniques = TORCHTUNE[row["id"]]
        values["checkpointing"] = "ac" in techniques
        if "chunked-ce" in techniques:
            values["logits_bytes"] = 3.0  # bf16 logits in 8 chunks, each upcast for its loss
        if "optimizer-in-backward" in techniques:
            values["grad_bytes"] = 0.0  # each gradient is applied and freed as backward produces it
        if "adamw-8bit" in techniques:
            values["optimizer_bytes"] = 2.0
        values["offload_checkpoints"] = "offload-activations" in techniques
    elif quant == 4 and "Int4" not in row["model_id"]:  # bitsandbytes, not GPTQ kernels
        values["dequant_bytes"] = BNB_OVERHEAD * quantized * quant_bytes / (world if zero == 3 else 1)
    if "'Using use_liger_kernel" in notes:
        values["logits_bytes"] = 0.0
    if row["offload"] in ("param", "optimizer+param") or "offload" in row["offload"]:
        values.update(offload_params=True, offload_optimizer=True)
    if row["offload"].startswith("optimize"):
        values["offload_optimizer"] = True
    return MemoryInputs(**values)


def llamafactory_inputs(row: dict):
    """LLaMA-Factory issue rows: the config the user posted, through lf-lint's own mapping."""
    from lf_lint.launch import Launch
    from lf_lint.loading import load_mapping
    from lf_lint.memory.inputs import build_inputs
    from lf_lint.memory.model import ModelInfo
    from lf_lint.rules.base import Context

    zero = int(row["zero_stage"] or 0)
    lora = row["method"] in ("lora", "qlora")
    config = {"model_name_or_path": row["model_id"], "stage": row["stage"] or "sft", "do_train": True, "dataset": "d", "output_dir": "o",
              "finetuning_type": "lora" if lora else row["method"], "per_device_train_batch_size": int(row["micro_batch"]),
              "cutoff_len": int(row["seq_len"]), row["precision"] if row["precision"] in ("bf16", "fp16") else "bf16": True}  # fmt: skip
    if row["lora_targets"]:
        config["lora_target"] = TARGETS.get(row["lora_targets"], row["lora_targets"])
    if row["lora_rank"]:
        config["lora_rank"] = int(row["lora_rank"])
    if int(row["quant_bits"] or 0):
        config["quantization_bit"] = int(row["quant_bits"])
    if row["packing"] == "yes":
        config["packing"] = True
    config.update(json.loads(row["lf_args"] or "{}"))  # the rest of the user's arguments
    if zero:
        # LLaMA-Factory's example DeepSpeed files had overlap_comm: true until PR #7205 (2025-03); the notes say when not
        section = {"stage": zero, "overlap_comm": "overlap_comm false" not in row["notes"], "reduce_bucket_size": 5e8}
        if "optimize" in row["offload"]:
            section["offload_optimizer"] = {"device": "cpu"}
            section["offload_param"] = {"device": "cpu"}
        config["deepspeed"] = {"zero_optimization": section}
    ctx = Context(
        load_mapping(config, TARGET), TARGET, "train", "train", ROOT, Launch(int(row["gpus"]), 1, "option", True)
    )
    ctx.options.update(count_datasets=False)
    shape, params = model_info(row["model_id"])
    if shape is None:
        return None
    deepspeed = ctx.deepspeed if zero else None
    return build_inputs(
        ctx.args, ModelInfo(row["model_id"], shape, params, "benchmark", "high"), TARGET, int(row["gpus"]), deepspeed
    )


def measured_figure(est, basis: str) -> float:
    """The estimate in the source's measurement basis."""
    smi = est.reserved + est.context  # what nvidia-smi shows: torch's reserve and the CUDA context
    return {"allocated": est.allocated, "reserved": est.reserved, "nvidia-smi": smi}.get(basis, est.reserved) / GIB


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", action="store_true", help="print every row")
    args = parser.parse_args()
    by_source: dict[str, list[float]] = {}
    bounds: list[tuple[str, bool]] = []
    verdicts: list[tuple[str, bool, str]] = []
    skipped, unmodelled = [], []
    for row in load_rows():
        shape, params = model_info(row["model_id"])
        if shape is None:
            skipped.append(f"{row['id']} ({row['model_id']}: shape unknown)")
            continue
        inputs = llamafactory_inputs(row) if row["framework"] == "llamafactory" else inputs_for(row, shape, params)
        if inputs is None:
            skipped.append(row["id"])
            continue
        est = estimate(inputs)
        gpu = gpu_for(row["gpu"]) if row["gpu"] else None
        if row["outcome"] in ("fit", "oom") and gpu is not None and not row["not_modelled"]:
            need = est.device / GIB
            strict = ("oom" if need > gpu.memory_gib else "fit") == row["outcome"]
            warned = need > gpu.memory_gib * (1 - margin(inputs))  # LF601 error or LF602 "may run out of memory"
            as_reported = warned if row["outcome"] == "oom" else need <= gpu.memory_gib
            verdicts.append((row["id"], strict, as_reported, f"{need:.1f} of {gpu.memory_gib:g} GiB"))
        if not row["measured_gib"] or row["measured_gib"] == "n/a":
            if row["not_modelled"] and gpu is not None:
                unmodelled.append(
                    f"{row['id']} ({row['outcome']}; est. {est.device / GIB:.1f} of {gpu.memory_gib:g} GiB)"
                )
            if args.rows:
                print(
                    f"{row['id']:<6} {row['source']:<26} verdict only: est. {est.device / GIB:.1f} GiB, {row['outcome']}"
                )
            continue
        measured = float(row["measured_gib"])
        mine = measured_figure(est, row["measure_basis"])
        error = (mine - measured) / measured
        if row["not_modelled"]:
            unmodelled.append(f"{row['id']} {error:+.0%}")
        elif row["length_exact"] == "yes":
            by_source.setdefault(row["source"], []).append(error)
        else:
            bounds.append((row["id"], mine >= measured * 0.97))
        if args.rows:
            print(
                f"{row['id']:<6} {row['source']:<26} measured {measured:6.1f}  estimate {mine:6.1f}  {error:+6.1%}"
                + ("" if row["length_exact"] == "yes" else "  (length is a cap)")
                + ("  (not modelled)" if row["not_modelled"] else "")
            )
    print_error_table(by_source, "all rows with exact lengths", 28)
    held = sum(ok for _, ok in bounds)
    print(
        f"length-capped rows: the estimate bounds the measurement on {held}/{len(bounds)}"
        + (f" (not: {', '.join(i for i, ok in bounds if not ok)})" if held < len(bounds) else "")
    )
    strict = sum(ok for _, ok, _, _ in verdicts)
    reported = sum(ok for _, _, ok, _ in verdicts)
    print(
        f"fit / out-of-memory verdicts: {reported}/{len(verdicts)} as lf-lint reports them (an out-of-memory run gets LF601 or "
        f"the LF602 'may run out of memory' warning; a run that fitted gets no LF601)"
        + (
            f"; wrong: {', '.join(f'{i} ({why})' for i, _, ok, why in verdicts if not ok)}"
            if reported < len(verdicts)
            else ""
        )
    )
    print(
        f"  strictly (estimate above / below the capacity): {strict}/{len(verdicts)}"
        + (
            f"; wrong: {', '.join(f'{i} ({why})' for i, ok, _, why in verdicts if not ok)}"
            if strict < len(verdicts)
            else ""
        )
    )
    if unmodelled:
        print(f"framework behaviour lf-lint does not model (see the not_modelled column): {', '.join(unmodelled)}")
    if skipped:
        print(f"skipped: {', '.join(skipped)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
