"""The published pre-commit hook, run by the real `pre-commit try-repo` in a throwaway config repository."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRE_COMMIT = shutil.which("pre-commit") or str(Path(sys.executable).parent / "pre-commit")

TRAIN_BAD = """\
model_name_or_path: Qwen/Qwen3-0.6B
stage: sft
do_train: true
finetuning_type: lora
dataset: identity
template: qwen3
output_dir: saves/run
save_steps: 0.5
bf16: true
num_train_epoch: 3
"""

DEEPSPEED = '{"train_batch_size": "auto", "zero_optimization": {"stage": 3}, "bf16": {"enabled": "auto"}}\n'
ACCELERATE = "compute_environment: LOCAL_MACHINE\ndistributed_type: FSDP\nfsdp_config:\n  fsdp_version: 2\nnum_machines: 1\nuse_cpu: false\n"
WORKFLOW = "name: ci\non: [push]\njobs:\n  test:\n    runs-on: ubuntu-latest\n    steps: [{run: echo}]\n"


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


@pytest.mark.skipif(not Path(PRE_COMMIT).exists(), reason="pre-commit is not installed")
def test_hook_flags_train_configs_only(tmp_path):
    repo = tmp_path / "configs-repo"
    (repo / "configs").mkdir(parents=True)
    (repo / "configs" / "train.yaml").write_text(TRAIN_BAD)
    (repo / "ds_z3.json").write_text(DEEPSPEED)
    (repo / "accelerate.yaml").write_text(ACCELERATE)
    (repo / ".github" / "workflows").mkdir(parents=True)
    (repo / ".github" / "workflows" / "ci.yaml").write_text(WORKFLOW)
    (repo / "data").mkdir()
    (repo / "data" / "dataset_info.json").write_text('{"identity": {"file_name": "identity.json"}}')
    rows = [{"instruction": f"who are you {i}", "input": "", "output": "a model"} for i in range(40)]
    (repo / "data" / "identity.json").write_text(json.dumps(rows))
    (repo / "pyproject.toml").write_text(
        '[tool.lf-lint]\nllamafactory-version = "0.9.5"\ntransformers-version = "4.57.1"\n'
    )
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    env = dict(os.environ, PRE_COMMIT_HOME=str(tmp_path / "pre-commit-home"), GIT_AUTHOR_NAME="t",
               GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t")  # fmt: skip

    def run_hook() -> subprocess.CompletedProcess:
        return subprocess.run(
            [PRE_COMMIT, "try-repo", str(ROOT), "lf-lint", "--all-files", "--verbose"],
            cwd=repo, env=env, capture_output=True, text=True, timeout=900,
        )  # fmt: skip

    failed = run_hook()
    output = failed.stdout + failed.stderr
    assert failed.returncode == 1, output
    assert "configs/train.yaml:10:1" in output
    assert "LF101" in output and "num_train_epochs" in output
    for other in ("ds_z3.json:", "accelerate.yaml:", "ci.yaml:", "dataset_info.json:", "identity.json:"):
        assert other not in output, output

    (repo / "configs" / "train.yaml").write_text(TRAIN_BAD.replace("num_train_epoch:", "num_train_epochs:"))
    _git(repo, "add", "-A")
    passed = run_hook()
    assert passed.returncode == 0, passed.stdout + passed.stderr
