"""Findings about the step plan: what the Trainer will do with the counted examples.

They read the ``plan`` fact (lf_lint/plan.py): the examples LLaMA-Factory will train on, the
launch and the targeted transformers release turned into the Trainer's numbers.
"""

from __future__ import annotations

from ..diagnostics import Severity
from ..steps import PlanTooLong, behaviour, steps_passing_modulo
from ..versions import Target, clamp_transformers, newest_transformers_for
from .base import Context, Example, Finding, Rule
from .upstream_lf import PPO_EXAMPLE_VERSIONS, _num

ERROR, WARNING, INFO = Severity.ERROR, Severity.WARNING, Severity.INFO


def _steps(ctx: Context):
    plan = ctx.plan
    return plan.steps if plan is not None else None


def _trainer_steps(ctx: Context):
    """The steps of a Hugging Face Trainer loop (LLaMA-Factory's own PPO loop included); the Megatron loops' data
    loaders and updates are checked by LF267 (launch_switches.py)."""
    plan = ctx.plan
    return plan.steps if plan is not None and plan.layout is None else None


def on_plan(check, *, rests_on: str = "examples"):
    """A plan rule's check. ``rests_on`` says what its findings depend on: "examples" (the example count), "total"
    (the total steps alone, which a positive ``max_steps`` fixes whatever the count) or "settings" (the config alone,
    the plan only adds figures). On an estimated count, findings that rest on it become notes that say so; the
    others keep their severity and say which figures are estimates."""

    def run(ctx: Context):
        plan = ctx.plan
        estimated = plan is not None and not plan.exact
        max_steps = ctx.args.max_steps
        if estimated and rests_on == "total" and isinstance(max_steps, int) and max_steps > 0:
            estimated = False
        for finding in check(ctx):
            if estimated and (rests_on != "settings" or plan.steps is not None):
                basis = plan.basis.split(" (")[0].removeprefix("estimate: ")
                note = f" (the example count is an estimate: {basis})"
                demoted = rests_on != "settings" and finding.severity is not ERROR
                finding = finding._replace(message=finding.message + note, severity=INFO if demoted else finding.severity)
            yield finding

    return run


def _check_no_plan(ctx: Context):
    plan = ctx.plan
    if plan is None or not plan.num_examples or plan.layout is not None:  # no count (LF4xx); Megatron: LF267
        return
    a, world = ctx.args, ctx.launch.world_size
    batch = a.per_device_train_batch_size
    why = (f"{plan.num_examples:,} examples give no full batch of {batch} per process"
           + (f" on {world} processes" if world > 1 else "") + " with dataloader_drop_last")  # fmt: skip
    if plan.steps is None and plan.problem and plan.problem.startswith("transformers stops"):
        yield Finding(f"{plan.problem} ({why})", key="per_device_train_batch_size", at="value",
                      fix="a smaller per_device_train_batch_size, or dataloader_drop_last: false")  # fmt: skip
    elif plan.steps is not None and plan.steps.batches_per_epoch == 0:
        yield Finding(f"the data loader has no batch ({why}): on transformers {ctx.target.transformers} the run starts, "
                      f"prints {plan.steps.total_steps:,} steps and trains nothing", key="per_device_train_batch_size",
                      at="value", fix="a smaller per_device_train_batch_size, or dataloader_drop_last: false")  # fmt: skip


NO_BATCH = Rule(
    code="LF501",
    name="empty-dataloader",
    severity=ERROR,
    summary="The training data gives no batch at all.",
    what="Reports plans where the data loader of a process has no batch (fewer examples than the batch size with "
    "`dataloader_drop_last`, or fewer batches than processes).",
    why="transformers 4.49+ refuses to train by epochs on an empty data loader (`args.max_steps must be set to a "
    "positive value if dataloader does not have a length`); older releases silently train nothing.",
    upstream="transformers `Trainer.set_initial_training_values` (4.49-5.6), `Trainer._inner_training_loop` (4.45-4.48).",
    example=Example("per_device_train_batch_size: 16\ndataloader_drop_last: true", options={"num_examples": 10}),
    use_instead=Example("per_device_train_batch_size: 8\ndataloader_drop_last: true", options={"num_examples": 10}),
    check=on_plan(_check_no_plan),
)


def _check_intervals(ctx: Context):
    steps = _steps(ctx)
    if steps is None or steps.total_steps <= 0:
        return
    a = ctx.args
    total = steps.total_steps
    if str(a.save_strategy or "steps") == "steps" and steps.save_steps and steps.save_steps > total:
        final = steps.checkpoint_steps[-1] if steps.checkpoint_steps else None
        yield Finding(
            f"save_steps {steps.save_steps:,} is beyond the last step ({total:,}): no checkpoint during training"
            + (f", only the final one at step {final:,}" if final else ""),
            key="save_steps" if a.is_set("save_steps") else "output_dir",
            at="value",
            fix=f"save_steps: {max(1, total // 4):,} (four checkpoints)"
            + ("" if ctx.plan.trainer in ("PPOTrainer", "megatron-bridge") else ", or a ratio such as 0.25"),
        )
    if a.eval_strategy == "steps" and steps.eval_steps and steps.eval_steps > total:
        yield Finding(f"eval_steps {steps.eval_steps:,} is beyond the last step ({total:,}): the run is never evaluated"
                      + (" (5.4+ still evaluates once at the end)" if behaviour(ctx.target.tf).final_eval else ""),
                      key="eval_steps" if a.is_set("eval_steps") else "eval_strategy", at="value",
                      fix=f"eval_steps: {max(1, total // 10):,}")  # fmt: skip
    if str(a.logging_strategy or "steps") == "steps" and steps.logging_steps and steps.logging_steps > total:
        yield Finding(f"logging_steps {steps.logging_steps:,} is beyond the last step ({total:,}): no loss is logged",
                      key="logging_steps" if a.is_set("logging_steps") else "output_dir", at="value",
                      fix=f"logging_steps: {max(1, total // 20):,}", severity=INFO)  # fmt: skip


INTERVALS = Rule(
    code="LF502",
    name="interval-beyond-run",
    severity=WARNING,
    summary="`save_steps` (or `eval_steps`, `logging_steps`) larger than the whole run.",
    what="Compares the resolved save, eval and logging intervals with the total optimization steps of the plan.",
    why="A 411-step run with the example's `save_steps: 500` writes no intermediate checkpoint; with `eval_steps` "
    "beyond the end there is no evaluation at all. Users find out after the run.",
    example=Example("save_steps: 5000\nnum_train_epochs: 1", options={"num_examples": 800}),
    use_instead=Example("save_steps: 0.25\nnum_train_epochs: 1", options={"num_examples": 800}),
    check=on_plan(_check_intervals, rests_on="total"),
)


def _check_warmup(ctx: Context):
    steps = _steps(ctx)
    if steps is None or steps.total_steps <= 0 or steps.warmup_steps < steps.total_steps:
        return
    yield Finding(f"warmup lasts {steps.warmup_steps:,} steps and the run has {steps.total_steps:,}: the learning rate never "
                  "reaches its peak and never decays", key=(ctx.args.is_set("warmup_steps") and "warmup_steps") or "warmup_ratio",
                  at="value", fix="use a ratio such as warmup_ratio: 0.03 (warmup_steps: 0.03 on transformers 5.x)")  # fmt: skip


WARMUP_LONG = Rule(
    code="LF503",
    name="warmup-as-long-as-run",
    severity=WARNING,
    summary="Warmup that covers the whole run.",
    what="Reports plans whose warmup steps are at least the total optimization steps.",
    why="A warmup copied from a long run (`warmup_steps: 1000`) on a short one keeps the learning rate ramping up "
    "until training stops.",
    example=Example("warmup_steps: 1000\nnum_train_epochs: 1", options={"num_examples": 800}),
    use_instead=Example("warmup_steps: 10\nnum_train_epochs: 1", options={"num_examples": 800}),
    check=on_plan(_check_warmup, rests_on="total"),
)


def _check_accumulation(ctx: Context):
    steps = _trainer_steps(ctx)
    if steps is None or steps.batches_per_epoch is None or steps.batches_per_epoch == 0:
        return
    ga, length = steps.gradient_accumulation_steps, steps.batches_per_epoch
    if ga > length:
        yield Finding(
            f"gradient_accumulation_steps {ga} is larger than the {length:,} micro-batches one process gets per epoch: each "
            f"epoch makes one optimizer update over {length} micro-batches, not {ga}",
            key="gradient_accumulation_steps", at="value",
            fix=f"gradient_accumulation_steps: {length} (or more data / fewer processes)",
        )  # fmt: skip


ACCUMULATION = Rule(
    code="LF504",
    name="accumulation-exceeds-batches",
    severity=WARNING,
    summary="More accumulation steps than micro-batches in an epoch.",
    what="Reports `gradient_accumulation_steps` larger than the number of micro-batches per epoch per process.",
    why="The effective batch is then the epoch, not `per_device_train_batch_size x gradient_accumulation_steps x "
    "processes`; on transformers 4.46-4.51 some such runs make no optimizer update at all (see LF505).",
    example=Example("per_device_train_batch_size: 8\ngradient_accumulation_steps: 16", options={"num_examples": 40}),
    use_instead=Example("per_device_train_batch_size: 8\ngradient_accumulation_steps: 4", options={"num_examples": 40}),
    check=on_plan(_check_accumulation),
)


def _check_real_updates(ctx: Context):
    steps = _trainer_steps(ctx)
    if steps is None or not steps.batches_per_epoch:  # an empty data loader is LF501's
        return
    tf = ctx.target.transformers
    if steps.optimizer_updates == 0 and steps.total_steps > 0:
        yield Finding(f"on transformers {tf} this run performs no optimizer update at all: each epoch stops before the "
                      f"first accumulation window closes (the 4.46-4.51 remainder bug, {steps.num_examples:,} % "
                      f"{steps.gradient_accumulation_steps} examples); the run starts and trains nothing",
                      key="gradient_accumulation_steps", at="value", fix="use transformers >= 4.52, or make gradient_accumulation_steps divide the batches per epoch")  # fmt: skip
    elif steps.optimizer_updates < steps.total_steps:
        yield Finding(f"on transformers {tf} the loop makes {steps.optimizer_updates:,} of the {steps.total_steps:,} printed "
                      f"steps and ends at epoch {steps.epochs_trained:g} of {steps.num_train_epochs:g}",
                      key="num_train_epochs", at="value", fix="use transformers >= 4.52, where the printed steps are trained")  # fmt: skip
    elif (
        steps.stops_mid_epoch
        and behaviour(ctx.target.tf).loop in ("per-epoch", "chunked", "cumulative")
        and steps.num_train_epochs == int(steps.num_train_epochs)
    ):
        yield Finding(f"on transformers {tf} each epoch makes {steps.updates_per_epoch_in_loop:,} updates but "
                      f"{steps.update_steps_per_epoch:,} were counted per epoch: training ends at epoch {steps.epochs_trained:g} "
                      f"of {steps.num_train_epochs:g}", key="num_train_epochs", at="value",
                      fix="use transformers >= 4.52 (counts and loop agree), or set dataloader_drop_last / a batch that divides the data")  # fmt: skip


REAL_UPDATES = Rule(
    code="LF505",
    name="run-ends-early",
    severity=WARNING,
    summary="transformers 4.45-4.51 stops before the requested epochs (or never updates).",
    what="Simulates the training loop of the targeted release and compares it with the printed total: on "
    "4.47-4.51 an epoch makes ceil(batches / accumulation) updates while the total was computed with floor, so "
    "training ends early; on 4.46-4.51 a remainder bug can skip batches or every update.",
    why="The run reports success after fewer epochs than configured (transformers #36297: 6.8 of 10 epochs).",
    example=Example(
        "num_train_epochs: 300\nper_device_train_batch_size: 10\ngradient_accumulation_steps: 8",
        options={"num_examples": 1047, "transformers_version": "4.49.0", "llamafactory_version": "0.9.2"},
    ),
    use_instead=Example(
        "num_train_epochs: 300\nper_device_train_batch_size: 10\ngradient_accumulation_steps: 8",
        options={"num_examples": 1047, "transformers_version": "4.57.1"},
    ),
    upstream="transformers `Trainer._inner_training_loop` (4.45-4.51; fixed by PR #37923 in 4.52).",
    check=on_plan(_check_real_updates),
)


def _check_max_steps(ctx: Context):
    steps = _steps(ctx)
    a = ctx.args
    if steps is None or not (isinstance(a.max_steps, int) and a.max_steps > 0) or not a.is_set("num_train_epochs"):
        return
    if ctx.plan.trainer == "megatron-bridge":  # no start-up block; max_steps becomes train_iters
        yield Finding(f"max_steps {a.max_steps:,} overrides num_train_epochs {a.num_train_epochs:g}: the run covers "
                      f"{steps.epochs_trained:.3g} passes over the data", key="num_train_epochs", at="value",
                      fix="remove one of the two")  # fmt: skip
    elif steps.batches_per_epoch:
        yield Finding(f"max_steps {a.max_steps:,} overrides num_train_epochs {a.num_train_epochs:g}: the run covers "
                      f"{a.max_steps / steps.update_steps_per_epoch:.3g} epochs (the {ctx.plan.trainer} prints Num Epochs = {steps.epochs_printed:,})",
                      key="num_train_epochs", at="value", fix="remove one of the two")  # fmt: skip


MAX_STEPS = Rule(
    code="LF506",
    name="max-steps-overrides-epochs",
    severity=INFO,
    summary="`max_steps` silently wins over `num_train_epochs`.",
    what="Reports configs that set both `max_steps` and `num_train_epochs`, with the number of epochs `max_steps` "
    "amounts to.",
    why="The Trainer ignores `num_train_epochs` when `max_steps` is positive and only says so in an info log.",
    example=Example("max_steps: 100\nnum_train_epochs: 3", options={"num_examples": 800}),
    use_instead=Example("max_steps: 100", options={"num_examples": 800}),
    check=on_plan(_check_max_steps),
)


def _check_warmup_both(ctx: Context):
    a = ctx.args
    if not (a.is_set("warmup_steps") and a.is_set("warmup_ratio")) or "warmup_ratio" not in ctx.table:
        return
    steps = _steps(ctx)
    used = f" ({steps.warmup_steps:,} warmup steps)" if steps else ""
    if ctx.target.tf >= (5, 0):
        message = f"both warmup_steps and warmup_ratio are set: on transformers {ctx.target.transformers} warmup_ratio overwrites warmup_steps{used}; on 4.x warmup_steps wins"
    else:
        message = f"both warmup_steps and warmup_ratio are set: on transformers {ctx.target.transformers} warmup_steps wins{used}; on 5.x warmup_ratio overwrites it"
    yield Finding(message, key="warmup_ratio", fix="keep one of them")


WARMUP_BOTH = Rule(
    code="LF507",
    name="warmup-both-set",
    severity=WARNING,
    summary="Both `warmup_steps` and `warmup_ratio`: which wins depends on the transformers release.",
    what="Reports configs that set both, and says which one the targeted release uses.",
    why="transformers 4.x uses `warmup_steps` when it is positive; 5.x copies `warmup_ratio` over `warmup_steps`. "
    "The same config warms up for different lengths after an upgrade.",
    example=Example("warmup_steps: 5\nwarmup_ratio: 0.1"),
    use_instead=Example("warmup_ratio: 0.1"),
    check=on_plan(_check_warmup_both, rests_on="settings"),
)


def _check_best_alignment(ctx: Context):
    steps = _steps(ctx)
    a = ctx.args
    if (
        steps is None
        or not a.load_best_model_at_end
        or a.eval_strategy != "steps"
        or str(a.save_strategy or "steps") != "steps"
    ):
        return
    if steps.save_steps and steps.eval_steps and steps.save_steps % steps.eval_steps:
        yield Finding(f"with {steps.total_steps:,} steps the ratios resolve to save every {steps.save_steps:,} and evaluate every "
                      f"{steps.eval_steps:,} steps: most evaluations have no checkpoint, so the best model may not be the one loaded",
                      key="save_steps", at="value", fix="use absolute steps where save_steps is a multiple of eval_steps")  # fmt: skip


BEST_ALIGNMENT = Rule(
    code="LF508",
    name="best-model-misaligned",
    severity=WARNING,
    summary="`load_best_model_at_end` with ratio intervals that resolve to misaligned steps.",
    what="Checks, after ratios are resolved against the total steps, that every evaluation step also saves.",
    why="transformers checks the multiple on the configured ratios, but `ceil(total x ratio)` may break it; the best "
    "evaluation can then fall on a step without a checkpoint.",
    check=on_plan(_check_best_alignment, rests_on="total"),
)


def _check_version_sensitivity(ctx: Context):
    plan = ctx.plan
    if (
        plan is None
        or plan.steps is None
        or plan.trainer != "Trainer"
        or ctx.options.get("versions_source") != "default"
    ):
        return
    current = ctx.target
    other_tf = "4.51.3" if current.tf >= (4, 52) else newest_transformers_for(current.llamafactory)
    other = Target(current.llamafactory, clamp_transformers(other_tf))
    from ..plan import build_plan

    alternative = build_plan(ctx.args, ctx.counts, ctx.launch, other, ctx.options.get("num_examples"))
    if alternative.steps is not None and alternative.steps.total_steps != plan.steps.total_steps:
        yield Finding(f"the step count depends on the transformers release, which is not pinned: {plan.steps.total_steps:,} "
                      f"steps on {current.transformers}, {alternative.steps.total_steps:,} on {other.transformers}",
                      key="num_train_epochs" if ctx.args.is_set("num_train_epochs") else None,
                      fix="pin the versions with --transformers-version (or [tool.lf-lint]), or install them")  # fmt: skip


VERSION_SENSITIVE = Rule(
    code="LF509",
    name="version-dependent-steps",
    severity=INFO,
    summary="The step count differs between transformers releases, and the release is not pinned.",
    what="When lf-lint models the default versions (none installed, none given), recomputes the plan with the "
    "other rounding of updates per epoch (transformers <= 4.51 floor, >= 4.52 ceil) and shows both numbers.",
    why="The same config trains 3,900 steps on transformers 4.49 and 4,200 on 4.57; a plan is only exact for a "
    "known release.",
    check=on_plan(_check_version_sensitivity),
)


def _check_ppo_ratio(ctx: Context):
    steps, a = _steps(ctx), ctx.args
    if steps is None or ctx.plan.trainer != "PPOTrainer":
        return
    for name in ("save_steps", "logging_steps"):
        value = getattr(a, name)
        if not a.is_set(name) or not isinstance(value, float) or not 0 < value < 1:
            continue
        if name == "save_steps":
            hits = len(steps.checkpoint_steps)
        else:
            try:
                hits = len(steps_passing_modulo(value, steps.total_steps))
            except PlanTooLong:
                continue
        verb, what = ("save", "a checkpoint") if name == "save_steps" else ("log", "the loss")
        total = steps.total_steps
        if hits == total:
            outcome = f"{verb}s {what} at every one of the {total:,} steps"
        elif hits:
            outcome = f"{verb}s {what} only {hits:,} time(s) in {total:,} steps"
        else:
            outcome = f"never {verb}s {what} in {total:,} steps"
        yield Finding(
            f"the PPO trainer does not read {name} {value:g} as a ratio: it tests (step + 1) % {value:g} == 0, so it {outcome}",
            key=name,
            at="value",
            fix=f"{name}: {max(1, round(steps.total_steps * value)):,} (the step count the ratio meant)",
        )


PPO_RATIO = Rule(
    code="LF510",
    name="ppo-interval-ratio",
    severity=WARNING,
    summary="A ratio `save_steps`/`logging_steps` in a PPO run, which LLaMA-Factory's PPO trainer reads literally.",
    what="Reports `save_steps` or `logging_steps` between 0 and 1 with `stage: ppo`, and how often it really fires.",
    why="The Trainer turns a value below 1 into a fraction of the run, but LLaMA-Factory's PPO loop checks "
    "`(step + 1) % save_steps == 0` on the raw number: 0.25 saves a full checkpoint at every step, 0.1 almost never.",
    upstream="LLaMA-Factory `CustomPPOTrainer.ppo_train` (train/ppo/trainer.py, 0.9.2-0.9.5).",
    example=Example(
        "stage: ppo\nreward_model: saves/rm\nreport_to: none\nsave_steps: 0.25",
        options={"num_examples": 400, **PPO_EXAMPLE_VERSIONS},
    ),
    use_instead=Example(
        "stage: ppo\nreward_model: saves/rm\nreport_to: none\nsave_steps: 10",
        options={"num_examples": 400, **PPO_EXAMPLE_VERSIONS},
    ),
    check=on_plan(_check_ppo_ratio, rests_on="settings"),
)


def _check_no_training(ctx: Context):
    a = ctx.args
    if a.get("do_train") or a.stage == "ppo":  # PPO without do_train stops at once: LF233 says so
        return
    fix = "add do_train: true"
    # point at do_train's false value, else at the dataset it fails to train on
    key = next((k for k in ("do_train", "dataset", "stage") if a.is_set(k)), None)
    at = "value" if key == "do_train" else "key"
    if not (a.do_eval or a.get("do_predict")):
        yield Finding("the run does nothing: neither do_train nor do_eval/do_predict is set, so LLaMA-Factory loads "
                      "the model and the data, then exits without training", key=key, at=at, fix=fix)  # fmt: skip
    elif a.is_set("dataset") and _num(a.val_size) <= 1e-6:
        task = "predicts" if a.get("do_predict") else "evaluates"
        yield Finding(f"`dataset` is loaded and preprocessed but never trained on: do_train is not set, so the run "
                      f"only {task} on eval_dataset", key=key, at=at, fix=f"{fix} to train, or remove dataset")  # fmt: skip


NO_TRAINING = Rule(
    code="LF511",
    name="no-training",
    severity=WARNING,
    summary="A train config that trains nothing: `do_train` is missing or false.",
    what="Reports train configs without `do_train: true` that do nothing at all (no `do_eval`/`do_predict` "
    "either), and those that only evaluate or predict while naming a training `dataset` they never use (no "
    "`val_size` taking the eval split from it). PPO without `do_train` is LF233's error: LLaMA-Factory refuses it.",
    why="`do_train` is false unless set, and LLaMA-Factory checks nothing about it: the run loads the model, reads "
    "and tokenizes every dataset, then skips training and exits cleanly, minutes of GPU time later.",
    upstream="LLaMA-Factory `get_dataset` (data/loader.py) and `run_sft` and the other workflows "
    "(`if training_args.do_train:`), 0.9.2-0.9.5.",
    example=Example("do_train: false"),
    use_instead=Example("do_train: true"),
    check=_check_no_training,
)

RULES = [
    NO_BATCH,
    INTERVALS,
    WARMUP_LONG,
    ACCUMULATION,
    REAL_UPDATES,
    MAX_STEPS,
    WARMUP_BOTH,
    BEST_ALIGNMENT,
    VERSION_SENSITIVE,
    PPO_RATIO,
    NO_TRAINING,
]
