"""Launch switches (lf_lint/switches.py): the arguments a train config is read with under USE_MCA and
USE_MEGATRON_BRIDGE, how they are given (--env, [tool.lf-lint] env, the environment) or detected, the checks the
Megatron launches make at start-up, and LLaMA-Factory's own version check of transformers."""

from __future__ import annotations

import contextlib
import io
import json

import pytest

from lf_lint import lint
from lf_lint.cli import main
from lf_lint.settings import load_settings
from lf_lint.switches import LaunchEnv, enabled, parse_assignments
from lf_lint.versions import Target, installed_checkout_commit, satisfies

BASE = {"model_name_or_path": "Qwen/Qwen3-0.6B", "stage": "sft", "do_train": True, "dataset": "d", "template": "qwen3",
        "output_dir": "o", "bf16": True, "finetuning_type": "full"}  # fmt: skip
MCA = {"tensor_model_parallel_size": 2, "pipeline_model_parallel_size": 2, "use_distributed_optimizer": True,
       "overlap_grad_reduce": True, "overlap_param_gather": True, "moe_token_dispatcher_type": "alltoall"}  # fmt: skip
BRIDGE = {"tensor_model_parallel_size": 2, "pipeline_model_parallel_size": 2, "mixed_precision": "bf16_mixed",
          "use_distributed_optimizer": True}  # fmt: skip
MAIN = {"llamafactory_version": "0.9.6.dev0", "transformers_version": "5.8.0", "datasets": False}


def codes(config: dict, **kwargs) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for d in lint(config, **{"datasets": False, **kwargs}):
        found.setdefault(d.code, []).append(d.message)
    return found


def test_is_env_enabled_semantics():
    assert all(enabled({"X": v}, "X") for v in ("1", "true", "True", "y", "Y"))
    assert not any(enabled({"X": v}, "X") for v in ("0", "false", "yes", "on", ""))
    assert not enabled({}, "X")


def test_mcore_adapter_arguments_under_use_mca():
    """USE_MCA=1 (0.9.4+): mcore_adapter's TrainingArguments replace LLaMA-Factory's, so Megatron-Core's keys are
    accepted and Seq2SeqTrainingArguments' are not (mcore_adapter builds on transformers' TrainingArguments)."""
    config = {**BASE, **MCA}
    given = codes(config, llamafactory_version="0.9.5", env={"USE_MCA": "1"})
    assert "LF101" not in given and "LF107" not in given
    refused = codes({**config, "predict_with_generate": True}, llamafactory_version="0.9.5", env={"USE_MCA": "1"})
    assert any("predict_with_generate" in m for m in refused["LF101"])


def test_a_config_written_for_a_switch_is_read_under_it_with_a_note():
    detected = codes({**BASE, **MCA}, llamafactory_version="0.9.5")
    assert "LF101" not in detected
    (note,) = detected["LF107"]
    assert "checked as a config launched with USE_MCA=1" in note and "`tensor_model_parallel_size`" in note
    # before 0.9.4 there is no USE_MCA: the keys are unknown, and nothing says a switch would help
    old = codes({**BASE, **MCA}, llamafactory_version="0.9.3", transformers_version="4.51.3")
    assert len(old["LF101"]) == len(MCA) and "LF107" not in old
    # megatron-bridge's own keys (mixed_precision) pick USE_MEGATRON_BRIDGE on main
    bridge = codes({**BASE, **BRIDGE}, **MAIN)
    assert "LF101" not in bridge and "USE_MEGATRON_BRIDGE=1" in bridge["LF107"][0]


def test_a_typo_is_still_unknown_under_a_switch():
    found = codes({**BASE, **MCA, "tensor_model_paralel_size": 2}, llamafactory_version="0.9.5", env={"USE_MCA": "1"})
    assert found["LF101"] == [m for m in found["LF101"] if "tensor_model_paralel_size" in m] and found["LF101"]


def test_a_switch_the_release_lacks_is_said():
    found = codes(BASE, llamafactory_version="0.9.5", env={"USE_MEGATRON_BRIDGE": "1"})
    assert any("has no effect on LLaMA-Factory 0.9.5" in m for m in found["LF107"])
    both = codes(BASE, **MAIN, env={"USE_MCA": "1", "USE_MEGATRON_BRIDGE": "1"})
    assert any("LLaMA-Factory takes USE_MCA" in m for m in both["LF107"])


@pytest.mark.parametrize(
    "change, message",
    [({"stage": "dpo"}, "only supports the `pt` and `sft` stages"),
     ({"finetuning_type": "freeze"}, "only supports `full` and `lora` finetuning"),
     ({"finetuning_type": "lora", "quantization_bit": 4}, "Quantized models are not supported"),
     ({"deepspeed": {"zero_optimization": {"stage": 2}}}, "incompatible with DeepSpeed")],
)  # fmt: skip
def test_megatron_bridge_limits(change, message):
    found = codes({**BASE, **change}, **MAIN, env={"USE_MEGATRON_BRIDGE": "1"})
    assert any(message in m for m in found["LF262"])
    assert "LF262" not in codes(BASE, **MAIN, env={"USE_MEGATRON_BRIDGE": "1"})


def test_megatron_bridge_parallel_size_against_the_world():
    layout = {**BASE, "tensor_model_parallel_size": 4, "pipeline_model_parallel_size": 4}
    (exceeds,) = codes(layout, **MAIN, env={"USE_MEGATRON_BRIDGE": "1"}, num_gpus=8)["LF263"]
    assert "parallel size (16) exceeds `world_size` (8)" in exceeds
    (divides,) = codes({**layout, "pipeline_model_parallel_size": 3}, **MAIN, env={"USE_MEGATRON_BRIDGE": "1"},
                       num_gpus=16)["LF263"]  # fmt: skip
    assert "(12) must divide `world_size` (16)" in divides
    assert "LF263" not in codes(layout, **MAIN, env={"USE_MEGATRON_BRIDGE": "1"}, num_gpus=4, nnodes=4)
    found = lint(layout, **MAIN, env={"USE_MEGATRON_BRIDGE": "1"})  # the launch is not known: a note
    assert [d.severity.value for d in found if d.code == "LF263"] == ["info"]


def test_mca_overlap_param_gather_needs_the_distributed_optimizer():
    config = {**BASE, **MCA, "use_distributed_optimizer": False}
    (message,) = codes(config, llamafactory_version="0.9.5", env={"USE_MCA": "1"})["LF264"]
    assert "only supported with distributed optimizer" in message


def test_env_from_the_command_line_and_pyproject(tmp_path):
    (tmp_path / "cfg.yaml").write_text("\n".join(f"{k}: {json.dumps(v)}" for k, v in {**BASE, **MCA}.items()))
    (tmp_path / "pyproject.toml").write_text('[tool.lf-lint]\nenv = {USE_MCA = "1"}\nllamafactory-version = "0.9.5"\n')
    settings = load_settings(tmp_path / "pyproject.toml")
    assert settings.get("env") == ["USE_MCA=1"]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["--config", str(tmp_path / "pyproject.toml"), "--no-datasets", "--format", "concise",
                     str(tmp_path / "cfg.yaml")])  # fmt: skip
    assert code == 0 and "LF107" not in out.getvalue() and "LF101" not in out.getvalue()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err := io.StringIO()):
        assert main(["--isolated", "--env", "USE_MCA", str(tmp_path / "cfg.yaml")]) == 2
    assert "NAME=VALUE" in err.getvalue()
    assert parse_assignments(["A=1", "B="]) == {"A": "1", "B": ""}


def test_launch_env_layers_overrides_over_the_environment():
    env = LaunchEnv.of({"USE_MCA": "1"}, {"USE_MCA": "0", "WORLD_SIZE": "8"})
    assert env.enabled("USE_MCA") and env.variables["WORLD_SIZE"] == "8"
    assert env.arguments(Target("0.9.5", "4.57.1")) == "mca"
    assert env.arguments(Target("0.9.3", "4.51.3")) == "default"


@pytest.mark.parametrize(
    "llamafactory, transformers, refused",
    [("0.9.6.dev0", "5.6.0", True), ("0.9.6.dev0", "4.57.0", True), ("0.9.6.dev0", "5.8.0", False),
     ("0.9.6.dev0", "5.8.1", True), ("0.9.5", "5.6.0", False), ("0.9.5", "4.49.0", True), ("0.9.2", "4.46.3", True),
     ("0.9.3", "4.51.3", False)],
)  # fmt: skip
def test_llamafactory_refuses_transformers_outside_its_check(llamafactory, transformers, refused):
    found = codes(BASE, llamafactory_version=llamafactory, transformers_version=transformers)
    assert ("LF295" in found) == refused
    if refused:
        assert f"but found transformers=={transformers}" in found["LF295"][0]
        skipped = codes(BASE, llamafactory_version=llamafactory, transformers_version=transformers,
                        env={"DISABLE_VERSION_CHECK": "1"})  # fmt: skip
        assert "LF295" not in skipped


def test_version_specifiers():
    assert satisfies("5.8.0", ">=4.55.0,<=5.8.0,!=4.57.0,!=5.6.0")
    assert not satisfies("4.46.2", ">=4.41.2,<=4.49.0,!=4.46.2")
    assert not satisfies("4.46.9", "!=4.46.*") and satisfies("4.47.0", "!=4.46.*")


def test_the_commit_of_an_installed_checkout(tmp_path, monkeypatch):
    """An editable install of a git checkout (LLaMA-Factory's README install) names its folder in direct_url.json;
    the commit is read from the checkout's .git without running git (a worktree's .git file points elsewhere)."""
    site, checkout, gitdir = tmp_path / "site", tmp_path / "LLaMA-Factory", tmp_path / "repo.git"
    dist = site / "llamafactory-0.9.6.dev0.dist-info"
    dist.mkdir(parents=True)
    checkout.mkdir()
    (gitdir / "refs" / "heads").mkdir(parents=True)
    (dist / "direct_url.json").write_text(json.dumps({"url": checkout.as_uri(), "dir_info": {"editable": True}}))
    (checkout / ".git").write_text(f"gitdir: {gitdir}\n")
    (gitdir / "HEAD").write_text("ref: refs/heads/main\n")
    (gitdir / "refs" / "heads" / "main").write_text("0123456789abcdef0123456789abcdef01234567\n")
    monkeypatch.syspath_prepend(str(site))
    assert installed_checkout_commit("llamafactory") == "0123456789abcdef0123456789abcdef01234567"
    (gitdir / "HEAD").write_text("89abcdef0123456789abcdef0123456789abcdef\n")  # a detached HEAD
    assert installed_checkout_commit("llamafactory").startswith("89abcdef")


def test_an_installed_main_at_another_commit_is_modelled_as_the_recorded_one(monkeypatch):
    from lf_lint import versions

    monkeypatch.setattr(versions, "installed_version", lambda name: {"llamafactory": "0.9.6.dev0"}.get(name))
    monkeypatch.setattr(versions, "installed_checkout_commit", lambda name: "fedcba9876543210")
    resolution = versions.resolve()
    assert resolution.target.llamafactory == "0.9.6.dev0" and resolution.target.transformers == "5.8.0"
    (note,) = resolution.notes
    assert "main is at commit fedcba987" in note and "ff6d4d12e" in note and "installed source" in note
    assert "main at ff6d4d12e, 2026-08-18" in resolution.target.describe()


def test_use_kt_on_main_takes_transformers_kt_arguments():
    """Main's KTransformers set-up runs on transformers-kt, whose TrainingArguments take `kt_config`
    (data/switch_fields.json, read from its wheel); without use_kt, or on 0.9.5, the key is refused."""
    kt = {**BASE, "finetuning_type": "lora", "use_kt": True, "kt_cpu_activation": "retain",
          "kt_config": {"kt_backend": "AMXBF16", "kt_num_threads": 96}}  # fmt: skip
    assert not {"LF101", "LF102"} & set(codes(kt, **MAIN))
    assert {"LF101", "LF102"} & set(codes({**kt, "use_kt": False}, **MAIN))
    assert {"LF101", "LF102"} & set(codes(kt, llamafactory_version="0.9.5"))


def test_the_version_check_sees_the_release_itself_not_the_modelled_one():
    """transformers 5.23 is modelled as 5.8 (its arguments read from its source when installed), but main's
    start-up check refuses 5.23 itself."""
    (message,) = codes(BASE, llamafactory_version="0.9.6.dev0", transformers_version="5.23.0")["LF295"]
    assert "found transformers==5.23.0" in message
