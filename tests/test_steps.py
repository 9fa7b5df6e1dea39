"""The step arithmetic against the values real Trainer runs printed (hf-trainer-steps.md §8, each verified
on CPU with the transformers release named) and against the closed forms."""

from __future__ import annotations

import math
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lf_lint.steps import StepError, StepInputs, plan_steps

V445, V446, V447, V451, V452, V457, V5 = (
    (4, 45, 2),
    (4, 46, 3),
    (4, 47, 1),
    (4, 51, 3),
    (4, 52, 4),
    (4, 57, 1),
    (5, 6, 0),
)


def plan(version, n, b, ga, **kw):
    return plan_steps(StepInputs(num_examples=n, per_device_batch=b, accumulation=ga, **kw), version)


@pytest.mark.parametrize(
    "version, total, updates, epoch",
    [(V445, 3900, 3900, 297.142857), (V446, 3900, 3900, 297.142857), (V447, 3900, 3900, 278.609524),
     (V451, 3900, 3900, 278.609524), (V452, 4200, 4200, 300.0), (V457, 4200, 4200, 300.0), (V5, 4200, 4200, 300.0)],
)  # fmt: skip
def test_blog_example(version, total, updates, epoch):
    p = plan(version, 1047, 10, 8, num_train_epochs=300)
    assert (p.total_steps, p.optimizer_updates, p.epochs_trained) == (total, updates, epoch)
    assert (p.num_examples, p.total_train_batch_size, p.batches_per_epoch, p.epochs_printed) == (1047, 80, 105, 300)


@pytest.mark.parametrize("version", [V445, V446, V447, V451, V452, V5])
def test_blog_example_drop_last(version):
    p = plan(version, 1047, 10, 8, num_train_epochs=300, drop_last=True)
    assert (p.batches_per_epoch, p.total_steps, p.epochs_trained) == (104, 3900, 300.0)


@pytest.mark.parametrize("version, total, epoch", [(V445, 33, 2.514286), (V447, 33, 2.380952), (V452, 35, 2.533333)])
def test_fractional_epochs(version, total, epoch):
    p = plan(version, 1047, 10, 8, num_train_epochs=2.5)
    assert (p.total_steps, p.epochs_trained, p.epochs_printed) == (total, epoch, 3)


@pytest.mark.parametrize("version, printed", [(V451, 300), (V452, 279)])
def test_max_steps_prints_epochs_from_updates_per_epoch(version, printed):
    assert plan(version, 1047, 10, 8, max_steps=3900).epochs_printed == printed


@pytest.mark.parametrize(
    "world, length, batch, s_old, s_new, ep_445, ep_447",
    [(2, 53, 160, 1800, 2100, 271.698113, 257.150943), (4, 27, 320, 900, 1200, 266.666667, 225.0),
     (8, 14, 640, 300, 600, 171.428571, 150.0)],
)  # fmt: skip
def test_several_processes(world, length, batch, s_old, s_new, ep_445, ep_447):
    old, mid, new = (plan(v, 1047, 10, 8, num_train_epochs=300, world_size=world) for v in (V445, V447, V457))
    assert (new.batches_per_epoch, new.total_train_batch_size) == (length, batch)
    assert (old.total_steps, new.total_steps) == (s_old, s_new)
    assert (old.epochs_trained, mid.epochs_trained, new.epochs_trained) == (ep_445, ep_447, 300.0)


@pytest.mark.parametrize(
    "n, b, ga, kw, expected",
    [
        (42, 4, 4, {"num_train_epochs": 3}, {V445: (6, 6, 2.181818), V446: (6, 6, 2.363636), V447: (6, 6, 2.727273), V452: (9, 9, 3.0)}),
        (43, 9, 8, {"num_train_epochs": 3}, {V445: (3, 3, 2.0), V446: (3, 1, None), V447: (3, 0, None), V452: (3, 3, 3.0)}),
        (20, 8, 4, {"num_train_epochs": 5}, {V445: (5, 5, 3.0), V447: (5, 5, 5.0), V452: (5, 5, 5.0)}),
        (100, 10, 3, {"num_train_epochs": 2.5}, {V445: (8, 8, 2.4), V447: (8, 8, 2.0), V452: (10, 10, 2.6)}),
        (100, 10, 3, {"max_steps": 7}, {V445: (7, 7, 2.1), V447: (7, 7, 1.9), V452: (7, 7, 1.9)}),
        (100, 10, 1, {"num_train_epochs": 2, "max_steps": 0}, {V445: (20, 20, 2.0), (4, 49, 0): (0, 1, None), V457: (0, 1, None)}),
    ],
)  # fmt: skip
def test_small_verified_cases(n, b, ga, kw, expected):
    for version, (total, updates, epoch) in expected.items():
        p = plan(version, n, b, ga, **kw)
        assert (p.total_steps, p.optimizer_updates) == (total, updates), version
        if epoch is not None:
            assert p.epochs_trained == epoch, version


def test_max_steps_epochs_printed():
    assert plan(V445, 100, 10, 3, max_steps=7).epochs_printed == 3
    assert plan(V452, 100, 10, 3, max_steps=7).epochs_printed == 2


def test_empty_dataloader():
    assert plan(V445, 5, 10, 1, num_train_epochs=2, drop_last=True).total_steps == 2
    with pytest.raises(StepError, match=r"args\.max_steps must be set to a positive value"):
        plan(V457, 5, 10, 1, num_train_epochs=2, drop_last=True)
    old = plan(V445, 5, 10, 1, max_steps=4, drop_last=True)
    assert (old.total_steps, old.epochs_printed, old.num_examples, old.optimizer_updates) == (4, 4, 5, 0)
    new = plan(V457, 5, 10, 1, max_steps=4, drop_last=True)
    assert (new.total_steps, new.epochs_printed, new.num_examples) == (4, sys.maxsize, 40)


def test_streaming():
    p = plan_steps(StepInputs(num_examples=None, per_device_batch=10, accumulation=3, max_steps=20), V457)
    assert (p.num_examples, p.total_steps, p.epochs_printed) == (600, 20, sys.maxsize)
    with pytest.raises(StepError):
        plan_steps(StepInputs(num_examples=None, per_device_batch=10, accumulation=3), V457)


@pytest.mark.parametrize("version, warmup", [(V451, 117), (V457, 126)])
def test_warmup_ratio(version, warmup):
    assert plan(version, 1047, 10, 8, num_train_epochs=300, warmup_ratio=0.03).warmup_steps == warmup


def test_warmup_precedence_flips_in_5():
    kw = {"num_train_epochs": 3, "warmup_steps": 5, "warmup_ratio": 0.1}
    assert plan(V457, 100, 4, 3, **kw).warmup_steps == 5  # 4.x: warmup_steps wins
    assert plan(V5, 100, 4, 3, **kw).warmup_steps == 3  # 5.x: warmup_ratio overwrites warmup_steps (24 steps)
    assert plan(V5, 100, 4, 3, num_train_epochs=3, warmup_steps=0.1).warmup_steps == 3
    assert plan(V5, 100, 4, 3, num_train_epochs=3, warmup_steps=1.5).warmup_steps == 1


def test_ratio_intervals_and_checkpoints():
    p = plan(V457, 100, 10, 1, max_steps=30, logging_steps=0.1, eval_strategy="steps", eval_steps=0.2, save_steps=0.25)
    assert (p.logging_steps, p.eval_steps, p.save_steps) == (3, 6, 8)
    assert p.checkpoint_steps == (8, 16, 24, 30)
    assert p.eval_steps_at == (6, 12, 18, 24, 30)


@pytest.mark.parametrize("version, saves", [(V445, (10, 20, 25)), (V447, (10, 20, 25)), (V457, (10, 20, 25))])
def test_save_steps_with_final_save(version, saves):
    assert plan(version, 100, 10, 1, max_steps=25, save_steps=10).checkpoint_steps == saves


def test_epoch_saves_and_final_eval_differences():
    assert plan(V457, 100, 10, 1, max_steps=25, save_strategy="epoch").checkpoint_steps == (10, 20, 25)
    kw = {"max_steps": 30, "eval_strategy": "steps", "eval_steps": 7, "logging_steps": 7}
    assert plan(V457, 100, 10, 1, **kw).eval_steps_at == (7, 14, 21, 28)
    assert plan(V5, 100, 10, 1, **kw).eval_steps_at == (7, 14, 21, 28, 30)


def test_blog_example_checkpoints():
    old = plan(V451, 1047, 10, 8, num_train_epochs=300, save_steps=500)
    new = plan(V457, 1047, 10, 8, num_train_epochs=300, save_steps=500)
    assert old.checkpoint_steps == (500, 1000, 1500, 2000, 2500, 3000, 3500, 3900)
    assert new.num_checkpoints == 9 and new.checkpoint_steps[-1] == 4200


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 5000), st.integers(1, 64), st.integers(1, 32), st.integers(1, 4),
       st.floats(0.2, 12).map(lambda x: round(x, 2)), st.booleans())  # fmt: skip
def test_consistent_releases_train_exactly_the_printed_steps(n, b, ga, world, epochs, drop_last):
    try:
        p = plan(V457, n, b, ga, world_size=world, num_train_epochs=epochs, drop_last=drop_last)
    except StepError:
        assert (n // b if drop_last else -(-n // b)) // world == 0 or n // b < world
        return
    assert p.optimizer_updates == p.total_steps
    batches = n // b if drop_last else -(-n // b)
    assert p.batches_per_epoch == (batches // world if drop_last else -(-batches // world))
    upe = -(-p.batches_per_epoch // ga)
    assert p.update_steps_per_epoch == upe
    assert p.total_steps == math.ceil(epochs * upe)
    if float(epochs).is_integer():
        assert p.epochs_trained == epochs


@settings(max_examples=300, deadline=None)
@given(n=st.integers(0, 5000), b=st.integers(1, 16), ga=st.integers(1, 16), world=st.integers(1, 16),
       epochs=st.sampled_from([1, 2.5, 3, 0.3]), drop_last=st.booleans(), max_steps=st.sampled_from([-1, 0, 7, 100]))
def test_transformers_5_7_and_5_8_count_as_5_6(n, b, ga, world, epochs, drop_last, max_steps):
    """transformers 5.7.0-5.8.1 keep 5.6.0's trainer.py and its helpers byte for byte (README "Fidelity"): the same
    arithmetic, so main on 5.8.0 plans as 0.9.5 on 5.6.0."""
    inputs = StepInputs(num_examples=n, per_device_batch=b, accumulation=ga, world_size=world, num_train_epochs=epochs,
                        drop_last=drop_last, max_steps=max_steps)  # fmt: skip
    results = []
    for version in ((5, 6, 0), (5, 7, 0), (5, 8, 0), (5, 8, 1)):
        try:
            results.append(plan_steps(inputs, version))
        except StepError as exc:
            results.append(str(exc))
    assert all(r == results[0] for r in results)


@pytest.mark.parametrize("version", [V445, V451, V457, V5])
def test_a_run_too_long_to_simulate_gets_no_plan_rather_than_a_truncated_one(version):
    """A billion epochs (or checkpoints) would take minutes and gigabytes to replay and list: PlanTooLong says so,
    quickly, instead of a truncated count."""
    from lf_lint.steps import MOST_SIMULATED, PlanTooLong

    with pytest.raises(PlanTooLong, match="more than lf-lint plans"):
        plan(version, 1000, 1, 1, num_train_epochs=1e9)
    with pytest.raises(PlanTooLong):
        plan(version, 1000, 1, 1, max_steps=MOST_SIMULATED * 2, save_steps=1)
    assert plan(version, 1000, 1, 1, num_train_epochs=1000).total_steps == 1_000_000  # a million steps still plan


def test_a_config_too_long_to_plan_says_so(tmp_path):
    from lf_lint.api import lint_result as api_lint

    config = {"model_name_or_path": "m", "stage": "sft", "do_train": True, "dataset": "d", "output_dir": "o",
              "bf16": True, "num_train_epochs": 1e9, "save_steps": 1}  # fmt: skip
    result = api_lint(config, num_examples=1000, transformers_version="4.57.1")
    assert result.plan.steps is None and result.plan.problem.startswith("not planned: ")
