"""Trace every allocation of LLaMA-Factory's evaluation during training, or of its prediction, on CPU.

Run with a ground-truth env's python:
    eval_probe.py CASES.json RESULTS.json
Each case ({"id", "model": {...LlamaConfig...}, "args": {...LLaMA-Factory train args...}}) trains a small Llama with
LLaMA-Factory's ``run_exp`` for one optimizer step and evaluates after it (``eval_steps: 1``) on rows long enough
that every sequence is cut at ``cutoff_len``, as the longest eval batch is; or, with ``predict_args``, predicts
with ``predict_with_generate`` on one padded batch of prompts without training. torch.profiler records each
allocation and free; the result is what is live when the evaluation begins, the peak above it while it runs, and
for each ``generate`` call the padded prompt's length and the output's.
"""

from __future__ import annotations

import gc
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import smoke_run


def train_args(case: dict) -> dict:
    """The LLaMA-Factory arguments of a case, as a user's YAML would have them (paths left out; a case's None
    removes a default)."""
    args = {"stage": "sft", "do_train": True, "finetuning_type": "lora", "lora_target": "all", "template": "default",
            "dataset": "long_rows", "cutoff_len": 64, "per_device_train_batch_size": 1, "max_steps": 1, "bf16": True,
            "val_size": 8, "eval_strategy": "steps", "eval_steps": 1, "per_device_eval_batch_size": 4,
            **case["args"]}  # fmt: skip
    return {k: v for k, v in args.items() if v is not None}


def predict_args(**more) -> dict:
    """A case's args for LLaMA-Factory's prediction (do_predict with predict_with_generate, no training) of one batch
    of four prompts, two cut at cutoff_len and two shorter, so that the batch is padded."""
    return {"do_train": None, "dataset": None, "val_size": None, "eval_strategy": None, "eval_steps": None,
            "max_steps": None, "do_predict": True, "predict_with_generate": True, "eval_dataset": "mixed_prompts",
            "max_samples": 4, **more}  # fmt: skip


def _long_rows(path: Path, n_rows: int) -> None:
    """Rows longer than any case's cutoff_len: "long_rows" (instruction, output), "long_pairs" (a preference
    between two outputs, for the pairwise stages) and "long_tagged" (an output marked good or bad, for KTO); and
    "mixed_prompts" (long and short prompts with a short output, what prediction generates from)."""
    words = " ".join(smoke_run.SENTENCES)
    rows = [{"instruction": f"{i} {words}", "input": "", "output": f"{words} {i}"} for i in range(n_rows)]
    pairs = [{"instruction": row["instruction"], "chosen": row["output"], "rejected": f"{i} {words}"}
             for i, row in enumerate(rows)]  # fmt: skip
    short = " ".join(words.split()[:12])
    prompts = [
        {"instruction": f"{i} {words if i % 2 == 0 else short}", "input": "", "output": "ok"} for i in range(n_rows)
    ]
    path.mkdir(parents=True, exist_ok=True)
    (path / "long_rows.json").write_text(json.dumps(rows))
    (path / "mixed_prompts.json").write_text(json.dumps(prompts))
    (path / "long_pairs.json").write_text(json.dumps(pairs))
    (path / "long_tagged.json").write_text(json.dumps([dict(row, kto_tag=i % 2 == 0) for i, row in enumerate(rows)]))
    tagged = {"file_name": "long_tagged.json",
              "columns": {"prompt": "instruction", "query": "input", "response": "output", "kto_tag": "kto_tag"}}  # fmt: skip
    ranking = {"file_name": "long_pairs.json", "ranking": True,
               "columns": {"prompt": "instruction", "chosen": "chosen", "rejected": "rejected"}}  # fmt: skip
    (path / "dataset_info.json").write_text(json.dumps({"long_rows": {"file_name": "long_rows.json"},
                                                        "mixed_prompts": {"file_name": "mixed_prompts.json"},
                                                        "long_pairs": ranking, "long_tagged": tagged}))  # fmt: skip


def run_case(case: dict, work: Path) -> dict:
    import torch
    import transformers
    from llamafactory.train.tuner import run_exp
    from torch.profiler import ProfilerActivity, profile, record_function
    from transformers import LlamaConfig, LlamaForCausalLM

    folder = work / case["id"]
    model_dir = folder / "model"
    smoke_run.build_tokenizer(model_dir)
    config = LlamaConfig(**case["model"], bos_token_id=None, eos_token_id=0, pad_token_id=1)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.config.torch_dtype = torch.bfloat16
    model.save_pretrained(str(model_dir))
    del model
    _long_rows(folder / "data", 32)

    evaluation_loop = transformers.Trainer.evaluation_loop

    def marked(self, *args, **kwargs):
        gc.collect()
        with record_function("eval"):
            return evaluation_loop(self, *args, **kwargs)

    transformers.Trainer.evaluation_loop = marked
    generate, generated = transformers.GenerationMixin.generate, []

    def recorded(self, *args, **kwargs):
        out = generate(self, *args, **kwargs)
        generated.append([kwargs["input_ids"].shape[-1], out.shape[-1]])  # the padded prompt, and the whole output
        return out

    transformers.GenerationMixin.generate = recorded
    _without_similarity_metrics()
    args = {**train_args(case), "model_name_or_path": str(model_dir), "dataset_dir": str(folder / "data"),
            "output_dir": str(folder / "out"), "use_cpu": True, "report_to": "none", "save_strategy": "no",
            "logging_steps": 100}  # fmt: skip
    gc.disable()
    try:
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            run_exp(args=args)
    finally:
        gc.enable()
        transformers.Trainer.evaluation_loop = evaluation_loop
        transformers.GenerationMixin.generate = generate
    events = sorted(prof.profiler.kineto_results.events(), key=lambda e: e.start_ns())
    start, end = next((e.start_ns(), e.end_ns()) for e in events if e.name() == "eval")
    live = at_start = peak = 0
    for event in events:
        if event.name() != "[memory]":
            continue
        if event.start_ns() < start:
            at_start = live + event.nbytes()
        live += event.nbytes()
        if start <= event.start_ns() <= end:
            peak = max(peak, live)
    return {"at_start": at_start, "eval_peak": peak - at_start, "generated": generated}


def _without_similarity_metrics() -> None:
    """predict_with_generate scores the predictions with jieba, nltk and rouge_chinese after generating: the memory
    of generation does not depend on them, so the probe's envs need not install them."""
    import llamafactory.hparams.parser as parser
    from llamafactory.train.sft.metric import ComputeSimilarity

    check_version = parser.check_version
    parser.check_version = lambda requirement, mandatory=False: (
        None if requirement in ("jieba", "nltk", "rouge_chinese") else check_version(requirement, mandatory)
    )
    ComputeSimilarity.__call__ = lambda self, eval_preds, compute_result=True: {}


def main(argv: list[str]) -> int:
    return smoke_run.run_probe(
        argv, "lf-lint-eval-", lambda cases, work: {"results": [run_case(c, work) for c in cases]}
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
