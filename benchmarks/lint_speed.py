"""lf-lint's start-up, side by side with yamllint on the same file, and a run over 1,000 configs.

    python benchmarks/lint_speed.py [--runs 21] [--install editable|regular|both] [--current] [--many 1000] [CONFIG]

Installs lf-lint into a scratch virtual environment as the README's first command does (``pip install -e .``,
``--install editable``), or from a wheel as users of a release get it (``regular``), or both, each beside yamllint,
then measures, each command in a fresh process, the commands of one comparison alternating run by run (medians of
``--runs``, after one warm-up run of each):

1. a schema-only lint (``lf-lint --no-datasets CONFIG``) against yamllint on the same file:
   target, lf-lint at most half of yamllint's time;
2. the default lint of the same config with its datasets already scanned (the cache warm) against yamllint:
   target, no slower than yamllint;
3. one ``lf-lint`` run over ``--many`` configs that share five dataset mixes, plans included
   (benchmarks/many_configs.py), with a fresh cache and warm: target, warm at most 2 s.

Python's own start-up (``python -c pass``, with ``-S`` and ``-I``) is printed as the floor, and the heavy modules
each lint path imported: none for the schema-only lint; pathlib alone for the default lint, whose dataset counting
works with paths (pathlib brings urllib.parse and ipaddress, about 3 ms on Python 3.11). ``--current`` uses the tools of the running interpreter instead of a
scratch environment. The machine's load average is printed before and after: on a busy machine the numbers mean
little.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import many_configs

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_configs" / "qwen3_lora_sft.yaml"
HEAVY = ("yaml", "numpy", "pyarrow", "datasets", "pandas", "jsonschema", "tokenizers", "omegaconf", "torch", "pathlib",
         "transformers", "difflib", "tempfile", "argparse")  # fmt: skip
YAMLLINT_CONFIG = "{extends: default, rules: {document-start: disable, line-length: disable}}"

# Children may cache bytecode, as they do on a user's machine (pip compiles installed packages;
# an editable install writes __pycache__ on first use). Some sandboxes set PYTHONDONTWRITEBYTECODE.
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def alternate(commands: dict[str, list[str]], runs: int, env: dict) -> dict[str, float]:
    """Median wall time in ms of each command, the commands run in turn, ``runs`` rounds after one warm-up each."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for cmd in commands.values():
        subprocess.run(cmd, capture_output=True, env=env, cwd=ROOT)  # warm-up: page cache, .pyc files, scan cache
    for _ in range(runs):
        for name, cmd in commands.items():
            start = time.perf_counter()
            subprocess.run(cmd, capture_output=True, env=env, cwd=ROOT)
            times[name].append((time.perf_counter() - start) * 1000)
    return {name: statistics.median(values) for name, values in times.items()}


def imported(python: str, args: list[str], env: dict) -> list[str]:
    """The heavy modules a lint imported (run in-process after the same lint filled the cache). It runs outside the
    repository, so that ``python -c`` imports the installed lf-lint, not the folder's."""
    probe = (
        "import io, sys, contextlib\nfrom lf_lint.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()): main(sys.argv[1:])\n"
        f"print('IMPORTED', [m for m in {HEAVY!r} if m in sys.modules])"
    )
    with tempfile.TemporaryDirectory() as elsewhere:
        cmd = [python, "-c", probe, "--workdir", str(ROOT), *args]
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=elsewhere)
    line = [ln for ln in done.stdout.splitlines() if ln.startswith("IMPORTED")]
    return eval(line[-1].split(" ", 1)[1]) if line else [f"<probe failed: {done.stderr[-300:]}>"]


def scratch_env(folder: Path, install: str) -> Path:
    """A virtual environment with lf-lint (its dependencies too) and yamllint; returns its bin folder."""
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
    pip = [str(folder / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    target = ["-e", str(ROOT)] if install == "editable" else [str(ROOT)]
    subprocess.run([*pip, *target, "yamllint"], check=True, env=CHILD_ENV)
    return folder / "bin"


def report(bindir: Path, config: Path, runs: int, many: int, label: str) -> list[str]:
    python = str(bindir / "python")
    lf_lint = shutil.which("lf-lint", path=str(bindir))
    yamllint = [shutil.which("yamllint", path=str(bindir)), "-d", YAMLLINT_CONFIG, str(config)]
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(CHILD_ENV, LF_LINT_CACHE_DIR=str(Path(tmp) / "cache"))
        floor = alternate({"python -c pass": [python, "-c", "pass"], "python -S -c pass": [python, "-S", "-c", "pass"],
                           "python -I -c pass": [python, "-I", "-c", "pass"]}, runs, env)  # fmt: skip
        lines.append(
            f"[{label}] Python's start-up (the floor): " + ", ".join(f"{k} {v:.1f} ms" for k, v in floor.items())
        )

        schema_args = ["--isolated", "--no-datasets", str(config)]
        first = alternate({"lf-lint": [lf_lint, *schema_args], "yamllint": yamllint}, runs, env)
        target = first["yamllint"] / 2
        lines.append(f"[{label}] schema-only lint: lf-lint {first['lf-lint']:.1f} ms vs yamllint {first['yamllint']:.1f} ms "
                     f"(target <= {target:.1f} ms): {'met' if first['lf-lint'] <= target else 'missed'}")  # fmt: skip

        default_args = ["--isolated", str(config)]
        subprocess.run([lf_lint, *default_args], capture_output=True, env=env, cwd=ROOT)  # scans the datasets
        second = alternate({"lf-lint": [lf_lint, *default_args], "yamllint": yamllint}, runs, env)
        verdict = "met" if second["lf-lint"] <= second["yamllint"] else "missed"
        lines.append(f"[{label}] default lint, scan cached: lf-lint {second['lf-lint']:.1f} ms vs yamllint "
                     f"{second['yamllint']:.1f} ms (target <= {second['yamllint']:.1f} ms): {verdict}")  # fmt: skip

        heavy = {
            "schema-only": imported(python, schema_args, env),
            "default, cached": imported(python, default_args, env),
        }
        lines.append(f"[{label}] heavy modules imported: " + "; ".join(f"{k}: {v or 'none'}" for k, v in heavy.items()))

        if many:
            root = Path(tmp) / "many"
            paths = many_configs.write_project(root, many, 2000)
            result = many_configs.measure(lf_lint, root, paths, max(3, runs // 4))
            met = "met" if result["warm_s"] <= many_configs.TARGET_WARM_S else "missed"
            lines.append(f"[{label}] {many} configs with plans, one run: {result['warm_s']:.2f} s warm, "
                         f"{result['fresh_s']:.2f} s with a fresh cache (target warm <= "
                         f"{many_configs.TARGET_WARM_S:.1f} s): {met}")  # fmt: skip
    for line in lines:
        print(line, flush=True)
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", nargs="?", type=Path, default=SAMPLE)
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--install", choices=("editable", "regular", "both"), default="editable",
                        help="how lf-lint is installed in the scratch environment (editable: the README's command)")  # fmt: skip
    parser.add_argument("--current", action="store_true", help="use the tools installed for this interpreter")
    parser.add_argument("--many", type=int, default=1000, help="configs for the third target (0: skip it)")
    args = parser.parse_args()
    config = args.config.resolve()
    print(f"config: {config} ({config.stat().st_size} bytes), runs: {args.runs}, cpus: {os.cpu_count()}, "
          f"load average before: {os.getloadavg()[0]:.2f}")  # fmt: skip
    if args.current:
        report(Path(sys.executable).parent, config, args.runs, args.many, "current")
    else:
        installs = ("editable", "regular") if args.install == "both" else (args.install,)
        for install in installs:
            with tempfile.TemporaryDirectory() as venv:
                bindir = scratch_env(Path(venv), install)
                report(bindir, config, args.runs, args.many, f"pip install {'-e ' if install == 'editable' else ''}.")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
