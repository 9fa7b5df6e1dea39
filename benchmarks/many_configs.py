"""One ``lf-lint`` run over 1,000 configs that share five dataset mixes, with their step plans.

    python benchmarks/many_configs.py [--configs 1000] [--rows 2000] [--runs 5] [--lf-lint PATH] [--keep DIR]

Writes a project (six datasets of ``--rows`` rows each, alpaca and sharegpt, a few rows LLaMA-Factory drops, and a
``dataset_info.json``) and ``--configs`` train configs, each on one of five dataset mixes (one dataset, two
concatenated, an interleaved pair, one with a separate eval set, three with ``val_size``) and its own learning rate,
epochs and batch sizes, then times ``lf-lint configs/*.yaml`` (the default lint: datasets counted, plans printed in
the default format) in a fresh process:

* with a fresh cache (every dataset scanned, every count made once per mix), ``--runs`` times;
* with the cache warm (the scans and counts of the previous run), ``--runs`` times, alternating with the fresh runs.

Prints the medians against the target (warm: at most 2 s), checks that both runs give the same output and (with
``--format json``, untimed) that every config got a plan. ``lf_lint_many`` in benchmarks/lint_speed.py calls the same code.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_WARM_S = 2.0
MIXES = [
    "dataset: alpaca_a",
    "dataset: alpaca_a,sharegpt_b\nval_size: 0.05",
    "dataset: alpaca_c,alpaca_d\nmix_strategy: interleave_under\ninterleave_probs: 0.4,0.6",
    "dataset: sharegpt_b\neval_dataset: alpaca_e\neval_strategy: steps\neval_steps: 50",
    "dataset: alpaca_a,alpaca_c,sharegpt_f\nval_size: 0.1\nmax_samples: 1500",
]


def _alpaca(n: int, seed: int) -> list[dict]:
    return [{"instruction": f"question {seed}-{i}", "input": "" if i % 3 else f"context {i}",
             "output": "" if i % 97 == 0 else f"answer {i} " * (1 + i % 5)} for i in range(n)]  # fmt: skip


def _sharegpt(n: int, seed: int) -> list[dict]:
    rows = []
    for i in range(n):
        turns = [{"from": "human", "value": f"hi {seed}-{i}"}, {"from": "gpt", "value": f"hello {i}"}]
        if i % 89 == 0:
            turns = turns[:1]  # no response: dropped
        rows.append({"conversations": turns})
    return rows


def write_project(root: Path, configs: int, rows: int) -> list[Path]:
    data = root / "data"
    data.mkdir(parents=True)
    registry = {}
    for seed, name in enumerate(["alpaca_a", "sharegpt_b", "alpaca_c", "alpaca_d", "alpaca_e", "sharegpt_f"]):
        if name.startswith("sharegpt"):
            (data / f"{name}.json").write_text(json.dumps(_sharegpt(rows, seed)))
            registry[name] = {
                "file_name": f"{name}.json",
                "formatting": "sharegpt",
                "columns": {"messages": "conversations"},
            }
        else:
            (data / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _alpaca(rows, seed)))
            registry[name] = {"file_name": f"{name}.jsonl"}
    (data / "dataset_info.json").write_text(json.dumps(registry, indent=1))
    folder = root / "configs"
    folder.mkdir()
    paths = []
    for i in range(configs):
        text = (
            "### model\nmodel_name_or_path: Qwen/Qwen3-0.6B\ntrust_remote_code: true\n\n"
            "### method\nstage: sft\ndo_train: true\nfinetuning_type: lora\nlora_rank: 8\nlora_target: all\n\n"
            f"### dataset\n{MIXES[i % len(MIXES)]}\ntemplate: qwen3_nothink\ncutoff_len: 2048\n\n"
            f"### output\noutput_dir: saves/run-{i}\nlogging_steps: 10\nsave_steps: {100 + 50 * (i % 4)}\n"
            "report_to: none\n\n"
            f"### train\nper_device_train_batch_size: {1 + i % 4}\ngradient_accumulation_steps: {1 + i % 8}\n"
            f"learning_rate: {(1 + i % 9)}.0e-5\nnum_train_epochs: {1 + i % 3}.0\nlr_scheduler_type: cosine\n"
            "warmup_steps: 10\nbf16: true\n"
        )
        path = folder / f"cfg_{i:04d}.yaml"
        path.write_text(text)
        paths.append(path)
    return paths


def lint_command(lf_lint: str, paths: list[Path], fmt: str = "full") -> list[str]:
    return [lf_lint, "--isolated", "--format", fmt, *map(str, paths)]


def run(cmd: list[str], cwd: Path, cache: Path) -> tuple[float, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["LF_LINT_CACHE_DIR"] = str(cache)
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(cmd[:3])} ... failed: {done.stderr[-2000:]}")
    return elapsed, done.stdout


def measure(lf_lint: str, root: Path, paths: list[Path], runs: int) -> dict:
    """Medians of fresh-cache and warm-cache runs, alternating; checks the outputs agree and every config has a plan."""
    cmd = lint_command(lf_lint, paths)
    fresh, warm, outputs = [], [], set()
    for index in range(runs):
        cache = root / f"cache-{index}"
        seconds, out = run(cmd, root, cache)  # a fresh cache: scans and counts made
        fresh.append(seconds)
        outputs.add(out)
        seconds, out = run(cmd, root, cache)  # the same cache, warm
        warm.append(seconds)
        outputs.add(out)
        shutil.rmtree(cache, ignore_errors=True)
    if len(outputs) != 1:
        raise RuntimeError("fresh and warm runs disagree")
    files = json.loads(run(lint_command(lf_lint, paths, "json"), root, root / "cache-check")[1])["files"]
    planned = sum(f["plan"] is not None and f["plan"]["num_examples"] is not None for f in files)
    if planned != len(paths):
        raise RuntimeError(f"only {planned} of {len(paths)} configs got a plan")
    return {"fresh_s": statistics.median(fresh), "warm_s": statistics.median(warm), "configs": len(paths)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--lf-lint", default=shutil.which("lf-lint") or "lf-lint")
    parser.add_argument("--keep", type=Path, help="write the project here and keep it")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        paths = write_project(root, args.configs, args.rows)
        result = measure(args.lf_lint, root, paths, args.runs)
    verdict = "met" if result["warm_s"] <= TARGET_WARM_S else "missed"
    print(f"{args.configs} configs with plans: fresh cache {result['fresh_s']:.2f} s, warm {result['warm_s']:.2f} s "
          f"(target warm <= {TARGET_WARM_S:.1f} s): {verdict}")  # fmt: skip
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
