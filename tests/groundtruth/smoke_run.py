#!/usr/bin/env python
"""Run the real LLaMA-Factory up to the start of training and print what the Trainer resolved.

Runs INSIDE a ground-truth env (see envs.py): ``<env>/bin/python tests/groundtruth/smoke_run.py``.
Only the standard library is imported at module level; tokenizers/transformers/llamafactory are
imported inside functions, so the file can be collected or imported anywhere.

It builds, in a temporary directory, a tiny byte-level BPE tokenizer and a tiny Llama model (tens
of kilobytes), an alpaca dataset of 1047 rows plus ``dataset_info.json``, then calls ``run_exp``
with a callback that records the Trainer state in ``on_train_begin`` and raises a private
exception to stop before any optimizer step.  The Trainer's ``Num examples = N`` log line is
captured from the ``transformers.trainer`` logger.

stdout gets exactly one JSON line; every log goes to stderr.  Expected for the blog config
(1047 rows, batch 10, accumulation 8, 300 epochs): num_examples 1047, max_steps 3900 on
transformers 4.49 and 4200 on 4.57 / 5.x.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import tempfile
import time
from pathlib import Path

N_ROWS = 1047

BLOG_CONFIG = {
    "stage": "sft",
    "do_train": True,
    "finetuning_type": "lora",
    "template": "default",
    "dataset": "tiny_alpaca",
    "cutoff_len": 128,
    "per_device_train_batch_size": 10,
    "gradient_accumulation_steps": 8,
    "num_train_epochs": 300,
    "bf16": False,
    "fp16": False,
    "report_to": "none",
}

# extra configs, run after the blog config to time repeated calls in one process and to show that
# ratios are resolved by the time on_train_begin runs
VARIANTS = {
    "ratios": {"warmup_ratio": 0.1, "save_steps": 0.1, "logging_steps": 0.05},
    "max_steps": {"max_steps": 50, "warmup_steps": 5, "save_steps": 10, "logging_steps": 2},
    "full_bs4": {
        "finetuning_type": "full",
        "per_device_train_batch_size": 4,
        "gradient_accumulation_steps": 2,
        "num_train_epochs": 2,
    },
}

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "A linter checks training configs before a run starts.",
    "Small models train quickly on a CPU with few parameters.",
    "Numbers like 0 1 2 3 4 5 6 7 8 9 appear in many rows.",
    "Human: say something\nAssistant: something said.",
    "Instruction input output system history tools and more words.",
]


class _StopAtTrainBegin(Exception):
    """Raised by the callback to stop run_exp before the first optimizer step."""


def run_probe(argv: list[str], prefix: str, run_cases) -> int:
    """The shell of a probe script: the cases from ``argv[0]``, run by ``run_cases(cases, work)`` in a scratch
    folder with the offline environment and LLaMA-Factory's output sent to stderr; what it returns (``results``
    and any more facts) goes to ``argv[1]`` with the releases that produced it."""
    cases = json.loads(Path(argv[0]).read_text())
    real_stdout = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        work = Path(tmp)
        _setdefault_env(work)
        import llamafactory
        import transformers

        found = run_cases(cases, work)
        Path(argv[1]).write_text(json.dumps({"llamafactory": llamafactory.__version__,
                                             "transformers": transformers.__version__, **found}, indent=1))  # fmt: skip
    real_stdout.write(f"{len(found['results'])} cases\n")
    real_stdout.flush()
    return 0


def _setdefault_env(work: Path) -> None:
    for k, v in {
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "DISABLE_VERSION_CHECK": "1",
        "CUDA_VISIBLE_DEVICES": "",
        "TOKENIZERS_PARALLELISM": "false",
    }.items():
        os.environ.setdefault(k, v)
    os.environ.setdefault("HF_DATASETS_CACHE", str(work / "hf_datasets_cache"))


def build_tokenizer(path: Path) -> int:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320,
        special_tokens=["<|endoftext|>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(SENTENCES * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<pad>")
    fast.save_pretrained(str(path))
    return len(fast)


def build_model(path: Path, vocab_size: int) -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=256,
        bos_token_id=None,
        eos_token_id=0,
        pad_token_id=1,
        tie_word_embeddings=False,
    )
    LlamaForCausalLM(config).save_pretrained(str(path))


def build_dataset(path: Path, n_rows: int = N_ROWS) -> None:
    path.mkdir(parents=True, exist_ok=True)
    rows = [
        {
            "instruction": f"Say the number {i}.",
            "input": "" if i % 3 else f"hint {i % 7}",
            "output": f"The number is {i}.",
        }
        for i in range(n_rows)
    ]
    (path / "tiny_alpaca.json").write_text(json.dumps(rows))
    (path / "dataset_info.json").write_text(json.dumps({"tiny_alpaca": {"file_name": "tiny_alpaca.json"}}))


class _LineCatcher(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(record.getMessage())
        except Exception:  # pragma: no cover - never let logging break the run
            pass


def _grab_int(lines: list[str], label: str) -> int | None:
    for line in reversed(lines):
        m = re.search(re.escape(label) + r"\s*=\s*([\d,]+)", line)
        if m:
            return int(m.group(1).replace(",", ""))
    return None


def run_one(config: dict, run_exp) -> dict:
    from transformers import TrainerCallback

    seen: dict = {}

    class Recorder(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            seen.update(
                max_steps=state.max_steps,
                num_train_epochs=state.num_train_epochs,
                save_steps=state.save_steps,
                logging_steps=state.logging_steps,
                eval_steps=state.eval_steps,
                warmup_steps=args.get_warmup_steps(state.max_steps),
                world_size=args.world_size,
            )
            raise _StopAtTrainBegin()

    catcher = _LineCatcher()
    tlog = logging.getLogger("transformers.trainer")
    old_level = tlog.level
    tlog.addHandler(catcher)
    tlog.setLevel(logging.INFO)
    t = time.time()
    result: dict = {}
    try:
        run_exp(args=dict(config), callbacks=[Recorder()])
        result["error"] = "run_exp returned without reaching on_train_begin"
    except _StopAtTrainBegin:
        pass
    except BaseException as e:  # LF's own validation errors are ground truth too
        if isinstance(e, KeyboardInterrupt):
            raise
        result["error"] = f"{type(e).__name__}: {e}"[:2000]
    finally:
        tlog.removeHandler(catcher)
        tlog.setLevel(old_level)
    result.update(seen)
    result["num_examples"] = _grab_int(catcher.lines, "Num examples")
    result["total_optimization_steps_logged"] = _grab_int(catcher.lines, "Total optimization steps")
    result["seconds"] = round(time.time() - t, 2)
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--no-variants", action="store_true", help="run the blog config only")
    ap.add_argument("--repeat", type=int, default=2, help="run the blog config this many times (timing)")
    a = ap.parse_args(argv)

    # keep stdout for the one JSON line: everything else written to fd 1 goes to stderr
    real_stdout = os.fdopen(os.dup(1), "w")
    sys.stdout.flush()
    os.dup2(2, 1)

    t_all = time.time()
    with tempfile.TemporaryDirectory(prefix="lf-lint-smoke-") as tmp:
        work = Path(tmp)
        _setdefault_env(work)
        t = time.time()
        from llamafactory.hparams import get_train_args  # noqa: F401
        from llamafactory.train.tuner import run_exp

        import_seconds = round(time.time() - t, 2)
        import llamafactory
        import transformers

        t = time.time()
        vocab = build_tokenizer(work / "model")
        build_model(work / "model", vocab)
        build_dataset(work / "data")
        fixture_seconds = round(time.time() - t, 2)

        def cfg(extra: dict, tag: str) -> dict:
            c = dict(BLOG_CONFIG, model_name_or_path=str(work / "model"), dataset_dir=str(work / "data"))
            c["output_dir"] = str(work / "out" / tag)
            c.update(extra)
            return c

        runs = [run_one(cfg({}, f"blog{i}"), run_exp) for i in range(max(1, a.repeat))]
        variants = {} if a.no_variants else {k: run_one(cfg(v, k), run_exp) for k, v in VARIANTS.items()}

    main_run = runs[0]
    out = {
        "llamafactory": llamafactory.__version__,
        "transformers": transformers.__version__,
        "python": sys.version.split()[0],
        **{
            k: main_run.get(k)
            for k in (
                "num_examples",
                "max_steps",
                "total_optimization_steps_logged",
                "num_train_epochs",
                "save_steps",
                "logging_steps",
                "eval_steps",
                "warmup_steps",
                "world_size",
                "error",
            )
        },
        "import_seconds": import_seconds,
        "fixture_seconds": fixture_seconds,
        "per_config_seconds": [r["seconds"] for r in runs] + [v["seconds"] for v in variants.values()],
        "repeat_consistent": all(
            {k: v for k, v in r.items() if k != "seconds"} == {k: v for k, v in main_run.items() if k != "seconds"}
            for r in runs
        ),
        "variants": {k: {kk: vv for kk, vv in v.items() if vv is not None} for k, v in variants.items()},
        "total_seconds": round(time.time() - t_all, 2),
    }
    real_stdout.write(json.dumps(out, sort_keys=False) + "\n")
    real_stdout.flush()
    return 0 if main_run.get("error") is None and main_run.get("max_steps") else 1


if __name__ == "__main__":
    sys.exit(main())
