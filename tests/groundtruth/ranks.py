"""What the multi-process memory probes (deepspeed_probe.py, fsdp_probe.py) share: starting one process per rank,
and collectives that work in place.

Only the standard library is imported at module level; torch is imported by the functions that need it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys


def run_ranks(script: str, case: dict, env: dict | None = None, timeout: int = 900) -> list[dict]:
    """Run ``script --rank CASE`` once per rank of ``case["world"]`` (gloo on this machine); each prints its result as
    the last line of its stdout."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    world = str(case["world"])
    procs = []
    for rank in range(case["world"]):
        rank_env = dict(os.environ, **(env or {}), MASTER_ADDR="127.0.0.1", MASTER_PORT=port, RANK=str(rank),
                        LOCAL_RANK=str(rank), WORLD_SIZE=world, LOCAL_WORLD_SIZE=world)  # fmt: skip
        procs.append(subprocess.Popen([sys.executable, script, "--rank", json.dumps(case)], env=rank_env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))  # fmt: skip
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=timeout)
        if proc.returncode:
            raise RuntimeError(f"rank failed ({proc.returncode}): {err[-3000:]}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def collectives_in_place() -> dict:
    """Make the all-gathers and reduce-scatters FSDP and DeepSpeed call work as NCCL does, in the callers' own buffers.

    Gloo copies through temporaries of its own, and its work objects keep tensors a while after the call returns,
    so that what a trace counts varies from run to run. Each collective is done instead with an all_reduce through
    a buffer kept for the run (one per size and dtype). The buffers are returned: they are allocated in the first
    step, and a probe subtracts them from every figure it measures after that."""
    import torch
    import torch.distributed as dist

    scratch: dict = {}
    all_reduce = dist.all_reduce

    class Done:
        def wait(self, *args, **kwargs):
            return True

        def is_completed(self):
            return True

    def buffer(numel: int, dtype):
        if (numel, dtype) not in scratch:
            scratch[numel, dtype] = torch.empty(numel, dtype=dtype)
        return scratch[numel, dtype]

    def gathered(shard, total: int, group):
        work = buffer(total, shard.dtype)
        work.zero_()
        work.chunk(dist.get_world_size(group))[dist.get_rank(group)].copy_(shard.reshape(-1))
        all_reduce(work, group=group)
        return work

    def all_gather_into_tensor(output_tensor, input_tensor, group=None, async_op=False):
        output_tensor.view(-1).copy_(gathered(input_tensor, output_tensor.numel(), group))
        return Done() if async_op else None

    def all_gather(tensor_list, tensor, group=None, async_op=False):  # FSDP1's path for CPU tensors
        work = gathered(tensor, sum(t.numel() for t in tensor_list), group)
        for chunk, part in zip(tensor_list, work.split([t.numel() for t in tensor_list])):
            chunk.view(-1).copy_(part)
        return Done() if async_op else None

    def reduce_scatter_tensor(output, input, op=dist.ReduceOp.SUM, group=None, async_op=False):
        work = buffer(input.numel(), input.dtype)
        work.copy_(input.reshape(-1))
        all_reduce(work, op=op, group=group)
        output.view(-1).copy_(work.chunk(dist.get_world_size(group))[dist.get_rank(group)])
        return Done() if async_op else None

    for module in (dist, dist.distributed_c10d):
        module.all_gather_into_tensor, module.reduce_scatter_tensor = all_gather_into_tensor, reduce_scatter_tensor
    dist.all_gather, dist.reduce_scatter_single = all_gather, reduce_scatter_tensor
    return scratch


def held(scratch: dict) -> int:
    """Bytes of the in-place collectives' buffers."""
    return sum(t.numel() * t.element_size() for t in scratch.values())
