#!/usr/bin/env python
"""Run many configs through the real ``llamafactory-cli train`` path, up to the start of training.

Runs INSIDE a ground-truth env (envs.py)::

    <env>/bin/python tests/groundtruth/runner.py CASES.json RESULTS.json
    <env>/bin/torchrun --nproc_per_node W tests/groundtruth/runner.py CASES.json RESULTS.json

A case may carry ``prepare``: the text of a config run first in the same folder (its result is
discarded), e.g. one that writes ``tokenized_path`` for the case to load.

(under torchrun every process runs every case, as a multi-GPU launch would; rank 0 writes RESULTS.json)

CASES.json is a list of cases::

    {"id": "...", "config": "<YAML or JSON text>", "config_name": "cfg.yaml",
     "overrides": ["key=value", ...], "files": {"data/dataset_info.json": "...", ...},
     "tables": {"data/a.parquet": {"format": "parquet", "rows": [...]}},
     "env": {"ALLOW_EXTRA_ARGS": "1"}}

For each case the runner makes a fresh working directory, writes ``files`` and the config
there (``__MODEL__`` in the config becomes the path of a tiny local Llama model built once),
changes into it, sets ``sys.argv = ["llamafactory-cli", config_name, *overrides]`` and calls
LLaMA-Factory's own ``run_exp()``: the config goes through the release's real ``read_args``
(PyYAML or OmegaConf), argument parsing, validation, dataset pipeline and Trainer set-up. A
callback records the Trainer state in ``on_train_begin`` and stops the run before any
optimizer step. Anything LLaMA-Factory raises on the way is the case's ``error``.

RESULTS.json gets one record per case: ``error`` (or null) and, when training was reached,
``num_examples``, ``total_steps``, ``num_train_epochs``, ``save_steps``, ``eval_steps``,
``logging_steps``, ``warmup_steps``, ``world_size``, ``total_train_batch_size``,
``num_eval_examples``, and ``startup_log`` (what the Trainer logged). Only the standard library is imported at module level.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import formats
import smoke_run

EXPORT_ROOT = Path(tempfile.gettempdir())  # main() puts it beside RESULTS.json


class _Stop(Exception):
    """Raised in on_train_begin to end run_exp before the first optimizer step."""


def _recorder(seen: dict):
    from transformers import TrainerCallback

    class Recorder(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            seen.update(
                total_steps=state.max_steps,
                num_train_epochs=state.num_train_epochs,
                save_steps=state.save_steps,
                eval_steps=state.eval_steps,
                logging_steps=state.logging_steps,
                warmup_steps=args.get_warmup_steps(state.max_steps),
                world_size=args.world_size,
            )
            scheduled = _scheduler_warmup(kwargs.get("lr_scheduler"))
            if scheduled is not None:  # what the learning-rate schedule really uses (PPO builds its own)
                seen["warmup_steps"] = scheduled
            eval_loader = kwargs.get("eval_dataloader")
            if eval_loader is not None:
                try:
                    seen["num_eval_examples"] = len(eval_loader.dataset)
                except TypeError:
                    pass
            raise _Stop()

    return Recorder()


def _scheduler_warmup(scheduler) -> int | None:
    """num_warmup_steps bound into a transformers schedule (a LambdaLR over functools.partial)."""
    scheduler = getattr(scheduler, "scheduler", scheduler)  # accelerate's AcceleratedScheduler wraps it
    for fn in getattr(scheduler, "lr_lambdas", None) or []:
        keywords = getattr(fn, "keywords", None) or {}
        if "num_warmup_steps" in keywords:
            return keywords["num_warmup_steps"]
    return None


def _reset_accelerate() -> None:
    """Forget the process-wide accelerate state a case created (mixed precision, FSDP plugin, ...)."""
    try:
        from accelerate.state import AcceleratorState, PartialState
    except ImportError:  # pragma: no cover
        return
    AcceleratorState._reset_state(True)
    PartialState._reset_state()


def run_case(case: dict, model_dir: Path, work_root: Path, run_exp) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="case-", dir=work_root))
    if case.get("prepare"):  # an earlier run in the same folder (e.g. one that saves a tokenized dataset)
        first = dict(case, config=case["prepare"], prepare=None)
        run_case_in(first, model_dir, workdir, run_exp)
    result = run_case_in(case, model_dir, workdir, run_exp)
    if case.get("export") and (workdir / case["export"]).exists():  # what the run wrote, for lf-lint to read
        shutil.copytree(workdir / case["export"], EXPORT_ROOT / case["id"] / case["export"], dirs_exist_ok=True)
    return result


def run_case_in(case: dict, model_dir: Path, workdir: Path, run_exp) -> dict:
    for relpath, content in (case.get("files") or {}).items():
        target = workdir / relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    formats.write_tables(workdir, case.get("tables"))
    name = case.get("config_name", "cfg.yaml")
    (workdir / name).write_text(case["config"].replace("__MODEL__", str(model_dir)))

    saved_env = dict(os.environ)  # TrainingArguments writes ACCELERATE_* variables; each case starts clean
    os.environ.update(case.get("env") or {})
    saved_argv, saved_cwd = sys.argv, os.getcwd()
    sys.argv = ["llamafactory-cli", name, *case.get("overrides", [])]
    os.chdir(workdir)

    seen: dict = {}
    catcher = smoke_run._LineCatcher()
    # the Trainer logs its start-up block through transformers.trainer, LLaMA-Factory's PPO trainer through its own logger
    loggers = [logging.getLogger("transformers.trainer"), logging.getLogger("llamafactory.train.ppo.trainer")]
    old_levels = [log.level for log in loggers]
    for log in loggers:
        log.addHandler(catcher)
        log.setLevel(logging.INFO)
    started = time.time()
    result: dict = {"id": case["id"], "error": None}
    import transformers

    original_init = transformers.Trainer.__init__

    def recording_init(trainer, *args, **kwargs):  # the eval sets the Trainer holds (a dict: eval_on_each_dataset)
        original_init(trainer, *args, **kwargs)
        if isinstance(trainer.eval_dataset, dict):
            seen["eval_examples_per_dataset"] = {k: len(v) for k, v in trainer.eval_dataset.items()}
        elif trainer.eval_dataset is not None and hasattr(trainer.eval_dataset, "__len__"):
            seen["num_eval_examples"] = len(trainer.eval_dataset)

    transformers.Trainer.__init__ = recording_init
    try:
        run_exp(callbacks=[_recorder(seen)])
        result["error"] = "run_exp returned without reaching on_train_begin"
    except _Stop:
        pass
    except (Exception, SystemExit) as exc:  # LLaMA-Factory's own refusals are the ground truth
        result["error"] = f"{type(exc).__name__}: {exc}"[:1500]
    finally:
        transformers.Trainer.__init__ = original_init
        for log, level in zip(loggers, old_levels):
            log.removeHandler(catcher)
            log.setLevel(level)
        os.chdir(saved_cwd)
        sys.argv = saved_argv
        os.environ.clear()
        os.environ.update(saved_env)
        _reset_accelerate()
    result.update(seen)
    if not result["error"]:
        result["startup_log"] = "\n".join(catcher.lines)  # the Trainer's own start-up block, for explain-log
        result["num_examples"] = smoke_run._grab_int(catcher.lines, "Num examples")
        result["total_train_batch_size"] = smoke_run._grab_int(
            catcher.lines, "Total train batch size (w. parallel, distributed & accumulation)"
        ) or smoke_run._grab_int(
            catcher.lines, "Total train batch size (w. parallel, buffer, distributed & accumulation)"
        )
    result["seconds"] = round(time.time() - started, 2)
    return result


def main(argv: list[str]) -> int:
    global EXPORT_ROOT
    cases_path, results_path = Path(argv[0]), Path(argv[1])
    EXPORT_ROOT = results_path.parent / "exported"
    cases = json.loads(cases_path.read_text())
    real_stdout = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # library chatter goes to stderr
    with tempfile.TemporaryDirectory(prefix="lf-lint-gt-") as tmp:
        work = Path(tmp)
        smoke_run._setdefault_env(work)
        import llamafactory
        import transformers
        from llamafactory.train.tuner import run_exp

        model_dir = Path(
            os.environ.get("LF_LINT_GT_MODEL") or work / "model"
        )  # a given folder is built once and reused
        if not (model_dir / "config.json").is_file():
            smoke_run.build_model(model_dir, smoke_run.build_tokenizer(model_dir))
        results = []
        for case in cases:
            results.append(run_case(case, model_dir, work, run_exp))
        if int(os.environ.get("RANK", "0")) != 0:  # under torchrun every process runs the cases; rank 0 reports
            return 0
        results_path.write_text(
            json.dumps(
                {
                    "llamafactory": llamafactory.__version__,
                    "transformers": transformers.__version__,
                    "results": results,
                },
                indent=1,
            )
        )
    real_stdout.write(f"{len(results)} cases\n")
    real_stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
