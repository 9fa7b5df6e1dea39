"""The plan rules' severity: a refusal counted exactly is an error; what rests on an estimated count is a note.

The Trainer's refusal of an empty data loader (LF501) was once reported as a note: the plan of a config without
steps marked itself inexact, and every plan finding of an inexact plan was demoted. A finding is demoted only when
it rests on an estimated example count (lf_lint/rules/plan.py, ``on_plan``).
"""

from __future__ import annotations

import contextlib
import io
import shutil
from pathlib import Path

import pytest

from lf_lint.cli import main
from lf_lint.steps import behaviour
from lf_lint.versions import parse_version

FIXTURES = Path(__file__).parent / "fixtures" / "data"
SFT = """\
model_name_or_path: Qwen/Qwen3-0.6B
stage: sft
do_train: true
finetuning_type: lora
dataset: identity
template: qwen3
output_dir: out
bf16: true
max_samples: 10
"""
# pre-training blocks of a hub model whose tokenizer is not on this machine: the count is an estimate
PT_ESTIMATED = (SFT.replace("stage: sft", "stage: pt").replace("dataset: identity", "dataset: c4_demo")
                .replace("max_samples: 10\n", "cutoff_len: 256\n"))  # fmt: skip
RELEASES = ["4.45.2", "4.46.3", "4.47.1", "4.48.3", "4.49.0", "4.51.3", "4.52.4", "4.55.4", "4.57.1", "5.0.0", "5.6.0"]
REFUSING = [r for r in RELEASES if behaviour(parse_version(r)).empty_loader_raises]
SILENT = [r for r in RELEASES if not behaviour(parse_version(r)).empty_loader_raises]


@pytest.fixture
def project(tmp_path):
    shutil.copytree(FIXTURES, tmp_path / "data")
    return tmp_path


def lint(project: Path, config: str, *options: str) -> tuple[int, list[str]]:
    (project / "cfg.yaml").write_text(config)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main([str(project / "cfg.yaml"), "--workdir", str(project), "--format", "concise", "--isolated",
                     "--llamafactory-version", "0.9.5", *options])  # fmt: skip
    return code, out.getvalue().splitlines()


def findings(lines: list[str], code: str) -> list[str]:
    return [line for line in lines if f" {code} [" in line]


@pytest.mark.parametrize("release", REFUSING)
def test_an_exactly_counted_empty_loader_is_an_error(project, release):
    code, lines = lint(project, SFT + "per_device_train_batch_size: 16\ndataloader_drop_last: true\n",
                       "--transformers-version", release)  # fmt: skip
    (finding,) = findings(lines, "LF501")
    assert "[error] transformers stops with: args.max_steps must be set to a positive value" in finding
    assert "10 examples give no full batch of 16 per process" in finding and "estimate" not in finding
    assert code == 1


@pytest.mark.parametrize("release", SILENT)
def test_releases_that_start_anyway_train_nothing(project, release):
    code, lines = lint(project, SFT + "per_device_train_batch_size: 16\ndataloader_drop_last: true\n",
                       "--transformers-version", release)  # fmt: skip
    (finding,) = findings(lines, "LF501")
    assert "[error] the data loader has no batch" in finding and "trains nothing" in finding
    assert not findings(lines, "LF505")  # not the remainder bug: there is no batch at all
    assert code == 1


def test_an_estimated_count_demotes_what_rests_on_it(project):
    """The same refusal on an estimated count is a note that says so; a batch that fits is not reported."""
    config = PT_ESTIMATED + "per_device_train_batch_size: 100000\ndataloader_drop_last: true\n"
    _, lines = lint(project, config, "--transformers-version", "4.57.1")
    (finding,) = findings(lines, "LF501")
    assert "[info]" in finding and "(the example count is an estimate:" in finding
    _, lines = lint(project, config.replace("100000", "1"), "--transformers-version", "4.57.1")
    assert not findings(lines, "LF501")


def test_findings_that_do_not_rest_on_the_count_keep_their_severity(project):
    """With an estimated count: save_steps beyond a max_steps run is certain (LF502), and warmup_steps beside
    warmup_ratio (LF507) is the config's alone; an interval beyond an epoch-based run's estimated end is a note."""
    _, lines = lint(project, PT_ESTIMATED + "max_steps: 20\nsave_steps: 500\nwarmup_steps: 5\nwarmup_ratio: 0.1\n",
                    "--transformers-version", "4.57.1")  # fmt: skip
    (interval,) = [f for f in findings(lines, "LF502") if "save_steps" in f]
    assert "[warning] save_steps 500 is beyond the last step (20)" in interval
    (both,) = findings(lines, "LF507")
    assert "[warning]" in both and "(the example count is an estimate:" in both
    _, lines = lint(project, PT_ESTIMATED + "save_steps: 100000\n", "--transformers-version", "4.57.1")
    (interval,) = [f for f in findings(lines, "LF502") if "save_steps" in f]
    assert "[info]" in interval and "(the example count is an estimate:" in interval


@pytest.mark.parametrize("extra", ["", "val_size: 0.1\neval_strategy: steps\neval_steps: 0.2\n", "packing: true\n",
                                   "max_steps: 30\nwarmup_ratio: 0.1\n", "dataloader_drop_last: true\nmax_samples: 37\n"])  # fmt: skip
def test_main_on_transformers_5_8_plans_as_0_9_5_on_5_6(project, extra):
    """LLaMA-Factory main's data pipeline is 0.9.5's and transformers 5.8's Trainer is 5.6's: the same plan."""
    from lf_lint import predict_steps

    config = SFT.replace("max_samples: 10\n", "") + "per_device_train_batch_size: 2\ngradient_accumulation_steps: 3\n" + extra
    (project / "cfg.yaml").write_text(config)
    plans = [predict_steps(str(project / "cfg.yaml"), workdir=project, num_gpus=2, llamafactory_version=lf,
                           transformers_version=tf).to_dict() for lf, tf in (("0.9.5", "5.6.0"), ("0.9.6.dev0", "5.8.0"))]  # fmt: skip
    assert plans[0] == plans[1]
