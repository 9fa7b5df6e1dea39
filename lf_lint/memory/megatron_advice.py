"""What makes a Megatron launch fit: the changes LF601 proposes and the layouts ``lf-lint suggest`` lists.

Every proposal keeps the world and the examples per optimizer step (McaTrainer: b x GA x data-parallel size;
megatron-bridge: LLaMA-Factory's global batch, megatron_steps.bridge_global_batch), raising
``gradient_accumulation_steps`` where a layout leaves fewer data-parallel ranks, and passes the checks Megatron-Core
and LLaMA-Factory make at start-up (LF265: the sizes divide the processes, sequence parallelism needs TP; LF266:
TP divides the attention heads and the key/value heads divide or are divided by it, PP the layers, EP the
experts; LF267: the micro-batches split the global batch, an interleaved pipeline gets a multiple of PP). Under
tensor parallelism a proposal turns on sequence parallelism, which Megatron-Core requires for MoE layers.
"""

from __future__ import annotations

from typing import NamedTuple

from .estimate import GIB, estimate
from .llamafactory import batch_and_accumulation

# how much a change costs the run besides memory: none, a smaller micro-batch, recomputation, another layout
# (communication, a deeper pipeline; with recomputation), another training method
FREE, SMALLER_BATCH, RECOMPUTE, PARALLEL, PARALLEL_RECOMPUTE, METHOD = range(6)


class Proposal(NamedTuple):
    change: str  # in YAML terms
    overrides: dict
    cost: int
    layout: str  # the parallel layout it gives, in words


class Evaluated(NamedTuple):
    proposal: Proposal
    need_gib: float
    fits: bool


def examples_per_step(args, layout) -> int:
    """Examples per optimizer step over all data-parallel ranks."""
    b, ga = batch_and_accumulation(args)
    if layout.engine == "megatron_bridge":
        from ..megatron_steps import bridge_global_batch

        return bridge_global_batch(b, ga, layout.world_size, layout.model_parallel * layout.expert)
    return b * ga * (layout.data_parallel or 1)


def accumulation_for(layout, sizes: dict, batch: int, examples: int) -> int | None:
    """``gradient_accumulation_steps`` that keeps ``examples`` per step with micro-batch ``batch`` under ``sizes``
    (None when none does)."""
    world = layout.world_size
    model = sizes["tensor"] * sizes["pipeline"] * sizes["context"]
    if world % model:
        return None
    dp = world // model
    if layout.engine == "megatron_bridge":
        parallel = model * sizes["expert"]
        ga, rest = divmod(examples * parallel, batch * world)
        if rest or ga < 1 or examples % (batch * dp) or max(batch * ga * world // parallel, batch) != examples:
            return None
        return ga
    ga, rest = divmod(examples, batch * dp)
    return ga if not rest and ga >= 1 else None


def layout_problem(shape, layout, sizes: dict, microbatches: int, seq_len: int) -> str | None:
    """Why Megatron-Core or LLaMA-Factory would refuse ``sizes`` (LF265-LF267), or None."""
    tp, pp, cp, ep = sizes["tensor"], sizes["pipeline"], sizes["context"], sizes["expert"]
    etp = layout.expert_tensor if layout.expert_tensor != layout.tensor else tp  # one the config sets stays
    world, vpp = layout.world_size, layout.virtual_pipeline
    layers = shape.layers + int(layout.account_for_embedding) + int(layout.account_for_loss)
    checks = [
        (shape.heads % tp == 0, "TP must divide the attention heads"),
        (shape.kv_heads % tp == 0 or tp % shape.kv_heads == 0, "TP and the key/value heads must divide one another"),
        (layers % pp == 0, "PP must divide the layers"),
        (not (vpp and pp > 1) or ((layers // pp) % vpp == 0 and microbatches % pp == 0),
         "the virtual pipeline needs a multiple of PP micro-batches"),
        (ep == 1 or (shape.moe is not None and shape.moe.experts % ep == 0), "EP must divide the experts"),
        (world % (tp * pp * cp) == 0 and world % (etp * ep * pp) == 0, "the sizes must divide the processes"),
        (layout.engine != "megatron_bridge" or world % (tp * pp * cp * ep) == 0, "LF263: TP x PP x CP x EP"),
        (layout.engine != "megatron_bridge" or cp == 1 or seq_len % (2 * cp) == 0, "cutoff_len and 2 x CP"),
    ]  # fmt: skip
    return next((why for ok, why in checks if not ok), None)


def _sizes(layout) -> dict:
    return {"tensor": layout.tensor, "pipeline": layout.pipeline, "context": layout.context, "expert": layout.expert}


def _words(sizes: dict, sp: bool) -> str:
    text = f"TP {sizes['tensor']}{' (SP)' if sp else ''} x PP {sizes['pipeline']} x CP {sizes['context']}"
    return text + (f", EP {sizes['expert']}" if sizes["expert"] > 1 else "")


def _yaml(overrides: dict) -> str:
    items = [f"{k}: {str(v).lower() if isinstance(v, bool) else v}" for k, v in overrides.items()]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


KEYS = {"tensor": "tensor_model_parallel_size", "pipeline": "pipeline_model_parallel_size",
        "context": "context_parallel_size", "expert": "expert_model_parallel_size"}  # fmt: skip


def proposals(args, layout, shape, seq_len: int, layouts_only: bool = False) -> list[Proposal]:
    """Changes to try, each valid and keeping the examples per step: a smaller micro-batch, the distributed
    optimizer, sequence parallelism, full recompute, the other layouts of the world (``_layouts``), each also with
    the distributed optimizer and full recompute; megatron-bridge's LoRA for full tuning."""
    b, ga = batch_and_accumulation(args)
    examples, sizes = examples_per_step(args, layout), _sizes(layout)
    bridge = layout.engine == "megatron_bridge"
    sp = layout.sequence_parallel or (not bridge and layout.tensor > 1 and layout.expert > 1)
    free: dict = {}
    if not layout.distributed_optimizer and (layout.data_parallel or 1) * layout.context > 1:
        free["use_distributed_optimizer"] = True
    if layout.tensor > 1 and not sp:
        free["sequence_parallel"] = True
    recompute = {}
    if layout.recompute_granularity != "full":  # mcore_adapter fills in uniform, 1; megatron-core needs them
        recompute = {"recompute_granularity": "full"}
        if bridge or layout.recompute_method or layout.recompute_num_layers:
            recompute.update(recompute_method="uniform", recompute_num_layers=1)
    out: list[Proposal] = []
    here = _words(sizes, sp or "sequence_parallel" in free)
    if not layouts_only:
        divisors = [d for d in range(1, b) if (b * ga) % d == 0]
        for smaller in sorted({divisors[-1], 1}, reverse=True) if divisors else []:
            change = {"per_device_train_batch_size": smaller, "gradient_accumulation_steps": b * ga // smaller}
            out.append(Proposal(_yaml(change) + " (the same examples per step)", change, SMALLER_BATCH, here))
        for key, value in free.items():
            out.append(Proposal(_yaml({key: value}), {key: value}, FREE, here))
        if recompute:
            out.append(Proposal(_yaml(recompute) + " (recompute every layer in backward)", recompute, RECOMPUTE, here))
        if free and recompute:
            both = {**free, **recompute}
            out.append(Proposal(_yaml(both), both, RECOMPUTE, here))
        if bridge and str(args.get("finetuning_type") or "lora") == "full":
            out.append(Proposal("finetuning_type: lora (megatron-bridge trains LoRA adapters only)",
                                {"finetuning_type": "lora"}, METHOD, here))  # fmt: skip
    extras = [{}] + ([{**free, **recompute}] if free or recompute else [])
    for new in _layouts(layout, shape, seq_len):
        ga_new = accumulation_for(layout, new, b, examples)
        if not ga_new or layout_problem(shape, layout, new, _micro(layout, new, b, ga_new, examples), seq_len):
            continue
        change = {KEYS[name]: new[name] for name in KEYS if new[name] != sizes[name]}
        on_sp = new["tensor"] > 1
        if on_sp != layout.sequence_parallel:  # on with TP (MoE layers need it), off without (LF265)
            change["sequence_parallel"] = on_sp
        if ga_new != ga:
            change["gradient_accumulation_steps"] = ga_new
        for extra in extras:
            combined = {**change, **{k: v for k, v in extra.items() if k not in change and k != "sequence_parallel"}}
            if extra and combined == change:
                continue
            text = _yaml(combined) + (f" (the same {examples} examples per step)" if ga_new != ga else "")
            out.append(Proposal(text, combined, PARALLEL_RECOMPUTE if extra else PARALLEL, _words(new, on_sp)))
    return out


def _layouts(layout, shape, seq_len: int) -> list[dict]:
    """Other TP x PP x CP (x EP) layouts of the same world, the least model parallelism first; CP only for long
    sequences, EP only for MoE models."""
    world = layout.world_size
    powers = [n for n in (1, 2, 4, 8, 16) if world % n == 0]
    contexts = [c for c in powers if c <= 4] if seq_len >= 8192 or layout.context > 1 else [1]
    experts = [e for e in powers if shape.moe is not None and shape.moe.experts % e == 0] or [1]
    found = []
    for tp in (t for t in powers if t <= 8):
        for pp in powers:
            for cp in contexts:
                for ep in experts:
                    sizes = {"tensor": tp, "pipeline": pp, "context": cp, "expert": ep}
                    if sizes != _sizes(layout) and world % (tp * pp * cp) == 0:
                        found.append(sizes)
    return sorted(found, key=lambda z: (z["tensor"] * z["pipeline"] * z["context"], z["expert"]))


def _micro(layout, sizes: dict, batch: int, ga: int, examples: int) -> int:
    """Micro-batches per step on a data-parallel rank under ``sizes``."""
    if layout.engine != "megatron_bridge":
        return ga
    dp = layout.world_size // (sizes["tensor"] * sizes["pipeline"] * sizes["context"])
    return max(1, examples // (batch * dp))


def evaluate(report, candidates: list[Proposal], gpu) -> list[Evaluated]:
    from .advice import margin

    safe = gpu.memory_gib * (1 - margin(report.inputs))
    out = []
    for proposal in candidates:
        try:
            need = estimate(report.variant(proposal.overrides)).device / GIB
        except ValueError:  # the variant's layout leaves no data-parallel size
            continue
        out.append(Evaluated(proposal, need, need <= safe))
    return out


def megatron_remedies(report, gpu) -> list:
    """LF601's changes for a Megatron launch: the cheapest that fit first (a free change, then a smaller
    micro-batch, recomputation, another layout, LoRA), at most three, and at most one of each cost."""
    from .advice import Remedy

    shape, args = report.model.shape, report.variant.args
    layout = report.variant.layout()
    seq_len = report.inputs.seq_len
    candidates = proposals(args, layout, shape, seq_len)
    eval_batch = args.per_device_eval_batch_size
    if report.inputs.eval_logits and layout.engine == "mca" and isinstance(eval_batch, int) and eval_batch > 1:
        for smaller in sorted({max(1, eval_batch // 2), 1}, reverse=True):  # the eval batch's logits
            change = {"per_device_eval_batch_size": smaller}
            here = _words(_sizes(layout), layout.sequence_parallel)
            candidates.insert(0, Proposal(_yaml(change), change, FREE, here))
    fitting = [e for e in evaluate(report, candidates, gpu) if e.fits]
    fitting.sort(key=lambda e: e.proposal.cost)  # stable: within a cost, the least model parallelism first
    chosen, costs = [], set()
    for e in fitting:
        if e.proposal.cost not in costs:
            chosen.append(Remedy(e.proposal.change, e.need_gib))
            costs.add(e.proposal.cost)
    return chosen[:3]


def layout_choices(report, gpu, limit: int = 6) -> list[Evaluated]:
    """``lf-lint suggest``'s layouts: the larger TP/PP/EP/CP layouts (alone and with the distributed optimizer and
    full recompute) at the config's micro-batch, fitting ones first, the cheapest first."""
    layout = report.variant.layout()
    found = evaluate(report, proposals(report.variant.args, layout, report.model.shape, report.inputs.seq_len,
                                       layouts_only=True), gpu)  # fmt: skip
    found.sort(key=lambda e: (not e.fits, e.proposal.cost))  # stable: the least model parallelism first
    return found[:limit]
