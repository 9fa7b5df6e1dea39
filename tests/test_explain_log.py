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
from lf_lint.datafiles import read_json
from lf_lint.log_explanation import explain_startup_log, render_report, report_to_dict
from lf_lint.startup_log import LogError, identify, parse_startup_log
from lf_lint.steps import StepError, StepInputs, plan_steps
from lf_lint.versions import NEWEST_TRANSFORMERS, OLDEST_TRANSFORMERS, SUPPORTED_LLAMAFACTORY, parse_version


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
    assert found == {("4.45-4.46", False), ("4.47-4.51", False), ("4.45-5.8", True)}
    per_epoch = next(r for r in readings(trainer_log(1047, 300, 10, 80, 8, 3900)) if r.releases == "4.47-4.51")
    assert (per_epoch.plan.updates_per_epoch_in_loop, per_epoch.plan.epochs_trained) == (14, 278.609524)


def test_seed_example_4200_is_a_new_release():
    (only,) = readings(trainer_log(1047, 300, 10, 80, 8, 4200))
    assert (only.releases, only.drop_last, only.plan.update_steps_per_epoch) == ("4.52-5.8", False, 14)


def test_processes_come_from_the_total_batch():
    report = explain_startup_log(parse_startup_log(trainer_log(1047, 300, 10, 240, 8, 1500)))
    assert report.world_size == 3
    assert {r.releases for r in report.readings} >= {"4.52-5.8"}


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


def test_incomplete_block_says_what_is_missing():
    text = ("***** Running training *****\n  Num examples = 10\n  Num Epochs = 1\n"
            "  Instantaneous batch size per device = 1\n  Gradient Accumulation steps = 1\n"
            "  Total train batch size (w. parallel, distributed & accumulation) = 1\n")  # fmt: skip
    report = explain_startup_log(parse_startup_log(text))
    assert report.log.missing == ("Total optimization steps",) and report.world_size == 1
    assert {r.inferred for r in report.readings} == {"would print Total optimization steps = 10"}
    with pytest.raises(LogError, match="no Trainer start-up numbers"):
        parse_startup_log("nothing here")
    with pytest.raises(LogError, match="only the header"):
        parse_startup_log("***** Running training *****\n")


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


# --- pastes as people make them ------------------------------------------------------------------------------------

BLOG_VALUES = [  # the seed blog post's numbers, transformers 4.49.0's trainer.py lines
    (2406, "Num examples = 1,047"),
    (2407, "Num Epochs = 300"),
    (2408, "Instantaneous batch size per device = 10"),
    (2411, "Total train batch size (w. parallel, distributed & accumulation) = 80"),
    (2412, "Gradient Accumulation steps = 8"),
    (2413, "Total optimization steps = 3,900"),
    (2414, "Number of trainable parameters = 20,185,088"),
]


def paste(values=BLOG_VALUES, prefix="[INFO|trainer.py:{line}] 2025-02-20 10:11:12,345 >>   ", sep="\n\n"):
    """The lines as transformers' explicit format writes them (LLaMA-Factory turns it on), blank lines between."""
    return sep.join(prefix.format(line=line) + message for line, message in values) + "\n"


def without(*starts):
    return [(line, message) for line, message in BLOG_VALUES if not message.startswith(starts)]


def test_blog_paste_is_read_as_transformers_4_49_0():
    report = explain_startup_log(parse_startup_log(paste()))
    assert report.origin.releases == ("4.49.0",)
    assert report.origin.summary == "trainer.py:2406-2414 is transformers 4.49.0's start-up block"
    assert report.world_size == 1 and not report.log.missing and report.log.line == 1
    # 4.49 rounds the update steps per epoch down: 105 batches // 8 = 13, x 300 = 3,900 (4,200 from 4.52 on)
    assert {(r.releases, r.drop_last) for r in report.readings} == {("4.49.0", False), ("4.49.0", True)}
    by_drop = {r.drop_last: r.plan for r in report.readings}
    assert (by_drop[False].batches_per_epoch, by_drop[False].epochs_trained) == (105, 278.609524)
    assert by_drop[True].batches_per_epoch == 104


def test_cli_reads_the_blog_paste_from_stdin(capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO(paste()))
    assert main(["explain-log", "-"]) == 0
    out = capsys.readouterr().out
    assert "<stdin>:1: Trainer start-up block" in out
    assert "release: trainer.py:2406-2414 is transformers 4.49.0's start-up block" in out
    assert "transformers 4.49.0, dataloader_drop_last: false, num_train_epochs = 300" in out and "missing" not in out


@pytest.mark.parametrize(
    "prefix",
    [
        "[INFO|2025-02-20 10:11:12] trainer.py:{line} >>   ",  # LLaMA Board's running log (0.9.2-0.9.5)
        "[INFO|/usr/lib/python3/site-packages/transformers/trainer.py:{line}] 2025-02-20 10:11:12,345 >>   ",
        "[rank0]: [INFO|trainer.py:{line}] 2025-02-20 10:11:12,345 >>   ",
    ],
)
def test_other_prefixes_name_the_release_too(prefix):
    assert identify(parse_startup_log(paste(prefix=prefix))).releases == ("4.49.0",)


def test_paste_without_prefix_between_prose_and_chinese():
    text = (
        "大家好，我用 LLaMA-Factory 微调模型，为什么总步数是 3900 而不是 4200？日志如下：\n\n```\n"
        + paste(prefix="  ", values=[(0, "***** Running training *****"), *BLOG_VALUES])
        + "```\n谢谢！Thanks for any help.\n"
    )
    report = explain_startup_log(parse_startup_log(text))
    assert report.origin is None and report.log.line == 4 and not report.log.missing
    assert {(r.releases, r.drop_last) for r in report.readings} == {
        ("4.45-4.46", False), ("4.47-4.51", False), ("4.45-5.8", True)
    }  # fmt: skip


def test_evaluation_blocks_do_not_count_as_training_numbers():
    text = paste(sep="\n") + (
        "[INFO|trainer.py:4258] 2025-02-20 10:20:00,000 >> \n***** Running Evaluation *****\n"
        "[INFO|trainer.py:4260] 2025-02-20 10:20:00,000 >>   Num examples = 117\n"
        "[INFO|trainer.py:4263] 2025-02-20 10:20:00,000 >>   Batch size = 8\n"
    )
    log = parse_startup_log(text)
    assert (log.num_examples, log.blocks) == (1047, 1)


def test_missing_examples_become_a_range_per_release():
    log = parse_startup_log(paste(without("Num examples"), prefix=""))
    report = explain_startup_log(log)
    assert log.missing == ("Num examples",) and report.world_size == 1
    # 13 update steps per epoch: floor(len / 8) = 13 before 4.52, ceil(len / 8) = 13 after, where len is
    # ceil(n / 10) (or floor(n / 10) with drop_last); 1,047 is in every range but 4.52+'s without drop_last
    assert {(r.releases, r.drop_last, r.inferred) for r in report.readings} == {
        ("4.45-4.51", False, "if Num examples was 1,031-1,110"),
        ("4.52-5.8", False, "if Num examples was 961-1,040"),
        ("4.45-4.51", True, "if Num examples was 1,040-1,119"),
        ("4.52-5.8", True, "if Num examples was 970-1,049"),
    }
    narrowed = explain_startup_log(parse_startup_log(paste(without("Num examples"))))
    assert {(r.releases, r.inferred) for r in narrowed.readings} == {
        ("4.49.0", "if Num examples was 1,031-1,110"), ("4.49.0", "if Num examples was 1,040-1,119")
    }  # fmt: skip


def test_missing_steps_or_epochs_are_filled_in_per_release():
    steps = explain_startup_log(parse_startup_log(paste(without("Total optimization"), prefix="")))
    assert steps.log.missing == ("Total optimization steps",)
    assert {(r.releases, r.drop_last, r.inferred) for r in steps.readings} == {
        ("4.45-4.46", False, "would print Total optimization steps = 3,900"),
        ("4.47-4.51", False, "would print Total optimization steps = 3,900"),  # makes fewer updates than 4.45-4.46
        ("4.52-5.8", False, "would print Total optimization steps = 4,200"),
        ("4.45-5.8", True, "would print Total optimization steps = 3,900"),
    }
    epochs = explain_startup_log(parse_startup_log(paste(without("Num Epochs"))))
    assert {(r.releases, r.inferred) for r in epochs.readings} == {("4.49.0", "would print Num Epochs = 300")}


def test_two_numbers_missing_still_counts_the_processes(tmp_path, capsys):
    log = tmp_path / "partial.log"
    log.write_text(paste(without("Num examples", "Num Epochs", "Number of"), prefix=""))
    assert main(["explain-log", str(log)]) == 0
    out = capsys.readouterr().out
    assert "missing: Num examples, Num Epochs (explained as far as the other numbers allow)" in out
    assert "processes: 80 / (10 x 8) = 1" in out and "explained by" not in out


@pytest.mark.parametrize(
    "text",
    [
        "The loss went down, then NaN. 求助！\n",
        paste([(2406, "Num examples = 1,047")], prefix="  "),
        paste(without("Instantaneous", "Total train batch"), prefix="  "),
    ],
)
def test_nothing_usable_is_exit_2_with_a_message(text, tmp_path, capsys):
    log = tmp_path / "pasted.log"
    log.write_text(text)
    assert main(["explain-log", str(log)]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(f"lf-lint: error: {log}: ") and "Traceback" not in captured.err
    assert "start-up" in captured.err and not captured.out


def test_a_release_the_table_does_not_know_falls_back_to_every_release():
    report = explain_startup_log(
        parse_startup_log(paste(prefix="[INFO|trainer.py:9{line}] 2026-01-01 00:00:00,000 >> "))
    )
    assert report.origin.releases == () and "a newer or patched transformers?" in report.origin.summary
    assert {r.releases for r in report.readings} == {"4.45-4.46", "4.47-4.51", "4.45-5.8"}


def test_line_numbers_shared_by_releases_apart_keep_them_apart():
    # 4.50.x and 4.52.x log the block on the same lines (2409-2418); 4.51.x, in between, does not
    shifted = [(line + 4, message) for line, message in BLOG_VALUES]
    found = {(r.releases, r.drop_last) for r in explain_startup_log(parse_startup_log(paste(shifted))).readings}
    assert found == {("4.50.0-4.50.3", False), ("4.50.0-4.50.3", True), ("4.52.0-4.52.4", True)}
    new = [(line, message.replace("3,900", "4,200")) for line, message in shifted]
    found = {(r.releases, r.drop_last) for r in explain_startup_log(parse_startup_log(paste(new))).readings}
    assert found == {("4.52.0-4.52.4", False)}


def test_transformers_5_block_with_update_steps_per_epoch():
    values = [(1470, "Num examples = 1,047"), (1471, "Num Epochs = 300"), (1472, "Num update steps per epoch = 14"),
              (1473, "Instantaneous batch size per device = 10"),
              (1476, "Total train batch size (w. parallel, distributed & accumulation) = 80"),
              (1477, "Gradient Accumulation steps = 8"), (1478, "Total optimization steps = 4,200")]  # fmt: skip
    report = explain_startup_log(parse_startup_log(paste(values)))
    assert report.origin.releases == ("5.6.0", "5.6.1", "5.6.2", "5.7.0", "5.8.0", "5.8.1")
    assert "newer than lf-lint models" not in report.origin.summary  # 5.7 and 5.8 are modelled (trainer.py as 5.6.0)
    assert {(r.releases, r.drop_last) for r in report.readings} == {("5.6.0-5.8.1", False)}
    without_examples = explain_startup_log(parse_startup_log(paste(values[1:])))
    # 14 = ceil(len / 8): len 105-112, ceil(n / 10) (floor with drop_last)
    assert [r.inferred for r in without_examples.readings] == [
        "if Num examples was 1,041-1,120", "if Num examples was 1,050-1,129"
    ]  # fmt: skip


def test_ppo_block_from_llamafactory_logger_names_its_release():
    lines = [
        "***** Running training *****",
        "  Num examples = 1,000",
        "  Num Epochs = 2",
        "  Total train batch size (w. parallel, buffer, distributed & accumulation) = 32",
        "  Total training steps = 62",
    ]
    stdout = "\n".join(f"[INFO|2025-02-20 10:11:12] llamafactory.train.ppo.trainer:157 >> {line}" for line in lines)
    report = explain_startup_log(parse_startup_log(stdout))
    assert report.log.ppo and report.origin.releases == ("0.9.2",)
    assert report.log.missing == ("Instantaneous batch size per device", "Gradient Accumulation steps")
    assert report.readings[0].driver == "num_train_epochs = 2"
    board = stdout.replace("llamafactory.train.ppo.trainer:157", "logging.py:143")  # LLaMA Board's running log
    assert identify(parse_startup_log(board)).releases == ("0.9.3", "0.9.4")


def test_json_names_the_release_and_what_is_missing(tmp_path, capsys):
    log = tmp_path / "train.log"
    log.write_text(paste(without("Total optimization")))
    assert main(["explain-log", "--format", "json", str(log)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["missing"] == ["Total optimization steps"] and data["release"]["releases"] == ["4.49.0"]
    assert {e["inferred"] for e in data["explanations"]} == {"would print Total optimization steps = 3,900"}


# --- the line-number table (lf_lint/data/trainer_log_lines.json, tools/generate_trainer_log_lines.py) -------------

BLOCK_ORDER = ["header", "num_examples", "num_epochs", "per_device", "total_batch", "accumulation", "total_steps"]


def test_line_table_covers_every_supported_release_once_with_the_block_in_order():
    tables = read_json("trainer_log_lines.json")
    releases = [v for table in tables["transformers"] for v in table["releases"]]
    assert len(releases) == len(set(releases))
    minors = {parse_version(v)[:2] for v in releases}
    assert {(4, m) for m in range(45, 58)} | {(5, m) for m in range(0, 7)} <= minors
    assert {OLDEST_TRANSFORMERS, NEWEST_TRANSFORMERS, "4.46.0", "4.52.0"} <= set(releases)  # yanked ones too
    for table in tables["transformers"]:
        lines = table["lines"]
        assert table["file"] == "trainer.py" and set(BLOCK_ORDER) <= set(lines)
        assert [lines[k] for k in BLOCK_ORDER] == sorted(lines[k] for k in BLOCK_ORDER)
        assert lines["num_examples"] == lines["header"] + 1
        assert ("update_steps_per_epoch" in lines) == (parse_version(table["releases"][0]) >= (5, 3))
    assert [v for table in tables["llamafactory_ppo"] for v in table["releases"]] == list(SUPPORTED_LLAMAFACTORY)


def test_line_table_pinned_values():
    # read by hand from the wheels on PyPI: transformers-4.49.0 trainer.py lines 2405-2414 (header .. trainable
    # parameters, 2409 being `if ... != self._train_batch_size:`), 4.45.0's header on 2243, 5.6.0's on 1469 with
    # "Num update steps per epoch" on 1472; llamafactory-0.9.2 extras/logging.py line 157 is info_rank0's
    # `self.info(*args, **kwargs)` (a run of its logger with LLaMA Board's handler printed `logging.py:157`)
    tables = read_json("trainer_log_lines.json")
    by_release = {v: table["lines"] for table in tables["transformers"] for v in table["releases"]}
    assert by_release["4.49.0"] == {
        "header": 2405, "num_examples": 2406, "num_epochs": 2407, "per_device": 2408, "data_parallel": 2410,
        "total_batch": 2411, "accumulation": 2412, "total_steps": 2413, "trainable_params": 2414,
    }  # fmt: skip
    assert by_release["4.45.0"]["header"] == 2243
    assert (by_release["5.6.0"]["header"], by_release["5.6.0"]["update_steps_per_epoch"]) == (1469, 1472)
    ppo = {v: table["line"] for table in tables["llamafactory_ppo"] for v in table["releases"]}
    assert ppo["0.9.2"] == 157


def test_logs_saved_in_other_encodings(tmp_path, capsys, monkeypatch):
    text = "训练日志：\n" + paste()
    log = tmp_path / "powershell.log"
    log.write_bytes(text.encode("utf-16"))  # what PowerShell's `>` writes
    assert main(["explain-log", str(log)]) == 0
    assert "transformers 4.49.0's start-up block" in capsys.readouterr().out
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode("gbk"))))  # not UTF-8: must not raise
    assert main(["explain-log", "-"]) == 0
    assert "<stdin>:2: Trainer start-up block" in capsys.readouterr().out


def test_data_parallel_line_counts_gpus_of_one_process():
    values = [*BLOG_VALUES[:3], (2410, "Training with DataParallel so batch size has been adjusted to: 20")]
    values += [(2411, BLOG_VALUES[3][1].replace("80", "160")), *BLOG_VALUES[4:]]
    report = explain_startup_log(parse_startup_log(paste(values)))
    assert report.origin.releases == ("4.49.0",) and report.world_size == 2 and report.log.data_parallel == 20
    assert "(GPUs of one DataParallel process, 20 per step)" in render_report(report, "x")


def test_a_run_too_long_to_replay_is_said_not_hung_on():
    text = paste([(0, "Num Epochs = 1"), *without("Num examples", "Num Epochs")], prefix="  ")
    big = text.replace("3,900", "200,000").replace("= 8", "= 64").replace("= 80", "= 640")
    report = explain_startup_log(parse_startup_log(big))
    # 4.45-4.46 replay every micro-batch: about 200,000 x 64 per epoch, for each of ~9 plans of the search
    (note,) = report.notes
    assert note.startswith("transformers 4.45, 4.46 not tried: the run is too long to replay (about ")
    assert {r.releases for r in report.readings} == {"4.47-4.51", "4.52-5.8"}


BLOCK = [
    "***** Running training *****",
    "Num examples = {}",
    "Num Epochs = {}",
    "Num update steps per epoch = {}",
    "Instantaneous batch size per device = {}",
    "Total train batch size (w. parallel, distributed & accumulation) = {}",
    "Gradient Accumulation steps = {}",
    "Total optimization steps = {}",
    "***** Running Evaluation *****",
    "Num examples = {}",
    "Batch size = {}",
]
PREFIXES = ["", "[INFO|trainer.py:{}] 2025-02-20 10:11:12,345 >>   ", "[INFO|2025-02-20 10:11:12] logging.py:{} >> "]
NUMBER = st.one_of(st.integers(0, 40), st.sampled_from([0, 1, 10**9, 10**15, sys.maxsize, 1.5]))


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.tuples(st.booleans(), NUMBER, st.integers(2240, 2530)), min_size=len(BLOCK), max_size=len(BLOCK)),
    st.sampled_from(PREFIXES),
    st.sampled_from(["\n", "\n\n", "\n这是日志。\n"]),
    st.booleans(),
)
def test_any_paste_gives_a_report_or_a_clear_error(lines, prefix, sep, ppo):
    block = [line.replace("optimization", "training") if ppo else line for line in BLOCK]
    text = sep.join(
        prefix.format(at) + line.format(f"{value:,}") for line, (kept, value, at) in zip(block, lines) if kept
    )
    try:
        report = explain_startup_log(parse_startup_log(text))
    except LogError as error:
        assert "start-up" in str(error)
        return
    assert render_report(report, "x") and json.dumps(report_to_dict(report))
