"""The step plan of a config: examples (dataset counting) x arguments x launch -> Trainer numbers.

``build_plan`` joins the three facts; ``Plan`` is the typed result the CLI prints, the JSON
output serialises and ``predict_steps`` returns.
"""

from __future__ import annotations

import math
import sys
from typing import TYPE_CHECKING, NamedTuple

from .args import Args
from .launch import Launch
from .megatron_steps import BRIDGE_STAGES, MCA_STAGES, SOURCES, bridge_examples, bridge_steps, mca_steps
from .parallel_layout import ParallelLayout
from .steps import PlanTooLong, StepError, StepInputs, StepPlan, behaviour, plan_steps, steps_passing_modulo, warmup
from .versions import Target

if TYPE_CHECKING:  # the dataset package is only needed when datasets are counted
    from .dataset.counting import Counts


class Plan(NamedTuple):
    """What the Trainer inside LLaMA-Factory will do with this config.

    ``steps`` holds the numbers (``total_steps``, ``warmup_steps``, ...); it is None when they
    cannot be known, and ``problem`` says why. ``exact`` is False whenever an input was estimated
    (``basis`` says which and how to make it exact).
    """

    target: Target
    launch: Launch
    stage: str
    steps: StepPlan | None
    num_examples: int | None
    num_eval_examples: int | None
    exact: bool
    basis: str
    problem: str | None = None
    trainer: str = "Trainer"  # "Trainer", "PPOTrainer", "McaTrainer" or "megatron-bridge"
    datasets: tuple = ()  # counting.DatasetCount per name in `dataset:` and `eval_dataset:`
    eval_per_dataset: bool = False  # eval_on_each_dataset: each eval dataset is evaluated (and printed) apart
    layout: ParallelLayout | None = None  # the Megatron launches' parallel layout (parallel_layout.py)
    derived_from: str | None = None  # the source the arithmetic was read from, where nothing could be run

    @property
    def data_parallel_size(self) -> int | None:
        """Processes that read different data: the world size, or what Megatron's layout leaves of it."""
        return self.layout.data_parallel if self.layout is not None else self.launch.world_size

    # --- convenience -------------------------------------------------------------------------

    def __getattr__(self, name: str):
        steps = tuple.__getattribute__(self, "steps")
        if steps is not None and name in StepPlan._fields + ("num_checkpoints", "stops_mid_epoch"):
            return getattr(steps, name)
        raise AttributeError(name)

    def to_dict(self) -> dict:
        """The ``plan`` object of the JSON output (README: "Machine-readable output")."""
        s = self.steps
        data = {
            "num_examples": self.num_examples,
            "num_eval_examples": self.num_eval_examples,
            "world_size": self.launch.world_size,
            "exact": self.exact,
            "basis": self.basis,
            "stage": self.stage,
            "trainer": self.trainer,
            "datasets": [d._asdict() for d in self.datasets],
            "eval_on_each_dataset": self.eval_per_dataset,
            "data_parallel_size": self.data_parallel_size,
            "parallel_layout": self.layout.to_dict() if self.layout is not None else None,
            "derived_from": self.derived_from,
        }
        if s is None:
            data["problem"] = self.problem
            return data
        data.update(
            {
                # what the trainer prints as "Num examples": total batch x max_steps when the loader is empty or streamed
                "num_examples": s.num_examples,
                "dataset_examples": self.num_examples,
                "per_device_train_batch_size": s.per_device_train_batch_size,
                "gradient_accumulation_steps": s.gradient_accumulation_steps,
                "total_train_batch_size": s.total_train_batch_size,
                "batches_per_epoch": s.batches_per_epoch,
                "update_steps_per_epoch": s.update_steps_per_epoch,
                "num_train_epochs": s.num_train_epochs,
                "epochs_printed": s.epochs_printed,
                "total_steps": s.total_steps,
                "warmup_steps": s.warmup_steps,
                "logging_steps": s.logging_steps,
                "eval_steps": s.eval_steps,
                "save_steps": s.save_steps,
                "num_checkpoints": s.num_checkpoints,
                "checkpoint_steps": list(s.checkpoint_steps),
                "eval_at_steps": list(s.eval_steps_at),
                "optimizer_updates": s.optimizer_updates,
                "epochs_trained": None if s.epochs_trained != s.epochs_trained else s.epochs_trained,
                "stops_mid_epoch": s.stops_mid_epoch,
            }
        )
        return data

    def explain(self) -> str:
        from .explain import explain_plan

        return explain_plan(self)

    def __repr__(self) -> str:
        from .reprs import bracket

        if self.steps is None:
            return bracket("Plan:", f"no step plan ({self.problem})")
        s = self.steps
        examples = f"{self.num_examples:,}" if self.num_examples is not None else "?"
        stops = f" (stops at epoch {s.epochs_trained:g})" if s.stops_mid_epoch else ""
        gpus = f" on {s.world_size} GPUs" if s.world_size > 1 else ""
        text = (
            f"{s.total_steps:,} steps: {examples} examples x {s.num_train_epochs:g} epochs{stops}, "
            f"batch {s.total_train_batch_size:,}{gpus} (transformers {self.target.transformers})"
        )
        return bracket("Plan", text, ", exact" if self.exact else ", estimate")

    def _repr_html_(self) -> str:
        from .reprs import table

        return table(f"Step plan: {self.target.describe()}", self.to_dict().items())


def _number(value: object, default: float) -> float:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else default


def step_inputs(args: Args, num_examples: int | None, launch: Launch, target: Target) -> StepInputs:
    rules = behaviour(target.tf)
    warmup_ratio = args.warmup_ratio if "warmup_ratio" in args._table else None
    warmup_steps = _number(args.warmup_steps, 0)
    if not rules.float_warmup_steps and not isinstance(args.warmup_steps, int):
        warmup_steps = 0  # 4.x refuses a float (rule LF307); the plan uses the default
    return StepInputs(
        num_examples=num_examples,
        per_device_batch=int(_number(args.per_device_train_batch_size, 8)),
        accumulation=int(_number(args.gradient_accumulation_steps, 1)),
        world_size=launch.world_size,
        num_train_epochs=float(_number(args.num_train_epochs, 3.0)),
        max_steps=int(_number(args.max_steps, -1)),
        drop_last=bool(args.dataloader_drop_last),
        warmup_steps=warmup_steps,
        warmup_ratio=_number(warmup_ratio, 0.0) if warmup_ratio is not None or not rules.float_warmup_steps else None,
        logging_strategy=str(args.logging_strategy or "steps"),
        logging_steps=_number(args.logging_steps, 500),
        logging_first_step=bool(args.logging_first_step),
        eval_strategy=args.eval_strategy,
        eval_steps=args.eval_steps
        if isinstance(args.eval_steps, (int, float)) and not isinstance(args.eval_steps, bool)
        else None,
        eval_delay=_number(args.eval_delay, 0),
        eval_on_start=bool(args.eval_on_start),
        save_strategy=str(args.save_strategy or "steps"),
        save_steps=_number(args.save_steps, 500),
    )


def ppo_steps(args: Args, num_examples: int, launch: Launch, target: Target) -> StepPlan:
    """LLaMA-Factory's CustomPPOTrainer (train/ppo/trainer.py, 0.9.2-0.9.5, on TRL 0.8.6-0.9.6).

    Each step takes b x GA x ppo_buffer_size prompts per process from TRL's DataLoader (drop_last=True),
    sharded by accelerate, so an epoch is n // (that x processes) steps. The run lasts
    ceil(epochs x steps per epoch) (or max_steps), but the learning-rate schedule is built earlier from
    epochs x ceil(n / total batch): warmup_ratio is a fraction of that. Logging and saving test
    ``(step + 1) % logging_steps`` / ``% save_steps`` on the raw values (no ratio resolution).
    """
    b = int(_number(args.per_device_train_batch_size, 8))
    ga = int(_number(args.gradient_accumulation_steps, 1))
    world = launch.world_size
    total_batch = b * ga * int(_number(args.ppo_buffer_size, 1)) * world
    max_steps = int(_number(args.max_steps, -1))
    if num_examples is None and max_steps <= 0:
        raise StepError(f"the PPO trainer takes len(train_dataset), which a stream does not have, unless max_steps is "
                        f"positive (it is {max_steps})")  # fmt: skip
    length = num_examples // total_batch if num_examples is not None else None
    epochs = float(_number(args.num_train_epochs, 3.0))
    if max_steps > 0:
        total, schedule_steps, printed_examples, printed_epochs = (
            max_steps,
            max_steps,
            total_batch * max_steps,
            sys.maxsize,
        )
    else:
        total = math.ceil(epochs * length)
        schedule_steps = epochs * math.ceil(num_examples / total_batch)
        printed_examples, printed_epochs = num_examples, epochs
    inputs = step_inputs(args, num_examples, launch, target)
    save, logging = _number(args.save_steps, 500), _number(args.logging_steps, 500)
    return StepPlan(
        num_examples=printed_examples,
        world_size=world,
        per_device_train_batch_size=b,
        gradient_accumulation_steps=ga,
        total_train_batch_size=total_batch,
        batches_per_epoch=length,
        update_steps_per_epoch=length,
        num_train_epochs=epochs,
        epochs_printed=printed_epochs,
        total_steps=total,
        warmup_steps=warmup(inputs, schedule_steps, behaviour(target.tf)),
        logging_steps=logging,
        eval_steps=None,
        save_steps=save,
        checkpoint_steps=steps_passing_modulo(save, total),
        eval_steps_at=(),
        optimizer_updates=total,
        epochs_trained=round(total / length, 6) if length else 0.0,
        updates_per_epoch_in_loop=length,
        transformers_family="ppo",
    )


def build_plan(
    args: Args,
    counts: Counts | None,
    launch: Launch,
    target: Target,
    num_examples: int | None = None,
    layout: ParallelLayout | None = None,
    extra: dict | None = None,
) -> Plan:
    """``layout``: the parallel layout of a Megatron launch (``read_layout``), whose engine then runs the loop;
    ``extra``: megatron-bridge's ``extra_config`` overrides."""
    stage = args.stage
    if layout is not None and stage in (MCA_STAGES if layout.engine == "mca" else BRIDGE_STAGES):
        return megatron_plan(args, counts, launch, target, num_examples, layout, extra or {})
    if layout is not None and layout.engine == "megatron_bridge":
        problem = "LLaMA-Factory stops with: Megatron Bridge only supports the `pt` and `sft` stages."
        return Plan(target, launch, stage, None, None, None, False, "no dataset", problem, layout.trainer, (), False,
                    layout, SOURCES[layout.engine])  # fmt: skip
    trainer = "PPOTrainer" if stage == "ppo" else "Trainer"
    exact = counts.exact if counts is not None else False
    basis = counts.basis if counts is not None else "no dataset"
    n = counts.num_examples if counts is not None else None
    n_eval = counts.num_eval_examples if counts is not None else None
    if num_examples is not None:
        n, exact, basis = num_examples, True, f"{num_examples:,} examples given with --num-examples"
    streaming = bool(args.streaming)

    datasets = counts.per_dataset() if counts is not None else ()
    per_dataset = counts.eval_each if counts is not None else False

    def without(problem: str, counted: bool = False) -> Plan:
        """No steps: ``counted`` when the examples were counted exactly (the refusal is then certain)."""
        return Plan(target, launch, stage, None, n, n_eval, counted, basis, problem, trainer, datasets, per_dataset)

    if not args.trains:
        task = "predicts" if args.do_predict else "evaluates"
        on = f" on {n_eval:,} examples" if n_eval is not None else ""
        return without(f"the config does not train (do_train is not set); it only {task}{on}")
    if n is None and not streaming:
        return without(f"the number of training examples is unknown ({basis}); give it with --num-examples")
    try:
        if stage == "ppo":
            steps = ppo_steps(args, n, launch, target)
        else:
            steps = plan_steps(step_inputs(args, None if streaming else n, launch, target), target.tf)
    except PlanTooLong as exc:
        return without(f"not planned: {exc}", exact)
    except StepError as exc:
        return without(f"{'LLaMA-Factory' if stage == 'ppo' else 'transformers'} stops with: {exc}", exact)
    if streaming:
        n, exact, basis = steps.num_examples, True, "streaming: the Trainer prints total batch x max_steps"
    return Plan(target, launch, stage, steps, n, n_eval, exact, basis, None, trainer, datasets, per_dataset)


def megatron_plan(args, counts, launch, target, num_examples, layout: ParallelLayout, extra: dict) -> Plan:
    """The plan of ``USE_MCA=1`` (McaTrainer) and ``USE_MEGATRON_BRIDGE=1`` runs (megatron_steps.py)."""
    stage, bridge = args.stage, layout.engine == "megatron_bridge"
    if bridge:
        n, n_eval, exact, basis = bridge_examples(counts, args)
    else:
        n = counts.num_examples if counts is not None else None
        n_eval = counts.num_eval_examples if counts is not None else None
        exact, basis = (counts.exact, counts.basis) if counts is not None else (False, "no dataset")
    if num_examples is not None:
        n, exact, basis = num_examples, True, f"{num_examples:,} examples given with --num-examples"
    datasets = counts.per_dataset() if counts is not None else ()
    per_dataset = counts.eval_each if counts is not None else False

    def plan(steps, problem=None, counted=exact):
        return Plan(target, launch, stage, steps, n, n_eval, counted, basis, problem, layout.trainer, datasets,
                    per_dataset, layout, SOURCES[layout.engine])  # fmt: skip

    if not args.trains:
        return plan(None, "the config does not train (do_train is not set)")
    streaming = bool(args.streaming)
    if n is None and not streaming:
        return plan(None, f"the number of training examples is unknown ({basis}); give it with --num-examples", False)
    inputs = step_inputs(args, None if streaming else n, launch, target)
    try:
        if bridge:
            parallel = layout.tensor * layout.pipeline * layout.context * layout.expert
            validates = bool(args.eval_dataset) or _number(args.val_size, 0) > 1e-6
            steps = bridge_steps(inputs, layout, target.tf, parallel, validates, extra)
        else:
            steps = mca_steps(inputs, layout, target.tf)
    except PlanTooLong as exc:
        return plan(None, f"not planned: {exc}")
    except StepError as exc:  # the message names who stops
        return plan(None, str(exc))
    if streaming:
        n, exact, basis = steps.num_examples, True, "streaming: McaTrainer prints total batch x max_steps"
    return plan(steps)._replace(num_examples=n, exact=exact, basis=basis)
