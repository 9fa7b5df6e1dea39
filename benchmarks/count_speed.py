"""How fast lf-lint counts the examples of a large dataset, against pyarrow's JSON reader alone.

    python benchmarks/count_speed.py [--rows 1000000] [--runs 5] [--other-rows 200000] [--no-naive] [--keep DIR]

Writes an alpaca-style JSON-lines file (1,000,000 rows, about 0.5 GB by default, with a few
rows LLaMA-Factory drops: rows without a response), a ``dataset_info.json`` and a config,
then, each command in a fresh process:

1. times ``lf-lint --no-cache`` counting it with every drop rule (the cold path) and
   ``pyarrow.json.read_json`` of the same file, alternating, ``--runs`` times each; prints the
   medians, their ratio against the target (lf-lint at most 1.25 x read_json), and the peak
   memory (max RSS) of lf-lint's process against 300 MB. pyarrow's streaming reader
   (``open_json``, 1 MB blocks) is timed alongside for context;
2. times ``lf-lint`` again on the unchanged file (the scan cache);
3. runs the naive route once for context: ``datasets.load_dataset("json", ...)`` and
   converting every row as LLaMA-Factory's alpaca converter does, then filtering;
4. for the other formats lf-lint reads (a JSON array, CSV, parquet; ``--other-rows`` rows of
   the same data), times the scan lf-lint runs (``scan.scan``) against the row-by-row
   reference (``scan.scan_rows``, the scan before the column-wise reader), alternating.

Every count is checked against the others. The machine's load average is printed before and
after: on a busy machine the timings mean little.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_RATIO = 1.25
TARGET_MB = 300

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

READ_JSON = "import sys, pyarrow.json as pj; print(pj.read_json(sys.argv[1]).num_rows)"
OPEN_JSON = (
    "import sys, pyarrow.json as pj\n"
    "reader = pj.open_json(sys.argv[1], read_options=pj.ReadOptions(block_size=1 << 20))\n"
    "print(sum(batch.num_rows for batch in reader))"
)
SCAN = r"""
import sys, time
from pathlib import Path
from lf_lint.dataset.files import DataFiles
from lf_lint.dataset.registry import attr_from_entry
from lf_lint.dataset import scan
attr = attr_from_entry("big", {"file_name": sys.argv[1]}, formats=("alpaca", "sharegpt", "openai")).attr
files = DataFiles((Path(sys.argv[1]),), sys.argv[2])
start = time.perf_counter()
result = getattr(scan, sys.argv[3])(files, attr, "sft")
print(time.perf_counter() - start, result.codes.count(0))
"""


def write_dataset(folder: Path, rows: int) -> Path:
    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    path = data / "big.jsonl"
    if not path.exists():
        filler = "lorem ipsum dolor sit amet " * 8
        with path.open("w") as out:
            for i in range(rows):
                output = None if i % 997 == 0 else f"answer {i} {filler}"  # no response: the processor drops it
                out.write(
                    json.dumps({"instruction": f"question {i} {filler}", "input": "" if i % 3 else f"context {i}",
                                "output": output}) + "\n"
                )  # fmt: skip
    (data / "dataset_info.json").write_text(json.dumps({"big": {"file_name": "big.jsonl"}}))
    (folder / "cfg.yaml").write_text(
        "model_name_or_path: Qwen/Qwen3-0.6B\nstage: sft\ndo_train: true\nfinetuning_type: lora\ndataset: big\n"
        "template: qwen3\noutput_dir: out\nbf16: true\nper_device_train_batch_size: 8\ngradient_accumulation_steps: 4\n"
    )
    return path


def write_other_formats(source: Path, rows: int) -> dict[str, Path]:
    """The first ``rows`` rows of the JSON-lines file as a JSON array, a CSV file and a parquet file."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = source.parent
    paths = {"json": folder / f"other-{rows}.json", "csv": folder / f"other-{rows}.csv",
             "parquet": folder / f"other-{rows}.parquet"}  # fmt: skip
    if all(p.exists() for p in paths.values()):
        return paths
    with source.open() as handle:
        records = [json.loads(line) for _, line in zip(range(rows), handle)]
    paths["json"].write_text(json.dumps(records))
    pd.DataFrame(records).to_csv(paths["csv"], index=False)
    pq.write_table(pa.Table.from_pylist(records), paths["parquet"])
    return paths


def run(cmd: list[str], cwd: Path, env: dict) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MB of this child process, its stdout)."""
    start = time.perf_counter()
    process = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    out = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        raise SystemExit(f"{cmd[:3]} failed: {out[-800:]}")
    return wall, usage.ru_maxrss / 1024, out


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} CPUs"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each command (medians are reported)")
    parser.add_argument("--other-rows", type=int, default=200_000, help="rows of the JSON array, CSV, parquet files")
    parser.add_argument("--no-naive", action="store_true", help="skip the naive datasets route (about 45 s)")
    parser.add_argument("--keep", type=Path, help="write the dataset here and keep it (default: a temporary folder)")
    args = parser.parse_args()
    print(f"before: {load()}")
    with tempfile.TemporaryDirectory(prefix="lf-lint-count-") as tmp:
        folder = args.keep or Path(tmp)
        path = write_dataset(folder, args.rows)
        print(f"{args.rows:,} rows, {path.stat().st_size / 1e9:.2f} GB of JSON lines")
        env = dict(os.environ, LF_LINT_CACHE_DIR=str(Path(tmp) / "cache"))
        python = sys.executable
        lint = [python, "-m", "lf_lint.cli", "cfg.yaml", "--format", "json", "--llamafactory-version", "0.9.5"]
        commands = {
            "lf-lint --no-cache": [*lint, "--no-cache"],
            "pyarrow read_json": [python, "-c", READ_JSON, str(path)],
            "pyarrow open_json": [python, "-c", OPEN_JSON, str(path)],
        }
        for cmd in commands.values():
            run(cmd, folder, env)  # warm-up: page cache, .pyc files
        walls: dict[str, list[float]] = {name: [] for name in commands}
        rss: dict[str, list[float]] = {name: [] for name in commands}
        outs: dict[str, str] = {}
        for _ in range(args.runs):  # alternating
            for name, cmd in commands.items():
                wall, mb, outs[name] = run(cmd, folder, env)
                walls[name].append(wall)
                rss[name].append(mb)
        examples = json.loads(outs["lf-lint --no-cache"])["files"][0]["plan"]["num_examples"]
        assert int(outs["pyarrow read_json"]) == int(outs["pyarrow open_json"]) == args.rows
        run(lint, folder, env)  # fills the cache
        cached = [run(lint, folder, env) for _ in range(args.runs)]
        assert json.loads(cached[-1][2])["files"][0]["plan"]["num_examples"] == examples
        median = {name: statistics.median(w) for name, w in walls.items()}
        print(f"\ncold count, median of {args.runs} alternating runs (fresh processes):")
        for name in commands:
            spread = f"{min(walls[name]):.2f}-{max(walls[name]):.2f}"
            print(f"  {name:20s} {median[name]:6.2f} s  ({spread} s)  max RSS {max(rss[name]):6.0f} MB")
        ratio = median["lf-lint --no-cache"] / median["pyarrow read_json"]
        print(f"  -> {examples:,} examples of {args.rows:,} rows")
        print(
            f"  ratio lf-lint / read_json: {ratio:.2f}x (target <= {TARGET_RATIO}x): {'met' if ratio <= TARGET_RATIO else 'missed'}"
        )
        print(f"  ratio lf-lint / open_json: {median['lf-lint --no-cache'] / median['pyarrow open_json']:.2f}x")
        memory = max(rss["lf-lint --no-cache"])
        print(
            f"  peak memory of lf-lint: {memory:.0f} MB (target < {TARGET_MB} MB): {'met' if memory < TARGET_MB else 'missed'}"
        )
        cached_walls = [w for w, _, _ in cached]
        print(
            f"cached count: {statistics.median(cached_walls):.2f} s median, max RSS {max(m for _, m, _ in cached):.0f} MB"
        )
        if not args.no_naive:
            wall, mb, out = run([python, "-c", NAIVE, str(path), str(Path(tmp) / "hf")], folder, env)
            naive = int(out.split()[-1])
            print(f"naive datasets route (once): {wall:.2f} s, max RSS {mb:.0f} MB -> {naive:,} examples")
            assert naive == examples
        if args.other_rows:
            other_formats(path, args, folder, env)
    print(f"\nafter: {load()}")
    return 0


def other_formats(path: Path, args, folder: Path, env: dict) -> None:
    paths = write_other_formats(path, args.other_rows)
    print(
        f"\nother formats, {args.other_rows:,} rows: the scan in a fresh process, median of {args.runs} alternating runs"
    )
    for kind, other in paths.items():
        builder = {"json": "json", "csv": "csv", "parquet": "parquet"}[kind]
        times: dict[str, list[float]] = {"scan": [], "scan_rows": []}
        kept = set()
        for _ in range(args.runs):
            for function in times:
                out = run([sys.executable, "-c", SCAN, str(other), builder, function], folder, env)[2].split()
                times[function].append(float(out[0]))
                kept.add(int(out[1]))
        assert len(kept) == 1, kept
        new, old = statistics.median(times["scan"]), statistics.median(times["scan_rows"])
        print(f"  {kind:8s} lf-lint {new:6.2f} s, row by row (before) {old:6.2f} s: {old / new:4.1f}x "
              f"({kept.pop():,} kept)")  # fmt: skip


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    sys.exit(main())
