"""How a Megatron launch splits the processes: tensor, pipeline, context and expert parallel sizes, and the
data-parallel size left for the data.

``read_layout`` is the one place a config's layout is read, for the step plan (megatron_steps.py), the layout
rules (LF265-LF268) and the memory estimate. Megatron-Core derives the data-parallel size the same way under both
engines (``parallel_state.initialize_model_parallel``, megatron-core 0.15.0-0.16.1)::

    data_parallel_size = world_size // (tensor x pipeline x context)

Expert parallelism does not reduce it: the experts are split over ``expert_tensor x expert x pipeline`` ranks
and every data-parallel rank still reads its own micro-batches.

* ``USE_MCA=1``: mcore_adapter's arguments (alibaba/ROLL ``mcore_adapter/src/mcore_adapter/training_args.py``,
  ``DistributingParallelArguments``, commit 8eb27cc) default every size to None: ``McaModelConfig.update_with_args``
  fills an unset size from the checkpoint's ``mca_config.json`` when the model folder has one, else from
  megatron-core's ``ModelParallelConfig`` default, 1 (``expert_tensor_parallel_size``: the tensor size).
* ``USE_MEGATRON_BRIDGE=1``: ``MegatronBridgeArguments`` (LLaMA-Factory main ff6d4d12e,
  ``hparams/megatron_bridge_args.py``) default to 1. (``extra_config`` could override the model's sizes after
  LLaMA-Factory's own checks, ``config_builder.py::_apply_extra_overrides``; lf-lint does not model that.)
"""

from __future__ import annotations

import json
import os

from .launch import Launch
from .records import Record

SIZES = ("tensor_model_parallel_size", "pipeline_model_parallel_size", "context_parallel_size",
         "expert_model_parallel_size")  # fmt: skip
SHORT = {"tensor_model_parallel_size": "TP", "pipeline_model_parallel_size": "PP", "context_parallel_size": "CP",
         "expert_model_parallel_size": "EP", "expert_tensor_parallel_size": "ETP",
         "virtual_pipeline_model_parallel_size": "VPP"}  # fmt: skip
ENGINES = {"mca": "McaTrainer", "megatron_bridge": "megatron-bridge"}


class ParallelLayout(Record):
    """The parallel layout of a Megatron run, as Megatron-Core will initialise it."""

    engine: str  # "mca" (mcore_adapter's McaTrainer) or "megatron_bridge"
    world_size: int
    world_source: str  # how the launch was given (Launch.describe)
    tensor: int
    pipeline: int
    context: int
    expert: int
    expert_tensor: int
    virtual_pipeline: int | None
    sequence_parallel: bool
    data_parallel: int | None  # None: the world is not a multiple of tensor x pipeline x context
    expert_data_parallel: int | None
    derivation: str  # how data_parallel was derived, in words
    defaulted: tuple[str, ...] = ()  # sizes the config leaves unset (see ``sources``)
    invalid: tuple[str, ...] = ()  # sizes set to something other than a whole number >= 1 (taken as 1)
    sources: str = ""  # where unset sizes come from
    # read for the memory estimate (issue 16 part 2); the step plan does not use them
    distributed_optimizer: bool = False
    grads_in_fp32: bool = False  # gradient buffers and their reduction in fp32
    recompute_granularity: str | None = None
    recompute_method: str | None = None
    recompute_num_layers: int | None = None
    account_for_embedding: bool = False  # the embedding counts as a layer in the pipeline split
    account_for_loss: bool = False

    @property
    def model_parallel(self) -> int:
        return self.tensor * self.pipeline * self.context

    @property
    def trainer(self) -> str:
        return ENGINES[self.engine]

    def describe(self) -> str:
        """e.g. "TP 1 x PP 4 x CP 1 (EP 2): data-parallel size 2"."""
        vpp = f", VPP {self.virtual_pipeline}" if self.virtual_pipeline else ""
        sp = ", sequence parallel" if self.sequence_parallel else ""
        dp = self.data_parallel if self.data_parallel is not None else "none (the world is not a multiple)"
        return (f"TP {self.tensor} x PP {self.pipeline} x CP {self.context} (EP {self.expert}{vpp}{sp}) on "
                f"{self.world_size} processes: data-parallel size {dp}")  # fmt: skip

    def to_dict(self) -> dict:
        """The ``plan.parallel_layout`` object of the JSON output."""
        return {
            "engine": self.engine,
            "trainer": self.trainer,
            "world_size": self.world_size,
            "tensor_model_parallel_size": self.tensor,
            "pipeline_model_parallel_size": self.pipeline,
            "context_parallel_size": self.context,
            "expert_model_parallel_size": self.expert,
            "expert_tensor_parallel_size": self.expert_tensor,
            "virtual_pipeline_model_parallel_size": self.virtual_pipeline,
            "sequence_parallel": self.sequence_parallel,
            "data_parallel_size": self.data_parallel,
            "expert_data_parallel_size": self.expert_data_parallel,
            "derivation": self.derivation,
            "defaulted": list(self.defaulted),
            "use_distributed_optimizer": self.distributed_optimizer,
            "recompute_granularity": self.recompute_granularity,
        }


def _whole(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else None


def read_layout(args, engine: str, launch: Launch, workdir: str | os.PathLike) -> ParallelLayout | None:
    """The layout of a config read with ``engine``'s arguments ("mca", "megatron_bridge"); None for others."""
    if engine not in ENGINES:
        return None
    checkpoint, sources = ({}, "")
    if engine == "mca":
        checkpoint = _mca_checkpoint_config(args.get("model_name_or_path"), workdir)
        sources = ("unset sizes are taken from the checkpoint's mca_config.json" if checkpoint else
                   "unset sizes are megatron-core's defaults (1; expert tensor parallel: the tensor size)")  # fmt: skip
    values, defaulted, invalid = {}, [], []
    for name in (*SIZES, "expert_tensor_parallel_size", "virtual_pipeline_model_parallel_size"):
        raw = args.get(name) if name in args._table else None
        if raw is None:
            raw = checkpoint.get(name)
            if name in SIZES and not args.is_set(name):
                defaulted.append(name)
        if raw is not None and _whole(raw) is None:
            invalid.append(name)
            raw = None
        values[name] = raw
    tp, pp, cp, ep = (values[name] or 1 for name in SIZES)
    etp = values["expert_tensor_parallel_size"] or tp
    world = launch.world_size
    model = tp * pp * cp
    dp = world // model if world % model == 0 else None
    edp = world // (etp * ep * pp) if world % (etp * ep * pp) == 0 else None
    how = f"{world} processes / (TP {tp} x PP {pp} x CP {cp})"
    derivation = f"{how} = {dp}" if dp is not None else f"{how}: not a whole number"
    if ep > 1:
        derivation += f"; EP {ep} splits the experts over those ranks and does not reduce it"
    sequence_parallel = bool(args.get("sequence_parallel"))
    bf16 = bool(args.get("bf16"))
    return ParallelLayout(
        engine=engine, world_size=world, world_source=launch.describe(), tensor=tp, pipeline=pp, context=cp,
        expert=ep, expert_tensor=etp, virtual_pipeline=values["virtual_pipeline_model_parallel_size"],
        sequence_parallel=sequence_parallel, data_parallel=dp, expert_data_parallel=edp, derivation=derivation,
        defaulted=tuple(defaulted), invalid=tuple(invalid), sources=sources,
        distributed_optimizer=bool(args.get("use_distributed_optimizer")),
        # mcore_adapter TrainingArguments.__post_init__: bf16 turns on accumulate_allreduce_grads_in_fp32;
        # config_builder.py::_create_base_config: DistributedDataParallelConfig(grad_reduce_in_fp32=True)
        grads_in_fp32=engine == "megatron_bridge" or bf16 or bool(args.get("accumulate_allreduce_grads_in_fp32")),
        recompute_granularity=args.get("recompute_granularity"), recompute_method=args.get("recompute_method"),
        recompute_num_layers=_whole(args.get("recompute_num_layers")),
        account_for_embedding=bool(args.get("account_for_embedding_in_pipeline_split")),
        account_for_loss=bool(args.get("account_for_loss_in_pipeline_split")),
    )  # fmt: skip


def _mca_checkpoint_config(model: object, workdir: str | os.PathLike) -> dict:
    """The parallel sizes an mcore_adapter checkpoint folder records (``mca_config.json``), when it is local."""
    if not isinstance(model, str) or not model:
        return {}
    from pathlib import Path

    path = Path(workdir, os.path.expanduser(model), "mca_config.json")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
