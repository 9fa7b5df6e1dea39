"""What one GPU holds while the model loads, before DeepSpeed or FSDP takes it over.

LLaMA-Factory 0.9.2-0.9.5 loads the whole model onto every process's GPU (``hparams/parser.py::get_train_args``
sets ``device_map`` to the local device; ``model/patcher.py`` keeps it with ``low_cpu_mem_usage``) unless DeepSpeed
ZeRO-3 is on or transformers' ``is_fsdp_enabled()`` holds (launch.py, ``fsdp_loads_on_cpu``). It then casts the
trainable parameters to fp32 there, one at a time (``model/adapter.py::init_adapter``; not with ``pure_bf16``,
BAdam or ZeRO-3 without quantization). Only then does the training framework shrink that:

* DeepSpeed ZeRO-0/1/2 casts the module back to bf16 or fp16 (``runtime/engine.py::_configure_distributed_model``,
  0.14-0.16.9), one parameter at a time. Until then the GPU holds 4 bytes per trainable parameter and 2 per frozen
  one, and each cast has one parameter in both dtypes: the peak adds 2 bytes per element of the largest trainable
  tensor (the embedding or output head in full tuning).
* FSDP (``fsdp:`` without ``cpu_ram_efficient_loading``) wraps one unit after another (torch FSDP1, accelerate
  1.11): the unit's parameters are copied into one flat tensor, which is sharded (a copy of 1/w of it) before the
  originals and the whole flat tensor go. The first unit, on top of the whole model, adds (1 + 1/w) of its size
  (with one process FSDP falls back to NO_SHARD: the flat tensor alone, 1 x the unit).

With plain data parallelism (or one GPU) the loaded model is what training keeps, so loading is never the peak;
neither with ZeRO-3 (``zero.Init`` partitions the weights as they are created) nor with FSDP's
cpu_ram_efficient_loading (rank 0 loads on the CPU, FSDP moves one unit at a time to the GPU).
Measured on CPU, every allocation traced: tests/groundtruth/deepspeed_probe.py (the cast and DeepSpeed's cast back)
and fsdp_probe.py (LLaMA-Factory's own loading under FSDP).
"""

from __future__ import annotations


def cast_back_peak(loaded: float, largest_cast: int) -> float:
    """DeepSpeed ZeRO-0/1/2: ``loaded`` bytes on the GPU after LLaMA-Factory's fp32 cast, ``largest_cast`` elements of
    the largest tensor cast (to fp32, and back)."""
    return loaded + 2.0 * largest_cast


def fsdp_wrap_peak(loaded: float, units: list[float], world: int) -> float:
    """FSDP: ``loaded`` bytes on the GPU when wrapping begins, ``units`` the bytes of each wrapped unit in the order
    FSDP wraps them (the decoder layers; the root, what remains, last)."""
    held = peak = loaded
    for unit in units:
        # one process: FSDP falls back to NO_SHARD, which keeps the flat tensor whole (no shard copy)
        peak = max(peak, held + (unit * (1 + 1 / world) if world > 1 else unit))
        held -= unit * (1 - 1 / world) if world > 1 else 0.0
    return peak
