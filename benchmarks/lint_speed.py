"""Wall time of a schema-only lint (``--no-datasets``) of one config in a fresh process, side by side with
yamllint and check-jsonschema on the same file.

    python benchmarks/lint_speed.py [--runs 21] [--current] [CONFIG]

By default it builds a scratch virtual environment with a regular (non-editable) install
of lf-lint, as users get from a wheel, plus yamllint and check-jsonschema; ``--current``
uses the tools of the running interpreter instead (an editable install adds an import
hook to every Python start-up there, which inflates all three numbers).

Each command runs ``--runs`` times as a new process after one warm-up run (so "cold"
means a new interpreter, not a cold disk). Prints the median and the spread in ms, and
the CPU time of the child processes. It also checks that the lint path imported none of
the heavy packages (datasets, pyarrow, omegaconf, torch, transformers, jsonschema).
The target for lf-lint is a median of at most 150 ms on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_configs" / "qwen3_lora_sft.yaml"
HEAVY = ("datasets", "pyarrow", "omegaconf", "torch", "transformers", "jsonschema", "numpy", "pandas")


# Children may cache bytecode, as they do on a user's machine (pip compiles installed packages;
# an editable install writes __pycache__ on first use). Some sandboxes set PYTHONDONTWRITEBYTECODE.
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _time(cmd: list[str], runs: int) -> tuple[list[float], list[float]]:
    subprocess.run(cmd, capture_output=True, env=CHILD_ENV)  # warm-up: page cache, .pyc files
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(cmd, capture_output=True, env=CHILD_ENV)
        walls.append((time.perf_counter() - start) * 1000)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append((after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000)
    return walls, cpus


def _heavy_imports(python: str, config: Path) -> list[str]:
    probe = (
        "import sys; from lf_lint.cli import main; main(['--isolated', '--no-datasets', '--format', 'json', sys.argv[1]]);"
        f"print('\\nIMPORTED', [m for m in {HEAVY!r} if m in sys.modules], file=sys.stderr)"
    )
    done = subprocess.run([python, "-c", probe, str(config)], capture_output=True, text=True)
    line = [ln for ln in done.stderr.splitlines() if ln.startswith("IMPORTED")]
    return eval(line[-1].split(" ", 1)[1]) if line else ["<probe failed>"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", nargs="?", type=Path, default=SAMPLE)
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--current", action="store_true", help="use the tools installed for this interpreter")
    args = parser.parse_args()
    if args.current:
        return run(Path(sys.executable).parent, args)
    with tempfile.TemporaryDirectory() as venv:
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        python = str(Path(venv) / "bin" / "python")
        pip = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        subprocess.run([*pip, "pyyaml", "jsonschema", "yamllint", "check-jsonschema"], check=True, env=CHILD_ENV)
        subprocess.run([*pip, "--no-deps", str(ROOT)], check=True, env=CHILD_ENV)
        return run(Path(venv) / "bin", args)


def run(bindir: Path, args: argparse.Namespace) -> int:
    python = str(bindir / "python")
    lf_lint = shutil.which("lf-lint", path=str(bindir))
    commands = {"lf-lint": [lf_lint, "--isolated", "--no-datasets", str(args.config)]}
    with tempfile.TemporaryDirectory() as tmp:
        schema = Path(tmp) / "schema.json"
        schema.write_text(subprocess.run([lf_lint, "schema"], capture_output=True, text=True, check=True).stdout)
        for tool, cmd in (
            (
                "yamllint",
                ["-d", "{extends: default, rules: {document-start: disable, line-length: disable}}", str(args.config)],
            ),
            ("check-jsonschema", ["--schemafile", str(schema), str(args.config)]),
        ):
            exe = shutil.which(tool, path=str(bindir))
            if exe:
                commands[tool] = [exe, *cmd]
            else:
                print(f"({tool} not installed: pip install {tool})")
        commands["python -c pass"] = [python, "-c", "pass"]

        print(f"config: {args.config} ({args.config.stat().st_size} bytes), runs: {args.runs}, cpus: {os.cpu_count()}")
        print(f"{'command':<18} {'median ms':>10} {'min':>7} {'max':>7} {'cpu ms':>8}")
        medians = {}
        for name, cmd in commands.items():
            walls, cpus = _time(cmd, args.runs)
            medians[name] = statistics.median(walls)
            print(
                f"{name:<18} {medians[name]:>10.1f} {min(walls):>7.1f} {max(walls):>7.1f} {statistics.median(cpus):>8.1f}"
            )

    for other in ("yamllint", "check-jsonschema"):
        if other in medians:
            print(f"lf-lint is {medians[other] / medians['lf-lint']:.1f}x faster than {other}")
    heavy = _heavy_imports(python, args.config)
    print(f"heavy modules imported by the lint path: {heavy or 'none'}")
    verdict = "meets" if medians["lf-lint"] <= 150 and not heavy else "MISSES"
    print(f"target (median <= 150 ms, no heavy imports): {verdict}")
    print(json.dumps({k: round(v, 1) for k, v in medians.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
