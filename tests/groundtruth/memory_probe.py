#!/usr/bin/env python
"""Load models through the real LLaMA-Factory and record what its parameters cost.

Runs INSIDE a ground-truth env (envs.py)::

    <env>/bin/python tests/groundtruth/memory_probe.py CASES.json RESULTS.json

Each case is ``{"id", "model_config": {... config.json ...}, "args": {... LLaMA-Factory train args ...}}``.
The probe saves a small random model with that config (bf16 weights, as hub checkpoints are),
parses the args with LLaMA-Factory's own ``get_train_args`` and loads the model with its own
``load_tokenizer``/``load_model`` (patching, adapters, fp32 upcasting, freezing: all real). It
records the total and trainable parameter counts and the bytes of trainable and frozen
parameters by dtype. lf-lint computes the same numbers from the same config.json
(tests/test_groundtruth.py::test_memory_components_match_llamafactory).

Then, for ``activation`` cases, it runs one training forward pass of a batch (``batch`` x ``seq``
tokens, no padding) and sums the bytes of the distinct tensors autograd saves for backward
(parameters excluded), with and without LLaMA-Factory's gradient checkpointing. ``image_grids`` cases
run the pass once per grid with one image of that many patches in each sequence (Qwen-VL models).
Only the standard library is imported at module level.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import smoke_run
from cases import with_vocab


def _build(model_dir: Path, model_config: dict, tokenizer_dir: Path) -> None:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForImageTextToText

    model_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    auto = AutoModelForImageTextToText if "vision_config" in model_config else AutoModelForCausalLM
    try:
        model = auto.from_config(AutoConfig.for_model(**model_config)).to(torch.bfloat16)
    except AttributeError:  # transformers < 4.52 cannot build a nested Qwen-VL text_config: build the same model
        if not isinstance(model_config.get("text_config"), dict):  # flat, and ship the nested config.json below
            raise
        text = {k: v for k, v in model_config["text_config"].items() if k != "model_type"}
        flat = {**{k: v for k, v in model_config.items() if k != "text_config"}, **text}
        model = auto.from_config(AutoConfig.for_model(**flat)).to(torch.bfloat16)
    model.config.torch_dtype = torch.bfloat16
    model.save_pretrained(str(model_dir))
    if "vision_config" in model_config:  # config.json as the hub ships it (see cases.VLM_MODELS)
        shipped = {"architectures": [type(model).__name__], **model_config, "torch_dtype": "bfloat16"}
        (model_dir / "config.json").write_text(json.dumps(shipped))
    for name in os.listdir(tokenizer_dir):
        (model_dir / name).write_bytes((tokenizer_dir / name).read_bytes())


def _image_inputs(model, model_config: dict, ids, grid: list[int]) -> dict:
    """For a Qwen-VL model one image of ``grid`` (height x width) patches: its pixel values, and as many image
    tokens (between vision start and end tokens) as the merged patches it becomes. For Gemma 3 ``grid`` is
    ``[images]`` of its fixed size, each ``mm_tokens_per_image`` image tokens (token type 1)."""
    import inspect

    import torch

    vision = model_config["vision_config"]
    if model_config["model_type"] == "gemma3":
        count, tokens, size = grid[0], model_config["mm_tokens_per_image"], vision["image_size"]
        for i in range(count):
            ids[:, 1 + i * (tokens + 1) : 1 + i * (tokens + 1) + tokens] = model_config["image_token_index"]
        return {"pixel_values": torch.randn(ids.shape[0] * count, 3, size, size),
                "token_type_ids": (ids == model_config["image_token_index"]).long()}  # fmt: skip
    merge = vision.get("spatial_merge_size", 2)
    patch = vision.get("patch_size", 16 if model_config["model_type"].startswith("qwen3") else 14)
    values = vision.get("in_channels", 3) * vision.get("temporal_patch_size", 2) * patch * patch
    height, width = grid
    tokens = height * width // (merge * merge)
    ids[:, 1] = model_config["vision_start_token_id"]
    ids[:, 2 : 2 + tokens] = model_config["image_token_id"]
    ids[:, 2 + tokens] = model_config["vision_end_token_id"]
    images = ids.shape[0]
    inputs = {"pixel_values": torch.randn(images * height * width, values),
              "image_grid_thw": torch.tensor([[1, height, width]] * images)}  # fmt: skip
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if "mm_token_type_ids" in inspect.signature(type(base).forward).parameters:  # transformers 5: 1 marks an image
        inputs["mm_token_type_ids"] = (ids == model_config["image_token_id"]).long()
    return inputs


def _saved_bytes(model, batch: int, seq: int, vocab: int, model_config: dict | None = None, grid=None) -> int:
    import torch

    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(tensor):
        try:
            key = tensor.untyped_storage().data_ptr()
            if key not in params:
                seen[key] = max(seen.get(key, 0), tensor.untyped_storage().nbytes())
        except (RuntimeError, AttributeError):
            pass
        return tensor

    ids = torch.randint(10, vocab, (batch, seq))  # above the special tokens an image needs
    images = _image_inputs(model, model_config, ids, grid) if grid else {}
    model.train()
    # bf16 autocast as the Trainer's AMP runs it (fp32 trainable weights meet bf16 frozen ones)
    with (
        torch.autocast("cpu", dtype=torch.bfloat16),
        torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor),
    ):
        model(input_ids=ids, **images)  # no labels: the loss and logits are measured separately
    return sum(seen.values())


def _module_names(model) -> dict:
    """The module names freeze tuning accepts, derived from parameter names as adapter.py::_setup_freeze_tuning
    does: ``freeze_trainable_modules`` from what follows a ``.0.`` (or ``.1.``), ``freeze_extra_modules`` from
    unnumbered parameters (the name before ``weight``/``bias``). Taken from the base model, before any adapter."""
    import re

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    hidden, other = set(), set()
    for name, _ in base.named_parameters():
        for marker in (".0.", ".1."):
            if marker in name:
                hidden.add(name.split(marker)[-1].split(".")[0])
                break
        if re.search(r"\.\d+\.", name) is None:
            other.add(name.split(".")[-2])
    return {"hidden_modules": sorted(hidden), "non_hidden_modules": sorted(other)}


def run_case(case: dict, work: Path, tokenizer_dir: Path, vocab: int) -> dict:
    from llamafactory.hparams import get_train_args
    from llamafactory.model import load_model, load_tokenizer

    model_dir = work / case["id"]
    model_config = with_vocab(case["model_config"], vocab)
    try:
        _build(model_dir, model_config, tokenizer_dir)
    except ValueError as exc:  # a model type this transformers release does not know
        return {"id": case["id"], "error": None, "skipped": str(exc)[:200]}
    args = {"model_name_or_path": str(model_dir), "stage": "sft", "do_train": True, "dataset": "unused", "template": "default",
            "output_dir": str(work / "out"), "overwrite_output_dir": True, "report_to": "none", **case["args"]}  # fmt: skip
    result: dict = {"id": case["id"], "error": None}
    try:
        model_args, _, _, finetuning_args, _ = get_train_args(args)
        try:
            tokenizer = load_tokenizer(model_args)["tokenizer"]
        except OSError:  # LLaMA-Factory 0.9.3 requires a vision model's processor, which no case needs
            if "vision_config" not in model_config:
                raise
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        model = load_model(tokenizer, model_args, finetuning_args, is_trainable=True)
    except (Exception, SystemExit) as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"[:800]
        return result
    by_dtype: dict[str, dict[str, int]] = {"trainable": {}, "frozen": {}}
    total = trainable = 0
    for parameter in model.parameters():
        part = "trainable" if parameter.requires_grad else "frozen"
        name = str(parameter.dtype).replace("torch.", "")
        by_dtype[part][name] = by_dtype[part].get(name, 0) + parameter.numel()
        total += parameter.numel()
        trainable += parameter.numel() if parameter.requires_grad else 0
    result.update(total_params=total, trainable_params=trainable, dtypes=by_dtype, **_module_names(model))
    if case.get("activation"):
        batch, seq = case["activation"]
        try:
            result["saved_bytes"] = _saved_bytes(model, batch, seq, vocab)
        except Exception as exc:
            result["activation_error"] = f"{type(exc).__name__}: {exc}"[:400]
    if case.get("image_grids"):  # the same forward pass with one image per sequence, of each size
        batch, seq = case["image_activation"]
        try:
            result["saved_with_images"] = [
                _saved_bytes(model, batch, seq, vocab, model_config, grid) for grid in case["image_grids"]
            ]
        except Exception as exc:
            result["activation_error"] = f"{type(exc).__name__}: {exc}"[:400]
    return result


def run_cases(cases: list[dict], work: Path) -> dict:
    tokenizer_dir = work / "tokenizer"
    vocab = smoke_run.build_tokenizer(tokenizer_dir)
    return {"vocab": vocab, "results": [run_case(case, work, tokenizer_dir, vocab) for case in cases]}


def main(argv: list[str]) -> int:
    return smoke_run.run_probe(argv, "lf-lint-mem-", run_cases)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
