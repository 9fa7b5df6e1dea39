#!/usr/bin/env python
"""Encode conversations with the real LLaMA-Factory templates and record each example's token length.

Runs INSIDE a ground-truth env (envs.py)::

    <env>/bin/python tests/groundtruth/template_probe.py CASES.json RESULTS.json

CASES.json: ``{"tokenizers": {name: dir}, "conversations": [...], "settings": [...]}``. Each
conversation is ``{"prompt": [...], "response": [...], "system": str, "tools": str}`` in the
converter's format; each setting names a tokenizer, a template and the data arguments that change
the encoding (cutoff_len, mask_history, enable_thinking, preserve_thinking, default_system). For
every setting the probe loads the tokenizer with ``AutoTokenizer``, lets LLaMA-Factory pick and fix
the template (``get_template_and_fix_tokenizer``: stop words become special tokens, the eos token is
replaced) and records ``len(input_ids)`` of ``SupervisedDatasetProcessor._encode_data_example`` per
conversation: what packing packs. A template that cannot be used records its error.

``--build-tokenizers DIR`` writes the tokenizers the test uses (the smoke-run BPE one, and a variant
with bos/eos, an additional special token and a truncation setting in tokenizer.json).
Only the standard library is imported at module level.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import smoke_run


def build_tokenizers(folder: Path) -> dict:
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    plain = folder / "plain"
    smoke_run.build_tokenizer(plain)
    rich = folder / "rich"
    backend = Tokenizer.from_file(str(plain / "tokenizer.json"))
    backend.enable_truncation(max_length=8)  # transformers ignores it in encode(); a raw Tokenizer would not
    fast = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        additional_special_tokens=["<|im_end|>"],
    )
    fast.save_pretrained(str(rich))
    return {"plain": str(plain), "rich": str(rich)}


def _data_args(setting: dict):
    from llamafactory.hparams import DataArguments

    names = {f.name for f in dataclasses.fields(DataArguments)}
    kwargs = {k: v for k, v in setting.items() if k in names and k != "tokenizer"}
    return DataArguments(**kwargs)


def main(argv: list[str]) -> int:
    os.environ.setdefault("DISABLE_VERSION_CHECK", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    if argv[0] == "--build-tokenizers":
        print(json.dumps(build_tokenizers(Path(argv[1]))))
        return 0
    cases = json.loads(Path(argv[0]).read_text())
    from llamafactory.data import template as template_module
    from llamafactory.data.processor.supervised import SupervisedDatasetProcessor
    from transformers import AutoTokenizer

    pristine = copy.deepcopy(template_module.TEMPLATES)  # get_template_and_fix_tokenizer mutates the registry
    encode_params = inspect.signature(SupervisedDatasetProcessor._encode_data_example).parameters
    results = []
    for setting in cases["settings"]:
        template_module.TEMPLATES.clear()
        template_module.TEMPLATES.update(copy.deepcopy(pristine))
        try:
            tokenizer = AutoTokenizer.from_pretrained(cases["tokenizers"][setting["tokenizer"]])
            data_args = _data_args(setting)
            template = template_module.get_template_and_fix_tokenizer(tokenizer, data_args)
            processor = SupervisedDatasetProcessor(
                template=template, tokenizer=tokenizer, processor=None, data_args=data_args
            )
        except Exception as exc:
            results.append({"error": f"{type(exc).__name__}: {exc}"})
            continue
        lengths = []
        for conv in cases["conversations"]:
            kwargs = {"prompt": conv["prompt"], "response": conv["response"], "system": conv["system"],
                      "tools": conv["tools"], "images": [], "videos": [], "audios": []}  # fmt: skip
            kwargs = {k: v for k, v in kwargs.items() if k in encode_params}
            try:
                input_ids, _ = processor._encode_data_example(**kwargs)
                lengths.append(len(input_ids))
            except Exception as exc:
                lengths.append(f"{type(exc).__name__}: {exc}")
        results.append({"lengths": lengths})
    Path(argv[1]).write_text(json.dumps({"results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
