"""The step arithmetic of LLaMA-Factory's Megatron launches, one function per engine, each returning the
``StepPlan`` every renderer and rule already reads.

Nothing here can be run without GPUs: the formulas are read from the source at recorded commits (``SOURCES``) and
pinned by worked cases in tests/test_megatron_steps.py.

* ``mca_steps``: ``USE_MCA=1``, mcore_adapter's ``McaTrainer`` (alibaba/ROLL ``mcore_adapter/src/mcore_adapter/
  trainer/trainer.py`` at 8eb27cc). Its loader always drops the last partial batch and is sharded over the
  data-parallel ranks (``get_train_dataloader``, lines 180-211); ``_prepare_train_loop`` (627-671) counts
  ``floor(batches / GA)`` updates per epoch (at least 1) and a total batch of ``b x GA x data-parallel size``;
  ratios of ``logging/eval/save_steps`` resolve as in the Trainer (680-693); warmup is transformers'
  ``get_warmup_steps`` (trainer/utils.py:181). The loop (``_inner_training_loop``, 808-947) draws micro-batches
  from ``_get_train_cyclic_iterator`` (802-806), which restarts the data when it runs out, so a loop epoch makes
  ``floor(batches / GA) + 1`` steps; ``state.epoch`` divides by ``batches // GA`` (889).
* ``bridge_steps``: ``USE_MEGATRON_BRIDGE=1``, LLaMA-Factory main ff6d4d12e ``train/megatron_bridge/
  config_builder.py::_compute_train_schedule`` (396-417), ``_resolve_warmup_steps`` (52-66), ``_create_base_config``
  (save/log/eval intervals, 297-393), then megatron-bridge 0.3.1's loop (``training/train.py``: saves when
  ``step % save_interval == 0``, evaluates when ``step % eval_interval == 0``; ``training/pretrain.py``: a last
  save and a last validation after training) and megatron-core's micro-batch calculator
  (``num_microbatches_calculator.py::ConstantNumMicroBatchesCalculator``).
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

from .parallel_layout import ParallelLayout
from .steps import (
    StepError,
    StepInputs,
    StepPlan,
    _checkpoints,
    _evaluations,
    _ratio,
    _Run,
    behaviour,
    steps_passing_modulo,
    warmup,
)

SOURCES = {
    "mca": "mcore_adapter's McaTrainer (alibaba/ROLL 8eb27cc) on megatron-core 0.15-0.16",
    "megatron_bridge": "LLaMA-Factory main ff6d4d12e's megatron-bridge workflow, megatron-bridge 0.3.1, megatron-core 0.16.1",
}
MCA_STAGES = ("pt", "sft", "dpo")  # train/tuner.py::_training_function (main ff6d4d12e, 0.9.4+)
BRIDGE_STAGES = ("pt", "sft")


def engine_dataset_args(args, engine: str):
    """The data arguments each engine builds its dataset with.

    mcore_adapter (train/mca/workflow.py, main ff6d4d12e and 0.9.4-0.9.5): ``get_dataset`` runs with
    ``cutoff_len + 1`` ("dataset needs +1 then cut back due to MCA shift logic"), and ``run_sft`` turns
    ``sequence_packing`` into ``neat_packing`` (so packing). megatron-bridge (train/megatron_bridge/workflow.py::
    _load_aligned_datasets) only converts and merges the datasets: no processor runs, nothing is packed."""
    stage = args.stage
    if engine == "mca" and stage in MCA_STAGES:
        changes = {}
        if stage == "sft" and args.get("sequence_packing") and not args.get("neat_packing"):
            changes["neat_packing"] = True
        cutoff = args.cutoff_len if isinstance(args.cutoff_len, int) and not isinstance(args.cutoff_len, bool) else 2048
        explicit = bool(args.get("packing")) or bool(args.get("neat_packing"))
        after_post_init = cutoff - 1 if explicit else cutoff  # DataArguments.__post_init__
        # the count reads cutoff_len through DataArguments.__post_init__ again (packed_counts.effective_cutoff)
        changes["cutoff_len"] = after_post_init + 1 + (1 if explicit or changes.get("neat_packing") else 0)
        return args.with_values(changes)
    if engine == "megatron_bridge":
        return args.with_values({"packing": False, "neat_packing": False})
    return args


def mca_steps(inputs: StepInputs, layout: ParallelLayout, transformers: tuple) -> StepPlan:
    """McaTrainer's start-up block and loop (module docstring)."""
    rules = behaviour(transformers)
    b, ga, dp = inputs.per_device_batch, inputs.accumulation, layout.data_parallel
    if dp is None:
        raise StepError(f"megatron-core stops with: RuntimeError: world_size ({layout.world_size}) is not divisible by "
                        f"{layout.model_parallel}")  # fmt: skip
    total_batch = b * ga * dp
    max_steps = inputs.max_steps
    if inputs.num_examples is None:  # an IterableDataset has no length: max_steps drives the run
        if max_steps <= 0:
            raise StepError(f"mcore_adapter stops with: ValueError: args.max_steps must be set to a positive value if "
                            f"dataloader does not have a length, was {max_steps}")  # fmt: skip
        run = _Run(max_steps, float("nan"), (), None)
        return _plan(inputs, rules, layout, None, max_steps, max_steps, sys.maxsize, run, total_batch * max_steps)
    length = (inputs.num_examples // b) // dp  # drop_last=True, then BatchSamplerShard over dp ranks
    upe = max(length // ga, 1)
    if max_steps > 0:
        total, epochs = max_steps, max_steps // upe + int(max_steps % upe > 0)
    else:
        total, epochs = math.ceil(inputs.num_train_epochs * upe), math.ceil(inputs.num_train_epochs)
    return _plan(inputs, rules, layout, length, upe, total, epochs, _mca_loop(length, ga, total), inputs.num_examples)


def _mca_loop(length: int, ga: int, total: int) -> _Run:
    """What ``_inner_training_loop`` does: an empty loader never yields (the cyclic iterator spins: the run hangs
    before its first step); fewer batches than GA divide by ``length // GA == 0`` after the first update
    (ZeroDivisionError); otherwise each loop epoch makes ``length // GA + 1`` steps (the last one wraps around to
    the start of the data) until ``total`` steps."""
    if total <= 0 or length == 0:
        return _Run(0, 0.0, (), 0)
    per_epoch = length // ga
    if per_epoch == 0:
        return _Run(1, 0.0, (), 0)
    steps = per_epoch + 1
    last_epoch = (total - 1) // steps
    ends = tuple(steps * (i + 1) for i in range(last_epoch)) + (total,)
    return _Run(total, last_epoch + (total - last_epoch * steps) / per_epoch, ends, steps)


def _plan(inputs, rules, layout, length, upe, total, epochs, run, printed_examples) -> StepPlan:
    logging, save = _ratio(inputs.logging_steps, total), _ratio(inputs.save_steps, total)
    eval_value = inputs.eval_steps
    if inputs.eval_strategy == "steps" and not eval_value and inputs.logging_steps and inputs.logging_steps > 0:
        eval_value = inputs.logging_steps  # transformers' TrainingArguments.__post_init__
    evaluation = _ratio(eval_value, total) if eval_value is not None else 500
    return StepPlan(
        num_examples=printed_examples, world_size=layout.world_size, per_device_train_batch_size=inputs.per_device_batch,
        gradient_accumulation_steps=inputs.accumulation, total_train_batch_size=inputs.per_device_batch
        * inputs.accumulation * layout.data_parallel, batches_per_epoch=length, update_steps_per_epoch=upe,
        num_train_epochs=inputs.num_train_epochs, epochs_printed=epochs, total_steps=total,
        warmup_steps=warmup(inputs, total, rules), logging_steps=logging, eval_steps=evaluation, save_steps=save,
        checkpoint_steps=_checkpoints(inputs, rules, save, run), eval_steps_at=_evaluations(inputs, rules, evaluation, run),
        optimizer_updates=run.updates, epochs_trained=round(run.epoch_float, 6), updates_per_epoch_in_loop=run.per_epoch,
        transformers_family="mca",
    )  # fmt: skip


def bridge_extra_config(args, workdir: str | os.PathLike) -> tuple[dict, str | None]:
    """``extra_config`` as ``MegatronBridgeArguments.__post_init__`` / ``load_extra_config`` read it (main
    ff6d4d12e): a JSON object in the string, a mapping, or a JSON file; dot-paths such as ``train.train_iters``
    override the built config (``_apply_extra_overrides``). Returns (overrides, why it cannot be read)."""
    import json

    value = args.get("extra_config") if "extra_config" in args._table else None
    if value is None:
        return {}, None
    if isinstance(value, dict):
        return value, None
    if not isinstance(value, str):
        return {}, f"`extra_config` must be a JSON object or a path, not {value!r}"
    text = value.strip()
    if not text.startswith("{"):
        try:
            text = Path(workdir, os.path.expanduser(text)).read_text(encoding="utf-8")
        except (OSError, ValueError):
            return {}, f"`extra_config` file not found: {value}"
    try:
        data = json.loads(text)
    except ValueError as exc:
        return {}, f"`extra_config` is not valid JSON: {exc}"
    return (data, None) if isinstance(data, dict) else ({}, "`extra_config` must hold a JSON object")


def bridge_global_batch(b: int, ga: int, world: int, parallel: int) -> int:
    """``_compute_train_schedule``: b x GA x world // (TP x PP x CP x EP), at least b."""
    return max(b * ga * world // parallel, b)


def bridge_warmup(inputs: StepInputs, iterations: int, transformers: tuple) -> float:
    """``_resolve_warmup_steps``: ``warmup_steps`` when positive (kept even when longer than the run), else
    ``min(int(iterations x warmup_ratio), iterations)``. transformers 5 copies a set ``warmup_ratio`` into
    ``warmup_steps`` (``TrainingArguments.__post_init__``), so there the ratio itself is handed to Megatron as a
    number of iterations."""
    steps = inputs.warmup_steps
    ratio = inputs.warmup_ratio or 0.0
    if behaviour(transformers).float_warmup_steps and inputs.warmup_ratio is not None:
        steps, ratio = inputs.warmup_ratio, 0.0
    if steps > 0:
        return steps
    return min(int(iterations * ratio), iterations) if ratio > 0 else 0


def bridge_steps(
    inputs: StepInputs, layout: ParallelLayout, transformers: tuple, parallel: int, validates: bool, extra: dict
) -> StepPlan:
    """megatron-bridge's schedule. ``parallel`` is LLaMA-Factory's TP x PP x CP x EP (its own arguments),
    ``validates`` whether a validation set is exported (``val_size`` or ``eval_dataset``), ``extra`` the
    ``extra_config`` overrides."""
    n, b, ga = inputs.num_examples, inputs.per_device_batch, inputs.accumulation
    if n is None:  # workflow.py: num_train_samples=len(train_dataset) on a streamed dataset
        raise StepError(
            "LLaMA-Factory stops with: TypeError: object of type 'IterableDataset' has no len() "
            "(megatron-bridge counts the rows of the dataset)"
        )
    world = layout.world_size
    if parallel > world or world % parallel:  # hparams/parser.py::_validate_megatron_bridge_parallel_args (LF263)
        how = "exceeds" if parallel > world else "must divide"
        raise StepError(
            f"LLaMA-Factory stops with: Total Megatron Bridge parallel size ({parallel}) {how} `world_size` ({world})."
        )
    gbs = _override(extra, "train.global_batch_size", bridge_global_batch(b, ga, world, parallel), 1)
    mbs = _override(extra, "train.micro_batch_size", b, 1)
    dp = layout.data_parallel  # a whole number: TP x PP x CP divides the world when the product with EP does
    if gbs % (mbs * dp):
        raise StepError(f"megatron-core stops with: AssertionError: global batch size ({gbs}) is not divisible by "
                        f"micro batch size ({mbs}) times data parallel size ({dp}) (LLaMA-Factory's global batch: {b} x {ga} "
                        f"x {world} // (TP x PP x CP x EP = {parallel}))")  # fmt: skip
    if inputs.max_steps > 0:
        total = inputs.max_steps
    else:
        total = max(1, math.ceil(n / gbs * inputs.num_train_epochs))
    total = _override(extra, "train.train_iters", total)
    save = _override(extra, "checkpoint.save_interval", inputs.save_steps)
    logging = _override(extra, "logger.log_interval", inputs.logging_steps)
    eval_value = inputs.eval_steps
    if inputs.eval_strategy == "steps" and not eval_value and inputs.logging_steps and inputs.logging_steps > 0:
        eval_value = inputs.logging_steps  # TrainingArguments.__post_init__
    interval = _override(extra, "train.eval_interval", eval_value or 100)
    saves = tuple(sorted({*steps_passing_modulo(save, total), total})) if save and total > 0 else ()
    evals = tuple(sorted({*steps_passing_modulo(interval, total), total})) if validates and total > 0 else ()
    passes = n and math.ceil(n / gbs)
    return StepPlan(
        num_examples=n, world_size=layout.world_size, per_device_train_batch_size=mbs,
        gradient_accumulation_steps=ga, total_train_batch_size=gbs,  # Megatron runs gbs / (mbs x dp) micro-batches
        batches_per_epoch=math.ceil(n / (mbs * dp)), update_steps_per_epoch=passes,
        num_train_epochs=inputs.num_train_epochs,
        epochs_printed=math.ceil(total * gbs / n) if n and inputs.max_steps > 0 else math.ceil(inputs.num_train_epochs),
        total_steps=total, warmup_steps=_override(extra, "scheduler.lr_warmup_iters", bridge_warmup(inputs, total, transformers)),
        logging_steps=logging, eval_steps=interval, save_steps=save, checkpoint_steps=saves, eval_steps_at=evals,
        optimizer_updates=total, epochs_trained=round(total * gbs / n, 6) if n else 0.0,
        updates_per_epoch_in_loop=passes, transformers_family="megatron-bridge",
    )  # fmt: skip


def _override(extra: dict, key: str, value, minimum: float = 0):
    """An ``extra_config`` dot-path that replaces a built value, when it is a usable number (whole numbers for the
    batch sizes and the iterations)."""
    given = extra.get(key)
    if not isinstance(given, (int, float)) or isinstance(given, bool) or given < minimum:
        return value
    if float(given).is_integer():
        return int(given)
    return value if key.startswith("train.") and key != "train.eval_interval" else given


def bridge_examples(counts, args) -> tuple[int | None, int | None, bool, str]:
    """``len(train_dataset)`` of ``workflow.py::_load_aligned_datasets`` (main ff6d4d12e): the converted rows of
    ``dataset`` after ``max_samples``/``num_samples`` and merging, less what ``split_dataset`` takes for
    ``val_size``. No stage processor runs, so no row is dropped for a missing response (the JSONL export skips such
    rows later, after the schedule was computed from this count) and nothing is packed; ``tokenized_path`` is not
    read. Returns (train rows, eval rows, exact, basis)."""
    from .dataset import selection

    if counts is None:
        return None, None, False, "no dataset"
    if args.get("tokenized_path") and counts.basis.startswith("the tokenized dataset"):
        return None, None, False, "megatron-bridge does not read tokenized_path: it converts `dataset` again"
    merged = counts.merged_rows
    if merged is None or any(s.selected is None for s in counts.sources if s.role == "train"):
        return None, None, False, counts.basis
    val_size = args.val_size if isinstance(args.val_size, (int, float)) and not isinstance(args.val_size, bool) else 0
    n_eval = None
    basis = f"{merged:,} converted rows of {', '.join(s.name for s in counts.sources if s.role == 'train')}"
    if val_size > 1e-6:
        try:
            merged, n_eval = selection.split_sizes(merged, val_size)
        except selection.SplitError as exc:
            return None, None, True, f"datasets stops with: {exc}"
        basis += f", less {n_eval:,} split off by val_size"
    else:
        evals = [s for s in counts.sources if s.role == "eval"]
        single = len(evals) == 1 or str(args.mix_strategy or "concat") == "concat" or counts.eval_each
        if evals and single and all(s.selected is not None for s in evals):
            n_eval = sum(len(s.selected) for s in evals)
    return merged, n_eval, True, basis + " (megatron-bridge's schedule counts every converted row)"
