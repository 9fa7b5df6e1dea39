"""Differential tests: lf-lint's verdicts against the real LLaMA-Factory, release by release.

Each ground-truth environment (tests/groundtruth/envs.py) holds one real LLaMA-Factory +
transformers pair. The generated cases go through LLaMA-Factory's own `llamafactory-cli train`
code path up to the start of training (tests/groundtruth/runner.py); lf-lint lints the same
files for the same versions. A case LLaMA-Factory refuses must get an error from lf-lint, and
a case it accepts must get none.

These tests need the environments (about 1.7 GB each). They run when LF_LINT_GROUNDTRUTH=1
(CI sets it and builds the environments); LF_LINT_GT_ENVS=name,name picks environments and
LF_LINT_GT_CASES the number of validation cases per environment.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lf_lint.diagnostics import Severity
from lf_lint.engine import LintOptions, lint_file
from lf_lint.log_explanation import explain_startup_log
from lf_lint.startup_log import parse_startup_log
from lf_lint.versions import parse_version

HERE = Path(__file__).resolve().parent / "groundtruth"
sys.path.insert(0, str(HERE))
import cases as gt_cases  # noqa: E402
import envs as gt_envs  # noqa: E402
import eval_probe  # noqa: E402
import formats as gt_formats  # noqa: E402
from conftest import MATCH_RATES  # noqa: E402

ENABLED = os.environ.get("LF_LINT_GROUNDTRUTH") == "1"
ENV_NAMES = [
    n
    for n in os.environ.get("LF_LINT_GT_ENVS", "lf092-tf449,lf093-tf451,lf094-tf457,lf095-tf457,lf095-tf56").split(",")
    if n
]
CASE_COUNT = int(os.environ.get("LF_LINT_GT_CASES", "160"))

pytestmark = pytest.mark.skipif(not ENABLED, reason="set LF_LINT_GROUNDTRUTH=1 to run against the real LLaMA-Factory")


def run_real(env_name: str, cases: list[dict], tmp: Path, processes: int = 1, model: Path | None = None) -> dict:
    python = gt_envs.ensure_env(env_name, gt_envs.default_root())
    cases_file, results_file = tmp / f"{env_name}-cases.json", tmp / f"{env_name}-results.json"
    cases_file.write_text(json.dumps(cases))
    launcher = [str(python)]
    if processes > 1:  # torchrun on CPU: one gloo process per "GPU"
        launcher = [
            str(python.parent / "torchrun"),
            "--nproc_per_node",
            str(processes),
            "--master_port",
            str(free_port()),
        ]
    env = gt_envs.gt_environ(env_name, gt_envs.default_root(), scratch=tmp)
    if model is not None:
        env["LF_LINT_GT_MODEL"] = str(model)
    subprocess.run(
        [*launcher, str(HERE / "runner.py"), str(cases_file), str(results_file)],
        check=True, env=env, capture_output=True, text=True,
    )  # fmt: skip
    return json.loads(results_file.read_text())


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def lint_case(case: dict, versions: dict, tmp: Path, exact_python: str | None = None):
    workdir = tmp / "lint" / case["id"].replace("/", "_")
    for relpath, content in case["files"].items():
        (workdir / relpath).parent.mkdir(parents=True, exist_ok=True)
        (workdir / relpath).write_text(content)
    gt_formats.write_tables(workdir, case.get("tables"))
    if case.get("export"):  # what LLaMA-Factory wrote in the run (a tokenized dataset), where lf-lint will look
        shutil.copytree(tmp / "exported" / case["id"] / case["export"], workdir / case["export"])
    config = workdir / case.get("config_name", "cfg.yaml")
    config.write_text(case["config"])
    options = LintOptions(
        llamafactory_version=versions["llamafactory"], transformers_version=versions["transformers"],
        workdir=workdir, overrides=tuple(case.get("overrides", ())),
        # the real run's environment: gt_environ disables LLaMA-Factory's version check (lf095-tf58 runs 0.9.5 on 5.8)
        env={"DISABLE_VERSION_CHECK": "1", **case.get("launch_env", {})},
        num_gpus=case.get("num_gpus", None if case.get("launch_env") else 1),  # the runner's process count, stated
        exact=exact_python is not None, exact_python=exact_python,
    )  # fmt: skip
    return lint_file(config, options)


PLAN_COUNT = int(os.environ.get("LF_LINT_GT_PLAN_CASES", "150"))
# the Trainer's numbers (runner.py) -> lf-lint's plan keys
PLAN_KEYS = {
    "num_examples": "num_examples", "total_steps": "total_steps", "warmup_steps": "warmup_steps",
    "save_steps": "save_steps", "logging_steps": "logging_steps", "eval_steps": "eval_steps",
    "num_train_epochs": "epochs_printed", "total_train_batch_size": "total_train_batch_size",
    "num_eval_examples": "num_eval_examples", "world_size": "world_size",
}  # fmt: skip


@pytest.mark.parametrize("env_name", ENV_NAMES)
def test_step_plans_match_the_trainer(env_name, tmp_path):
    """Random datasets (with invalid rows) and arguments: every number the Trainer resolves at the start; and a
    run that loads the tokenized dataset an earlier run saved."""
    cases = gt_cases.plan_cases(PLAN_COUNT) + gt_cases.tokenized_cases() + gt_cases.format_cases()
    compare_plans(env_name, cases, tmp_path, "step plans")


MULTI_COUNT = int(os.environ.get("LF_LINT_GT_MULTI_CASES", "40"))


@pytest.mark.parametrize("world_size", [2, 3])
@pytest.mark.parametrize("env_name", ENV_NAMES)
def test_step_plans_under_torchrun(env_name, world_size, tmp_path):
    """The same under `torchrun --nproc_per_node W` (gloo on CPU). lf-lint learns the process count from
    --num-gpus (W=2) or from the launcher's WORLD_SIZE (W=3)."""
    cases = gt_cases.multiprocess_cases(MULTI_COUNT if world_size == 2 else MULTI_COUNT // 2, world_size)
    for case in cases:
        if world_size == 2:
            case["num_gpus"] = 2
        else:
            case["launch_env"] = {"WORLD_SIZE": str(world_size)}
    compare_plans(env_name, cases, tmp_path, f"torchrun x{world_size}", processes=world_size)


PPO_KEYS = ("num_examples", "total_steps", "warmup_steps", "num_train_epochs", "total_train_batch_size", "world_size")


@pytest.mark.parametrize("env_name", ENV_NAMES)
def test_ppo_plans(env_name, tmp_path):
    """LLaMA-Factory's own PPO trainer (0.9.4+ refuse it on their pinned trl: LF292)."""
    compare_plans(env_name, gt_cases.ppo_cases(24), tmp_path, "PPO plans", keys=PPO_KEYS, need_compared=False)


def compare_plans(
    env_name: str,
    cases: list[dict],
    tmp_path: Path,
    label: str,
    processes: int = 1,
    keys=tuple(PLAN_KEYS),
    need_compared=True,
) -> None:
    real = run_real(env_name, cases, tmp_path, processes)
    versions = {"llamafactory": real["llamafactory"], "transformers": real["transformers"]}
    mismatches, compared = [], 0
    for case, truth in zip(cases, real["results"]):
        result = lint_case(case, versions, tmp_path)
        errors = [f"{d.code} {d.message}" for d in result.diagnostics if d.severity is Severity.ERROR]
        if truth["error"] is not None or errors:
            if (truth["error"] is not None) != bool(errors):
                mismatches.append({"case": case["id"], "llamafactory": truth["error"], "lf_lint": errors})
            continue
        compared += 1
        plan = result.plan.to_dict()
        assert result.plan.exact, case["id"]
        diff = {
            k: (truth[k], plan.get(PLAN_KEYS[k]))
            for k in keys
            if truth.get(k) is not None and truth[k] != plan.get(PLAN_KEYS[k])
        }
        if diff:
            mismatches.append({"case": case["id"], "differs (trainer, lf-lint)": diff, "config": case["config"]})
        if not explains(truth["startup_log"], versions["transformers"], "dataloader_drop_last" in case["config"]):
            mismatches.append({"case": case["id"], "explain-log misses": truth["startup_log"]})
    matched = compared - len([m for m in mismatches if "differs (trainer, lf-lint)" in m])
    rejected = len(cases) - compared
    MATCH_RATES.append(f"{env_name}: {label} {matched}/{compared} identical in {', '.join(keys)}; explain-log agrees; "
                       f"{rejected} refused by both")  # fmt: skip
    assert compared > len(cases) // 2 or not need_compared
    assert not mismatches, json.dumps(mismatches, indent=1)


@pytest.mark.parametrize("env_name", ENV_NAMES)
def test_eval_datasets_match(env_name, tmp_path):
    """Eval datasets, merged or each evaluated apart (`eval_on_each_dataset`): the Trainer's eval sets."""
    cases = gt_cases.eval_dataset_cases()
    real = run_real(env_name, cases, tmp_path)
    versions = {"llamafactory": real["llamafactory"], "transformers": real["transformers"]}
    mismatches, compared = [], 0
    for case, truth in zip(cases, real["results"]):
        result = lint_case(case, versions, tmp_path)
        errors = [d for d in result.diagnostics if d.severity is Severity.ERROR]
        if truth["error"] or errors:  # 0.9.2 has no eval_on_each_dataset: both must refuse
            if bool(truth["error"]) != bool(errors):
                mismatches.append(
                    {"case": case["id"], "llamafactory": truth["error"], "lf_lint": [d.message for d in errors]}
                )
            continue
        plan = result.plan
        mine = {d.name: d.examples for d in plan.datasets if d.role == "eval"}
        theirs = truth.get("eval_examples_per_dataset")
        if theirs is not None:
            same = plan.eval_per_dataset and mine == theirs and plan.num_eval_examples == sum(theirs.values())
        else:
            same = not plan.eval_per_dataset and plan.num_eval_examples == truth.get("num_eval_examples")
        same = same and plan.num_examples == truth["num_examples"]
        compared += 1
        if not same:
            mismatches.append({"case": case["id"], "trainer": {k: truth.get(k) for k in ("num_examples", "num_eval_examples",
                               "eval_examples_per_dataset")}, "lf_lint": plan.to_dict()})  # fmt: skip
    MATCH_RATES.append(f"{env_name}: eval datasets (merged and eval_on_each_dataset) identical on {compared - len(mismatches)}/{compared}; "
                       f"{len(cases) - compared} refused by both")  # fmt: skip
    assert not mismatches, json.dumps(mismatches, indent=1, default=str)


@pytest.mark.parametrize("env_name", ENV_NAMES)
def test_exact_counts_ask_llamafactory(env_name, tmp_path):
    """Packed pre-training blocks and packed SFT: lf-lint's own count with the model's local tokenizer (chat templates,
    truncation, per-batch packing) and `--exact` (LLaMA-Factory's own pipeline, run by lf-lint with the environment's
    Python) both give the Trainer's `Num examples`."""
    cases = gt_cases.packing_cases(12)
    model = tmp_path / "model"
    real = run_real(env_name, cases, tmp_path, model=model)
    versions = {"llamafactory": real["llamafactory"], "transformers": real["transformers"]}
    python = str(gt_envs.env_python(env_name, gt_envs.default_root()))
    mismatches, compared_own = [], 0
    for case, truth in zip(cases, real["results"]):
        if truth["error"]:
            continue
        case = dict(case, config=case["config"].replace("__MODEL__", str(model)))
        result = lint_case(case, versions, tmp_path, exact_python=python)
        plan = result.plan.to_dict()
        if plan["num_examples"] != truth["num_examples"] or not plan["exact"]:
            mismatches.append({"case": case["id"], "trainer": truth["num_examples"], "lf_lint --exact": plan["num_examples"],
                               "basis": plan["basis"]})  # fmt: skip
        own = lint_case(dict(case, id=case["id"] + "-own"), versions, tmp_path).plan  # the README's install alone
        compared_own += 1
        eval_differs = truth.get("num_eval_examples") is not None and own.num_eval_examples != truth["num_eval_examples"]
        if (own.num_examples, own.exact) != (truth["num_examples"], True) or eval_differs:
            mismatches.append({"case": case["id"], "trainer": truth["num_examples"], "lf_lint (tokenizer)": own.num_examples,
                               "basis": own.basis, "config": case["config"]})  # fmt: skip
    MATCH_RATES.append(f"{env_name}: packed counts (pt blocks, packed SFT with chat templates) identical to the Trainer's "
                       f"with --exact on {len(cases)} cases and with the local tokenizer on {compared_own}")  # fmt: skip
    assert compared_own >= len(cases) // 2
    assert not mismatches, json.dumps(mismatches, indent=1)


@pytest.mark.parametrize("env_name", ENV_NAMES)
def test_chat_template_lengths_match_llamafactory(env_name, tmp_path):
    """Every chat template of the release: the token length of each encoded, truncated example (what packing packs)
    is LLaMA-Factory's own, with two tokenizers and varied settings (mask_history, thinking, default_system, cutoff)."""
    from lf_lint.dataset import chat_template, tool_formats
    from lf_lint.dataset.conversion import Conversation
    from lf_lint.dataset.tokens import TokenCounter

    python = str(gt_envs.ensure_env(env_name, gt_envs.default_root()))
    probe = str(HERE / "template_probe.py")
    env = gt_envs.gt_environ(env_name, gt_envs.default_root(), scratch=tmp_path)
    built = subprocess.run(
        [python, probe, "--build-tokenizers", str(tmp_path)], check=True, env=env, capture_output=True, text=True
    )
    tokenizers = json.loads(built.stdout)
    release = gt_envs.VERSION_SETS[env_name]["llamafactory"]
    names = chat_template.template_names(release)
    conversations = gt_cases.template_conversations(60)
    settings = gt_cases.template_settings(names)
    cases_file, results_file = tmp_path / "template-cases.json", tmp_path / "template-results.json"
    cases_file.write_text(json.dumps({"tokenizers": tokenizers, "conversations": conversations, "settings": settings}))
    subprocess.run(
        [python, probe, str(cases_file), str(results_file)], check=True, env=env, capture_output=True, text=True
    )
    results = json.loads(results_file.read_text())["results"]
    encoded = [Conversation(tuple((m["role"], m["content"]) for m in c["prompt"] + c["response"]), c["system"], c["tools"], False)
               for c in conversations]  # fmt: skip
    mismatches, identical, with_tools, estimated, refused = [], 0, 0, 0, 0
    for setting, truth in zip(settings, results):
        if "error" in truth:  # the template itself cannot be used (0.9.2 without a tool format, ...)
            refused += 1
            continue
        template = chat_template.load_template(setting["template"], release)
        measure = chat_template.SupervisedLengths(
            TokenCounter(Path(tokenizers[setting["tokenizer"]]) / "tokenizer.json"), template, release, setting
        )
        supported = {measure.function_format, measure.tools_format} <= set(tool_formats.SUPPORTED)
        for conversation, theirs, mine in zip(conversations, truth["lengths"], measure.lengths(encoded)):
            uses_tools = conversation["tools"] not in ("", "[]") or any(
                m["role"] == "function" for m in conversation["prompt"] + conversation["response"]
            )
            if mine is not None and mine == theirs:
                identical += 1
                with_tools += uses_tools
                continue
            expected_gap = template.multimodal or isinstance(theirs, str) or (uses_tools and not supported)
            if (
                mine is None and expected_gap
            ):  # left to the estimate: multimodal, a row LLaMA-Factory stops on, other tool formats
                estimated += 1
            else:
                mismatches.append(
                    {"setting": setting, "conversation": conversation, "llamafactory": theirs, "lf_lint": mine}
                )
    MATCH_RATES.append(f"{env_name}: chat-template lengths identical on {identical} (template setting, conversation) pairs "
                       f"({with_tools} with tools or function calls) over {len(settings)} settings; {estimated} left to the estimate (multimodal templates, other tool "
                       f"formats, rows LLaMA-Factory stops on); {refused} settings refused by LLaMA-Factory")  # fmt: skip
    assert identical > len(settings) * len(conversations) // 2 and with_tools > len(settings)
    assert not mismatches, json.dumps(mismatches[:3], indent=1, ensure_ascii=False)


def run_probe_script(env_name: str, script: str, cases: list[dict], tmp: Path, pythonpath: Path | None = None) -> dict:
    """tests/groundtruth/``script`` run by env ``env_name``'s python on ``cases``: what it wrote."""
    python = gt_envs.ensure_env(env_name, gt_envs.default_root())
    cases_file, results_file = tmp / f"{env_name}-{script}-cases.json", tmp / f"{env_name}-{script}-results.json"
    cases_file.write_text(json.dumps(cases))
    environ = gt_envs.gt_environ(env_name, gt_envs.default_root(), scratch=tmp)
    if pythonpath is not None:
        environ = dict(environ, PYTHONPATH=str(pythonpath))
    done = subprocess.run([str(python), str(HERE / script), str(cases_file), str(results_file)], env=environ,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(results_file.read_text())


def run_memory_probe(env_name: str, cases: list[dict], tmp: Path) -> dict:
    return run_probe_script(env_name, "memory_probe.py", cases, tmp)


_SMART_RESIZE = """
import json, math, sys
from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize
out = {}
for max_pixels, side in json.loads(sys.argv[1]):
    most = 0
    for width in range(1, math.isqrt(max_pixels * 200) + 1):  # every aspect ratio up to LLaMA-Factory's 200:1
        height = max_pixels // width
        width, height = max(width, 28), max(height, 28)  # Qwen2VLPlugin._preprocess_image's least side
        if max(width, height) <= 200 * min(width, height):
            h, w = smart_resize(height, width, factor=side, min_pixels=56 * 56, max_pixels=10**9)
            most = max(most, h * w // (side * side))
    out[f"{max_pixels},{side}"] = most
print(json.dumps(out))
"""


def test_image_tokens_bound_matches_smart_resize():
    """The most image tokens lf-lint counts for an image of at most image_max_pixels is the most transformers'
    own smart_resize gives any aspect ratio (Qwen2-VL/2.5-VL 28-pixel tokens, Qwen3-VL 32)."""
    from lf_lint.memory.vision import most_image_tokens

    # (transformers 5 imports torchvision for its image processors, which the environments do not install)
    env_name = next((name for name in reversed(ENV_NAMES) if "-tf4" in name), None)
    if env_name is None:
        pytest.skip("no ground-truth environment with transformers 4")
    python = gt_envs.ensure_env(env_name, gt_envs.default_root())
    sizes = [[768 * 768, 28], [256 * 256, 28], [1024 * 1024, 28], [262144, 32], [1280 * 28 * 28, 28]]
    real = json.loads(subprocess.run([str(python), "-c", _SMART_RESIZE, json.dumps(sizes)], check=True, text=True,
                                     capture_output=True, env=gt_envs.gt_environ(env_name, gt_envs.default_root())).stdout)  # fmt: skip
    mine = {f"{m},{side}": most_image_tokens(m, side) for m, side in sizes}
    assert mine == real
    MATCH_RATES.append(f"{env_name}: image tokens per image {len(mine)}/{len(real)} as smart_resize's worst case")


_FSDP_ENVIRONMENT = """
import json, os, sys, transformers
from transformers import TrainingArguments
out = []
for config in json.loads(sys.argv[1]):
    for name in ("ACCELERATE_USE_FSDP", "FSDP_CPU_RAM_EFFICIENT_LOADING"):
        os.environ.pop(name, None)
    TrainingArguments(output_dir=sys.argv[2], fsdp="full_shard auto_wrap", fsdp_config=config, report_to="none")
    out.append(all(os.environ.get(n, "false").lower() == "true"
                   for n in ("ACCELERATE_USE_FSDP", "FSDP_CPU_RAM_EFFICIENT_LOADING")))
print(json.dumps([transformers.__version__, out]))
"""


@pytest.mark.parametrize("env_name", ENV_NAMES)
def test_fsdp_loading_matches_training_arguments(env_name, tmp_path):
    """LF294's reading of a YAML `fsdp` under torchrun: whether TrainingArguments leaves both variables that make
    transformers' is_fsdp_enabled() true (the model then loads sharded and LLaMA-Factory refuses 8-bit weights)."""
    import yaml

    from lf_lint.launch import Launch, fsdp_loads_on_cpu
    from lf_lint.loading import load
    from lf_lint.rules.base import Context
    from lf_lint.versions import Target

    python = gt_envs.ensure_env(env_name, gt_envs.default_root())
    configs = [{"cpu_ram_efficient_loading": True}, {"cpu_ram_efficient_loading": "false"}, {}]
    version, real = json.loads(subprocess.run([str(python), "-c", _FSDP_ENVIRONMENT, json.dumps(configs), str(tmp_path)],
                                              check=True, text=True, capture_output=True,
                                              env=gt_envs.gt_environ(env_name, gt_envs.default_root(), scratch=tmp_path)).stdout)  # fmt: skip
    target = Target(gt_envs.VERSION_SETS[env_name]["llamafactory"], version)
    mine = []
    for config in configs:
        text = yaml.safe_dump({"fsdp": "full_shard auto_wrap", "fsdp_config": config, "model_name_or_path": "m"})
        ctx = Context(load("cfg.yaml", target, text=text), target, "train", "train", tmp_path, Launch(2, 1, "option"))
        mine.append(fsdp_loads_on_cpu(ctx.args, ctx.launch, ctx.target.tf))
    assert mine == real
    MATCH_RATES.append(f"{env_name}: FSDP loading {len(real)}/{len(real)} as TrainingArguments sets it up")


_EARLY_STOPPING = """
import json, sys
import llamafactory, transformers
from transformers import EarlyStoppingCallback
from llamafactory.hparams import get_train_args
out = []
for args in json.loads(sys.argv[1]):
    args = dict(args, output_dir=sys.argv[2], overwrite_output_dir=True, report_to="none")
    try:
        training_args, finetuning_args = get_train_args(args)[2:4]
        if finetuning_args.early_stopping_steps is not None:  # train/tuner.py adds the callback; Trainer.train calls it
            EarlyStoppingCallback(finetuning_args.early_stopping_steps).on_train_begin(training_args, None, None)
        out.append(None)
    except (Exception, SystemExit) as exc:
        out.append(f"{type(exc).__name__}: {exc}"[:300])
print(json.dumps([llamafactory.__version__, transformers.__version__, out]))
"""


@pytest.mark.parametrize("env_name", ENV_NAMES)
def test_early_stopping_matches_the_callback(env_name, tmp_path):
    """LF318 against transformers' EarlyStoppingCallback.on_train_begin on the TrainingArguments LLaMA-Factory
    parses (0.9.2 has no early_stopping_steps: both refuse the key)."""
    import yaml

    python = gt_envs.ensure_env(env_name, gt_envs.default_root())
    base = {"model_name_or_path": "m", "stage": "sft", "do_train": True, "finetuning_type": "lora",
            "dataset": "d", "template": "default", "early_stopping_steps": 2}  # fmt: skip
    evaluated = {"val_size": 0.1, "eval_strategy": "steps", "eval_steps": 10, "save_steps": 10}
    variants = [{}, evaluated, {"metric_for_best_model": "eval_loss"}, {**evaluated, "metric_for_best_model": "eval_loss"},
                {**evaluated, "load_best_model_at_end": True}, {**evaluated, "lr_scheduler_type": "reduce_lr_on_plateau"},
                {"load_best_model_at_end": True, "save_strategy": "no"}]  # fmt: skip
    cases = [{**base, **variant} for variant in variants]
    environ = gt_envs.gt_environ(env_name, gt_envs.default_root(), scratch=tmp_path)
    done = subprocess.run([str(python), "-c", _EARLY_STOPPING, json.dumps(cases), str(tmp_path / "out")],
                          text=True, capture_output=True, env=environ)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    llamafactory, transformers, real = json.loads(done.stdout.strip().splitlines()[-1])
    mismatches = []
    for case, truth in zip(cases, real):
        config = tmp_path / "cfg.yaml"
        config.write_text(yaml.safe_dump({**case, "output_dir": str(tmp_path / "out")}))
        options = LintOptions(llamafactory_version=llamafactory, transformers_version=transformers, workdir=tmp_path,
                              count_datasets=False, env={"DISABLE_VERSION_CHECK": "1"})  # fmt: skip
        errors = [d.code for d in lint_file(config, options).diagnostics if d.severity is Severity.ERROR]
        if (truth is not None) != bool(errors) or (truth is not None and "EarlyStopping" in truth) != ("LF318" in errors):
            mismatches.append({"case": case, "transformers": truth, "lf_lint": errors})
    refused = sum(truth is not None for truth in real)
    MATCH_RATES.append(f"{env_name}: early stopping {len(cases) - len(mismatches)}/{len(cases)} as the callback "
                       f"decides ({refused} refused)")  # fmt: skip
    assert not mismatches, json.dumps(mismatches, indent=1)


@pytest.mark.parametrize("env_name", ENV_NAMES)
def test_model_types_match_transformers(env_name, tmp_path):
    """lf_lint/data/model_types.json knows exactly the model types of the env's transformers (CONFIG_MAPPING_NAMES),
    and LF276 and LF293 foresee which configs LLaMA-Factory's load_config and quantization set-up refuse, and why."""
    import yaml

    from lf_lint.loading import load
    from lf_lint.rules.base import Context
    from lf_lint.rules.checkpoint import UNKNOWN_MODEL_TYPE, _known, _model_types
    from lf_lint.rules.upstream_lf import QUANT_METHOD_BITS
    from lf_lint.versions import Target

    python = gt_envs.ensure_env(env_name, gt_envs.default_root())
    environ = gt_envs.gt_environ(env_name, gt_envs.default_root())
    listed = subprocess.run([str(python), "-c", "import json, transformers; from transformers.models.auto.configuration_auto "
                             "import CONFIG_MAPPING_NAMES as m; print(json.dumps([transformers.__version__, sorted(m)]))"],
                            env=environ, capture_output=True, text=True, check=True).stdout  # fmt: skip
    version, types = json.loads(listed.strip().splitlines()[-1])
    mine = {t for t in _model_types() if _known(t, parse_version(version))}
    assert mine == set(types), (sorted(set(types) - mine)[:10], sorted(mine - set(types))[:10])

    cases = gt_cases.config_cases()
    cases += [
        dict(c, id=f"{c['id']}-trusted", args={"trust_remote_code": True}) for c in cases if c["id"] == "custom-code"
    ]
    cases_file, results_file = tmp_path / "config-cases.json", tmp_path / "config-results.json"
    cases_file.write_text(json.dumps(cases))
    subprocess.run([str(python), str(HERE / "config_probe.py"), str(cases_file), str(results_file)], check=True,
                   env=environ, capture_output=True, text=True)  # fmt: skip
    real = json.loads(results_file.read_text())
    target = Target(real["llamafactory"], real["transformers"])
    refused = 0
    for case, truth in zip(cases, real["results"]):
        model_dir = tmp_path / "models" / case["id"]
        model_dir.mkdir(parents=True)
        (model_dir / "config.json").write_text(json.dumps(case["config"]))
        args = dict(case["args"], model_name_or_path=str(model_dir))
        ctx = Context(
            load("cfg.yaml", target, text=yaml.safe_dump(args)), target, "train", "train", tmp_path, gt_launch()
        )
        predicted = [f.message for rule in (UNKNOWN_MODEL_TYPE, QUANT_METHOD_BITS) for f in rule.check(ctx)]
        if truth["error"] is not None and "only accepts" in truth["error"]:  # the quantization method's widths
            assert predicted and truth["error"].split(": ", 1)[1] in predicted[0], (case["id"], truth, predicted)
        elif truth["error"] is None or "bitsandbytes" in truth["error"]:
            assert not predicted, (case["id"], truth, predicted)  # loaded (or got as far as importing bitsandbytes)
        elif "trust_remote_code" in truth["error"]:
            assert predicted and "trust_remote_code" in predicted[0], (case["id"], truth, predicted)
        elif "does not recognize this architecture" in truth["error"]:
            assert predicted and "does not recognize this architecture" in predicted[0], (case["id"], truth, predicted)
        else:  # custom code trusted but absent here: beyond what LF276 checks
            assert case["id"] == "custom-code-trusted" and not predicted, (case["id"], truth, predicted)
        refused += bool(predicted)
    MATCH_RATES.append(f"{env_name}: model types {len(mine)}/{len(types)} as transformers {version} lists them; "
                       f"LF276/LF293 foresee {refused} refused configs of {len(cases)}")  # fmt: skip


@pytest.mark.parametrize("env_name", ENV_NAMES)
def test_memory_components_match_llamafactory(env_name, tmp_path):
    """Parameter counts, trainable parameters and their dtype for every model family and tuning method, as
    LLaMA-Factory's own loader sets them up; and the activations autograd saves (LLaMA-Factory >= 0.9.4, where
    weights load in the checkpoint's bf16 as on a GPU; older releases pick fp32 on a CPU)."""
    import yaml

    from lf_lint.loading import load
    from lf_lint.memory.estimate import saved_activations
    from lf_lint.memory.inputs import build_inputs
    from lf_lint.memory.model import ModelInfo, count_params, freeze_module_names, shape_from_config
    from lf_lint.memory.vision import patch_bytes
    from lf_lint.rules import checkpoint as checkpoint_rules
    from lf_lint.rules.base import Context
    from lf_lint.versions import Target

    cases = gt_cases.memory_cases()
    real = run_memory_probe(env_name, cases, tmp_path)
    target = Target(real["llamafactory"], real["transformers"])
    mismatches, compared, activations, failures, per_patch = [], 0, [], 0, []
    for case, truth in zip(cases, real["results"]):
        if truth.get("skipped"):
            continue
        args = dict(case["args"], per_device_train_batch_size=2, cutoff_len=32)
        if case.get("activation"):
            args["per_device_train_batch_size"], args["cutoff_len"] = case["activation"]
        model_dir = tmp_path / "models" / case["id"]  # the config.json LF273 reads
        model_dir.mkdir(parents=True)
        (model_dir / "config.json").write_text(json.dumps(gt_cases.with_vocab(case["model_config"], real["vocab"])))
        ctx = Context(load("cfg.yaml", target, text=yaml.safe_dump(dict(args, model_name_or_path=str(model_dir)))),
                      target, "train", "train", tmp_path, gt_launch())  # fmt: skip
        predicted = [f.message for rule in checkpoint_rules.RULES for f in rule.check(ctx) if f.severity is None]
        if truth.get("error"):  # the real loader failed: lf-lint must have said so, naming the same error
            real_error = truth["error"].split(": ", 1)[-1].split("(")[0].split(" please choose from")[0].strip()
            assert any(real_error in message for message in predicted), (truth, predicted)
            failures += 1
            continue
        assert not predicted, (case["id"], predicted)
        shape = shape_from_config(gt_cases.with_vocab(case["model_config"], real["vocab"]))
        model = ModelInfo(case["id"], shape, count_params(shape), "config.json", "high")
        inputs = build_inputs(ctx.args, model, target, 1, None)
        adapter = inputs.trainable_params if inputs.method in ("lora", "oft") else 0
        mine = {"total_params": model.params + adapter, "trainable_params": inputs.trainable_params,
                "trainable_fp32": inputs.trainable_bytes == 4.0}  # fmt: skip
        theirs = {"total_params": truth["total_params"], "trainable_params": truth["trainable_params"],
                  "trainable_fp32": set(truth["dtypes"]["trainable"]) == {"float32"}}  # fmt: skip
        names = freeze_module_names(shape, target.tf)
        if names is not None and inputs.method != "lora":  # (PEFT wraps an additional_target's module)
            mine["module_names"] = [sorted(names[0]), sorted(names[1])]
            theirs["module_names"] = [truth["hidden_modules"], truth["non_hidden_modules"]]
        compared += 1
        if mine != theirs:
            mismatches.append({"case": case["id"], "llamafactory": theirs, "lf_lint": mine})
        if truth.get("saved_bytes") and target.lf >= (0, 9, 4):
            predicted = saved_activations(inputs._replace(padding_mask=False))
            activations.append((case["id"], truth["saved_bytes"], predicted))
        if truth.get("saved_with_images") and target.lf >= (0, 9, 4):
            # bytes per image patch: the slope between the two image sizes (fixed costs cancel)
            (small, large), grids = truth["saved_with_images"], case["image_grids"]
            patches = [gt_cases.image_patches(case["model_config"], grid) for grid in grids]
            measured = (large - small) / (patches[1] - patches[0])
            predicted = patch_bytes(shape.vision, inputs.vision, inputs.checkpointing)[0] if inputs.vision else 0.0
            per_patch.append((case["id"], measured, predicted))
    worst = max((abs(p - m) / m for _, m, p in activations), default=0.0)
    # a frozen encoder keeps nothing per patch: allow a few bytes, else 15%
    off_patch = [(name, m, p) for name, m, p in per_patch if abs(p - m) > 0.15 * m + 8]
    worst_patch = max((abs(p - m) / m for _, m, p in per_patch if m > 8), default=0.0)
    MATCH_RATES.append(f"{env_name}: memory components {compared - len(mismatches)}/{compared} identical (parameters, trainable, fp32 upcast)"
                       + (f"; {failures} load failures foreseen by the checkpoint rules (LF273-LF279)" if failures else "")
                       + (f"; saved activations within {worst:.0%} on {len(activations)} runs" if activations else "")
                       + (f"; per image patch within {worst_patch:.0%} on {len(per_patch)} vision runs" if per_patch else ""))  # fmt: skip
    assert compared >= 40
    assert not mismatches, json.dumps(mismatches, indent=1)
    assert worst <= 0.25, activations
    assert not off_patch, off_patch
    # (the CPU LayerNorm kernel refuses an fp32 input with 16-bit weights: 0.9.4 trains Qwen3-VL's position
    # embedding in fp32 before its frozen 16-bit tower)
    failed = [t for t in real["results"] if "mixed dtype (CPU)" not in t.get("activation_error", "mixed dtype (CPU)")]
    assert target.lf < (0, 9, 4) or not failed, failed


EVAL_MODEL = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
              "num_key_value_heads": 2, "vocab_size": 32768, "max_position_embeddings": 512, "tie_word_embeddings": False}  # fmt: skip
EVAL_CASES = [
    {"id": "lora-eval4", "model": EVAL_MODEL, "args": {}},
    {"id": "lora-eval8-short", "model": EVAL_MODEL, "args": {"per_device_eval_batch_size": 8, "cutoff_len": 32}},
    {"id": "full-eval2-long", "model": dict(EVAL_MODEL, tie_word_embeddings=True),
     "args": {"finetuning_type": "full", "per_device_eval_batch_size": 2, "cutoff_len": 128}},
    {"id": "dpo", "model": EVAL_MODEL, "args": {"stage": "dpo", "dataset": "long_pairs", "per_device_eval_batch_size": 2}},
    {"id": "simpo", "model": EVAL_MODEL,
     "args": {"stage": "dpo", "pref_loss": "simpo", "dataset": "long_pairs", "per_device_eval_batch_size": 2}},
    {"id": "rm", "model": EVAL_MODEL, "args": {"stage": "rm", "dataset": "long_pairs", "per_device_eval_batch_size": 2}},
    {"id": "kto", "model": EVAL_MODEL, "args": {"stage": "kto", "dataset": "long_tagged", "per_device_eval_batch_size": 2}},
]  # fmt: skip


GEN_MODEL = {
    "hidden_size": 128,
    "intermediate_size": 256,
    "num_hidden_layers": 8,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 512,
    "max_position_embeddings": 1024,
    "tie_word_embeddings": False,
}
# (case, tolerance): the last decoding step is the peak of the first three, the prompt's forward of the others
GEN_CASES = [
    ({"id": "generate", "model": GEN_MODEL, "args": eval_probe.predict_args(max_new_tokens=256)}, 0.02),
    ({"id": "generate-mha", "model": dict(GEN_MODEL, num_key_value_heads=4),
      "args": eval_probe.predict_args(max_new_tokens=256)}, 0.02),
    ({"id": "generate-beams", "model": GEN_MODEL,
      "args": eval_probe.predict_args(max_new_tokens=128, num_beams=2, do_sample=False)}, 0.03),
    ({"id": "generate-prompt", "model": GEN_MODEL, "args": eval_probe.predict_args(max_new_tokens=8, cutoff_len=128)}, 0.1),
    ({"id": "generate-eager", "model": GEN_MODEL,
      "args": eval_probe.predict_args(max_new_tokens=8, cutoff_len=128, flash_attn="disabled")}, 0.1),
]  # fmt: skip


@pytest.mark.parametrize("env_name", ENV_NAMES)
def test_generation_memory_matches_llamafactory(env_name, tmp_path):
    """What LLaMA-Factory's prediction with predict_with_generate adds to the 16-bit weights (lf_lint/memory/evaluation.py)
    against every allocation of the real run on CPU (tests/groundtruth/eval_probe.py): a padded batch of four prompts
    generating 256 new tokens (grouped KV heads, or as many as the query heads), two beams of 128, and 8 new tokens
    after long prompts, with SDPA and eager attention. The cache at the last step, its growth and the copies of a
    layer's KV heads within 2% (3% with beams, whose search keeps more per step); the prompt's forward, one layer's
    working set being analytic, within 10%. lf-lint's figure is taken for the prompt length the run padded to (a
    config's cutoff_len bounds it)."""
    import yaml

    from lf_lint.loading import load
    from lf_lint.memory.inputs import build_inputs
    from lf_lint.memory.model import ModelInfo, count_params, shape_from_config
    from lf_lint.rules.base import Context
    from lf_lint.versions import Target

    cases = [case for case, _ in GEN_CASES]
    real = run_probe_script(env_name, "eval_probe.py", cases, tmp_path)
    target = Target(real["llamafactory"], real["transformers"])
    compared, wrong = [], []
    for (case, tolerance), truth in zip(GEN_CASES, real["results"]):
        [(prompt, length)] = truth["generated"]
        assert length == prompt + case["args"]["max_new_tokens"], (case["id"], truth)  # no early stop
        shape = shape_from_config(dict(case["model"], model_type="llama"))
        model = ModelInfo(case["id"], shape, count_params(shape), "config.json", "high")
        config = dict(eval_probe.train_args(case), model_name_or_path="tiny-llama", cutoff_len=prompt)
        ctx = Context(load("cfg.yaml", target, text=yaml.safe_dump(config)), target, "train", "train", tmp_path,
                      gt_launch())  # fmt: skip
        x = build_inputs(ctx.args, model, target, 1, None)
        compared.append((case["id"], truth["eval_peak"], x.eval_logits + x.eval_activations))
        if abs(compared[-1][2] - truth["eval_peak"]) > tolerance * truth["eval_peak"]:
            wrong.append(compared[-1])
    MATCH_RATES.append(f"{env_name}: generation memory {len(compared) - len(wrong)}/{len(compared)} (predict_with_generate: "
                       "the last decoding step within 2-3%, the prompt's forward within 10%)")  # fmt: skip
    assert not wrong, compared


@pytest.mark.parametrize("env_name", ENV_NAMES)
def test_evaluation_memory_matches_llamafactory(env_name, tmp_path):
    """What an evaluation during training adds (lf_lint/memory/evaluation.py) against every allocation of the real
    LLaMA-Factory evaluating after a training step on CPU (tests/groundtruth/eval_probe.py): the logits and loss
    of per_device_eval_batch_size sequences at cutoff_len, with the hidden states and the padding mask beside them,
    and autocast's copies of fp32 weights (full tuning: the output head too when it is tied to the embedding),
    within 2%; and so for the other stages' evaluation (DPO with and without a reference model, RM, KTO). (The
    cases' vocabulary makes the logits the peak, as real vocabularies of 32,000-256,000 do.)"""
    import yaml

    from lf_lint.loading import load
    from lf_lint.memory.inputs import build_inputs
    from lf_lint.memory.model import ModelInfo, count_params, shape_from_config
    from lf_lint.rules.base import Context
    from lf_lint.versions import Target

    real = run_probe_script(env_name, "eval_probe.py", EVAL_CASES, tmp_path)
    target = Target(real["llamafactory"], real["transformers"])
    compared = []
    for case, truth in zip(EVAL_CASES, real["results"]):
        shape = shape_from_config(dict(case["model"], model_type="llama"))
        model = ModelInfo(case["id"], shape, count_params(shape), "config.json", "high")
        text = yaml.safe_dump(dict(eval_probe.train_args(case), model_name_or_path="tiny-llama"))
        ctx = Context(load("cfg.yaml", target, text=text), target, "train", "train", tmp_path, gt_launch())
        x = build_inputs(ctx.args, model, target, 1, None)
        # autocast's bf16 copies of fp32 weights (counted with the weights) are made anew in each forward
        compared.append(
            (case["id"], truth["eval_peak"], x.eval_logits + x.eval_activations + x.trainable_params * x.autocast_copy)
        )
    wrong = [c for c in compared if abs(c[2] - c[1]) > 0.02 * c[1]]
    MATCH_RATES.append(f"{env_name}: evaluation memory {len(compared) - len(wrong)}/{len(compared)} within 2% "
                       "(logits and loss of the eval batch; sft, full and LoRA, DPO, SimPO, RM, KTO)")  # fmt: skip
    assert not wrong, compared


def gt_launch():
    from lf_lint.launch import Launch

    return Launch(1, 1, "option", False)


def explains(log_text: str, transformers: str, drop_last: bool) -> bool:
    """`lf-lint explain-log` on the Trainer's real start-up block names this release and drop_last setting
    (for the PPO trainer: finds its numbers consistent)."""
    version = parse_version(transformers)[:2]
    report = explain_startup_log(parse_startup_log(log_text))
    if report.log.ppo:
        return bool(report.readings) and not report.problems
    for reading in report.readings:
        first, _, last = reading.releases.partition("-")
        low, high = parse_version(first)[:2], parse_version(last or first)[:2]
        if reading.drop_last == drop_last and low <= version <= high:
            return True
    return False


@pytest.mark.parametrize("env_name", ENV_NAMES)
def test_accept_reject_matches_llamafactory(env_name, tmp_path):
    cases = gt_cases.validation_cases(CASE_COUNT)
    model = tmp_path / "model"  # lf-lint sees the same local model folder (its config, tokenizer, no processor)
    real = run_real(env_name, cases, tmp_path, model=model)
    versions = {"llamafactory": real["llamafactory"], "transformers": real["transformers"]}
    mismatches = []
    for case, truth in zip(cases, real["results"]):
        result = lint_case(dict(case, config=case["config"].replace("__MODEL__", str(model))), versions, tmp_path)
        errors = [f"{d.code} {d.message}" for d in result.diagnostics if d.severity is Severity.ERROR]
        rejected = truth["error"] is not None
        if rejected != bool(errors):
            mismatches.append({"case": case["id"], "llamafactory": truth["error"], "lf_lint": errors})
    matched = len(cases) - len(mismatches)
    MATCH_RATES.append(
        f"{env_name}: accept/reject agreement {matched}/{len(cases)} ({100 * matched / len(cases):.1f}%)"
    )
    assert not mismatches, json.dumps(mismatches, indent=1)


def run_deepspeed_probe(cases: list[dict], tmp: Path) -> dict:
    """tests/groundtruth/deepspeed_probe.py in the lf095-tf457 environment, DeepSpeed 0.16.9 beside it."""
    env_name = "lf095-tf457"
    if env_name not in ENV_NAMES:
        pytest.skip(f"needs the {env_name} environment")
    extra = gt_envs.ensure_deepspeed(env_name, gt_envs.default_root())
    return run_probe_script(env_name, "deepspeed_probe.py", cases, tmp, pythonpath=extra)


DEEPSPEED_CASES = [
    {"stage": 2, "world": 1, "accumulation": 1, "optimizer": "foreach", "load": True},
    {"stage": 2, "world": 1, "accumulation": 2, "optimizer": "fused"},
    {"stage": 1, "world": 1, "accumulation": 2, "optimizer": "foreach"},
    {"stage": 2, "world": 2, "accumulation": 2, "optimizer": "fused", "load": True},
    {"stage": 1, "world": 2, "accumulation": 2, "optimizer": "foreach", "load": True},
    {"stage": 3, "world": 1, "accumulation": 1, "optimizer": "foreach", "sub_group_size": 2_000_000},
    {"stage": 3, "world": 2, "accumulation": 1, "optimizer": "fused"},
    {"stage": 0, "world": 1, "accumulation": 1, "optimizer": "foreach"},
    {"stage": 0, "world": 2, "accumulation": 2, "optimizer": "fused"},
    {"stage": 0, "world": 1, "accumulation": 1, "optimizer": "foreach", "fp16": True, "load": True},
    {"stage": 0, "world": 2, "accumulation": 2, "optimizer": "fused", "fp16": True},
    {"stage": 2, "world": 2, "accumulation": 2, "optimizer": "fused", "fp16": True},  # as in bf16
]


def test_deepspeed_zero_memory_matches_deepspeed(tmp_path):
    """DeepSpeed's share of the GPU (lf_lint/memory/deepspeed.py) against every allocation the real DeepSpeed 0.16.9
    makes in two training steps on CPU: stages 0-3 in bf16, stages 0 and 2 in fp16, one and two processes, with and
    without accumulation.
    Per parameter, what a process keeps between steps and its backward and optimizer-step peaks may not fall short
    of lf-lint's figures by more than 0.1 byte, nor exceed them by more than 0.5 with one process (the activations of
    a four-token batch, and up to 0.35 byte that gloo holds a while, a different amount each run) or 2.25 with two
    (gloo between two processes holds up to 2 bytes more on a busy machine). ZeRO-3's backward also holds gathered
    parameters, gathered by gloo through temporaries of its own here: test_deepspeed_zero3_keeps_what_it_reuses_gathered
    measures them with the collectives done in place. Cases marked "load" start from bf16 weights that are cast to
    fp32 as LLaMA-Factory casts them under ZeRO-0/1/2: the peak of that cast and of the engine's cast back is compared
    too (lf_lint/memory/loading.py)."""
    from lf_lint.memory.deepspeed import zero_layout
    from lf_lint.memory.loading import cast_back_peak

    real = run_deepspeed_probe(DEEPSPEED_CASES, tmp_path)
    model = real["model"]
    compared, wrong = [], []
    for case in real["results"]:
        stage, world = case["stage"], case["world"]
        for rank in case["ranks"]:
            n = rank["params"]
            layout = zero_layout({"reduce_bucket_size": 200_000, "sub_group_size": case.get("sub_group_size", 1e9)},
                                 stage=stage, world=world, trainable=n, largest=model["vocab_size"] * model["hidden_size"],
                                 hidden=model["hidden_size"], accumulation=case["accumulation"],
                                 optimizer_temp=4.0 if case["optimizer"] == "foreach" else 0.0,
                                 fp16=case.get("fp16", False))  # fmt: skip
            grads = n * layout.grad_bytes / (world if stage >= 2 else 1)
            kept = (
                2 * n / (world if stage == 3 else 1) + grads + n * layout.optimizer_bytes / (world if stage >= 1 else 1)
            )
            kept += layout.bucket_bytes
            # stages 1 and 2 free their 16-bit gradients in the step, as does fp16's stage 0; bf16's 0 and 3 keep theirs
            freed = stage in (1, 2) or (stage == 0 and case.get("fp16"))
            phases = {"kept": (rank["after_step"], kept - (grads if freed else 0.0)),
                      "step": (rank["step_peak"], kept + layout.step_bytes)}  # fmt: skip
            if stage != 3:
                phases["backward"] = (rank["backward_peak"], kept + layout.backward_bytes)
            if case.get("load"):  # LLaMA-Factory's fp32 cast, then the engine's cast back (loading.py)
                phases["load"] = (
                    rank["load_peak"],
                    cast_back_peak(4.0 * n, model["vocab_size"] * model["hidden_size"]),
                )
            for phase, (measured, predicted) in phases.items():
                excess = (measured - predicted) / n
                compared.append((case, phase, round(measured / n, 2), round(predicted / n, 2)))
                allowed = (-0.05, 0.05) if phase == "load" else (-0.1, 0.5 if world == 1 else 2.25)  # no gloo yet
                if not allowed[0] <= excess <= allowed[1]:
                    wrong.append(compared[-1])
    MATCH_RATES.append(f"DeepSpeed 0.16.9 ZeRO memory: {len(compared) - len(wrong)}/{len(compared)} figures within bounds (what is kept,"
                       " backward, optimizer-step and loading peaks)")  # fmt: skip
    assert len(compared) == 57  # 18 ranks x (kept, step, and backward but at ZeRO-3), and 6 loading peaks
    assert not wrong, wrong


ZERO3_GATHER_CASES = [
    {"stage": 3, "world": 2, "accumulation": 1, "optimizer": "fused", "in_place": True, "layers": 12,
     "checkpointing": checkpointing, "zero": {"stage3_prefetch_bucket_size": 0, "stage3_max_reuse_distance": reuse}}
    for checkpointing, reuse in ((True, 0), (True, 1.5e7), (True, 3e7), (True, 1e9), (False, 1e9))
]  # fmt: skip


def test_deepspeed_zero3_keeps_what_it_reuses_gathered(tmp_path):
    """What ZeRO-3 holds gathered when backward begins (deepspeed.py, zero3_gathered) against DeepSpeed 0.16.9 on
    CPU with LLaMA-Factory's gradient checkpointing: with stage3_max_reuse_distance from 0 to LLaMA-Factory's 1e9,
    more and more of the last layers stay gathered from forward into backward (on this small model, all of it);
    without checkpointing every layer does. The collectives run in place (deepspeed_probe.py), so backward's peak
    over what a step keeps is deterministic: within 0.05 byte per parameter of lf-lint's figure."""
    from lf_lint.memory.deepspeed import zero3_gathered
    from lf_lint.memory.model import Shape

    real = run_deepspeed_probe(ZERO3_GATHER_CASES, tmp_path)
    m = real["model"]
    compared, wrong = [], []
    for case in real["results"]:
        shape = Shape("llama", m["hidden_size"], case["layers"], m["num_attention_heads"], m["num_key_value_heads"],
                      m["hidden_size"] // m["num_attention_heads"], m["intermediate_size"], m["vocab_size"])  # fmt: skip
        gathered = zero3_gathered(shape, case["zero"], checkpointing=case["checkpointing"], fused_experts=False)
        predicted = 2 * m["vocab_size"] * m["hidden_size"] + gathered  # and autograd's gradient of the output head
        for rank in case["ranks"]:
            n, measured = rank["params"], rank["backward_peak"] - rank["after_step"]
            compared.append((case["zero"]["stage3_max_reuse_distance"], case["checkpointing"], round(measured / n, 3),
                             round(predicted / n, 3)))  # fmt: skip
            if abs(measured - predicted) / n > 0.05:
                wrong.append(compared[-1])
    MATCH_RATES.append(f"DeepSpeed 0.16.9 ZeRO-3 gathered parameters in backward: {len(compared) - len(wrong)}/{len(compared)} "
                       "within 0.05 byte per parameter")  # fmt: skip
    assert len(compared) == 10
    assert not wrong, wrong


FSDP_CASES = [
    {"id": "full", "world": 2, "vocab": 4096, "layers": 4, "args": {}},  # the peak: the root's end of backward
    {"id": "full-deep", "world": 2, "vocab": 1024, "layers": 8, "args": {}},  # the peak: the last layer's backward
    {"id": "full-prefetch", "world": 2, "vocab": 1024, "layers": 8,
     "args": {"fsdp_config": {"transformer_layer_cls_to_wrap": ["LlamaDecoderLayer"], "sync_module_states": False,
                              "backward_prefetch": "backward_pre"}}},
    {"id": "shard-grad-op", "world": 4, "vocab": 1024, "layers": 8, "args": {"fsdp": "shard_grad_op auto_wrap"}},
    {"id": "lora", "world": 2, "vocab": 4096, "layers": 4, "args": {"finetuning_type": "lora", "lora_target": "all"}},
    {"id": "lora-deep", "world": 2, "vocab": 1024, "layers": 8,
     "args": {"finetuning_type": "lora", "lora_target": "all"}},
    {"id": "lora-prefetch", "world": 2, "vocab": 1024, "layers": 8,
     "args": {"finetuning_type": "lora", "lora_target": "all",
              "fsdp_config": {"transformer_layer_cls_to_wrap": ["LlamaDecoderLayer"], "sync_module_states": False,
                              "backward_prefetch": "backward_pre"}}},
    {"id": "one-process", "world": 1, "vocab": 4096, "layers": 4, "args": {}},
]  # fmt: skip


def test_fsdp_memory_matches_fsdp(tmp_path):
    """FSDP's share of the GPU (lf_lint/memory/fsdp.py) against every allocation of real LLaMA-Factory training steps
    with `fsdp` in the config (transformers 4.57, accelerate 1.11, torch FSDP1) on CPU: full and LoRA tuning,
    full_shard and shard_grad_op, with and without backward prefetch, one to four processes. Per parameter, what a
    process holds when a step begins, and the peaks of its forward/backward and optimizer step, may differ from
    lf-lint's figures by at most 0.05 byte (the activations of a 16-token batch are in both). So may the peak from
    the loaded model to the first step (LLaMA-Factory's fp32 cast and FSDP's wrapping: the whole model is on every
    GPU until then, as no case sets cpu_ram_efficient_loading)."""
    import fsdp_probe
    import yaml

    from lf_lint.loading import load
    from lf_lint.memory.estimate import estimate
    from lf_lint.memory.inputs import build_inputs
    from lf_lint.memory.model import ModelInfo, count_params, shape_from_config
    from lf_lint.rules.base import Context
    from lf_lint.versions import Target

    env_name = "lf095-tf457"
    if env_name not in ENV_NAMES:
        pytest.skip(f"needs the {env_name} environment")
    real = run_probe_script(env_name, "fsdp_probe.py", FSDP_CASES, tmp_path)
    target = Target("0.9.5", "4.57.1")
    compared, wrong = [], []
    for case in real["results"]:
        shape = shape_from_config(fsdp_probe.model_config(case))
        model = ModelInfo(case["id"], shape, count_params(shape), "config.json", "high")
        text = yaml.safe_dump(dict(fsdp_probe.train_args(case), model_name_or_path="tiny-llama"))
        ctx = Context(load("cfg.yaml", target, text=text), target, "train", "train", tmp_path, gt_launch())
        x = build_inputs(ctx.args, model, target, case["world"], None)
        est = estimate(x._replace(load_bytes=0.0))  # training's peaks; loading's is compared on its own
        world, frozen = case["world"], x.total_params - x.trainable_params
        kept = (
            x.trainable_params * (x.trainable_bytes + x.grad_bytes + x.optimizer_bytes) + frozen * x.frozen_bytes
        ) / world
        for rank in case["ranks"]:
            n = rank["params"]
            for phase, measured, predicted in (("kept", rank["kept"], kept), ("backward", rank["backward_peak"], est.allocated),
                                               ("step", rank["step_peak"], kept), ("load", rank["load_peak"], x.load_bytes)):  # fmt: skip
                compared.append((case["id"], phase, round(measured / n, 3), round(predicted / n, 3)))
                if abs(measured - predicted) / n > 0.05:
                    wrong.append(compared[-1])
    worst = max(abs(measured - predicted) for *_, measured, predicted in compared)
    MATCH_RATES.append(f"FSDP memory (LLaMA-Factory 0.9.5, transformers 4.57): {len(compared) - len(wrong)}/{len(compared)} "
                       f"figures within 0.05 byte per parameter (worst {worst:.3f})")  # fmt: skip
    assert len(compared) == 4 * sum(case["world"] for case in FSDP_CASES)
    assert not wrong, wrong
