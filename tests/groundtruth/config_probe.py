#!/usr/bin/env python
"""Load model configs the way LLaMA-Factory does and record whether transformers accepts them.

Runs INSIDE a ground-truth env (envs.py)::

    <env>/bin/python tests/groundtruth/config_probe.py CASES.json RESULTS.json

Each case is ``{"id", "config": {... config.json ...}, "args": {... LLaMA-Factory train args ...}}``. The probe
writes the config.json alone (no weights, no code files), parses the args with LLaMA-Factory's ``get_train_args``
and calls its ``load_config``: transformers' ``AutoConfig`` with LLaMA-Factory's ``trust_remote_code``; with
``quantization_bit``, also ``configure_quantization``. The result is the loaded ``model_type`` or the error. Only the standard library is imported at module level.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import smoke_run


def run_case(case: dict, work: Path) -> dict:
    from llamafactory.hparams import get_train_args
    from llamafactory.model.loader import load_config

    model_dir = work / case["id"]
    model_dir.mkdir(parents=True)
    (model_dir / "config.json").write_text(json.dumps(case["config"]))
    args = {"model_name_or_path": str(model_dir), "stage": "sft", "do_train": True, "dataset": "unused",
            "template": "default", "output_dir": str(work / "out"), "overwrite_output_dir": True, "report_to": "none",
            **case["args"]}  # fmt: skip
    try:
        model_args = get_train_args(args)[0]
        config = load_config(model_args)
        if model_args.quantization_bit is not None:  # what load_model does next: set the quantization up
            import inspect

            from llamafactory.model.model_utils.quantization import configure_quantization

            extra = (
                {"is_trainable": True} if "is_trainable" in inspect.signature(configure_quantization).parameters else {}
            )
            configure_quantization(config, None, model_args, init_kwargs={}, **extra)
        return {"id": case["id"], "model_type": config.model_type, "error": None}
    except (Exception, SystemExit) as exc:
        return {"id": case["id"], "model_type": None, "error": f"{type(exc).__name__}: {exc}"[:600]}


def main(argv: list[str]) -> int:
    return smoke_run.run_probe(
        argv, "lf-lint-config-", lambda cases, work: {"results": [run_case(c, work) for c in cases]}
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
