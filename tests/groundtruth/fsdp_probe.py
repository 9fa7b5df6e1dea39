"""Trace every allocation of real LLaMA-Factory training steps under FSDP, on CPU.

Run with a ground-truth env's python:
    fsdp_probe.py CASES.json RESULTS.json
Each case ({"id", "world", "vocab", "layers", "args": {...LLaMA-Factory train args...}}) starts ``world`` processes
(gloo) that call LLaMA-Factory's ``run_exp`` on a small Llama with ``fsdp`` in the arguments, as a user's YAML has
it: LLaMA-Factory loads the model, the Trainer and accelerate wrap it in FSDP (bf16 mixed precision, fp32 sharded
parameters), create the optimizer and run two optimizer steps. torch.profiler records each allocation and free; the
result is, per rank, what is live when the second step begins, and the peaks of its forward/backward and of its
optimizer step.

Accelerate admits FSDP only on an accelerator. Two gates are opened, nothing else is changed: the distributed type
is set to FSDP where accelerate would have chosen MULTI_CPU, and FSDP gets ``device_id=cpu`` (accelerate passes
``cpu:<rank>``, which FSDP's CPU path does not accept). ``sync_module_states`` is off (it broadcasts from a GPU).
Gloo also copies through temporary buffers where NCCL works in place; the test allows for that.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ranks
import smoke_run

MODEL = {"hidden_size": 512, "intermediate_size": 1024, "num_attention_heads": 8, "num_key_value_heads": 8,
         "max_position_embeddings": 256, "tie_word_embeddings": False}  # fmt: skip
STEPS = 2


def train_args(case: dict) -> dict:
    """The LLaMA-Factory arguments of a case, as a user's YAML would have them (paths left out)."""
    return {"stage": "sft", "do_train": True, "finetuning_type": "full", "template": "default", "dataset": "tiny_alpaca",
            "cutoff_len": 16, "per_device_train_batch_size": 1, "gradient_accumulation_steps": 1, "max_steps": 10,
            "bf16": True, "fsdp": "full_shard auto_wrap",
            "fsdp_config": {"transformer_layer_cls_to_wrap": ["LlamaDecoderLayer"], "sync_module_states": False},
            **case["args"]}  # fmt: skip


def model_config(case: dict) -> dict:
    return dict(MODEL, vocab_size=case["vocab"], num_hidden_layers=case["layers"], model_type="llama")


class _Stop(Exception):
    """Raised after the last measured step: saving a sharded model on CPU is not what is measured."""


def _patch_for_cpu() -> dict:
    import accelerate.state as state
    import torch
    from accelerate.utils import DistributedType
    from torch.distributed.fsdp import FullyShardedDataParallel

    accelerator_init = state.AcceleratorState.__init__

    def init(self, *args, fsdp_plugin=None, **kwargs):
        accelerator_init(self, *args, fsdp_plugin=fsdp_plugin, **kwargs)
        if fsdp_plugin is not None and self.distributed_type == DistributedType.MULTI_CPU:
            self.distributed_type = DistributedType.FSDP  # what accelerate/state.py sets on a GPU
            if self._mixed_precision != "no":
                fsdp_plugin.set_mixed_precision(self._mixed_precision)
            self.fsdp_plugin = fsdp_plugin
            state.PartialState._shared_state["distributed_type"] = DistributedType.FSDP

    state.AcceleratorState.__init__ = init
    fsdp_init = FullyShardedDataParallel.__init__

    def wrap(self, module, *args, **kwargs):
        if kwargs.get("device_id") is not None and torch.device(kwargs["device_id"]).type == "cpu":
            kwargs["device_id"] = torch.device("cpu")
        fsdp_init(self, module, *args, **kwargs)

    FullyShardedDataParallel.__init__ = wrap

    return ranks.collectives_in_place()


def _place_as_on_a_gpu() -> None:
    """On a GPU every loaded tensor is an allocation of its own; on the CPU transformers' tensors share the storage
    safetensors read them into, freed only with the last of them. Before LLaMA-Factory's ``init_adapter`` (its fp32
    cast) each is copied, so that the trace frees them one by one as a GPU does; a "load" mark follows, from which
    the loading peak is measured."""
    import llamafactory.model.loader as loader
    from torch.profiler import record_function

    init_adapter = loader.init_adapter

    def placed(config, model, *args, **kwargs):
        for param in model.parameters():
            param.data = param.data.clone()
        gc.collect()
        with record_function("load"):
            pass
        return init_adapter(config, model, *args, **kwargs)

    loader.init_adapter = placed


def run_rank(case: dict) -> dict:
    with tempfile.TemporaryDirectory(prefix="lf-lint-fsdp-") as work:
        return _measure_rank(case, Path(work))


def _measure_rank(case: dict, work: Path) -> dict:
    smoke_run._setdefault_env(work)
    import torch
    from torch.profiler import ProfilerActivity, profile, record_function
    from transformers import LlamaConfig, LlamaForCausalLM, TrainerCallback

    model_dir = work / "model"
    smoke_run.build_tokenizer(model_dir)
    config = LlamaConfig(**{k: v for k, v in model_config(case).items() if k != "model_type"}, eos_token_id=0,
                         pad_token_id=1, bos_token_id=None)  # fmt: skip
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.config.torch_dtype = torch.bfloat16
    params = sum(p.numel() for p in model.parameters())
    model.save_pretrained(str(model_dir))
    del model
    smoke_run.build_dataset(work / "data", 64)
    from llamafactory.train.tuner import run_exp

    scratch = _patch_for_cpu()
    _place_as_on_a_gpu()

    class Phases(TrainerCallback):
        """Marks each step's forward/backward and its optimizer step in the profile."""

        span = None

        def _enter(self, name: str) -> None:
            gc.collect()  # tensors held in reference cycles (gloo's finished work) go now, not at random times
            torch.distributed.barrier()  # gloo's asynchronous work done, on both ranks
            self.span = record_function(name)
            self.span.__enter__()

        def on_step_begin(self, args, state, control, **kwargs):
            self._enter(f"fb.{state.global_step}")

        def on_pre_optimizer_step(self, args, state, control, **kwargs):
            self.span.__exit__(None, None, None)
            self._enter(f"step.{state.global_step}")

        def on_optimizer_step(self, args, state, control, **kwargs):
            self.span.__exit__(None, None, None)

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step >= STEPS:
                raise _Stop()

    args = {**train_args(case), "model_name_or_path": str(model_dir), "dataset_dir": str(work / "data"),
            "output_dir": str(work / "out"), "use_cpu": True, "report_to": "none", "save_strategy": "no",
            "logging_steps": 100, "ddp_timeout": 600}  # fmt: skip
    gc.disable()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        try:
            run_exp(args=args, callbacks=[Phases()])
        except _Stop:
            pass
    events = sorted(prof.profiler.kineto_results.events(), key=lambda e: e.start_ns())
    last = STEPS - 1
    spans = {e.name(): (e.start_ns(), e.end_ns()) for e in events if e.name() in (f"fb.{last}", f"step.{last}")}
    peaks = dict.fromkeys(spans, 0)
    # from the loaded model to the first step: LLaMA-Factory's fp32 cast, FSDP's wrapping, the optimizer's creation
    loading = (
        next(e.start_ns() for e in events if e.name() == "load"),
        min(e.start_ns() for e in events if e.name() == "fb.0"),
    )
    live = at_start = load_peak = 0
    for event in events:
        if event.name() != "[memory]":
            continue
        if loading[0] <= event.start_ns() < loading[1]:
            load_peak = max(load_peak, live + event.nbytes())
        if event.start_ns() < spans[f"fb.{last}"][0]:
            at_start = live + event.nbytes()
        live += event.nbytes()
        for name, (start, end) in spans.items():
            if start <= event.start_ns() <= end:
                peaks[name] = max(peaks[name], live)
    scratch = ranks.held(scratch)
    return {"params": params, "kept": at_start - scratch, "backward_peak": peaks[f"fb.{last}"] - scratch,
            "step_peak": peaks[f"step.{last}"] - scratch, "load_peak": load_peak}  # fmt: skip


def run_case(case: dict) -> list[dict]:
    return ranks.run_ranks(__file__, case, {"OMP_NUM_THREADS": "1"})


def main(argv: list[str]) -> int:
    if argv[0] == "--rank":
        real_stdout = os.fdopen(os.dup(1), "w")
        os.dup2(2, 1)  # LLaMA-Factory and the Trainer print: keep stdout for the one JSON line
        real_stdout.write(json.dumps(run_rank(json.loads(argv[1]))) + "\n")
        real_stdout.flush()
        return 0
    cases = json.loads(Path(argv[0]).read_text())
    results = [dict(case, ranks=run_case(case)) for case in cases]
    Path(argv[1]).write_text(json.dumps({"model": MODEL, "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
