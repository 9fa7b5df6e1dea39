"""``--exact``: ask the installed LLaMA-Factory itself how many examples its data pipeline yields.

lf-lint's own count is exact for everything that does not depend on tokens; packing (``pt``, and
``packing``/``neat_packing`` in sft) and the examples dropped for length depend on the tokenizer and
the template. With ``--exact`` lf-lint runs, in a separate process of the Python that has
LLaMA-Factory installed (the current one, or ``--exact-python``), LLaMA-Factory's own
``get_train_args`` -> ``load_tokenizer`` -> ``get_template_and_fix_tokenizer`` -> ``get_dataset`` on CPU
and reads the lengths of the datasets it returns.

That run is offline (``HF_HUB_OFFLINE``), never trusts remote code, writes its datasets cache to a
temporary folder, and never writes ``tokenized_path`` or ``output_dir``: the user's files are not
touched. It needs the tokenizer locally (a local ``model_name_or_path`` or the Hugging Face cache).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

STAGES = {"pt": "pt", "sft": "sft", "rm": "rm", "dpo": "rm", "kto": "kto", "ppo": "ppo"}

_SCRIPT = r"""
import json, sys
args, stage = json.loads(sys.argv[1]), sys.argv[2]
from llamafactory.hparams import get_train_args
from llamafactory.model import load_tokenizer
from llamafactory.data import get_dataset, get_template_and_fix_tokenizer
import llamafactory
model_args, data_args, training_args, finetuning_args, _ = get_train_args(args)
tokenizer_module = load_tokenizer(model_args)
template = get_template_and_fix_tokenizer(tokenizer_module["tokenizer"], data_args)
module = get_dataset(template, model_args, data_args, training_args, stage=stage, **tokenizer_module)
def size(dataset):
    if dataset is None:
        return None
    if isinstance(dataset, dict):
        return sum(len(d) for d in dataset.values())
    return len(dataset)
print("LF_LINT_EXACT " + json.dumps({"train": size(module.get("train_dataset")), "eval": size(module.get("eval_dataset")),
                                     "llamafactory": llamafactory.__version__}))
"""


class ExactCount(NamedTuple):
    train: int | None
    eval: int | None
    llamafactory: str | None
    problem: str | None = None


def exact_counts(data: dict, stage: str, workdir: Path, python: str | None = None, timeout: float = 1800) -> ExactCount:
    """The example counts LLaMA-Factory's own data pipeline produces for this config (see the module doc)."""
    with tempfile.TemporaryDirectory(prefix="lf-lint-exact-") as tmp:
        args = dict(data)
        for key in ("deepspeed", "tokenized_path", "report_to", "resume_from_checkpoint"):
            args.pop(key, None)
        args.update(output_dir=str(Path(tmp) / "out"), overwrite_output_dir=True, report_to="none", trust_remote_code=False,
                    do_train=True, overwrite_cache=True)  # fmt: skip
        env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
                   HF_DATASETS_CACHE=str(Path(tmp) / "datasets"), CUDA_VISIBLE_DEVICES="", DISABLE_VERSION_CHECK="1",
                   WANDB_DISABLED="true", TOKENIZERS_PARALLELISM="false")  # fmt: skip
        for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "FORCE_TORCHRUN"):
            env.pop(name, None)
        try:
            done = subprocess.run(
                [python or sys.executable, "-c", _SCRIPT, json.dumps(args, default=str), STAGES.get(stage, "sft")],
                cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout,
            )  # fmt: skip
        except (OSError, subprocess.TimeoutExpired) as exc:
            return ExactCount(None, None, None, f"could not run LLaMA-Factory: {exc}")
    for line in done.stdout.splitlines():
        if line.startswith("LF_LINT_EXACT "):
            found = json.loads(line[len("LF_LINT_EXACT ") :])
            return ExactCount(found["train"], found["eval"], found["llamafactory"])
    last = [line for line in done.stderr.strip().splitlines() if line.strip()][-1:] or ["no output"]
    if "No module named 'llamafactory'" in done.stderr:
        return ExactCount(
            None, None, None, f"LLaMA-Factory is not installed for {python or sys.executable} (give --exact-python)"
        )
    return ExactCount(None, None, None, f"LLaMA-Factory's data pipeline stopped: {last[0][:400]}")
