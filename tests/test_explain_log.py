"""`lf-lint explain-log`: reading the Trainer's start-up block back into releases and hidden settings.

The real Trainer's logs are checked in test_groundtruth.py (every plan case's log must name the
release that printed it); here: the documented example, round trips through the step
arithmetic, contradictions, the PPO and streaming variants, and the command line.
"""

from __future__ import annotations

import io
import json
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lf_lint.cli import main
from lf_lint.startup_log import LogError, explain_startup_log, parse_startup_log
from lf_lint.steps import StepError, StepInputs, plan_steps


def trainer_log(n, epochs, b, total_batch, ga, total, prefix="[INFO|trainer.py:2405] 2025-06-01 12:00:00,000 >> "):
    lines = [
        "***** Running training *****",
        f"  Num examples = {n:,}",
        f"  Num Epochs = {epochs:,}",
        f"  Instantaneous batch size per device = {b:,}",
        f"  Total train batch size (w. parallel, distributed & accumulation) = {total_batch:,}",
        f"  Gradient Accumulation steps = {ga}",
        f"  Total optimization steps = {total:,}",
        "  Number of trainable parameters = 4,194,304",
    ]
    return "some earlier line\n" + "\n".join(prefix + line for line in lines) + "\n  0%|          | 0/10\n"


def readings(text):
    return explain_startup_log(parse_startup_log(text)).readings


def test_seed_example_3900_is_an_old_release_or_drop_last():
    found = {(r.releases, r.drop_last) for r in readings(trainer_log(1047, 300, 10, 80, 8, 3900))}
    assert found == {("4.45-4.46", False), ("4.47-4.51", False), ("4.45-5.6", True)}
    per_epoch = next(r for r in readings(trainer_log(1047, 300, 10, 80, 8, 3900)) if r.releases == "4.47-4.51")
    assert (per_epoch.plan.updates_per_epoch_in_loop, per_epoch.plan.epochs_trained) == (14, 278.609524)


def test_seed_example_4200_is_a_new_release():
    (only,) = readings(trainer_log(1047, 300, 10, 80, 8, 4200))
    assert (only.releases, only.drop_last, only.plan.update_steps_per_epoch) == ("4.52-5.6", False, 14)


def test_processes_come_from_the_total_batch():
    report = explain_startup_log(parse_startup_log(trainer_log(1047, 300, 10, 240, 8, 1500)))
    assert report.world_size == 3
    assert {r.releases for r in report.readings} >= {"4.52-5.6"}


def test_fractional_epochs_and_max_steps_are_both_offered():
    (reading, *_) = readings(trainer_log(729, 1, 2, 2, 1, 183))
    assert "max_steps = 183" in reading.driver and "fractional num_train_epochs" in reading.driver


@pytest.mark.parametrize(
    "text, problem",
    [
        (trainer_log(1047, 300, 10, 90, 8, 3900), "not a multiple"),
        (trainer_log(1047, 300, 10, 80, 8, 4000), "no transformers release"),
    ],
)
def test_contradictions_are_named(text, problem):
    report = explain_startup_log(parse_startup_log(text))
    assert not report.readings and problem in " ".join(report.problems)


def test_a_stream_logs_total_batch_times_max_steps():
    text = trainer_log(800, sys.maxsize, 4, 8, 2, 100)
    (reading,) = readings(text)
    assert "streamed" in reading.driver
    assert explain_startup_log(parse_startup_log(trainer_log(801, sys.maxsize, 4, 8, 2, 100))).problems


def test_ppo_block():
    text = "\n".join(
        [
            "***** Running training *****",
            "  Num examples = 1,000",
            "  Num Epochs = 2",
            "  Instantaneous batch size per device = 4",
            "  Total train batch size (w. parallel, buffer, distributed & accumulation) = 32",
            "  Gradient Accumulation steps = 4",
            "  Num optimization epochs per batch = 4",
            "  Total training steps = 62",
        ]
    )
    log = parse_startup_log(text)
    assert log.ppo
    report = explain_startup_log(log)
    assert not report.problems and "num_train_epochs = 2" in report.readings[0].driver
    assert explain_startup_log(log._replace(total_steps=64)).problems


def test_incomplete_block_is_an_error():
    with pytest.raises(LogError, match="lacks: total steps"):
        parse_startup_log("***** Running training *****\n  Num examples = 10\n  Num Epochs = 1\n"
                          "  Instantaneous batch size per device = 1\n  Gradient Accumulation steps = 1\n"
                          "  Total train batch size (w. parallel, distributed & accumulation) = 1\n")  # fmt: skip
    with pytest.raises(LogError, match="no `"):
        parse_startup_log("nothing here")


VERSIONS = [(4, 45, 0), (4, 46, 3), (4, 48, 0), (4, 49, 0), (4, 51, 3), (4, 52, 4), (4, 57, 1), (5, 2, 0), (5, 6, 0)]


@settings(max_examples=300, deadline=None)
@given(
    n=st.integers(1, 5000),
    b=st.integers(1, 16),
    ga=st.integers(1, 16),
    world=st.integers(1, 8),
    epochs=st.sampled_from([1.0, 2.0, 3.0, 0.5, 1.5, 2.7, 10.0]),
    max_steps=st.sampled_from([-1, -1, -1, 7, 100]),
    drop_last=st.booleans(),
    version=st.sampled_from(VERSIONS),
)
def test_every_printed_plan_is_explained_by_its_release(n, b, ga, world, epochs, max_steps, drop_last, version):
    inputs = StepInputs(n, b, ga, world, epochs, max_steps, drop_last)
    try:
        plan = plan_steps(inputs, version)
    except StepError:
        return
    if plan.batches_per_epoch == 0:
        return
    text = trainer_log(plan.num_examples, plan.epochs_printed, b, plan.total_train_batch_size, ga, plan.total_steps)
    matches = []
    for reading in readings(text):
        first, _, last = reading.releases.partition("-")
        low, high = tuple(map(int, first.split("."))), tuple(map(int, (last or first).split(".")))
        if reading.drop_last == drop_last and low <= version[:2] <= high:
            matches.append(reading)
    assert matches, text
    assert any(r.plan.optimizer_updates == plan.optimizer_updates for r in matches)


def test_cli_text_json_stdin_and_exit_status(tmp_path, capsys, monkeypatch):
    log = tmp_path / "train.log"
    log.write_text(trainer_log(1047, 300, 10, 80, 8, 3900))
    assert main(["explain-log", str(log)]) == 0
    out = capsys.readouterr().out
    assert f"{log}:2: Trainer start-up block" in out and "transformers 4.47-4.51" in out and "278.61" in out

    assert main(["explain-log", "--format", "json", str(log)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["consistent"] and data["world_size"] == 1 and len(data["explanations"]) == 3

    monkeypatch.setattr(sys, "stdin", io.StringIO(trainer_log(1047, 300, 10, 80, 8, 4000)))
    assert main(["explain-log", "-"]) == 1
    assert "inconsistent" in capsys.readouterr().out

    assert main(["explain-log", str(tmp_path / "missing.log")]) == 2
    assert "missing.log" in capsys.readouterr().err
    (tmp_path / "empty.log").write_text("")
    assert main(["explain-log", str(tmp_path / "empty.log")]) == 2
