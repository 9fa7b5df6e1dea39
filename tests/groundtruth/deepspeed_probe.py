"""Trace every allocation DeepSpeed's ZeRO optimizer makes during real training steps, on CPU.

Run with a ground-truth env's python and DeepSpeed on PYTHONPATH:
    deepspeed_probe.py CASES.json RESULTS.json
Each case ({"stage", "world", "accumulation", "optimizer": "foreach"|"fused", "sub_group_size"}) starts ``world``
processes (gloo) that build a small Llama, wrap it with ``deepspeed.initialize`` (bf16, the optimizer passed in
as the Hugging Face Trainer does), and run two optimizer steps. torch.profiler records each allocation and free;
the result is, per rank, the live bytes at the peak of the last step's backward passes and of its optimizer step,
and what stays between the two steps.
"""

from __future__ import annotations

import gc
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ranks

MODEL = {"hidden_size": 512, "intermediate_size": 1024, "num_hidden_layers": 4, "num_attention_heads": 8,
         "num_key_value_heads": 8, "vocab_size": 4096, "tie_word_embeddings": False}  # fmt: skip
TOKENS = 4  # so few that activations are a rounding error next to the parameters


def run_rank(case: dict) -> dict:
    import deepspeed
    import deepspeed.comm.torch as ds_torch_comm
    import torch
    from torch.profiler import ProfilerActivity, profile, record_function
    from transformers import LlamaConfig, LlamaForCausalLM

    ds_torch_comm.build_shm_op = lambda: None  # an inference all-reduce kernel, compiled on first use: not needed
    scratch = ranks.collectives_in_place() if case.get("in_place") else {}
    if case.get("fp16"):  # DeepSpeed's CPU accelerator refuses fp16; torch's CPU kernels run it
        from deepspeed.accelerator import get_accelerator

        accelerator, dtypes = get_accelerator(), get_accelerator().supported_dtypes()
        accelerator.is_fp16_supported = lambda: True
        accelerator.supported_dtypes = lambda: [*dtypes, torch.float16]
    deepspeed.init_distributed(dist_backend="gloo")
    torch.manual_seed(0)
    accumulation = case["accumulation"]
    config = {
        "train_micro_batch_size_per_gpu": 1,
        "gradient_accumulation_steps": accumulation,
        # fp16 with a loss scale of 1: the dynamic scale's first 2^16 overflows this random model and skips the steps
        **({"fp16": {"enabled": True, "initial_scale_power": 0}} if case.get("fp16") else {"bf16": {"enabled": True}}),
        "zero_allow_untested_optimizer": True,
        "steps_per_print": 10**9,
        "zero_optimization": {"stage": case["stage"], "overlap_comm": False, "reduce_scatter": False,
                              "reduce_bucket_size": 200_000, "allgather_bucket_size": 200_000,
                              "contiguous_gradients": True, "sub_group_size": case.get("sub_group_size", 1e9)},
    }  # fmt: skip
    config["zero_optimization"].update(case.get("zero", {}))
    ids = torch.randint(0, MODEL["vocab_size"], (1, TOKENS))
    optimizer_kwargs = {"foreach": {"foreach": True}, "fused": {"fused": True}}[case["optimizer"]]
    gc.disable()  # Python's collector frees tensors held in reference cycles only when it runs: collect at fixed points
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        model = LlamaForCausalLM(
            LlamaConfig(**dict(MODEL, num_hidden_layers=case.get("layers", MODEL["num_hidden_layers"])))
        )
        params = sum(p.numel() for p in model.parameters())  # before ZeRO-3 partitions them away
        if case.get("load"):
            # loaded in bf16, then LLaMA-Factory's cast of the trainable parameters to fp32 (0.9.5
            # model/adapter.py::_setup_full_tuning, one parameter at a time), which DeepSpeed casts back
            model.to(torch.bfloat16)
            gc.collect()
            with record_function("load"):
                for param in model.parameters():
                    param.data = param.data.to(torch.float32)
            engine_class = deepspeed.runtime.engine.DeepSpeedEngine
            configure = engine_class._configure_distributed_model

            def marked(self, module):
                with record_function("load"):
                    configure(self, module)

            engine_class._configure_distributed_model = marked
        if case.get("checkpointing"):  # as LLaMA-Factory enables it (reentrant)
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": True})
            model.enable_input_require_grads()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, **optimizer_kwargs)
        engine, _, _, _ = deepspeed.initialize(model=model, optimizer=optimizer, config=config)
        for step in range(2):
            for micro in range(accumulation):
                loss = engine(input_ids=ids, labels=ids).loss
                gc.collect()
                with record_function(f"backward.{step}.{micro}"):
                    engine.backward(loss)
                with record_function(f"step.{step}.{micro}"):
                    engine.step()
                with record_function(f"settled.{step}.{micro}"):
                    torch.distributed.barrier()  # gloo's asynchronous work done, and its buffers freed
                    gc.collect()
    events = sorted(prof.profiler.kineto_results.events(), key=lambda e: e.start_ns())
    spans = {e.name(): (e.start_ns(), e.end_ns()) for e in events if e.name().startswith(("backward.", "step."))}
    loading = [(e.start_ns(), e.end_ns()) for e in events if e.name() == "load"]
    load_peak = 0
    # what stays once the first step is done: the baseline of the second step's peaks
    settled = next((e.start_ns(), e.end_ns()) for e in events if e.name() == f"settled.0.{accumulation - 1}")
    peaks = dict.fromkeys(spans, 0)
    live = after_step = 0
    for event in events:
        if event.name() != "[memory]":
            continue
        live += event.nbytes()
        for name, (start, end) in spans.items():
            if start <= event.start_ns() <= end:
                peaks[name] = max(peaks[name], live)
        if any(start <= event.start_ns() <= end for start, end in loading):
            load_peak = max(load_peak, live)
        if event.start_ns() <= settled[1]:
            after_step = live
    return {
        "scratch": ranks.held(scratch),  # allocated in the first step
        "params": params,
        "backward_peak": max(peaks[f"backward.1.{m}"] for m in range(accumulation)),
        "step_peak": peaks[f"step.1.{accumulation - 1}"],
        "after_step": after_step,  # what stays from one step to the next
        "load_peak": load_peak,  # the fp32 cast and DeepSpeed's cast back (cases with "load")
        "dtypes": sorted({str(p.dtype) for p in engine.module.parameters()}),
    }


def run_case(case: dict) -> list[dict]:
    return ranks.run_ranks(__file__, case, {"DS_ACCELERATOR": "cpu"}, timeout=600)


def main(argv: list[str]) -> int:
    if argv[0] == "--rank":
        print(json.dumps(run_rank(json.loads(argv[1]))))
        return 0
    with open(argv[0]) as f:
        cases = json.load(f)
    results = [dict(case, ranks=run_case(case)) for case in cases]
    with open(argv[1], "w") as f:
        json.dump({"model": MODEL, "results": results}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
