"""How fast lf-lint counts the examples of a large dataset, against the naive route.

    python benchmarks/count_speed.py [--rows 1000000] [--keep DIR]

Writes an alpaca-style JSON-lines file (1,000,000 rows, about 0.5 GB by default, with a few
rows LLaMA-Factory drops: rows without a response), a ``dataset_info.json`` and a
config, then times, each in a fresh process:

1. ``lf-lint --no-cache`` counting it with every drop rule (the cold path),
2. ``lf-lint`` again on the unchanged file (the scan cache),
3. the naive route: ``datasets.load_dataset("json", ...)`` and converting every row as
   LLaMA-Factory's alpaca converter does, then filtering the dropped ones.

It prints wall time and peak memory (max RSS) of each and the ratio. The targets: at most 3 s
and under 300 MB for the cold count on the 2-core development machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

NAIVE = r"""
import sys
from datasets import load_dataset
path = sys.argv[1]
data = load_dataset("json", data_files=path, split="train", cache_dir=sys.argv[2])

def convert(row):  # LLaMA-Factory's alpaca converter: a response exists when the output is a string
    prompt = row["instruction"] if isinstance(row["instruction"], str) else ""
    if isinstance(row["input"], str) and row["input"]:
        prompt += "\n" + row["input"]
    response = [row["output"]] if isinstance(row["output"], str) else []
    return {"_prompt": [prompt], "_response": response}

converted = data.map(convert, remove_columns=data.column_names, num_proc=1)
kept = converted.filter(lambda row: len(row["_prompt"]) == 1 and len(row["_response"]) == 1)  # the supervised processor
print(len(kept))
"""


def write_dataset(folder: Path, rows: int) -> Path:
    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    path = data / "big.jsonl"
    if not path.exists():
        filler = "lorem ipsum dolor sit amet " * 8
        with path.open("w") as out:
            for i in range(rows):
                output = (
                    None if i % 997 == 0 else f"answer {i} {filler}"
                )  # no response: the supervised processor drops it
                out.write(
                    json.dumps(
                        {
                            "instruction": f"question {i} {filler}",
                            "input": "" if i % 3 else f"context {i}",
                            "output": output,
                        }
                    )
                    + "\n"
                )
    (data / "dataset_info.json").write_text(json.dumps({"big": {"file_name": "big.jsonl"}}))
    (folder / "cfg.yaml").write_text(
        "model_name_or_path: Qwen/Qwen3-0.6B\nstage: sft\ndo_train: true\nfinetuning_type: lora\ndataset: big\n"
        "template: qwen3\noutput_dir: out\nbf16: true\nper_device_train_batch_size: 8\ngradient_accumulation_steps: 4\n"
    )
    return path


def run(cmd: list[str], cwd: Path, env: dict) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MB of this child, stdout)."""
    start = time.perf_counter()
    process = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    out = process.stdout.read()
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        raise SystemExit(f"{cmd[0]} failed: {out[-500:]}")
    return wall, usage.ru_maxrss / 1024, out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, help="write the dataset here and keep it (default: a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lf-lint-count-") as tmp:
        folder = args.keep or Path(tmp)
        path = write_dataset(folder, args.rows)
        print(f"{args.rows:,} rows, {path.stat().st_size / 1e9:.2f} GB of JSON lines")
        env = dict(os.environ, LF_LINT_CACHE_DIR=str(Path(tmp) / "cache"))
        lint = [sys.executable, "-m", "lf_lint.cli", "cfg.yaml", "--format", "json", "--llamafactory-version", "0.9.5"]
        cold_wall, cold_rss, out = run([*lint, "--no-cache"], folder, env)
        plan = json.loads(out)["files"][0]["plan"]
        run(lint, folder, env)  # fills the cache
        warm_wall, warm_rss, _ = run(lint, folder, env)
        naive_wall, naive_rss, naive_out = run(
            [sys.executable, "-c", NAIVE, str(path), str(Path(tmp) / "hf")], folder, env
        )
        print(
            f"lf-lint, cold (--no-cache): {cold_wall:6.2f} s  {cold_rss:6.0f} MB  -> {plan['num_examples']:,} examples"
        )
        print(f"lf-lint, cached           : {warm_wall:6.2f} s  {warm_rss:6.0f} MB")
        print(
            f"naive datasets route      : {naive_wall:6.2f} s  {naive_rss:6.0f} MB  -> {int(naive_out.split()[-1]):,} examples"
        )
        print(f"speed-up: {naive_wall / cold_wall:.1f}x cold, {naive_wall / warm_wall:.0f}x cached")
    return 0


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    sys.exit(main())
