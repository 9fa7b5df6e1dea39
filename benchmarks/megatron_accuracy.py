#!/usr/bin/env python
"""How close lf-lint's Megatron-Core memory estimate (lf_lint/memory/megatron.py) comes to published measurements.

Rows: benchmarks/data/megatron_memory.csv, each citing its source.

* Megatron-LM's functional tests (``tests/functional_tests/test_cases/*``): fully specified runs on one node of 8
  GPUs (``tests/test_utils/recipes``: nodes 1, gpus 8) whose golden values log torch's peak allocated memory
  (``mem-max-allocated-bytes``) of the last rank, the one holding the tensorboard writer
  (``megatron/training/global_vars.py``). The script describes each run as a ``MegatronSetup`` (Megatron-LM's own
  defaults: GPT blocks with LayerNorm, biases and a GELU MLP, learned positions, dropout 0.1, vocabulary padded to
  128 x TP, fp32 gradients under bf16) and compares the last pipeline stage's allocated bytes.
* LLaMA-Factory's Megatron example (``examples/megatron/qwen3_moe_full.yaml``: "GPU memory: 8 * 78GB") goes
  through lf-lint's own config mapping, compared as nvidia-smi shows memory (torch's reserve and the CUDA
  context), with its fit verdict (LF601, or LF602's "may run out of memory").

    python benchmarks/megatron_accuracy.py [--rows]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from error_table import print_error_table  # noqa: E402

from lf_lint import estimate_memory  # noqa: E402
from lf_lint.memory.advice import margin  # noqa: E402
from lf_lint.memory.estimate import GIB  # noqa: E402
from lf_lint.memory.gpus import find_gpu  # noqa: E402
from lf_lint.memory.megatron import (  # noqa: E402
    FUSED_CROSS_ENTROPY,
    VOCAB_PARALLEL_CROSS_ENTROPY,
    MegatronSetup,
    stage_estimate,
    stage_layers,
    stage_memory,
)
from lf_lint.memory.model import Moe, Shape  # noqa: E402

DATA = Path(__file__).resolve().parent / "data" / "megatron_memory.csv"


def _int(value: str, default: int = 0) -> int:
    return int(value) if value else default


def megatron_lm_run(row: dict) -> tuple[Shape, MegatronSetup, int, int]:
    """(shape, setup, sequences, seq_len) of a Megatron-LM test run."""
    flags = ("gated", "norm_bias", "tied", "sp", "dist_opt", "fused_act", "bias", "ce_fusion")
    yes = {k: row[k] == "yes" for k in flags}
    h, heads = _int(row["hidden"]), _int(row["heads"])
    moe = None
    if row["experts"]:
        moe = Moe(experts=_int(row["experts"]), top_k=_int(row["topk"]), expert_intermediate=_int(row["moe_ffn"]))
    shape = Shape(model_type="gpt", hidden=h, layers=_int(row["layers"]), heads=heads, kv_heads=_int(row["kv_heads"]),
                  head_dim=h // heads, intermediate=_int(row["ffn"]), vocab=_int(row["vocab"]), tied=yes["tied"],
                  qkv_bias=yes["bias"], norm_bias=yes["norm_bias"], gated=yes["gated"], moe=moe)  # fmt: skip
    world, tp, pp, cp, ep = (_int(row[k], 1) for k in ("gpus", "tp", "pp", "cp", "ep"))
    dp = world // (tp * pp * cp)
    account = "account_for_embedding" in row["citation"]
    seq, mbs = _int(row["seq"]), _int(row["mbs"])
    setup = MegatronSetup(
        engine="megatron-lm", tensor=tp, pipeline=pp, context=cp, expert=ep, expert_tensor=tp,
        virtual=_int(row["vpp"]) or None, sequence_parallel=yes["sp"], dense_shard=dp * cp,
        expert_shard=world // (tp * ep * pp), stage_layers=stage_layers(shape.layers, pp, _int(row["vpp"]) or None, account, account),
        microbatches=_int(row["gbs"]) // (mbs * dp), distributed_optimizer=yes["dist_opt"],
        recompute=row["recompute"] or None, recompute_method=row["recompute_method"] or "uniform",
        recompute_layers=_int(row["recompute_layers"], 1), fused_activation=yes["fused_act"], router_bytes=2,
        logits_bytes=FUSED_CROSS_ENTROPY if yes["ce_fusion"] else VOCAB_PARALLEL_CROSS_ENTROPY,
        dropout=float(row["dropout"] or 0) > 0, flash=row["attention"] != "unfused",
        position_params=seq * h if row["position"] == "learned" else 0,
    )  # fmt: skip
    return shape, setup, mbs, seq


def megatron_lm_estimate(row: dict):
    """The estimate of the measured rank (the last pipeline stage) and of the peak stage."""
    shape, setup, sequences, seq_len = megatron_lm_run(row)
    stages = stage_memory(shape, setup, sequences, seq_len)
    world = _int(row["gpus"], 1)
    last = stage_estimate(stages[-1], world)
    peak = max((stage_estimate(m, world) for m in stages), key=lambda e: e.device)
    return last, peak


def llamafactory_estimate(row: dict):
    config = {"model_name_or_path": row["model_id"], "do_train": True, "dataset": "d", "output_dir": "o",
              **json.loads(row["lf_config"])}  # fmt: skip
    env = dict(item.split("=", 1) for item in row["env"].split(";") if item)
    return estimate_memory(config, gpu=row["gpu"], num_gpus=_int(row["gpus"], 1), env=env,
                           llamafactory_version="0.9.6.dev0", transformers_version="5.8.0")  # fmt: skip


def measured_figure(est, basis: str) -> float:
    smi = est.reserved + est.context
    return {"allocated": est.allocated, "reserved": est.reserved, "nvidia-smi": smi}[basis] / GIB


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", action="store_true", help="print every row")
    options = parser.parse_args()
    by_source: dict[str, list[float]] = {}
    verdicts = []
    for row in csv.DictReader(DATA.open(newline="")):
        gpu = find_gpu(row["gpu"])
        if row["source"] == "megatron-lm-functional-tests":
            est, peak = megatron_lm_estimate(row)
            safe = margin_share = 0.15
        else:
            report = llamafactory_estimate(row)
            est = peak = report.estimate
            margin_share = margin(report.inputs)
            safe = margin_share
        mine = measured_figure(est, row["basis"])
        measured = float(row["measured_gib"])
        error = (mine - measured) / measured
        by_source.setdefault(row["source"], []).append(error)
        need = peak.device / GIB
        if row["outcome"] in ("fit", "oom"):
            status = "oom" if need > gpu.memory_gib else "tight" if need > gpu.memory_gib * (1 - safe) else "fits"
            right = (status != "oom") == (row["outcome"] == "fit")
            verdicts.append((row["id"], right, status, f"{need:.1f} of {gpu.memory_gib:g} GiB"))
        if options.rows:
            print(f"{row['id']:<7} measured {measured:6.2f}  estimate {mine:6.2f} GiB ({row['basis']}, {row['rank']} "
                  f"rank)  {error:+6.1%}   peak stage {need:.2f} GiB")  # fmt: skip
    print_error_table(by_source, "all rows", 32)
    right = sum(ok for _, ok, _, _ in verdicts)
    detail = ", ".join(f"{i}: {status} ({why})" for i, _, status, why in verdicts)
    print(f"fit / out-of-memory verdicts: {right}/{len(verdicts)} right (no LF601 on a run that fitted); {detail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
